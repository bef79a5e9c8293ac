//! Writing a merge into the workspace (`wsfs commit --merge`, `commit/merge.rs`): the merged
//! content replaces the workspace's file, as `git merge` updates the work tree, so the
//! workspace shows what the host gets and the commit applies it like any other change.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;

use super::Overlay;
use crate::error::{Error, IoContext, Result};
use crate::hash::ContentHash;
use crate::journal::record::{Draft, EntryState, Op};
use crate::relpath::RelPath;
use crate::sys;

impl Overlay {
    /// Replaces the workspace's file at `path` with `bytes` (same owner and mode; written in
    /// `work/`, fsynced, renamed over the upper file) and records the write, when the upper
    /// file still holds exactly `expect` and nobody has it open for writing. False, with
    /// nothing changed, otherwise. The record names no process: wsfs made the change.
    pub(crate) fn replace_merged(
        &self,
        path: &RelPath,
        bytes: &[u8],
        expect: &EntryState,
    ) -> Result<bool> {
        // No writer may open or finish closing the file meanwhile.
        let _gate = self.revert_gate.write().unwrap();
        if self.busy_paths().contains(path) {
            return Ok(false);
        }
        let actual = super::state::state_at(self.upper_root.as_fd(), path, true)?;
        if !crate::commit::status::same_state(&actual, expect) {
            return Ok(false);
        }
        let (parent, name) = path.split_last().ok_or_else(|| Error::not_found(path))?;
        let dir = sys::walk_dirs(self.upper_root.as_fd(), &parent).ctx("open", path)?;
        let st = sys::lstatat(dir.as_fd(), name).ctx("lstat", path)?;
        let tmp = self.tmp_name();
        let tmp = OsStr::new(&tmp);
        let work = self.work_root.as_fd();
        let mut file: std::fs::File = sys::openat(
            work,
            tmp,
            libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
            0o600,
        )
        .ctx("create", path)?
        .into();
        let written = (|| -> Result<()> {
            sys::lchownat(file.as_fd(), OsStr::new(""), st.st_uid, st.st_gid).ctx("chown", path)?;
            sys::chmod_fd(file.as_fd(), st.st_mode & 0o7777).ctx("chmod", path)?;
            file.write_all(bytes).ctx("write", path)?;
            sys::fsync(file.as_fd(), false).ctx("fsync", path)?;
            sys::renameat2(work, tmp, dir.as_fd(), name, 0).ctx("rename", path)
        })();
        if let Err(e) = written {
            let _ = sys::unlinkat(work, tmp, false);
            return Err(e);
        }
        let new = EntryState::File {
            hash: Some(ContentHash::of(bytes)),
            mode: st.st_mode & 0o7777,
            size: bytes.len() as u64,
        };
        self.record(Draft::new(Op::Write, path.clone(), None, new))?;
        if let Some(node) = self.nodes.at_path(path) {
            // Cached pages and attributes are the old content's.
            node.version.fetch_add(1, Ordering::AcqRel);
            self.invalidate_inode(node.ino);
        }
        Ok(true)
    }
}
