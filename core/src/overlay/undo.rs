//! Bringing a commit's paths back into the overlay when `wsfs undo` puts the host back: the
//! workspace keeps showing its version of each path, now as a pending change again.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use super::Overlay;
use crate::error::{Error, IoContext, Result};
use crate::journal::record::{Draft, EntryState, Op};
use crate::relpath::RelPath;
use crate::sys;

/// One path an undo puts back on the host.
pub(crate) struct Reverted<'a> {
    /// The path.
    pub path: &'a RelPath,
    /// The host's state the undo restores (the change's base from now on).
    pub before: &'a EntryState,
    /// What the commit wrote (the workspace's version, unless it changed the path since).
    pub after: &'a EntryState,
}

impl Overlay {
    /// Records, for each of `paths` (in path order), that undo `id` keeps the workspace's
    /// version: a path the overlay has no change for gets the committed state back in the
    /// upper layer (a file's content from `content`, a whiteout for a deleted path); a path it
    /// has a change for keeps it, rebased on the state the host gets back. Each path is in
    /// the overlay before its `undo_applied` record, so a crash in between leaves an upper
    /// entry the next open adopts. `skip` says which paths already have their record
    /// (roll-forward).
    pub(crate) fn keep_versions_for_undo(
        &self,
        id: &str,
        paths: &[Reverted<'_>],
        skip: &HashSet<RelPath>,
        content: &dyn Fn(&RelPath, &EntryState) -> Result<OwnedFd>,
    ) -> Result<()> {
        let _gate = self.revert_gate.write().unwrap();
        let mut placed = Vec::new();
        for r in paths.iter().filter(|r| !skip.contains(r.path)) {
            let new = match self.changes.get(r.path) {
                Some(c) => c.current,
                None => {
                    self.place_upper(r.path, r.after, content)?;
                    placed.push(r.path.clone());
                    r.after.clone()
                }
            };
            let d = Draft::new(
                Op::UndoApplied { id: id.to_string() },
                r.path.clone(),
                Some(r.before.clone()),
                new,
            );
            self.record(d)?;
            crate::fault::commit_step("undo: after undo_applied");
        }
        self.journal.sync()?;
        self.paths_now_in_overlay(&placed);
        Ok(())
    }

    /// Puts `state` at `path` in the upper layer (nothing for a whiteout).
    fn place_upper(
        &self,
        path: &RelPath,
        state: &EntryState,
        content: &dyn Fn(&RelPath, &EntryState) -> Result<OwnedFd>,
    ) -> Result<()> {
        if state.is_absent() {
            // A whiteout: the change set alone hides the host's entry.
            return Ok(());
        }
        let Some((parent, name)) = path.split_last() else {
            return Err(Error::invalid_argument(path));
        };
        let pnode = self.node_at(&parent)?;
        let updir = self.ensure_upper_dir(&pnode)?;
        let host_owner = sys::walk_parent(self.lower_root.as_fd(), path)
            .and_then(|(d, n)| sys::lstatat(d.as_fd(), n))
            .map(|st| (st.st_uid, st.st_gid))
            .or_else(|_| sys::fstat(updir.as_fd()).map(|st| (st.st_uid, st.st_gid)))
            .ctx("stat", path)?;
        match state {
            EntryState::Absent => {}
            EntryState::Dir { mode } => {
                // The host still has the directory (it held the committed state when the undo
                // checked it): copy it up so its node serves the upper side too.
                match self.node_at(path) {
                    Ok(node) if node.kind == super::Kind::Dir => {
                        self.ensure_upper_dir(&node)?;
                    }
                    _ => match sys::mkdirat(updir.as_fd(), name, 0o700) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(Error::io("mkdir", path, e)),
                    },
                }
                let fd = sys::open_dir_path(updir.as_fd(), name).ctx("open", path)?;
                sys::lchownat(fd.as_fd(), OsStr::new(""), host_owner.0, host_owner.1)
                    .ctx("chown", path)?;
                sys::chmod_fd(fd.as_fd(), *mode).ctx("chmod", path)?;
            }
            EntryState::File { mode, size, .. } => {
                let src = content(path, state)?;
                let tmp = self.tmp_name();
                let tmp = OsStr::new(&tmp);
                let work = self.work_root.as_fd();
                let out = sys::openat(
                    work,
                    tmp,
                    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                    0o600,
                )
                .ctx("create", path)?;
                crate::copy::copy_sparse(src.as_fd(), out.as_fd(), *size).ctx("copy", path)?;
                sys::lchownat(out.as_fd(), OsStr::new(""), host_owner.0, host_owner.1)
                    .ctx("chown", path)?;
                sys::chmod_fd(out.as_fd(), *mode).ctx("chmod", path)?;
                sys::renameat2(work, tmp, updir.as_fd(), name, 0).ctx("rename", path)?;
            }
            EntryState::Symlink { target } => {
                let _ = sys::unlinkat(updir.as_fd(), name, false);
                sys::symlinkat(OsStr::from_bytes(target), updir.as_fd(), name)
                    .ctx("symlink", path)?;
                sys::lchownat(updir.as_fd(), name, host_owner.0, host_owner.1)
                    .ctx("chown", path)?;
            }
            EntryState::Special { mode, rdev } => {
                sys::mknodat(updir.as_fd(), name, *mode, *rdev).ctx("mknod", path)?;
            }
        }
        Ok(())
    }

    /// After entries of `paths` were put in the upper layer: nodes still serving them from
    /// the host go stale (the kernel looks them up again and finds the upper entry), and
    /// their parents' cached entries are dropped.
    fn paths_now_in_overlay(&self, paths: &[RelPath]) {
        if paths.is_empty() {
            return;
        }
        let set: HashSet<&RelPath> = paths.iter().collect();
        let mut by_parent: HashMap<RelPath, Vec<std::ffi::OsString>> = HashMap::new();
        for p in paths {
            if let Some((parent, name)) = p.split_last() {
                by_parent.entry(parent).or_default().push(name.to_owned());
            }
        }
        for node in self.nodes.all() {
            let path = node.path();
            if let Some(names) = by_parent.get(&path) {
                for name in names {
                    self.invalidate_entry(node.ino, name);
                }
                self.invalidate_inode(node.ino);
            }
            if node.ino != super::ROOT_INO && set.contains(&path) && !node.is_upper() {
                node.mark_reverted();
                self.invalidate_inode(node.ino);
            }
        }
    }
}
