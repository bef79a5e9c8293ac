//! Concurrency (issue 6), over real FUSE mounts and the real CLI:
//!
//! - a container that keeps writing while a commit runs: every host file the commit wrote is
//!   one complete version the container wrote (never torn), nothing written during or after
//!   the commit is lost, and status afterwards shows exactly the later writes;
//! - a host user editing the project while the container writes: untouched host files show
//!   through the mount, files both sides touched are conflicts at commit (nothing applied);
//! - two processes writing the same workspace at once: nothing lost, appends not interleaved
//!   within a write;
//! - two workspaces on the same project committing in turn: the second sees the first's
//!   commit as host drift (conflict), never overwrites it.

mod live;

use live::text;
mod prereq;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use live::{can_mount, eventually, Live};

/// Version `v` of file `i`: self-describing, so a torn file is recognisable.
fn version(i: usize, v: usize) -> Vec<u8> {
    format!("file {i} version {v}\n")
        .repeat(1 + (i * 7 + v) % 400)
        .into_bytes()
}

fn write_file(p: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(p)?;
    // Several writes per version, so a commit may catch a file half written.
    for c in data.chunks(1000) {
        f.write_all(c)?;
    }
    Ok(())
}

/// A writer runs while three commits do. With `rewrite`, it keeps rewriting the same 40 files
/// (including ones the commits are applying); otherwise it only creates new files. Each
/// committed host file must be a state the file passed through (a prefix of a version: the
/// writer writes in chunks; with `complete_only`, a finished version); the writer never gets an
/// error; nothing is lost; status afterwards lists exactly what differs from the host; a final
/// commit succeeds (no conflict of the workspace with its own commits).
/// New files the creating writer makes at most.
const MAX_NEW_FILES: usize = 2_000;

