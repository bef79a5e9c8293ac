//! Copy-up: bringing a lower entry into the upper layer before its first modification.
//!
//! Files are copied into `work/` under a temporary name (reflink with FICLONE where the
//! filesystem can, else `copy_file_range`, else a read/write loop), given the lower file's
//! owner, mode, times and user xattrs, then renamed into place, so the upper layer never holds a
//! half-copied file. Only the node being copied is locked: readers of other files go on.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::node::Node;
use super::{Kind, Overlay};
use crate::error::{Error, IoContext, Result};
use crate::journal::record::{Draft, EntryState, Op};
use crate::relpath::RelPath;
use crate::sys;

impl Overlay {
    /// Makes sure directory `node` exists in the upper layer (copying up its ancestors as
    /// needed) and returns its upper fd.
    pub(crate) fn ensure_upper_dir(&self, node: &Arc<Node>) -> Result<Arc<OwnedFd>> {
        if let Some(fd) = self.upper_dir_fd(node)? {
            return Ok(fd);
        }
        let loc = node.loc();
        let parent = loc
            .parent
            .as_ref()
            .ok_or_else(|| Error::no_parent(&loc.path))?;
        let parent_fd = self.ensure_upper_dir(parent)?;
        let _g = node.copy_up_lock.lock().unwrap();
        if let Some(fd) = self.upper_dir_fd(node)? {
            return Ok(fd);
        }
        let lower = self
            .lower_dir_fd(node)?
            .ok_or_else(|| Error::not_found(&loc.path))?;
        let st = sys::fstat(lower.as_fd()).ctx("stat", &loc.path)?;
        match sys::mkdirat(parent_fd.as_fd(), &loc.name, 0o700) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(Error::io("mkdir", &loc.path, e)),
        }
        let fd = sys::open_dir_path(parent_fd.as_fd(), &loc.name).ctx("open", &loc.path)?;
        copy_xattrs(lower.as_fd(), OsStr::new(""), fd.as_fd(), OsStr::new(""));
        sys::lchownat(fd.as_fd(), OsStr::new(""), st.st_uid, st.st_gid).ctx("chown", &loc.path)?;
        sys::chmod_fd(fd.as_fd(), st.st_mode & 0o7777).ctx("chmod", &loc.path)?;
        sys::utimensat(
            fd.as_fd(),
            OsStr::new(""),
            sys::TimeSpec::At(st.st_atime, st.st_atime_nsec),
            sys::TimeSpec::At(st.st_mtime, st.st_mtime_nsec),
        )
        .ctx("utimes", &loc.path)?;
        let ust = sys::fstat(fd.as_fd()).ctx("stat", &loc.path)?;
        self.nodes.alias_id(self.upper_dev, ust.st_ino, node.ino);
        let fd = Arc::new(fd);
        node.set_upper(true);
        node.upper_dir.store(fd.clone());
        Ok(fd)
    }

    /// Copies a non-directory `node` up (content too, unless `with_data` is false, e.g. for an
    /// `O_TRUNC` open). Records the first touch with the lower base. No-op if already upper.
    pub(crate) fn copy_up(&self, node: &Arc<Node>, with_data: bool) -> Result<()> {
        if node.is_upper() {
            return Ok(());
        }
        // A masked secret never reaches the upper layer (every change to it starts here).
        self.refuse_masked(node, &node.path())?;
        if node.kind == Kind::Dir {
            self.ensure_upper_dir(node)?;
            return Ok(());
        }
        let loc = node.loc();
        let parent = loc
            .parent
            .as_ref()
            .ok_or_else(|| Error::no_parent(&loc.path))?;
        let upper_parent = self.ensure_upper_dir(parent)?;
        let _g = node.copy_up_lock.lock().unwrap();
        if node.is_upper() {
            return Ok(());
        }
        let lower_parent = self
            .lower_dir_fd(parent)?
            .ok_or_else(|| Error::not_found(&loc.path))?;
        let base = self.base_for(&loc.path)?;
        // Journal room before the copy: a full disk fails here with nothing copied.
        let link = if node.kind == Kind::Symlink {
            2 * 4096
        } else {
            0
        };
        let mut res = self.reserve(1, &[&loc.path], link, false)?;
        self.copy_entry(
            lower_parent.as_fd(),
            &loc.name,
            upper_parent.as_fd(),
            &loc.name,
            &loc.path,
            with_data,
        )?;
        let ust = sys::lstatat(upper_parent.as_fd(), &loc.name).ctx("lstat", &loc.path)?;
        self.nodes.alias_id(self.upper_dev, ust.st_ino, node.ino);
        node.set_upper(true);
        node.version.fetch_add(1, Ordering::AcqRel);
        // The change is pending until the last writer closes the file: new hash unknown yet.
        let new = super::state::state_of(upper_parent.as_fd(), &loc.name, &ust, &loc.path, false)?;
        self.record_in(&mut res, Draft::new(Op::Write, loc.path.clone(), base, new))?;
        Ok(())
    }

    /// Copies one entry (file, symlink, FIFO, socket) from `src_dir/src` to `dst_dir/dst`
    /// through the work dir, preserving owner, mode, times and user xattrs.
    pub(crate) fn copy_entry(
        &self,
        src_dir: BorrowedFd<'_>,
        src: &OsStr,
        dst_dir: BorrowedFd<'_>,
        dst: &OsStr,
        path: &RelPath,
        with_data: bool,
    ) -> Result<()> {
        let st = sys::lstatat(src_dir, src).ctx("lstat", path)?;
        let tmp = self.tmp_name();
        let tmp = OsStr::new(&tmp);
        let work = self.work_root.as_fd();
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => {
                let out = sys::openat(
                    work,
                    tmp,
                    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                    0o600,
                )
                .ctx("create", path)?;
                if with_data {
                    let input = sys::openat(src_dir, src, libc::O_RDONLY, 0).ctx("open", path)?;
                    if let Err(e) = self.copy_data(input.as_fd(), out.as_fd(), st.st_size as u64) {
                        let _ = sys::unlinkat(work, tmp, false);
                        return Err(Error::io("copy", path, e));
                    }
                }
                copy_xattrs(src_dir, src, work, tmp);
                sys::lchownat(out.as_fd(), OsStr::new(""), st.st_uid, st.st_gid)
                    .ctx("chown", path)?;
                sys::chmod_fd(out.as_fd(), st.st_mode & 0o7777).ctx("chmod", path)?;
                sys::futimens(
                    out.as_fd(),
                    sys::TimeSpec::At(st.st_atime, st.st_atime_nsec),
                    sys::TimeSpec::At(st.st_mtime, st.st_mtime_nsec),
                )
                .ctx("utimes", path)?;
            }
            libc::S_IFLNK => {
                let target = sys::readlinkat(src_dir, src).ctx("readlink", path)?;
                sys::symlinkat(&target, work, tmp).ctx("symlink", path)?;
                copy_xattrs(src_dir, src, work, tmp);
                sys::lchownat(work, tmp, st.st_uid, st.st_gid).ctx("chown", path)?;
                sys::utimensat(
                    work,
                    tmp,
                    sys::TimeSpec::At(st.st_atime, st.st_atime_nsec),
                    sys::TimeSpec::At(st.st_mtime, st.st_mtime_nsec),
                )
                .ctx("utimes", path)?;
            }
            libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK => {
                // A device node keeps its number; copied up, it is still one a commit refuses.
                sys::mknodat(work, tmp, st.st_mode, st.st_rdev).ctx("mknod", path)?;
                sys::lchownat(work, tmp, st.st_uid, st.st_gid).ctx("chown", path)?;
            }
            _ => return Err(Error::not_permitted(path)),
        }
        sys::renameat2(work, tmp, dst_dir, dst, 0).ctx("rename", path)
    }

    /// Copies file data: FICLONE, else copy_file_range, else read/write.
    fn copy_data(
        &self,
        input: BorrowedFd<'_>,
        out: BorrowedFd<'_>,
        size: u64,
    ) -> std::io::Result<()> {
        if size == 0 {
            return Ok(());
        }
        if !self.no_reflink.load(Ordering::Relaxed) {
            match sys::ficlone(out, input) {
                Ok(()) => return Ok(()),
                Err(_) => self.no_reflink.store(true, Ordering::Relaxed),
            }
        }
        crate::copy::copy_sparse(input, out, size)
    }

    /// Copies up the whole merged subtree of directory `node` (before a rename moves it).
    /// Returns, for each descendant, its path and lower base (for per-entry rename records).
    pub(crate) fn materialize_tree(
        &self,
        node: &Arc<Node>,
    ) -> Result<Vec<(RelPath, bool, Option<EntryState>)>> {
        let mut out = Vec::new();
        self.materialize_into(node.path(), &mut out)?;
        Ok(out)
    }

    fn materialize_into(
        &self,
        dir_path: RelPath,
        out: &mut Vec<(RelPath, bool, Option<EntryState>)>,
    ) -> Result<()> {
        let dir_node = self.node_at(&dir_path)?;
        let ufd = self.ensure_upper_dir(&dir_node)?;
        for entry in self.merged_listing(&dir_node)? {
            let child = dir_path.join(&entry.name)?;
            let base = self.base_for(&child)?;
            let is_dir = entry.kind == Kind::Dir;
            if entry.layer == super::Layer::Lower {
                if is_dir {
                    // Created inside the loop below via node_at + ensure_upper_dir.
                } else {
                    let lfd = self
                        .lower_dir_fd(&dir_node)?
                        .ok_or_else(|| Error::not_found(&child))?;
                    self.copy_entry(
                        lfd.as_fd(),
                        &entry.name,
                        ufd.as_fd(),
                        &entry.name,
                        &child,
                        true,
                    )?;
                }
            }
            out.push((child.clone(), is_dir, base));
            if is_dir {
                self.materialize_into(child, out)?;
            }
        }
        Ok(())
    }

    /// Removes leftovers of interrupted copy-ups.
    pub(crate) fn clean_work_dir(&self) {
        if let Ok(entries) = sys::read_dir(self.work_root.as_fd()) {
            for e in entries {
                let _ = sys::unlinkat(self.work_root.as_fd(), &e.name, false)
                    .or_else(|_| sys::unlinkat(self.work_root.as_fd(), &e.name, true));
            }
        }
    }
}

/// Copies `user.*` xattrs; failures are ignored (a filesystem without xattrs loses nothing else).
pub(crate) fn copy_xattrs(
    src_dir: BorrowedFd<'_>,
    src: &OsStr,
    dst_dir: BorrowedFd<'_>,
    dst: &OsStr,
) {
    let Ok(names) = sys::list_xattrs(src_dir, src) else {
        return;
    };
    for name in names {
        if !name.as_encoded_bytes().starts_with(b"user.") {
            continue;
        }
        if let Ok(v) = sys::get_xattr(src_dir, src, &name) {
            let _ = sys::lsetxattr(dst_dir, dst, &name, &v, 0);
        }
    }
}
