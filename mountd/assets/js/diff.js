// One file's diff: unified or side by side, paged for large diffs; binary, mode, symlink and
// type changes described in words.
import { fill, h, size } from "./dom.js";

/** Lines shown per page of a large diff. */
export const PAGE = 1000;

/** Parses a unified diff into hunks: {header, lines: [{t: " "|"+"|"-"|"\\", text, old, new}]}. */
export function parseUnified(text) {
  const hunks = [];
  let cur = null;
  let o = 0;
  let n = 0;
  for (const line of text.split("\n")) {
    const m = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(line);
    if (m) {
      o = +m[1];
      n = +m[2];
      cur = { header: line, lines: [] };
      hunks.push(cur);
      continue;
    }
    if (!cur || line === "") continue;
    const t = line[0];
    const body = line.slice(1);
    if (t === "+") cur.lines.push({ t, text: body, new: n++ });
    else if (t === "-") cur.lines.push({ t, text: body, old: o++ });
    else if (t === " ") cur.lines.push({ t, text: body, old: o++, new: n++ });
    else if (t === "\\") cur.lines.push({ t, text: line });
  }
  return hunks;
}

const modeText = (m) => (m === undefined || m === null ? "?" : (m & 0o7777).toString(8).padStart(4, "0"));

/** An entry state (docs/api.md, `Change`) in words. */
export function describeState(s) {
  switch (s?.kind) {
    case "file":
      return `file, ${size(s.size)}, mode ${modeText(s.mode)}`;
    case "dir":
      return `directory, mode ${modeText(s.mode)}`;
    case "symlink":
      return `symlink → ${typeof s.target === "string" ? s.target : "(non-UTF-8 target)"}`;
    case "special":
      return s.rdev !== undefined ? `device node ${s.rdev}` : "FIFO or socket";
    case "absent":
      return "absent";
    default:
      return "?";
  }
}

/** Sentences for what a unified diff does not show. */
export function describe(fd) {
  const { base, current, kind } = fd.change;
  const notes = [];
  if (base.kind !== current.kind && base.kind !== "absent" && current.kind !== "absent") notes.push(`Type changed: ${describeState(base)} → ${describeState(current)}.`);
  if (base.kind === "symlink" || current.kind === "symlink") {
    if (base.kind === "symlink" && current.kind === "symlink") notes.push(`Symlink target: ${describeState(base).slice(10)} → ${describeState(current).slice(10)}.`);
    else notes.push(kind === "deleted" ? `Deleted ${describeState(base)}.` : `New ${describeState(current)}.`);
  }
  if (base.kind === "file" && current.kind === "file" && (base.mode & 0o7777) !== (current.mode & 0o7777)) notes.push(`Mode ${modeText(base.mode)} → ${modeText(current.mode)}.`);
  if (base.kind === "dir" || current.kind === "dir") notes.push(kind === "deleted" ? "Directory removed." : kind === "added" ? "New directory." : `Directory: ${describeState(current)}.`);
  if (base.kind === "special" || current.kind === "special") notes.push(`${describeState(current.kind === "absent" ? base : current)} (${kind}).`);
  if (fd.binary) {
    const from = base.kind === "file" ? size(base.size) : "none";
    const to = current.kind === "file" ? size(current.size) : "none";
    notes.push(`Binary file: ${from} → ${to}.`);
  }
  if (fd.similarity !== undefined && fd.similarity !== null) notes.push(`Renamed (${fd.similarity}% similar).`);
  if (fd.same_content && kind !== "renamed") notes.push("Same content as the host (metadata only).");
  if (current.kind === "file" && current.hash === null) notes.push("Open for writing: the diff may still change.");
  return notes;
}

const num = (v) => h("td", { class: "ln", "aria-hidden": "true" }, v ?? "");

