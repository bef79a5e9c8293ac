// Every workspace: project, mount, pending counts; live (re-read on each event, debounced).
import { api } from "./api.js";
import { debounce, fill, h } from "./dom.js";
import { subscribe } from "./live.js";

export function workspacesView(main) {
  const body = h("tbody");
  const table = h(
    "table",
    { class: "list workspaces", "aria-labelledby": "ws-title" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Workspace"), h("th", { scope: "col" }, "Project"), h("th", { scope: "col" }, "Mount"), h("th", { scope: "col", class: "num" }, "Pending"), h("th", { scope: "col", class: "num" }, "Scratch"))),
    body,
  );
  fill(main, h("h1", { id: "ws-title" }, "Workspaces"), h("div", { class: "scroll" }, table));

  async function load() {
    const list = await api.workspaces();
    fill(body, 
      ...list.map((w) =>
        h(
          "tr",
          { "data-workspace": w.name },
          h("th", { scope: "row" }, h("a", { href: `#/w/${encodeURIComponent(w.name)}` }, w.name), w.problem ? h("span", { class: "badge conflict", title: w.problem }, "problem") : null),
          h("td", { class: "path" }, w.project),
          h("td", { class: "path" }, w.mountpoint ?? h("span", { class: "muted" }, "not mounted")),
          h("td", { class: "num pending" }, w.pending),
          h("td", { class: "num" }, w.scratch),
        ),
      ),
    );
    if (!list.length) fill(body, h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No workspaces yet: ", h("code", {}, "wsfs mount PROJECT"))));
  }
  const reload = debounce(() => load().catch(() => {}), 30);
  const unsubscribe = subscribe(() => reload());
  load();
  return unsubscribe;
}
