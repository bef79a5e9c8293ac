//! `wsfs commit --merge` on a real mount: a text file changed on the host and in the
//! workspace at different lines is merged (base from git's HEAD), applied and leaves the
//! overlay with the workspace showing the merge; overlapping changes, and a base git does not
//! hold, stay conflicts that say why, with the rest of the commit applied. Needs root and
//! /dev/fuse (see `live::can_mount`).

mod live;
mod prereq;

use std::fs;
use std::path::Path;
use std::process::Command;

use live::{can_mount, refused, Live};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn lines(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

#[test]
fn merge_applies_changes_at_different_lines_and_refuses_the_rest() {
    if !can_mount("merge_applies_changes_at_different_lines_and_refuses_the_rest") {
        return;
    }
    let base = lines(20);
    let live = Live::new(&[
        ("a.txt", &base),
        ("same.txt", &base),
        ("untracked.txt", &base),
        ("other.txt", "other\n"),
    ]);
    git(&live.project, &["init", "-q"]);
    git(&live.project, &["add", "a.txt", "same.txt", "other.txt"]);
    git(&live.project, &["commit", "-q", "-m", "base"]);
    let mnt = live.mount();

    // The workspace changes the end of each file, the host the start (a.txt, untracked.txt)
    // or the same line (same.txt).
    let ours = base.replace("line 18\n", "line 18, workspace\n");
    for f in ["a.txt", "same.txt", "untracked.txt"] {
        fs::write(mnt.join(f), &ours).unwrap();
    }
    fs::write(mnt.join("other.txt"), "other, workspace\n").unwrap();
    let host = base.replace("line 2\n", "line 2, host\n");
    fs::write(live.project.join("a.txt"), &host).unwrap();
    fs::write(live.project.join("untracked.txt"), &host).unwrap();
    let host_same = base.replace("line 18\n", "line 18, host\n");
    fs::write(live.project.join("same.txt"), &host_same).unwrap();

    // Without --merge: all three are conflicts and nothing is applied.
    let out = live.wsfs(["--json", "commit", "w"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        fs::read_to_string(live.project.join("other.txt")).unwrap(),
        "other\n"
    );

    let dry: serde_json::Value = serde_json::from_slice(
        &live
            .wsfs(["--json", "commit", "w", "--merge", "--dry-run"])
            .stdout,
    )
    .unwrap();
    assert_eq!(dry["merged"], serde_json::json!(["a.txt"]), "{dry}");
    assert_eq!(
        fs::read_to_string(mnt.join("a.txt")).unwrap(),
        ours,
        "dry run wrote"
    );

    let out = live.wsfs(["--json", "commit", "w", "--merge"]);
    assert_eq!(out.status.code(), Some(3), "conflicts remain: {out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let merged = base
        .replace("line 2\n", "line 2, host\n")
        .replace("line 18\n", "line 18, workspace\n");
    assert_eq!(report["merged"], serde_json::json!(["a.txt"]), "{report}");
    let mut applied: Vec<_> = report["applied"].as_array().unwrap().clone();
    applied.sort_by_key(|v| v.to_string());
    assert_eq!(applied, vec!["a.txt", "other.txt"], "{report}");
    let mut why = refused(&report);
    why.sort();
    assert_eq!(
        why,
        vec![
            ("same.txt".to_string(), "merge_conflict".to_string()),
            ("untracked.txt".to_string(), "no_base".to_string()),
        ],
        "{report}"
    );

    // The host has the merge; the workspace shows it and no longer holds a.txt.
    assert_eq!(
        fs::read_to_string(live.project.join("a.txt")).unwrap(),
        merged
    );
    assert_eq!(fs::read_to_string(mnt.join("a.txt")).unwrap(), merged);
    assert_eq!(
        fs::read_to_string(live.project.join("other.txt")).unwrap(),
        "other, workspace\n"
    );
    // The unmerged files are untouched on both sides.
    assert_eq!(
        fs::read_to_string(live.project.join("same.txt")).unwrap(),
        host_same
    );
    assert_eq!(fs::read_to_string(mnt.join("same.txt")).unwrap(), ours);
    assert_eq!(
        fs::read_to_string(live.project.join("untracked.txt")).unwrap(),
        host
    );
    let status = live.ok(["status", "w"]);
    assert_eq!(status, "M  same.txt\nM  untracked.txt\n", "{status}");
    // The merge's write names no process; the journal still verifies.
    let blame = live.json(["blame", "w", "a.txt"]);
    let write = blame
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r["op"] == "write")
        .unwrap();
    assert!(write.get("by").is_none(), "{write}");
    live.ok(["verify", "w"]);
}
