//! Crash tests: a child process commits and is aborted at every commit step in turn
//! (`WSFS_FAULT_COMMIT=N`). After each crash, reopening the workspace must leave every host
//! file entirely old or entirely new, finish the commit (roll forward), and a second commit
//! must be a no-op.

use std::path::Path;
use std::process::Command;

use wsfs_core::api::CommitRequest;
use wsfs_core::state::StateRoot;
use wsfs_core::testing::*;
use wsfs_core::workspace::Workspace;

const OLD: &[(&str, &str)] = &[
    ("a", "old a"),
    ("d/b", "old b"),
    ("gone", "old gone"),
    ("mv", "moved content"),
];

/// The host project `OLD` and a workspace with changes to every file, closed (the child
/// opens it to commit).
fn prepare() -> TestWorkspace {
    let mut fx = TestWorkspace::new(OLD);
    let ov = fx.ov();
    write(ov, b"a", b"new a");
    write(ov, b"d/b", b"new b");
    write(ov, b"d/c", b"new c");
    mkdir(ov, b"n").unwrap();
    write(ov, b"n/x", b"new x");
    unlink(ov, b"gone").unwrap();
    rename(ov, b"mv", b"d/mv2", 0).unwrap();
    fx.close();
    fx
}

/// Runs in the child only (when WSFS_CRASH_CHILD names the state dir): commit everything.
#[test]
fn crash_child() {
    let Ok(state) = std::env::var("WSFS_CRASH_CHILD") else {
        return;
    };
    let ws = Workspace::open(&StateRoot::new(&state), "t").unwrap();
    ws.commit(&CommitRequest::default(), &|_, _| {}).unwrap();
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

#[test]
fn commit_survives_a_crash_at_every_step() {
    let exe = std::env::current_exe().unwrap();
    let mut crashed_steps = 0;
    for step in 1.. {
        let mut fx = prepare();
        let status = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("WSFS_CRASH_CHILD", fx.state())
            .env("WSFS_FAULT_COMMIT", step.to_string())
            .output()
            .unwrap();
        let crashed = !status.status.success();
        // Right after the crash: each file entirely old or entirely new (or absent/present).
        let project = fx.project().to_path_buf();
        let p = |s: &str| project.join(s);
        assert!(matches!(
            read(&p("a")).as_deref(),
            Some("old a") | Some("new a")
        ));
        assert!(matches!(
            read(&p("d/b")).as_deref(),
            Some("old b") | Some("new b")
        ));
        assert!(matches!(read(&p("d/c")).as_deref(), None | Some("new c")));
        assert!(matches!(read(&p("n/x")).as_deref(), None | Some("new x")));
        // Reopen = recovery: the commit completes.
        fx.reopen();
        let ws = fx.ws();
        assert_eq!(read(&p("a")).as_deref(), Some("new a"), "step {step}");
        assert_eq!(read(&p("d/b")).as_deref(), Some("new b"));
        assert_eq!(read(&p("d/c")).as_deref(), Some("new c"));
        assert_eq!(read(&p("n/x")).as_deref(), Some("new x"));
        assert_eq!(read(&p("d/mv2")).as_deref(), Some("moved content"));
        assert!(!p("gone").exists() && !p("mv").exists());
        assert!(
            ws.status().unwrap().is_empty(),
            "step {step}: {:?}",
            ws.status().unwrap()
        );
        let leftovers: Vec<_> = walk_names(&project)
            .into_iter()
            .filter(|n| n.contains(".wsfs-commit-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
        let again = ws.commit(&CommitRequest::default(), &|_, _| {}).unwrap();
        assert!(
            again.applied.is_empty() && again.conflicts.is_empty(),
            "second commit is a no-op"
        );
        assert!(ws.verify().unwrap().chain_ok);
        if !crashed {
            break;
        }
        crashed_steps += 1;
    }
    assert!(
        crashed_steps >= 8,
        "only {crashed_steps} crash points exercised"
    );
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.file_name().to_string_lossy().into_owned());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_names(&e.path()));
        }
    }
    out
}
