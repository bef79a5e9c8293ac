//! The control API over TCP (`mountd --listen`) from another machine's point of view: the
//! token on every request (none, wrong, rotated → 401; right → 200), the token routes kept to
//! the local socket, the failure limit (429), and the real CLI in remote mode (`--remote` +
//! `WSFS_TOKEN`) reviewing and committing a change made through a real mount; commands that
//! belong on the daemon's host refused with a clear message (issue 18).

mod live;
mod prereq;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use live::{can_mount, text, Live};

/// One raw HTTP request over TCP; the whole answer.
fn http(port: u16, method: &str, path: &str, token: Option<&str>) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{auth}content-length: 0\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The real CLI against the remote daemon at `port` with `token`.
fn remote(port: u16, token: &str, args: &[&str]) -> std::process::Output {
    Command::new(live::wsfs_bin())
        .arg("--remote")
        .arg(format!("http://127.0.0.1:{port}"))
        .args(args)
        .env("WSFS_TOKEN", token)
        .env_remove("WSFS_SOCKET")
        .env("WSFS_STATE_DIR", "/nonexistent-wsfs-remote-test")
        .output()
        .unwrap()
}

#[test]
fn the_remote_api_needs_the_token_and_the_cli_reviews_and_commits_through_it() {
    if !can_mount("the_remote_api_needs_the_token_and_the_cli_reviews_and_commits_through_it") {
        return;
    }
    let mut live = Live::new(&[("a.txt", "host\n")]);
    let (port, token) = live.restart_listening();

    assert_eq!(token.len(), 64, "256 bits in hex: {token}");
    let file = live.state.join("remote-token");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);

    // No token, a wrong one, a prefix of the right one: 401. The right one: 200.
    for t in [None, Some("wrong"), Some(&token[..63])] {
        let r = http(port, "GET", "/v1/workspaces", t);
        assert!(r.starts_with("HTTP/1.1 401"), "{t:?}: {r}");
        assert!(r.contains("wsfs token show"), "{r}");
    }
    assert!(http(port, "GET", "/v1/workspaces", Some(&token)).starts_with("HTTP/1.1 200"));
    // The token routes belong to the local socket.
    let r = http(port, "GET", "/v1/token", Some(&token));
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    assert!(!r.contains(&token), "the token leaked over TCP: {r}");

    // A change made through the mount, reviewed and committed from the remote CLI.
    let mp = live.mount();
    std::fs::write(mp.join("a.txt"), "agent\n").unwrap();
    let out = remote(port, &token, &["status", "w"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "M  a.txt\n");
    let out = remote(port, &token, &["diff", "w"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("+agent"),
        "{}",
        text(&out)
    );
    let out = remote(port, &token, &["commit", "w"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(live.project.join("a.txt")).unwrap(),
        "agent\n"
    );

    // What belongs on the daemon's host is refused before anything is sent.
    for args in [
        &["mount", "/tmp"][..],
        &["token", "show"],
        &["run", "--", "true"],
    ] {
        let out = remote(port, &token, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out).contains("runs on the daemon's host only"),
            "{}",
            text(&out)
        );
    }
    // A wrong token through the CLI says what to do.
    let out = remote(port, "nope", &["list"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out).contains("wsfs token show"), "{}", text(&out));

    // Rotation: the old token stops working at once, the new one works.
    let new = live.ok(["token", "rotate"]).trim().to_string();
    assert_ne!(new, token);
    assert!(http(port, "GET", "/v1/workspaces", Some(&token)).starts_with("HTTP/1.1 401"));
    assert!(http(port, "GET", "/v1/workspaces", Some(&new)).starts_with("HTTP/1.1 200"));

    // Ten failures from one address lock it out for a minute, right token or not.
    for _ in 0..10 {
        http(port, "GET", "/v1/daemon", Some("guess"));
    }
    let r = http(port, "GET", "/v1/daemon", Some(&new));
    assert!(r.starts_with("HTTP/1.1 429"), "{r}");
    assert!(live
        .log()
        .contains("remote API request without the right token"));
    // The local socket is unaffected.
    live.ok(["list"]);
}
