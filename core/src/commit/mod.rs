//! Commit and discard: the only way the host project ever changes.
//!
//! A commit compares each selected change's *base* (the host state the overlay started from)
//! with the host's state now. Equal: apply. Different: a conflict, and by default nothing at all
//! is applied. Applying is crash-safe: a `CommitBegin` record lists the paths; new content goes
//! to temporary files beside their targets, made durable (an fsync each for a few regular files,
//! one `syncfs` for a large batch); then each is
//! renamed into place and a `CommitApplied` record written; deletions follow (deepest first);
//! touched directories are fsynced; `CommitEnd` closes it. After a crash, [`roll_forward`]
//! finishes the commit: a path whose host state already equals the new state is skipped, so
//! applying twice is harmless.
//!
//! Files by job: `plan` (select, busy, conflict check, unchanged paths), `seen` (the host
//! state the check read, reused and re-proved while applying), `apply` (the phases that write
//! the host), `recover` (roll-forward), `workers` (thread pool and phase timer), `host`
//! (safe host writes), `status` (pending changes), `merge` (`commit --merge`: 3-way merges of
//! files the host changed).

mod apply;
pub mod host;
pub(crate) mod hunks;
pub(crate) mod keep;
pub mod merge;
mod plan;
mod recover;
mod seen;
pub mod status;
#[cfg(test)]
mod tests;
pub(crate) mod workers;
mod write_through;

use std::path::{Path, PathBuf};

use crate::api::{CommitReport, CommitRequest, DiscardReport};
use crate::error::Result;
use crate::journal::record::{Draft, Op};
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::store::ContentStore;
pub use recover::roll_forward;
use workers::PhaseTimer;
pub use write_through::flush_write_through;

/// Commits the changes `req` selects. Paths the workspace has open for writing are not
/// committed (their content is not final): they stay pending and are listed in
/// [`CommitReport::busy`].
/// With a `store`, what the commit replaces and writes is kept there and the prior states
/// recorded, so `wsfs undo` can put it back ([`keep`]).
pub fn commit(
    ov: &Overlay,
    backups_root: &Path,
    req: &CommitRequest,
    store: Option<&ContentStore>,
    progress: &dyn Fn(u64, u64),
) -> Result<CommitReport> {
    let versions = Versions {
        store,
        resume: None,
    };
    commit_in(
        ov,
        backups_root,
        req,
        plan::Scope::default(),
        versions,
        progress,
    )
}

/// Where a commit keeps its versions, and whether it continues one a crash interrupted.
#[derive(Clone, Copy, Default)]
pub(super) struct Versions<'a> {
    /// Keep replaced and new content here and record prior states (`None`: not undoable).
    pub store: Option<&'a ContentStore>,
    /// Continue this commit (its `commit_begin`, with the prior states, is in the journal;
    /// the roll-forward writes its `commit_end`): its remaining paths are recorded under its
    /// own id, so an undo finds them all.
    pub resume: Option<&'a str>,
}

/// [`commit`], and with `req.merge`, first a 3-way merge of each text file the host changed
/// since the workspace based its change on it (see [`merge`]): clean merges are written into
/// the workspace and applied; the rest of the commit is applied too, and what could not be
/// merged is reported as a conflict saying why (reason `no_base`, `merge_conflict`, `busy` or
/// `host_changed`) and stays pending. `project` is the host project's path (its git
/// repository holds the bases).
pub fn commit_merging(
    ov: &Overlay,
    backups_root: &Path,
    project: &Path,
    req: &CommitRequest,
    store: Option<&ContentStore>,
    progress: &dyn Fn(u64, u64),
) -> Result<CommitReport> {
    let versions = Versions {
        store,
        resume: None,
    };
    if !req.hunks.is_empty() {
        return commit_hunks(ov, backups_root, req, versions, progress);
    }
    if !req.merge {
        return commit(ov, backups_root, req, store, progress);
    }
    ov.journal().check_unchanged()?;
    let first = plan::plan(ov, req, plan::Scope::default())?;
    let prepared = merge::prepare(ov, project, req, &first.conflicts)?;
    let scope = plan::Scope {
        only: None,
        partial: true,
        merged: Some(&prepared.merged),
        hunks: None,
    };
    let mut report = commit_in(ov, backups_root, req, scope, versions, progress)?;
    for c in &mut report.conflicts {
        if let Some((reason, hint)) = prepared.unresolved.get(&c.path) {
            c.reason = reason.clone();
            c.hint = hint.clone();
        }
    }
    report.merged = report
        .applied
        .iter()
        .filter(|p| prepared.merged.contains_key(*p))
        .cloned()
        .collect();
    Ok(report)
}

