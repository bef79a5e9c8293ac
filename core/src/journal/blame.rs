//! `wsfs blame`: which records touched a path.

use super::record::{Op, Record};
use crate::relpath::RelPath;

/// True when `rec` touched `path` or something below it (as `git log -- PATH` selects): as
/// its path, as a rename's, exchange's or link's destination, as a path a commit began to
/// apply, or under a discard's paths (a discard of everything included).
pub fn touches(rec: &Record, path: &RelPath) -> bool {
    match &rec.draft.op {
        Op::CommitBegin { paths, .. } => paths.iter().any(|p| p.starts_with(path)),
        Op::CommitEnd { .. } => false,
        Op::Discard { paths } => {
            paths.is_empty()
                || paths
                    .iter()
                    .any(|p| p.starts_with(path) || path.starts_with(p))
        }
        _ => {
            rec.draft.path.starts_with(path)
                || rec
                    .draft
                    .to
                    .as_ref()
                    .is_some_and(|t| t.path.starts_with(path))
        }
    }
}

/// The records of `records` that touched any of `paths` (all of them when `paths` is empty).
pub fn select(records: Vec<Record>, paths: &[RelPath]) -> Vec<Record> {
    if paths.is_empty() {
        return records;
    }
    records
        .into_iter()
        .filter(|r| paths.iter().any(|p| touches(r, p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::ContentHash;
    use crate::journal::record::{Draft, EntryState, Target};

    fn rec(draft: Draft) -> Record {
        Record {
            seq: 1,
            time_ns: 0,
            prev: ContentHash::of(b""),
            draft,
        }
    }

    fn p(s: &str) -> RelPath {
        RelPath::new(s).unwrap()
    }

    #[test]
    fn a_path_is_touched_as_source_destination_commit_and_discard() {
        let file = EntryState::File {
            hash: None,
            mode: 0o644,
            size: 0,
        };
        let write = rec(Draft::new(Op::Write, p("src/a.rs"), None, file.clone()));
        let mut rename = Draft::new(Op::Rename, p("old.rs"), None, EntryState::Absent);
        rename.to = Some(Target {
            path: p("src/a.rs"),
            base: None,
            new: file,
        });
        let rename = rec(rename);
        let begin = rec(Draft::control(Op::CommitBegin {
            id: "c".into(),
            paths: vec![p("src/a.rs")],
            prior: vec![],
        }));
        let end = rec(Draft::control(Op::CommitEnd { id: "c".into() }));
        let discard_all = rec(Draft::control(Op::Discard { paths: vec![] }));
        let discard_other = rec(Draft::control(Op::Discard {
            paths: vec![p("docs")],
        }));
        for r in [&write, &rename, &begin, &discard_all] {
            assert!(touches(r, &p("src/a.rs")), "{r:?}");
            assert!(touches(r, &p("src")), "a directory selects below it: {r:?}");
        }
        assert!(touches(&rename, &p("old.rs")));
        assert!(!touches(&write, &p("src/a")));
        assert!(!touches(&write, &p("src/a.rs/x")));
        assert!(!touches(&end, &p("src/a.rs")));
        assert!(!touches(&discard_other, &p("src/a.rs")));
        assert!(touches(&discard_other, &p("docs/x.md")));
        let all = vec![write, rename, begin, end, discard_all, discard_other];
        assert_eq!(select(all.clone(), &[p("old.rs")]).len(), 2);
        assert_eq!(select(all, &[]).len(), 6);
    }
}
