//! The change set: which paths the overlay has touched, and what the host had there.
//!
//! One [`Change`] per touched path, keyed by path. It is rebuilt on start by replaying the
//! journal through [`ChangeSet::apply`] — the very function the live overlay calls after each
//! append, so the replayed state cannot drift from the live one.
//!
//! Meaning in the merged view: a path with a change and no upper entry is a *whiteout* (hidden
//! lower entry); a directory change with `opaque` hides the whole lower directory.
//!
//! The set also keeps the pending counts (`list`, `mount`, `run` read them without a walk or a
//! hash): each entry remembers what it contributes ([`Change::noise`] if it is pending, nothing
//! otherwise), and every mutation adjusts the counters by the difference.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::commit::status::{classify, same_state};
use crate::journal::record::{EntryState, Op, Record};
use crate::policy::{summary_group, Noise, Policy};
use crate::relpath::RelPath;

/// Most groups named in a hidden-paths summary (a reader shows one fewer and "…" when all
/// of them are there).
const SUMMARY_GROUPS: usize = 5;

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
    /// How review treats the path (scratch, git churn, or a real change).
    pub noise: Noise,
    /// What this entry adds to the counters: its noise class while it is pending (and whether
    /// it was counted as a directory, for its summary group).
    counted: Option<Noise>,
    counted_dir: bool,
}

/// Pending counts by review class, read in O(1) plus the (few) summary groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PendingCounts {
    /// Real changes (not scratch, not git churn).
    pub changes: u64,
    /// Scratch paths.
    pub scratch: u64,
    /// Git object store and reflog paths.
    pub git_churn: u64,
    /// Write-through paths not yet on the host.
    pub write_through: u64,
    /// The largest groups of scratch paths (directory with `/`, or a file name), biggest first.
    pub scratch_under: Vec<String>,
    /// The groups of git churn (`.git/objects/`, `.git/logs/`).
    pub git_churn_under: Vec<String>,
    /// The largest groups of write-through paths not yet on the host.
    pub write_through_under: Vec<String>,
}

#[derive(Default)]
struct Counters {
    changes: AtomicI64,
    scratch: AtomicI64,
    git_churn: AtomicI64,
    write_through: AtomicI64,
    /// (class, summary group) → pending paths in it, for every class but real changes.
    groups: DashMap<(Noise, Vec<u8>), i64>,
}

impl Counters {
    fn shift(&self, path: &RelPath, is_dir: bool, class: Option<Noise>, by: i64) {
        let Some(class) = class else { return };
        let counter = match class {
            Noise::None => &self.changes,
            Noise::Scratch => &self.scratch,
            Noise::GitChurn => &self.git_churn,
            Noise::WriteThrough => &self.write_through,
        };
        counter.fetch_add(by, Ordering::Relaxed);
        if class == Noise::None {
            return;
        }
        let key = (class, summary_group(path, class, is_dir));
        let mut n = self.groups.entry(key.clone()).or_insert(0);
        *n += by;
        let empty = *n <= 0;
        drop(n);
        if empty {
            self.groups.remove_if(&key, |_, n| *n <= 0);
        }
    }

    fn groups(&self, class: Noise) -> Vec<String> {
        let mut g: Vec<(i64, Vec<u8>)> = self
            .groups
            .iter()
            .filter(|e| e.key().0 == class)
            .map(|e| (*e.value(), e.key().1.clone()))
            .collect();
        g.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        g.into_iter()
            .take(SUMMARY_GROUPS)
            .map(|(_, name)| String::from_utf8_lossy(&name).into_owned())
            .collect()
    }
}

/// All changes, concurrent.
#[derive(Default)]
pub struct ChangeSet {
    map: DashMap<RelPath, Change>,
    /// Classifies paths for review; none = every path is a real change.
    policy: Option<Arc<Policy>>,
    counters: Counters,
}

/// True if the entry shows up in `status` (see `commit::status::pending`).
fn is_pending(c: &Change) -> bool {
    classify(&c.base, &c.current, &c.origin).is_some()
        || (c.opaque && c.current.is_dir() && same_state(&c.base, &c.current))
}

