//! Planning a commit: the changes a request selects, those left pending because the workspace
//! has them open, the conflict check of each against the host, and the touched paths that
//! hold no change.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use super::hunks::Partial;
use super::seen::Seen;
use super::status;
use crate::api::{Change, CommitRequest, Conflict};
use crate::error::{IoContext, Result};
use crate::hash::ContentHash;
use crate::journal::record::EntryState;
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::sys;

/// A change that passed the conflict check, with the host state the check read for it.
pub(super) struct Checked {
    pub change: Change,
    pub host: Seen,
    /// Where to read the content from instead of the upper file (a partial file, whose
    /// `change.current` is then the partial state).
    pub src: Option<Arc<OwnedFd>>,
}

/// What a commit request comes to before anything is written.
pub(super) struct Plan {
    /// The changes to apply (in path order), or nothing when there are conflicts.
    pub ready: Vec<Checked>,
    /// Selected paths left pending: open for writing (and the sources of their renames).
    pub busy: BTreeSet<RelPath>,
    /// Why the selected changes cannot be applied; empty when they can.
    pub conflicts: Vec<Conflict>,
    /// Workspace-only secrets in scope: never committed, left pending.
    pub secrets: Vec<RelPath>,
}

/// Which of the changes a request covers a commit takes.
#[derive(Clone, Copy, Default)]
pub(super) struct Scope<'a> {
    /// Only these exact paths (nothing below them unless listed); `None`: all the request
    /// covers.
    pub only: Option<&'a HashSet<RelPath>>,
    /// Apply what passes the check even when other paths conflict (write-through, merge);
    /// the default is all or nothing.
    pub partial: bool,
    /// Paths `commit --merge` merged into the workspace, with the host content each merge
    /// was made against: that host content is no conflict for them.
    pub merged: Option<&'a HashMap<RelPath, ContentHash>>,
    /// Files committed in part (`commit -p`): the content the host gets instead.
    pub hunks: Option<&'a HashMap<RelPath, Partial>>,
}

impl Scope<'_> {
    fn takes(&self, path: &RelPath) -> bool {
        self.only.is_none_or(|o| o.contains(path))
    }
}

/// Selects the changes `req` covers, sets the busy ones aside and checks the rest against the
/// host.
pub(super) fn plan(ov: &Overlay, req: &CommitRequest, scope: Scope<'_>) -> Result<Plan> {
    let (secrets, selected): (Vec<Change>, Vec<Change>) = select(ov, req)?
        .into_iter()
        .filter(|c| scope.takes(&c.path))
        .partition(|c| c.secret);
    let secrets = secrets.into_iter().map(|c| c.path).collect();
    let (selected, busy) = split_busy(selected, &ov.busy_paths());
    let deleted: HashSet<RelPath> = selected
        .iter()
        .filter(|c| c.current.is_absent())
        .map(|c| c.path.clone())
        .collect();
    let new_dirs: HashSet<RelPath> = selected
        .iter()
        .filter(|c| c.current.is_dir() && !c.base.is_dir())
        .map(|c| c.path.clone())
        .collect();
    let mut ready = Vec::with_capacity(selected.len());
    let mut conflicts = Vec::new();
    let mut held_sources = HashSet::new();
    for change in selected {
        match check(ov, &change, req, scope, &deleted, &new_dirs)? {
            Verdict::Apply(host) => {
                let part = scope.hunks.and_then(|h| h.get(&change.path));
                let mut change = change;
                if let Some(p) = part {
                    change.current = p.state.clone();
                }
                let src = part.map(|p| p.src.clone());
                ready.push(Checked { change, host, src })
            }
            Verdict::Conflict(x) => {
                held_sources.extend(change.from);
                conflicts.push(x);
            }
        }
    }
    if scope.partial {
        // A rename's source goes only with its destination: the host never loses the old
        // file before it gets the new one.
        ready.retain(|c| !held_sources.contains(&c.change.path));
    } else if !conflicts.is_empty() {
        ready.clear();
    }
    Ok(Plan {
        ready,
        busy,
        conflicts,
        secrets,
    })
}

/// Selects the pending changes a request covers.
fn select(ov: &Overlay, req: &CommitRequest) -> Result<Vec<Change>> {
    Ok(status::pending(ov)?
        .into_iter()
        .filter(|c| {
            let named = req.paths.iter().any(|p| c.path.starts_with(p));
            let in_scope = req.paths.is_empty() || named;
            let explicitly = req.paths.iter().any(|p| p == &c.path);
            in_scope && (!c.scratch || req.include_scratch || explicitly)
        })
        .collect())
}

/// Splits `selected` into the changes to apply and the paths left pending because the
/// workspace has them open for writing (`busy`). A rename's source stays with a busy
/// destination, so the host never loses the old file before it gets the new one.
fn split_busy(selected: Vec<Change>, busy: &HashSet<RelPath>) -> (Vec<Change>, BTreeSet<RelPath>) {
    let mut skipped: BTreeSet<RelPath> = BTreeSet::new();
    for c in selected.iter().filter(|c| busy.contains(&c.path)) {
        skipped.insert(c.path.clone());
        skipped.extend(c.from.clone());
    }
    let ready = selected
        .into_iter()
        .filter(|c| !skipped.contains(&c.path))
        .collect();
    (ready, skipped)
}

/// The outcome of checking one change against the host.
enum Verdict {
    /// It may be applied; the host state the check read.
    Apply(Seen),
    /// It may not.
    Conflict(Conflict),
}