function unifiedRows(hunks, limit) {
  const rows = [];
  let shown = 0;
  hunks.forEach((hunk, i) => {
    if (shown >= limit) return;
    // HUNK SELECTION (issue 18, not built here): per-hunk commit and discard wait for the
    // hunk-selection API another branch is building. When it lands, put a checkbox into this
    // hunk's `.hunk-actions` (data-hunk = the hunk's index in FileDiff.unified) and send the
    // selected hunks with the commit/discard request. See docs/ui.md, "Per-hunk review".
    rows.push(h("tr", { class: "hunk", "data-hunk": i }, h("td", { colspan: 3 }, h("span", { class: "hunk-actions", "data-hunk": i }), hunk.header)));
    for (const l of hunk.lines) {
      if (shown >= limit) break;
      shown++;
      const cls = l.t === "+" ? "add" : l.t === "-" ? "del" : l.t === "\\" ? "note" : "ctx";
      rows.push(h("tr", { class: cls }, num(l.old), num(l.new), h("td", { class: "code" }, h("span", { class: "sign", "aria-hidden": "true" }, l.t === "\\" ? "" : l.t), l.t === "\\" ? l.text : l.text)));
    }
  });
  return { rows, shown };
}

function sideRows(hunks, limit) {
  const rows = [];
  let shown = 0;
  hunks.forEach((hunk, i) => {
    if (shown >= limit) return;
    rows.push(h("tr", { class: "hunk", "data-hunk": i }, h("td", { colspan: 4 }, h("span", { class: "hunk-actions", "data-hunk": i }), hunk.header)));
    const lines = hunk.lines.filter((l) => l.t !== "\\");
    shown += hunk.lines.length - lines.length; // "\ No newline" notes: counted, not shown
    for (let k = 0; k < lines.length && shown < limit; ) {
      if (lines[k].t === " ") {
        const l = lines[k++];
        rows.push(h("tr", { class: "ctx" }, num(l.old), h("td", { class: "code" }, l.text), num(l.new), h("td", { class: "code" }, l.text)));
        shown++;
        continue;
      }
      const dels = [];
      const adds = [];
      while (k < lines.length && lines[k].t === "-") dels.push(lines[k++]);
      while (k < lines.length && lines[k].t === "+") adds.push(lines[k++]);
      shown += dels.length + adds.length;
      for (let j = 0; j < Math.max(dels.length, adds.length); j++) {
        const d = dels[j];
        const a = adds[j];
        rows.push(h("tr", {}, num(d?.old), h("td", { class: d ? "code del" : "code empty" }, d?.text ?? ""), num(a?.new), h("td", { class: a ? "code add" : "code empty" }, a?.text ?? "")));
      }
    }
  });
  return { rows, shown };
}

/** Renders FileDiff `fd` into `el` in `mode` ("unified" | "split"). */
export function renderDiff(el, fd, mode) {
  const notes = describe(fd);
  const hunks = fd.unified ? parseUnified(fd.unified) : [];
  const total = hunks.reduce((s, x) => s + x.lines.length, 0);
  let limit = PAGE;
  const stats = h("p", { class: "stats" }, h("span", { class: "add" }, `+${fd.added_lines}`), " ", h("span", { class: "del" }, `−${fd.removed_lines}`), total > PAGE ? ` · ${total} lines` : "");
  const table = h("table", { class: `diff ${mode}`, "aria-label": mode === "split" ? "Side-by-side diff" : "Unified diff" });
  const more = h("button", { type: "button", class: "more" });
  function paint() {
    const { rows, shown } = mode === "split" ? sideRows(hunks, limit) : unifiedRows(hunks, limit);
    const cols = mode === "split" ? h("colgroup", {}, h("col", { class: "ln" }), h("col"), h("col", { class: "ln" }), h("col")) : null;
    fill(table, cols, h("tbody", {}, rows));
    more.hidden = shown >= total;
    more.textContent = `Show ${Math.min(PAGE, total - shown)} more lines (${total - shown} left)`;
  }
  more.addEventListener("click", () => {
    limit += PAGE;
    paint();
  });
  paint();
  fill(el, 
    ...notes.map((n) => h("p", { class: "note" }, n)),
    hunks.length ? stats : null,
    hunks.length ? h("div", { class: "scroll" }, table) : null,
    hunks.length ? more : null,
    !hunks.length && !notes.length ? h("p", { class: "muted" }, "No content change.") : null,
  );
}
