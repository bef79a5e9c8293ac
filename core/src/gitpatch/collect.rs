//! The pending changes as git file pairs: both sides read in full from the layers (the old
//! side is the host's file now, as `wsfs diff` and `commit` see it), renames paired as
//! `git diff -M` pairs them, and what git cannot hold set aside with the reason.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};

use super::{GitFile, GitSide, MODE_EXEC, MODE_FILE, MODE_LINK};
use crate::api::{Change, LeftOut};
use crate::diff::{self, Side};
use crate::error::{IoContext, Result};
use crate::journal::record::EntryState;
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::sys;

/// Git file pairs of `changes` (sorted by path), and the changes left out.
pub(crate) fn collect(ov: &Overlay, changes: Vec<Change>) -> Result<(Vec<GitFile>, Vec<LeftOut>)> {
    let mut sides = Vec::new();
    let mut left_out = Vec::new();
    for mut change in changes {
        let old_path = change.from.clone().unwrap_or_else(|| change.path.clone());
        let old_state = ov.lower_state(&old_path)?;
        let reason = if change.secret {
            Some("a workspace-only secret (a hide rule matches it): never committed")
        } else if in_git_dir(&change.path) || in_git_dir(&old_path) {
            Some("inside a .git directory: git does not track its own files")
        } else if matches!(old_state, EntryState::Special { .. })
            || matches!(change.current, EntryState::Special { .. })
        {
            Some("a FIFO, socket or device node: git has no such entry")
        } else {
            None
        };
        if let Some(reason) = reason {
            left_out.push(LeftOut {
                path: change.path,
                reason: reason.into(),
            });
            continue;
        }
        let old = read(ov.lower_root().as_fd(), &old_path, &old_state)?;
        let new = read(ov.upper_root().as_fd(), &change.path, &change.current)?;
        if old.is_none() && new.is_none() {
            continue; // directories: git has only their files
        }
        change.base = old_state;
        sides.push(Side::pair(change, old, new));
    }
    let mut files = Vec::new();
    for s in diff::pair(sides) {
        let new_path = s.change.path;
        let old_path = s.change.from.unwrap_or_else(|| new_path.clone());
        let old = s.old.map(|data| GitSide {
            mode: git_mode(&s.change.base),
            path: old_path,
            data,
        });
        let new = s.new.map(|data| GitSide {
            mode: git_mode(&s.change.current),
            path: new_path,
            data,
        });
        match (old, new) {
            // Git shows a change of type (file ⇄ symlink) as a deletion and an addition.
            (Some(o), Some(n)) if (o.mode == MODE_LINK) != (n.mode == MODE_LINK) => {
                files.push(GitFile {
                    old: Some(o),
                    new: None,
                    similarity: None,
                });
                files.push(GitFile {
                    old: None,
                    new: Some(n),
                    similarity: None,
                });
            }
            // Nothing git sees (a mode change other than the owner's x bit, a touched file).
            (Some(o), Some(n)) if o == n => {}
            (old, new) => {
                let similarity = match (&old, &new) {
                    (Some(o), Some(n)) if o.path != n.path => Some(
                        (diff::similarity(Some(&o.data), Some(&n.data)) * 100 / diff::MAX_SCORE)
                            as u8,
                    ),
                    _ => None,
                };
                files.push(GitFile {
                    old,
                    new,
                    similarity,
                });
            }
        }
    }
    Ok((files, left_out))
}

/// True when a component of `path` is `.git` (git refuses to apply or track such paths).
fn in_git_dir(path: &RelPath) -> bool {
    path.as_bytes().split(|&b| b == b'/').any(|c| c == b".git")
}

/// Git's mode for a file or symlink state (files: 755 when the owner may execute, else 644).
fn git_mode(state: &EntryState) -> u32 {
    match state {
        EntryState::Symlink { .. } => MODE_LINK,
        EntryState::File { mode, .. } if mode & 0o100 != 0 => MODE_EXEC,
        _ => MODE_FILE,
    }
}

/// The whole content of a file, or a symlink's target; `None` for anything else.
fn read(root: BorrowedFd<'_>, path: &RelPath, state: &EntryState) -> Result<Option<Vec<u8>>> {
    match state {
        EntryState::File { .. } => {
            let (dir, name) = sys::walk_parent(root, path).ctx("open", path)?;
            let fd = sys::openat(dir.as_fd(), name, libc::O_RDONLY, 0).ctx("open", path)?;
            let mut buf = Vec::new();
            std::fs::File::from(fd)
                .read_to_end(&mut buf)
                .ctx("read", path)?;
            Ok(Some(buf))
        }
        EntryState::Symlink { target } => Ok(Some(target.clone())),
        _ => Ok(None),
    }
}
