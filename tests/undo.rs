//! `wsfs undo` on a real mount (issue 16): after a commit, undo puts the host back byte for
//! byte (content, mode, symlinks, deletions, renames, type changes), the workspace keeps the
//! agent's version as pending changes, and a host edit since the commit refuses the undo
//! (`--force` backs it up). `wsfs log --commits` and `wsfs gc` around it. Needs root and
//! /dev/fuse (see `live::can_mount`).

mod live;
mod prereq;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use live::{can_mount, text, Live};

/// `path -> (mode, content or symlink target)` of everything under `dir`, directories too.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = fs::symlink_metadata(e.path()).unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
            let data = if md.is_dir() {
                stack.push(e.path());
                b"<dir>".to_vec()
            } else if md.file_type().is_symlink() {
                [
                    b"-> ",
                    fs::read_link(e.path()).unwrap().as_os_str().as_bytes(),
                ]
                .concat()
            } else {
                fs::read(e.path()).unwrap()
            };
            out.insert(rel, (md.mode(), data));
        }
    }
    out
}

fn host_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("keep.txt", "never touched\n"),
        ("mod.txt", "old content\n"),
        ("del.txt", "deleted by the agent\n"),
        ("ren/src.txt", "renamed by the agent\n"),
        ("mode.sh", "#!/bin/sh\necho hi\n"),
        ("typechange", "a file that becomes a directory\n"),
        ("gone/a.txt", "in a directory the agent removes\n"),
        ("gone/b/c.txt", "deeper\n"),
    ]
}

