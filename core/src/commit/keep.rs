//! Keeping what a commit replaces and what it writes in the content store, so `wsfs undo` can
//! put the host back from the journal and the store alone.
//!
//! Before the `commit_begin` record (which lists each path's prior host state), every host
//! file the commit overwrites or deletes and every new file content goes into the store, on
//! the commit's worker threads, then one `syncfs` makes them durable. The conflict check
//! already hashed each host file: that hash is what the store must find in its copy (it hashes
//! the copy anyway, to name it), so nothing is hashed twice, and a host file that changed
//! since the check is a conflict like any other host change.

use std::os::fd::AsFd;

use super::plan::{conflict, Checked};
use super::workers::on_workers;
use crate::api::Conflict;
use crate::error::{Error, Result};
use crate::journal::record::EntryState;
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::store::{ContentStore, StoreError};
use crate::sys;

/// What keeping the versions of a commit found.
pub(super) struct Kept {
    /// The host's state of each ready path before the commit, in `ready`'s order.
    pub prior: Vec<EntryState>,
    /// Host files that changed since the conflict check read them.
    pub conflicts: Vec<Conflict>,
}

/// Stores the host version each of `ready` replaces and the content it writes (see the module
/// docs), durably.
pub(super) fn keep(ov: &Overlay, store: &ContentStore, ready: &[Checked]) -> Result<Kept> {
    crate::fault::point(crate::fault::Point::CommitAfterCheck);
    let found = on_workers(ready, |c| keep_one(ov, store, c))?;
    if !ready.is_empty() {
        store.sync()?;
    }
    Ok(Kept {
        prior: ready.iter().map(|c| c.host.state.clone()).collect(),
        conflicts: found.into_iter().flatten().collect(),
    })
}

/// Keeps one change's versions; a conflict when the host file is no longer what the check
/// hashed.
fn keep_one(ov: &Overlay, store: &ContentStore, c: &Checked) -> Result<Option<Conflict>> {
    let path = &c.change.path;
    if let EntryState::File { hash: Some(h), .. } = &c.host.state {
        let changed = match open_file(ov.lower_root().as_fd(), path) {
            Ok(fd) => match store.put_fd(fd.as_fd(), Some(*h)) {
                Ok(_) => false,
                Err(StoreError::Changed { .. }) => true,
                Err(e) => return Err(e.into()),
            },
            Err(e) if sys::is_absent(&e) => true,
            Err(e) => return Err(Error::io("open", path, e)),
        };
        if changed {
            let host = ov.lower_state(path)?;
            return Ok(Some(conflict(&c.change, "host_changed", host,
                format!("{path} changed on the host while the commit was checking it; compare with `wsfs diff`, then commit again"))));
        }
    }
    if let EntryState::File { hash: Some(h), .. } = &c.change.current {
        // A writer that changed the file since it was selected leaves it pending when it is
        // staged (its content is checked there); nothing to keep then.
        if let Ok(fd) = open_file(ov.upper_root().as_fd(), path) {
            match store.put_fd(fd.as_fd(), Some(*h)) {
                Ok(_) | Err(StoreError::Changed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(None)
}

/// Opens the regular file `path` below `root` for reading, following no symlink.
pub(crate) fn open_file(
    root: std::os::fd::BorrowedFd<'_>,
    path: &RelPath,
) -> std::io::Result<std::os::fd::OwnedFd> {
    let (dir, name) = sys::walk_parent(root, path)?;
    sys::openat(
        dir.as_fd(),
        name,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0,
    )
}
