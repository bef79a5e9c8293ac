use crate::api::{RangeDiffRequest, RestoreRequest, Show};
use crate::journal::record::EntryState;
use crate::testing::*;

fn range(f: &TestWorkspace, from: &str, to: &str) -> Vec<crate::api::FileDiff> {
    let req = RangeDiffRequest {
        from: from.into(),
        to: to.into(),
        paths: vec![],
    };
    f.ws().diff_range(&req, Show::All).unwrap()
}

fn restore(f: &TestWorkspace, id: &str, paths: &[&str]) -> crate::api::RestoreReport {
    let req = RestoreRequest {
        checkpoint: id.into(),
        paths: paths.iter().map(p).collect(),
    };
    f.ws().restore(&req).unwrap()
}

#[test]
fn a_checkpoint_keeps_every_version_and_names_it() {
    let f = TestWorkspace::new(&[("a", "host a\n"), ("d/b", "host b\n")]);
    let ov = f.ov();
    write(ov, "a", b"one\n");
    create(ov, "new", b"new\n");
    unlink(ov, "d/b").unwrap();
    symlink(ov, "l", b"a").unwrap();
    let c1 = f.ws().checkpoint("first").unwrap();
    assert_eq!((c1.id.as_str(), c1.paths, c1.changed), ("c1", 4, 4));
    let records = f.ws().log().unwrap();
    let cp = super::find(&records, "c1").unwrap();
    let by = cp.by_path();
    let EntryState::File { hash: Some(h), .. } = by[&p("a")].state else {
        panic!("{:?}", by[&p("a")]);
    };
    assert_eq!(f.ws().store().read(&h).unwrap(), b"one\n");
    assert_eq!(by[&p("d/b")].state, EntryState::Absent);
    assert_eq!(
        by[&p("l")].state,
        EntryState::Symlink {
            target: b"a".to_vec()
        }
    );
    assert_eq!(f.ws().checkpoint_hashes().unwrap().len(), 2);
    // The next id survives a restart; only what changed since is counted.
    let mut f = f;
    f.reopen();
    write(f.ov(), "a", b"two\n");
    let c2 = f.ws().checkpoint("").unwrap();
    assert_eq!((c2.id.as_str(), c2.changed), ("c2", 1));
    assert_eq!(f.ws().checkpoints().unwrap().len(), 2);
}

#[test]
fn a_file_open_for_writing_is_captured_as_it_is_now() {
    let f = TestWorkspace::new(&[]);
    let ov = f.ov();
    let (_, opened) = create_open(ov, "w", libc::O_WRONLY);
    ov.write(opened.fh, 0, b"partial").unwrap();
    f.ws().checkpoint("").unwrap();
    ov.write(opened.fh, 7, b" and more").unwrap();
    ov.release(opened.fh).unwrap();
    restore(&f, "c1", &[]);
    assert_eq!(read(f.ov(), "w").unwrap(), b"partial");
}

