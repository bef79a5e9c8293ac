//! Thin, safe wrappers over the `*at` syscalls. The core's only module with `unsafe` (the
//! other crates keep theirs in `mountd/src/fuse/sys.rs`, `mountd/src/memory.rs` and
//! `src/controller/ns_sys.rs`; docs/architecture.md says why).
//!
//! Rules every caller relies on:
//! - names are single components (checked by [`crate::relpath`]); we never pass a path with `/`
//!   to these functions except for `/proc/self/fd/N` re-opens;
//! - every open carries `O_NOFOLLOW | O_CLOEXEC`, so a symlink is never followed, whether the
//!   container planted it or the host swapped it in;
//! - directories are walked one component at a time from a root fd ([`walk_dirs`]), so a path can
//!   never leave the tree it started in.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::fault::{self, Syscall};
use crate::relpath::RelPath;

/// `struct stat` re-exported for callers.
pub type Stat = libc::stat;

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Opens an absolute directory (a project or state root) as an `O_PATH` fd. This is the only
/// place a string path is opened; everything below it is reached with `*at` calls.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    let c = cstr(path.as_os_str())?;
    // SAFETY: `c` is a valid NUL-terminated string; the returned fd is owned by us.
    let fd = check(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)`.
pub fn openat(dir: BorrowedFd<'_>, name: &OsStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    fault::syscall(Syscall::Openat)?;
    let c = cstr(name)?;
    // SAFETY: valid fd and C string; the result is a new owned fd.
    let fd = check(unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    })?;
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens directory `name` under `dir` as `O_PATH`, refusing symlinks (ELOOP/ENOTDIR).
pub fn open_dir_path(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    openat(dir, name, libc::O_PATH | libc::O_DIRECTORY, 0)
}

/// True for the errors of a walk or lstat that mean "no such entry here": a component is
/// missing (`ENOENT`), or is not a directory (`ENOTDIR`, or `ELOOP` for a symlink met under
/// `O_NOFOLLOW`). Every other error (EMFILE, EIO, EACCES ...) says nothing about existence.
pub fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
    )
}

/// Walks every component of `rel` from `root`, each as a directory, never following a symlink.
/// Returns an `O_PATH` fd of the final directory (a dup of `root` for the empty path).
pub fn walk_dirs(root: BorrowedFd<'_>, rel: &RelPath) -> io::Result<OwnedFd> {
    let mut cur = root.try_clone_to_owned()?;
    for comp in rel.components() {
        cur = open_dir_path(cur.as_fd(), comp)?;
    }
    Ok(cur)
}

/// Walks to the parent directory of `rel` and returns it with the last name.
pub(crate) fn walk_parent<'a>(
    root: BorrowedFd<'_>,
    rel: &'a RelPath,
) -> io::Result<(OwnedFd, &'a OsStr)> {
    let (parent, name) = rel
        .split_last()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    // `split_last` borrows from `rel`; re-borrow the name with the input lifetime.
    let name: &'a OsStr = OsStr::from_bytes(&rel.as_bytes()[rel.as_bytes().len() - name.len()..]);
    Ok((walk_dirs(root, &parent)?, name))
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; an empty name stats `dir` itself.
pub fn lstatat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Stat> {
    fault::syscall(Syscall::Fstatat)?;
    let c = cstr(name)?;
    let mut st = MaybeUninit::<Stat>::uninit();
    let flags = if name.is_empty() {
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: `st` is written by the kernel on success before we read it.
    check(unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), st.as_mut_ptr(), flags) })?;
    // SAFETY: fstatat succeeded, so `st` is initialised.
    Ok(unsafe { st.assume_init() })
}

/// `fstat(fd)` (works on `O_PATH` fds too).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    lstatat(fd, OsStr::new(""))
}

/// Re-opens an `O_PATH` fd with real access `flags` through `/proc/self/fd`.
pub fn reopen(fd: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let c = CString::new(path).expect("no NUL");
    // SAFETY: valid C string; new fd owned by us. O_NOFOLLOW is not used: the magic link is the
    // point, and it refers to exactly the inode `fd` holds.
    let raw =
        check(unsafe { libc::open(c.as_ptr(), (flags & !libc::O_NOFOLLOW) | libc::O_CLOEXEC) })?;
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// `mkdirat`.
pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: plain syscall on valid arguments.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// `unlinkat(dir, name, 0 | AT_REMOVEDIR)`.
pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> io::Result<()> {
    let c = cstr(name)?;
    let flags = if is_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: plain syscall on valid arguments.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), flags) }).map(drop)
}

/// `renameat2(olddir, old, newdir, new, flags)`.
pub(crate) fn renameat2(
    olddir: BorrowedFd<'_>,
    old: &OsStr,
    newdir: BorrowedFd<'_>,
    new: &OsStr,
    flags: u32,
) -> io::Result<()> {
    let (a, b) = (cstr(old)?, cstr(new)?);
    // SAFETY: plain syscall on valid arguments.
    check(unsafe {
        libc::renameat2(
            olddir.as_raw_fd(),
            a.as_ptr(),
            newdir.as_raw_fd(),
            b.as_ptr(),
            flags,
        )
    })
    .map(drop)
}

/// `symlinkat(target, dir, name)`.
pub(crate) fn symlinkat(target: &OsStr, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let (t, n) = (cstr(target)?, cstr(name)?);
    // SAFETY: plain syscall on valid arguments.
    check(unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), n.as_ptr()) }).map(drop)
}

/// `readlinkat(dir, name)`; an empty name reads the `O_PATH` fd's own link.
pub(crate) fn readlinkat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OsString> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: `buf` is writable for its length.
    let n = check_size(unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    })?;
    buf.truncate(n);
    Ok(OsString::from_vec(buf))
}

/// `linkat(olddir, old, newdir, new, 0)` (never follows a symlink).
pub(crate) fn linkat(
    olddir: BorrowedFd<'_>,
    old: &OsStr,
    newdir: BorrowedFd<'_>,
    new: &OsStr,
) -> io::Result<()> {
    let (a, b) = (cstr(old)?, cstr(new)?);
    // SAFETY: plain syscall on valid arguments.
    check(unsafe {
        libc::linkat(
            olddir.as_raw_fd(),
            a.as_ptr(),
            newdir.as_raw_fd(),
            b.as_ptr(),
            0,
        )
    })
    .map(drop)
}

/// `mknodat` (device nodes only in the upper layer; a commit never makes one on the host).
pub(crate) fn mknodat(dir: BorrowedFd<'_>, name: &OsStr, mode: u32, rdev: u64) -> io::Result<()> {
    let c = cstr(name)?;
    // SAFETY: plain syscall on valid arguments.
    check(unsafe {
        libc::mknodat(
            dir.as_raw_fd(),
            c.as_ptr(),
            mode as libc::mode_t,
            rdev as libc::dev_t,
        )
    })
    .map(drop)
}

/// `fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW)`; `u32::MAX` leaves a field unchanged.
pub(crate) fn lchownat(dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    let c = cstr(name)?;
    let flags = if name.is_empty() {
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: plain syscall on valid arguments.
    check(unsafe { libc::fchownat(dir.as_raw_fd(), c.as_ptr(), uid, gid, flags) }).map(drop)
}

/// `fchmodat` without following: symlinks have no mode on Linux, so we chmod through the
/// `/proc/self/fd` of an `O_PATH` fd of the entry, which refers to exactly that inode.
pub(crate) fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    fault::syscall(Syscall::Chmod)?;
    let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
    // SAFETY: valid C string.
    check(unsafe { libc::chmod(path.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// A timestamp for [`utimensat`].
#[derive(Clone, Copy, Debug)]
pub enum TimeSpec {
    /// Leave unchanged.
    Omit,
    /// The current time.
    Now,
    /// Seconds and nanoseconds since the epoch.
    At(i64, i64),
}

fn timespec(t: TimeSpec) -> libc::timespec {
    match t {
        TimeSpec::Omit => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        TimeSpec::Now => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_NOW,
        },
        TimeSpec::At(s, ns) => libc::timespec {
            tv_sec: s,
            tv_nsec: ns,
        },
    }
}

/// `utimensat(dir, name, [atime, mtime], AT_SYMLINK_NOFOLLOW)`.
pub fn utimensat(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    atime: TimeSpec,
    mtime: TimeSpec,
) -> io::Result<()> {
    let c = cstr(name)?;
    let times = [timespec(atime), timespec(mtime)];
    let flags = if name.is_empty() {
        libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH
    } else {
        libc::AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: `times` has two entries as required.
    check(unsafe { libc::utimensat(dir.as_raw_fd(), c.as_ptr(), times.as_ptr(), flags) }).map(drop)
}

/// `futimens` on an open fd.
pub(crate) fn futimens(fd: BorrowedFd<'_>, atime: TimeSpec, mtime: TimeSpec) -> io::Result<()> {
    let times = [timespec(atime), timespec(mtime)];
    // SAFETY: `times` has two entries as required.
    check(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) }).map(drop)
}

/// `ftruncate`.
pub fn ftruncate(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) }).map(drop)
}

/// `fallocate`.
pub fn fallocate(fd: BorrowedFd<'_>, mode: i32, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall.
    check(unsafe {
        libc::fallocate(
            fd.as_raw_fd(),
            mode,
            offset as libc::off_t,
            len as libc::off_t,
        )
    })
    .map(drop)
}

/// `fsync` or `fdatasync`.
pub fn fsync(fd: BorrowedFd<'_>, datasync: bool) -> io::Result<()> {
    // SAFETY: plain syscall.
    check(unsafe {
        if datasync {
            libc::fdatasync(fd.as_raw_fd())
        } else {
            libc::fsync(fd.as_raw_fd())
        }
    })
    .map(drop)
}

/// `syncfs` of the filesystem holding `fd`.
pub(crate) fn syncfs(fd: BorrowedFd<'_>) -> io::Result<()> {
    // syncfs needs a real (not O_PATH) descriptor.
    let real = reopen(fd, libc::O_RDONLY)?;
    // SAFETY: plain syscall.
    check(unsafe { libc::syncfs(real.as_raw_fd()) }).map(drop)
}

/// `pread` into `buf`; returns bytes read.
pub(crate) fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length.
    check_size(unsafe {
        libc::pread(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            offset as libc::off_t,
        )
    })
}

/// `pwrite` of `buf`; returns bytes written.
pub fn pwrite(fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
    // SAFETY: `buf` is readable for its length.
    check_size(unsafe {
        libc::pwrite(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            offset as libc::off_t,
        )
    })
}

/// `lseek`.
pub fn lseek(fd: BorrowedFd<'_>, offset: i64, whence: i32) -> io::Result<i64> {
    // SAFETY: plain syscall.
    let r = unsafe { libc::lseek(fd.as_raw_fd(), offset, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `copy_file_range` between two fds at explicit offsets; returns bytes copied.
pub fn copy_file_range(
    src: BorrowedFd<'_>,
    src_off: u64,
    dst: BorrowedFd<'_>,
    dst_off: u64,
    len: usize,
) -> io::Result<usize> {
    let mut so = src_off as libc::loff_t;
    let mut dof = dst_off as libc::loff_t;
    // SAFETY: offsets are valid pointers to locals.
    check_size(unsafe {
        libc::copy_file_range(src.as_raw_fd(), &mut so, dst.as_raw_fd(), &mut dof, len, 0)
    } as libc::ssize_t)
}

/// `ioctl(dst, FICLONE, src)`: a reflink copy where the filesystem supports it.
pub(crate) fn ficlone(dst: BorrowedFd<'_>, src: BorrowedFd<'_>) -> io::Result<()> {
    const FICLONE: libc::c_ulong = 0x4004_9409;
    // SAFETY: FICLONE takes the source fd as its argument.
    check(unsafe { libc::ioctl(dst.as_raw_fd(), FICLONE as _, src.as_raw_fd()) }).map(drop)
}

/// `fstatvfs`.
pub(crate) fn fstatvfs(fd: BorrowedFd<'_>) -> io::Result<libc::statvfs> {
    let mut st = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: written by the kernel on success.
    check(unsafe { libc::fstatvfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: initialised on success.
    Ok(unsafe { st.assume_init() })
}

fn proc_entry(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<CString> {
    let mut p = format!("/proc/self/fd/{}", dir.as_raw_fd()).into_bytes();
    if !name.is_empty() {
        p.push(b'/');
        p.extend_from_slice(name.as_bytes());
    }
    CString::new(p).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `lgetxattr` of `dir/name` (or of `dir` itself for an empty name), without following.
/// With an empty `buf`, returns the size needed.
pub fn lgetxattr(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    attr: &OsStr,
    buf: &mut [u8],
) -> io::Result<usize> {
    let (p, a) = (proc_entry(dir, name)?, cstr(attr)?);
    // SAFETY: `buf` writable for its length (0 asks for the size).
    check_size(unsafe {
        libc::lgetxattr(p.as_ptr(), a.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    })
}

/// `lsetxattr`.
pub fn lsetxattr(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    attr: &OsStr,
    value: &[u8],
    flags: i32,
) -> io::Result<()> {
    let (p, a) = (proc_entry(dir, name)?, cstr(attr)?);
    // SAFETY: `value` readable for its length.
    check(unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            a.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
    .map(drop)
}

/// `llistxattr`; with an empty `buf`, returns the size needed.
pub fn llistxattr(dir: BorrowedFd<'_>, name: &OsStr, buf: &mut [u8]) -> io::Result<usize> {
    let p = proc_entry(dir, name)?;
    // SAFETY: `buf` writable for its length.
    check_size(unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) })
}

/// `lremovexattr`.
pub(crate) fn lremovexattr(dir: BorrowedFd<'_>, name: &OsStr, attr: &OsStr) -> io::Result<()> {
    let (p, a) = (proc_entry(dir, name)?, cstr(attr)?);
    // SAFETY: plain syscall on valid strings.
    check(unsafe { libc::lremovexattr(p.as_ptr(), a.as_ptr()) }).map(drop)
}

/// Lists xattr names of `dir/name` as separate byte strings.
pub(crate) fn list_xattrs(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<OsString>> {
    let size = llistxattr(dir, name, &mut [])?;
    let mut buf = vec![0u8; size];
    let n = llistxattr(dir, name, &mut buf)?;
    buf.truncate(n);
    Ok(buf
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| OsString::from_vec(s.to_vec()))
        .collect())
}

/// Reads one xattr value fully.
pub fn get_xattr(dir: BorrowedFd<'_>, name: &OsStr, attr: &OsStr) -> io::Result<Vec<u8>> {
    let size = lgetxattr(dir, name, attr, &mut [])?;
    let mut buf = vec![0u8; size];
    let n = lgetxattr(dir, name, attr, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// One directory entry as read from the disk.
#[derive(Debug, Clone)]
pub struct RawDirEntry {
    /// Entry name.
    pub name: OsString,
    /// Inode number on its filesystem.
    pub ino: u64,
    /// `DT_*` type (may be `DT_UNKNOWN`).
    pub d_type: u8,
}

/// Reads all entries of the directory `dir` (an `O_PATH` fd), skipping `.` and `..`.
pub fn read_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<RawDirEntry>> {
    fault::syscall(Syscall::Getdents)?;
    let fd = reopen(dir, libc::O_RDONLY | libc::O_DIRECTORY)?;
    let raw: RawFd = std::os::fd::IntoRawFd::into_raw_fd(fd);
    // SAFETY: `raw` is an owned directory fd; fdopendir takes ownership of it.
    let dirp = unsafe { libc::fdopendir(raw) };
    if dirp.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so we still own `raw`.
        unsafe { libc::close(raw) };
        return Err(e);
    }
    let mut out = Vec::new();
    loop {
        // SAFETY: errno reset so we can tell end-of-dir from failure.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `dirp` is a valid DIR*.
        let ent = unsafe { libc::readdir64(dirp) };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: `dirp` valid; closedir also closes `raw`.
            unsafe { libc::closedir(dirp) };
            if e.raw_os_error().unwrap_or(0) != 0 {
                return Err(e);
            }
            return Ok(out);
        }
        // SAFETY: `ent` points to a valid dirent64 until the next readdir call.
        let ent = unsafe { &*ent };
        // SAFETY: d_name is NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr(ent.d_name.as_ptr()) }.to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        out.push(RawDirEntry {
            name: OsString::from_vec(name.to_vec()),
            ino: ent.d_ino,
            d_type: ent.d_type,
        });
    }
}

/// The `RLIMIT_NOFILE` limits, `(soft, hard)`; `(1024, 1024)` if they cannot be read.
pub fn nofile_limit() -> (u64, u64) {
    let mut lim = MaybeUninit::<libc::rlimit>::uninit();
    // SAFETY: written on success.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, lim.as_mut_ptr()) } != 0 {
        return (1024, 1024);
    }
    // SAFETY: initialised on success.
    let lim = unsafe { lim.assume_init() };
    (lim.rlim_cur, lim.rlim_max)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (the daemon caches directory fds) and
/// returns the limits now in force, `(soft, hard)`.
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let (soft, hard) = nofile_limit();
    if soft < hard {
        let lim = libc::rlimit {
            rlim_cur: hard,
            rlim_max: hard,
        };
        // SAFETY: valid pointer to an initialised rlimit.
        check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    }
    Ok(nofile_limit())
}

/// Current effective uid.
pub fn geteuid() -> u32 {
    // SAFETY: always succeeds.
    unsafe { libc::geteuid() }
}

/// Current effective gid.
pub fn getegid() -> u32 {
    // SAFETY: always succeeds.
    unsafe { libc::getegid() }
}

/// The home directory of user `uid` from the user database (`getpwuid_r`), if it has one.
pub fn home_of(uid: u32) -> Option<PathBuf> {
    let mut buf = vec![0u8; 16 << 10];
    // SAFETY: `passwd` is plain data; zeroed is a valid value for getpwuid_r to fill.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives the use of `pw`'s fields.
    let rc =
        unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pw.pw_dir.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so `pw_dir` is a NUL-terminated string inside `buf`.
    let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
    Some(PathBuf::from(OsStr::from_bytes(dir.to_bytes())))
}

/// `flock(LOCK_EX | LOCK_NB)`: fails at once if another process holds the lock.
pub fn try_lock_exclusive(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    check(unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_refuses_symlinked_dirs() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", t.path().join("a/link")).unwrap();
        let root = open_root(t.path()).unwrap();
        assert!(walk_dirs(root.as_fd(), &RelPath::new("a/b").unwrap()).is_ok());
        let err = walk_dirs(root.as_fd(), &RelPath::new("a/link").unwrap()).unwrap_err();
        assert!(matches!(
            err.raw_os_error(),
            Some(libc::ELOOP) | Some(libc::ENOTDIR)
        ));
    }

    #[test]
    fn reads_directories_and_xattrs() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"x").unwrap();
        let root = open_root(t.path()).unwrap();
        let names: Vec<_> = read_dir(root.as_fd())
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec![OsString::from("f")]);
        lsetxattr(root.as_fd(), OsStr::new("f"), OsStr::new("user.k"), b"v", 0).unwrap();
        assert_eq!(
            get_xattr(root.as_fd(), OsStr::new("f"), OsStr::new("user.k")).unwrap(),
            b"v"
        );
        assert_eq!(
            list_xattrs(root.as_fd(), OsStr::new("f")).unwrap(),
            vec![OsString::from("user.k")]
        );
    }
}
