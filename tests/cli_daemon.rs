//! The daemon and the CLI end to end: a real `mountd`, the real `wsfs` binary, plain syscalls on
//! a real FUSE mount. Tests that mount need root and /dev/fuse (see `live::can_mount`); those
//! of the control socket alone (malformed requests, other users) need no FUSE.

mod live;

use live::text;
mod prereq;

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use live::{can_mount, eventually, Live};

#[test]
fn edits_stay_in_the_overlay_until_commit() {
    if !can_mount("edits_stay_in_the_overlay_until_commit") {
        return;
    }
    let live = Live::new(&[
        ("src/main.c", "int main() { return 0; }\n"),
        ("README", "hello\n"),
        ("old.txt", "to delete\n"),
        ("mv/a", "moved\n"),
        ("run.sh", "#!/bin/sh\n"),
    ]);
    let before = Live::snapshot(&live.project);
    let mp = live.mount();

    std::fs::write(mp.join("src/main.c"), "int main() { return 1; }\n").unwrap();
    std::fs::write(mp.join("new.txt"), "new\n").unwrap();
    std::fs::remove_file(mp.join("old.txt")).unwrap();
    std::fs::rename(mp.join("mv"), mp.join("moved")).unwrap();
    std::os::unix::fs::symlink("src/main.c", mp.join("link")).unwrap();
    std::fs::create_dir(mp.join("empty")).unwrap();
    std::fs::set_permissions(mp.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();

    // The host is untouched; the mount shows the edits.
    assert_eq!(Live::snapshot(&live.project), before);
    assert_eq!(std::fs::read(mp.join("moved/a")).unwrap(), b"moved\n");

    let status = live.ok(["status", "w"]);
    for line in [
        "M  src/main.c",
        "A  new.txt",
        "D  old.txt",
        "R  mv/a -> moved/a",
        "A  link",
        "A  empty",
        "M  run.sh",
    ] {
        assert!(
            status.contains(line),
            "missing {line:?} in status:\n{status}"
        );
    }
    let json = live.json(["status", "w"]);
    let kinds: Vec<(String, String)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("old.txt".into(), "deleted".into())),
        "{kinds:?}"
    );

    let diff = live.ok(["diff", "w", "src/main.c"]);
    assert!(diff.contains("-int main() { return 0; }"), "{diff}");
    assert!(diff.contains("+int main() { return 1; }"), "{diff}");
    assert!(
        !diff.contains("new.txt"),
        "diff limited to the path asked:\n{diff}"
    );
    let stat = live.ok(["diff", "w", "--stat"]);
    assert!(stat.contains("src/main.c"), "{stat}");
    assert!(stat.contains("changed"), "{stat}");

    // Name inferred from the current directory (inside the project).
    let inferred = live.wsfs_in(&live.project.join("src"), ["status"]);
    assert!(inferred.status.success(), "{}", text(&inferred));
    assert_eq!(String::from_utf8_lossy(&inferred.stdout), status);

    let report = live.json(["commit", "w"]);
    assert!(
        report["conflicts"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(
        std::fs::read_to_string(live.project.join("src/main.c")).unwrap(),
        "int main() { return 1; }\n"
    );
    assert_eq!(
        std::fs::read_to_string(live.project.join("new.txt")).unwrap(),
        "new\n"
    );
    assert!(!live.project.join("old.txt").exists());
    assert!(!live.project.join("mv").exists());
    assert_eq!(
        std::fs::read(live.project.join("moved/a")).unwrap(),
        b"moved\n"
    );
    assert_eq!(
        std::fs::read_link(live.project.join("link")).unwrap(),
        std::path::Path::new("src/main.c")
    );
    assert!(live.project.join("empty").is_dir());
    let mode = std::fs::metadata(live.project.join("run.sh"))
        .unwrap()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o755);
    assert_eq!(live.ok(["status", "w"]), "");
    // After the commit the container sees the committed files (now from the host).
    assert_eq!(Live::snapshot(&mp), Live::snapshot(&live.project));
    let verify = live.ok(["verify", "w"]);
    assert!(verify.contains("hash chain intact"), "{verify}");
    let log = live.ok(["log", "w"]);
    assert!(log.contains("commit_end"), "{log}");
}

