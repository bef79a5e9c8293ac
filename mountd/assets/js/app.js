// The review UI's entry point: login, hash routes, global keyboard shortcuts.
//   #/            every workspace
//   #/w/NAME      one workspace's changes, diffs, actions, terminal
//   #/w/NAME/log  its journal timeline
import { api, ApiError } from "./api.js";
import { fill, h, toast } from "./dom.js";
import { connect, disconnect } from "./live.js";
import { workspacesView } from "./workspaces.js";
import { changesView } from "./changes.js";
import { logView } from "./log.js";

const main = document.getElementById("main");
let cleanup = null;

function crumbs(...parts) {
  const nav = document.getElementById("crumbs");
  fill(nav, ...parts.map((p, i) => (i < parts.length - 1 ? h("span", {}, p, " / ") : h("span", { "aria-current": "page" }, p))));
}

function loginView() {
  disconnect();
  document.getElementById("logout").hidden = true;
  crumbs("Log in");
  const input = h("input", { id: "token", type: "password", autocomplete: "off", spellcheck: "false", required: true, "aria-describedby": "token-help" });
  const err = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in to mountd"),
    h("label", { for: "token" }, "Token"),
    input,
    h("p", { id: "token-help", class: "muted" }, "Run ", h("code", {}, "wsfs token show"), " on the daemon's host and paste the token."),
    h("button", { type: "submit", id: "login-submit" }, "Log in"),
    err,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api.login(input.value);
      location.hash = "#/";
      route();
    } catch (x) {
      err.textContent = x.message;
      input.focus();
    }
  });
  fill(main, form);
  input.focus();
}

async function route() {
  if (cleanup) cleanup();
  cleanup = null;
  try {
    await api.daemon();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return loginView();
    fill(main, h("p", { class: "error" }, `mountd does not answer: ${e.message}`));
    return;
  }
  document.getElementById("logout").hidden = false;
  connect();
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "w" && parts[1]) {
    const name = parts[1];
    const link = h("a", { href: `#/w/${encodeURIComponent(name)}` }, name);
    if (parts[2] === "log") {
      crumbs(h("a", { href: "#/" }, "Workspaces"), link, "Journal");
      cleanup = logView(main, name);
    } else {
      crumbs(h("a", { href: "#/" }, "Workspaces"), name);
      cleanup = changesView(main, name);
    }
  } else {
    crumbs("Workspaces");
    cleanup = workspacesView(main);
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("wsfs-unauthorized", () => loginView());
// An EventSource cannot see a 401: when the stream fails, ask the API whether we are still in.
window.addEventListener("wsfs-stream-error", () => api.daemon().catch(() => {}));
document.getElementById("logout").addEventListener("click", async () => {
  await api.logout().catch(() => {});
  loginView();
});
window.addEventListener("unhandledrejection", (e) => toast(String(e.reason?.message || e.reason), true));
route();
