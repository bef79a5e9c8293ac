//! Git hand-off on a real mount (issue 16): `wsfs diff --git` is a patch `git apply` takes to a
//! clean clone of the base, giving the merged view byte for byte (content, exec bit, symlink
//! targets) for every change kind; `wsfs export --branch` writes the same tree as one commit
//! on a new branch without touching the host's work tree, index, HEAD or current branch.
//! Needs root and /dev/fuse (see `live::can_mount`), and git.

mod live;
mod prereq;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use live::{can_mount, text, Live};

/// `git ARGS` in `dir` (identity and line endings fixed); asserts success, returns stdout.
fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    git_in(dir, args, None)
}

fn git_in(dir: &Path, args: &[&str], stdin: Option<&Path>) -> Vec<u8> {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args(["-c", "core.autocrlf=false", "-c", "core.quotePath=true"])
        .args(args);
    if let Some(f) = stdin {
        cmd.stdin(fs::File::open(f).unwrap());
    }
    let out = cmd.output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        text(&out)
    );
    out.stdout
}

fn lines(prefix: &str, n: usize) -> String {
    (0..n).map(|i| format!("{prefix} line {i}\n")).collect()
}

fn binary(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Odd names: a newline, a tab, a byte that is not UTF-8, a quote, a backslash, a space.
fn odd_names() -> Vec<&'static [u8]> {
    vec![
        b"nl\nname.txt",
        b"tab\tname.txt",
        b"bad\xffname.txt",
        b"quo\"te.txt",
        b"back\\slash.txt",
        b"sp ace.txt",
    ]
}

fn path(root: &Path, name: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(name))
}

/// A git project with its base committed, its clean clone, and a mount of it as workspace `w`.
struct Fixture {
    live: Live,
    mp: PathBuf,
    clone: PathBuf,
}

fn fixture() -> Fixture {
    let live = Live::new(&[
        (".gitignore", "build/\n"),
        ("edit.txt", &lines("edit", 30)),
        ("del.txt", &lines("del", 10)),
        ("ren.txt", &lines("ren", 50)),
        ("renedit.txt", &lines("renedit", 50)),
        ("run.sh", "#!/bin/sh\necho hi\n"),
        ("tc", "a file that becomes a symlink\n"),
        ("empty_old", ""),
        ("noeol.txt", "no newline at the end"),
        ("crlf.txt", "one\r\ntwo\rstill two\r\nthree\r\n"),
        ("dir/deep/file.txt", &lines("deep", 5)),
    ]);
    let p = &live.project;
    fs::write(p.join("bin.dat"), binary(1, 3000)).unwrap();
    fs::write(p.join("latin1.txt"), b"caf\xe9 au lait\n").unwrap();
    std::os::unix::fs::symlink("edit.txt", p.join("link")).unwrap();
    std::os::unix::fs::symlink("ren.txt", p.join("link2")).unwrap();
    git(p, &["init", "-q"]);
    git(p, &["config", "user.name", "Base Author"]);
    git(p, &["config", "user.email", "base@example.com"]);
    git(p, &["add", "-A"]);
    git(p, &["commit", "-qm", "base"]);
    let clone = live.root.path().join("clone");
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(p)
        .arg(&clone)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mp = live.mount();
    Fixture { live, mp, clone }
}

