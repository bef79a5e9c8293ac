//! Human-readable output of each command (JSON output is the API types, printed as is).

use std::io::Write;

use wsfs::api::{
    Change, ChangeKind, CommitReport, ExportReport, FileDiff, VerifyReport, WorkspaceInfo,
};
use wsfs::journal::record::{Op, Record, Writer};
use wsfs::relpath::RelPath;

use crate::cli::DateStyle;

/// ANSI colours for diffs, or none.
#[derive(Clone, Copy)]
pub struct Palette {
    on: bool,
}

impl Palette {
    /// Colours when `on`.
    pub fn new(on: bool) -> Self {
        Palette { on }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// `wsfs list`.
pub fn list(out: &mut impl Write, list: &[WorkspaceInfo]) -> std::io::Result<()> {
    if list.is_empty() {
        return writeln!(
            out,
            "no workspaces; create one with `wsfs mount PROJECT_DIR`"
        );
    }
    writeln!(
        out,
        "{:<20} {:>8}  {:<40} PROJECT",
        "NAME", "PENDING", "MOUNTPOINT"
    )?;
    for w in list {
        let mp = match (&w.problem, &w.mountpoint) {
            (Some(p), _) => format!("(broken: {p})"),
            (None, Some(m)) => m.display().to_string(),
            (None, None) => "(not mounted)".into(),
        };
        writeln!(
            out,
            "{:<20} {:>8}  {:<40} {}",
            w.name,
            w.pending,
            mp,
            w.project.display()
        )?;
    }
    Ok(())
}

fn flags(c: &Change) -> String {
    let mut f = String::new();
    if c.protected {
        f.push_str("  [protected]");
    }
    if c.current.is_device() {
        f.push_str("  [device: never committed]");
    }
    if c.scratch {
        f.push_str("  [scratch]");
    }
    if c.secret {
        f.push_str("  [secret, workspace-only]");
    }
    if c.write_through {
        f.push_str("  [write-through: not yet on the host]");
    }
    f
}

/// Changes a human wants to see: the deletion of a rename's source is shown by its `R` line.
fn shown(changes: &[Change]) -> impl Iterator<Item = &Change> {
    let sources: std::collections::HashSet<&wsfs::relpath::RelPath> =
        changes.iter().filter_map(|c| c.from.as_ref()).collect();
    changes
        .iter()
        .filter(move |c| !(c.kind == ChangeKind::Deleted && sources.contains(&c.path)))
}

/// Other workspaces of the same project that changed a path too, by path.
pub type AlsoIn = std::collections::BTreeMap<RelPath, Vec<String>>;

/// The other workspaces that changed `c`'s path (or, for a rename, its source), sorted.
fn also_in_of(c: &Change, also_in: &AlsoIn) -> Vec<String> {
    let mut names: Vec<String> = std::iter::once(&c.path)
        .chain(c.from.as_ref())
        .filter_map(|p| also_in.get(p))
        .flatten()
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `wsfs status`: one `X path` line per change, like `git status --short`; `[also in NAME]`
/// when another workspace of the same project changed the path too.
pub fn status(out: &mut impl Write, changes: &[Change], also_in: &AlsoIn) -> std::io::Result<()> {
    for c in shown(changes) {
        let mut marks = flags(c);
        let others = also_in_of(c, also_in);
        if !others.is_empty() {
            marks.push_str(&format!("  [also in {}]", others.join(", ")));
        }
        match &c.from {
            Some(from) => writeln!(out, "{}  {} -> {}{marks}", c.kind.letter(), from, c.path)?,
            None => writeln!(out, "{}  {}{marks}", c.kind.letter(), c.path)?,
        }
    }
    Ok(())
}

/// One change of `wsfs status --json`: the API's change and the other workspaces of the same
/// project that changed its path too.
#[derive(serde::Serialize)]
pub struct StatusEntry<'a> {
    #[serde(flatten)]
    change: &'a Change,
    also_in: Vec<String>,
}

/// `wsfs status --json`: every change with its `also_in` list.
pub fn with_also_in<'a>(changes: &'a [Change], also_in: &AlsoIn) -> Vec<StatusEntry<'a>> {
    changes
        .iter()
        .map(|change| StatusEntry {
            change,
            also_in: also_in_of(change, also_in),
        })
        .collect()
}

