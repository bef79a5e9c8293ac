//! Handle-less I/O: the no-open mode, where the kernel opens files without asking the daemon.
//!
//! Reads, writes and the other file operations then arrive with file handle 0 and are served
//! by inode: each opens the node's file in its current layer (an `openat` from the cached
//! parent directory fd; warm reads are served by the kernel's page cache and never get here).
//! The first write-like operation (write, fallocate, copy_file_range into the file, a
//! truncate through `setattr`) copies the file up. There is no last close to hash the new
//! content at, so a file written here is unsettled (`dirty`, held in `Overlay::unsettled`)
//! until [`Overlay::settle_written`] hashes and records it: when its writes went idle (the
//! daemon's settler thread), or before status, diff, verify, commit and discard read the
//! journal. A crash before that is covered by recovery, which re-hashes every upper file
//! changed after its last record.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::files::read_at;
use super::node::Node;
use super::{Attr, Fh, Ino, Kind, Overlay, Req, SetAttr};
use crate::error::{Error, IoContext, Result};
use crate::sys;

/// The overlay's clock for `Node::last_write_ms`.
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Overlay {
    /// Turns no-open mode on (the FUSE adapter, at `init`): from then on an upper file whose
    /// last name is removed stays open for I/O by inode (see `Node::orphan`).
    pub fn set_handleless(&self, on: bool) {
        self.handleless.store(on, Ordering::Release);
    }

    /// True in no-open mode.
    pub(crate) fn is_handleless(&self) -> bool {
        self.handleless.load(Ordering::Acquire)
    }

    /// The regular-file node `ino`, refused as `open` refuses it: a directory, a masked secret
    /// (the kernel opened it without asking; its content is never served) or a device node.
    fn io_node(&self, ino: Ino) -> Result<Arc<Node>> {
        let node = self.node(ino)?;
        if node.kind == Kind::Dir {
            return Err(Error::is_a_directory(&node.path()));
        }
        if matches!(node.kind, Kind::CharDevice | Kind::BlockDevice) {
            return Err(Error::permission_denied(&node.path()));
        }
        self.refuse_masked(&node, &node.path())?;
        Ok(node)
    }

    /// `node`'s file opened with `flags` in its current layer (read-only in the lower one), or
    /// its kept fd once its last name is gone.
    fn inode_fd(&self, node: &Node, flags: i32) -> Result<Arc<OwnedFd>> {
        if let Some(fd) = node.orphan.lock().unwrap().clone() {
            return Ok(fd);
        }
        Ok(Arc::new(self.open_in_layer(node, flags)?))
    }

    /// `node`'s file opened with `flags` at its name in its current layer (read-only in the
    /// lower one).
    fn open_in_layer(&self, node: &Node, flags: i32) -> Result<OwnedFd> {
        let loc = node.loc();
        let parent = loc
            .parent
            .as_ref()
            .ok_or_else(|| Error::no_parent(&loc.path))?;
        let (dir, flags) = if node.is_upper() {
            (self.upper_dir_fd(parent)?, flags)
        } else {
            (self.lower_dir_fd(parent)?, libc::O_RDONLY)
        };
        let dir = dir.ok_or_else(|| Error::not_found(&loc.path))?;
        sys::openat(dir.as_fd(), &loc.name, flags, 0).ctx("open", &loc.path)
    }

    /// A read-only fd of its own on `node`'s content (for hashing: a kept fd is shared).
    fn own_read_fd(&self, node: &Node) -> Result<OwnedFd> {
        match node.orphan.lock().unwrap().clone() {
            Some(fd) => sys::reopen(fd.as_fd(), libc::O_RDONLY).ctx("open", &node.path()),
            None => self.open_in_layer(node, libc::O_RDONLY),
        }
    }

    /// The node `ino` copied up, with its upper file opened for writing (`append`: with
    /// `O_APPEND`). The caller holds the revert gate.
    fn writable_inode(&self, ino: Ino, append: bool) -> Result<(Arc<Node>, Arc<OwnedFd>)> {
        let node = self.io_node(ino)?;
        if let Some(fd) = self.private_orphan(&node)? {
            return Ok((node, fd));
        }
        if node.unlinked.load(Ordering::Acquire) || node.reverted.load(Ordering::Acquire) {
            // Removed (or committed, or discarded) while the kernel still had it open: there
            // is no name left to copy it up under.
            return Err(Error::stale(&node.path()));
        }
        self.copy_up(&node, true)?;
        let flags = libc::O_WRONLY | if append { libc::O_APPEND } else { 0 };
        let fd = self.inode_fd(&node, flags)?;
        Ok((node, fd))
    }

    /// The kept fd of an unlinked `node`, made writable: a kept host file is first copied into
    /// an unnamed file of the work dir (the workspace never writes the host's file, and the
    /// content of a file without a name is never committed).
    fn private_orphan(&self, node: &Node) -> Result<Option<Arc<OwnedFd>>> {
        let mut kept = node.orphan.lock().unwrap();
        let Some(fd) = kept.clone() else {
            return Ok(None);
        };
        if !node.orphan_is_host.load(Ordering::Acquire) {
            return Ok(Some(fd));
        }
        let path = node.path();
        let st = sys::fstat(fd.as_fd()).ctx("fstat", &path)?;
        let tmp = self.tmp_name();
        let tmp = OsStr::new(&tmp);
        let work = self.work_root.as_fd();
        let copy = sys::openat(
            work,
            tmp,
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            0o600,
        )
        .ctx("create", &path)?;
        let _ = sys::unlinkat(work, tmp, false);
        crate::copy::copy_sparse(fd.as_fd(), copy.as_fd(), st.st_size as u64)
            .map_err(|e| Error::io("copy", &path, e))?;
        sys::chmod_fd(copy.as_fd(), st.st_mode & 0o7777).ctx("chmod", &path)?;
        let copy = Arc::new(copy);
        *kept = Some(copy.clone());
        node.orphan_is_host.store(false, Ordering::Release);
        Ok(Some(copy))
    }

    /// Content of `node` changed by inode: unsettled until [`Overlay::settle_written`].
    fn note_written(&self, node: &Arc<Node>) {
        node.last_write_ms.store(now_ms(), Ordering::Release);
        // `dirty` first, then the set: a settle removes a node from the set only while it is
        // not dirty, under the set's shard lock, so this write is never lost from it.
        node.mark_written();
        node.note_writer_if_new();
        self.unsettled.insert(node.ino, node.clone());
    }

    /// Creates (or, without `O_EXCL`, opens) regular file `name` in `parent` without a handle:
    /// the kernel of a no-open connection never sends RELEASE, not even for a created file, so
    /// the reply carries handle 0 and I/O follows by inode. An existing file opened with
    /// `O_TRUNC` is truncated here (the kernel counts the file as created and leaves it).
    pub fn create_ino(
        &self,
        req: &Req,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<Attr> {
        match self.mknod(req, parent, name, libc::S_IFREG | (mode & 0o7777), umask, 0) {
            Err(e) if e.errno() == libc::EEXIST && flags & libc::O_EXCL == 0 => {
                let attr = self.lookup(parent, name)?;
                if attr.kind == Kind::Dir {
                    return Err(Error::is_a_directory(&self.node(attr.ino)?.path()));
                }
                if flags & libc::O_TRUNC != 0 && flags & libc::O_ACCMODE != libc::O_RDONLY {
                    let set = SetAttr {
                        size: Some(0),
                        ..SetAttr::default()
                    };
                    return self.setattr(req, attr.ino, &set);
                }
                Ok(attr)
            }
            other => other,
        }
    }

    /// Reads up to `size` bytes of `ino` at `offset`.
    pub fn read_ino(&self, ino: Ino, offset: u64, size: u32) -> Result<Vec<u8>> {
        let node = self.io_node(ino)?;
        let fd = self.inode_fd(&node, libc::O_RDONLY)?;
        read_at(fd.as_fd(), offset, size, &node)
    }

    /// Writes `data` to `ino` at `offset` (at its end when `append`), copying it up first.
    pub fn write_ino(&self, ino: Ino, offset: u64, data: &[u8], append: bool) -> Result<u32> {
        let _gate = self.revert_gate.read().unwrap();
        let (node, fd) = self.writable_inode(ino, append)?;
        let n = sys::pwrite(fd.as_fd(), data, offset).ctx("write", &node.path())?;
        self.note_written(&node);
        Ok(n as u32)
    }

    /// fallocate (including hole punching) of `ino`, copying it up first.
    pub fn fallocate_ino(&self, ino: Ino, offset: u64, length: u64, mode: i32) -> Result<()> {
        let _gate = self.revert_gate.read().unwrap();
        let (node, fd) = self.writable_inode(ino, false)?;
        sys::fallocate(fd.as_fd(), mode, offset, length).ctx("fallocate", &node.path())?;
        self.note_written(&node);
        Ok(())
    }

    /// fsync of `ino`: its upper data (a lower file has nothing of the workspace's) and the
    /// journal to disk.
    pub fn fsync_ino(&self, ino: Ino, datasync: bool) -> Result<()> {
        let node = self.node(ino)?;
        if node.kind == Kind::Dir {
            return self.fsyncdir(ino);
        }
        let kept = node.orphan.lock().unwrap().is_some();
        if node.is_upper() || kept {
            let fd = self.inode_fd(&node, libc::O_RDONLY)?;
            sys::fsync(fd.as_fd(), datasync).ctx("fsync", &node.path())?;
            self.journal.sync()?;
        }
        Ok(())
    }

    /// lseek of `ino`, for SEEK_DATA / SEEK_HOLE.
    pub fn lseek_ino(&self, ino: Ino, offset: i64, whence: i32) -> Result<i64> {
        let node = self.io_node(ino)?;
        let fd = self.inode_fd(&node, libc::O_RDONLY)?;
        sys::lseek(fd.as_fd(), offset, whence).ctx("lseek", &node.path())
    }

    /// In-kernel copy between two files, each given by its handle or, with handle 0, by its
    /// inode (the destination is then copied up first).
    pub fn copy_file_range_by(
        &self,
        (ino_in, fh_in): (Ino, Fh),
        off_in: u64,
        (ino_out, fh_out): (Ino, Fh),
        off_out: u64,
        len: u64,
    ) -> Result<u32> {
        if fh_in != 0 && fh_out != 0 {
            return self.copy_file_range(fh_in, off_in, fh_out, off_out, len);
        }
        let _gate = self.revert_gate.read().unwrap();
        let fi = if fh_in == 0 {
            let node = self.io_node(ino_in)?;
            self.inode_fd(&node, libc::O_RDONLY)?
        } else {
            self.handle_read_fd(fh_in)?
        };
        let (node, fo) = if fh_out == 0 {
            self.writable_inode(ino_out, false)?
        } else {
            self.handle_write_fd(fh_out)?
        };
        let n = sys::copy_file_range(
            fi.as_fd(),
            off_in,
            fo.as_fd(),
            off_out,
            len.min(u32::MAX as u64) as usize,
        )
        .ctx("copy_file_range", &node.path())?;
        if fh_out == 0 {
            self.note_written(&node);
        } else {
            node.mark_written();
        }
        Ok(n as u32)
    }

    /// Hashes and records the content of files written by inode: all of them (`idle` `None`:
    /// status, verify, commit and discard read the journal next), or those not written for
    /// `idle`. A file a handle still has open for writing is left to that handle's close.
    pub fn settle_written(&self, idle: Option<Duration>) -> Result<()> {
        if self.unsettled.is_empty() {
            return Ok(());
        }
        let _gate = self.revert_gate.read().unwrap();
        let now = now_ms();
        let nodes: Vec<Arc<Node>> = self.unsettled.iter().map(|e| e.value().clone()).collect();
        let mut first_err = None;
        for node in nodes {
            if node.unlinked.load(Ordering::Acquire) {
                // No name left (unlinked, committed or discarded): nothing to record (the
                // content of a kept file without a name is never committed).
                self.unsettled
                    .remove_if(&node.ino, |_, n| Arc::ptr_eq(n, &node));
                continue;
            }
            if node.writers.load(Ordering::Acquire) > 0 {
                continue;
            }
            let last = node.last_write_ms.load(Ordering::Acquire);
            if idle.is_some_and(|idle| now.saturating_sub(last) < idle.as_millis() as u64) {
                continue;
            }
            let res = self.settle_content(&node, &|| self.own_read_fd(&node));
            match res {
                Ok(()) => {
                    self.unsettled
                        .remove_if(&node.ino, |_, n| !n.dirty.load(Ordering::Acquire));
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Before an upper file loses its last name in no-open mode: keeps it open in `node` so
    /// I/O by inode still reaches it (POSIX: an open file outlives its name). The fd closes
    /// when the kernel forgets the node.
    /// A host file (`dir` is then its lower directory) is kept read-only, and copied only if
    /// it is written to afterwards.
    pub(crate) fn keep_if_open(&self, node: &Node, dir: BorrowedFd<'_>, name: &OsStr) {
        if !self.is_handleless() || node.kind != Kind::File {
            return;
        }
        let host = !node.is_upper();
        let fd = if host {
            sys::openat(dir, name, libc::O_RDONLY, 0)
        } else {
            sys::openat(dir, name, libc::O_RDWR, 0)
                .or_else(|_| sys::openat(dir, name, libc::O_RDONLY, 0))
        };
        if let Ok(fd) = fd {
            *node.orphan.lock().unwrap() = Some(Arc::new(fd));
            node.orphan_is_host.store(host, Ordering::Release);
        }
    }
}
