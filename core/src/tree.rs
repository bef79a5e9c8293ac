//! Removing a directory tree through fds (never by path string, never following a symlink).

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};

use crate::error::{Error, IoContext, Result};
use crate::relpath::RelPath;
use crate::sys;

/// Removes `dir/name` and everything below it; an entry already gone is not an error.
pub fn remove_tree(dir: BorrowedFd<'_>, name: &OsStr, path: &RelPath) -> Result<()> {
    let fd = match sys::open_dir_path(dir, name) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::io("open", path, e)),
    };
    for e in sys::read_dir(fd.as_fd()).ctx("readdir", path)? {
        let child = path.join(&e.name)?;
        let st = sys::lstatat(fd.as_fd(), &e.name).ctx("lstat", &child)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            remove_tree(fd.as_fd(), &e.name, &child)?;
        } else {
            remove_entry(fd.as_fd(), &e.name, false, &child)?;
        }
    }
    remove_entry(dir, name, true, path)
}

/// Removes one entry (a file, or an empty directory); already gone is fine.
pub fn remove_entry(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool, path: &RelPath) -> Result<()> {
    match sys::unlinkat(dir, name, is_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        Err(e) => Err(Error::io(if is_dir { "rmdir" } else { "unlink" }, path, e)),
    }
}
