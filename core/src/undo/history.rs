//! The commits a journal records, what each changed on the host (before and after), whether
//! it can still be undone, and the content-store objects they (and checkpoints) reference.

use std::collections::{HashMap, HashSet};

use crate::api::{CommitInfo, CommittedPath};
use crate::hash::ContentHash;
use crate::journal::record::{EntryState, Op, Record};
use crate::relpath::RelPath;

/// Commits whose versions `wsfs gc` keeps by default.
pub const DEFAULT_KEEP: u64 = 20;

/// One commit as the journal tells it.
#[derive(Clone, Debug)]
pub struct Commit {
    /// Commit id.
    pub id: String,
    /// Time of its `commit_begin`.
    pub time_ns: i64,
    /// Each path it applied with the host's state before (`None`: not kept) and after.
    pub paths: Vec<(RelPath, Option<EntryState>, EntryState)>,
    /// It kept the host's prior state of its paths (and their content in the store).
    pub kept_versions: bool,
    /// Its `commit_end` is in the journal.
    pub finished: bool,
    /// The undo that put it back (begun; finished once its `undo_end` is there).
    pub undone_by: Option<String>,
    /// `wsfs gc` dropped its versions.
    pub collected: bool,
}

impl Commit {
    /// Why it cannot be undone, or `None` when it can.
    pub fn not_undoable(&self) -> Option<&'static str> {
        if self.undone_by.is_some() {
            Some("undone")
        } else if !self.kept_versions {
            Some("no_versions")
        } else if self.collected {
            Some("collected")
        } else if !self.finished {
            Some("unfinished")
        } else {
            None
        }
    }

    /// The API's view of it.
    pub fn info(&self) -> CommitInfo {
        CommitInfo {
            id: self.id.clone(),
            time_ns: self.time_ns,
            paths: self
                .paths
                .iter()
                .map(|(path, before, after)| CommittedPath {
                    path: path.clone(),
                    before: before.clone(),
                    after: after.clone(),
                })
                .collect(),
            undoable: self.not_undoable().is_none(),
            not_undoable: self.not_undoable().map(str::to_string),
            undone_by: self.undone_by.clone(),
        }
    }

    /// The hashes of every file version it names (before and after).
    fn hashes(&self, out: &mut HashSet<ContentHash>) {
        for (_, before, after) in &self.paths {
            for s in before.iter().chain(std::iter::once(after)) {
                if let EntryState::File { hash: Some(h), .. } = s {
                    out.insert(*h);
                }
            }
        }
    }
}

/// Every commit in `records`, oldest first.
pub fn commits(records: &[Record]) -> Vec<Commit> {
    let mut out: Vec<Commit> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    // Prior states listed by each commit_begin, by commit and path.
    let mut prior: HashMap<String, HashMap<RelPath, EntryState>> = HashMap::new();
    let mut undo_of: HashMap<String, String> = HashMap::new();
    for r in records {
        let d = &r.draft;
        match &d.op {
            Op::CommitBegin {
                id,
                paths,
                prior: p,
            } => {
                if paths.is_empty() {
                    // Only paths the workspace left as the host has them (bookkeeping).
                    continue;
                }
                by_id.insert(id.clone(), out.len());
                let kept = !p.is_empty() && p.len() == paths.len();
                if kept {
                    prior.insert(
                        id.clone(),
                        paths.iter().cloned().zip(p.iter().cloned()).collect(),
                    );
                }
                out.push(Commit {
                    id: id.clone(),
                    time_ns: r.time_ns,
                    paths: Vec::new(),
                    kept_versions: kept,
                    finished: false,
                    undone_by: None,
                    collected: false,
                });
            }
            Op::CommitApplied { id } => {
                if let Some(&i) = by_id.get(id) {
                    let before = prior.get(id).and_then(|m| m.get(&d.path)).cloned();
                    let c = &mut out[i];
                    if c.kept_versions && before.is_none() {
                        // A path it touched but did not change (it only left the overlay).
                        continue;
                    }
                    // A path recorded twice (roll-forward after a crash) counts once.
                    c.paths.retain(|(p, _, _)| p != &d.path);
                    c.paths.push((d.path.clone(), before, d.new.clone()));
                }
            }
            Op::CommitEnd { id } => {
                if let Some(&i) = by_id.get(id) {
                    out[i].finished = true;
                }
            }
            Op::UndoBegin { id, commit, .. } => {
                undo_of.insert(id.clone(), commit.clone());
                if let Some(&i) = by_id.get(commit) {
                    out[i].undone_by = Some(id.clone());
                }
            }
            Op::Gc { keep } => {
                let mut left = *keep;
                for c in out.iter_mut().rev() {
                    if c.not_undoable().is_some() {
                        continue;
                    }
                    if left > 0 {
                        left -= 1;
                    } else {
                        c.collected = true;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The content-store objects the journal still references: every version of the last `keep`
/// commits that can be undone, of any undo still in progress, and (once they exist) of
/// checkpoints. The one place that decides what `gc` keeps and `verify` expects.
pub fn referenced(records: &[Record], keep: u64) -> HashSet<ContentHash> {
    let mut out = HashSet::new();
    let all = commits(records);
    let mut left = keep;
    for c in all.iter().rev() {
        let unfinished_undo = c.undone_by.is_some() && !undo_finished(records, c);
        if unfinished_undo {
            c.hashes(&mut out);
        } else if c.not_undoable().is_none() && left > 0 {
            left -= 1;
            c.hashes(&mut out);
        }
    }
    // Every checkpoint's versions stay too.
    out.extend(crate::checkpoint::referenced_hashes(records));
    out
}

/// True when the undo of `c` has its `undo_end`.
fn undo_finished(records: &[Record], c: &Commit) -> bool {
    let Some(undo) = &c.undone_by else {
        return true;
    };
    records
        .iter()
        .any(|r| matches!(&r.draft.op, Op::UndoEnd { id } if id == undo))
}
