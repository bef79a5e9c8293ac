// The workspace's journal timeline (GET …/log), newest first, paged; live.
import { api } from "./api.js";
import { debounce, fill, h, pathText, size } from "./dom.js";
import { subscribe } from "./live.js";

const PAGE = 200;

function when(ns) {
  const d = new Date(ns / 1e6);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

function detail(r) {
  const s = r.new;
  const parts = [];
  if (r.to) parts.push(`→ ${pathText(r.to.path)}`);
  if (r.id) parts.push(`commit ${r.id}`);
  if (r.paths) parts.push(r.paths.length ? r.paths.map(pathText).join(", ") : "everything");
  if (s?.kind === "file" && !r.op.startsWith("commit")) parts.push(`${size(s.size)}${s.hash ? ` ${s.hash.slice(0, 10)}` : ""}`);
  if (s?.kind === "symlink") parts.push(`→ ${s.target}`);
  return parts.join(" · ");
}

export function logView(main, name) {
  let limit = PAGE;
  let records = [];
  const body = h("tbody");
  const more = h("button", { type: "button", class: "more", onclick: () => ((limit += PAGE), paint()) });
  fill(main, 
    h("div", { class: "toolbar" }, h("h1", { id: "log-title" }, `Journal of ${name}`), h("a", { href: `#/w/${encodeURIComponent(name)}`, class: "button" }, "Changes")),
    h("div", { class: "scroll" }, h("table", { class: "list log", "aria-labelledby": "log-title" }, h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "num" }, "#"), h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Operation"), h("th", { scope: "col" }, "Path"), h("th", { scope: "col" }, "Detail"))), body)),
    more,
  );
  function paint() {
    const shown = records.slice(-limit).reverse();
    fill(body, 
      ...shown.map((r) =>
        h("tr", { class: r.op.startsWith("commit") || r.op === "discard" ? "control" : "" }, h("td", { class: "num" }, r.seq), h("td", { class: "nowrap" }, when(r.time_ns)), h("td", {}, r.op.replace("_", " ")), h("td", { class: "path" }, pathText(r.path)), h("td", {}, detail(r))),
      ),
    );
    more.hidden = records.length <= limit;
    more.textContent = `Show ${Math.min(PAGE, records.length - limit)} older records`;
    if (!records.length) fill(body, h("tr", {}, h("td", { colspan: 5, class: "muted" }, "The journal is empty.")));
  }
  async function load() {
    records = await api.log(name);
    paint();
  }
  const reload = debounce(() => load().catch(() => {}), 100);
  const unsubscribe = subscribe((ev) => {
    if (ev === null || ev.workspace === name) reload();
  });
  load();
  return unsubscribe;
}
