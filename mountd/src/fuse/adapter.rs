//! The `fuser::Filesystem` implementation: converts arguments, calls the matching
//! [`Overlay`] method, replies. No filesystem logic lives here.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, Errno, FileHandle, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyIoctl, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request,
    TimeOrNow, WriteFlags,
};
use tracing::{debug, info, warn};
use wsfs::api::OpenMode;
use wsfs::overlay::{caller, Attr, Layer, Opened, Overlay, Req, SetAttr};

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
    /// No-open mode: OPEN and FLUSH are answered `ENOSYS`, so the kernel opens and closes
    /// files without the daemon and file I/O arrives with handle 0, served by inode.
    no_open: bool,
}

impl WsfsFs {
    pub(super) fn new(ov: Arc<Overlay>, host_watched: Arc<AtomicBool>, mode: OpenMode) -> WsfsFs {
        WsfsFs {
            ov,
            passthrough: false,
            io: IoModes::default(),
            host_watched,
            no_open: mode == OpenMode::NoOpen,
        }
    }
}

/// Handle 0: what the kernel sends in no-open mode (the overlay's handles start at 1).
const NO_HANDLE: FileHandle = FileHandle(0);

fn req(r: &Request) -> Req {
    Req {
        uid: r.uid(),
        gid: r.gid(),
        pid: r.pid(),
    }
}

/// What lasts for one FUSE request: its span, and the caller's pid for the attribution of
/// what the request records.
struct RequestScope {
    _span: tracing::span::EnteredSpan,
    _caller: caller::Scope,
}

/// The span of one FUSE request (its id (`unique`), inode and caller's pid), with the
/// caller's pid entered for attribution (a thread-local store).
fn span(r: &Request, op: &'static str, ino: INodeNo) -> RequestScope {
    RequestScope {
        _span: request_span(op, r.unique().0, ino.0, r.pid()),
        _caller: caller::Scope::enter(r.pid()),
    }
}

/// [`span`] from plain values. Built only when debug spans are enabled: otherwise
/// `debug_span!` checks the level (an atomic load) and the callsite's cached interest, yields a
/// disabled span without evaluating its fields, and entering it does nothing: no allocation
/// on the hot path (tested with a counting allocator in `fuse::tests`).
pub(super) fn request_span(
    op: &'static str,
    unique: u64,
    ino: u64,
    pid: u32,
) -> tracing::span::EnteredSpan {
    tracing::debug_span!("fuse", op, unique, ino, pid).entered()
}

/// Errnos that are ordinary answers to what programs ask (a name that is not there, a
/// directory not empty, an absent xattr, a refused permission, ...): logged at debug only.
/// Anything else (EIO, ENOSPC, EBADF, EMFILE, ...) says something went wrong in the daemon
/// or its disk and is logged at warn, rate-limited by [`WARNINGS`].
pub(super) fn expected_errno(errno: i32) -> bool {
    matches!(
        errno,
        libc::ENOENT
            | libc::EEXIST
            | libc::ENOTEMPTY
            | libc::ENOTDIR
            | libc::EISDIR
            | libc::ENODATA
            | libc::ERANGE
            | libc::E2BIG
            | libc::EAGAIN
            | libc::EINTR
            | libc::EACCES
            | libc::EPERM
            | libc::EINVAL
            | libc::ENAMETOOLONG
            | libc::EXDEV
            | libc::EOPNOTSUPP
            | libc::ELOOP
            | libc::ENOSYS
            | libc::ENOTTY
            | libc::ESTALE
            | libc::EFBIG
            | libc::EMLINK
            | libc::ETXTBSY
            | libc::EROFS
            | libc::ESPIPE
            | libc::EOVERFLOW
    )
}

