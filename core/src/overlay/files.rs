//! Open files: handles, read/write, and settling content hashes on the last writer's close.
//!
//! Reads of untouched files go to the lower file; the first open for writing copies the file
//! up. A read-only handle opened before a copy-up switches to the upper file on its next
//! read, so every handle sees the newest content. Content is hashed when the last writer
//! closes, never per write call and not on fsync (fsync makes the data and the journal durable;
//! recovery re-hashes what a crash left unsettled).

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use super::node::Node;
use super::state::state_of;
use super::{Attr, Fh, Ino, Kind, Layer, Opened, Overlay, Req};
use crate::error::{Error, IoContext, Result};
use crate::journal::record::{Draft, Op};
use crate::sys;

/// One open file.
pub(crate) struct Handle {
    pub node: Arc<Node>,
    fd: RwLock<(Arc<OwnedFd>, Layer)>,
    pub writable: bool,
    flags: i32,
}

impl Handle {
    pub fn fd(&self) -> Arc<OwnedFd> {
        self.fd.read().unwrap().0.clone()
    }

    /// The fd to read from, switching a stale lower fd to the upper file after a copy-up.
    fn read_fd(&self, ov: &Overlay) -> Result<Arc<OwnedFd>> {
        let (fd, layer) = self.fd.read().unwrap().clone();
        if layer == Layer::Lower && self.node.is_upper() {
            let (dir, name) = ov.upper_location(&self.node)?;
            let nfd = Arc::new(
                sys::openat(dir.as_fd(), &name, libc::O_RDONLY, 0)
                    .ctx("open", &self.node.path())?,
            );
            *self.fd.write().unwrap() = (nfd.clone(), Layer::Upper);
            return Ok(nfd);
        }
        Ok(fd)
    }

    /// The writable upper fd of a writable handle.
    pub(crate) fn upper_fd(&self, _ov: &Overlay) -> Result<Arc<OwnedFd>> {
        Ok(self.fd())
    }
}

fn access_mode(flags: i32) -> i32 {
    flags & libc::O_ACCMODE
}

fn wants_write(flags: i32) -> bool {
    access_mode(flags) != libc::O_RDONLY || flags & libc::O_TRUNC != 0
}

impl Overlay {
    /// Opens `ino`. Write access copies the file up first. A node a commit or discard took
    /// out of the overlay answers `ESTALE`: the kernel then looks the name up again.
    pub fn open(&self, req: &Req, ino: Ino, flags: i32) -> Result<Opened> {
        let _gate = wants_write(flags).then(|| self.revert_gate.read().unwrap());
        self.open_gated(req, ino, flags)
    }

    /// `open` for a caller that already holds the revert gate when writing.
    fn open_gated(&self, _req: &Req, ino: Ino, flags: i32) -> Result<Opened> {
        let node = self.node(ino)?;
        let path = node.path();
        if node.kind == Kind::Dir {
            return Err(Error::is_a_directory(&path));
        }
        if node.reverted.load(Ordering::Acquire) {
            return Err(Error::stale(&path));
        }
        self.refuse_masked(&node, &path)?;
        let writable = wants_write(flags);
        // The kernel opens device nodes itself (and refuses: the mount is `nodev`); a device
        // node in either layer is never opened here, where it would reach the host's device.
        if matches!(node.kind, Kind::CharDevice | Kind::BlockDevice) {
            return Err(Error::permission_denied(&path));
        }
        if writable {
            self.copy_up(&node, flags & libc::O_TRUNC == 0)?;
        }
        let loc = node.loc();
        let parent = loc.parent.as_ref().ok_or_else(|| Error::no_parent(&path))?;
        let (dir, layer) = if node.is_upper() {
            (self.upper_dir_fd(parent)?, Layer::Upper)
        } else {
            (self.lower_dir_fd(parent)?, Layer::Lower)
        };
        let dir = dir.ok_or_else(|| Error::not_found(&path))?;
        let mut oflags = flags
            & (libc::O_ACCMODE
                | libc::O_APPEND
                | libc::O_TRUNC
                | libc::O_DIRECT
                | libc::O_SYNC
                | libc::O_DSYNC
                | libc::O_NONBLOCK);
        if layer == Layer::Lower {
            oflags = libc::O_RDONLY;
        }
        let fd = sys::openat(dir.as_fd(), &loc.name, oflags, 0).ctx("open", &path)?;
        self.new_handle(node, fd, layer, writable, flags)
    }

