//! The adapter's only `unsafe` outside its tests: small libc wrappers for unmounting, `poll`
//! (on the watcher's inotify fd) and the inode-flag ioctls; inotify itself is the `inotify`
//! crate's.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `umount2(path, flags)`; `libc::MNT_DETACH` for a lazy unmount.
pub(super) fn umount2(path: &Path, flags: libc::c_int) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    check(unsafe { libc::umount2(c.as_ptr(), flags) }).map(drop)
}

/// Waits up to `timeout_ms` for `fd` to become readable; `Ok(false)` on timeout or `EINTR`.
pub(super) fn poll_readable(fd: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is a valid pollfd array of length 1 for the duration of the call.
    match check(unsafe { libc::poll(&mut p, 1, timeout_ms) }) {
        Ok(n) => Ok(n > 0),
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Mounts the FUSE control filesystem at `/sys/fs/fuse/connections` (systemd normally does).
pub(super) fn mount_fusectl() -> io::Result<()> {
    let src = c"fusectl";
    let target = c"/sys/fs/fuse/connections";
    // SAFETY: all pointers are valid NUL-terminated strings (or NULL for no data) for the call.
    check(unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            src.as_ptr(),
            0,
            std::ptr::null(),
        )
    })
    .map(drop)
}

/// `FS_IOC_GETFLAGS` / `FS_IOC_SETFLAGS` (inode flags, `chattr`'s).
const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;
/// The immutable inode flag: no change to the inode or its entries, even by root.
pub(super) const FS_IMMUTABLE_FL: libc::c_int = 0x10;

/// Inode flags of an open file (`chattr`'s attributes).
pub(super) fn inode_flags(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    let mut flags: libc::c_int = 0;
    // SAFETY: the kernel writes one int through the valid pointer.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_GETFLAGS as _, &mut flags) })?;
    Ok(flags)
}

/// Sets the inode flags of an open file (the immutable flag needs CAP_LINUX_IMMUTABLE).
pub(super) fn set_inode_flags(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: the kernel reads one int through the valid pointer.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_SETFLAGS as _, &flags) }).map(drop)
}
