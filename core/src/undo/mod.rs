//! `wsfs undo`: putting the host back as it was before a commit, from the journal and the
//! content store alone, while the workspace keeps its version as pending changes.
//!
//! The commit's `commit_begin` lists each path's prior host state and its `commit_applied`
//! records the state it wrote; file contents of both are in the content store. An undo:
//! 1. checks every path: the host must still hold what the commit wrote (or already the old
//!    state); anything else is a conflict, and then nothing is applied (`--force` backs the
//!    host version up and goes on). A directory the undo removes must hold nothing else.
//! 2. `undo_begin` (durable) lists the paths;
//! 3. brings each path back into the overlay (the committed version into the upper layer,
//!    or the workspace's later change rebased), with an `undo_applied` record each;
//! 4. puts the host back: removals deepest first, then directories, and files and symlinks
//!    through temporary files renamed over their targets (atomic per file), fsyncs;
//! 5. `undo_end` (durable).
//!
//! A crash between 2 and 5 is rolled forward on the next open ([`roll_forward`]): step 3 for
//! the paths without their record, then step 4, which skips a path the host already has in
//! its old state, so doing it twice is harmless.

mod apply;
pub mod history;
mod recover;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use crate::api::{Conflict, UndoReport, UndoRequest};
use crate::error::{Error, IoContext, Result};
use crate::journal::record::{Draft, EntryState, Op, Record};
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::store::ContentStore;
use crate::sys;
pub use recover::roll_forward;

/// One path of the commit being undone.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub path: RelPath,
    /// The host's state before the commit: what the undo restores.
    pub before: EntryState,
    /// What the commit wrote.
    pub after: EntryState,
}

/// Undoes the commit `req` names (default: the last one that can be undone).
pub fn undo(
    ov: &Overlay,
    store: &ContentStore,
    backups_root: &Path,
    records: &[Record],
    req: &UndoRequest,
) -> Result<UndoReport> {
    ov.journal().check_unchanged()?;
    let commits = history::commits(records);
    let commit = pick(&commits, req.commit.as_deref())?;
    let items: Vec<Item> = sorted(
        commit
            .paths
            .iter()
            .filter_map(|(path, before, after)| {
                let before = before.clone()?;
                (before != *after).then(|| Item {
                    path: path.clone(),
                    before,
                    after: after.clone(),
                })
            })
            .collect(),
    );
    let mut report = UndoReport {
        commit: commit.id.clone(),
        ..Default::default()
    };
    report.conflicts = check(ov, store, &items)?;
    if !report.conflicts.is_empty() && !req.force {
        return Ok(report);
    }
    let hard: Vec<&Conflict> = report
        .conflicts
        .iter()
        .filter(|c| c.reason != "host_changed")
        .collect();
    if !hard.is_empty() {
        return Ok(report);
    }
    let id = format!(
        "{}-{}",
        crate::commit::chrono_like_now(),
        ov.journal().last_seq() + 1
    );
    ov.record_durable(Draft::control(Op::UndoBegin {
        id: id.clone(),
        commit: commit.id.clone(),
        paths: items.iter().map(|i| i.path.clone()).collect(),
    }))?;
    crate::fault::commit_step("undo: after undo_begin");
    into_overlay(ov, store, &id, &items, &HashSet::new())?;
    let backup_dir = backups_root.join(&id);
    let backed_up = apply::to_host(ov, store, &id, &items, req.force, &backup_dir)?;
    ov.record_durable(Draft::control(Op::UndoEnd { id: id.clone() }))?;
    ov.settle_kernel_caches();
    report.id = id;
    report.restored = items.into_iter().map(|i| i.path).collect();
    if backed_up {
        report.backup_dir = Some(backup_dir);
    }
    Ok(report)
}

/// The commit to undo: `id`, or the last one that can be undone.
fn pick<'a>(commits: &'a [history::Commit], id: Option<&str>) -> Result<&'a history::Commit> {
    let Some(id) = id else {
        return commits
            .iter()
            .rev()
            .find(|c| c.not_undoable().is_none())
            .ok_or_else(|| {
                Error::UndoRefused(
                    "no commit of this workspace can be undone (`wsfs log --commits` says why for each)"
                        .into(),
                )
            });
    };
    let c = commits
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| Error::NoSuchCommit(id.to_string()))?;
    let why = match c.not_undoable() {
        None => return Ok(c),
        Some("undone") => format!(
            "commit {id} was already undone (by {}); an undone commit cannot be undone again",
            c.undone_by.as_deref().unwrap_or("?")
        ),
        Some("no_versions") => format!(
            "commit {id} kept no copy of the host's old files (made by an older wsfs, or a write-through flush), so it cannot be undone; the backups/ folder of the workspace may hold what a forced commit replaced"
        ),
        Some("collected") => format!(
            "the old versions commit {id} replaced were dropped by `wsfs gc`; it can no longer be undone"
        ),
        Some(_) => format!(
            "commit {id} did not finish; restart mountd (it completes the commit), then undo it"
        ),
    };
    Err(Error::UndoRefused(why))
}

