//! Human output of `wsfs undo` and `wsfs log --commits`.

use std::io::Write;

use crate::cli::DateStyle;
use crate::render::record_time;

/// `wsfs undo`.
pub fn undo(out: &mut impl Write, r: &wsfs::api::UndoReport) -> std::io::Result<()> {
    for c in &r.conflicts {
        writeln!(out, "refused  {}: {} — {}", c.path, c.reason, c.hint)?;
    }
    if r.id.is_empty() {
        writeln!(
            out,
            "undo of commit {} refused: {} path{} in the way, nothing applied",
            r.commit,
            r.conflicts.len(),
            if r.conflicts.len() == 1 { "" } else { "s" }
        )?;
        return Ok(());
    }
    for p in &r.restored {
        writeln!(out, "restored  {p}")?;
    }
    writeln!(
        out,
        "undid commit {} ({} path{} put back on the host; the workspace still has its version, pending again — `wsfs status`)",
        r.commit,
        r.restored.len(),
        if r.restored.len() == 1 { "" } else { "s" }
    )?;
    if let Some(b) = &r.backup_dir {
        writeln!(
            out,
            "host versions it replaced were saved in {}",
            b.display()
        )?;
    }
    Ok(())
}

/// `wsfs log --commits`: one line per commit, then its paths (`A` created, `M` modified,
/// `D` deleted, `T` type changed; `?` when the commit kept no prior state).
pub fn commits(
    out: &mut impl Write,
    commits: &[wsfs::api::CommitInfo],
    date: DateStyle,
) -> std::io::Result<()> {
    let zone = match date {
        DateStyle::Local => jiff::tz::TimeZone::system(),
        DateStyle::Utc => jiff::tz::TimeZone::UTC,
    };
    for c in commits {
        let state = match (c.undone_by.as_deref(), c.not_undoable.as_deref()) {
            (Some(u), _) => format!("undone by {u}"),
            (None, None) => "can be undone".to_string(),
            (None, Some("no_versions")) => "cannot be undone: no versions kept".to_string(),
            (None, Some("collected")) => "cannot be undone: versions dropped by gc".to_string(),
            (None, Some(other)) => format!("cannot be undone: {other}"),
        };
        writeln!(
            out,
            "commit {}  {}  {} path{}  ({state})",
            c.id,
            record_time(c.time_ns, &zone),
            c.paths.len(),
            if c.paths.len() == 1 { "" } else { "s" }
        )?;
        for p in &c.paths {
            let letter = match &p.before {
                None => '?',
                Some(b) if b.is_absent() => 'A',
                Some(_) if p.after.is_absent() => 'D',
                Some(b) if b.kind_word() != p.after.kind_word() => 'T',
                Some(_) => 'M',
            };
            writeln!(out, "    {letter}  {}", p.path)?;
        }
    }
    Ok(())
}