/// A commit of the hunks `req.hunks` chooses (see [`hunks`]) and of the whole changes at
/// `req.paths`.
fn commit_hunks(
    ov: &Overlay,
    backups_root: &Path,
    req: &CommitRequest,
    versions: Versions<'_>,
    progress: &dyn Fn(u64, u64),
) -> Result<CommitReport> {
    ov.journal().check_unchanged()?;
    let scratch = backups_root.parent().unwrap_or(backups_root);
    let (partial, whole) = hunks::prepare(ov, req, scratch)?;
    let mut whole_req = req.clone();
    whole_req.hunks.clear();
    whole_req.paths.extend(whole);
    whole_req.paths.extend(partial.keys().cloned());
    if whole_req.paths.is_empty() {
        return Ok(CommitReport {
            dry_run: req.dry_run,
            ..Default::default()
        });
    }
    let scope = plan::Scope {
        only: None,
        partial: false,
        merged: None,
        hunks: Some(&partial),
    };
    let mut report = commit_in(ov, backups_root, &whole_req, scope, versions, progress)?;
    report.partial = report
        .applied
        .iter()
        .filter(|p| partial.contains_key(*p))
        .cloned()
        .collect();
    Ok(report)
}

/// [`commit`] narrowed to `scope`.
fn commit_in(
    ov: &Overlay,
    backups_root: &Path,
    req: &CommitRequest,
    scope: plan::Scope<'_>,
    versions: Versions<'_>,
    progress: &dyn Fn(u64, u64),
) -> Result<CommitReport> {
    let mut timer = PhaseTimer::start();
    // Never commit from a journal that no longer verifies (edited behind our back while the
    // workspace is open): the change set in memory may not be what the journal says.
    ov.journal().check_unchanged()?;
    let plan = plan::plan(ov, req, scope)?;
    let mut report = CommitReport {
        dry_run: req.dry_run,
        busy: plan.busy.into_iter().collect(),
        secrets: plan.secrets,
        ..Default::default()
    };
    report.conflicts = plan.conflicts;
    if !report.conflicts.is_empty() && !scope.partial {
        return Ok(report);
    }
    let ready = plan.ready;
    report.applied = ready.iter().map(|c| c.change.path.clone()).collect();
    let noops = if req.dry_run {
        Vec::new()
    } else {
        plan::unchanged_in_scope(ov, req, scope, &ready)?
    };
    if req.dry_run || (ready.is_empty() && noops.is_empty()) {
        return Ok(report);
    }
    let id = match versions.resume {
        Some(id) => id.to_string(),
        None => format!("{}-{}", chrono_like_now(), ov.journal().last_seq() + 1),
    };
    report.id = id.clone();
    timer.lap(&id, "select and check for conflicts");
    if versions.resume.is_none() {
        let prior = match versions.store {
            Some(store) => {
                let kept = keep::keep(ov, store, &ready)?;
                if !kept.conflicts.is_empty() {
                    report.conflicts = kept.conflicts;
                    report.applied.clear();
                    report.id.clear();
                    return Ok(report);
                }
                timer.lap(&id, "keep versions in the store");
                kept.prior
            }
            None => Vec::new(),
        };
        // A file committed in part is never rolled forward with the workspace's whole file
        // (see `hunks`): it is not listed, and so not undone either. `prior` stays in step
        // with `paths`.
        let in_whole = |p: &RelPath| scope.hunks.is_none_or(|h| !h.contains_key(p));
        let whole: Vec<RelPath> = report
            .applied
            .iter()
            .filter(|p| in_whole(p))
            .cloned()
            .collect();
        let prior: Vec<_> = match prior.len() == report.applied.len() {
            true => report
                .applied
                .iter()
                .zip(prior)
                .filter(|(p, _)| in_whole(p))
                .map(|(_, s)| s)
                .collect(),
            false => prior,
        };
        ov.record_durable(Draft::control(Op::CommitBegin {
            id: id.clone(),
            paths: whole,
            prior,
        }))?;
        crate::fault::commit_step("after commit_begin");
    }
    let backup_dir = backups_root.join(&id);
    let outcome = apply::apply(ov, &id, &ready, req, &backup_dir, progress, &mut timer)?;
    if !outcome.left_pending.is_empty() {
        let left = &outcome.left_pending;
        report.applied.retain(|p| !left.contains(p));
        report.busy.extend(outcome.left_pending);
        report.busy.sort();
    }
    // Paths the workspace touched but left as the host had them leave the overlay too, so a
    // commit leaves nothing that shadows later host edits.
    ov.finish_commit(&id, &noops, &|| {})?;
    if outcome.backed_up {
        report.backup_dir = Some(backup_dir);
    }
    if versions.resume.is_none() {
        ov.record_durable(Draft::control(Op::CommitEnd { id }))?;
    }
    ov.settle_kernel_caches();
    Ok(report)
}

/// Time stamp for commit ids: seconds since the epoch in hex (sortable, filename-safe).
pub(crate) fn chrono_like_now() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{s:x}")
}

/// Drops the overlay's changes at or below `paths` (all when empty).
pub fn discard(ov: &Overlay, paths: &[RelPath]) -> Result<DiscardReport> {
    let pending = status::pending(ov)?;
    let discarded: Vec<RelPath> = pending
        .iter()
        .filter(|c| paths.is_empty() || paths.iter().any(|p| c.path.starts_with(p)))
        .map(|c| c.path.clone())
        .collect();
    ov.discard_paths(paths)?;
    Ok(DiscardReport { discarded })
}

/// The backups folder of a workspace state dir.
pub fn backups_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("backups")
}
