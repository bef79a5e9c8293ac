// One workspace: its changes as a live tree, the selected file's diff, per-file commit and
// discard (the CLI's conflict rules and reports), and a terminal panel.
// Shortcuts: j/k next/previous file, c commit, d discard, v unified/side by side.
import { api, ApiError } from "./api.js";
import { debounce, fill, h, pathKey, pathText, toast } from "./dom.js";
import { subscribe } from "./live.js";
import { badges, marker, renderTree } from "./tree.js";
import { describeState, renderDiff } from "./diff.js";
import { openTerminal } from "./terminal.js";

export function changesView(main, name) {
  const state = {
    changes: [],
    rows: [],
    selected: null, // path key
    show: "review",
    mode: localStorage.getItem("wsfs-diff-mode") || "unified",
    conflicts: new Map(), // path key → Conflict of the last refused commit
    lastDiffOf: null, // JSON of the change whose diff is shown
  };
  const tree = h("ul", { role: "tree", "aria-label": "Changed files", id: "tree" });
  const counts = h("span", { class: "counts", id: "counts", role: "status" });
  const showSel = h(
    "select",
    { id: "show", "aria-label": "Which changes", onchange: (e) => ((state.show = e.target.value), load()) },
    h("option", { value: "review" }, "For review"),
    h("option", { value: "all" }, "All (with scratch and git churn)"),
    h("option", { value: "scratch" }, "Scratch only"),
  );
  const title = h("h2", { id: "diff-title", class: "path" }, "Select a file");
  const meta = h("div", { class: "meta" });
  const actions = h("div", { class: "actions", hidden: true });
  const report = h("div", { class: "report", role: "status", "aria-live": "polite" });
  const body = h("div", { id: "diff-body" });
  const pane = h("section", { class: "pane", "aria-labelledby": "diff-title", id: "diff" }, title, meta, actions, report, body);
  const termBox = h("section", { class: "terminal-panel", "aria-label": "Terminal", hidden: true });
  let term = null;
  const termButton = h("button", { type: "button", id: "open-terminal", "aria-expanded": "false", "aria-controls": "terminal" }, "Terminal");
  termButton.addEventListener("click", () => {
    if (term) {
      term.close();
      term = null;
      termBox.hidden = true;
      termButton.setAttribute("aria-expanded", "false");
      termButton.textContent = "Terminal";
      return;
    }
    termBox.hidden = false;
    termButton.setAttribute("aria-expanded", "true");
    termButton.textContent = "Close terminal";
    term = openTerminal(termBox, name);
    termBox.scrollIntoView({ block: "nearest" });
  });

  fill(main, 
    h(
      "div",
      { class: "toolbar" },
      h("h1", {}, name),
      counts,
      h("label", { for: "show", class: "sr-only" }, "Show"),
      showSel,
      h("a", { href: `#/w/${encodeURIComponent(name)}/log`, class: "button" }, "Journal"),
      termButton,
      h("button", { type: "button", class: "quiet", "aria-label": "Keyboard shortcuts", onclick: () => toast("j / k: next / previous file · c: commit · d: discard · v: unified / side by side") }, "?"),
    ),
    h("div", { class: "columns" }, h("nav", { class: "tree", "aria-label": "Changed files" }, tree), pane),
    termBox,
  );
  showSel.value = state.show;

  const current = () => state.changes.find((c) => pathKey(c.path) === state.selected);

  function paintTree() {
    // Repainting replaces the rows: keep the keyboard focus on the selected one.
    const hadFocus = tree.contains(document.activeElement);
    state.rows = renderTree(tree, state.changes, state.selected, state.conflicts, (c) => select(c, true));
    if (hadFocus) (state.rows.find((r) => pathKey(r.change.path) === state.selected) || state.rows[0])?.button.focus();
    counts.textContent = `${state.changes.length} change${state.changes.length === 1 ? "" : "s"}`;
    if (!state.changes.length) fill(tree, h("li", { class: "muted" }, "No pending changes."));
  }

  async function load() {
    state.changes = await api.status(name, state.show);
    if (state.selected && !current()) {
      state.selected = null;
      state.lastDiffOf = null;
      showNothing();
    }
    paintTree();
    const c = current();
    // Re-read the diff when the shown file changed again.
    if (c && JSON.stringify(c) !== state.lastDiffOf) showDiff(c);
  }

  function showNothing() {
    title.textContent = "Select a file";
    fill(meta, );
    actions.hidden = true;
    fill(body, h("p", { class: "muted" }, "j / k move through the files."));
  }

  function select(c, focus) {
    state.selected = pathKey(c.path);
    fill(report, );
    paintTree();
    showDiff(c);
    if (focus) state.rows.find((r) => pathKey(r.change.path) === state.selected)?.button.focus();
    // One column (a phone): bring the diff into view.
    if (focus && window.matchMedia("(max-width: 760px)").matches) pane.scrollIntoView({ block: "start" });
  }

  async function showDiff(c) {
    state.lastDiffOf = JSON.stringify(c);
    delete body.dataset.path;
    title.textContent = pathText(c.path);
    fill(meta, h("span", { class: `marker m-${c.kind}` }, marker(c.kind)), ` ${c.kind.replace("_", " ")}`, c.from != null ? ` from ${pathText(c.from)}` : "", " ", badges(c, state.conflicts.get(pathKey(c.path))));
    actions.hidden = false;
    fill(actions, 
      h("button", { type: "button", id: "commit-file", onclick: () => commit(c, {}) }, "Commit file ", h("kbd", {}, "c")),
      h("button", { type: "button", id: "discard-file", class: "danger", onclick: () => discard(c) }, "Discard ", h("kbd", {}, "d")),
      h(
        "button",
        { type: "button", id: "diff-mode", "aria-pressed": state.mode === "split" ? "true" : "false", onclick: () => toggleMode() },
        state.mode === "split" ? "Unified" : "Side by side",
        " ",
        h("kbd", {}, "v"),
      ),
    );
    const conflict = state.conflicts.get(pathKey(c.path));
    if (conflict) fill(report, conflictPanel(c, conflict));
    try {
      const [fd] = await api.diff(name, [c.path]);
      if (pathKey(c.path) !== state.selected) return;
      if (fd) renderDiff(body, fd, state.mode);
      else fill(body, h("p", { class: "muted" }, "No diff (the change is gone)."));
      // Which file the diff shown is of (tests and scripts wait on it).
      body.dataset.path = pathText(c.path);
      state.lastFd = fd;
    } catch (e) {
      fill(body, h("p", { class: "error" }, e.message));
    }
  }

  function toggleMode() {
    state.mode = state.mode === "split" ? "unified" : "split";
    localStorage.setItem("wsfs-diff-mode", state.mode);
    const c = current();
    if (c) showDiff(c);
  }

  function conflictPanel(c, k) {
    const opt = k.reason === "protected" ? { allow_protected: true } : k.reason === "host_changed" ? { force: true } : null;
    return h(
      "div",
      { class: "conflict-panel" },
      h("h3", {}, `Conflict: ${k.reason.replace("_", " ")}`),
      h(
        "dl",
        {},
        h("dt", {}, "base"),
        h("dd", {}, describeState(k.base), k.base_hash ? h("code", {}, ` ${k.base_hash.slice(0, 12)}`) : null),
        h("dt", {}, "host"),
        h("dd", {}, describeState(k.host), k.host_hash ? h("code", {}, ` ${k.host_hash.slice(0, 12)}`) : null),
        h("dt", {}, "workspace"),
        h("dd", {}, describeState(k.overlay), k.overlay_hash ? h("code", {}, ` ${k.overlay_hash.slice(0, 12)}`) : null),
      ),
      h("p", {}, k.hint),
      opt
        ? h("button", { type: "button", class: "danger", onclick: () => commit(c, opt) }, opt.force ? "Overwrite the host (its version is backed up)" : "Commit this protected path")
        : null,
    );
  }

  async function commit(c, extra) {
    const req = { paths: [c.path], dry_run: false, force: false, allow_protected: false, include_scratch: !!c.scratch, keep_setid: false, ...extra };
    try {
      const r = await api.commit(name, req);
      const key = pathKey(c.path);
      if (r.conflicts.length) {
        for (const k of r.conflicts) state.conflicts.set(pathKey(k.path), k);
        fill(report, h("p", { class: "error" }, `Commit refused: ${r.conflicts.length} conflict${r.conflicts.length === 1 ? "" : "s"}; nothing applied.`), ...r.conflicts.filter((k) => pathKey(k.path) === key).map((k) => conflictPanel(c, k)));
        paintTree();
        return;
      }
      state.conflicts.delete(key);
      const busy = r.busy?.length ? ` (${r.busy.length} still open for writing, left pending)` : "";
      toast(`Committed ${r.applied.map(pathText).join(", ") || "nothing"}${busy}${r.backup_dir ? `; host versions backed up in ${r.backup_dir}` : ""}`);
      next(1, true);
      await load();
    } catch (e) {
      toast(e instanceof ApiError ? e.message : String(e), true);
    }
  }

  async function discard(c) {
    if (!confirm(`Discard the workspace's changes to ${pathText(c.path)}? They are dropped for good; the host is not touched.`)) return;
    try {
      const r = await api.discard(name, [c.path]);
      toast(`Discarded ${r.discarded.map(pathText).join(", ") || "nothing"}`);
      state.conflicts.delete(pathKey(c.path));
      next(1, true);
      await load();
    } catch (e) {
      toast(e.message, true);
    }
  }

  /** Moves the selection by `step` rows; `away`: the current row is going away. */
  function next(step, away = false) {
    const i = state.rows.findIndex((r) => pathKey(r.change.path) === state.selected);
    const rows = state.rows;
    if (!rows.length) return;
    let j = i < 0 ? (step > 0 ? 0 : rows.length - 1) : i + step;
    if (away && j >= rows.length) j = i - 1;
    if (j < 0 || j >= rows.length) {
      if (away) state.selected = null;
      return;
    }
    select(rows[j].change, !away);
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t.closest?.(".terminal-panel") || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)) return;
    const c = current();
    if (e.key === "j") next(1);
    else if (e.key === "k") next(-1);
    else if (e.key === "c" && c) commit(c, {});
    else if (e.key === "d" && c) discard(c);
    else if (e.key === "v") toggleMode();
    else return;
    e.preventDefault();
  }
  document.addEventListener("keydown", onKey);

  const reload = debounce(() => load().catch(() => {}), 20);
  const unsubscribe = subscribe((ev) => {
    if (ev === null || ev.workspace === name) reload();
  });
  showNothing();
  load().catch((e) => fill(tree, h("li", { class: "error" }, e.message)));
  return () => {
    unsubscribe();
    document.removeEventListener("keydown", onKey);
    if (term) term.close();
  };
}