#[test]
fn restore_brings_back_every_kind_and_base_paths_leave_the_overlay() {
    let f = TestWorkspace::new(&[("a", "host a\n"), ("d/b", "host b\n"), ("keep", "k\n")]);
    let ov = f.ov();
    f.ws().checkpoint("empty").unwrap();
    write(ov, "a", b"one\n");
    mkdir(ov, "n").unwrap();
    create(ov, "n/f", b"nf\n");
    unlink(ov, "d/b").unwrap();
    rmdir(ov, "d").unwrap();
    symlink(ov, "l", b"target").unwrap();
    f.ws().checkpoint("edited").unwrap();
    write(ov, "a", b"two\n");
    mkdir(ov, "d").unwrap();
    write(ov, "n/f", b"changed\n");
    unlink(ov, "l").unwrap();
    write(ov, "keep", b"k2\n");

    let r = restore(&f, "c2", &[]);
    assert_eq!(r.saved, "c3");
    let ov = f.ov();
    assert_eq!(read(ov, "a").unwrap(), b"one\n");
    assert_eq!(read(ov, "n/f").unwrap(), b"nf\n");
    assert!(list(ov, "").iter().all(|n| n != b"d"), "{:?}", list(ov, ""));
    assert_eq!(ov.readlink(ino(ov, "l").unwrap()).unwrap(), "target");
    assert_eq!(read(ov, "keep").unwrap(), b"k\n");
    assert!(!ov.changes().contains(&p("keep")), "back to the host: out");

    // Back to the host's state entirely: nothing pending, nothing left in the change set.
    restore(&f, "c1", &[]);
    assert!(f.ws().status().unwrap().is_empty());
    assert!(
        f.ov().changes().is_empty(),
        "{:?}",
        f.ov().changes().snapshot()
    );
    assert_eq!(read(f.ov(), "d/b").unwrap(), b"host b\n");

    // A restore is restored away by the checkpoint taken before it.
    let r = restore(&f, "c4", &[]);
    assert_eq!(r.checkpoint, "c4");
    assert_eq!(read(f.ov(), "a").unwrap(), b"one\n");
    // Restoring chosen paths leaves the others.
    write(f.ov(), "a", b"three\n");
    write(f.ov(), "n/f", b"three\n");
    restore(&f, "c2", &["n"]);
    assert_eq!(read(f.ov(), "n/f").unwrap(), b"nf\n");
    assert_eq!(read(f.ov(), "a").unwrap(), b"three\n");
    assert!(f.ws().verify().unwrap().problems.is_empty());
}

#[test]
fn restore_of_an_unknown_checkpoint_names_it() {
    let f = TestWorkspace::new(&[]);
    let req = RestoreRequest {
        checkpoint: "c9".into(),
        paths: vec![],
    };
    let e = f.ws().restore(&req).unwrap_err();
    assert!(e.to_string().contains("c9"), "{e}");
}

#[test]
fn diff_between_points() {
    let f = TestWorkspace::new(&[("a", "host a\n")]);
    let ov = f.ov();
    write(ov, "a", b"one\n");
    f.ws().checkpoint("").unwrap();
    write(ov, "a", b"two\n");
    create(ov, "b", b"bee\n");
    f.ws().checkpoint("").unwrap();
    let d = range(&f, "c1", "c2");
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d[0].unified.contains("-one\n+two\n"), "{}", d[0].unified);
    assert_eq!(d[1].change.kind, crate::api::ChangeKind::Added);
    let d = range(&f, "base", "c1");
    assert!(d[0].unified.contains("-host a\n+one\n"), "{}", d[0].unified);
    assert!(range(&f, "c2", "@").is_empty());
    unlink(f.ov(), "b").unwrap();
    let d = range(&f, "c2", "@");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].change.kind, crate::api::ChangeKind::Deleted);
    // The host moved on: its old content is not kept, and the diff says so.
    std::fs::write(f.host("a"), "host moved\n").unwrap();
    let d = range(&f, "base", "@");
    assert!(d[0].unified.contains("not kept"), "{}", d[0].unified);
}

/// `wsfs gc` keeps every version a checkpoint names, whatever the number of commits it keeps,
/// so a restore after a gc still finds its contents.
#[test]
fn gc_keeps_the_versions_checkpoints_name() {
    let f = TestWorkspace::new(&[("a", "host a\n")]);
    write(f.ov(), "a", b"checkpointed\n");
    f.ws().checkpoint("keep me").unwrap();
    write(f.ov(), "a", b"later\n");
    let kept = crate::hash::ContentHash::of(b"checkpointed\n");
    assert!(f.ws().store().contains(&kept));
    let r = f.ws().gc(&crate::api::GcRequest { keep: Some(0) }).unwrap();
    assert!(f.ws().store().contains(&kept), "gc removed it: {r:?}");
    restore(&f, "c1", &[]);
    assert_eq!(read(f.ov(), "a").unwrap(), b"checkpointed\n");
}
