//! Checkpoints: a journal record naming the exact state of every changed path, with every file
//! version's content in the content store, so the workspace can be shown (`range`) or put
//! back (`restore`) as it was.
//!
//! Taking one costs O(changed paths): a path's state comes from the change set, a file's
//! content is put in the store (a reflink where the filesystem offers one; nothing at all when
//! the store already holds its recorded hash), then one `syncfs` of the store, then the record.
//! A file open for writing is captured as it is at that moment: the hash is the hash of the
//! copy the store took.

pub(crate) mod range;
pub(crate) mod restore;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;

use crate::api::Change;
use crate::api::CheckpointInfo;
use crate::error::{Error, IoContext, Result};
use crate::hash::ContentHash;
use crate::journal::record::{CheckpointEntry, Draft, EntryState, Op, Record};
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::store::ContentStore;
use crate::sys;

/// A checkpoint read back from the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its id (`c1`, ...).
    pub id: String,
    /// Sequence number of its record.
    pub seq: u64,
    /// When it was taken (ns since the epoch).
    pub time_ns: i64,
    /// Its message.
    pub message: String,
    /// Every changed path then, sorted.
    pub entries: Vec<CheckpointEntry>,
}

impl Checkpoint {
    /// The checkpoint a record holds, if it is one.
    pub fn of(r: &Record) -> Option<Checkpoint> {
        match &r.draft.op {
            Op::Checkpoint {
                id,
                message,
                entries,
            } => Some(Checkpoint {
                id: id.clone(),
                seq: r.seq,
                time_ns: r.time_ns,
                message: message.clone(),
                entries: entries.clone(),
            }),
            _ => None,
        }
    }

    /// Its entries by path.
    pub fn by_path(&self) -> HashMap<&RelPath, &CheckpointEntry> {
        self.entries.iter().map(|e| (&e.path, e)).collect()
    }
}

/// Every checkpoint in `records`, oldest first.
pub fn all(records: &[Record]) -> Vec<Checkpoint> {
    records.iter().filter_map(Checkpoint::of).collect()
}

/// The checkpoint `id` among `records`, or an error naming it.
pub(crate) fn find(records: &[Record], id: &str) -> Result<Checkpoint> {
    records
        .iter()
        .rev()
        .filter_map(Checkpoint::of)
        .find(|c| c.id == id)
        .ok_or_else(|| Error::NoSuchCheckpoint(id.to_string()))
}

/// Every store hash a checkpoint in `records` references: what a garbage collection of the
/// content store must keep for checkpoints to stay restorable.
pub fn referenced_hashes(records: &[Record]) -> HashSet<ContentHash> {
    let mut out = HashSet::new();
    for r in records {
        if let Op::Checkpoint { entries, .. } = &r.draft.op {
            for e in entries {
                if let EntryState::File { hash: Some(h), .. } = &e.state {
                    out.insert(*h);
                }
            }
        }
    }
    out
}

/// How many checkpoints `records` hold (the next id is one more).
pub(crate) fn count(records: &[Record]) -> u64 {
    records
        .iter()
        .filter(|r| matches!(r.draft.op, Op::Checkpoint { .. }))
        .count() as u64
}

/// The listing of `wsfs checkpoints`: each with the number of paths whose state differs from
/// the previous checkpoint (a path missing from one side counts when the other has it).
pub(crate) fn infos(records: &[Record]) -> Vec<CheckpointInfo> {
    let mut out = Vec::new();
    let mut prev: Option<Checkpoint> = None;
    for cp in all(records) {
        let changed = match &prev {
            None => cp.entries.len() as u64,
            Some(p) => changed_between(p, &cp),
        };
        out.push(info(&cp, changed));
        prev = Some(cp);
    }
    out
}

fn changed_between(a: &Checkpoint, b: &Checkpoint) -> u64 {
    let am = a.by_path();
    let bm = b.by_path();
    let mut n = 0;
    for (p, e) in &bm {
        if am.get(p).is_none_or(|x| !x.state.same_state(&e.state)) {
            n += 1;
        }
    }
    n + am.keys().filter(|p| !bm.contains_key(*p)).count() as u64
}

/// The API summary of a checkpoint.
pub(crate) fn info(cp: &Checkpoint, changed: u64) -> CheckpointInfo {
    CheckpointInfo {
        id: cp.id.clone(),
        seq: cp.seq,
        time_ns: cp.time_ns,
        message: cp.message.clone(),
        paths: cp.entries.len() as u64,
        changed,
    }
}

/// Takes checkpoint `id`: captures every pending change (as `status` sees it, entries inside a
/// directory the workspace created included) and every other upper entry of a touched path,
/// makes the store durable, appends the record.
pub(crate) fn take(
    ov: &Overlay,
    store: &ContentStore,
    id: &str,
    message: &str,
) -> Result<Checkpoint> {
    ov.settle_written(None)?;
    let busy = ov.busy_paths();
    let mut entries = Vec::new();
    let pending = crate::commit::status::pending(ov)?;
    let listed: HashSet<RelPath> = pending.iter().map(|c| c.path.clone()).collect();
    for change in pending {
        let busy = busy.contains(&change.path);
        entries.push(capture(ov, store, change, busy)?);
    }
    // Touched paths that are back to their base still hold an upper entry the view may need
    // (inside a directory that hides the host's): kept too.
    for (path, c) in ov.changes().snapshot() {
        if listed.contains(&path) {
            continue;
        }
        let state = ov.upper_state(&path, false)?;
        if state.is_absent() {
            continue;
        }
        let change = Change {
            path: path.clone(),
            kind: crate::api::ChangeKind::Modified,
            from: None,
            base: c.base,
            current: state,
            scratch: false,
            protected: false,
            git_churn: false,
            secret: false,
            write_through: false,
        };
        entries.push(capture(ov, store, change, busy.contains(&path))?);
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    store.sync()?;
    let rec = ov.record_durable(Draft::control(Op::Checkpoint {
        id: id.to_string(),
        message: message.to_string(),
        entries,
    }))?;
    Ok(Checkpoint::of(&rec).expect("a checkpoint record"))
}

/// One path's entry: its state, a file's content put in the store.
fn capture(
    ov: &Overlay,
    store: &ContentStore,
    change: Change,
    busy: bool,
) -> Result<CheckpointEntry> {
    let path = change.path;
    let mut entry = CheckpointEntry {
        opaque: ov.changes().get(&path).is_some_and(|c| c.opaque),
        base: change.base,
        state: change.current,
        owner: None,
        path,
    };
    if entry.state.is_absent() {
        return Ok(entry);
    }
    let path = &entry.path;
    let (dir, name) = sys::walk_parent(ov.upper_root().as_fd(), path).ctx("walk", path)?;
    let st = sys::lstatat(dir.as_fd(), name).ctx("lstat", path)?;
    entry.owner = Some((st.st_uid, st.st_gid));
    if let EntryState::File { hash, .. } = &entry.state {
        if hash.is_some_and(|h| !busy && store.contains(&h)) {
            // Its record is true of the upper file (nobody has it open for writing) and the
            // store has that content already: nothing to copy.
            return Ok(entry);
        }
        let fd = sys::openat(
            dir.as_fd(),
            name,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        )
        .ctx("open", path)?;
        let (hash, size) = store.put_fd(fd.as_fd(), None)?;
        let st = sys::fstat(fd.as_fd()).ctx("fstat", path)?;
        entry.state = EntryState::File {
            hash: Some(hash),
            mode: st.st_mode & 0o7777,
            size,
        };
    }
    Ok(entry)
}