/// How often one kind (op + errno) of unexpected failure is logged at warn.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Warn-level logging at most once per kind per [`WARN_INTERVAL`], with how many of that kind
/// were suppressed since the last one logged. Consulted only on failures that warn, never on
/// the success path.
pub(super) struct RateLimit {
    interval: Duration,
    /// One window per kind seen (few: a linear search is cheaper than hashing).
    seen: Mutex<Vec<Window>>,
}

struct Window {
    op: &'static str,
    errno: i32,
    logged_at: Instant,
    suppressed: u64,
}

impl RateLimit {
    pub(super) const fn new(interval: Duration) -> RateLimit {
        RateLimit {
            interval,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// `Some(suppressed)` if this occurrence of `(op, errno)` at `now` is to be logged (with the
    /// count suppressed since the last one logged), `None` if it is to be counted only.
    pub(super) fn admit(&self, op: &'static str, errno: i32, now: Instant) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.iter_mut().find(|w| w.op == op && w.errno == errno) {
            Some(w) if now.duration_since(w.logged_at) < self.interval => {
                w.suppressed += 1;
                None
            }
            Some(w) => {
                let suppressed = std::mem::take(&mut w.suppressed);
                w.logged_at = now;
                Some(suppressed)
            }
            None => {
                seen.push(Window {
                    op,
                    errno,
                    logged_at: now,
                    suppressed: 0,
                });
                Some(0)
            }
        }
    }
}

/// The daemon-wide limiter of unexpected-errno warnings (one process may serve several mounts;
/// a flood from any of them is one line per kind per interval).
static WARNINGS: RateLimit = RateLimit::new(WARN_INTERVAL);

/// Logs a failed operation and returns the errno to reply: expected errnos at debug,
/// others at warn through [`WARNINGS`].
fn fail(op: &'static str, e: &wsfs::Error) -> Errno {
    let code = e.errno();
    if expected_errno(code) {
        debug!(op, errno = code, error = %e, "fuse op failed");
    } else if let Some(suppressed) = WARNINGS.admit(op, code, Instant::now()) {
        warn!(op, errno = code, error = %e, suppressed, "fuse op failed");
    } else {
        debug!(op, errno = code, error = %e, "fuse op failed (warning rate-limited)");
    }
    errno(e)
}

impl WsfsFs {
    /// Like [`fail`] for a request about an inode the kernel holds: `ENOENT` there means the
    /// daemon lost track of a live entry, so it is logged at warn (rate-limited like any
    /// unexpected errno) with what the daemon knows of it.
    fn fail_on(&self, op: &'static str, ino: INodeNo, e: &wsfs::Error) -> Errno {
        if e.errno() == libc::ENOENT {
            match WARNINGS.admit(op, libc::ENOENT, Instant::now()) {
                Some(suppressed) => {
                    warn!(op, ino = ino.0, error = %e, node = %self.ov.describe_node(ino.0), suppressed, "ENOENT for an inode the kernel holds")
                }
                None => {
                    debug!(op, ino = ino.0, error = %e, "ENOENT for an inode the kernel holds (warning rate-limited)")
                }
            }
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
        ] {
            if c.add_capabilities(cap).is_err() {
                debug!(?cap, "capability not offered by the kernel");
            }
        }
        if self.no_open {
            // Neither passthrough (it is chosen in an OPEN reply) nor atomic O_TRUNC: with it
            // the kernel would leave the truncate of `open(O_TRUNC)` to an OPEN that never
            // comes; without it the truncate arrives as a SETATTR of size 0.
            self.ov.set_handleless(true);
        } else {
            // O_TRUNC reaches `open`, so the overlay copies up without the data it would drop.
            if c.add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC).is_err() {
                debug!("atomic O_TRUNC not offered by the kernel");
            }
            // Passthrough, never together with the writeback cache (the kernel would disable it).
            self.passthrough = c.capabilities().contains(InitFlags::FUSE_PASSTHROUGH)
                && c.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                && c.set_max_stack_depth(2).is_ok();
        }
        let _ = c.set_max_write(MAX_WRITE);
        if let Err(max) = c.set_max_readahead(u32::MAX) {
            let _ = c.set_max_readahead(max);
        }
        let _ = c.set_max_background(MAX_BACKGROUND);
        info!(
            kernel_abi = %c.kernel_abi(),
            passthrough = self.passthrough,
            no_open = self.no_open,
            "FUSE session initialised"
        );
        Ok(())
    }

