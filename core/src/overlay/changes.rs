//! The change set: which paths the overlay has touched, and what the host had there.
//!
//! One [`Change`] per touched path, keyed by path. It is rebuilt on start by replaying the
//! journal through [`ChangeSet::apply`] — the very function the live overlay calls after each
//! append, so the replayed state cannot drift from the live one.
//!
//! Meaning in the merged view: a path with a change and no upper entry is a *whiteout* (hidden
//! lower entry); a directory change with `opaque` hides the whole lower directory.

use dashmap::DashMap;

use crate::hash::ContentHash;
use crate::journal::record::{EntryState, Op, Record};
use crate::relpath::RelPath;

/// What the overlay knows about one touched path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The host's state when the path was first touched.
    pub base: EntryState,
    /// The host path whose content this entry carries (renames), for applying as a rename.
    pub origin: Option<RelPath>,
    /// A directory that hides the lower directory at the same path.
    pub opaque: bool,
    /// Latest recorded state of the path in the overlay.
    pub current: EntryState,
}

/// All changes, concurrent.
#[derive(Default)]
pub struct ChangeSet {
    map: DashMap<RelPath, Change>,
}

impl ChangeSet {
    /// Empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds from journal records.
    pub fn replay(records: &[Record]) -> Self {
        let set = Self::new();
        for r in records {
            set.apply(r);
        }
        set
    }

    /// True if `path` was touched.
    pub fn contains(&self, path: &RelPath) -> bool {
        self.map.contains_key(path)
    }

    /// A copy of the change at `path`.
    pub fn get(&self, path: &RelPath) -> Option<Change> {
        self.map.get(path).map(|c| c.clone())
    }

    /// True if `path` is an opaque directory.
    pub fn is_opaque(&self, path: &RelPath) -> bool {
        self.map.get(path).is_some_and(|c| c.opaque)
    }

    /// Number of touched paths.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing was touched.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Sorted snapshot of every change.
    pub fn snapshot(&self) -> Vec<(RelPath, Change)> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Updates the recorded content hash of a file (after a Write record).
    pub fn set_hash(&self, path: &RelPath, hash: ContentHash) {
        if let Some(mut c) = self.map.get_mut(path) {
            if let EntryState::File { hash: h, .. } = &mut c.current {
                *h = Some(hash);
            }
        }
    }

    /// Applies one record. Live and replay share this function.
    pub fn apply(&self, r: &Record) {
        let d = &r.draft;
        match &d.op {
            Op::CommitBegin { .. } | Op::CommitEnd { .. } => {}
            Op::CommitApplied { .. } => {
                // `base` set: the overlay keeps the path (a writer had it open), rebased on
                // what was committed. Otherwise the change leaves if the overlay still holds
                // exactly what was committed.
                let keep = d.base.is_some();
                let same = self.map.get(&d.path).is_some_and(|c| {
                    c.current.same_state(&d.new) || (c.current.is_dir() && d.new.is_dir())
                });
                if same && !keep {
                    self.map.remove(&d.path);
                } else {
                    self.rebase(&d.path, d.new.clone());
                }
            }
            Op::Discard { paths } => self.drop_under(paths),
            Op::Rename => {
                let src_change = self.touch(&d.path, d.base.as_ref());
                self.set_current(&d.path, d.new.clone());
                if let Some(to) = &d.to {
                    self.touch(&to.path, to.base.as_ref());
                    let origin = match (&src_change.origin, src_change.base.is_absent()) {
                        (Some(o), _) => Some(o.clone()),
                        (None, false) => Some(d.path.clone()),
                        (None, true) => None,
                    };
                    // Moved away and back: no rename left to apply.
                    let origin = origin.filter(|o| o != &to.path);
                    if let Some(mut c) = self.map.get_mut(&to.path) {
                        c.origin = origin;
                        c.opaque = to.new.is_dir();
                        c.current = to.new.clone();
                    }
                    self.prune(&to.path);
                }
                self.prune(&d.path);
            }
            Op::Exchange => {
                let a = self.touch(&d.path, d.base.as_ref());
                if let Some(to) = &d.to {
                    let b = self.touch(&to.path, to.base.as_ref());
                    let carried = |c: &Change, p: &RelPath| {
                        c.origin
                            .clone()
                            .or_else(|| (!c.base.is_absent()).then(|| p.clone()))
                    };
                    if let Some(mut c) = self.map.get_mut(&d.path) {
                        c.origin = carried(&b, &to.path);
                        c.current = d.new.clone();
                        c.opaque = d.new.is_dir();
                    }
                    if let Some(mut c) = self.map.get_mut(&to.path) {
                        c.origin = carried(&a, &d.path);
                        c.current = to.new.clone();
                        c.opaque = to.new.is_dir();
                    }
                    self.prune(&to.path);
                }
                self.prune(&d.path);
            }
            Op::Link => {
                if let Some(to) = &d.to {
                    self.touch(&to.path, to.base.as_ref());
                    self.set_current(&to.path, to.new.clone());
                }
            }
            Op::Mkdir => {
                let c = self.touch(&d.path, d.base.as_ref());
                if let Some(mut e) = self.map.get_mut(&d.path) {
                    // A directory made where the host had something hides the host's one.
                    e.opaque = !c.base.is_absent();
                    e.current = d.new.clone();
                }
            }
            Op::Create
            | Op::Write
            | Op::Symlink
            | Op::Mknod
            | Op::Setattr
            | Op::Xattr
            | Op::Unlink
            | Op::Rmdir => {
                self.touch(&d.path, d.base.as_ref());
                self.set_current(&d.path, d.new.clone());
                self.prune(&d.path);
            }
        }
    }

