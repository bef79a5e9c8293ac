//! After a commit or discard, the view, the upper layer and the kernel's caches are exactly
//! what a fresh mount would give (issue 12, defects 2 and 6), and a commit whose daemon dies
//! mid-stream says what that means and is completed by the next start (defect 9). All through
//! a real mount, driven by the real `wsfs` binary.

mod live;
mod prereq;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use live::{can_mount, eventually, Live};

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// `utime(path, NULL)`: what git does to "freshen" an object it would write again.
fn utime_now(p: &Path) {
    let c = cpath(p);
    // SAFETY: a valid NUL-terminated path; a null `times` means "now".
    let rc = unsafe { libc::utime(c.as_ptr(), std::ptr::null()) };
    assert_eq!(
        rc,
        0,
        "utime {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

fn set_user_xattr(p: &Path) {
    let c = cpath(p);
    let name = CString::new("user.wsfs-test").unwrap();
    // SAFETY: valid NUL-terminated strings and a 1-byte value buffer.
    let rc = unsafe { libc::setxattr(c.as_ptr(), name.as_ptr(), b"v".as_ptr().cast(), 1, 0) };
    assert_eq!(
        rc,
        0,
        "setxattr {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// Metadata-only changes (git's utime freshening, chmod, an xattr) are committed or settled,
/// and the commit leaves none of them in the upper layer: the next start re-records nothing,
/// `verify` is clean and nothing is pending.
#[test]
fn commit_leaves_no_applied_path_in_the_upper_layer() {
    if !can_mount("commit_leaves_no_applied_path_in_the_upper_layer") {
        return;
    }
    let files: Vec<(String, String)> = (0..20)
        .map(|i| {
            (
                format!(".git/objects/{:02x}/obj{i}", i % 4),
                format!("object {i}\n"),
            )
        })
        .chain([
            ("run.sh".to_string(), "echo hi\n".to_string()),
            ("tagged".to_string(), "x\n".to_string()),
        ])
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let mut live = Live::new(&refs);
    let mp = live.mount();
    for (p, _) in &files[..20] {
        utime_now(&mp.join(p));
    }
    std::fs::set_permissions(mp.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    set_user_xattr(&mp.join("tagged"));
    assert!(
        !live.upper_files().is_empty(),
        "the changes were not copied up"
    );
    let report = live.json(["commit", "w"]);
    assert!(
        report["conflicts"].as_array().unwrap().is_empty(),
        "{report}"
    );
    let mode = std::fs::metadata(live.project.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "the chmod was not committed");
    assert_eq!(
        live.upper_files(),
        Vec::<PathBuf>::new(),
        "applied paths left in the upper layer"
    );
    assert_eq!(live.ok(["status", "w"]), "");
    live.ok(["verify", "w"]);
    live.stop();
    live.start();
    let log = live.log();
    assert!(
        !log.contains("re-recording"),
        "the restart re-recorded entries:\n{log}"
    );
    assert!(
        !log.contains("adopting"),
        "the restart adopted entries:\n{log}"
    );
    assert_eq!(live.ok(["status", "w"]), "");
    live.ok(["verify", "w"]);
}

/// After `discard` (everything, or one path) and after `commit`, names can be made again the
/// way shells and tools make them, and host files come back, with no cache drop: the
/// kernel's dentries and attributes are as true as on a fresh mount.
#[test]
fn discard_and_commit_leave_the_kernel_caches_true() {
    if !can_mount("discard_and_commit_leave_the_kernel_caches_true") {
        return;
    }
    let live = Live::new(&[
        ("lower.txt", "lower\n"),
        ("gone.txt", "host\n"),
        ("d/f", "f\n"),
    ]);
    let mp = live.mount();
    let read = |p: &str| std::fs::read_to_string(mp.join(p));

    // Discard everything, then re-create with a plain `>` (O_CREAT|O_TRUNC, no O_EXCL).
    std::fs::write(mp.join("new.txt"), "b\n").unwrap();
    assert_eq!(read("new.txt").unwrap(), "b\n");
    live.ok(["discard", "w"]);
    std::fs::write(mp.join("new.txt"), "c\n").expect("re-create after discard of everything");
    assert_eq!(read("new.txt").unwrap(), "c\n");
    live.ok(["discard", "w"]);
    assert!(
        read("new.txt").is_err(),
        "a discarded file is still visible"
    );

    // Discard, then mkdir and symlink at the same names.
    std::fs::write(mp.join("n1"), "b\n").unwrap();
    std::fs::write(mp.join("n2"), "b\n").unwrap();
    live.ok(["discard", "w"]);
    std::fs::create_dir(mp.join("n1")).expect("mkdir after discard");
    std::os::unix::fs::symlink("lower.txt", mp.join("n2")).expect("symlink after discard");
    assert_eq!(read("n2").unwrap(), "lower\n");
    live.ok(["discard", "w"]);

    // Discard a directory tree, then re-create inside it.
    std::fs::create_dir_all(mp.join("t/u")).unwrap();
    std::fs::write(mp.join("t/u/f"), "1\n").unwrap();
    live.ok(["discard", "w"]);
    std::fs::create_dir_all(mp.join("t/u")).expect("mkdir -p after discard");
    std::fs::write(mp.join("t/u/f"), "2\n").expect("write inside a re-made tree");
    assert_eq!(read("t/u/f").unwrap(), "2\n");
    live.ok(["discard", "w"]);

    // A file that replaced a host file, by rewrite and by rename over it: discard shows the
    // host content again.
    std::fs::write(mp.join("lower.txt"), "mine\n").unwrap();
    assert_eq!(read("lower.txt").unwrap(), "mine\n");
    live.ok(["discard", "w"]);
    assert_eq!(read("lower.txt").unwrap(), "lower\n");
    std::fs::write(mp.join("o"), "other\n").unwrap();
    std::fs::rename(mp.join("o"), mp.join("lower.txt")).unwrap();
    assert_eq!(read("lower.txt").unwrap(), "other\n");
    live.ok(["discard", "w"]);
    assert_eq!(read("lower.txt").unwrap(), "lower\n");

    // A deleted host file comes back (no stale negative entry).
    std::fs::remove_file(mp.join("gone.txt")).unwrap();
    assert!(read("gone.txt").is_err());
    live.ok(["discard", "w"]);
    assert_eq!(read("gone.txt").expect("a discarded deletion"), "host\n");

    // Discard of one path, then re-create.
    std::fs::write(mp.join("p.txt"), "b\n").unwrap();
    live.ok(["discard", "w", "p.txt"]);
    std::fs::write(mp.join("p.txt"), "c\n").expect("re-create after discard by path");
    live.ok(["discard", "w"]);

    // Commit, then re-create and delete through the mount.
    std::fs::write(mp.join("c.txt"), "b\n").unwrap();
    live.ok(["commit", "w"]);
    std::fs::write(mp.join("c.txt"), "c\n").expect("rewrite after commit");
    assert_eq!(read("c.txt").unwrap(), "c\n");
    std::fs::remove_file(mp.join("c.txt")).unwrap();
    live.ok(["commit", "w"]);
    assert!(!live.project.join("c.txt").exists());
    std::fs::write(mp.join("c.txt"), "d\n").expect("re-create after a committed deletion");
    assert_eq!(read("c.txt").unwrap(), "d\n");
    live.ok(["discard", "w"]);
    assert!(read("c.txt").is_err());
    assert_eq!(live.ok(["status", "w"]), "");
}

/// Stops the daemon a `wsfs` command started by itself (it is no child of the test).
fn stop_autostarted(socket: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let info = rt
        .block_on(wsfs::client::Client::new(socket).daemon())
        .expect("the restarted mountd answers");
    let pid = info.pid as i32;
    // SAFETY: plain kill(2) of the daemon this test had started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let gone = eventually(Duration::from_secs(60), || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    assert!(gone.is_some(), "the restarted mountd did not stop");
}

/// mountd dies in the middle of a commit: the CLI says the commit may be partly applied and
/// is completed when mountd starts (exit 1). Without autostart the next start completes it;
/// with autostart the CLI starts mountd itself and reports what recovery did.
#[test]
fn interrupted_commit_is_explained_and_completed() {
    if !can_mount("interrupted_commit_is_explained_and_completed") {
        return;
    }
    let files: Vec<(String, String)> = (0..12).map(|i| (format!("f{i}"), "old\n".into())).collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    for autostart in [false, true] {
        let mut live = Live::new(&refs);
        let mp = live.mount();
        for (p, _) in &files {
            std::fs::write(mp.join(p), "new\n").unwrap();
        }
        live.stop();
        // Step 6: after a few temporary files, before any rename into place.
        live.start_with(&[("WSFS_FAULT_COMMIT", "6")]);
        let out = if autostart {
            std::process::Command::new(live::wsfs_bin())
                .args(["commit", "w"])
                .current_dir(live.root.path())
                .env("WSFS_SOCKET", &live.socket)
                .env("WSFS_STATE_DIR", &live.state)
                .env("NO_COLOR", "1")
                .output()
                .unwrap()
        } else {
            live.wsfs(["commit", "w"])
        };
        live.wait_dead();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "autostart={autostart}: {stderr}"
        );
        assert!(
            stderr.contains("may be partly applied")
                && stderr.contains("completes it when it starts again"),
            "autostart={autostart}: {stderr}"
        );
        if autostart {
            assert!(
                stderr.contains("mountd completed commit")
                    && stderr.contains("12 of 12 path(s) applied"),
                "no report of the recovery: {stderr}"
            );
            // The daemon the CLI started serves the workspace.
            let out = std::process::Command::new(live::wsfs_bin())
                .args(["--no-autostart", "status", "w"])
                .env("WSFS_SOCKET", &live.socket)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), "");
            stop_autostarted(&live.socket);
        } else {
            assert!(stderr.contains("Start it"), "{stderr}");
            live.start();
            assert_eq!(live.ok(["status", "w"]), "");
        }
        for (p, _) in &files {
            assert_eq!(
                std::fs::read_to_string(live.project.join(p)).unwrap(),
                "new\n",
                "autostart={autostart}: {p} not committed"
            );
        }
    }
}

/// A commit of a new directory while a file in it is still open for writing: the directory
/// and its finished files reach the host, the open file stays pending and keeps working in
/// the mount, its last close is recorded (`verify` clean), the listing shows both, and the
/// next commit applies it. In the `open` mode, where mountd knows which files are open (in
/// `no-open` a commit settles written files first and takes them: docs/cli.md, open modes).
#[test]
fn a_directory_committed_around_an_open_file_keeps_the_file_and_the_journal_exact() {
    if !can_mount("a_directory_committed_around_an_open_file_keeps_the_file_and_the_journal_exact")
    {
        return;
    }
    let live = Live::new(&[]);
    let mp = live.root.path().join("mnt");
    let out = live.ok([
        std::ffi::OsStr::new("mount"),
        live.project.as_os_str(),
        std::ffi::OsStr::new("--name"),
        std::ffi::OsStr::new("w"),
        std::ffi::OsStr::new("--mountpoint"),
        mp.as_os_str(),
        std::ffi::OsStr::new("--open-mode"),
        std::ffi::OsStr::new("open"),
    ]);
    assert_eq!(out.trim(), mp.to_str().unwrap());
    std::fs::create_dir(mp.join("d")).unwrap();
    std::fs::write(mp.join("d/done"), "done\n").unwrap();
    let mut open = std::fs::File::create(mp.join("d/busy")).unwrap();
    std::io::Write::write_all(&mut open, b"one\n").unwrap();
    let out = live.wsfs(["commit", "w"]);
    assert!(out.status.success(), "{}", live::text(&out));
    assert_eq!(
        std::fs::read_to_string(live.project.join("d/done")).unwrap(),
        "done\n"
    );
    assert!(!live.project.join("d/busy").exists());
    std::io::Write::write_all(&mut open, b"two\n").unwrap();
    drop(open);
    let mut names: Vec<_> = std::fs::read_dir(mp.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["busy", "done"]);
    assert_eq!(
        std::fs::read_to_string(mp.join("d/busy")).unwrap(),
        "one\ntwo\n"
    );
    assert_eq!(live.ok(["status", "w"]), "A  d/busy\n");
    live.ok(["verify", "w"]);
    live.ok(["commit", "w"]);
    assert_eq!(
        std::fs::read_to_string(live.project.join("d/busy")).unwrap(),
        "one\ntwo\n"
    );
    live.ok(["verify", "w"]);
    assert_eq!(live.ok(["status", "w"]), "");
}