    fn new_handle(
        &self,
        node: Arc<Node>,
        fd: OwnedFd,
        layer: Layer,
        writable: bool,
        flags: i32,
    ) -> Result<Opened> {
        let version = node.version.load(Ordering::Acquire);
        let keep_cache = node.opened_version.swap(version, Ordering::AcqRel) == version;
        if writable {
            // With FUSE passthrough, writes bypass the daemon: treat every writable open as a
            // change to settle (hash) at close.
            node.writers.fetch_add(1, Ordering::AcqRel);
            node.mark_written();
            node.note_writer();
        }
        let fd = Arc::new(fd);
        let fh = self.new_fh();
        self.handles.insert(
            fh,
            Arc::new(Handle {
                node,
                fd: RwLock::new((fd.clone(), layer)),
                writable,
                flags,
            }),
        );
        Ok(Opened {
            fh,
            layer,
            backing: fd,
            keep_cache: keep_cache && !writable,
        })
    }

    /// Creates and opens a regular file.
    pub fn create(
        &self,
        req: &Req,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(Attr, Opened)> {
        let _gate = self.revert_gate.read().unwrap();
        let dir = self.node(parent)?;
        let path = dir.path().join(name)?;
        if dir.kind != Kind::Dir {
            return Err(Error::not_a_directory(&path));
        }
        // Creating inside a masked secret directory is refused; a hidden name the host does
        // not have may be created (the workspace's own secret, never committed).
        self.refuse_masked(&dir, &dir.path())?;
        if self.resolve(&dir, name, &path)?.is_some() {
            if flags & libc::O_EXCL != 0 {
                return Err(Error::exists(&path));
            }
            let attr = self.lookup(parent, name)?;
            let opened = self.open_gated(req, attr.ino, flags)?;
            return Ok((self.getattr(attr.ino, Some(opened.fh))?, opened));
        }
        let mut res = self.reserve(1, &[&path], 0, false)?;
        let ufd = self.ensure_upper_dir(&dir)?;
        let perm = mode & 0o7777 & !umask;
        let acc = match access_mode(flags) {
            libc::O_RDONLY => libc::O_RDWR,
            m => m,
        };
        let fd = sys::openat(
            ufd.as_fd(),
            name,
            libc::O_CREAT | libc::O_EXCL | acc | (flags & libc::O_APPEND),
            perm,
        )
        .ctx("create", &path)?;
        let (uid, gid) = match sys::fstat(ufd.as_fd()) {
            Ok(st) if st.st_mode & libc::S_ISGID != 0 => (req.uid, st.st_gid),
            _ => (req.uid, req.gid),
        };
        sys::lchownat(fd.as_fd(), OsStr::new(""), uid, gid).ctx("chown", &path)?;
        // Exactly the mode asked for: the daemon's own umask must not apply a second time.
        sys::chmod_fd(fd.as_fd(), perm).ctx("chmod", &path)?;
        let st = sys::fstat(fd.as_fd()).ctx("fstat", &path)?;
        let new = state_of(ufd.as_fd(), name, &st, &path, true)?;
        let base = self.base_for(&path)?;
        if let Err(e) = self.record_in(&mut res, Draft::new(Op::Create, path.clone(), base, new)) {
            // Nothing may stay behind a create that failed (it would show through the mount).
            let _ = sys::unlinkat(ufd.as_fd(), name, false);
            return Err(e);
        }
        let node = self.node_for(&dir, name, path, &st, Layer::Upper)?;
        let node = self.nodes.count_lookup(&node);
        let attr = self.attr_of(node.ino, &st);
        let opened = self.new_handle(node, fd, Layer::Upper, true, flags)?;
        Ok((attr, opened))
    }

    /// The fd handle `fh` reads from (for a copy between a handle and an inode).
    pub(crate) fn handle_read_fd(&self, fh: Fh) -> Result<Arc<OwnedFd>> {
        self.handle(fh)?.read_fd(self)
    }

    /// The node and writable fd of handle `fh` (`EBADF` unless it was opened for writing).
    pub(crate) fn handle_write_fd(&self, fh: Fh) -> Result<(Arc<Node>, Arc<OwnedFd>)> {
        let h = self.handle(fh)?;
        if !h.writable {
            return Err(Error::bad_handle(&h.node.path()));
        }
        Ok((h.node.clone(), h.fd()))
    }

    fn handle(&self, fh: Fh) -> Result<Arc<Handle>> {
        self.handles
            .get(&fh)
            .map(|h| h.clone())
            .ok_or(Error::UnknownHandle(fh))
    }

    /// Reads up to `size` bytes at `offset`.
    pub fn read(&self, fh: Fh, offset: u64, size: u32) -> Result<Vec<u8>> {
        let h = self.handle(fh)?;
        let fd = h.read_fd(self)?;
        read_at(fd.as_fd(), offset, size, &h.node)
    }

    /// Writes `data` at `offset` (or at the end for O_APPEND handles).
    pub fn write(&self, fh: Fh, offset: u64, data: &[u8]) -> Result<u32> {
        let h = self.handle(fh)?;
        if !h.writable {
            return Err(Error::bad_handle(&h.node.path()));
        }
        let fd = h.fd();
        let n = if h.flags & libc::O_APPEND != 0 {
            // pwrite ignores the offset on O_APPEND fds: the kernel appends atomically.
            sys::pwrite(fd.as_fd(), data, 0)
        } else {
            sys::pwrite(fd.as_fd(), data, offset)
        }
        .ctx("write", &h.node.path())?;
        h.node.mark_written();
        Ok(n as u32)
    }

    /// `close()` of one file descriptor (may happen several times per handle).
    pub fn flush(&self, fh: Fh) -> Result<()> {
        let h = self.handle(fh)?;
        if h.writable {
            // The closing process wrote (or may have, with passthrough): its content record
            // comes at the asynchronous RELEASE, when the process may be gone.
            h.node.note_writer();
        }
        Ok(())
    }

    /// Last close of a handle: the last writer settles the content hash in the journal.
    pub fn release(&self, fh: Fh) -> Result<()> {
        let Some((_, h)) = self.handles.remove(&fh) else {
            return Ok(());
        };
        if h.writable {
            // The writer count drops and the new content is recorded as one step for commit.
            let _gate = self.revert_gate.read().unwrap();
            let left = h.node.writers.fetch_sub(1, Ordering::AcqRel) - 1;
            if left == 0 {
                return self.finish_write(&h);
            }
        }
        Ok(())
    }

    /// Hashes the written file and records its new state under every name it has when the
    /// record is appended. RELEASE is asynchronous (close() returns before the daemon sees
    /// it), so the file may have been renamed, linked or unlinked since its last close: the
    /// names are read under the record lock, which renames, links and unlinks hold while
    /// they record and move names. An unlinked file is not recorded (that would resurrect its
    /// old name).
    pub(crate) fn finish_write(&self, h: &Handle) -> Result<()> {
        let fd = h.fd();
        // The handle may be write-only: hash through a read-only reopen of the same inode.
        self.settle_content(&h.node, &|| {
            sys::reopen(fd.as_fd(), libc::O_RDONLY).ctx("open", &h.node.path())
        })
    }

    /// [`Overlay::finish_write`] for `node`, whose content `open_ro` opens read-only.
    pub(crate) fn settle_content(
        &self,
        node: &Node,
        open_ro: &dyn Fn() -> Result<OwnedFd>,
    ) -> Result<()> {
        if node.unlinked.load(Ordering::Acquire) || !node.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let res = self.record_settled(node, open_ro);
        if res.is_err() {
            // Still unsettled: a later close, settle or recovery records it.
            node.dirty.store(true, Ordering::Release);
        }
        res
    }

    /// Hashes `node`'s content and records it (the body of [`Overlay::settle_content`]).
    fn record_settled(&self, node: &Node, open_ro: &dyn Fn() -> Result<OwnedFd>) -> Result<()> {
        let seen = node.path();
        // Content changes after this point (a new writer's open, a truncate, a write by
        // inode) bump the version; each of them records the file again itself.
        let hashed_version = node.version.load(Ordering::Acquire);
        let rfd = open_ro()?;
        let st = sys::fstat(rfd.as_fd()).ctx("fstat", &seen)?;
        // Size from the bytes hashed: another handle may still be writing.
        let (hash, size) = crate::hash::hash_fd_len(rfd.as_fd()).ctx("hash", &seen)?;
        let new = crate::journal::record::EntryState::File {
            hash: Some(hash),
            mode: st.st_mode & 0o7777,
            size,
        };
        // The base may hash the host file: outside the lock, for the name seen now.
        let seen_base = self.base_for(&seen)?;
        crate::fault::point(crate::fault::Point::ReleaseAfterHash);
        let order = self.record_lock.lock().unwrap();
        if node.unlinked.load(Ordering::Acquire) {
            return Ok(());
        }
        // The file changed while it was hashed (RELEASE is asynchronous: a writer may have
        // opened, written and closed it meanwhile, and recorded the newer content already).
        // This hash is stale: recording it after that record would make the journal lie.
        if node.version.load(Ordering::Acquire) != hashed_version {
            return Ok(());
        }
        for path in node.names() {
            let base = if self.changes.contains(&path) {
                None
            } else if path == seen {
                seen_base.clone()
            } else {
                Some(self.lower_state(&path)?)
            };
            let mut draft = Draft::new(Op::Write, path, base, new.clone());
            draft.by = node.writer();
            self.record_locked(&order, draft)?;
        }
        Ok(())
    }

    /// fsync: the data to disk and the journal synced. The new content's hash is recorded
    /// when the last writer closes the file, not here: hashing is a full read of the file
    /// (≈ 1 s for 2 GiB), and durability does not need it. After a crash, recovery re-hashes
    /// and records every upper file changed since its last record (`reconcile`), so fsynced
    /// data is never lost; `status` re-hashes files still open for writing.
    pub fn fsync(&self, fh: Fh, datasync: bool) -> Result<()> {
        let h = self.handle(fh)?;
        let fd = h.fd();
        sys::fsync(fd.as_fd(), datasync).ctx("fsync", &h.node.path())?;
        if h.writable {
            self.journal.sync()?;
        }
        Ok(())
    }

    /// fallocate (including hole punching) on a writable handle.
    pub fn fallocate(&self, fh: Fh, offset: u64, length: u64, mode: i32) -> Result<()> {
        let h = self.handle(fh)?;
        if !h.writable {
            return Err(Error::bad_handle(&h.node.path()));
        }
        sys::fallocate(h.fd().as_fd(), mode, offset, length).ctx("fallocate", &h.node.path())?;
        h.node.mark_written();
        Ok(())
    }

    /// lseek, for SEEK_DATA / SEEK_HOLE.
    pub fn lseek(&self, fh: Fh, offset: i64, whence: i32) -> Result<i64> {
        let h = self.handle(fh)?;
        let fd = h.read_fd(self)?;
        sys::lseek(fd.as_fd(), offset, whence).ctx("lseek", &h.node.path())
    }

    /// In-kernel copy between two handles of this overlay.
    pub fn copy_file_range(
        &self,
        fh_in: Fh,
        off_in: u64,
        fh_out: Fh,
        off_out: u64,
        len: u64,
    ) -> Result<u32> {
        let hi = self.handle(fh_in)?;
        let ho = self.handle(fh_out)?;
        if !ho.writable {
            return Err(Error::bad_handle(&ho.node.path()));
        }
        let fi = hi.read_fd(self)?;
        let fo = ho.fd();
        let n = sys::copy_file_range(
            fi.as_fd(),
            off_in,
            fo.as_fd(),
            off_out,
            len.min(u32::MAX as u64) as usize,
        )
        .ctx("copy_file_range", &ho.node.path())?;
        ho.node.mark_written();
        Ok(n as u32)
    }
}

/// Reads up to `size` bytes of `node`'s open file `fd` at `offset` (short only at its end).
pub(crate) fn read_at(fd: BorrowedFd<'_>, offset: u64, size: u32, node: &Node) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; size as usize];
    let mut done = 0;
    while done < buf.len() {
        let n = sys::pread(fd, &mut buf[done..], offset + done as u64).ctx("read", &node.path())?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}
