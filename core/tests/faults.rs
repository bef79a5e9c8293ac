//! Injected syscall failures reach the caller of lookup / readdir / getattr as errors, never
//! as an absent entry or an empty directory (issue 12, defect 0).
//!
//! The fault plan is process-wide (it counts the arming thread's calls only), so these tests
//! take a lock to arm one plan at a time.

use std::ffi::OsStr;
use std::sync::Mutex;

use wsfs_core::fault::{fail_calls, Syscall};
use wsfs_core::overlay::ROOT_INO;
use wsfs_core::testing::*;

static ONE_PLAN: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_PLAN.lock().unwrap_or_else(|e| e.into_inner())
}

fn errno_of<T: std::fmt::Debug>(r: wsfs_core::Result<T>) -> i32 {
    r.expect_err("the injected failure must reach the caller")
        .errno()
}

#[test]
fn lookup_in_a_directory_that_cannot_be_opened_is_emfile_not_enoent() {
    let _s = serial();
    let f = TestWorkspace::new(&[("a/b/c/f.txt", "x")]);
    let a = ov_lookup(&f, ROOT_INO, "a");
    let _fault = fail_calls(Syscall::Openat, 1, u64::MAX, libc::EMFILE);
    assert_eq!(errno_of(f.ov().lookup(a, OsStr::new("b"))), libc::EMFILE);
    drop(_fault);
    assert!(
        f.ov().lookup(a, OsStr::new("b")).is_ok(),
        "fine once fds are back"
    );
}

#[test]
fn one_emfile_is_absorbed_by_giving_cached_fds_back() {
    let _s = serial();
    let f = TestWorkspace::new(&[("a/b/f.txt", "x")]);
    let a = ov_lookup(&f, ROOT_INO, "a");
    // Only the first openat fails: the budget gives fds back and the open is retried.
    let fault = fail_calls(Syscall::Openat, 1, 1, libc::EMFILE);
    assert!(f.ov().lookup(a, OsStr::new("b")).is_ok());
    assert!(fault.calls() >= 2, "the open was retried");
}

#[test]
fn readdir_of_a_directory_that_cannot_be_opened_is_an_error_not_empty() {
    let _s = serial();
    let f = TestWorkspace::new(&[("d/one", "1"), ("d/two", "2")]);
    let d = ov_lookup(&f, ROOT_INO, "d");
    let fh = f.ov().opendir(d).unwrap();
    let _fault = fail_calls(Syscall::Openat, 1, u64::MAX, libc::EMFILE);
    let mut names = Vec::new();
    let r = f.ov().readdir(d, fh, 0, &mut |e| {
        names.push(e.name.clone());
        true
    });
    assert_eq!(errno_of(r), libc::EMFILE, "listed instead: {names:?}");
}

#[test]
fn readdir_sees_a_getdents_failure() {
    let _s = serial();
    let f = TestWorkspace::new(&[("d/one", "1")]);
    let d = ov_lookup(&f, ROOT_INO, "d");
    let fh = f.ov().opendir(d).unwrap();
    let _fault = fail_calls(Syscall::Getdents, 1, 1, libc::EIO);
    assert_eq!(errno_of(f.ov().readdir(d, fh, 0, &mut |_| true)), libc::EIO);
}

#[test]
fn readdirplus_never_skips_an_entry_it_cannot_stat() {
    let _s = serial();
    let f = TestWorkspace::new(&[("d/one", "1"), ("d/two", "2")]);
    let d = ov_lookup(&f, ROOT_INO, "d");
    let fh = f.ov().opendir(d).unwrap();
    // Take the listing first, so only the per-entry lookups meet the fault.
    f.ov().readdir(d, fh, 0, &mut |_| true).unwrap();
    let _fault = fail_calls(Syscall::Fstatat, 1, u64::MAX, libc::EIO);
    let mut sent = Vec::new();
    // Offset 2: after "." and "..", straight to the entries.
    let r = f.ov().readdirplus(d, fh, 2, &mut |e, _| {
        sent.push(e.name.clone());
        true
    });
    assert_eq!(errno_of(r), libc::EIO, "sent instead: {sent:?}");
}