    /// Ensures a change exists for `path`; the first base wins.
    fn touch(&self, path: &RelPath, base: Option<&EntryState>) -> Change {
        self.map
            .entry(path.clone())
            .or_insert_with(|| Change {
                base: base.cloned().unwrap_or(EntryState::Absent),
                origin: None,
                opaque: false,
                current: EntryState::Absent,
            })
            .clone()
    }

    fn set_current(&self, path: &RelPath, new: EntryState) {
        if let Some(mut c) = self.map.get_mut(path) {
            if !new.is_dir() {
                c.opaque = false;
            }
            c.current = new;
        }
    }

    /// A path created and removed again inside the overlay leaves no trace.
    fn prune(&self, path: &RelPath) {
        self.map
            .remove_if(path, |_, c| c.base.is_absent() && c.current.is_absent());
    }

    /// Forgets every change at or below any of `paths` (empty = all).
    pub fn drop_under(&self, paths: &[RelPath]) {
        if paths.is_empty() {
            self.map.clear();
            return;
        }
        self.map
            .retain(|k, _| !paths.iter().any(|p| k.starts_with(p)));
    }

    /// Forgets exactly `path`.
    pub fn remove(&self, path: &RelPath) {
        self.map.remove(path);
    }

    /// Sets a new base after a partial commit (the overlay's content moved on meanwhile).
    pub fn rebase(&self, path: &RelPath, base: EntryState) {
        if let Some(mut c) = self.map.get_mut(path) {
            c.base = base;
            c.origin = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::{Draft, Target};

    fn rec(draft: Draft) -> Record {
        Record {
            seq: 0,
            time_ns: 0,
            prev: ContentHash::default(),
            draft,
        }
    }

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    fn file(b: &[u8]) -> EntryState {
        EntryState::File {
            hash: Some(ContentHash::of(b)),
            mode: 0o644,
            size: b.len() as u64,
        }
    }

    #[test]
    fn create_then_unlink_leaves_nothing() {
        let s = ChangeSet::new();
        s.apply(&rec(Draft::new(
            Op::Create,
            p("a"),
            Some(EntryState::Absent),
            file(b""),
        )));
        assert!(s.contains(&p("a")));
        s.apply(&rec(Draft::new(
            Op::Unlink,
            p("a"),
            None,
            EntryState::Absent,
        )));
        assert!(s.is_empty());
    }

    #[test]
    fn unlink_of_host_file_is_a_whiteout_and_rename_keeps_origin() {
        let s = ChangeSet::new();
        s.apply(&rec(Draft {
            op: Op::Rename,
            path: p("a"),
            base: Some(file(b"x")),
            new: EntryState::Absent,
            to: Some(Target {
                path: p("b"),
                base: Some(EntryState::Absent),
                new: file(b"x"),
            }),
        }));
        assert_eq!(s.get(&p("a")).unwrap().base, file(b"x"));
        assert_eq!(s.get(&p("b")).unwrap().origin, Some(p("a")));
        let dir = EntryState::Dir { mode: 0o755 };
        s.apply(&rec(Draft::new(
            Op::Rmdir,
            p("d"),
            Some(dir.clone()),
            EntryState::Absent,
        )));
        s.apply(&rec(Draft::new(Op::Mkdir, p("d"), None, dir)));
        assert!(s.is_opaque(&p("d")));
        s.apply(&rec(Draft::control(Op::Discard {
            paths: vec![p("d")],
        })));
        assert!(!s.contains(&p("d")));
        assert!(s.contains(&p("a")));
    }
}