/// Checks one change against the host.
fn check(
    ov: &Overlay,
    c: &Change,
    req: &CommitRequest,
    scope: Scope<'_>,
    deleted: &HashSet<RelPath>,
    new_dirs: &HashSet<RelPath>,
) -> Result<Verdict> {
    let host_root = ov.lower_root().as_fd();
    // A device node made in the workspace would hand the host a path to hardware: it is
    // never committed, whatever the flags (only discard removes it).
    if let Some(label) = c.current.device_label() {
        return Ok(Verdict::Conflict(conflict(c, "device", EntryState::Absent,
            format!("{} is a {label}; device nodes are never committed to the host, not even with --allow-protected or --force. Discard it (`wsfs discard {}`) or commit the other paths by name", c.path, c.path))));
    }
    if c.protected && !req.allow_protected {
        return Ok(Verdict::Conflict(conflict(c, "protected", EntryState::Absent,
            format!("{} is protected (a change there can run code on the host); review it, then commit with --allow-protected", c.path))));
    }
    if let Some(parent) = c.path.parent() {
        if let Err(e) = sys::walk_dirs(host_root, &parent) {
            // A host file or symlink this very commit replaces by a directory is fine: it is
            // removed (never followed) before anything is written below it.
            let replaced = ancestors(&c.path).any(|a| new_dirs.contains(&a));
            if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) && !replaced {
                return Ok(Verdict::Conflict(conflict(c, "unsafe_path", EntryState::Absent,
                    format!("a parent of {} in the host project is a symlink or not a directory; wsfs never writes through it. Fix the host tree or discard this path", c.path))));
            }
        }
    }
    if let EntryState::Symlink { target } = &c.current {
        if symlink_escapes(&c.path, target) {
            return Ok(Verdict::Conflict(conflict(c, "unsafe_path", EntryState::Absent,
                format!("symlink {} points outside the project ({}); it is not committed. Discard it or make it relative inside the project", c.path, crate::relpath::escape_bytes(target)))));
        }
    }
    let seen = Seen::read(ov, &c.path)?;
    let host = &seen.state;
    if drifted(host, c) && !req.force && !super::merge::merged_against(scope.merged, &c.path, host)
    {
        return Ok(Verdict::Conflict(conflict(c, "host_changed", host.clone(),
            format!("{} changed on the host since the workspace based its change on it; compare with `wsfs diff`, then commit with --force (the host version is backed up) or discard", c.path))));
    }
    // A directory can only be deleted if everything in it on the host goes too.
    if !c.current.is_dir() && host.is_dir() {
        let fd = sys::walk_dirs(host_root, &c.path).ctx("open", &c.path)?;
        for e in sys::read_dir(fd.as_fd()).ctx("readdir", &c.path)? {
            let child = c.path.join(&e.name)?;
            if !deleted.contains(&child) {
                return Ok(Verdict::Conflict(conflict(c, "host_changed", host.clone(),
                    format!("host directory {} has {} which the workspace never saw; commit or move it on the host first", c.path, child))));
            }
        }
    }
    Ok(Verdict::Apply(seen))
}

/// True if the host state `host` of `c`'s path is neither `c`'s base nor what `c` makes it:
/// the host changed it since the workspace based its change on it.
pub(super) fn drifted(host: &EntryState, c: &Change) -> bool {
    !host.same_content(&c.base) && !host.same_content(&c.current)
}

fn hash_of(s: &EntryState) -> Option<crate::hash::ContentHash> {
    match s {
        EntryState::File { hash, .. } => *hash,
        _ => None,
    }
}

/// True if a symlink target would lead outside the project when followed from `path`.
fn symlink_escapes(path: &RelPath, target: &[u8]) -> bool {
    if target.starts_with(b"/") {
        return true;
    }
    let mut depth = path.depth() as i64 - 1;
    for comp in target.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

pub(super) fn conflict(c: &Change, reason: &str, host: EntryState, hint: String) -> Conflict {
    Conflict {
        path: c.path.clone(),
        reason: reason.into(),
        base_hash: hash_of(&c.base),
        host_hash: hash_of(&host),
        overlay_hash: hash_of(&c.current),
        base: c.base.clone(),
        host,
        overlay: c.current.clone(),
        hint,
    }
}

/// Proper ancestors of `path`, nearest first (the root excluded).
pub(super) fn ancestors(path: &RelPath) -> impl Iterator<Item = RelPath> {
    path.ancestors().filter(|p| !p.is_root())
}

/// Touched paths in the commit's scope whose overlay state equals their base (no change to
/// apply), with that state.
pub(super) fn unchanged_in_scope(
    ov: &Overlay,
    req: &CommitRequest,
    scope: Scope<'_>,
    ready: &[Checked],
) -> Result<Vec<(RelPath, EntryState)>> {
    let chosen: HashSet<&RelPath> = ready.iter().map(|c| &c.change.path).collect();
    let mut out = Vec::new();
    for (path, change) in ov.changes().snapshot() {
        let in_scope = (req.paths.is_empty() || req.paths.iter().any(|p| path.starts_with(p)))
            && scope.takes(&path);
        if !in_scope || chosen.contains(&path) || change.opaque {
            continue;
        }
        let current = ov.upper_state(&path, false)?;
        if status::same_state(&change.base, &current) && change.origin.is_none() {
            out.push((path, current));
        }
    }
    Ok(out)
}
