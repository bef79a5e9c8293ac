//! Recovery on open: making the journal agree with the upper layer after a crash.
//!
//! Every change is made in the upper layer first and journaled right after, and a file's
//! content hash is recorded when its last writer closes it (or fsyncs it). A kill -9 can
//! therefore leave the journal behind the upper layer:
//! - an upper entry the journal never mentioned (created, or moved in by an unrecorded rename);
//! - a journaled path whose upper entry is gone or of another kind (an unrecorded unlink,
//!   rmdir, or rename away);
//! - a file written after its last record (open for writing at the kill, or written since
//!   its last close): its content, size or mode differ from the record.
//!
//! [`Overlay::reconcile`] appends one record per disagreement saying what the upper layer
//! really holds, so status, diff, verify and commit all see it. Nothing in the upper layer is
//! dropped (except an entry a commit had already applied to the host), so nothing fsynced or
//! acknowledged is lost.

use std::collections::HashMap;
use std::os::fd::AsFd;

use super::state::{state_at, state_of};
use super::Overlay;
use crate::error::{Error, IoContext, Result};
use crate::journal::record::{Draft, EntryState, Op, Record};
use crate::relpath::RelPath;
use crate::sys;

/// A file whose status changed later than this before its last record is hashed again: file
/// timestamps come from the kernel's coarse clock, which may lag the clock that stamps
/// records by a tick, so a write just after a record can carry an earlier time.
const CLOCK_SLACK_NS: i64 = 100_000_000;

impl Overlay {
    /// Brings the journal in line with the upper layer (see the module comment): first every
    /// journaled path is checked against its upper entry, then upper entries the journal never
    /// mentioned are adopted.
    ///
    /// Opening must not need free space: when the disk is too full for these records, they
    /// are deferred (the workspace opens, logs a warning) and written by
    /// [`Overlay::finish_deferred_recovery`] once space returns.
    pub(crate) fn reconcile(&self, replay: &[Record]) -> Result<()> {
        let mut deferred = self.recovery_deferred.lock().unwrap();
        match self
            .settle_recorded_paths(replay)
            .and_then(|()| self.adopt_unrecorded_entries())
        {
            Err(e) if out_of_space(&e) => {
                tracing::warn!(error = %e, "no room to record recovery now; deferred until space returns");
                *deferred = true;
                Ok(())
            }
            other => other,
        }
    }

    /// Writes the recovery records a full disk deferred at open (a no-op otherwise). Status,
    /// verify, commit and discard call it first; it fails with `ENOSPC` while the disk is
    /// still full, and the records stay deferred.
    pub(crate) fn finish_deferred_recovery(&self) -> Result<()> {
        let mut deferred = self.recovery_deferred.lock().unwrap();
        if !*deferred {
            return Ok(());
        }
        // Without the replay's record times every recorded file is hashed again: slower,
        // never wrong, and only once.
        self.settle_recorded_paths(&[])?;
        self.adopt_unrecorded_entries()?;
        *deferred = false;
        tracing::info!("deferred recovery records written");
        Ok(())
    }

    /// True while recovery records wait for space.
    pub(crate) fn recovery_deferred(&self) -> bool {
        *self.recovery_deferred.lock().unwrap()
    }

    /// Appends a record for every journaled path whose upper entry differs from its record.
    fn settle_recorded_paths(&self, replay: &[Record]) -> Result<()> {
        let last_record = last_record_times(replay);
        for (path, change) in self.changes.snapshot() {
            let recorded = &change.current;
            let Some(actual) = self.drifted_state(&path, recorded, last_record.get(&path))? else {
                continue;
            };
            tracing::warn!(
                path = %path,
                recorded = recorded.kind_word(),
                upper = actual.kind_word(),
                "re-recording an upper entry changed after its last journal record"
            );
            let op = op_for(recorded, &actual);
            self.record(Draft::new(op, path, None, actual))?;
        }
        Ok(())
    }

    /// The upper layer's state of `path` when it differs from `recorded`, else `None`. A file
    /// of the recorded size and mode is hashed only if its hash was never settled or it
    /// changed after (or just before) its last record at `last_record_ns`.
    fn drifted_state(
        &self,
        path: &RelPath,
        recorded: &EntryState,
        last_record_ns: Option<&i64>,
    ) -> Result<Option<EntryState>> {
        let upper = self.upper_root.as_fd();
        let shape = state_at(upper, path, false)?;
        let same_shape = match (recorded, &shape) {
            (
                EntryState::File {
                    hash, mode, size, ..
                },
                EntryState::File {
                    mode: m, size: s, ..
                },
            ) => {
                hash.is_some()
                    && mode == m
                    && size == s
                    && !self.changed_since(path, last_record_ns)?
            }
            (r, a) => r == a,
        };
        if same_shape {
            return Ok(None);
        }
        let actual = match shape {
            EntryState::File { .. } => state_at(upper, path, true)?,
            other => other,
        };
        Ok((!recorded.same_state(&actual)).then_some(actual))
    }

