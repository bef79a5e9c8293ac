//! Pseudo-terminals for the browser terminal: the master side as a non-blocking fd driven by
//! tokio, the child in a new session with the slave side as its controlling terminal and its
//! stdin, stdout and stderr. The only module of the UI with `unsafe`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;

use tokio::io::unix::AsyncFd;
use tokio::process::{Child, Command};

/// The master side of a pseudo-terminal.
pub struct Pty {
    master: AsyncFd<OwnedFd>,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Starts `cmd` on a new pseudo-terminal of `cols` × `rows`.
pub fn spawn(mut cmd: Command, cols: u16, rows: u16) -> io::Result<(Pty, Child)> {
    // SAFETY: posix_openpt has no memory preconditions; the flags are valid.
    let master =
        check(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    // SAFETY: `master` was just opened and is owned by nothing else.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let fd = master.as_raw_fd();
    // SAFETY: `fd` is a valid pty master.
    check(unsafe { libc::grantpt(fd) })?;
    // SAFETY: as above.
    check(unsafe { libc::unlockpt(fd) })?;
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: `name` is a writable buffer of the length passed.
    let err = unsafe { libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    // SAFETY: ptsname_r wrote a NUL-terminated string into `name`.
    let path = unsafe { CStr::from_ptr(name.as_ptr()) };
    // SAFETY: `path` is a valid C string; the flags are valid.
    let slave = check(unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `slave` was just opened and is owned by nothing else.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    // SAFETY: `master` is an open fd the `AsyncFd` owns from here on; an `OwnedFd` always
    // returns the same fd.
    let master = unsafe { AsyncFd::register(master) }?;
    let pty = Pty { master };
    pty.resize(cols, rows)?;
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave))
        .kill_on_drop(true);
    // SAFETY: the closure makes only async-signal-safe calls (setsid, ioctl) and allocates
    // nothing.
    unsafe {
        cmd.pre_exec(|| {
            // A session of its own, with the terminal (now its stdin) as controlling terminal.
            check(libc::setsid())?;
            check(libc::ioctl(0, libc::TIOCSCTTY, 0))?;
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // The parent's copies of the slave end with `cmd`, so the master sees EOF (EIO) once
    // the child's side is closed.
    drop(cmd);
    set_nonblocking(pty.master.get_ref().as_raw_fd())?;
    Ok((pty, child))
}

fn set_nonblocking(fd: libc::c_int) -> io::Result<()> {
    // SAFETY: `fd` is a valid open fd; F_GETFL takes no argument.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above; F_SETFL takes the flags as an int.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

impl Pty {
    /// Reads the terminal's output; `Ok(0)` once the child's side is closed (Linux reports
    /// that as EIO).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.master.readable().await?;
            let res = guard.try_io(|fd| {
                // SAFETY: `buf` is writable for `buf.len()` bytes; the fd is valid.
                let n = unsafe {
                    libc::read(fd.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len())
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match res {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all of `data` to the terminal (the child's input).
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.master.writable().await?;
            let res = guard.try_io(|fd| {
                // SAFETY: `data` is readable for `data.len()` bytes; the fd is valid.
                let n = unsafe {
                    libc::write(fd.get_ref().as_raw_fd(), data.as_ptr().cast(), data.len())
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match res {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Sets the terminal's size (the child gets SIGWINCH).
    pub fn resize(&self, cols: u16, rows: u16) -> io::Result<()> {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one `winsize` from the valid pointer.
        check(unsafe {
            libc::ioctl(
                self.master.get_ref().as_raw_fd(),
                libc::TIOCSWINSZ,
                &size as *const libc::winsize,
            )
        })?;
        Ok(())
    }
}
