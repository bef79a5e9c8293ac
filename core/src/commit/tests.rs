//! Unit tests of the commit engine that need the overlay's internals.

use crate::api::CommitRequest;
use crate::overlay::Req;
use crate::testing::{create, create_open, p, TestWorkspace};

fn commit_all(fx: &TestWorkspace) -> crate::api::CommitReport {
    fx.ws()
        .commit(&CommitRequest::default(), &|_, _| {})
        .unwrap()
}

/// A file the workspace still has open for writing is not committed: it is reported busy,
/// stays pending, and is committed once closed.
#[test]
fn files_open_for_writing_are_left_pending() {
    let fx = TestWorkspace::new(&[]);
    let ov = fx.ov();
    create(ov, "done", b"finished\n");
    let (_, open) = create_open(ov, "half", libc::O_WRONLY);
    ov.write(open.fh, 0, b"half wri").unwrap();
    let r = commit_all(&fx);
    assert_eq!(r.applied, vec![p("done")]);
    assert_eq!(r.busy, vec![p("half")]);
    assert!(
        !fx.host("half").exists(),
        "a half-written file reached the host"
    );
    let pending: Vec<_> = fx
        .ws()
        .status()
        .unwrap()
        .into_iter()
        .map(|c| c.path)
        .collect();
    assert_eq!(pending, vec![p("half")]);
    ov.write(open.fh, 8, b"tten\n").unwrap();
    ov.release(open.fh).unwrap();
    let r = commit_all(&fx);
    assert_eq!((r.applied, r.busy), (vec![p("half")], vec![]));
    assert_eq!(std::fs::read(fx.host("half")).unwrap(), b"half written\n");
}

/// Content that differs from the state the commit selected (a writer through FUSE
/// passthrough rewrote it after its record; simulated by writing the upper file directly,
/// same size, so the selection still carries the recorded hash) is left pending, never
/// committed under the older record.
#[test]
fn content_changed_since_its_record_is_left_pending() {
    let fx = TestWorkspace::new(&[]);
    create(fx.ov(), "a", b"recorded\n");
    assert_eq!(b"recorded\n".len(), b"REWRITTEN".len());
    std::fs::write(fx.upper("a"), b"REWRITTEN").unwrap();
    let r = commit_all(&fx);
    assert!(r.applied.is_empty(), "{r:?}");
    assert_eq!(r.busy, vec![p("a")]);
    assert!(!fx.host("a").exists());
}

/// A `chmod` and a `utime` of host files copy them up with no content hash recorded: the
/// commit checks the upper content, settles the record, and leaves no upper copy and no
/// change behind (so the next start has nothing to re-record).
#[test]
fn metadata_only_changes_leave_no_upper_copy() {
    use crate::overlay::{SetAttr, SetTime, ROOT_INO};
    let fx = TestWorkspace::new(&[("a", "a\n"), ("b", "b\n")]);
    let ov = fx.ov();
    let ino = |name: &str| ov.lookup(ROOT_INO, std::ffi::OsStr::new(name)).unwrap().ino;
    let chmod = SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    let utime = SetAttr {
        mtime: Some(SetTime::Now),
        ..Default::default()
    };
    ov.setattr(&Req::root(), ino("a"), &chmod).unwrap();
    ov.setattr(&Req::root(), ino("b"), &utime).unwrap();
    assert!(fx.upper("a").exists() && fx.upper("b").exists());
    let r = commit_all(&fx);
    assert_eq!(r.applied, vec![p("a")]);
    assert!(
        !fx.upper("a").exists(),
        "the applied chmod stayed in the upper layer"
    );
    assert!(
        !fx.upper("b").exists(),
        "the settled utime stayed in the upper layer"
    );
    assert!(ov.changes().is_empty(), "{:?}", ov.changes().snapshot());
    assert!(fx.ws().verify().unwrap().problems.is_empty());
}

