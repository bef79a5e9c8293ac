// A terminal into the workspace (GET /v1/workspaces/NAME/terminal, a WebSocket): binary frames
// both ways, a JSON text frame on resize. xterm.js is vendored (docs/ui.md).
import { Terminal } from "/ui/vendor/xterm/xterm.mjs";
import { FitAddon } from "/ui/vendor/xterm/addon-fit.mjs";
import { api } from "./api.js";
import { fill, h } from "./dom.js";

function loadCss() {
  if (document.getElementById("xterm-css")) return;
  document.head.append(h("link", { id: "xterm-css", rel: "stylesheet", href: "/ui/vendor/xterm/xterm.css" }));
}

/** Opens a terminal in `box`; returns {close}. */
export function openTerminal(box, name) {
  loadCss();
  const el = h("div", { id: "terminal", class: "terminal" });
  const status = h("p", { class: "muted", role: "status" }, "Connecting…");
  fill(box, status, el);
  const term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000, screenReaderMode: false });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(el);
  try {
    fit.fit();
  } catch {}
  const ws = new WebSocket(api.terminalUrl(name, term.cols, term.rows));
  ws.binaryType = "arraybuffer";
  const enc = new TextEncoder();
  ws.onopen = () => {
    status.textContent = `Shell in ${name}`;
    term.focus();
  };
  ws.onmessage = (e) => {
    if (typeof e.data !== "string") term.write(new Uint8Array(e.data));
  };
  ws.onclose = (e) => {
    status.textContent = `Session ended${e.reason ? ` (${e.reason})` : ""}.`;
    term.write(`\r\n[session ended${e.reason ? `: ${e.reason}` : ""}]\r\n`);
  };
  const send = (data) => ws.readyState === WebSocket.OPEN && ws.send(data);
  term.onData((d) => send(enc.encode(d)));
  term.onBinary((d) => send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
  term.onResize(({ cols, rows }) => send(JSON.stringify({ type: "resize", cols, rows })));
  const onResize = () => {
    try {
      fit.fit();
    } catch {}
  };
  window.addEventListener("resize", onResize);
  return {
    close() {
      window.removeEventListener("resize", onResize);
      ws.close();
      term.dispose();
      fill(box, );
    },
  };
}
