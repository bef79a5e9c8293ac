//! The controller's raw system calls: mount-namespace setup for `wsfs run`, terminal raw mode
//! and window size for `exec`/`shell`. The only module of the controller with `unsafe`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Everything the child does between `fork` and `exec`, prepared in advance (the child may not
/// allocate: the parent can be multi-threaded).
#[derive(Debug)]
pub struct NsSetup {
    /// Directory to show (the workspace mountpoint).
    pub source: CString,
    /// Path where it is shown (the project's absolute path).
    pub target: CString,
    /// Working directory after the mount (inside `target`).
    pub cwd: CString,
    /// Uid the command runs as.
    pub uid: u32,
    /// Gid the command runs as.
    pub gid: u32,
    /// Supplementary groups (root path only).
    pub groups: Vec<libc::gid_t>,
    /// `Some((uid_map, gid_map))` to use an unprivileged user namespace (caller not root):
    /// the lines written to `/proc/self/uid_map` and `gid_map`.
    pub user_ns: Option<(CString, CString)>,
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Writes `bytes` to the absolute `path` with raw syscalls (no allocation).
fn write_file(path: &CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: `path` is a valid C string.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: valid fd and buffer of `bytes.len()` bytes.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    let err = io::Error::last_os_error();
    // SAFETY: we own `fd`.
    unsafe { libc::close(fd) };
    if n < 0 || n as usize != bytes.len() {
        return Err(err);
    }
    Ok(())
}

/// The child's side of [`spawn_in_namespace`]: only async-signal-safe system calls.
fn child_setup(s: &NsSetup) -> io::Result<()> {
    match &s.user_ns {
        None => {
            // SAFETY: plain syscall.
            check(unsafe { libc::unshare(libc::CLONE_NEWNS) })?;
        }
        Some((uid_map, gid_map)) => {
            // SAFETY: plain syscall.
            check(unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) })?;
            write_file(c"/proc/self/setgroups", b"deny")?;
            write_file(c"/proc/self/uid_map", uid_map.as_bytes())?;
            write_file(c"/proc/self/gid_map", gid_map.as_bytes())?;
        }
    }
    // Make every mount private so nothing we do propagates to the host.
    // SAFETY: valid C strings / null pointers as mount(2) allows.
    check(unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })?;
    // SAFETY: valid C strings prepared by the parent.
    check(unsafe {
        libc::mount(
            s.source.as_ptr(),
            s.target.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    })?;
    if s.user_ns.is_none() {
        // SAFETY: `groups` is a valid slice for its length.
        check(unsafe { libc::setgroups(s.groups.len(), s.groups.as_ptr()) })?;
        // SAFETY: plain syscalls.
        check(unsafe { libc::setresgid(s.gid, s.gid, s.gid) })?;
        // SAFETY: plain syscall.
        check(unsafe { libc::setresuid(s.uid, s.uid, s.uid) })?;
    }
    // SAFETY: valid C string.
    check(unsafe { libc::chdir(s.cwd.as_ptr()) })?;
    Ok(())
}

/// Spawns `cmd` in a new private mount namespace where `setup.target` shows `setup.source`,
/// as `setup.uid:gid`, in `setup.cwd`. The caller's namespace is untouched.
pub fn spawn_in_namespace(cmd: &mut Command, setup: NsSetup) -> io::Result<Child> {
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // system calls on data prepared before the fork (no allocation, no locks); errors are
    // `io::Error::last_os_error()` values, which do not allocate either.
    unsafe {
        cmd.pre_exec(move || child_setup(&setup));
    }
    cmd.spawn()
}

/// Saved terminal state, restored on drop.
pub struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    /// Puts the terminal on `fd` in raw mode (`cfmakeraw`).
    pub fn enable(fd: BorrowedFd<'_>) -> io::Result<RawMode> {
        let raw_fd = fd.as_raw_fd();
        let mut t = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: `t` is a valid out-pointer for one termios.
        check(unsafe { libc::tcgetattr(raw_fd, t.as_mut_ptr()) })?;
        // SAFETY: initialised by the successful tcgetattr.
        let saved = unsafe { t.assume_init() };
        let mut raw = saved;
        // SAFETY: `raw` is a valid termios.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: valid fd and termios.
        check(unsafe { libc::tcsetattr(raw_fd, libc::TCSANOW, &raw) })?;
        Ok(RawMode { fd: raw_fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the state saved from the same fd.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// The terminal's (rows, columns) on `fd`, if it is a terminal.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = std::mem::MaybeUninit::<libc::winsize>::zeroed();
    // SAFETY: TIOCGWINSZ writes one winsize into a valid out-pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, ws.as_mut_ptr()) };
    if r < 0 {
        return None;
    }
    // SAFETY: zero-initialised and filled by the successful ioctl.
    let ws = unsafe { ws.assume_init() };
    (ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}
