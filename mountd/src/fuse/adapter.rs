//! The `fuser::Filesystem` implementation: converts arguments, calls the matching
//! [`Overlay`] method, replies. No filesystem logic lives here.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, Errno, FileHandle, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyIoctl, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request,
    TimeOrNow, WriteFlags,
};
use tracing::{debug, info, warn};
use wsfs::overlay::{Attr, Layer, Opened, Overlay, Req, SetAttr};

use super::attr::{errno, file_attr, file_type, negative_attr, set_time, TTL};
use super::passthrough::IoModes;

const GEN: Generation = Generation(0);
const MAX_WRITE: u32 = 1 << 20;
const MAX_BACKGROUND: u16 = 64;

/// The mounted filesystem: the overlay plus the adapter's own per-connection state.
pub(super) struct WsfsFs {
    ov: Arc<Overlay>,
    /// FUSE passthrough was negotiated in `init`.
    passthrough: bool,
    io: IoModes,
    /// Every visible host directory is watched (set by the watcher): host changes invalidate
    /// the kernel's caches, so `opendir` may let the kernel keep its cached listing.
    host_watched: Arc<AtomicBool>,
}

impl WsfsFs {
    pub(super) fn new(ov: Arc<Overlay>, host_watched: Arc<AtomicBool>) -> WsfsFs {
        WsfsFs {
            ov,
            passthrough: false,
            io: IoModes::default(),
            host_watched,
        }
    }
}

fn req(r: &Request) -> Req {
    Req {
        uid: r.uid(),
        gid: r.gid(),
        pid: r.pid(),
    }
}

/// Logs a failed operation and returns the errno to reply.
fn fail(op: &'static str, e: &wsfs::Error) -> Errno {
    debug!(op, error = %e, "fuse op failed");
    errno(e)
}

impl WsfsFs {
    /// Like [`fail`] for a request about an inode the kernel holds: `ENOENT` there means the
    /// daemon lost track of a live entry, so it is logged with what the daemon knows of it.
    fn fail_on(&self, op: &'static str, ino: INodeNo, e: &wsfs::Error) -> Errno {
        if e.errno() == libc::ENOENT {
            warn!(op, ino = ino.0, error = %e, node = %self.ov.describe_node(ino.0), "ENOENT for an inode the kernel holds");
        }
        fail(op, e)
    }
}

fn reply_entry(op: &'static str, res: wsfs::Result<Attr>, reply: ReplyEntry) {
    match res {
        Ok(a) => reply.entry(&TTL, &file_attr(&a), GEN),
        Err(e) => reply.error(fail(op, &e)),
    }
}

fn reply_empty(op: &'static str, res: wsfs::Result<()>, reply: ReplyEmpty) {
    match res {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(fail(op, &e)),
    }
}

/// Replies to a getxattr/listxattr: the size for a size query, else the data or `ERANGE`.
fn reply_xattr(data: &[u8], size: u32, reply: ReplyXattr) {
    if size == 0 {
        reply.size(data.len() as u32);
    } else if data.len() > size as usize {
        reply.error(Errno::from_i32(libc::ERANGE));
    } else {
        reply.data(data);
    }
}

/// Flags of a passthrough open. `FOPEN_NOFLUSH` also for writers: `flush` has no work in the
/// overlay (content is settled at `release`), data and shared mappings go straight to the
/// backing file so the kernel has no dirty FUSE pages to write back at close, and POSIX locks
/// are the kernel's own. Saves one synchronous round trip per `close` of a written file.
const PASSTHROUGH_FLAGS: FopenFlags = FopenFlags::FOPEN_NOFLUSH;

/// Flags of a non-passthrough open. Writers keep `FLUSH`: the kernel writes dirty pages of
/// shared mappings back on it.
fn cached_flags(opened: &Opened, read_only: bool) -> FopenFlags {
    let mut f = FopenFlags::empty();
    if opened.keep_cache {
        f |= FopenFlags::FOPEN_KEEP_CACHE;
    }
    if read_only {
        f |= FopenFlags::FOPEN_NOFLUSH;
    }
    f
}

