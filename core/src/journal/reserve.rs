//! The journal's space reserve: blocks preallocated past the end of the file, so that an
//! operation can claim room for its record *before* it changes the upper layer.
//!
//! The reserve is allocated with `fallocate(FALLOC_FL_KEEP_SIZE)`: the file's size (and so
//! every reader, the chain and the torn-tail rule) is unchanged, but the blocks after it exist,
//! and an `O_APPEND` write landing in them needs no free space. An operation claims a bound on
//! its record's length ([`super::Journal::reserve`]); a claim that does not fit in the reserve
//! (after trying to grow it) fails with `ENOSPC` before anything changed. Appends without a
//! claim (a close's content hash, recovery, commit bookkeeping) may use only what no claim holds.
//!
//! The last [`FREEING_MARGIN`] bytes of the reserve are for operations that free space
//! (unlink, rmdir, truncate), so a full disk can always be cleaned up from inside the workspace.
//! The reserve is topped up to [`RESERVE_BYTES`] whenever it falls below half, and grown on
//! demand for a larger claim (a directory rename, a big commit); when the filesystem is full
//! that fails and the reserve shrinks as records use it, until space returns.
//!
//! On a filesystem without `fallocate` (some network and FUSE filesystems) there is no
//! reserve: claims always succeed and appends can fail with `ENOSPC` as before.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use crate::sys;

/// Bytes kept preallocated past the journal's end (a few hundred records).
pub const RESERVE_BYTES: u64 = 256 << 10;

/// The part of the reserve only space-freeing operations may claim.
pub const FREEING_MARGIN: u64 = 64 << 10;

/// Appended bytes after a failed top-up before the next try (so a full disk costs one failing
/// `fallocate` per this many bytes, not one per record).
const RETRY_AFTER: u64 = 16 << 10;

/// The reserve's bookkeeping, kept with the journal's tail under its mutex.
#[derive(Debug)]
pub(super) struct Pool {
    /// End of the preallocated blocks (a file offset; never below the file's length).
    allocated_end: u64,
    /// Bytes claimed by reservations not yet used or dropped.
    claimed: u64,
    /// False when the filesystem cannot preallocate: no reserve at all.
    supported: bool,
    /// File length at the last failed top-up.
    failed_at: Option<u64>,
}

impl Pool {
    /// Preallocates as much of the reserve as the filesystem allows past `len` (blocks a
    /// previous run preallocated are found again: allocating them again needs no space).
    pub(super) fn open(file: &File, len: u64) -> Pool {
        let mut pool = Pool {
            allocated_end: len,
            claimed: 0,
            supported: true,
            failed_at: None,
        };
        let mut want = RESERVE_BYTES;
        while want >= 4096 {
            match preallocate(file, len, want) {
                Ok(()) => {
                    pool.allocated_end = len + want;
                    break;
                }
                Err(e) if unsupported(&e) => {
                    tracing::warn!(error = %e, "the journal's filesystem cannot preallocate: no space reserve for journal records");
                    pool.supported = false;
                    break;
                }
                Err(_) => want /= 2,
            }
        }
        if pool.allocated_end < len + RESERVE_BYTES {
            pool.failed_at = Some(len);
        }
        pool
    }

    /// Reserve bytes nobody has claimed, past `len`.
    fn free(&self, len: u64) -> u64 {
        self.allocated_end.saturating_sub(len + self.claimed)
    }

    /// Claims `bytes` (keeping [`FREEING_MARGIN`] free unless `frees`), growing the reserve
    /// when needed. `false`: no room, nothing claimed.
    pub(super) fn claim(&mut self, file: &File, len: u64, bytes: u64, frees: bool) -> bool {
        if !self.supported {
            return true;
        }
        let margin = if frees { 0 } else { FREEING_MARGIN };
        if self.free(len) < bytes + margin && !self.grow(file, len, bytes + margin) {
            return false;
        }
        self.claimed += bytes;
        self.top_up(file, len);
        true
    }

    /// Gives back `bytes` of a claim.
    pub(super) fn release(&mut self, bytes: u64) {
        self.claimed = self.claimed.saturating_sub(bytes);
    }

    /// Whether an append of `line` bytes without a claim may go ahead (it must not use
    /// claimed space or the freeing margin).
    pub(super) fn admit_unclaimed(&mut self, file: &File, len: u64, line: u64) -> bool {
        if !self.supported {
            return true;
        }
        let ok =
            self.free(len) >= line + FREEING_MARGIN || self.grow(file, len, line + FREEING_MARGIN);
        if ok {
            self.top_up(file, len + line);
        }
        ok
    }

    /// The file was cut back to `len` (a failed append rolled back): the truncate freed the
    /// blocks after it, so the reserve is gone until the next top-up.
    pub(super) fn cut(&mut self, len: u64) {
        self.allocated_end = len;
        self.failed_at = None;
    }

    /// Makes `need` unclaimed bytes available past `len` (plus a fresh reserve if possible).
    fn grow(&mut self, file: &File, len: u64, need: u64) -> bool {
        let base = len + self.claimed;
        for want in [need + RESERVE_BYTES, need] {
            if preallocate(file, base, want).is_ok() {
                self.allocated_end = self.allocated_end.max(base + want);
                return true;
            }
        }
        self.failed_at = Some(len);
        false
    }

    /// Refills the reserve once it falls below half (not again until [`RETRY_AFTER`] more
    /// bytes were appended after a failure).
    fn top_up(&mut self, file: &File, len: u64) {
        if self.free(len) >= RESERVE_BYTES / 2 {
            return;
        }
        if self.failed_at.is_some_and(|at| len < at + RETRY_AFTER) {
            return;
        }
        let base = len + self.claimed;
        match preallocate(file, base, RESERVE_BYTES) {
            Ok(()) => {
                self.allocated_end = self.allocated_end.max(base + RESERVE_BYTES);
                self.failed_at = None;
            }
            Err(_) => self.failed_at = Some(len),
        }
    }
}

fn preallocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    sys::fallocate(file.as_fd(), libc::FALLOC_FL_KEEP_SIZE, offset, len)
}

fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL)
    )
}

/// Room claimed in the journal for an operation's records. Dropping it gives back whatever
/// its records did not use.
pub struct Reservation<'a> {
    pub(super) journal: &'a super::Journal,
    pub(super) bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.journal.lock().pool.release(self.bytes);
        }
    }
}

/// A generous bound on the length of one journal line whose paths and symlink targets
/// total `text_bytes` (JSON escapes a byte into at most 6; the rest of a record, up to four
/// entry states with their hashes, fits in 1 KiB; the writer, 256 bytes).
pub fn line_bound(text_bytes: usize) -> u64 {
    1024 + WRITER_BOUND + 6 * text_bytes as u64
}

/// A bound on a record's `by` field: pid, a 15-byte name escaped at most 6 bytes a byte, a
/// 64-digit container id and the keys.
const WRITER_BOUND: u64 = 256;