/// After a commit took a file out of the overlay, the kernel's old node answers ESTALE
/// (the kernel then looks the name up again); the fresh node can be rewritten, and its
/// base is what was committed, so the next commit is no conflict.
#[test]
fn reverted_node_is_stale_and_the_rewrite_commits_cleanly() {
    let fx = TestWorkspace::new(&[]);
    let ov = fx.ov();
    let old = create(ov, "a", b"v1\n");
    assert_eq!(commit_all(&fx).applied, vec![p("a")]);
    let err = ov
        .open(&Req::root(), old, libc::O_WRONLY | libc::O_TRUNC)
        .unwrap_err();
    assert!(err.is_errno(libc::ESTALE), "{err}");
    let (_, open) = create_open(ov, "a", libc::O_WRONLY | libc::O_TRUNC);
    ov.write(open.fh, 0, b"v2\n").unwrap();
    ov.release(open.fh).unwrap();
    let r = commit_all(&fx);
    assert!(r.conflicts.is_empty(), "{:?}", r.conflicts);
    assert_eq!(r.applied, vec![p("a")]);
    assert_eq!(std::fs::read(fx.host("a")).unwrap(), b"v2\n");
}

/// Rewrites the host-backed file `name` through the overlay.
fn rewrite(ov: &crate::overlay::Overlay, name: &str, data: &[u8]) {
    use crate::overlay::ROOT_INO;
    let ino = ov.lookup(ROOT_INO, std::ffi::OsStr::new(name)).unwrap().ino;
    let open = ov
        .open(&Req::root(), ino, libc::O_WRONLY | libc::O_TRUNC)
        .unwrap();
    ov.write(open.fh, 0, data).unwrap();
    ov.release(open.fh).unwrap();
}

/// Waits until host files written now are older than the racy window, so their identity can
/// prove them unchanged.
fn let_host_files_settle() {
    std::thread::sleep(super::seen::RACY + std::time::Duration::from_millis(100));
}

/// A commit hashes each host file it replaces or deletes once (the conflict check); applying
/// reuses that reading, proved current by the file's identity.
#[test]
fn each_host_file_is_hashed_once_per_commit() {
    use std::sync::atomic::Ordering;
    let fx = TestWorkspace::new(&[("a", "a\n"), ("b", "b\n"), ("c", "c\n")]);
    let_host_files_settle();
    let ov = fx.ov();
    rewrite(ov, "a", b"new a\n");
    rewrite(ov, "b", b"new b\n");
    ov.unlink(crate::overlay::ROOT_INO, std::ffi::OsStr::new("c"))
        .unwrap();
    let before = ov.host_hashes.load(Ordering::Relaxed);
    let r = commit_all(&fx);
    assert_eq!(r.applied, vec![p("a"), p("b"), p("c")], "{r:?}");
    assert_eq!(ov.host_hashes.load(Ordering::Relaxed) - before, 3);
    assert_eq!(std::fs::read(fx.host("a")).unwrap(), b"new a\n");
    assert!(!fx.host("c").exists());
}

/// The identity the check keeps does not vouch for a host file rewritten after the check,
/// even with the same size: the commit reads it again and sees the new content.
#[test]
fn a_host_file_changed_after_the_check_is_read_again() {
    use super::seen::Seen;
    use std::os::fd::AsFd;
    let fx = TestWorkspace::new(&[("a", "before\n")]);
    let_host_files_settle();
    let ov = fx.ov();
    let a = p("a");
    let seen = Seen::read(ov, &a).unwrap();
    let (dir, name) = crate::sys::walk_parent(ov.lower_root().as_fd(), &a).unwrap();
    assert!(seen.holds(ov, dir.as_fd(), name, &a).unwrap());
    std::fs::write(fx.host("a"), b"AFTER!\n").unwrap();
    assert!(!seen.holds(ov, dir.as_fd(), name, &a).unwrap());
    let now = seen.now(ov, &a).unwrap();
    assert_eq!(now.state, ov.lower_state(&a).unwrap());
    assert_ne!(now.state, seen.state);
}