/// The agent's session: every kind of change.
fn agent(mp: &Path) {
    fs::write(mp.join("mod.txt"), "new content, longer than before\n").unwrap();
    fs::remove_file(mp.join("del.txt")).unwrap();
    fs::create_dir_all(mp.join("moved")).unwrap();
    fs::rename(mp.join("ren/src.txt"), mp.join("moved/dst.txt")).unwrap();
    fs::set_permissions(mp.join("mode.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(mp.join("typechange")).unwrap();
    fs::create_dir(mp.join("typechange")).unwrap();
    fs::write(mp.join("typechange/inner"), "inside\n").unwrap();
    fs::remove_dir_all(mp.join("gone")).unwrap();
    fs::create_dir_all(mp.join("newdir/sub")).unwrap();
    fs::write(mp.join("newdir/sub/new.bin"), [0u8, 1, 2, 255, 254]).unwrap();
    std::os::unix::fs::symlink("mod.txt", mp.join("link")).unwrap();
    fs::write(
        mp.join(std::ffi::OsStr::from_bytes(b"caf\xe9")),
        "latin-1 name\n",
    )
    .unwrap();
}

fn last_commit(live: &Live) -> serde_json::Value {
    let commits = live.json(["log", "w", "--commits"]);
    commits
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .expect("a commit")
}

#[test]
fn undo_after_commit_restores_the_host_byte_for_byte() {
    if !can_mount("undo_after_commit_restores_the_host_byte_for_byte") {
        return;
    }
    let live = Live::new(&host_files());
    std::os::unix::fs::symlink("keep.txt", live.project.join("oldlink")).unwrap();
    let mp = live.mount();
    fs::remove_file(mp.join("oldlink")).unwrap();
    std::os::unix::fs::symlink("mod.txt", mp.join("oldlink")).unwrap();
    agent(&mp);
    let before = tree(&live.project);
    let view = tree(&mp);
    let report = live.json(["commit", "w"]);
    let id = report["id"].as_str().unwrap().to_string();
    assert_eq!(tree(&live.project), view, "the commit applied the view");

    let c = last_commit(&live);
    assert_eq!(c["id"], id.as_str());
    assert_eq!(c["undoable"], true, "{c}");
    let human = live.ok(["log", "w", "--commits"]);
    assert!(
        human.contains(&format!("commit {id}")) && human.contains("can be undone"),
        "{human}"
    );
    assert!(
        human.contains("D  del.txt") && human.contains("A  moved/dst.txt"),
        "{human}"
    );

    let undo = live.json(["undo", "-w", "w"]);
    assert_eq!(undo["commit"], id.as_str(), "{undo}");
    assert!(undo["conflicts"].as_array().unwrap().is_empty(), "{undo}");
    assert_eq!(
        tree(&live.project),
        before,
        "the host is back to its state before the commit"
    );
    assert_eq!(
        tree(&mp),
        view,
        "the workspace still shows the agent's version"
    );
    let status = live.ok(["status", "w"]);
    for p in [
        "mod.txt",
        "del.txt",
        "moved/dst.txt",
        "mode.sh",
        "newdir/sub/new.bin",
        "link",
    ] {
        assert!(status.contains(p), "{p} is pending again:\n{status}");
    }
    let c = last_commit(&live);
    assert_eq!(c["undone_by"], undo["id"], "{c}");
    assert_eq!(c["undoable"], false);

    let again = live.wsfs(["undo", "-w", "w", &id]);
    assert!(!again.status.success(), "a commit is undone once");
    assert!(text(&again).contains("already undone"), "{}", text(&again));

    let verify = live.json(["verify", "w"]);
    assert!(
        verify["problems"].as_array().unwrap().is_empty(),
        "{verify}"
    );
    assert!(verify["store_objects"].as_u64().unwrap() > 0, "{verify}");

    // Nothing the agent did is lost: committing again applies it.
    live.json(["commit", "w"]);
    assert_eq!(tree(&live.project), view);
    assert_eq!(live.ok(["status", "w"]), "");
}

#[test]
fn undo_refuses_on_host_drift_and_force_backs_the_host_version_up() {
    if !can_mount("undo_refuses_on_host_drift_and_force_backs_the_host_version_up") {
        return;
    }
    let live = Live::new(&[("a.txt", "host a\n"), ("b.txt", "host b\n")]);
    let before = tree(&live.project);
    let mp = live.mount();
    fs::write(mp.join("a.txt"), "agent a\n").unwrap();
    fs::write(mp.join("b.txt"), "agent b\n").unwrap();
    fs::write(mp.join("c.txt"), "agent c\n").unwrap();
    live.json(["commit", "w"]);
    // Someone edits the host after the commit.
    fs::write(live.project.join("a.txt"), "edited on the host\n").unwrap();
    let drifted = tree(&live.project);

    let out = live.wsfs(["--json", "undo", "-w", "w"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        live::refused(&report),
        vec![("a.txt".to_string(), "host_changed".to_string())]
    );
    assert_eq!(report["id"], "", "nothing applied: {report}");
    assert_eq!(
        tree(&live.project),
        drifted,
        "a refused undo changes nothing"
    );
    let human = live.wsfs(["undo", "-w", "w"]);
    assert!(
        text(&human).contains("refused  a.txt: host_changed"),
        "{}",
        text(&human)
    );

    let forced = live.json(["undo", "-w", "w", "--force"]);
    assert!(!forced["id"].as_str().unwrap().is_empty(), "{forced}");
    assert_eq!(tree(&live.project), before, "forced: the host is back");
    let backup = PathBuf::from(forced["backup_dir"].as_str().unwrap());
    assert_eq!(
        fs::read_to_string(backup.join("a.txt")).unwrap(),
        "edited on the host\n",
        "the host's edit is saved"
    );
    assert_eq!(fs::read_to_string(mp.join("a.txt")).unwrap(), "agent a\n");
    assert_eq!(fs::read_to_string(mp.join("c.txt")).unwrap(), "agent c\n");
}

#[test]
fn gc_keeps_the_last_commits_and_old_journals_read() {
    if !can_mount("gc_keeps_the_last_commits_and_old_journals_read") {
        return;
    }
    let live = Live::new(&[("f", "v0\n")]);
    let mp = live.mount();
    let mut ids = Vec::new();
    for n in 1..=3 {
        fs::write(mp.join("f"), format!("v{n} {}\n", "x".repeat(1000 * n))).unwrap();
        ids.push(
            live.json(["commit", "w"])["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let gc = live.json(["gc", "1", "-w", "w"]);
    assert_eq!(gc["keep"], 1);
    assert!(gc["bytes_freed"].as_u64().unwrap() > 0, "{gc}");
    assert!(gc["removed"].as_u64().unwrap() > 0, "{gc}");
    let commits = live.json(["log", "w", "--commits"]);
    let state: Vec<(bool, Option<&str>)> = commits
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["undoable"].as_bool().unwrap(), c["not_undoable"].as_str()))
        .collect();
    assert_eq!(
        state,
        vec![
            (false, Some("collected")),
            (false, Some("collected")),
            (true, None)
        ]
    );
    let old = live.wsfs(["undo", "-w", "w", &ids[0]]);
    assert!(
        text(&old).contains("dropped by `wsfs gc`"),
        "{}",
        text(&old)
    );
    let verify = live.json(["verify", "w"]);
    assert!(
        verify["problems"].as_array().unwrap().is_empty(),
        "{verify}"
    );
    // The kept commit still undoes.
    live.json(["undo", "-w", "w"]);
    assert_eq!(
        fs::read_to_string(live.project.join("f")).unwrap(),
        format!("v2 {}\n", "x".repeat(2000))
    );
}