#[test]
fn conflicts_refuse_and_force_keeps_a_backup() {
    if !can_mount("conflicts_refuse_and_force_keeps_a_backup") {
        return;
    }
    let live = Live::new(&[("a.txt", "base\n"), ("b.txt", "b\n")]);
    let mp = live.mount();
    std::fs::write(mp.join("a.txt"), "container\n").unwrap();
    std::fs::write(mp.join("b.txt"), "container b\n").unwrap();
    std::fs::write(live.project.join("a.txt"), "host edit\n").unwrap();

    let out = live.wsfs(["commit", "w"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("a.txt"), "{}", text(&out));
    // Nothing applied: neither the conflicting file nor the clean one.
    assert_eq!(
        std::fs::read_to_string(live.project.join("a.txt")).unwrap(),
        "host edit\n"
    );
    assert_eq!(
        std::fs::read_to_string(live.project.join("b.txt")).unwrap(),
        "b\n"
    );
    // The container's version is still there.
    assert_eq!(
        std::fs::read_to_string(mp.join("a.txt")).unwrap(),
        "container\n"
    );

    let json_out = live.wsfs(["--json", "commit", "w"]);
    assert_eq!(json_out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(report["conflicts"][0]["path"], "a.txt");
    assert_eq!(report["conflicts"][0]["reason"], "host_changed");

    let forced = live.json(["commit", "w", "--force"]);
    assert_eq!(
        std::fs::read_to_string(live.project.join("a.txt")).unwrap(),
        "container\n"
    );
    assert_eq!(
        std::fs::read_to_string(live.project.join("b.txt")).unwrap(),
        "container b\n"
    );
    let backup = std::path::PathBuf::from(forced["backup_dir"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(backup.join("a.txt")).unwrap(),
        "host edit\n"
    );
}

#[test]
fn protected_paths_need_the_allow_flag() {
    if !can_mount("protected_paths_need_the_allow_flag") {
        return;
    }
    let live = Live::new(&[(".git/config", "[core]\n"), ("x", "x")]);
    let mp = live.mount();
    std::fs::write(mp.join(".git/config"), "[core]\n\thooksPath = /tmp/evil\n").unwrap();
    let out = live.wsfs(["commit", "w"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("protected"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(live.project.join(".git/config")).unwrap(),
        "[core]\n"
    );
    live.ok(["commit", "w", "--allow-protected"]);
    assert!(std::fs::read_to_string(live.project.join(".git/config"))
        .unwrap()
        .contains("hooksPath"));
}

#[test]
fn host_edits_show_through_live() {
    if !can_mount("host_edits_show_through_live") {
        return;
    }
    let live = Live::new(&[("watched.txt", "v1\n"), ("touched.txt", "t1\n")]);
    let mp = live.mount();
    assert_eq!(
        std::fs::read_to_string(mp.join("watched.txt")).unwrap(),
        "v1\n"
    );
    std::fs::write(mp.join("touched.txt"), "container\n").unwrap();

    std::fs::write(live.project.join("watched.txt"), "v2, longer\n").unwrap();
    std::fs::write(live.project.join("created.txt"), "new on host\n").unwrap();
    std::fs::write(live.project.join("touched.txt"), "host\n").unwrap();
    let seen = eventually(Duration::from_secs(3), || {
        std::fs::read_to_string(mp.join("watched.txt"))
            .ok()
            .as_deref()
            == Some("v2, longer\n")
            && std::fs::read_to_string(mp.join("created.txt"))
                .ok()
                .as_deref()
                == Some("new on host\n")
    });
    let took = seen.expect("host edit not visible through the mount within 3 s");
    assert!(
        took < Duration::from_secs(1),
        "host edit took {took:?} to show"
    );
    // A file the overlay changed keeps the container's version.
    assert_eq!(
        std::fs::read_to_string(mp.join("touched.txt")).unwrap(),
        "container\n"
    );
}

#[test]
fn discard_drops_chosen_paths_or_everything() {
    if !can_mount("discard_drops_chosen_paths_or_everything") {
        return;
    }
    let live = Live::new(&[("a", "a"), ("dir/b", "b")]);
    let mp = live.mount();
    std::fs::write(mp.join("a"), "changed").unwrap();
    std::fs::write(mp.join("dir/b"), "changed").unwrap();
    std::fs::write(mp.join("dir/c"), "new").unwrap();
    let out = live.ok(["discard", "w", "dir"]);
    assert!(out.contains("dir/b") && out.contains("dir/c"), "{out}");
    assert_eq!(std::fs::read_to_string(mp.join("dir/b")).unwrap(), "b");
    assert!(!mp.join("dir/c").exists());
    assert_eq!(std::fs::read_to_string(mp.join("a")).unwrap(), "changed");
    live.ok(["discard", "w"]);
    assert_eq!(std::fs::read_to_string(mp.join("a")).unwrap(), "a");
    assert_eq!(live.ok(["status", "w"]), "");
    assert_eq!(
        std::fs::read_to_string(live.project.join("a")).unwrap(),
        "a"
    );
}

#[test]
fn non_utf8_names_round_trip() {
    if !can_mount("non_utf8_names_round_trip") {
        return;
    }
    let live = Live::new(&[("keep", "k")]);
    let mp = live.mount();
    let name = OsString::from_vec(b"caf\xe9 \n-x".to_vec());
    std::fs::write(mp.join(&name), "latin-1 name").unwrap();
    let human = live.ok(["status", "w"]);
    assert!(human.contains(r"A  caf\xe9 \x0a-x"), "{human}");
    let json = live.json(["status", "w"]);
    let b64 = json[0]["path"]["b64"]
        .as_str()
        .expect("non-UTF-8 path as {b64}");
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
        name.as_bytes()
    );
    // The raw name is accepted as a path argument and committed losslessly.
    let out = live.wsfs([OsStr::new("commit"), OsStr::new("w"), name.as_os_str()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read(live.project.join(&name)).unwrap(),
        b"latin-1 name"
    );
}

#[test]
fn unmount_restart_and_remount_resume_the_overlay() {
    if !can_mount("unmount_restart_and_remount_resume_the_overlay") {
        return;
    }
    let mut live = Live::new(&[("a", "host")]);
    let mp = live.mount();
    std::fs::write(mp.join("a"), "overlay").unwrap();
    let list = live.json(["list"]);
    assert_eq!(list[0]["name"], "w");
    assert_eq!(list[0]["pending"], 1);

    // SIGTERM: clean exit 0, mount gone; restart remounts with the change intact.
    assert!(live.stop().success(), "{}", live.log());
    assert!(!is_mounted(&mp));
    live.start();
    assert!(
        is_mounted(&mp),
        "not remounted after restart:\n{}",
        live.log()
    );
    assert_eq!(std::fs::read_to_string(mp.join("a")).unwrap(), "overlay");

    // unmount keeps the overlay; mount resumes it.
    live.ok(["unmount", "w"]);
    assert!(!is_mounted(&mp));
    let list = live.json(["list"]);
    assert!(list[0]["mountpoint"].is_null(), "{list}");
    assert_eq!(list[0]["pending"], 1);
    live.mount();
    assert_eq!(std::fs::read_to_string(mp.join("a")).unwrap(), "overlay");
    assert_eq!(
        std::fs::read_to_string(live.project.join("a")).unwrap(),
        "host"
    );

    // An unmounted workspace stays unmounted across a restart.
    live.ok(["unmount", "w"]);
    assert!(live.stop().success());
    live.start();
    assert!(!is_mounted(&mp));
}

fn is_mounted(mp: &std::path::Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let needle = format!(" {} ", mp.display());
    info.lines().any(|l| l.contains(&needle))
}

#[test]
fn kill9_during_a_write_storm_loses_no_fsynced_write() {
    if !can_mount("kill9_during_a_write_storm_loses_no_fsynced_write") {
        return;
    }
    let mut live = Live::new(&[("base", "base")]);
    let before = Live::snapshot(&live.project);
    let mp = live.mount();
    let writer_mp = mp.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        for i in 0.. {
            let path = writer_mp.join(format!("f{i}"));
            let content = format!("content of file {i}\n").repeat(i % 50 + 1);
            let res = (|| -> std::io::Result<()> {
                let mut f = std::fs::File::create(&path)?;
                f.write_all(content.as_bytes())?;
                f.sync_all()
            })();
            if res.is_err() {
                return;
            }
            if tx.send((i, content)).is_err() {
                return;
            }
        }
    });
    // Let it write for a while, then crash the daemon mid-storm.
    let mut acked = Vec::new();
    while acked.len() < 150 {
        acked.push(
            rx.recv_timeout(Duration::from_secs(30))
                .expect("writer stalled"),
        );
    }
    live.kill9();
    writer.join().unwrap();
    acked.extend(rx.try_iter());

    live.start();
    for (i, content) in &acked {
        let got = std::fs::read_to_string(mp.join(format!("f{i}")))
            .unwrap_or_else(|e| panic!("f{i} fsynced before the crash, now: {e}"));
        assert_eq!(&got, content, "f{i} damaged by the crash");
    }
    let verify = live.ok(["verify", "w"]);
    assert!(verify.contains("hash chain intact"), "{verify}");
    assert_eq!(
        Live::snapshot(&live.project),
        before,
        "host changed without a commit"
    );
    let status = live.json(["status", "w"]);
    assert!(status.as_array().unwrap().len() >= acked.len());
}

#[test]
fn kill9_during_commit_rolls_forward_on_restart() {
    if !can_mount("kill9_during_commit_rolls_forward_on_restart") {
        return;
    }
    // Crash at an early, a middle and a late commit step.
    for step in ["2", "5", "9"] {
        let mut live = Live::new(&[("a", "old a"), ("d/b", "old b"), ("gone", "old gone")]);
        let mp = live.mount();
        std::fs::write(mp.join("a"), "new a").unwrap();
        std::fs::write(mp.join("d/b"), "new b").unwrap();
        std::fs::write(mp.join("d/c"), "new c").unwrap();
        std::fs::remove_file(mp.join("gone")).unwrap();
        live.stop();
        live.start_with(&[("WSFS_FAULT_COMMIT", step)]);
        let out = live.wsfs(["commit", "w"]);
        assert!(
            !out.status.success(),
            "step {step}: commit survived fault injection"
        );
        live.wait_dead();
        // Host files are each entirely old or entirely new, never torn.
        for (p, old, new) in [("a", "old a", "new a"), ("d/b", "old b", "new b")] {
            let got = std::fs::read_to_string(live.project.join(p)).unwrap();
            assert!(got == old || got == new, "step {step}: {p} torn: {got:?}");
        }
        live.start();
        assert_eq!(
            std::fs::read_to_string(live.project.join("a")).unwrap(),
            "new a"
        );
        assert_eq!(
            std::fs::read_to_string(live.project.join("d/b")).unwrap(),
            "new b"
        );
        assert_eq!(
            std::fs::read_to_string(live.project.join("d/c")).unwrap(),
            "new c"
        );
        assert!(!live.project.join("gone").exists());
        let again = live.json(["commit", "w"]);
        assert!(
            again["applied"].as_array().unwrap().is_empty(),
            "step {step}: {again}"
        );
        assert_eq!(live.ok(["status", "w"]), "");
    }
}

#[test]
fn other_users_are_refused_on_the_socket() {
    // Only the daemon: no FUSE needed; root to act as another user.
    if !prereq::require(
        "other_users_are_refused_on_the_socket",
        "root (to connect as uid 65534)",
        wsfs::sys::geteuid() == 0,
    ) {
        return;
    }
    use std::os::unix::process::CommandExt;
    let live = Live::new(&[]);
    let mode = std::fs::metadata(&live.socket).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode");
    let as_nobody = || {
        std::process::Command::new(live::wsfs_bin())
            .args(["list", "--no-autostart"])
            .env("WSFS_SOCKET", &live.socket)
            .env("WSFS_STATE_DIR", &live.state)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    // Make the path reachable: the file mode alone stops nobody.
    for dir in [live.root.path(), live.socket.parent().unwrap()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = as_nobody();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("permission denied"), "{}", text(&out));
    // Even with the socket opened up, the daemon checks the peer's uid.
    std::fs::set_permissions(&live.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("uid 65534 may not use this mountd"),
        "{}",
        text(&out)
    );
    live.ok(["list"]);
}

#[test]
fn malformed_requests_get_errors_and_the_daemon_stays_up() {
    // Only the daemon: runs without FUSE and as any user.
    let live = Live::new(&[]);
    let send = |raw: &[u8]| -> String {
        let mut s = std::os::unix::net::UnixStream::connect(&live.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let body = b"{\"project\": 42";
    let req = [
        format!("POST /v1/workspaces HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes(),
        body,
    ]
    .concat();
    let resp = send(&req);
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("malformed request body"), "{resp}");
    let resp =
        send(b"GET /v1/workspaces/nope/status HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    assert!(resp.contains("no workspace named"), "{resp}");
    let resp = send(b"\x00\x01garbage\r\n\r\n");
    assert!(
        resp.is_empty() || resp.starts_with("HTTP/1.1 400"),
        "{resp}"
    );
    let resp = send(b"POST /v1/workspaces HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 999999999\r\n\r\n{");
    assert!(
        resp.starts_with("HTTP/1.1 413") || resp.is_empty(),
        "{resp}"
    );
    live.ok(["list"]);
}

#[test]
fn completions_and_help_document_exit_codes() {
    let out = std::process::Command::new(live::wsfs_bin())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("wsfs"));
    let help = std::process::Command::new(live::wsfs_bin())
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("3 commit refused"));
    let usage = std::process::Command::new(live::wsfs_bin())
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn api_errors_carry_the_status_of_their_kind() {
    if !can_mount("api_errors_carry_the_status_of_their_kind") {
        return;
    }
    let live = Live::new(&[("a", "a\n")]);
    let mp = live.mount();
    let other = live.root.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let send = |method: &str, path: &str, body: serde_json::Value| -> String {
        let body = body.to_string();
        let mut s = std::os::unix::net::UnixStream::connect(&live.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The daemon may answer a refused request and hang up before reading all of it: a
        // write failing with EPIPE then still leaves its answer to read.
        let _ = write!(
            s,
            "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let expect = |resp: String, status: &str, code: &str, words: &str| {
        assert!(resp.starts_with(&format!("HTTP/1.1 {status}")), "{resp}");
        assert!(resp.contains(&format!("\"code\":\"{code}\"")), "{resp}");
        assert!(resp.contains(words), "{resp}");
    };
    // 404: no such workspace.
    expect(
        send("GET", "/v1/workspaces/nope", serde_json::json!(null)),
        "404",
        "not_found",
        "no workspace named",
    );
    // 400: an invalid workspace name, a relative mountpoint.
    expect(
        send(
            "POST",
            "/v1/workspaces",
            serde_json::json!({"project": live.project, "name": "-bad"}),
        ),
        "400",
        "bad_request",
        "invalid workspace name",
    );
    expect(
        send(
            "POST",
            "/v1/workspaces",
            serde_json::json!({"project": live.project, "name": "w", "mountpoint": "rel"}),
        ),
        "400",
        "bad_request",
        "must be an absolute path",
    );
    // 409: the name belongs to another project; the workspace is mounted elsewhere.
    expect(
        send(
            "POST",
            "/v1/workspaces",
            serde_json::json!({"project": other, "name": "w"}),
        ),
        "409",
        "conflict",
        "belongs to",
    );
    expect(
        send(
            "POST",
            "/v1/workspaces",
            serde_json::json!({"project": live.project, "name": "w", "mountpoint": live.root.path().join("elsewhere")}),
        ),
        "409",
        "conflict",
        "already mounted at",
    );
    // The CLI shows the daemon's message for each.
    let out = live.wsfs([
        OsStr::new("mount"),
        other.as_os_str(),
        OsStr::new("--name"),
        OsStr::new("w"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("belongs to"), "{}", text(&out));
    let out = live.wsfs(["status", "nope"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no workspace named"), "{}", text(&out));
    assert!(mp.join("a").exists());
    live.ok(["list"]);
}
