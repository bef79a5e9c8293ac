//! Review output on a real mount: `diff --stat` equals `git diff --stat` of the same change
//! made in a native git copy, and scratch/git churn are summarised rather than listed
//! (issue 12, defects 3 and 4). Needs root and /dev/fuse (see `live::can_mount`).

mod live;

use live::text;
mod prereq;

use std::fs;
use std::path::Path;
use std::process::Command;

use live::{can_mount, Live};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "core.autocrlf=false",
        ])
        .args(args)
        .env_remove("COLUMNS")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn lines(prefix: &str, n: usize) -> String {
    (0..n).map(|i| format!("{prefix} line {i}\n")).collect()
}

/// The session's changes, made the same way in the mount and in the native copy.
fn session(root: &Path) {
    let w = |p: &str, s: &str| {
        let p = root.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    };
    // Edits.
    let mut main = lines("main", 40);
    main = main.replace("main line 7\n", "main line seven\n");
    main.push_str("appended\n");
    w("src/main.rs", &main);
    w("README.md", "readme, rewritten\n");
    // Adds, in a new directory tree too.
    w("new.txt", "brand new\n");
    w("newdir/sub/deep.txt", &lines("deep", 3));
    fs::create_dir_all(root.join("emptydir")).unwrap();
    // Deletes: a file and a whole directory.
    fs::remove_file(root.join("old.txt")).unwrap();
    fs::remove_dir_all(root.join("gone")).unwrap();
    // A plain rename, a rename into another directory, a rename with an edit.
    fs::rename(root.join("a.txt"), root.join("a2.txt")).unwrap();
    fs::create_dir(root.join("manual")).unwrap();
    fs::rename(root.join("docs/guide.md"), root.join("manual/guide.md")).unwrap();
    fs::rename(root.join("src/util.rs"), root.join("src/helpers.rs")).unwrap();
    let mut helpers = fs::read_to_string(root.join("src/helpers.rs")).unwrap();
    helpers.push_str("fn extra() {}\n");
    fs::write(root.join("src/helpers.rs"), helpers).unwrap();
    // An editor's save-as: a new name written, the old one deleted (no rename(2)).
    let mut lib = fs::read_to_string(root.join("src/lib.rs")).unwrap();
    lib = lib.replace("lib line 3\n", "lib line three\n");
    w("src/library.rs", &lib);
    fs::remove_file(root.join("src/lib.rs")).unwrap();
    // A rename whose content is then replaced entirely: git sees a deletion and an addition.
    fs::rename(root.join("notes.txt"), root.join("notes2.txt")).unwrap();
    fs::write(root.join("notes2.txt"), lines("unrelated", 30)).unwrap();
}

#[test]
fn diff_stat_equals_git_diff_stat() {
    if !can_mount("diff_stat_equals_git_diff_stat") {
        return;
    }
    let files = [
        ("src/main.rs", lines("main", 40)),
        ("src/util.rs", lines("util", 20)),
        ("src/lib.rs", lines("lib", 25)),
        ("README.md", "readme\n".to_string()),
        ("old.txt", lines("old", 50)),
        ("a.txt", lines("a", 50)),
        ("docs/guide.md", lines("guide", 12)),
        ("gone/one.txt", lines("one", 4)),
        ("gone/inner/two.txt", lines("two", 6)),
        ("notes.txt", lines("notes", 30)),
    ];
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, s)| (*p, s.as_str())).collect();
    let live = Live::new(&refs);
    let native = tempfile::tempdir().unwrap();
    for (p, s) in &files {
        let p = native.path().join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    }
    git(native.path(), &["init", "-q"]);
    git(native.path(), &["add", "-A"]);
    git(native.path(), &["commit", "-qm", "base"]);

    let mp = live.mount();
    session(&mp);
    session(native.path());
    git(native.path(), &["add", "-A"]);

    let expected = git(native.path(), &["diff", "--cached", "--stat"]);
    assert_eq!(
        expected,
        git(native.path(), &["diff", "--cached", "--stat", "-M"])
    );
    assert!(
        expected.contains("=>"),
        "the session has renames: {expected}"
    );
    let out = live.wsfs(["diff", "w", "--stat"]);
    let got = String::from_utf8_lossy(&out.stdout);
    assert_eq!(got, expected, "wsfs diff --stat vs git diff --stat");

    // The full diff names renames as git does.
    let full = live.ok(["diff", "w", "--color", "never"]);
    for line in [
        "similarity index 100%\nrename from a.txt\nrename to a2.txt",
        "rename from src/util.rs\nrename to src/helpers.rs",
        "rename from src/lib.rs\nrename to src/library.rs",
    ] {
        assert!(full.contains(line), "missing {line:?} in:\n{full}");
    }
    assert!(!full.contains("rename to notes2.txt"), "{full}");
}

