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

/// A workspace on a project with `files` whose rules write `history.jsonl` and `projects/`
/// through and protect `settings.json`.
fn write_through_fx(
    files: &[(&str, &str)],
) -> (
    tempfile::TempDir,
    tempfile::TempDir,
    std::sync::Arc<crate::workspace::Workspace>,
) {
    let project = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(project.path().join(name), content).unwrap();
    }
    let state = tempfile::tempdir().unwrap();
    let rules = crate::policy::PolicyConfig {
        write_through: vec!["history.jsonl".into(), "projects/".into()],
        protected: vec!["settings.json".into()],
        ..Default::default()
    };
    let ws = crate::workspace::Workspace::create_with(
        &crate::state::StateRoot::new(state.path()),
        "t",
        project.path(),
        Some(rules),
    )
    .unwrap();
    (project, state, ws)
}

/// Write-through changes (in a new directory too) reach the host at the next flush and leave
/// nothing pending or in the upper layer; a protected path, even under a write-through rule's
/// reach, and ordinary files stay pending for review.
#[test]
fn write_through_changes_reach_the_host_and_the_rest_stays_for_review() {
    let (project, state, ws) = write_through_fx(&[("history.jsonl", "old\n")]);
    let ov = ws.overlay();
    create(ov, "history.jsonl", b"old\nnew\n");
    crate::testing::mkdir(ov, "projects").unwrap();
    create(ov, "projects/s.jsonl", b"session\n");
    create(ov, "settings.json", b"{\"hooks\":1}\n");
    create(ov, "notes.md", b"agent notes\n");
    assert_eq!(
        ov.changes().counts().write_through,
        3,
        "history, projects, projects/s.jsonl"
    );

    let r = ws.flush_write_through().unwrap().expect("a flush ran");
    assert_eq!(
        r.applied,
        vec![p("history.jsonl"), p("projects"), p("projects/s.jsonl")]
    );
    assert!(r.conflicts.is_empty(), "{r:?}");
    let host = |n: &str| std::fs::read(project.path().join(n)).unwrap();
    assert_eq!(host("history.jsonl"), b"old\nnew\n");
    assert_eq!(host("projects/s.jsonl"), b"session\n");
    assert!(!project.path().join("settings.json").exists());
    assert!(!project.path().join("notes.md").exists());
    let upper = state.path().join("t/upper");
    assert!(
        !upper.join("history.jsonl").exists(),
        "applied copy left in the upper layer"
    );
    let pending: Vec<_> = ws.status().unwrap().into_iter().map(|c| c.path).collect();
    assert_eq!(pending, vec![p("notes.md"), p("settings.json")]);
    assert_eq!(ov.changes().counts().write_through, 0);
    assert!(
        ws.flush_write_through().unwrap().is_none(),
        "nothing left to flush"
    );
    assert!(ws.verify().unwrap().problems.is_empty());
}

/// A write-through path the host changed since the workspace based its change on it is
/// held back (the host's version is never overwritten) while the other write-through paths
/// still go; a rename whose destination is held back keeps its source on the host.
#[test]
fn a_write_through_conflict_holds_back_only_its_own_paths() {
    let (project, _state, ws) = write_through_fx(&[("history.jsonl", "base\n")]);
    let ov = ws.overlay();
    create(ov, "history.jsonl", b"base\ncontainer\n");
    std::fs::write(project.path().join("history.jsonl"), "base\nhost\n").unwrap();
    crate::testing::mkdir(ov, "projects").unwrap();
    create(ov, "projects/s.jsonl", b"");

    let r = ws.flush_write_through().unwrap().expect("a flush ran");
    assert_eq!(r.applied, vec![p("projects"), p("projects/s.jsonl")]);
    assert_eq!(r.conflicts.len(), 1, "{r:?}");
    assert_eq!(
        (r.conflicts[0].path.clone(), r.conflicts[0].reason.as_str()),
        (p("history.jsonl"), "host_changed")
    );
    assert_eq!(
        std::fs::read(project.path().join("history.jsonl")).unwrap(),
        b"base\nhost\n"
    );
    assert_eq!(
        ov.changes().counts().write_through,
        1,
        "held back, still pending"
    );
    // Nothing recorded since: the next round has nothing new to try.
    assert!(ws.flush_write_through().unwrap().is_none());
}

/// A write-through file still open for writing waits for its last close.
#[test]
fn an_open_write_through_file_waits_for_its_close() {
    let (project, _state, ws) = write_through_fx(&[]);
    let ov = ws.overlay();
    let (_, open) = create_open(ov, "history.jsonl", libc::O_WRONLY);
    ov.write(open.fh, 0, b"line 1\n").unwrap();
    let r = ws.flush_write_through().unwrap().expect("a flush ran");
    assert!(r.applied.is_empty(), "{r:?}");
    assert_eq!(r.busy, vec![p("history.jsonl")]);
    assert!(!project.path().join("history.jsonl").exists());
    ov.write(open.fh, 7, b"line 2\n").unwrap();
    ov.release(open.fh).unwrap();
    let r = ws
        .flush_write_through()
        .unwrap()
        .expect("the close was recorded");
    assert_eq!(r.applied, vec![p("history.jsonl")]);
    assert_eq!(
        std::fs::read(project.path().join("history.jsonl")).unwrap(),
        b"line 1\nline 2\n"
    );
}

