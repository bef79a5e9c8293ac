//! Copying file data between fds: extent by extent (holes stay holes), in the kernel where it
//! can (`copy_file_range`), else through a buffer.

use std::io;
use std::os::fd::BorrowedFd;

use crate::sys;

/// Copies `size` bytes of `src` to `dst` (both at offset 0), keeping holes, and sets `dst`'s
/// size to exactly `size`.
pub fn copy_sparse(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    let mut off = 0u64;
    while off < size {
        let data = match sys::lseek(src, off as i64, libc::SEEK_DATA) {
            Ok(d) => d as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break,
            Err(_) => off, // SEEK_DATA unsupported: treat everything as data
        };
        if data >= size {
            break;
        }
        let end = match sys::lseek(src, data as i64, libc::SEEK_HOLE) {
            Ok(h) => (h as u64).min(size),
            Err(_) => size,
        };
        copy_range(src, dst, data, end)?;
        off = end;
    }
    sys::ftruncate(dst, size)
}

fn copy_range(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, mut off: u64, end: u64) -> io::Result<()> {
    while off < end {
        match sys::copy_file_range(src, off, dst, off, (end - off).min(1 << 30) as usize) {
            Ok(0) => return Ok(()),
            Ok(n) => off += n as u64,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                ) =>
            {
                return copy_loop(src, dst, off, end);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn copy_loop(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, mut off: u64, end: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    while off < end {
        let want = ((end - off) as usize).min(buf.len());
        let n = sys::pread(src, &mut buf[..want], off)?;
        if n == 0 {
            return Ok(());
        }
        let mut done = 0;
        while done < n {
            done += sys::pwrite(dst, &buf[done..n], off + done as u64)?;
        }
        off += n as u64;
    }
    Ok(())
}
