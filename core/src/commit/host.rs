//! Writing into the host project safely.
//!
//! Every host path is reached by walking from the project root with `O_NOFOLLOW`: if any parent
//! component is (or became) a symlink or is not a directory, the path is refused with
//! [`Error::UnsafeHostPath`]. Files are replaced atomically: a temporary file in the same
//! directory, written and made durable (each fsynced, or one `syncfs` for a large batch), then renamed over the target.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::{Error, IoContext, Result};
use crate::hash::ContentHash;
use crate::relpath::RelPath;
use crate::sys;

/// Prefix of temporary files a commit leaves in host directories until it renames them.
pub const TMP_PREFIX: &str = ".wsfs-commit-";

/// Opens the parent directory of `path` in the host project, refusing symlinks.
pub fn host_parent(root: BorrowedFd<'_>, path: &RelPath) -> Result<(OwnedFd, OsString)> {
    let (parent, name) = path
        .split_last()
        .ok_or_else(|| Error::invalid_argument(path))?;
    let fd = sys::walk_dirs(root, &parent).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::ENOTDIR) => Error::UnsafeHostPath { path: path.clone() },
        _ => Error::io("open parent", path, e),
    })?;
    Ok((fd, name.to_owned()))
}

/// Temporary name for `path` in commit `id`.
pub fn tmp_name(id: &str, n: usize) -> OsString {
    OsString::from(format!("{TMP_PREFIX}{id}-{n}"))
}

/// Writes `src` (an upper-layer file) into a new temporary file `tmp` in `dir`; returns the
/// content hash and length of what the temporary file holds. With `fsync`, the temporary file is made
/// durable here (otherwise the caller syncs the whole filesystem once for all of them).
pub fn write_tmp(
    src: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    tmp: &OsStr,
    mode: u32,
    owner: (u32, u32),
    path: &RelPath,
    fsync: bool,
) -> Result<(ContentHash, u64)> {
    let _ = sys::unlinkat(dir, tmp, false);
    let out = sys::openat(
        dir,
        tmp,
        libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
        0o600,
    )
    .ctx("create", path)?;
    let size = sys::fstat(src).ctx("stat", path)?.st_size as u64;
    crate::copy::copy_sparse(src, out.as_fd(), size).ctx("copy", path)?;
    sys::lchownat(out.as_fd(), OsStr::new(""), owner.0, owner.1).ctx("chown", path)?;
    sys::chmod_fd(out.as_fd(), mode).ctx("chmod", path)?;
    if fsync {
        sys::fsync(out.as_fd(), false).ctx("fsync", path)?;
    }
    let written = sys::reopen(out.as_fd(), libc::O_RDONLY).ctx("open", path)?;
    crate::hash::hash_fd_len(written.as_fd()).ctx("hash", path)
}

/// Removes a host entry (file or empty dir) if present.
pub fn remove(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool, path: &RelPath) -> Result<()> {
    crate::tree::remove_entry(dir, name, is_dir, path)
}

/// Owner for a new host entry: the owner of its host parent directory (the project's owner),
/// never the daemon's root.
pub fn owner_for_new(dir: BorrowedFd<'_>) -> (u32, u32) {
    sys::fstat(dir)
        .map(|st| (st.st_uid, st.st_gid))
        .unwrap_or((u32::MAX, u32::MAX))
}

/// fsyncs a directory given its `O_PATH` fd.
pub fn fsync_dir(dir: BorrowedFd<'_>) -> std::io::Result<()> {
    let f = sys::reopen(dir, libc::O_RDONLY | libc::O_DIRECTORY)?;
    sys::fsync(f.as_fd(), false)
}
