// Small DOM helpers: every text from the daemon goes in as text, never as HTML.

/** Makes an element: h("a", {href: "#/"}, "text", child, …). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Replaces `el`'s children (arrays flattened; null, undefined and false left out). */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

/** A workspace path as the API gives it (a string, or {b64} for non-UTF-8 bytes) → text. */
export function pathText(p) {
  if (typeof p === "string") return p;
  if (p && typeof p.b64 === "string") {
    const bytes = Uint8Array.from(atob(p.b64), (c) => c.charCodeAt(0));
    let out = "";
    for (const b of bytes) out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`;
    return out;
  }
  return String(p);
}

/** A stable key for a path value. */
export function pathKey(p) {
  return typeof p === "string" ? p : JSON.stringify(p);
}

/** Shows a message for a few seconds (errors stay until the next one). */
export function toast(text, error = false) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.className = error ? "error" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  if (!error) toast.timer = setTimeout(() => (t.hidden = true), 4000);
}

/** Calls `fn` at most once per `ms`, after the last call (trailing). */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Bytes as a short size. */
export function size(n) {
  if (n === undefined || n === null) return "?";
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}