impl ChangeSet {
    /// Empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds from journal records (every path counted as a real change).
    pub fn replay(records: &[Record]) -> Self {
        Self::replay_with(records, None)
    }

    /// Rebuilds from journal records, classifying paths with `policy` for the counts.
    pub(crate) fn replay_with(records: &[Record], policy: Option<Arc<Policy>>) -> Self {
        let set = Self {
            policy,
            ..Self::default()
        };
        for r in records {
            set.apply(r);
        }
        set
    }

    /// The pending counts, without walking anything.
    pub fn counts(&self) -> PendingCounts {
        let n = |a: &AtomicI64| a.load(Ordering::Relaxed).max(0) as u64;
        PendingCounts {
            changes: n(&self.counters.changes),
            scratch: n(&self.counters.scratch),
            git_churn: n(&self.counters.git_churn),
            write_through: n(&self.counters.write_through),
            scratch_under: self.counters.groups(Noise::Scratch),
            git_churn_under: self.counters.groups(Noise::GitChurn),
            write_through_under: self.counters.groups(Noise::WriteThrough),
        }
    }

    /// Pending write-through paths: one atomic load (the write-through thread asks this a few
    /// times a second per workspace).
    pub fn write_through_pending(&self) -> u64 {
        self.counters.write_through.load(Ordering::Relaxed).max(0) as u64
    }

