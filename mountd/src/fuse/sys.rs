//! The adapter's only `unsafe` outside its tests: small libc wrappers for unmounting, `poll`
//! (on the watcher's inotify fd) and the inode-flag ioctls (inotify itself is the `inotify`
//! crate's), and re-attaching a mount in another mount namespace (`open_tree`, a forked child
//! that `setns`es and `move_mount`s).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
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

/// `open_tree(2)` flags and `move_mount(2)`'s (not in the libc crate).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// A detached copy of the mount at `path` (`open_tree(OPEN_TREE_CLONE)`, not recursive):
/// attached nowhere until `move_mount` puts it somewhere. Needs `CAP_SYS_ADMIN`.
pub(super) fn open_tree_clone(path: &Path) -> io::Result<OwnedFd> {
    let c = cpath(path)?;
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: `c` is a valid NUL-terminated string for the call; the result is a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// What the child of [`attach_in_namespace`] does, all prepared before the fork (the child
/// of a multi-threaded process may not allocate).
pub(super) struct AttachPlan {
    /// `/proc/PID/ns/mnt` of a process in the target namespace.
    pub ns: OwnedFd,
    /// `/proc/PID/root` of that process: paths below are resolved from it.
    pub root: OwnedFd,
    /// The detached mount to attach ([`open_tree_clone`]).
    pub tree: OwnedFd,
    /// Where: the path of the dead mount, as that process sees it.
    pub target: CString,
    /// `MS_*` per-mount flags to give the attached mount with a bind remount (`MS_RDONLY`,
    /// `MS_NOEXEC`, ...), when the dead mount had other flags than the new one.
    pub remount: Option<libc::c_ulong>,
}

/// The step of [`attach_in_namespace`] that failed, with its errno (0: not an error of a
/// system call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AttachStep {
    /// `setns` into the namespace, or entering the process's root.
    Enter,
    /// The mount at the target is not a dead FUSE mount (`statfs` did not fail with
    /// `ENOTCONN`): left alone.
    NotDead,
    /// Lazily unmounting the dead mount.
    Detach,
    /// `move_mount` of the new one.
    Move,
    /// Making it private (no propagation between host and namespace).
    Private,
    /// Giving it the dead mount's flags (undone: unmounted again).
    Flags,
}

const STEPS: [AttachStep; 6] = [
    AttachStep::Enter,
    AttachStep::NotDead,
    AttachStep::Detach,
    AttachStep::Move,
    AttachStep::Private,
    AttachStep::Flags,
];

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The forked child's work: only async-signal-safe system calls, no allocation.
fn attach_child(p: &AttachPlan) -> Result<(), (AttachStep, i32)> {
    let fail = |step| Err((step, errno()));
    // SAFETY: plain syscalls on fds the plan owns and the plan's NUL-terminated strings.
    unsafe {
        if libc::setns(p.ns.as_raw_fd(), libc::CLONE_NEWNS) != 0
            || libc::fchdir(p.root.as_raw_fd()) != 0
            || libc::chroot(c".".as_ptr()) != 0
        {
            return fail(AttachStep::Enter);
        }
        let mut st: libc::statfs = std::mem::zeroed();
        if libc::statfs(p.target.as_ptr(), &mut st) == 0 || errno() != libc::ENOTCONN {
            return Err((AttachStep::NotDead, errno()));
        }
        if libc::umount2(p.target.as_ptr(), libc::MNT_DETACH) != 0 {
            return fail(AttachStep::Detach);
        }
        let moved = libc::syscall(
            libc::SYS_move_mount,
            p.tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            p.target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        );
        if moved != 0 {
            return fail(AttachStep::Move);
        }
        let none = std::ptr::null();
        if libc::mount(none, p.target.as_ptr(), none, libc::MS_PRIVATE, none.cast()) != 0 {
            return fail(AttachStep::Private);
        }
        if let Some(flags) = p.remount {
            let flags = libc::MS_BIND | libc::MS_REMOUNT | flags;
            if libc::mount(none, p.target.as_ptr(), none, flags, none.cast()) != 0 {
                let e = errno();
                libc::umount2(p.target.as_ptr(), libc::MNT_DETACH);
                return Err((AttachStep::Flags, e));
            }
        }
    }
    Ok(())
}

/// Replaces the dead mount at `plan.target` in another mount namespace by `plan.tree`: a
/// forked child (`setns(CLONE_NEWNS)` is refused to a multi-threaded process) enters the
/// namespace and the process's root, checks that the mount there is dead, detaches it lazily,
/// moves the new mount in, makes it private and gives it the old mount's flags. Returns the
/// step that failed and its errno.
pub(super) fn attach_in_namespace(plan: &AttachPlan) -> Result<(), (AttachStep, i32)> {
    let parent_err = |step| (step, errno());
    let mut pipe = [0 as libc::c_int; 2];
    // SAFETY: `pipe` has room for the two fds.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(parent_err(AttachStep::Enter));
    }
    // SAFETY: the kernel just returned these fds; nothing else owns them.
    let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    // SAFETY: the child runs only `attach_child` (system calls, no allocation or locks), writes
    // its result to the pipe and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(parent_err(AttachStep::Enter));
    }
    if pid == 0 {
        let msg: [u8; 5] = match attach_child(plan) {
            Ok(()) => [0xff, 0, 0, 0, 0],
            Err((step, e)) => {
                let i = STEPS.iter().position(|s| *s == step).unwrap_or(0) as u8;
                let e = e.to_ne_bytes();
                [i, e[0], e[1], e[2], e[3]]
            }
        };
        // SAFETY: writes a valid 5-byte buffer, then ends the child without running any of
        // the parent's destructors or atexit handlers.
        unsafe {
            libc::write(tx.as_raw_fd(), msg.as_ptr().cast(), msg.len());
            libc::_exit(0);
        }
    }
    drop(tx);
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; `status` is a valid pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid || (r < 0 && errno() != libc::EINTR) {
            break;
        }
    }
    let mut msg = [0u8; 5];
    // SAFETY: reads at most 5 bytes into the valid buffer.
    let n = unsafe { libc::read(rx.as_raw_fd(), msg.as_mut_ptr().cast(), msg.len()) };
    if n != 5 {
        return Err((AttachStep::Enter, libc::ECHILD));
    }
    if msg[0] == 0xff {
        return Ok(());
    }
    let step = STEPS
        .get(msg[0] as usize)
        .copied()
        .unwrap_or(AttachStep::Enter);
    Err((step, i32::from_ne_bytes([msg[1], msg[2], msg[3], msg[4]])))
}