    /// True if the upper entry at `path` changed (ctime) after, or shortly before, the record
    /// at `last_record_ns` (always true when that time is unknown).
    fn changed_since(&self, path: &RelPath, last_record_ns: Option<&i64>) -> Result<bool> {
        let Some(&recorded_ns) = last_record_ns else {
            return Ok(true);
        };
        let Ok((dir, name)) = sys::walk_parent(self.upper_root.as_fd(), path) else {
            return Ok(true);
        };
        let st = sys::lstatat(dir.as_fd(), name).ctx("lstat", path)?;
        let ctime_ns = st
            .st_ctime
            .saturating_mul(1_000_000_000)
            .saturating_add(st.st_ctime_nsec);
        Ok(ctime_ns.saturating_add(CLOCK_SLACK_NS) >= recorded_ns)
    }

    /// Adopts upper entries the journal does not know (a crash between the upper change and
    /// its record): each becomes a change with the host's current state as base.
    fn adopt_unrecorded_entries(&self) -> Result<()> {
        let mut stack = vec![RelPath::root()];
        while let Some(dir) = stack.pop() {
            let fd = match sys::walk_dirs(self.upper_root.as_fd(), &dir) {
                Ok(fd) => fd,
                Err(e) if sys::is_absent(&e) => continue,
                Err(e) => return Err(Error::io("walk", &dir, e)),
            };
            for e in sys::read_dir(fd.as_fd()).ctx("readdir", &dir)? {
                let path = dir.join(&e.name)?;
                let st = sys::lstatat(fd.as_fd(), &e.name).ctx("lstat", &path)?;
                let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
                let covered = self.changes.contains(&path) || self.under_new_dir(&path);
                if !covered {
                    let lower = self.lower_state(&path)?;
                    // A directory that also exists in the lower layer was copied up to hold
                    // children: not a change by itself.
                    if !(is_dir && lower.is_dir()) {
                        let new = state_of(fd.as_fd(), &e.name, &st, &path, true)?;
                        if new.same_state(&lower) {
                            // Left behind by a commit that had already applied it.
                            let _ = sys::unlinkat(fd.as_fd(), &e.name, false);
                            continue;
                        }
                        tracing::warn!(path = %path, "adopting an upper entry the journal missed");
                        let op = if is_dir { Op::Mkdir } else { Op::Write };
                        self.record(Draft::new(op, path.clone(), Some(lower), new))?;
                    }
                }
                if is_dir {
                    stack.push(path);
                }
            }
        }
        Ok(())
    }

    /// True if some ancestor of `path` is a directory change that owns its whole subtree
    /// (created in the overlay, or opaque).
    pub(crate) fn under_new_dir(&self, path: &RelPath) -> bool {
        path.ancestors().take_while(|p| !p.is_root()).any(|p| {
            self.changes
                .get(&p)
                .is_some_and(|c| c.opaque || c.base.is_absent() || !c.base.is_dir())
        })
    }
}

/// The disk (or the user's quota) is full.
fn out_of_space(e: &crate::error::Error) -> bool {
    matches!(e.errno(), libc::ENOSPC | libc::EDQUOT)
}

/// Time of the last record naming each path (as `path` or as a rename/link target).
fn last_record_times(replay: &[Record]) -> HashMap<RelPath, i64> {
    let mut out = HashMap::new();
    for r in replay {
        out.insert(r.draft.path.clone(), r.time_ns);
        if let Some(to) = &r.draft.to {
            out.insert(to.path.clone(), r.time_ns);
        }
    }
    out
}

/// The operation that records `actual` over `recorded` with the change set's usual meaning
/// (a directory made where something else was recorded hides the host's one: `mkdir`).
fn op_for(recorded: &EntryState, actual: &EntryState) -> Op {
    match actual {
        EntryState::Absent if recorded.is_dir() => Op::Rmdir,
        EntryState::Absent => Op::Unlink,
        EntryState::Dir { .. } if recorded.is_dir() => Op::Setattr,
        EntryState::Dir { .. } => Op::Mkdir,
        EntryState::File { .. } => Op::Write,
        EntryState::Symlink { .. } => Op::Symlink,
        EntryState::Special { .. } => Op::Mknod,
    }
}
