//! Leaving the overlay: after a commit applied a path, or a discard dropped it, the upper copy
//! goes away so the merged view reads the host again, and the kernel is told to forget it.

use std::collections::{HashMap, HashSet};

use std::os::fd::AsFd;

use super::Overlay;
use crate::error::{Error, IoContext, Result};
use crate::journal::record::{Draft, EntryState, Op};
use crate::relpath::RelPath;
use crate::sys;

impl Overlay {
    /// Records that commit `id` applied each `(path, committed state)`, then drops the upper
    /// copy of every path the overlay still holds exactly as committed (and nobody has open for
    /// writing); other paths stay as changes, rebased on what was committed. `each` runs after
    /// every path (progress). One scan of the node table for the whole batch.
    pub(crate) fn finish_commit(
        &self,
        id: &str,
        applied: &[(RelPath, EntryState)],
        each: &dyn Fn(),
    ) -> Result<()> {
        // No writer may open, truncate or finish closing a file until its path is settled:
        // one that slipped in between the busy check and the removal of the upper copy would
        // write into a removed file (data loss) or hit ENOENT.
        let _gate = self.revert_gate.write().unwrap();
        let busy = self.busy_paths();
        let mut reverted = Vec::new();
        let mut kept_dirs = Vec::new();
        for (path, committed) in applied {
            let mut d = Draft::new(
                Op::CommitApplied { id: id.to_string() },
                path.clone(),
                None,
                committed.clone(),
            );
            let current = self.changes.get(path);
            let unsettled = current
                .as_ref()
                .is_some_and(|c| crate::commit::status::settled_by(&c.current, committed));
            if busy.contains(path) || (unsettled && !self.upper_holds(path, committed)?) {
                d.base = Some(committed.clone());
            }
            self.record(d)?;
            if !self.changes.contains(path) {
                let keep_dir = current.as_ref().is_some_and(|c| c.current.is_dir());
                if self.remove_upper(path, keep_dir)? {
                    reverted.push(path.clone());
                } else {
                    kept_dirs.push(path.clone());
                }
            }
            each();
        }
        self.paths_reverted(&reverted);
        self.dirs_now_on_host(&kept_dirs);
        Ok(())
    }

    /// Directories a commit applied whose upper copy stays because something in it is still
    /// pending (a file open for writing): they stay in the overlay (their nodes, and those of
    /// the pending paths below, keep working), and now also exist on the host, so their
    /// lower side is looked up again and the kernel re-reads them.
    fn dirs_now_on_host(&self, dirs: &[RelPath]) {
        if dirs.is_empty() {
            return;
        }
        let set: HashSet<&RelPath> = dirs.iter().collect();
        for node in self.nodes.all() {
            if set.contains(&node.path()) {
                node.forget_lower_fd();
                self.invalidate_inode(node.ino);
            }
        }
    }

    /// True if the upper file at `path` hashes to the `committed` state. Called under the
    /// revert gate for a record whose hash was never settled: no writer can change it meanwhile.
    fn upper_holds(&self, path: &RelPath, committed: &EntryState) -> Result<bool> {
        let actual = super::state::state_at(self.upper_root.as_fd(), path, true)?;
        Ok(crate::commit::status::same_state(&actual, committed))
    }

    /// After commit or discard dropped the overlay's version of `paths`: nodes at or below them
    /// re-resolve on their next lookup, and the kernel forgets its cached entries.
    pub(crate) fn paths_reverted(&self, paths: &[RelPath]) {
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
        let covered =
            |path: &RelPath| set.contains(path) || path.ancestors().any(|a| set.contains(&a));
        for node in self.nodes.all() {
            let path = node.path();
            if let Some(names) = by_parent.get(&path) {
                node.forget_lower_fd();
                for name in names {
                    self.invalidate_entry(node.ino, name);
                }
                self.invalidate_inode(node.ino);
            }
            // A node below a reverted directory that still holds a change of its own (a file
            // left pending because it was open for writing) keeps its upper entry and its
            // identity: its last close must still be recorded.
            // A file already removed from the namespace (replaced by a rename, still open) is
            // not what the path held: it keeps its identity.
            let removed = node.unlinked.load(std::sync::atomic::Ordering::Acquire)
                && (node.is_upper() || node.replaced.load(std::sync::atomic::Ordering::Acquire));
            if node.ino != super::ROOT_INO
                && covered(&path)
                && !self.changes.contains(&path)
                && !removed
            {
                node.mark_reverted();
                self.invalidate_inode(node.ino);
            }
        }
    }