/// `1,234`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The one-line summaries of what `status` hides: scratch paths, git churn and write-through
/// paths not yet on the host.
pub fn hidden_summary(out: &mut impl Write, ws: &WorkspaceInfo, cmd: &str) -> std::io::Result<()> {
    let line = |n: u64, what: &str, under: &[String], flag: &str| {
        // `what` is "noun" or "noun|rest": the noun gets the plural s.
        let (what, rest) = what.split_once('|').unwrap_or((what, ""));
        let s = if n == 1 { "" } else { "s" };
        // The daemon names at most 5 groups; a 5th means "and more".
        let (shown, more) = if under.len() > 4 {
            (&under[..4], ", …")
        } else {
            (under, "")
        };
        format!(
            "{} {what}{s}{rest} under {}{more} — wsfs {cmd} {flag}",
            thousands(n),
            shown.join(", ")
        )
    };
    if ws.scratch > 0 {
        writeln!(
            out,
            "{}",
            line(ws.scratch, "scratch path", &ws.scratch_under, "--scratch")
        )?;
    }
    if ws.git_churn > 0 {
        writeln!(
            out,
            "{}",
            line(
                ws.git_churn,
                "git object/log path",
                &ws.git_churn_under,
                "--all"
            )
        )?;
    }
    if ws.write_through > 0 {
        // Normally gone within a fraction of a second; what stays is open for writing or held
        // back by a host change (a conflict).
        writeln!(
            out,
            "{}",
            line(
                ws.write_through,
                "write-through path| not yet on the host",
                &ws.write_through_under,
                "--all"
            )
        )?;
    }
    Ok(())
}

/// The line `wsfs diff` prints under the header of a protected path.
const PROTECTED_NOTE: &str = "protected: a change here can run code on the host; \
                              commit refuses it without --allow-protected";

/// `wsfs diff`: unified diffs, binary files named.
pub fn diff(out: &mut impl Write, diffs: &[FileDiff], pal: Palette) -> std::io::Result<()> {
    let changes: Vec<Change> = diffs.iter().map(|d| d.change.clone()).collect();
    let keep: std::collections::HashSet<&wsfs::relpath::RelPath> =
        shown(&changes).map(|c| &c.path).collect();
    for d in diffs.iter().filter(|d| keep.contains(&d.change.path)) {
        let c = &d.change;
        let from = c.from.as_ref().unwrap_or(&c.path);
        writeln!(
            out,
            "{}",
            pal.paint("1", &format!("diff --wsfs a/{from} b/{}", c.path))
        )?;
        if let Some(from) = &c.from {
            for line in [
                format!("similarity index {}%", d.similarity.unwrap_or(0)),
                format!("rename from {from}"),
                format!("rename to {}", c.path),
            ] {
                writeln!(out, "{}", pal.paint("1", &line))?;
            }
        }
        if let Some(line) = header_line(c) {
            writeln!(out, "{}", pal.paint("1", &line))?;
        }
        if c.protected {
            writeln!(out, "{}", pal.paint("1;31", PROTECTED_NOTE))?;
        }
        if let Some(label) = c.current.device_label() {
            let note = format!("{label}: device nodes are never committed; discard it");
            writeln!(out, "{}", pal.paint("1;31", &note))?;
        }
        if d.binary {
            writeln!(out, "Binary files a/{from} and b/{} differ", c.path)?;
            continue;
        }
        for line in d.unified.lines() {
            let painted = if line.starts_with("+++") || line.starts_with("---") {
                pal.paint("1", line)
            } else if line.starts_with('+') {
                pal.paint("32", line)
            } else if line.starts_with('-') {
                pal.paint("31", line)
            } else if line.starts_with("@@") {
                pal.paint("36", line)
            } else {
                line.to_string()
            };
            writeln!(out, "{painted}")?;
        }
    }
    Ok(())
}