#[test]
fn scratch_and_git_churn_are_summarised_not_listed() {
    if !can_mount("scratch_and_git_churn_are_summarised_not_listed") {
        return;
    }
    let live = Live::new(&[
        (".gitignore", "node_modules/\ntarget/\n"),
        (".git/HEAD", "ref: refs/heads/main\n"),
        ("src/main.rs", "fn main() {}\n"),
    ]);
    let mp = live.mount();
    fs::write(mp.join("src/main.rs"), "fn main() { println!(); }\n").unwrap();
    for i in 0..30 {
        let d = mp.join(format!("node_modules/pkg{i}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("index.js"), "x").unwrap();
    }
    fs::create_dir_all(mp.join("target/debug")).unwrap();
    fs::write(mp.join("target/debug/app"), "bin").unwrap();
    fs::create_dir_all(mp.join(".git/objects/ab")).unwrap();
    fs::write(mp.join(".git/objects/ab/cdef"), "obj").unwrap();
    fs::write(mp.join(".git/HEAD"), "ref: refs/heads/other\n").unwrap();

    // 30 packages × (dir + file) + node_modules itself = 61, target/ + debug/ + app = 3.
    let status = live.ok(["status", "w"]);
    assert_eq!(
        status,
        "M  .git/HEAD\n\
         M  src/main.rs\n\
         64 scratch paths under node_modules/, target/ — wsfs status --scratch\n\
         3 git object/log paths under .git/objects/ — wsfs status --all\n",
    );
    let scratch = live.ok(["status", "w", "--scratch"]);
    assert_eq!(scratch.lines().count(), 64, "{scratch}");
    assert!(
        scratch.lines().all(|l| l.ends_with("[scratch]")),
        "{scratch}"
    );
    let all = live.ok(["status", "w", "--all"]);
    assert_eq!(all.lines().count(), 2 + 64 + 3, "{all}");

    let list = live.json(["list"]);
    let row = &list[0];
    assert_eq!(
        (&row["pending"], &row["scratch"], &row["git_churn"]),
        (&2.into(), &64.into(), &3.into()),
        "{row}"
    );
    // `status --json` is the shown list; the API without `show` still returns everything.
    assert_eq!(live.json(["status", "w"]).as_array().unwrap().len(), 2);
    assert_eq!(
        live.json(["status", "w", "--all"])
            .as_array()
            .unwrap()
            .len(),
        69
    );

    let stat = live.ok(["diff", "w", "--stat"]);
    assert!(
        !stat.contains("node_modules") && !stat.contains(".git/objects"),
        "{stat}"
    );

    // A commit that leaves scratch pending says so; git churn is committed.
    let commit = live.ok(["commit", "w"]);
    assert!(commit.contains("64 scratch paths left pending"), "{commit}");
    assert!(live.project.join(".git/objects/ab/cdef").exists());
    let again = live.ok(["commit", "w"]);
    assert!(
        again.contains("nothing to commit but scratch") && again.contains("64 scratch paths"),
        "{again}"
    );
    assert_eq!(
        live.json(["list"])[0]["pending"],
        0,
        "HEAD and main.rs committed"
    );
    assert_eq!(live.json(["list"])[0]["git_churn"], 0);
}

#[test]
fn a_stray_gitignore_outside_git_makes_nothing_scratch() {
    if !can_mount("a_stray_gitignore_outside_git_makes_nothing_scratch") {
        return;
    }
    // Like Debian's linux-source tree: a `.gitignore` whose `/*` ignores everything, no `.git`.
    let live = Live::new(&[(".gitignore", "/*\n"), ("Makefile", "all:\n")]);
    let mp = live.mount();
    fs::write(mp.join("Makefile"), "all: build\n").unwrap();
    fs::write(mp.join("new.c"), "int x;\n").unwrap();
    assert_eq!(live.ok(["status", "w"]), "M  Makefile\nA  new.c\n");
    assert_eq!(live.json(["list"])[0]["scratch"], 0);
}

/// Two workspaces on one project (issue 14, "the right workspace, always"): from the project
/// directory, a command that does not name one stops with exit 2, names both and asks for
/// `-w NAME`, and changes nothing; inside a mountpoint the mount's own workspace is meant;
/// `-w` works on every command that takes a workspace; `status` marks paths the other
/// workspace changed too (`[also in NAME]`, `also_in` in JSON).
#[test]
fn two_workspaces_on_one_project_need_a_name() {
    if !can_mount("two_workspaces_on_one_project_need_a_name") {
        return;
    }
    let live = Live::new(&[
        ("shared.txt", "base\n"),
        ("only_a.txt", "a\n"),
        ("only_b.txt", "b\n"),
        ("sub/x.txt", "x\n"),
    ]);
    let a = live.mount_as(&live.project, "a");
    let b = live.mount_as(&live.project, "b");
    fs::write(a.join("shared.txt"), "from a\n").unwrap();
    fs::write(a.join("only_a.txt"), "a edit\n").unwrap();
    fs::write(b.join("shared.txt"), "from b\n").unwrap();
    fs::write(b.join("only_b.txt"), "b edit\n").unwrap();
    let host = Live::snapshot(&live.project);

    for dir in [live.project.clone(), live.project.join("sub")] {
        for cmd in [
            &["status"][..],
            &["diff"],
            &["commit"],
            &["commit", "shared.txt"],
            &["discard"],
            &["log"],
            &["verify"],
            &["unmount"],
        ] {
            let out = live.wsfs_in(&dir, cmd);
            let msg = text(&out);
            assert_eq!(out.status.code(), Some(2), "{cmd:?} in {dir:?}: {msg}");
            assert!(
                msg.contains("a, b") && msg.contains("-w NAME"),
                "{cmd:?}: {msg}"
            );
        }
    }
    assert_eq!(
        Live::snapshot(&live.project),
        host,
        "a refused command acted"
    );
    assert!(fs::read_to_string(a.join("shared.txt")).unwrap() == "from a\n");
    assert!(fs::read_to_string(b.join("shared.txt")).unwrap() == "from b\n");

    // Inside a mountpoint, its own workspace; the other one's overlapping change is marked.
    let out = live.wsfs_in(&a, ["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(status.contains("M  shared.txt  [also in b]"), "{status}");
    assert!(status.contains("M  only_a.txt\n"), "{status}");
    assert!(!status.contains("only_b"), "{status}");

    // -w, from the project directory, on every command that takes a workspace.
    let out = live.wsfs_in(&live.project, ["status", "-w", "b"]);
    assert!(out.status.success(), "{}", text(&out));
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        status.contains("M  shared.txt  [also in a]") && status.contains("M  only_b.txt\n"),
        "{status}"
    );
    let json = live.wsfs_in(&live.project, ["--json", "status", "-w", "a"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let also: Vec<(String, serde_json::Value)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["also_in"].clone(),
            )
        })
        .collect();
    assert_eq!(
        also,
        [
            ("only_a.txt".to_string(), serde_json::json!([])),
            ("shared.txt".to_string(), serde_json::json!(["b"])),
        ],
        "{json}"
    );
    for cmd in [
        &["diff", "-w", "a"][..],
        &["diff", "-w", "a", "shared.txt"],
        &["log", "-w", "a"],
        &["verify", "-w", "b"],
        &["commit", "-w", "b", "--dry-run"],
    ] {
        let out = live.wsfs_in(&live.project, cmd);
        assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    }
    assert_eq!(Live::snapshot(&live.project), host);

    // Committing both: the second commit of the shared path is a conflict (exit 3).
    let out = live.wsfs_in(&live.project, ["commit", "-w", "a"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = live.wsfs_in(&live.project, ["commit", "-w", "b"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(live.project.join("shared.txt")).unwrap(),
        "from a\n"
    );
    let out = live.wsfs_in(&live.project, ["discard", "-w", "b", "shared.txt"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = live.wsfs_in(&live.project, ["unmount", "-w", "b"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// A project's `[write-through]` rule (a shared build cache) sends its changes to the host
/// through the running daemon within a moment, never listed as pending; a file held open for
/// writing is summarised (not yet on the host) until its last close; everything else waits
/// for review.
#[test]
fn write_through_paths_reach_the_host_without_review() {
    if !can_mount("write_through_paths_reach_the_host_without_review") {
        return;
    }
    let live = Live::new(&[
        (".wsfsignore", "[write-through]\nshared-cache/\n"),
        ("src/lib.rs", "// lib\n"),
    ]);
    let mp = live.mount();
    fs::create_dir_all(mp.join("shared-cache/ab")).unwrap();
    fs::write(mp.join("shared-cache/ab/obj"), "compiled").unwrap();
    fs::write(mp.join("src/lib.rs"), "// changed\n").unwrap();
    let host = live.project.join("shared-cache/ab/obj");
    let arrived = live::eventually(std::time::Duration::from_secs(10), || {
        fs::read_to_string(&host).is_ok_and(|s| s == "compiled")
    });
    assert!(arrived.is_some(), "not written through\n{}", live.log());
    assert_eq!(
        fs::read_to_string(live.project.join("src/lib.rs")).unwrap(),
        "// lib\n"
    );
    assert_eq!(live.ok(["status", "w"]), "M  src/lib.rs\n");

    let mut open = fs::File::create(mp.join("shared-cache/held")).unwrap();
    std::io::Write::write_all(&mut open, b"partial").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(
        !live.project.join("shared-cache/held").exists(),
        "written through while open"
    );
    assert_eq!(
        live.ok(["status", "w"]),
        "M  src/lib.rs\n\
         1 write-through path not yet on the host under shared-cache/ — wsfs status --all\n"
    );
    drop(open);
    let arrived = live::eventually(std::time::Duration::from_secs(10), || {
        fs::read_to_string(live.project.join("shared-cache/held")).is_ok_and(|s| s == "partial")
    });
    assert!(
        arrived.is_some(),
        "not written through after the close\n{}",
        live.log()
    );
    assert_eq!(live.ok(["status", "w"]), "M  src/lib.rs\n");
}