#[test]
fn getattr_and_lookup_see_an_fstatat_failure() {
    let _s = serial();
    let f = TestWorkspace::new(&[("a.txt", "x")]);
    let ino = ov_lookup(&f, ROOT_INO, "a.txt");
    {
        let _fault = fail_calls(Syscall::Fstatat, 1, 1, libc::EIO);
        assert_eq!(errno_of(f.ov().getattr(ino, None)), libc::EIO);
    }
    {
        let _fault = fail_calls(Syscall::Fstatat, 1, 1, libc::EIO);
        assert_eq!(
            errno_of(f.ov().lookup(ROOT_INO, OsStr::new("a.txt"))),
            libc::EIO
        );
    }
    assert!(f.ov().getattr(ino, None).is_ok());
}

#[test]
fn status_sees_a_walk_failure_in_a_new_subtree() {
    let _s = serial();
    let f = TestWorkspace::new(&[("keep", "k")]);
    mkdir(f.ov(), b"new").unwrap();
    mkdir(f.ov(), b"new/inner").unwrap();
    write(f.ov(), b"new/inner/f", b"data");
    assert!(f.ws().status().is_ok());
    let _fault = fail_calls(Syscall::Openat, 1, u64::MAX, libc::EMFILE);
    assert_eq!(errno_of(f.ws().status()), libc::EMFILE);
}

fn ov_lookup(f: &TestWorkspace, parent: u64, name: &str) -> u64 {
    f.ov().lookup(parent, OsStr::new(name)).unwrap().ino
}

/// A `setattr` whose later step fails still records what its earlier steps did (issue 12,
/// defect 7: an operation either happens and is journaled, or fails and leaves nothing).
#[test]
fn a_setattr_that_fails_halfway_records_what_it_changed() {
    let _s = serial();
    let f = TestWorkspace::new(&[("f", "hello world\n")]);
    let ino = ov_lookup(&f, ROOT_INO, "f");
    // Copied up first (a utime, as `touch` does), so the failing chmod is setattr's own.
    let touch = wsfs_core::overlay::SetAttr {
        mtime: Some(wsfs_core::overlay::SetTime::Now),
        ..Default::default()
    };
    f.ov().setattr(&REQ, ino, &touch).unwrap();
    let set = wsfs_core::overlay::SetAttr {
        size: Some(5),
        mode: Some(0o600),
        ..Default::default()
    };
    let fault = fail_calls(Syscall::Chmod, 1, u64::MAX, libc::EIO);
    let res = f.ov().setattr(&REQ, ino, &set);
    let chmods = fault.calls();
    drop(fault);
    assert!(chmods >= 1, "the mode change was attempted");
    assert_eq!(errno_of(res), libc::EIO);
    // The truncate happened: the view, the journal and status all say so.
    assert_eq!(read(f.ov(), b"f").unwrap(), b"hello");
    let last = f.ws().log().unwrap().into_iter().last().unwrap();
    match last.draft.new {
        wsfs_core::journal::record::EntryState::File { size, hash, .. } => {
            assert_eq!(size, 5, "the journal's last record has the truncated size");
            assert_eq!(hash, Some(wsfs_core::hash::ContentHash::of(b"hello")));
        }
        other => panic!("last record: {other:?}"),
    }
    let report = f.ws().verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let status = f.ws().status().unwrap();
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0].kind, wsfs_core::api::ChangeKind::Modified);
    assert_eq!(f.host_read("f").unwrap(), b"hello world\n");
    // The journal holds the truncated shape: a commit applies it as recorded.
    let report = f
        .ws()
        .commit(&wsfs_core::api::CommitRequest::default(), &|_, _| {})
        .unwrap();
    assert_eq!(report.applied.len(), 1, "{report:?}");
    assert_eq!(f.host_read("f").unwrap(), b"hello");
}
