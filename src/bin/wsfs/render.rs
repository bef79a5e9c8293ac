//! Human-readable output of each command (JSON output is the API types, printed as is).

use std::io::Write;

use wsfs::api::{Change, ChangeKind, CommitReport, FileDiff, VerifyReport, WorkspaceInfo};
use wsfs::journal::record::{Op, Record};

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
    if c.scratch {
        f.push_str("  [scratch]");
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

/// `wsfs status`: one `X path` line per change, like `git status --short`.
pub fn status(out: &mut impl Write, changes: &[Change]) -> std::io::Result<()> {
    for c in shown(changes) {
        match &c.from {
            Some(from) => writeln!(
                out,
                "{}  {} -> {}{}",
                c.kind.letter(),
                from,
                c.path,
                flags(c)
            )?,
            None => writeln!(out, "{}  {}{}", c.kind.letter(), c.path, flags(c))?,
        }
    }
    Ok(())
}

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
        if let Some(line) = header_line(c) {
            writeln!(out, "{}", pal.paint("1", &line))?;
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
    if let Some(from) = &c.from {
        return Some(format!("renamed from {from}"));
    }
    match (bk, ck) {
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
        File { mode, .. } | Dir { mode } | Special { mode } => Some(*mode),
        Symlink { .. } | Absent => None,
    }
}

/// `wsfs diff --stat`.
pub fn diff_stat(out: &mut impl Write, diffs: &[FileDiff], pal: Palette) -> std::io::Result<()> {
    let width = diffs
        .iter()
        .map(|d| d.change.path.display().len())
        .max()
        .unwrap_or(0);
    let (mut add, mut del) = (0, 0);
    for d in diffs {
        add += d.added_lines;
        del += d.removed_lines;
        let n = d.added_lines + d.removed_lines;
        let bar = if d.binary {
            "Bin".to_string()
        } else {
            let scale = |k: u64| if n > 50 { k * 50 / n } else { k } as usize;
            format!(
                "{n:>5} {}{}",
                pal.paint("32", &"+".repeat(scale(d.added_lines))),
                pal.paint("31", &"-".repeat(scale(d.removed_lines)))
            )
        };
        writeln!(out, " {:<width$} | {bar}", d.change.path.display())?;
    }
    writeln!(
        out,
        " {} file{} changed, {add} insertion{}(+), {del} deletion{}(-)",
        diffs.len(),
        if diffs.len() == 1 { "" } else { "s" },
        if add == 1 { "" } else { "s" },
        if del == 1 { "" } else { "s" },
    )
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
        writeln!(out, "{verb}  {p}")?;
    }
    if r.applied.is_empty() && r.busy.is_empty() {
        writeln!(out, "nothing to commit")?;
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
    for p in &r.busy {
        writeln!(
            out,
            "busy     {p}: open for writing in the workspace, not committed (still pending)"
        )?;
    }
    if !r.busy.is_empty() {
        writeln!(
            out,
            "{} busy path{} left pending; commit again once the writer has closed {}",
            r.busy.len(),
            if r.busy.len() == 1 { "" } else { "s" },
            if r.busy.len() == 1 { "it" } else { "them" }
        )?;
    }
    Ok(())
}

/// `wsfs log`: one line per record.
pub fn log(out: &mut impl Write, records: &[Record]) -> std::io::Result<()> {
    for r in records {
        let secs = r.time_ns.div_euclid(1_000_000_000);
        let op = op_name(&r.draft.op);
        let mut line = format!("{:>6}  {}  {:<12}", r.seq, utc(secs), op);
        match &r.draft.op {
            Op::CommitBegin { id, paths } => {
                line.push_str(&format!(" {id} ({} paths)", paths.len()))
            }
            Op::CommitApplied { id } | Op::CommitEnd { id } => line.push_str(&format!(" {id}")),
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
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn op_name(op: &Op) -> String {
    serde_json::to_value(op)
        .ok()
        .and_then(|v| v.get("op").and_then(|o| o.as_str().map(str::to_owned)))
        .unwrap_or_else(|| "?".into())
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) from Unix seconds.
fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
    use super::utc;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_795_000_000), "2026-11-18 11:06:40");
    }
}