fn writer_during_commit(test: &str, rewrite: bool, complete_only: bool) {
    if !can_mount(test) {
        return;
    }
    let live = Live::new(&[("host.txt", "host\n")]);
    let mp = live.mount();
    // Some changes before the writer starts, so the commit has work to do.
    for i in 0..30 {
        write_file(&mp.join(format!("f{i}")), &version(i, 0)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (wmp, wstop) = (mp.clone(), stop.clone());
    let writer = std::thread::spawn(move || {
        let mut latest = std::collections::BTreeMap::new();
        for i in 0..30 {
            latest.insert(i, 0);
        }
        let mut v = 0;
        while !wstop.load(Ordering::Relaxed) {
            if !rewrite && v >= MAX_NEW_FILES {
                // Enough new files to race three commits; unbounded creation only makes each
                // commit (and the test) longer on a slow machine.
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            v += 1;
            let i = if rewrite { (v * 13) % 40 } else { 40 + v };
            if let Err(e) = write_file(&wmp.join(format!("f{i}")), &version(i, v)) {
                return Err(format!("writer: f{i} version {v}: {e}"));
            }
            latest.insert(i, v);
        }
        Ok(latest)
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut problems = Vec::new();
    for commit in 1..=3 {
        let out = live.wsfs(["--json", "commit", "w"]);
        if !out.status.success() {
            problems.push(format!("commit {commit} failed: {}", text(&out)));
        }
        // Every host file is one version, or a state it passed through.
        for entry in std::fs::read_dir(&live.project).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let Some(i) = name.strip_prefix('f').and_then(|n| n.parse::<usize>().ok()) else {
                continue;
            };
            let got = std::fs::read(live.project.join(&name)).unwrap();
            let ok = (0..100_000).any(|v| {
                let full = version(i, v);
                if complete_only {
                    full == got
                } else {
                    full.starts_with(&got)
                }
            });
            if !ok {
                problems.push(format!(
                    "host {name} after commit {commit} is not a {} version ({} bytes)",
                    if complete_only {
                        "complete"
                    } else {
                        "possible"
                    },
                    got.len()
                ));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let latest = match writer.join().unwrap() {
        Ok(l) => l,
        Err(e) => panic!("{e}; other problems: {problems:#?}"),
    };
    assert!(problems.is_empty(), "{problems:#?}");
    // Nothing lost: the mount has the writer's last version of every file.
    for (i, v) in &latest {
        let seen = std::fs::read(mp.join(format!("f{i}")));
        let host = std::fs::read(live.project.join(format!("f{i}")));
        assert!(
            seen.as_ref().ok() == Some(&version(*i, *v)),
            "f{i}: the writer's last version (v{v}, {} bytes) lost: mount has {:?} bytes, host has {:?} bytes; status: {}",
            version(*i, *v).len(),
            seen.map(|d| d.len()),
            host.map(|d| d.len()),
            live.ok(["status", "w"])
        );
    }
    // Status shows exactly the files whose mount content differs from the host.
    let status = live.json(["status", "w"]);
    let listed: Vec<String> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_string())
        .collect();
    for i in latest.keys() {
        let name = format!("f{i}");
        let host = std::fs::read(live.project.join(&name)).ok();
        let seen = std::fs::read(mp.join(&name)).ok();
        assert_eq!(
            host != seen,
            listed.contains(&name),
            "{name}: differs from host = {}, listed = {} ({listed:?})",
            host != seen,
            listed.contains(&name)
        );
    }
    // A final commit brings the host to the container's state.
    live.ok(["commit", "w"]);
    assert_eq!(Live::snapshot(&live.project), Live::snapshot(&mp));
    assert_eq!(live.ok(["status", "w"]), "");
    let verify = live.ok(["verify", "w"]);
    assert!(verify.contains("hash chain intact"), "{verify}");
}

/// A commit during writes applies, per file, a state the file really passed through, loses
/// nothing written during or after it, and status then shows the later writes. (Was a
/// data-loss bug: the upper inode number of a file a commit removed from the upper layer was
/// reused by a file created concurrently, and the overlay attached the new file to the old
/// node and path, so its close was journaled as a write of the committed file.)
#[test]
fn writer_keeps_writing_while_a_commit_runs() {
    writer_during_commit("writer_keeps_writing_while_a_commit_runs", false, false);
}

/// Stronger: a commit never applies a file the container still has open for writing (half
/// written): such a path is left pending and reported busy (docs/reliability.md).
#[test]
fn commit_never_applies_a_half_written_file() {
    writer_during_commit("commit_never_applies_a_half_written_file", false, true);
}

/// The chosen behaviour, deterministically: a file open for writing in the mount is not
/// committed; the commit succeeds with the other paths, lists it as busy, leaves it pending,
/// and a commit after the writer closed it applies it.
#[test]
fn commit_leaves_files_open_for_writing_pending() {
    if !can_mount("commit_leaves_files_open_for_writing_pending") {
        return;
    }
    let live = Live::new(&[("host.txt", "host\n")]);
    let mp = live.mount();
    std::fs::write(mp.join("done"), "finished\n").unwrap();
    let mut open = std::fs::File::create(mp.join("half")).unwrap();
    open.write_all(b"half wri").unwrap();
    let report = live.json(["commit", "w"]);
    assert_eq!(report["applied"], serde_json::json!(["done"]), "{report}");
    assert_eq!(report["busy"], serde_json::json!(["half"]), "{report}");
    assert!(
        !live.project.join("half").exists(),
        "half-written file committed"
    );
    let human = live.ok(["status", "w"]);
    assert!(
        human.contains("half"),
        "busy path no longer pending: {human}"
    );
    open.write_all(b"tten\n").unwrap();
    drop(open);
    // The close reaches the daemon asynchronously (FUSE release).
    let committed = eventually(Duration::from_secs(10), || {
        let r = live.json(["commit", "w"]);
        r["applied"] == serde_json::json!(["half"])
    });
    assert!(committed.is_some(), "closed file never committed");
    assert_eq!(
        std::fs::read(live.project.join("half")).unwrap(),
        b"half written\n"
    );
    assert_eq!(live.ok(["status", "w"]), "");
}

/// The writer rewrites the very files the commits apply: it never gets an error (a node a
/// commit took out of the overlay answers ESTALE, so the kernel looks the name up again; before,
/// `open(O_CREAT|O_TRUNC)` could fail with ENOENT), and the base recorded after each commit is
/// what the host really got, so no later commit conflicts with the workspace's own commits.
#[test]
fn writer_rewrites_files_while_commits_apply_them() {
    writer_during_commit(
        "writer_rewrites_files_while_commits_apply_them",
        true,
        false,
    );
}

#[test]
fn host_edits_during_container_writes_show_through_or_conflict() {
    if !can_mount("host_edits_during_container_writes_show_through_or_conflict") {
        return;
    }
    let files: Vec<(String, String)> = (0..20)
        .map(|i| (format!("src/m{i}.rs"), format!("// module {i} v0\n")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let live = Live::new(&refs);
    let mp = live.mount();
    let stop = Arc::new(AtomicBool::new(false));
    let (wmp, wstop) = (mp.clone(), stop.clone());
    // The container rewrites the even modules in a loop.
    let container = std::thread::spawn(move || {
        let mut n = 0;
        while !wstop.load(Ordering::Relaxed) || n < 3 {
            n += 1;
            for i in (0..20).step_by(2) {
                std::fs::write(
                    wmp.join(format!("src/m{i}.rs")),
                    format!("// module {i} container {n}\n"),
                )
                .unwrap();
            }
        }
        n
    });
    // Meanwhile the host user edits modules 0..10 (half touched by the container too).
    for round in 1..=5 {
        for i in 0..10 {
            std::fs::write(
                live.project.join(format!("src/m{i}.rs")),
                format!("// module {i} host {round}\n"),
            )
            .unwrap();
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    stop.store(true, Ordering::Relaxed);
    let n = container.join().unwrap();
    // Untouched by the container: the host's edit shows through.
    for i in (1..10).step_by(2) {
        let want = format!("// module {i} host 5\n");
        let p = mp.join(format!("src/m{i}.rs"));
        assert!(
            eventually(Duration::from_secs(3), || std::fs::read_to_string(&p)
                .ok()
                .as_deref()
                == Some(&want))
            .is_some(),
            "m{i}: host edit not visible: {:?}",
            std::fs::read_to_string(&p)
        );
    }
    // Touched by the container: its version stays.
    for i in (0..20).step_by(2) {
        assert_eq!(
            std::fs::read_to_string(mp.join(format!("src/m{i}.rs"))).unwrap(),
            format!("// module {i} container {n}\n")
        );
    }
    // Commit: the 5 files both sides changed conflict, nothing is applied.
    let before = Live::snapshot(&live.project);
    let out = live.wsfs(["--json", "commit", "w"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let conflicts: Vec<String> = live::refused(&report).into_iter().map(|(p, _)| p).collect();
    let mut want: Vec<String> = (0..10).step_by(2).map(|i| format!("src/m{i}.rs")).collect();
    want.sort();
    assert_eq!(conflicts, want);
    assert_eq!(
        Live::snapshot(&live.project),
        before,
        "refused commit wrote"
    );
    // The container-only files commit on their own.
    let mut args = vec!["commit".to_string(), "w".to_string()];
    args.extend((10..20).step_by(2).map(|i| format!("src/m{i}.rs")));
    live.ok(&args);
    for i in (10..20).step_by(2) {
        assert_eq!(
            std::fs::read_to_string(live.project.join(format!("src/m{i}.rs"))).unwrap(),
            format!("// module {i} container {n}\n")
        );
    }
    for i in 0..10 {
        assert_eq!(
            std::fs::read_to_string(live.project.join(format!("src/m{i}.rs"))).unwrap(),
            format!("// module {i} host 5\n"),
            "host edit of m{i} overwritten"
        );
    }
}

#[test]
fn two_processes_write_the_same_workspace() {
    if !can_mount("two_processes_write_the_same_workspace") {
        return;
    }
    let live = Live::new(&[("log.txt", "")]);
    let mp = live.mount();
    // Two child processes (not threads: distinct pids, as two containers would be).
    let script = r#"
        set -e
        cd "$1"; id=$2
        for i in $(seq 1 150); do
            printf 'proc %s line %04d ................................................\n' $id $i >> log.txt
            printf 'proc %s file %d\n' $id $i > "p$id-$i"
            mkdir -p "dir$((i % 5))"; printf '%s' "$id" > "dir$((i % 5))/last-$id"
        done
    "#;
    let children: Vec<_> = (1..=2)
        .map(|id| {
            std::process::Command::new("sh")
                .args(["-c", script, "sh"])
                .arg(&mp)
                .arg(id.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let log = std::fs::read_to_string(mp.join("log.txt")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 300, "appends lost");
    for id in 1..=2 {
        let mine: Vec<&&str> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("proc {id} ")))
            .collect();
        assert_eq!(mine.len(), 150, "proc {id}: lines lost or torn");
        for (k, l) in mine.iter().enumerate() {
            assert!(
                l.starts_with(&format!("proc {id} line {:04} ", k + 1)) && l.ends_with('.'),
                "torn or reordered line: {l:?}"
            );
        }
        for i in 1..=150 {
            assert_eq!(
                std::fs::read_to_string(mp.join(format!("p{id}-{i}"))).unwrap(),
                format!("proc {id} file {i}\n")
            );
        }
    }
    let status = live.json(["status", "w"]);
    // log.txt + 300 files + 5 dirs + 10 last-* files.
    assert_eq!(
        status.as_array().unwrap().len(),
        1 + 300 + 5 + 10,
        "{status}"
    );
    live.ok(["commit", "w"]);
    assert_eq!(Live::snapshot(&live.project), Live::snapshot(&mp));
    let verify = live.ok(["verify", "w"]);
    assert!(verify.contains("hash chain intact"), "{verify}");
}

#[test]
fn two_workspaces_on_one_project_commit_in_turn() {
    if !can_mount("two_workspaces_on_one_project_commit_in_turn") {
        return;
    }
    let live = Live::new(&[("shared.txt", "base\n"), ("only_b.txt", "base b\n")]);
    let a = live.mount_as(&live.project, "a");
    let b = live.mount_as(&live.project, "b");
    std::fs::write(a.join("shared.txt"), "from a\n").unwrap();
    std::fs::write(a.join("new.txt"), "new from a\n").unwrap();
    std::fs::write(b.join("shared.txt"), "from b\n").unwrap();
    std::fs::write(b.join("new.txt"), "new from b\n").unwrap();
    std::fs::write(b.join("only_b.txt"), "b edit\n").unwrap();
    // b's mount does not see a's uncommitted changes.
    assert_eq!(
        std::fs::read_to_string(b.join("shared.txt")).unwrap(),
        "from b\n"
    );

    live.ok(["commit", "a"]);
    assert_eq!(
        std::fs::read_to_string(live.project.join("shared.txt")).unwrap(),
        "from a\n"
    );
    // b: the first commit is host drift. Conflict, nothing applied, nothing overwritten.
    let before = Live::snapshot(&live.project);
    let out = live.wsfs(["--json", "commit", "b"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let conflicts = live::refused(&report);
    assert_eq!(conflicts.len(), 2, "{report}");
    assert_eq!(conflicts[0].0, "new.txt", "{report}");
    assert_eq!(conflicts[1].0, "shared.txt", "{report}");
    assert_eq!(
        Live::snapshot(&live.project),
        before,
        "b overwrote a's commit"
    );
    // b keeps its work; its non-conflicting change commits alone.
    assert_eq!(
        std::fs::read_to_string(b.join("shared.txt")).unwrap(),
        "from b\n"
    );
    live.ok(["commit", "b", "only_b.txt"]);
    assert_eq!(
        std::fs::read_to_string(live.project.join("only_b.txt")).unwrap(),
        "b edit\n"
    );
    assert_eq!(
        std::fs::read_to_string(live.project.join("shared.txt")).unwrap(),
        "from a\n"
    );
    // a, untouched since, sees b's commit through its mount.
    assert!(
        eventually(Duration::from_secs(3), || std::fs::read_to_string(
            a.join("only_b.txt")
        )
        .ok()
        .as_deref()
            == Some("b edit\n"))
        .is_some(),
        "a does not see b's committed file"
    );
}
