//! Leaving the overlay: after a commit applied a path, or a discard dropped it, the upper copy
//! goes away so the merged view reads the host again, and the kernel is told to forget it.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;

use super::Overlay;
use crate::error::{IoContext, Result};
use crate::journal::record::{Draft, EntryState, Op};
use crate::relpath::RelPath;
use crate::sys;

impl Overlay {
    /// Records that commit `id` applied `path` as `committed`, then drops the upper copy if the
    /// overlay still holds exactly that (and nobody has it open for writing); otherwise the
    /// change stays, rebased on what was committed.
    pub fn finish_commit_path(
        &self,
        id: &str,
        path: &RelPath,
        committed: &EntryState,
    ) -> Result<()> {
        let busy = self
            .nodes
            .at_path(path)
            .is_some_and(|n| n.writers.load(Ordering::Acquire) > 0);
        let mut d = Draft::new(
            Op::CommitApplied { id: id.to_string() },
            path.clone(),
            None,
            committed.clone(),
        );
        if busy {
            d.base = Some(committed.clone());
        }
        let current = self.changes.get(path);
        self.record(d)?;
        let left = self.changes.contains(path);
        if !left {
            let keep_dir = current.as_ref().is_some_and(|c| c.current.is_dir());
            self.remove_upper(path, keep_dir)?;
            self.path_reverted(path);
        }
        Ok(())
    }

    /// Removes the upper entry at `path` (a directory only if empty when `keep_nonempty_dir`).
    fn remove_upper(&self, path: &RelPath, keep_nonempty_dir: bool) -> Result<()> {
        let Ok((dir, name)) = sys::walk_parent(self.upper_root.as_fd(), path) else {
            return Ok(());
        };
        match sys::lstatat(dir.as_fd(), name) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                if keep_nonempty_dir {
                    let _ = sys::unlinkat(dir.as_fd(), name, true);
                    Ok(())
                } else {
                    remove_tree(dir.as_fd(), name, path)
                }
            }
            Ok(_) => sys::unlinkat(dir.as_fd(), name, false).ctx("unlink", path),
            Err(_) => Ok(()),
        }
    }

    /// Drops every change at or below `paths` (everything when empty), durably.
    pub fn discard_paths(&self, paths: &[RelPath]) -> Result<()> {
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
                for n in self.nodes.under(t) {
                    if n.ino != super::ROOT_INO {
                        n.set_upper(false);
                    }
                }
            } else {
                self.remove_upper(t, false)?;
            }
            self.path_reverted(t);
        }
        for p in touched {
            self.path_reverted(&p);
        }
        Ok(())
    }
}

/// Removes a tree inside the upper layer.
pub(crate) fn remove_tree(dir: BorrowedFd<'_>, name: &OsStr, path: &RelPath) -> Result<()> {
    let fd = sys::open_dir_path(dir, name).ctx("open", path)?;
    for e in sys::read_dir(fd.as_fd()).ctx("readdir", path)? {
        let child = path.join(&e.name)?;
        let st = sys::lstatat(fd.as_fd(), &e.name).ctx("lstat", &child)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            remove_tree(fd.as_fd(), &e.name, &child)?;
        } else {
            sys::unlinkat(fd.as_fd(), &e.name, false).ctx("unlink", &child)?;
        }
    }
    sys::unlinkat(dir, name, true).ctx("rmdir", path)
}