/// git-style `new file mode 644` / `deleted dir mode 755` / `old mode … new mode …` line.
fn header_line(c: &Change) -> Option<String> {
    let (bk, ck) = (c.base.kind_word(), c.current.kind_word());
    let (bm, cm) = (mode_of(&c.base), mode_of(&c.current));
    let mode = |m: Option<u32>| m.map_or(String::new(), |m| format!(" mode {m:o}"));
    match (bk, ck) {
        _ if c.from.is_some() && bm != cm => Some(format!("old{} new{}", mode(bm), mode(cm))),
        _ if c.from.is_some() => None,
        ("absent", _) => Some(format!("new {ck}{}", mode(cm))),
        (_, "absent") => Some(format!("deleted {bk}{}", mode(bm))),
        _ if bk != ck => Some(format!(
            "type changed: {bk}{} -> {ck}{}",
            mode(bm),
            mode(cm)
        )),
        _ if bm != cm => Some(format!("old{} new{}", mode(bm), mode(cm))),
        _ => None,
    }
}

fn mode_of(s: &wsfs::journal::record::EntryState) -> Option<u32> {
    use wsfs::journal::record::EntryState::*;
    match s {
        File { mode, .. } | Dir { mode } | Special { mode, .. } => Some(*mode),
        Symlink { .. } | Absent => None,
    }
}

/// A file side: anything but a directory or nothing (git counts only files).
fn is_file(s: &wsfs::journal::record::EntryState) -> bool {
    !s.is_dir() && !s.is_absent()
}

/// git's name for a rename in a stat line: `a => b`, or `dir/{a => b}/rest` around the common
/// directory prefix and suffix (git's `pprint_rename`).
fn rename_name(a: &str, b: &str) -> String {
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let mut pfx = 0;
    let mut i = 0;
    while i < ab.len() && i < bb.len() && ab[i] == bb[i] {
        if ab[i] == b'/' {
            pfx = i + 1;
        }
        i += 1;
    }
    let mut sfx = 0;
    let adjust = usize::from(pfx > 0);
    let (mut ia, mut ib) = (ab.len() as isize, bb.len() as isize);
    let floor = pfx as isize - adjust as isize;
    while ia >= floor && ib >= floor {
        let (ca, cb) = (ab.get(ia as usize), bb.get(ib as usize));
        if ia < ab.len() as isize && ca != cb {
            break;
        }
        if ia < ab.len() as isize && ca == Some(&b'/') {
            sfx = ab.len() - ia as usize;
        }
        ia -= 1;
        ib -= 1;
    }
    let a_mid = ab.len().saturating_sub(pfx + sfx);
    let b_mid = bb.len().saturating_sub(pfx + sfx);
    let mid = |s: &str, n: usize| s.get(pfx..pfx + n).unwrap_or("").to_string();
    if pfx + sfx > 0 {
        format!(
            "{}{{{} => {}}}{}",
            &a[..pfx],
            mid(a, a_mid),
            mid(b, b_mid),
            &a[a.len() - sfx..]
        )
    } else {
        format!("{a} => {b}")
    }
}

/// git's `scale_linear`: at least one column for any change.
fn scale(it: u64, width: u64, max: u64) -> u64 {
    if it == 0 {
        0
    } else {
        1 + it * (width - 1) / max
    }
}