/// A rename whose destination is held back by a conflict keeps its source on the host: the
/// host never loses the old file before it gets the new one.
#[test]
fn a_held_back_rename_keeps_its_source_on_the_host() {
    let (project, _state, ws) = write_through_fx(&[("history.jsonl", "base\n")]);
    std::fs::create_dir(project.path().join("projects")).unwrap();
    std::fs::write(project.path().join("projects/a.jsonl"), "A\n").unwrap();
    let ov = ws.overlay();
    crate::testing::rename(ov, "projects/a.jsonl", "history.jsonl", 0).unwrap();
    std::fs::write(project.path().join("history.jsonl"), "base\nhost\n").unwrap();
    let r = ws.flush_write_through().unwrap().expect("a flush ran");
    assert_eq!(r.conflicts.len(), 1, "{r:?}");
    assert!(r.applied.is_empty(), "{r:?}");
    assert_eq!(
        std::fs::read(project.path().join("projects/a.jsonl")).unwrap(),
        b"A\n"
    );
    assert_eq!(
        std::fs::read(project.path().join("history.jsonl")).unwrap(),
        b"base\nhost\n"
    );
}

/// A new directory is committed while a file in it is still open for writing (left pending,
/// busy): the file keeps its node, and its last close is recorded, so the journal stays exact
/// (the file's node used to be taken out of the overlay with its directory, and the close
/// then recorded nothing: `verify` found the upper file larger than its record).
#[test]
fn a_file_left_pending_in_a_committed_directory_is_still_recorded_at_its_close() {
    let fx = TestWorkspace::new(&[]);
    let ov = fx.ov();
    crate::testing::mkdir(ov, "d").unwrap();
    let (_, open) = create_open(ov, "d/f", libc::O_WRONLY);
    ov.write(open.fh, 0, b"one\n").unwrap();
    let r = fx
        .ws()
        .commit(
            &CommitRequest {
                paths: vec![p("d")],
                ..Default::default()
            },
            &|_, _| {},
        )
        .unwrap();
    assert_eq!((r.applied, r.busy), (vec![p("d")], vec![p("d/f")]));
    ov.write(open.fh, 4, b"two\n").unwrap();
    ov.release(open.fh).unwrap();
    let v = fx.ws().verify().unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    let st = fx.ws().status().unwrap();
    assert_eq!(st.len(), 1, "{st:?}");
    assert_eq!(st[0].path, p("d/f"));
    let want = crate::hash::ContentHash::of(b"one\ntwo\n");
    assert!(
        matches!(st[0].current, crate::journal::record::EntryState::File { hash: Some(h), size: 8, .. } if h == want),
        "{:?}",
        st[0].current
    );
    let r = commit_all(&fx);
    assert_eq!(r.applied, vec![p("d/f")]);
    assert_eq!(fx.host_read("d/f").unwrap(), b"one\ntwo\n");
}

/// `commit -p` through the API: the chosen hunks reach the host, the file stays pending with
/// the rest (rebased, so its diff shows only those), and a selection whose hash no longer
/// matches is refused naming the path, changing nothing.
#[test]
fn chosen_hunks_are_committed_and_the_rest_stays_pending() {
    use crate::api::{HunkRef, HunkSelection};
    let base: String = (1..=30).map(|i| format!("l{i}\n")).collect();
    let fx = TestWorkspace::new(&[("a", base.as_str())]);
    let ours = base
        .replace("l2\n", "l2 changed\n")
        .replace("l28\n", "l28\nadded\n");
    crate::testing::write(fx.ov(), "a", ours.as_bytes());
    let diff = fx.ws().diff(&[p("a")]).unwrap();
    let hunks = diff[0].hunks.clone();
    assert_eq!(hunks.len(), 2, "{diff:?}");
    let pick = |h: &crate::api::Hunk| HunkRef {
        id: h.id,
        hash: h.hash,
    };
    let req = |refs: Vec<HunkRef>| CommitRequest {
        hunks: vec![HunkSelection {
            path: p("a"),
            hunks: refs,
        }],
        ..Default::default()
    };
    let stale = HunkRef {
        id: 1,
        hash: hunks[0].hash,
    };
    let err = fx.ws().commit(&req(vec![stale]), &|_, _| {}).unwrap_err();
    assert!(
        matches!(err, crate::Error::HunksRefused(ref m) if m.starts_with("a: ")),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(fx.host("a")).unwrap(), base);

    let r = fx
        .ws()
        .commit(&req(vec![pick(&hunks[1])]), &|_, _| {})
        .unwrap();
    assert_eq!(
        (r.applied.clone(), r.partial.clone()),
        (vec![p("a")], vec![p("a")])
    );
    let host = base.replace("l28\n", "l28\nadded\n");
    assert_eq!(std::fs::read_to_string(fx.host("a")).unwrap(), host);
    assert_eq!(crate::testing::read(fx.ov(), "a").unwrap(), ours.as_bytes());
    let left = fx.ws().diff(&[p("a")]).unwrap();
    assert_eq!(left[0].hunks.len(), 1);
    assert_eq!(left[0].hunks[0].text, hunks[0].text);
    // The commit did not list the partial file for a roll-forward.
    let begin = fx
        .ws()
        .log()
        .unwrap()
        .into_iter()
        .find_map(|r| match r.draft.op {
            crate::journal::Op::CommitBegin { paths, prior, .. } => Some((paths, prior)),
            _ => None,
        })
        .unwrap();
    // ... nor its prior state: `prior` stays in step with `paths` (undo reads them in pairs).
    assert!(begin.0.is_empty() && begin.1.is_empty(), "{begin:?}");

    // The last hunk: now the whole change; the file leaves the overlay.
    let r = fx
        .ws()
        .commit(&req(vec![pick(&left[0].hunks[0])]), &|_, _| {})
        .unwrap();
    assert_eq!((r.applied, r.partial), (vec![p("a")], vec![]));
    assert_eq!(std::fs::read_to_string(fx.host("a")).unwrap(), ours);
    assert!(fx.ws().status().unwrap().is_empty());
}