    /// Sorted snapshot of the changes whose review class `keep` accepts.
    pub(crate) fn snapshot_where(&self, keep: impl Fn(Noise) -> bool) -> Vec<(RelPath, Change)> {
        let mut v: Vec<_> = self
            .map
            .iter()
            .filter(|e| keep(e.value().noise))
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Re-derives `path`'s review class and pending contribution after a mutation. The policy
    /// is asked with no map guard held (its first query in a directory reads a file).
    fn recount(&self, path: &RelPath) {
        let Some(is_dir) = self
            .map
            .get(path)
            .map(|c| c.base.is_dir() || c.current.is_dir())
        else {
            return;
        };
        let noise = self
            .policy
            .as_ref()
            .map_or(Noise::None, |p| p.noise(path, is_dir));
        if let Some(mut c) = self.map.get_mut(path) {
            c.noise = noise;
            let want = is_pending(&c).then_some(noise);
            if (c.counted, c.counted_dir) != (want, is_dir) {
                self.counters.shift(path, c.counted_dir, c.counted, -1);
                self.counters.shift(path, is_dir, want, 1);
                c.counted = want;
                c.counted_dir = is_dir;
            }
        }
    }

    /// Takes a removed entry's contribution off the counters.
    fn uncount(&self, path: &RelPath, c: &Change) {
        self.counters.shift(path, c.counted_dir, c.counted, -1);
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
    pub(crate) fn is_opaque(&self, path: &RelPath) -> bool {
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
        self.snapshot_where(|_| true)
    }

    /// Applies one record. Live and replay share this function.
    pub fn apply(&self, r: &Record) {
        self.apply_record(r);
        let d = &r.draft;
        self.recount(&d.path);
        if let Some(to) = &d.to {
            self.recount(&to.path);
        }
    }

    fn apply_record(&self, r: &Record) {
        let d = &r.draft;
        match &d.op {
            Op::CommitBegin { .. }
            | Op::CommitEnd { .. }
            | Op::Checkpoint { .. }
            | Op::UndoBegin { .. }
            | Op::UndoEnd { .. }
            | Op::Gc { .. } => {}
            Op::UndoApplied { .. } => {
                // The host went back to `base`: the path is a change again, the overlay
                // keeping `new` (what the commit wrote, or a change made after it).
                let base = d.base.clone().unwrap_or(EntryState::Absent);
                if self.map.contains_key(&d.path) {
                    self.rebase(&d.path, base);
                } else {
                    self.touch(&d.path, Some(&base));
                    self.set_current(&d.path, d.new.clone());
                }
            }
            Op::CommitApplied { .. } => {
                // `base` set: the overlay keeps the path (a writer had it open, or its content
                // is not what was committed), rebased on what was committed. Otherwise the
                // change leaves if the overlay still holds exactly what was committed (a record
                // without a hash was checked against the upper content by the commit).
                let keep = d.base.is_some();
                let same = self.map.get(&d.path).is_some_and(|c| {
                    c.current.same_state(&d.new)
                        || c.current.settled_by(&d.new)
                        || (c.current.is_dir() && d.new.is_dir())
                });
                if same && !keep {
                    self.remove(&d.path);
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
                noise: Noise::None,
                counted: None,
                counted_dir: false,
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
        if let Some((k, c)) = self
            .map
            .remove_if(path, |_, c| c.base.is_absent() && c.current.is_absent())
        {
            self.uncount(&k, &c);
        }
    }

    /// Forgets every change at or below any of `paths` (empty = all).
    pub(crate) fn drop_under(&self, paths: &[RelPath]) {
        self.map.retain(|k, c| {
            let keep = !paths.is_empty() && !paths.iter().any(|p| k.starts_with(p));
            if !keep {
                self.uncount(k, c);
            }
            keep
        });
    }

    /// Forgets exactly `path`.
    fn remove(&self, path: &RelPath) {
        if let Some((k, c)) = self.map.remove(path) {
            self.uncount(&k, &c);
        }
    }

    /// Sets a new base after a partial commit (the overlay's content moved on meanwhile).
    pub(crate) fn rebase(&self, path: &RelPath, base: EntryState) {
        if let Some(mut c) = self.map.get_mut(path) {
            c.base = base;
            c.origin = None;
        }
        self.recount(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::ContentHash;
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
            by: None,
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

    #[test]
    fn counts_follow_every_mutation_by_review_class() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join(".git")).unwrap();
        std::fs::write(t.path().join(".gitignore"), "target/\n").unwrap();
        let root = crate::sys::open_root(t.path()).unwrap();
        let policy = Policy::load(std::os::fd::AsFd::as_fd(&root), &Default::default()).unwrap();
        let s = ChangeSet::replay_with(&[], Some(Arc::new(policy)));
        let create = |path: &str| {
            s.apply(&rec(Draft::new(
                Op::Create,
                p(path),
                Some(EntryState::Absent),
                file(b"x"),
            )))
        };
        let counts = |s: &ChangeSet| {
            let c = s.counts();
            (c.changes, c.scratch, c.git_churn)
        };
        create("src/a.rs");
        create("target/debug/app");
        create("target/debug/lib.rlib");
        create(".git/objects/ab/cd");
        assert_eq!(counts(&s), (1, 2, 1));
        assert_eq!(s.counts().scratch_under, vec!["target/".to_string()]);
        assert_eq!(
            s.counts().git_churn_under,
            vec![".git/objects/".to_string()]
        );
        // Unlinking a created file leaves nothing; renaming a host file counts once.
        s.apply(&rec(Draft::new(
            Op::Unlink,
            p("target/debug/app"),
            None,
            EntryState::Absent,
        )));
        assert_eq!(counts(&s), (1, 1, 1));
        s.apply(&rec(Draft {
            op: Op::Rename,
            path: p("host.txt"),
            base: Some(file(b"h")),
            new: EntryState::Absent,
            to: Some(Target {
                path: p("moved.txt"),
                base: Some(EntryState::Absent),
                new: file(b"h"),
            }),
            by: None,
        }));
        // The source's deletion and the rename are both status entries.
        assert_eq!(counts(&s), (3, 1, 1));
        // Another write to a pending path adds nothing.
        s.apply(&rec(Draft::new(Op::Write, p("src/a.rs"), None, file(b"x"))));
        assert_eq!(counts(&s), (3, 1, 1));
        s.apply(&rec(Draft::control(Op::Discard {
            paths: vec![p("target")],
        })));
        assert_eq!(counts(&s), (3, 0, 1));
        assert!(s.counts().scratch_under.is_empty());
        s.apply(&rec(Draft::control(Op::Discard { paths: vec![] })));
        assert_eq!(counts(&s), (0, 0, 0));
        // Replay gives the same counts as the live path.
        assert_eq!(s.counts(), ChangeSet::new().counts());
    }
}
