//! Unit tests of undo that need the crate's internals.

use crate::api::{CommitRequest, UndoRequest};
use crate::journal::codec::decode_line;
use crate::testing::{create, TestWorkspace};

use super::history;

/// A journal line written before commits kept versions: no `prior` field.
const OLD_BEGIN: &str = r#"{"seq":1,"time_ns":5,"prev":"0000000000000000000000000000000000000000000000000000000000000000","op":"commit_begin","id":"c-old","paths":["a"],"new":{"kind":"absent"},"path":""}"#;

#[test]
fn old_commit_records_read_and_cannot_be_undone() {
    let line = format!(
        "{OLD_BEGIN} {}",
        blake3::hash(OLD_BEGIN.as_bytes()).to_hex()
    );
    let (rec, _) = decode_line(line.as_bytes()).expect("an old commit_begin decodes");
    let commits = history::commits(&[rec]);
    assert_eq!(commits.len(), 1);
    assert!(!commits[0].kept_versions);
    assert_eq!(commits[0].not_undoable(), Some("no_versions"));
    assert!(history::referenced(&[], 20).is_empty());
}

#[test]
fn undo_names_why_a_commit_cannot_be_undone() {
    let fx = TestWorkspace::new(&[("a", "host a")]);
    create(fx.ov(), "a", b"workspace a");
    let r = fx
        .ws()
        .commit(&CommitRequest::default(), &|_, _| {})
        .unwrap();
    let unknown = fx.ws().undo(&UndoRequest {
        commit: Some("nope".into()),
        force: false,
    });
    assert!(
        matches!(unknown, Err(crate::Error::NoSuchCommit(_))),
        "{unknown:?}"
    );
    let done = fx.ws().undo(&UndoRequest::default()).unwrap();
    assert_eq!(done.commit, r.id);
    assert_eq!(std::fs::read(fx.host("a")).unwrap(), b"host a");
    let again = fx.ws().undo(&UndoRequest {
        commit: Some(r.id.clone()),
        force: false,
    });
    let msg = again.unwrap_err().to_string();
    assert!(msg.contains("already undone"), "{msg}");
}

#[test]
fn a_host_file_changed_after_the_check_is_a_conflict_not_a_wrong_pre_image() {
    // The store hashes its copy; a host file that no longer has the checked hash is refused.
    let fx = TestWorkspace::new(&[("a", "host a")]);
    create(fx.ov(), "a", b"workspace a");
    let host_a = fx.host("a");
    crate::fault::run_at(crate::fault::Point::CommitAfterCheck, move || {
        std::fs::write(host_a, "edited after the check").unwrap();
    });
    let r = fx
        .ws()
        .commit(&CommitRequest::default(), &|_, _| {})
        .unwrap();
    assert_eq!(r.conflicts.len(), 1, "{r:?}");
    assert!(r.applied.is_empty());
    assert_eq!(
        std::fs::read(fx.host("a")).unwrap(),
        b"edited after the check"
    );
}