    fn destroy(&mut self) {
        info!("FUSE session destroyed");
    }

    fn lookup(&self, r: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _span = span(r, "lookup", parent);
        match self.ov.lookup(parent.0, name) {
            Ok(a) => reply.entry(&TTL, &file_attr(&a), GEN),
            // Cached negative entry; the watcher invalidates it if the name appears on the host.
            Err(e) if e.errno() == libc::ENOENT => reply.entry(&TTL, &negative_attr(), GEN),
            Err(e) => reply.error(fail("lookup", &e)),
        }
    }

    fn forget(&self, r: &Request, ino: INodeNo, nlookup: u64) {
        let _span = span(r, "forget", ino);
        self.ov.forget(ino.0, nlookup);
    }

    // `batch_forget`: fuser 0.18 keeps `ForgetOne` private, so its default (one `forget` per
    // node) serves it.

    fn getattr(&self, r: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let _span = span(r, "getattr", ino);
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
        let _span = span(r, "setattr", ino);
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

    fn readlink(&self, r: &Request, ino: INodeNo, reply: ReplyData) {
        let _span = span(r, "readlink", ino);
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
        let _span = span(r, "mknod", parent);
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
        let _span = span(r, "mkdir", parent);
        let res = self.ov.mkdir(&req(r), parent.0, name, mode, umask);
        reply_entry("mkdir", res, reply);
    }

    fn unlink(&self, r: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _span = span(r, "unlink", parent);
        reply_empty("unlink", self.ov.unlink(parent.0, name), reply);
    }

    fn rmdir(&self, r: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _span = span(r, "rmdir", parent);
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
        let _span = span(r, "symlink", parent);
        let res = self
            .ov
            .symlink(&req(r), parent.0, link_name, target.as_os_str());
        reply_entry("symlink", res, reply);
    }

    fn rename(
        &self,
        r: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _span = span(r, "rename", parent);
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
        r: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _span = span(r, "link", ino);
        reply_entry("link", self.ov.link(ino.0, newparent.0, newname), reply);
    }

    fn open(&self, r: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _span = span(r, "open", ino);
        if self.no_open {
            // The kernel then opens every file of this connection without asking (handle 0,
            // `FOPEN_KEEP_CACHE`) and sends no RELEASE: this very open succeeds too. A write
            // open's copy-up happens at the first write, truncate or fallocate.
            return reply.error(Errno::ENOSYS);
        }
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
        let _span = span(r, "create", parent);
        if self.no_open {
            // Handle 0: a no-open connection never sends RELEASE, not even for created files.
            return match self
                .ov
                .create_ino(&req(r), parent.0, name, mode, umask, flags)
            {
                Ok(a) => reply.created(&TTL, &file_attr(&a), GEN, NO_HANDLE, FopenFlags::empty()),
                Err(e) => reply.error(self.fail_on("create", parent, &e)),
            };
        }
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
        r: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _span = span(r, "read", ino);
        let res = if fh == NO_HANDLE {
            self.ov.read_ino(ino.0, offset, size)
        } else {
            self.ov.read(fh.0, offset, size)
        };
        match res {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(fail("read", &e)),
        }
    }

    fn write(
        &self,
        r: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _span = span(r, "write", ino);
        let res = if fh == NO_HANDLE {
            let append = flags.0 & libc::O_APPEND != 0;
            self.ov.write_ino(ino.0, offset, data, append)
        } else {
            self.ov.write(fh.0, offset, data)
        };
        match res {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(fail("write", &e)),
        }
    }

    fn flush(
        &self,
        r: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let _span = span(r, "flush", ino);
        if self.no_open {
            // Nothing to do at close (content is settled later); the kernel stops sending
            // FLUSH for the connection (it still writes dirty mmap pages back at close).
            return reply.error(Errno::ENOSYS);
        }
        reply_empty("flush", self.ov.flush(fh.0), reply);
    }

    fn release(
        &self,
        r: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _span = span(r, "release", ino);
        self.io.release(ino.0, fh.0);
        reply_empty("release", self.ov.release(fh.0), reply);
    }

    fn fsync(&self, r: &Request, ino: INodeNo, fh: FileHandle, datasync: bool, reply: ReplyEmpty) {
        let _span = span(r, "fsync", ino);
        let res = if fh == NO_HANDLE {
            self.ov.fsync_ino(ino.0, datasync)
        } else {
            self.ov.fsync(fh.0, datasync)
        };
        reply_empty("fsync", res, reply);
    }

    fn opendir(&self, r: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _span = span(r, "opendir", ino);
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
        r: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _span = span(r, "readdir", ino);
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
        r: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let _span = span(r, "readdirplus", ino);
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
        r: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let _span = span(r, "releasedir", ino);
        self.ov.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        r: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _span = span(r, "fsyncdir", ino);
        reply_empty("fsyncdir", self.ov.fsyncdir(ino.0), reply);
    }

    fn statfs(&self, r: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let _span = span(r, "statfs", ino);
        match self.ov.statfs() {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Err(e) => reply.error(fail("statfs", &e)),
        }
    }

    fn setxattr(
        &self,
        r: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let _span = span(r, "setxattr", ino);
        reply_empty(
            "setxattr",
            self.ov.setxattr(ino.0, name, value, flags),
            reply,
        );
    }

    fn getxattr(&self, r: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let _span = span(r, "getxattr", ino);
        match self.ov.getxattr(ino.0, name) {
            Ok(v) => reply_xattr(&v, size, reply),
            Err(e) => reply.error(fail("getxattr", &e)),
        }
    }

    fn listxattr(&self, r: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let _span = span(r, "listxattr", ino);
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

    fn removexattr(&self, r: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _span = span(r, "removexattr", ino);
        reply_empty("removexattr", self.ov.removexattr(ino.0, name), reply);
    }

    fn access(&self, r: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let _span = span(r, "access", ino);
        reply_empty("access", self.ov.access(&req(r), ino.0, mask.bits()), reply);
    }

    fn ioctl(
        &self,
        r: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        let _span = span(r, "ioctl", ino);
        // No ioctls (FICLONE & co. fall back to copying); quietly, unlike fuser's default.
        reply.error(Errno::from_i32(libc::ENOTTY));
    }

    fn fallocate(
        &self,
        r: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let _span = span(r, "fallocate", ino);
        let res = if fh == NO_HANDLE {
            self.ov.fallocate_ino(ino.0, offset, length, mode)
        } else {
            self.ov.fallocate(fh.0, offset, length, mode)
        };
        reply_empty("fallocate", res, reply);
    }

    fn lseek(
        &self,
        r: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let _span = span(r, "lseek", ino);
        let res = if fh == NO_HANDLE {
            self.ov.lseek_ino(ino.0, offset, whence)
        } else {
            self.ov.lseek(fh.0, offset, whence)
        };
        match res {
            Ok(off) => reply.offset(off),
            Err(e) => reply.error(fail("lseek", &e)),
        }
    }

    fn copy_file_range(
        &self,
        r: &Request,
        ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        let _span = span(r, "copy_file_range", ino_in);
        if flags.bits() != 0 {
            return reply.error(Errno::from_i32(libc::EINVAL));
        }
        let res = self.ov.copy_file_range_by(
            (ino_in.0, fh_in.0),
            offset_in,
            (ino_out.0, fh_out.0),
            offset_out,
            len,
        );
        match res {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(fail("copy_file_range", &e)),
        }
    }
}
