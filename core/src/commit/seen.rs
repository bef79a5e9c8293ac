//! What the conflict check read of a host path, and the proof that it still holds when the
//! commit acts on that path.
//!
//! The check hashes each host file once; applying reuses that state instead of hashing the
//! file again. What closes the race between the check and the write is the file's identity,
//! `lstat`ed before it was hashed: device, inode, type and mode, size, mtime and ctime. The
//! kernel sets ctime on every change of content or metadata, and a file replaced under the
//! same name has another inode, so an equal identity means the hashed content is still there.
//! Where the identity cannot prove that, the path is read (and hashed) again:
//! - its identity differs (it changed since the reading);
//! - its ctime was at most [`RACY`] old when it was read: a change in the same timestamp tick
//!   would keep the ctime, so no identity is kept;
//! - it is not a regular file (reading it costs no hash).
//!
//! The host path is proved (or read again) at three points:
//! - when the commit stages it, and when it deletes it: if the host changed since the check
//!   and now holds neither the base nor the committed state, the path is left pending instead
//!   of overwritten (a forced commit applies it, backing up what is there now);
//! - right before a staged entry is renamed over it (writing and syncing the temporary files
//!   lie in between): if the host no longer holds what staging saw, the path is left pending,
//!   forced or not (a backup, if any, holds what staging saw).
//!
//! What is left is the instant between that last `lstat` and the `rename(2)` or `unlink(2)`,
//! which no filesystem lets a program close, and a writer through a shared mapping, whose
//! stores reach the file without a new ctime until the pages are written back (it races with
//! the check's hash as well).

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::journal::record::EntryState;
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::sys::{self, Stat};

/// A file whose ctime is at most this old when it is read gets no identity: timestamps are
/// coarse (a clock tick; two seconds on FAT), and a change within the same tick would leave it
/// unchanged.
pub(super) const RACY: Duration = Duration::from_secs(2);

/// The `lstat` fields any change to a file (content, metadata, or the file replaced) alters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    mode: u32,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(st: &Stat) -> Identity {
        Identity {
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }
}

/// A host path's state as one reading saw it.
#[derive(Clone, Debug)]
pub(super) struct Seen {
    /// The state, content hashed.
    pub state: EntryState,
    /// For a regular file not changed within [`RACY`] of the reading: its identity, taken
    /// before it was hashed.
    identity: Option<Identity>,
}

impl Seen {
    /// Nothing at the path (what the commit expects once it removed an entry itself).
    pub fn absent() -> Seen {
        Seen {
            state: EntryState::Absent,
            identity: None,
        }
    }

    /// Reads (and hashes) the host's `path`.
    pub fn read(ov: &Overlay, path: &RelPath) -> Result<Seen> {
        // Taken before the `lstat`, so a ctime in the same tick as the `lstat` counts as racy.
        let before = SystemTime::now();
        let (state, st) = ov.lower_state_and_stat(path)?;
        let identity = st
            .filter(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG && !racy(st, before))
            .map(|st| Identity::of(&st));
        Ok(Seen { state, identity })
    }

    /// The host's `path` now: `self` when its identity proves it unchanged, else read again.
    pub fn now(&self, ov: &Overlay, path: &RelPath) -> Result<Seen> {
        if let Some(id) = self.identity {
            if let Ok((dir, name)) = sys::walk_parent(ov.lower_root().as_fd(), path) {
                if sys::lstatat(dir.as_fd(), name).is_ok_and(|st| Identity::of(&st) == id) {
                    return Ok(self.clone());
                }
            }
        }
        Seen::read(ov, path)
    }

    /// True if the host entry `name` in `dir` (the host's `path`) still holds what `self`
    /// saw: the content, for a file; the type, target or absence otherwise.
    pub fn holds(
        &self,
        ov: &Overlay,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        path: &RelPath,
    ) -> Result<bool> {
        match sys::lstatat(dir, name) {
            Err(e) if sys::is_absent(&e) => Ok(self.state.is_absent()),
            Err(e) => Err(Error::io("lstat", path, e)),
            Ok(_) if self.state.is_absent() => Ok(false),
            Ok(st) if self.identity == Some(Identity::of(&st)) => Ok(true),
            Ok(_) => Ok(Seen::read(ov, path)?.state.same_content(&self.state)),
        }
    }
}

/// True if `st`'s ctime is too close to `before` (or after it) to prove anything.
fn racy(st: &Stat, before: SystemTime) -> bool {
    let Ok(now) = before.duration_since(UNIX_EPOCH) else {
        return true;
    };
    let ctime = Duration::new(st.st_ctime.max(0) as u64, st.st_ctime_nsec as u32);
    ctime + RACY > now
}
