//! Reading an entry's [`EntryState`] from a layer: what the journal records as base and new
//! states, and what `status` compares.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};

use super::Overlay;
use crate::error::{Error, IoContext, Result};
use crate::hash::{self, ContentHash};
use crate::journal::record::EntryState;
use crate::relpath::RelPath;
use crate::sys::{self, Stat};

/// State of `dir/name` given its `stat`; hashes regular files when `hash` is set.
pub(crate) fn state_of(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &Stat,
    path: &RelPath,
    hash: bool,
) -> Result<EntryState> {
    let mode = st.st_mode & 0o7777;
    Ok(match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => {
            if hash {
                // The size is the length hashed, not the one `st` saw: a writer may have
                // changed the file in between, and hash and size must describe one content.
                let fd = sys::openat(dir, name, libc::O_RDONLY, 0).ctx("open", path)?;
                let (h, size) = hash::hash_fd_len(fd.as_fd()).ctx("hash", path)?;
                EntryState::File {
                    hash: Some(h),
                    mode,
                    size,
                }
            } else {
                EntryState::File {
                    hash: None,
                    mode,
                    size: st.st_size as u64,
                }
            }
        }
        libc::S_IFDIR => EntryState::Dir { mode },
        libc::S_IFLNK => EntryState::Symlink {
            target: std::os::unix::ffi::OsStrExt::as_bytes(
                sys::readlinkat(dir, name)
                    .ctx("readlink", path)?
                    .as_os_str(),
            )
            .to_vec(),
        },
        kind => EntryState::Special {
            mode: st.st_mode,
            rdev: if matches!(kind, libc::S_IFCHR | libc::S_IFBLK) {
                st.st_rdev
            } else {
                0
            },
        },
    })
}

/// State of `path` under `root`, walking without following symlinks. A missing path, or one
/// whose parent is not a directory (or is a symlink), is `Absent`.
pub(crate) fn state_at(root: BorrowedFd<'_>, path: &RelPath, hash: bool) -> Result<EntryState> {
    Ok(stat_and_state_at(root, path, hash)?.0)
}

/// [`state_at`], with the `lstat` the state was read from (taken before any hashing; `None`
/// when absent, and for the root).
fn stat_and_state_at(
    root: BorrowedFd<'_>,
    path: &RelPath,
    hash: bool,
) -> Result<(EntryState, Option<Stat>)> {
    let Some((parent, name)) = path.split_last() else {
        return Ok((EntryState::Dir { mode: 0o755 }, None));
    };
    let dir = match sys::walk_dirs(root, &parent) {
        Ok(d) => d,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
            ) =>
        {
            return Ok((EntryState::Absent, None))
        }
        Err(e) => return Err(Error::io("walk", path, e)),
    };
    match sys::lstatat(dir.as_fd(), name) {
        Ok(st) => Ok((state_of(dir.as_fd(), name, &st, path, hash)?, Some(st))),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
            Ok((EntryState::Absent, None))
        }
        Err(e) => Err(Error::io("lstat", path, e)),
    }
}

impl Overlay {
    /// The host's state at `path` (content hashed).
    pub(crate) fn lower_state(&self, path: &RelPath) -> Result<EntryState> {
        Ok(self.lower_state_and_stat(path)?.0)
    }

    /// [`Overlay::lower_state`] with the `lstat` it was read from, taken before the content
    /// was hashed (`None` when absent).
    pub(crate) fn lower_state_and_stat(
        &self,
        path: &RelPath,
    ) -> Result<(EntryState, Option<Stat>)> {
        let read = stat_and_state_at(self.lower_root.as_fd(), path, true)?;
        #[cfg(test)]
        if matches!(read.0, EntryState::File { .. }) {
            self.host_hashes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(read)
    }

    /// The shape of the upper entry at `path` (kind, mode, size, link target; no hash).
    pub fn upper_shape(&self, path: &RelPath) -> Result<EntryState> {
        state_at(self.upper_root.as_fd(), path, false)
    }

    /// The overlay's own state at `path`: the upper entry, or `Absent` (whiteout). Hashes
    /// files only when the change set has no hash for them, or `rehash` is set.
    pub(crate) fn upper_state(&self, path: &RelPath, rehash: bool) -> Result<EntryState> {
        let st = state_at(self.upper_root.as_fd(), path, false)?;
        match st {
            EntryState::File { mode, size, .. } => {
                let known = self.changes.get(path).and_then(|c| match c.current {
                    EntryState::File { hash, size: s, .. } if s == size => hash,
                    _ => None,
                });
                let dirty = self.is_dirty(path);
                match known {
                    Some(h) if !rehash && !dirty => Ok(EntryState::File {
                        hash: Some(h),
                        mode,
                        size,
                    }),
                    // Hashed again: take the size from that reading too (a writer may have
                    // changed the file since the first `stat`).
                    _ => match state_at(self.upper_root.as_fd(), path, true)? {
                        hashed @ EntryState::File { hash: Some(_), .. } => Ok(hashed),
                        _ => Ok(EntryState::File {
                            hash: Some(ContentHash::default()),
                            mode,
                            size,
                        }),
                    },
                }
            }
            other => Ok(other),
        }
    }

    fn is_dirty(&self, path: &RelPath) -> bool {
        self.handles.iter().any(|h| {
            h.writable
                && h.node.dirty.load(std::sync::atomic::Ordering::Relaxed)
                && &h.node.path() == path
        })
    }
}