/// Every change kind, made through the mount.
fn change_everything(mp: &Path) {
    let w = |name: &str, data: &[u8]| fs::write(mp.join(name), data).unwrap();
    w(
        "edit.txt",
        lines("edit", 30)
            .replace("edit line 7\n", "edited seven\n")
            .as_bytes(),
    );
    w("new.txt", b"brand new\n");
    fs::remove_file(mp.join("del.txt")).unwrap();
    fs::rename(mp.join("ren.txt"), mp.join("ren2.txt")).unwrap();
    fs::create_dir(mp.join("sub")).unwrap();
    fs::rename(mp.join("renedit.txt"), mp.join("sub/renedit.txt")).unwrap();
    let mut r = fs::read(mp.join("sub/renedit.txt")).unwrap();
    r.extend_from_slice(b"one more line\n");
    w("sub/renedit.txt", &r);
    fs::set_permissions(mp.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("new.txt", mp.join("newlink")).unwrap();
    fs::remove_file(mp.join("link2")).unwrap();
    std::os::unix::fs::symlink("edit.txt", mp.join("link2")).unwrap();
    fs::remove_file(mp.join("tc")).unwrap();
    std::os::unix::fs::symlink("edit.txt", mp.join("tc")).unwrap();
    let mut b = binary(1, 3000);
    b[100..200].copy_from_slice(&binary(9, 100));
    w("bin.dat", &b);
    w("new.bin", &binary(7, 10_000));
    w("empty_new", b"");
    fs::remove_file(mp.join("empty_old")).unwrap();
    w("noeol.txt", b"no newline at the end, still");
    w("crlf.txt", b"one\r\ntwo\rSTILL two\r\nthree\r\n");
    w("latin1.txt", b"caf\xe9 noir\n");
    fs::remove_dir_all(mp.join("dir")).unwrap();
    for (i, name) in odd_names().into_iter().enumerate() {
        fs::write(path(mp, name), format!("odd name {i}\n")).unwrap();
    }
    // What git cannot hold or commit would not apply: left out.
    let fifo = std::ffi::CString::new(mp.join("fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    w(".git/description", b"changed by the agent\n");
    w(".env", b"TOKEN=workspace-only\n");
    fs::create_dir(mp.join("build")).unwrap();
    w("build/out.o", b"scratch\n");
}

/// Path → (kind: `f` file, `x` executable, `l` symlink; content or target).
type View = BTreeMap<Vec<u8>, (char, Vec<u8>)>;

/// What git keeps of a tree: every file (content, exec bit) and symlink (target), below
/// `root`, leaving out `.git`, the FIFO, the workspace's secret and scratch.
fn git_view(root: &Path) -> View {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            if [&b".git"[..], b".env", b"fifo", b"build"].contains(&rel.as_slice()) {
                continue;
            }
            let meta = fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.file_type().is_symlink() {
                let t = fs::read_link(e.path()).unwrap();
                out.insert(rel, ('l', t.as_os_str().as_bytes().to_vec()));
            } else {
                let x = if meta.mode() & 0o100 != 0 { 'x' } else { 'f' };
                out.insert(rel, (x, fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

#[test]
fn diff_git_round_trips_through_git_apply() {
    if !can_mount("diff_git_round_trips_through_git_apply") {
        return;
    }
    let f = fixture();
    change_everything(&f.mp);
    let out = f.live.wsfs(["diff", "w", "--git"]);
    assert!(out.status.success(), "{}", text(&out));
    let patch = String::from_utf8(out.stdout.clone()).unwrap();
    // Every kind shows in git's own form.
    for needle in [
        "rename from ren.txt\nrename to ren2.txt\n",
        "similarity index 100%\nrename from ren.txt",
        "rename from renedit.txt\nrename to sub/renedit.txt\nindex ",
        "old mode 100644\nnew mode 100755\n",
        "diff --git a/newlink b/newlink\nnew file mode 120000\n",
        "deleted file mode 100644\n",
        "diff --git a/tc b/tc\ndeleted file mode 100644\n",
        "diff --git a/tc b/tc\nnew file mode 120000\n",
        "GIT binary patch\nliteral 10000\n",
        "diff --git a/empty_new b/empty_new\nnew file mode 100644\nindex 0000000000000000000000000000000000000000..e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\n",
        "\\ No newline at end of file\n",
        "diff --git \"a/nl\\nname.txt\" \"b/nl\\nname.txt\"\n",
        "diff --git \"a/bad\\377name.txt\" \"b/bad\\377name.txt\"\n",
        "diff --git \"a/quo\\\"te.txt\" \"b/quo\\\"te.txt\"\n",
        "+++ b/sp ace.txt\t\n",
    ] {
        assert!(patch.contains(needle), "missing {needle:?} in:\n{patch}");
    }
    for absent in ["fifo", ".git/description", ".env", "build/out.o"] {
        assert!(
            !patch.contains(&format!("b/{absent}")),
            "{absent} in:\n{patch}"
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    for left in [
        "fifo: a FIFO",
        ".git/description: inside a .git",
        ".env: a workspace-only secret",
    ] {
        assert!(
            stderr.contains(left),
            "{left:?} not named on stderr: {stderr}"
        );
    }
    // The JSON document carries the same patch.
    let doc = f.live.json(["diff", "w", "--git"]);
    assert_eq!(doc["patch"].as_str().unwrap(), patch);

    // `git apply --index` checks binary patches against the full blob ids too.
    let file = f.live.root.path().join("changes.patch");
    fs::write(&file, &patch).unwrap();
    git(&f.clone, &["apply", "--index", file.to_str().unwrap()]);
    let want = git_view(&f.mp);
    let got = git_view(&f.clone);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "paths after git apply"
    );
    for (p, w) in &want {
        assert_eq!(&got[p], w, "{}", String::from_utf8_lossy(p));
    }
    // Git reads the applied index as the same change set: nothing left unstaged.
    assert!(git(&f.clone, &["diff", "--name-only"]).is_empty());
}

/// `git status --porcelain`, HEAD, the current branch and the work tree of the host.
fn host_state(p: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>, View) {
    (
        git(p, &["status", "--porcelain", "--untracked-files=all"]),
        git(p, &["rev-parse", "HEAD"]),
        git(p, &["symbolic-ref", "HEAD"]),
        git_view(p),
    )
}

fn line(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap().trim().to_string()
}

#[test]
fn export_branch_commits_the_changes_and_leaves_the_host_alone() {
    if !can_mount("export_branch_commits_the_changes_and_leaves_the_host_alone") {
        return;
    }
    let f = fixture();
    let p = f.live.project.clone();
    change_everything(&f.mp);
    let before = host_state(&p);
    let head = line(git(&p, &["rev-parse", "HEAD"]));

    let out = f.live.ok([
        "export",
        "w",
        "--branch",
        "agent/work",
        "-m",
        "agent: turn 1",
    ]);
    let commit = out.trim().to_string();
    assert_eq!(host_state(&p), before, "the host changed");
    assert_eq!(line(git(&p, &["rev-parse", "agent/work"])), commit);
    assert_eq!(line(git(&p, &["rev-parse", "agent/work^"])), head);
    assert_eq!(
        line(git(&p, &["log", "-1", "--format=%s", "agent/work"])),
        "agent: turn 1"
    );
    assert_eq!(
        git(&p, &["rev-list", "--count", "HEAD..agent/work"]),
        b"1\n"
    );

    // The commit's tree is the base plus the patch: the clone with the patch applied.
    let file = f.live.root.path().join("changes.patch");
    fs::write(&file, f.live.ok(["diff", "w", "--git"])).unwrap();
    git(&f.clone, &["apply", "--index", file.to_str().unwrap()]);
    assert_eq!(
        line(git(&f.clone, &["write-tree"])),
        line(git(&p, &["rev-parse", "agent/work^{tree}"]))
    );
    // And every blob and link of the branch is the merged view's.
    let mut from_git = BTreeMap::new();
    let listing = git(&p, &["ls-tree", "-r", "-z", "agent/work"]);
    for rec in listing.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let tab = rec.iter().position(|&b| b == b'\t').unwrap();
        let meta = String::from_utf8_lossy(&rec[..tab]).to_string();
        let mut it = meta.split(' ');
        let (mode, id) = (it.next().unwrap(), it.nth(1).unwrap());
        let kind = match mode {
            "120000" => 'l',
            "100755" => 'x',
            _ => 'f',
        };
        let data = git(&p, &["cat-file", "blob", id]);
        from_git.insert(rec[tab + 1..].to_vec(), (kind, data));
    }
    assert_eq!(from_git, git_view(&f.mp));

    // JSON: the report names the parent and what was left out.
    let report = f.live.json(["export", "w", "--branch", "agent/json"]);
    assert_eq!(report["parent"].as_str().unwrap(), head);
    assert_eq!(
        report["tree"].as_str().unwrap(),
        line(git(&p, &["rev-parse", "agent/work^{tree}"]))
    );
    let left: Vec<&str> = report["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    assert_eq!(left, [".env", ".git/description", "fifo"]);

    // Refusals: an existing branch without --force, the current branch even with it, a bad
    // name; none of them moves anything.
    let refused = f.live.wsfs(["export", "w", "--branch", "agent/work"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("branch agent/work exists"),
        "{}",
        text(&refused)
    );
    let current = line(git(&p, &["symbolic-ref", "--short", "HEAD"]));
    let refused = f
        .live
        .wsfs(["export", "w", "--branch", &current, "--force"]);
    assert!(
        text(&refused).contains("is checked out"),
        "{}",
        text(&refused)
    );
    let refused = f.live.wsfs(["export", "w", "--branch", "bad..name"]);
    assert!(
        text(&refused).contains("not a valid branch name"),
        "{}",
        text(&refused)
    );
    assert_eq!(line(git(&p, &["rev-parse", "agent/work"])), commit);
    assert_eq!(host_state(&p), before);

    // --force replaces the branch (here with only some paths).
    let report = f.live.json([
        "export",
        "w",
        "edit.txt",
        "--branch",
        "agent/work",
        "--force",
    ]);
    assert_eq!(report["replaced"].as_str().unwrap(), commit);
    assert_eq!(report["paths"], serde_json::json!(["edit.txt"]));
    assert_eq!(
        git(&p, &["diff", "--name-only", "HEAD", "agent/work"]),
        b"edit.txt\n"
    );

    // A host edit not committed to HEAD, at a path the export changes: refused, named.
    fs::write(p.join("edit.txt"), "host edit, not committed\n").unwrap();
    let refused = f.live.wsfs(["export", "w", "--branch", "agent/drift"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("edit.txt: HEAD has 100644"),
        "{}",
        text(&refused)
    );
    let missing = Command::new("git")
        .arg("-C")
        .arg(&p)
        .args(["rev-parse", "-q", "--verify", "refs/heads/agent/drift"])
        .output()
        .unwrap();
    assert!(!missing.status.success(), "no branch written");
}

#[test]
fn export_refuses_a_project_that_is_not_a_git_repository() {
    if !can_mount("export_refuses_a_project_that_is_not_a_git_repository") {
        return;
    }
    let live = Live::new(&[("a.txt", "a\n")]);
    let mp = live.mount();
    fs::write(mp.join("a.txt"), "b\n").unwrap();
    let out = live.wsfs(["export", "w", "--branch", "x"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not a git repository") && text(&out).contains("wsfs diff --git"),
        "{}",
        text(&out)
    );
    // The patch works without a repository.
    let patch = live.ok(["diff", "w", "--git"]);
    assert!(patch.contains("-a\n+b\n"), "{patch}");
}

#[test]
fn export_writes_objects_as_the_repository_owner() {
    if !can_mount("export_writes_objects_as_the_repository_owner") {
        return;
    }
    let live = Live::new(&[("a.txt", "a\n")]);
    let p = live.project.clone();
    // The other user must reach the project through the test's private temporary directory.
    fs::set_permissions(live.root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    git(&p, &["init", "-q"]);
    git(&p, &["config", "user.name", "Owner"]);
    git(&p, &["config", "user.email", "owner@example.com"]);
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-qm", "base"]);
    // The project belongs to another user (nobody), as a user's checkout does under a root
    // mountd.
    let owner = 65534;
    let chown = Command::new("chown")
        .args(["-R", &format!("{owner}:{owner}")])
        .arg(&p)
        .status()
        .unwrap();
    assert!(chown.success());
    let mp = live.mount();
    fs::write(mp.join("a.txt"), "by the agent\n").unwrap();
    let out = live.wsfs(["export", "w", "--branch", "agent"]);
    assert!(out.status.success(), "{}\n{}", text(&out), live.log());
    let commit = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let obj = p.join(".git/objects").join(&commit[..2]).join(&commit[2..]);
    assert_eq!(
        fs::metadata(&obj).unwrap().uid(),
        owner,
        "{}",
        obj.display()
    );
    assert_eq!(
        fs::metadata(p.join(".git/refs/heads/agent")).unwrap().uid(),
        owner
    );
    // No temporary index is left behind.
    let leftovers: Vec<_> = fs::read_dir(p.join(".git"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("wsfs-export"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