    /// Removes the upper entry at `path` (a directory only if empty when `keep_nonempty_dir`).
    /// False when a non-empty directory was kept.
    fn remove_upper(&self, path: &RelPath, keep_nonempty_dir: bool) -> Result<bool> {
        let (dir, name) = match sys::walk_parent(self.upper_root.as_fd(), path) {
            Ok(found) => found,
            Err(e) if sys::is_absent(&e) => return Ok(true),
            Err(e) => return Err(Error::io("walk", path, e)),
        };
        match sys::lstatat(dir.as_fd(), name) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                if keep_nonempty_dir {
                    Ok(sys::unlinkat(dir.as_fd(), name, true).is_ok())
                } else {
                    crate::tree::remove_tree(dir.as_fd(), name, path).map(|()| true)
                }
            }
            Ok(_) => sys::unlinkat(dir.as_fd(), name, false)
                .ctx("unlink", path)
                .map(|()| true),
            Err(e) if sys::is_absent(&e) => Ok(true),
            Err(e) => Err(Error::io("lstat", path, e)),
        }
    }

    /// Drops every change at or below `paths` (everything when empty), durably; on return the
    /// kernel's caches agree with the view (see [`Overlay::settle_kernel_caches`]).
    pub(crate) fn discard_paths(&self, paths: &[RelPath]) -> Result<()> {
        self.discard_gated(paths)?;
        self.settle_kernel_caches();
        Ok(())
    }

    fn discard_gated(&self, paths: &[RelPath]) -> Result<()> {
        let _gate = self.revert_gate.write().unwrap();
        let targets: Vec<RelPath> = if paths.is_empty() {
            vec![RelPath::root()]
        } else {
            paths.to_vec()
        };
        let touched: Vec<RelPath> = self
            .changes
            .snapshot()
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| targets.iter().any(|t| p.starts_with(t)))
            .collect();
        {
            let _g = self.record_lock.lock().unwrap();
            let rec = self.journal.append(Draft::control(Op::Discard {
                paths: paths.to_vec(),
            }))?;
            self.changes.apply(&rec);
        }
        self.journal.sync()?;
        for t in &targets {
            if t.is_root() {
                for e in sys::read_dir(self.upper_root.as_fd()).ctx("readdir", t)? {
                    let p = t.join(&e.name)?;
                    self.remove_upper(&p, false)?;
                }
            } else {
                self.remove_upper(t, false)?;
            }
        }
        let mut all: Vec<RelPath> = targets.into_iter().filter(|t| !t.is_root()).collect();
        all.extend(touched);
        if paths.is_empty() {
            // The upper layer is empty now: every node that was served from it goes too (a
            // directory copied up only to hold changed children is no change by itself).
            all.extend(
                self.nodes
                    .all()
                    .into_iter()
                    .filter(|n| n.ino != super::ROOT_INO && n.is_upper())
                    .map(|n| n.path()),
            );
        }
        self.paths_reverted(&all);
        Ok(())
    }

    /// Waits until the kernel has been told every invalidation queued so far, so that the
    /// next system call after a commit or discard sees the new view (no stale dentry of a
    /// discarded file, no stale negative entry hiding a restored host file). Called after the
    /// revert gate is released: the kernel applies an invalidation under the directory's
    /// inode lock, which a FUSE request waiting on that gate may hold.
    pub(crate) fn settle_kernel_caches(&self) {
        let inval = self.invalidator.read().unwrap().clone();
        if let Some(inv) = inval {
            inv.flush();
        }
    }
}