/// `wsfs diff --stat`, laid out as `git diff --stat` lays it out (`$COLUMNS` or 80 columns).
/// Directories are not files: they get no line and no count.
pub fn diff_stat(out: &mut impl Write, diffs: &[FileDiff], pal: Palette) -> std::io::Result<()> {
    let width: u64 = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c| c > 0)
        .unwrap_or(80);
    struct Row {
        name: String,
        added: u64,
        deleted: u64,
        binary: bool,
    }
    let rows: Vec<Row> = diffs
        .iter()
        .filter(|d| is_file(&d.change.base) || is_file(&d.change.current))
        .map(|d| {
            let c = &d.change;
            let name = match &c.from {
                Some(from) => rename_name(&from.display(), &c.path.display()),
                None => c.path.display(),
            };
            let size = |s: &wsfs::journal::record::EntryState| match s {
                wsfs::journal::record::EntryState::File { size, .. } => *size,
                _ => 0,
            };
            let (added, deleted) = match (d.binary, d.same_content) {
                (true, true) => (0, 0),
                (true, false) => (size(&c.current), size(&c.base)),
                (false, _) => (d.added_lines, d.removed_lines),
            };
            Row {
                name,
                added,
                deleted,
                binary: d.binary,
            }
        })
        .collect();
    let dec = |n: u64| n.to_string().len() as u64;
    let max_len = rows
        .iter()
        .map(|r| r.name.chars().count() as u64)
        .max()
        .unwrap_or(0);
    let mut bin_width = 0;
    let mut number_width = 0;
    let mut max_change = 0;
    for r in &rows {
        if r.binary {
            bin_width = bin_width.max(14 + dec(r.added) + dec(r.deleted));
            number_width = 3;
        } else {
            max_change = max_change.max(r.added + r.deleted);
        }
    }
    number_width = number_width.max(dec(max_change));
    let width = width.max(16 + 6 + number_width);
    let mut graph_width = if max_change + 4 > bin_width {
        max_change
    } else {
        bin_width - 4
    };
    let mut name_width = max_len;
    if name_width + number_width + 6 + graph_width > width {
        if graph_width > (width * 3 / 8).saturating_sub(number_width + 6) {
            graph_width = (width * 3 / 8).saturating_sub(number_width + 6).max(6);
        }
        if name_width > width.saturating_sub(number_width + 6 + graph_width) {
            name_width = width.saturating_sub(number_width + 6 + graph_width);
        } else {
            graph_width = width - number_width - 6 - name_width;
        }
    }
    let (mut total_add, mut total_del) = (0, 0);
    for r in &rows {
        let mut name: &str = &r.name;
        let mut prefix = "";
        let mut len = name_width as usize;
        if name.chars().count() > len {
            prefix = "...";
            len = len.saturating_sub(3);
            let skip = name.chars().count() - len;
            let cut = name.char_indices().nth(skip).map_or(name.len(), |(i, _)| i);
            name = &name[cut..];
            if let Some(i) = name.find('/') {
                name = &name[i..];
            }
        }
        let padding = len.saturating_sub(name.chars().count());
        let nw = number_width as usize;
        if r.binary {
            if r.added == 0 && r.deleted == 0 {
                writeln!(out, " {prefix}{name}{:padding$} | {:>nw$}", "", "Bin")?;
            } else {
                writeln!(
                    out,
                    " {prefix}{name}{:padding$} | {:>nw$} {} -> {} bytes",
                    "",
                    "Bin",
                    pal.paint("31", &r.deleted.to_string()),
                    pal.paint("32", &r.added.to_string())
                )?;
            }
            continue;
        }
        total_add += r.added;
        total_del += r.deleted;
        let (mut add, mut del) = (r.added, r.deleted);
        if graph_width <= max_change {
            let mut total = scale(add + del, graph_width, max_change);
            if total < 2 && add > 0 && del > 0 {
                total = 2;
            }
            if add < del {
                add = scale(add, graph_width, max_change);
                del = total - add;
            } else {
                del = scale(del, graph_width, max_change);
                add = total - del;
            }
        }
        let n = r.added + r.deleted;
        writeln!(
            out,
            " {prefix}{name}{:padding$} | {n:>nw$}{}{}{}",
            "",
            if n > 0 { " " } else { "" },
            pal.paint("32", &"+".repeat(add as usize)),
            pal.paint("31", &"-".repeat(del as usize))
        )?;
    }
    let files = rows.len();
    if files == 0 {
        return writeln!(out, " 0 files changed");
    }
    let mut line = format!(" {files} file{} changed", if files == 1 { "" } else { "s" });
    if total_add > 0 || total_del == 0 {
        line.push_str(&format!(
            ", {total_add} insertion{}(+)",
            if total_add == 1 { "" } else { "s" }
        ));
    }
    if total_del > 0 || total_add == 0 {
        line.push_str(&format!(
            ", {total_del} deletion{}(-)",
            if total_del == 1 { "" } else { "s" }
        ));
    }
    writeln!(out, "{line}")
}