/// Conflicts of undoing `items` now (`host_changed` ones are what `force` overrides), or an
/// error when the store lacks a version the undo needs.
fn check(ov: &Overlay, store: &ContentStore, items: &[Item]) -> Result<Vec<Conflict>> {
    let removed: HashSet<&RelPath> = items
        .iter()
        .filter(|i| i.before.is_absent())
        .map(|i| &i.path)
        .collect();
    // Directories the undo itself makes again: what is below them needs no walk yet.
    let remade: HashSet<&RelPath> = items
        .iter()
        .filter(|i| i.before.is_dir())
        .map(|i| &i.path)
        .collect();
    let mut out = Vec::new();
    for i in items {
        let host = ov.lower_state(&i.path)?;
        let conflict = |reason: &str, hint: String| Conflict {
            path: i.path.clone(),
            reason: reason.into(),
            base: i.before.clone(),
            host: host.clone(),
            overlay: i.after.clone(),
            base_hash: file_hash(&i.before),
            host_hash: file_hash(&host),
            overlay_hash: file_hash(&i.after),
            hint,
        };
        if let Some(parent) = i.path.parent() {
            if let Err(e) = sys::walk_dirs(ov.lower_root().as_fd(), &parent) {
                let remade = i.path.ancestors().any(|a| remade.contains(&a));
                if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) && !remade {
                    out.push(conflict("unsafe_path", format!(
                        "a parent of {} in the host project is a symlink or not a directory; wsfs never writes through it. Fix the host tree, then undo again", i.path)));
                    continue;
                }
            }
        }
        let done = host.same_state(&i.before);
        if !done && !host.same_content(&i.after) {
            out.push(conflict("host_changed", format!(
                "{} changed on the host since the commit; compare it with what the commit wrote, then undo with --force (the host version is backed up) or leave the commit in place", i.path)));
        }
        // A directory the undo removes must hold nothing the commit did not create.
        if host.is_dir() && !i.before.is_dir() {
            let fd = sys::walk_dirs(ov.lower_root().as_fd(), &i.path).ctx("open", &i.path)?;
            for e in sys::read_dir(fd.as_fd()).ctx("readdir", &i.path)? {
                let child = i.path.join(&e.name)?;
                if !removed.contains(&child) {
                    out.push(conflict("not_empty", format!(
                        "host directory {} has {child}, which commit did not create; move it away on the host first", i.path)));
                    break;
                }
            }
        }
        // The versions the undo needs must be in the store.
        if let EntryState::File { hash: Some(h), .. } = &i.before {
            if !store.contains(h) {
                return Err(Error::UndoRefused(format!(
                    "the old version of {} ({}) is missing from the content store; nothing was undone. `wsfs verify` lists what else is missing",
                    i.path, h.short()
                )));
            }
        }
        let in_overlay = ov.changes().contains(&i.path);
        if let EntryState::File { hash, .. } = &i.after {
            let stored = hash.is_some_and(|h| store.contains(&h));
            if !(in_overlay || stored || host.same_content(&i.after)) {
                return Err(Error::UndoRefused(format!(
                    "the version of {} the commit wrote is neither in the content store nor on the host; nothing was undone",
                    i.path
                )));
            }
        }
    }
    Ok(out)
}

/// `items` in path order (parents before children), as the undo's phases take them.
pub(crate) fn sorted(mut items: Vec<Item>) -> Vec<Item> {
    items.sort_by(|a, b| a.path.cmp(&b.path));
    items
}

fn file_hash(s: &EntryState) -> Option<crate::hash::ContentHash> {
    match s {
        EntryState::File { hash, .. } => *hash,
        _ => None,
    }
}

/// Step 3 of the module docs for `items` (except those in `skip`).
fn into_overlay(
    ov: &Overlay,
    store: &ContentStore,
    id: &str,
    items: &[Item],
    skip: &HashSet<RelPath>,
) -> Result<()> {
    let reverted: Vec<crate::overlay::Reverted<'_>> = items
        .iter()
        .map(|i| crate::overlay::Reverted {
            path: &i.path,
            before: &i.before,
            after: &i.after,
        })
        .collect();
    let content = |path: &RelPath, state: &EntryState| -> Result<OwnedFd> {
        if let EntryState::File { hash: Some(h), .. } = state {
            match store.open_object(h) {
                Ok(f) => return Ok(OwnedFd::from(f)),
                Err(crate::store::StoreError::Missing(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Not stored (a record without a hash): the host still holds it (checked).
        crate::commit::keep::open_file(ov.lower_root().as_fd(), path).ctx("open", path)
    };
    ov.keep_versions_for_undo(id, &reverted, skip, &content)
}