impl Filesystem for WsfsFs {
    fn init(&mut self, _req: &Request, c: &mut KernelConfig) -> io::Result<()> {
        for cap in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_HANDLE_KILLPRIV_V2,
            InitFlags::FUSE_AUTO_INVAL_DATA,
            // O_TRUNC reaches `open`, so the overlay copies up without the data it would drop.
            InitFlags::FUSE_ATOMIC_O_TRUNC,
        ] {
            if c.add_capabilities(cap).is_err() {
                debug!(?cap, "capability not offered by the kernel");
            }
        }
        // Passthrough, never together with the writeback cache (the kernel would disable it).
        self.passthrough = c.capabilities().contains(InitFlags::FUSE_PASSTHROUGH)
            && c.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && c.set_max_stack_depth(2).is_ok();
        let _ = c.set_max_write(MAX_WRITE);
        if let Err(max) = c.set_max_readahead(u32::MAX) {
            let _ = c.set_max_readahead(max);
        }
        let _ = c.set_max_background(MAX_BACKGROUND);
        info!(
            kernel_abi = %c.kernel_abi(),
            passthrough = self.passthrough,
            "FUSE session initialised"
        );
        Ok(())
    }

    fn destroy(&mut self) {
        info!("FUSE session destroyed");
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.ov.lookup(parent.0, name) {
            Ok(a) => reply.entry(&TTL, &file_attr(&a), GEN),
            // Cached negative entry; the watcher invalidates it if the name appears on the host.
            Err(e) if e.errno() == libc::ENOENT => reply.entry(&TTL, &negative_attr(), GEN),
            Err(e) => reply.error(fail("lookup", &e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.ov.forget(ino.0, nlookup);
    }

    // `batch_forget`: fuser 0.18 keeps `ForgetOne` private, so its default (one `forget` per
    // node) serves it.

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let mut res = self.ov.getattr(ino.0, fh.map(|f| f.0));
        if fh.is_none() && res.as_ref().is_err_and(|e| e.errno() == libc::ENOENT) {
            // Unlinked but still open (the kernel's fstat carries no handle): ask via a handle.
            if let Some(h) = self.io.any_handle(ino.0) {
                res = self.ov.getattr(ino.0, Some(h));
            }
        }
        match res {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(self.fail_on("getattr", ino, &e)),
        }
    }

    fn setattr(
        &self,
        r: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(set_time),
            mtime: mtime.map(set_time),
            fh: fh.map(|f| f.0),
        };
        match self.ov.setattr(&req(r), ino.0, &set) {
            Ok(a) => reply.attr(&TTL, &file_attr(&a)),
            Err(e) => reply.error(self.fail_on("setattr", ino, &e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.ov.readlink(ino.0) {
            Ok(t) => reply.data(t.as_bytes()),
            Err(e) => reply.error(fail("readlink", &e)),
        }
    }

    fn mknod(
        &self,
        r: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let res = self.ov.mknod(&req(r), parent.0, name, mode, umask, rdev);
        reply_entry("mknod", res, reply);
    }

    fn mkdir(
        &self,
        r: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let res = self.ov.mkdir(&req(r), parent.0, name, mode, umask);
        reply_entry("mkdir", res, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty("unlink", self.ov.unlink(parent.0, name), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty("rmdir", self.ov.rmdir(parent.0, name), reply);
    }

    fn symlink(
        &self,
        r: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let res = self
            .ov
            .symlink(&req(r), parent.0, link_name, target.as_os_str());
        reply_entry("symlink", res, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_WHITEOUT) {
            debug!(op = "rename", "RENAME_WHITEOUT refused");
            return reply.error(Errno::from_i32(libc::EINVAL));
        }
        let res = self
            .ov
            .rename(parent.0, name, newparent.0, newname, flags.bits());
        reply_empty("rename", res, reply);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply_entry("link", self.ov.link(ino.0, newparent.0, newname), reply);
    }

    fn open(&self, r: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let opened = match self.ov.open(&req(r), ino.0, flags.0) {
            Ok(o) => o,
            Err(e) => return reply.error(self.fail_on("open", ino, &e)),
        };
        let read_only = flags.acc_mode() == OpenAccMode::O_RDONLY;
        let want = self.passthrough && opened.layer == Layer::Upper;
        let fh = FileHandle(opened.fh);
        match self.io.open(ino.0, opened.fh, want, || {
            reply.open_backing(&*opened.backing)
        }) {
            Some(id) => reply.opened_passthrough(fh, PASSTHROUGH_FLAGS, &id),
            None => reply.opened(fh, cached_flags(&opened, read_only)),
        }
    }

    fn create(
        &self,
        r: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let (a, opened) = match self.ov.create(&req(r), parent.0, name, mode, umask, flags) {
            Ok(x) => x,
            Err(e) => return reply.error(self.fail_on("create", parent, &e)),
        };
        let read_only = flags & libc::O_ACCMODE == libc::O_RDONLY;
        let want = self.passthrough && opened.layer == Layer::Upper;
        let fh = FileHandle(opened.fh);
        let attr = file_attr(&a);
        match self.io.open(a.ino, opened.fh, want, || {
            reply.open_backing(&*opened.backing)
        }) {
            Some(id) => reply.created_passthrough(&TTL, &attr, GEN, fh, PASSTHROUGH_FLAGS, &id),
            None => reply.created(&TTL, &attr, GEN, fh, cached_flags(&opened, read_only)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.ov.read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(fail("read", &e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.ov.write(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(fail("write", &e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply_empty("flush", self.ov.flush(fh.0), reply);
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.io.release(ino.0, fh.0);
        reply_empty("release", self.ov.release(fh.0), reply);
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty("fsync", self.ov.fsync(fh.0, datasync), reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // Once the host watcher covers the whole project, refuse OPENDIR with ENOSYS: the
        // kernel then stops sending OPENDIR/RELEASEDIR for good (one synchronous round trip
        // less per directory walked) and keeps every directory's listing cached
        // (`FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR`). Changes through the mount reset that cache
        // in the kernel (directory version and mtime), host changes through the watcher's
        // `inval_inode` of the directory; should the watcher later lose coverage (inotify
        // limit), a directory's cache still goes when its mtime changes and its attributes
        // expire (TTL). Until then each open gets a handle and a cache that lasts until the
        // next open. `readdir` without a handle is served by name cookies (overlay::dirs).
        if self.host_watched.load(Ordering::Acquire) {
            return reply.error(Errno::ENOSYS);
        }
        match self.ov.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_CACHE_DIR),
            Err(e) => reply.error(fail("opendir", &e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let res = self.ov.readdir(ino.0, fh.0, offset, &mut |e| {
            !reply.add(INodeNo(e.ino), e.next_offset, file_type(e.kind), &e.name)
        });
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("readdir", &e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let res = self.ov.readdirplus(ino.0, fh.0, offset, &mut |e, a| {
            !reply.add(
                INodeNo(e.ino),
                e.next_offset,
                &e.name,
                &TTL,
                &file_attr(a),
                GEN,
            )
        });
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(fail("readdirplus", &e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.ov.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty("fsyncdir", self.ov.fsyncdir(ino.0), reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.ov.statfs() {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Err(e) => reply.error(fail("statfs", &e)),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply_empty(
            "setxattr",
            self.ov.setxattr(ino.0, name, value, flags),
            reply,
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.ov.getxattr(ino.0, name) {
            Ok(v) => reply_xattr(&v, size, reply),
            Err(e) => reply.error(fail("getxattr", &e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.ov.listxattr(ino.0) {
            Ok(names) => {
                let mut buf = Vec::new();
                for n in &names {
                    buf.extend_from_slice(n.as_bytes());
                    buf.push(0);
                }
                reply_xattr(&buf, size, reply);
            }
            Err(e) => reply.error(fail("listxattr", &e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty("removexattr", self.ov.removexattr(ino.0, name), reply);
    }

    fn access(&self, r: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        reply_empty("access", self.ov.access(&req(r), ino.0, mask.bits()), reply);
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        // No ioctls (FICLONE & co. fall back to copying); quietly, unlike fuser's default.
        reply.error(Errno::from_i32(libc::ENOTTY));
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let res = self.ov.fallocate(fh.0, offset, length, mode);
        reply_empty("fallocate", res, reply);
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        match self.ov.lseek(fh.0, offset, whence) {
            Ok(off) => reply.offset(off),
            Err(e) => reply.error(fail("lseek", &e)),
        }
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        if flags.bits() != 0 {
            return reply.error(Errno::from_i32(libc::EINVAL));
        }
        let res = self
            .ov
            .copy_file_range(fh_in.0, offset_in, fh_out.0, offset_out, len);
        match res {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(fail("copy_file_range", &e)),
        }
    }
}