/// `wsfs commit`: what was applied and what was refused.
pub fn commit(out: &mut impl Write, r: &CommitReport) -> std::io::Result<()> {
    let verb = if r.dry_run { "would apply" } else { "applied" };
    if !r.conflicts.is_empty() {
        for c in &r.conflicts {
            writeln!(out, "refused  {}: {} — {}", c.path, c.reason, c.hint)?;
        }
        if r.applied.is_empty() {
            writeln!(
                out,
                "commit refused: {} path{} in the way, nothing applied",
                r.conflicts.len(),
                if r.conflicts.len() == 1 { "" } else { "s" }
            )?;
            return Ok(());
        }
    }
    for p in &r.applied {
        if r.merged.contains(p) {
            writeln!(out, "{verb}  {p} (merged with the host's changes)")?;
        } else if r.partial.contains(p) {
            writeln!(out, "{verb}  {p} (chosen hunks; the rest stays pending)")?;
        } else {
            writeln!(out, "{verb}  {p}")?;
        }
    }
    if r.applied.is_empty() && r.busy.is_empty() {
        if !r.secrets.is_empty() {
            writeln!(out, "nothing to commit but workspace-only secrets")?;
        } else if r.scratch_pending > 0 {
            writeln!(out, "nothing to commit but scratch")?;
        } else {
            writeln!(out, "nothing to commit")?;
        }
    } else if !r.dry_run {
        writeln!(
            out,
            "committed {} path{} (commit {})",
            r.applied.len(),
            if r.applied.len() == 1 { "" } else { "s" },
            r.id
        )?;
    }
    if let Some(b) = &r.backup_dir {
        writeln!(out, "overwritten host files were saved in {}", b.display())?;
    }
    if r.scratch_pending > 0 {
        let n = r.scratch_pending;
        writeln!(
            out,
            "{} scratch path{} left pending (not committed; `wsfs status --scratch` lists \
             them, `wsfs commit --include-scratch` commits them, `wsfs discard` drops them)",
            thousands(n),
            if n == 1 { "" } else { "s" }
        )?;
    }
    for p in &r.secrets {
        writeln!(
            out,
            "secret   {p}: a hide rule matches it; the workspace's own secret is never committed (still pending)"
        )?;
    }
    for p in &r.busy {
        writeln!(
            out,
            "busy     {p}: open for writing in the workspace, or changed while the commit ran; \
             not committed (still pending)"
        )?;
    }
    if !r.busy.is_empty() {
        writeln!(
            out,
            "{} busy path{} left pending; commit again once the writer has closed {} (a host \
             change since the check is then checked again)",
            r.busy.len(),
            if r.busy.len() == 1 { "" } else { "s" },
            if r.busy.len() == 1 { "it" } else { "them" }
        )?;
    }
    Ok(())
}

/// `wsfs export`'s summary, on stderr (stdout gets the commit id).
pub fn export(r: &ExportReport) {
    let n = r.paths.len();
    let parent = r
        .parent
        .as_deref()
        .map_or("no parent: HEAD has no commit yet".to_string(), |p| {
            format!("parent HEAD {}", &p[..p.len().min(12)])
        });
    eprintln!(
        "branch {}: commit {} ({parent}), {n} path{}",
        r.branch,
        &r.commit[..r.commit.len().min(12)],
        if n == 1 { "" } else { "s" }
    );
    if let Some(old) = &r.replaced {
        eprintln!("replaced {} (was {old})", r.branch);
    }
    for l in &r.left_out {
        eprintln!("left out: {}: {}", l.path, l.reason);
    }
}

