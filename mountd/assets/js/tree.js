// A workspace's changes as a tree of directories with one row per changed path:
// marker (A added, M modified, D deleted, R renamed, T type changed) and badges.
import { fill, h, pathKey, pathText } from "./dom.js";

const MARKERS = { added: "A", modified: "M", deleted: "D", renamed: "R", type_changed: "T" };
const KINDS = { added: "added", modified: "modified", deleted: "deleted", renamed: "renamed", type_changed: "type changed" };

export const marker = (kind) => MARKERS[kind] || "?";

/** Badges of a change (and of a conflict the last commit reported for it). */
export function badges(change, conflict) {
  const out = [];
  if (conflict) out.push(h("span", { class: "badge conflict", title: conflict.hint }, "conflict"));
  if (change.protected) out.push(h("span", { class: "badge protected", title: "protected: committed only when allowed (docs/policy.md)" }, "protected"));
  if (change.scratch) out.push(h("span", { class: "badge scratch", title: "scratch: build output, caches, .gitignored files" }, "scratch"));
  if (change.secret) out.push(h("span", { class: "badge secret", title: "secret: hidden in the workspace" }, "secret"));
  if (change.current?.kind === "file" && change.current.hash === null) out.push(h("span", { class: "badge writing", title: "open for writing" }, "writing"));
  return out;
}

/**
 * Renders `changes` as a tree into `ul`. `selected` is the selected path key; `conflicts` maps
 * path keys to Conflicts; `onSelect(change)` is called on click. Returns the rows in order.
 */
export function renderTree(ul, changes, selected, conflicts, onSelect) {
  const root = { dirs: new Map(), files: [] };
  for (const c of changes) {
    const parts = pathText(c.path).split("/");
    let node = root;
    for (const d of parts.slice(0, -1)) {
      if (!node.dirs.has(d)) node.dirs.set(d, { dirs: new Map(), files: [] });
      node = node.dirs.get(d);
    }
    node.files.push({ name: parts[parts.length - 1], change: c });
  }
  const rows = [];
  function build(node, depth) {
    const items = [];
    for (const [name, sub] of [...node.dirs].sort((a, b) => a[0].localeCompare(b[0]))) {
      // A chain of single-directory levels reads as one row (src/a/b/).
      let label = name;
      let n = sub;
      while (n.files.length === 0 && n.dirs.size === 1) {
        const [[k, v]] = n.dirs;
        label += `/${k}`;
        n = v;
      }
      const group = h("ul", { role: "group" }, build(n, depth + 1));
      items.push(h("li", { role: "treeitem", "aria-expanded": "true", class: "dir" }, h("span", { class: "dirname", style: `--depth:${depth}` }, `${label}/`), group));
    }
    for (const f of node.files.sort((a, b) => a.name.localeCompare(b.name))) {
      const c = f.change;
      const key = pathKey(c.path);
      const kind = KINDS[c.kind] || c.kind;
      const button = h(
        "button",
        {
          type: "button",
          class: `file k-${c.kind}`,
          "data-path": pathText(c.path),
          "aria-label": `${pathText(c.path)}, ${kind}${c.protected ? ", protected" : ""}${c.scratch ? ", scratch" : ""}${conflicts.has(key) ? ", conflict" : ""}`,
          "aria-current": key === selected ? "true" : null,
          style: `--depth:${depth}`,
          onclick: () => onSelect(c),
        },
        h("span", { class: `marker m-${c.kind}`, "aria-hidden": "true" }, marker(c.kind)),
        h("span", { class: "name" }, f.name),
        c.from !== undefined && c.from !== null ? h("span", { class: "from muted" }, ` ← ${pathText(c.from)}`) : null,
        badges(c, conflicts.get(key)),
      );
      rows.push({ change: c, button });
      items.push(h("li", { role: "treeitem", "aria-selected": key === selected ? "true" : "false" }, button));
    }
    return items;
  }
  fill(ul, ...build(root, 0));
  return rows;
}
