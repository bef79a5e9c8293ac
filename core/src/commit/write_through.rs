//! Write-through: the daemon commits each pending write-through change (shared state such as a
//! tool's history, [`crate::policy::Policy::is_write_through`]) as soon as it can, with the
//! same per-file conflict check and crash safety as `wsfs commit`.
//!
//! What cannot go now stays pending and is retried at the next flush: a file the workspace has
//! open for writing (its content is not final), and a path the host changed since its base (a
//! conflict: the host's version is never overwritten; `wsfs commit --force` or `discard`
//! settles it). The other paths are applied; a conflict on one never holds back the rest,
//! except a rename's source, which waits for its destination.

use std::collections::HashSet;
use std::path::Path;

use super::plan::Scope;
use crate::api::{CommitReport, CommitRequest};
use crate::error::Result;
use crate::overlay::Overlay;
use crate::policy::Noise;
use crate::relpath::RelPath;

/// Commits every pending write-through change that can go to the host now. `None` when there
/// is none (no I/O beyond the change set's counters).
pub fn flush_write_through(ov: &Overlay, backups_root: &Path) -> Result<Option<CommitReport>> {
    if ov.changes().write_through_pending() == 0 {
        return Ok(None);
    }
    let pending = super::status::pending_where(ov, |n| n == Noise::WriteThrough)?;
    let mut only: HashSet<RelPath> = pending
        .into_iter()
        .filter(|c| !c.secret)
        .map(|c| c.path)
        .collect();
    if only.is_empty() {
        return Ok(None);
    }
    // A write-through file in a directory the workspace made needs that directory on the host:
    // take the new directories above it along (a directory holds no content to review).
    let new_dirs: Vec<RelPath> = super::status::pending(ov)?
        .into_iter()
        .filter(|c| c.current.is_dir() && c.base.is_absent() && !c.protected && !c.secret)
        .filter(|c| only.iter().any(|p| p.starts_with(&c.path) && p != &c.path))
        .map(|c| c.path)
        .collect();
    only.extend(new_dirs);
    let scope = Scope {
        only: Some(&only),
        partial: true,
        merged: None,
        hunks: None,
    };
    let report = super::commit_in(
        ov,
        backups_root,
        &CommitRequest::default(),
        scope,
        super::Versions::default(),
        &|_, _| {},
    )?;
    Ok(Some(report))
}