/// `wsfs log`: one line per record.
pub fn log(out: &mut impl Write, records: &[Record], date: DateStyle) -> std::io::Result<()> {
    let zone = match date {
        DateStyle::Local => jiff::tz::TimeZone::system(),
        DateStyle::Utc => jiff::tz::TimeZone::UTC,
    };
    for r in records {
        let op = op_name(&r.draft.op);
        let mut line = format!(
            "{:>6}  {}  {:<12}",
            r.seq,
            record_time(r.time_ns, &zone),
            op
        );
        match &r.draft.op {
            Op::CommitBegin { id, paths, .. } => {
                line.push_str(&format!(" {id} ({} paths)", paths.len()))
            }
            Op::CommitApplied { id } | Op::CommitEnd { id } | Op::UndoEnd { id } => {
                line.push_str(&format!(" {id}"))
            }
            Op::UndoBegin { id, commit, paths } => {
                line.push_str(&format!(" {id} of commit {commit} ({} paths)", paths.len()))
            }
            Op::UndoApplied { id } => line.push_str(&format!(" {id} {}", r.draft.path)),
            Op::Gc { keep } => line.push_str(&format!(" kept the last {keep} commits")),
            Op::Checkpoint {
                id,
                message,
                entries,
            } => line.push_str(&format!(" {id} ({} paths) {message}", entries.len())),
            Op::Discard { paths } if paths.is_empty() => line.push_str(" (everything)"),
            Op::Discard { paths } => {
                let names: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
                line.push_str(&format!(" {}", names.join(" ")));
            }
            _ => {
                line.push_str(&format!(" {}", r.draft.path));
                if let Some(to) = &r.draft.to {
                    line.push_str(&format!(" -> {}", to.path));
                }
            }
        }
        line.push_str(&format!("  [{}]", writer_label(r.draft.by.as_ref())));
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// `comm pid` of a record's writer, with ` container <12 digits>` in a container; `wsfs` for
/// records no process made (commit and discard bookkeeping, API actions, recovery).
fn writer_label(by: Option<&Writer>) -> String {
    match by {
        None => "wsfs".into(),
        Some(w) => match &w.container {
            Some(c) => format!("{} {} container {}", w.comm, w.pid, &c[..c.len().min(12)]),
            None => format!("{} {}", w.comm, w.pid),
        },
    }
}

/// `wsfs checkpoints`: one line per checkpoint.
pub fn checkpoints(
    out: &mut impl Write,
    list: &[wsfs::api::CheckpointInfo],
    date: DateStyle,
) -> std::io::Result<()> {
    let zone = match date {
        DateStyle::Local => jiff::tz::TimeZone::system(),
        DateStyle::Utc => jiff::tz::TimeZone::UTC,
    };
    if list.is_empty() {
        return writeln!(out, "no checkpoints (`wsfs checkpoint -m MSG` takes one)");
    }
    for c in list {
        writeln!(
            out,
            "{:<6} {}  {:>5} changed  {}",
            c.id,
            record_time(c.time_ns, &zone),
            c.changed,
            c.message
        )?;
    }
    Ok(())
}

fn op_name(op: &Op) -> String {
    serde_json::to_value(op)
        .ok()
        .and_then(|v| v.get("op").and_then(|o| o.as_str().map(str::to_owned)))
        .unwrap_or_else(|| "?".into())
}

/// `YYYY-MM-DD HH:MM:SS +hhmm` of a record time (nanoseconds since the epoch) in `zone`.
pub(crate) fn record_time(ns: i64, zone: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(t) => t
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S %z")
            .to_string(),
        Err(_) => format!("@{ns}ns"),
    }
}

/// `wsfs verify`.
pub fn verify(out: &mut impl Write, r: &VerifyReport) -> std::io::Result<()> {
    writeln!(
        out,
        "journal: {} records, hash chain {}; {} upper file{} match their recorded hash",
        r.records,
        if r.chain_ok { "intact" } else { "BROKEN" },
        r.files_ok,
        if r.files_ok == 1 { "" } else { "s" }
    )?;
    for p in &r.problems {
        writeln!(out, "problem: {p}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{record_time, rename_name, thousands};

    #[test]
    fn rename_names_like_git() {
        assert_eq!(rename_name("a.txt", "a2.txt"), "a.txt => a2.txt");
        assert_eq!(rename_name("src/a.rs", "src/b.rs"), "src/{a.rs => b.rs}");
        assert_eq!(rename_name("a/x/f", "b/x/f"), "{a => b}/x/f");
        assert_eq!(rename_name("d/a/f", "d/b/f"), "d/{a => b}/f");
        assert_eq!(rename_name("d/f", "d/e/f"), "d/{ => e}/f");
        assert_eq!(rename_name("mv/a", "moved/a"), "{mv => moved}/a");
        assert_eq!(thousands(4854), "4,854");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn record_times_in_utc_and_a_fixed_offset() {
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(record_time(0, &utc), "1970-01-01 00:00:00 +0000");
        assert_eq!(
            record_time(951_782_400_000_000_000, &utc),
            "2000-02-29 00:00:00 +0000"
        );
        let cet = jiff::tz::TimeZone::fixed(jiff::tz::offset(1));
        assert_eq!(
            record_time(1_795_000_000_000_000_000, &cet),
            "2026-11-18 12:06:40 +0100"
        );
    }
}
