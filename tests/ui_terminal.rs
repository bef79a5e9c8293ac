//! The browser terminal's WebSocket (`GET /v1/workspaces/{name}/terminal`, issue 18) against a
//! real mountd over TCP with the token: type a command, read its output, resize, several
//! terminals at once, the shell ends when the client closes, the client learns the shell's
//! exit status when it exits; the shell sees the workspace, not the host project.

mod live;
mod prereq;
mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use live::{can_mount, Live};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a terminal on workspace `w` with `token` (or none).
async fn open(
    port: u16,
    token: Option<&str>,
    query: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    open_on(port, "w", token, query).await
}

/// Opens a terminal on workspace `name`.
async fn open_on(
    port: u16,
    name: &str,
    token: Option<&str>,
    query: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://127.0.0.1:{port}/v1/workspaces/{name}/terminal{query}")
        .into_client_request()
        .unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(req).await.map(|(s, _)| s)
}

/// Sends `line` as terminal input.
async fn type_line(ws: &mut Socket, line: &str) {
    ws.send(Message::binary(line.as_bytes().to_vec()))
        .await
        .unwrap();
}

/// Reads terminal output until it contains `want`; returns all of it.
async fn read_until(ws: &mut Socket, want: &str) -> String {
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !out.contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => out.push_str(&String::from_utf8_lossy(&b)),
            Ok(Some(Ok(_))) => {}
            other => panic!("waiting for {want:?}: {other:?}; output so far:\n{out}"),
        }
    }
    out
}

/// The next close frame (after any output); its reason.
async fn read_close(ws: &mut Socket) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                return frame.map(|f| f.reason.to_string()).unwrap_or_default()
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("waiting for the close frame: {other:?}"),
        }
    }
}

#[test]
fn the_terminal_websocket_runs_a_shell_in_the_workspace() {
    if !can_mount("the_terminal_websocket_runs_a_shell_in_the_workspace") {
        return;
    }
    let mut live = Live::new(&[("a.txt", "host\n")]);
    let (port, token) = live.restart_listening();
    live.mount();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut three = rt.block_on(async {
        // Without the token the upgrade is refused.
        let err = open(port, None, "").await.expect_err("no token");
        assert!(err.to_string().contains("401"), "{err}");

        let mut one = open(port, Some(&token), "?cols=100&rows=30").await.unwrap();
        // The first size, a write in the workspace; `$((…))` tells output from the echo.
        type_line(&mut one, "stty size; echo hi > t.txt; echo DONE$((40+2))\n").await;
        let out = read_until(&mut one, "DONE42").await;
        assert!(out.contains("30 100"), "{out}");
        // A resize reaches the terminal.
        one.send(Message::text(r#"{"type":"resize","cols":120,"rows":40}"#))
            .await
            .unwrap();
        type_line(&mut one, "stty size; echo SIZE$((1+1))\n").await;
        let out = read_until(&mut one, "SIZE2").await;
        assert!(out.contains("40 120"), "{out}");

        // A second terminal at the same time, on its own shell.
        let mut two = open(port, Some(&token), "").await.unwrap();
        type_line(&mut two, "cat t.txt; echo TWO$((2+2))\n").await;
        let out = read_until(&mut two, "TWO4").await;
        assert!(
            out.contains("hi"),
            "the second shell sees the first one's file: {out}"
        );
        type_line(&mut one, "echo ONE$((3+3))\n").await;
        read_until(&mut one, "ONE6").await;

        // The client closes terminal one: its shell ends.
        type_line(&mut one, "echo \"PID=$$=END\"\n").await;
        let out = read_until(&mut one, "=END\r\n").await;
        let pid: u32 = out
            .rsplit("PID=")
            .next()
            .and_then(|s| s.split('=').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no pid in {out}"));
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        one.close(None).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                Instant::now() < deadline,
                "shell {pid} outlived its terminal"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // The shell of terminal two exits: the client gets a close frame with its status.
        type_line(&mut two, "exit 3\n").await;
        assert_eq!(read_close(&mut two).await, "exit 3");

        // A terminal left open for the daemon's stop, below.
        let mut three = open(port, Some(&token), "").await.unwrap();
        type_line(&mut three, "echo THREE$((1+2))\n").await;
        read_until(&mut three, "THREE3").await;
        three
    });

    // The shell wrote into the workspace, not into the host project.
    assert_eq!(live.ok(["status", "w"]), "A  t.txt\n");
    assert!(!live.project.join("t.txt").exists());
    assert!(live.log().contains("terminal opened"), "{}", live.log());

    // An open terminal and an open event stream (a browser tab) do not hold the daemon's stop
    // up: both end, the terminal with close code 1001.
    let mut sse = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut sse,
        format!("GET /v1/events HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut head = [0u8; 12];
    std::io::Read::read_exact(&mut sse, &mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let t = Instant::now();
    assert!(live.stop().success(), "{}", live.log());
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(rt.block_on(read_close(&mut three)), "mountd is stopping");
}

/// A workspace with a running container (`wsfs up`): the terminal is `wsfs shell` in it.
#[tokio::test(flavor = "multi_thread")]
async fn the_terminal_of_a_workspace_with_a_container_is_a_shell_in_it() {
    if !can_mount("the_terminal_of_a_workspace_with_a_container_is_a_shell_in_it") {
        return;
    }
    let Some(ctl) =
        support::docker("the_terminal_of_a_workspace_with_a_container_is_a_shell_in_it").await
    else {
        return;
    };
    let image = support::test_image(&ctl).await;
    let mut live = Live::new(&[("README", "host readme\n")]);
    let config = live.root.path().join("config");
    std::fs::create_dir(&config).unwrap();
    live.set_env("XDG_CONFIG_HOME", &config);
    let (port, token) = live.restart_listening();
    let uid = support::AGENT_UID;
    for p in [live.project.clone(), live.project.join("README")] {
        std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
    }
    let name = format!("ui-term-{}", std::process::id());
    let uid_s = uid.to_string();
    let project = live.project.to_str().unwrap().to_owned();
    let out = live.wsfs([
        "up",
        &project,
        "--name",
        &name,
        "--image",
        &image,
        "--user",
        support::AGENT,
        "--uid",
        &uid_s,
        "--gid",
        &uid_s,
    ]);
    assert!(out.status.success(), "{out:?}\n{}", live.log());

    let mut ws = open_on(port, &name, Some(&token), "").await.unwrap();
    // /.dockerenv exists only in a container; `$((…))` tells output from the echo.
    type_line(
        &mut ws,
        "id -u; pwd; test -f /.dockerenv && echo IN$((0))DOCKER; echo made > made.txt\n",
    )
    .await;
    let out = read_until(&mut ws, "IN0DOCKER").await;
    assert!(out.contains(&format!("{uid}\r\n{project}\r\n")), "{out}");
    type_line(&mut ws, "exit 0\n").await;
    assert_eq!(read_close(&mut ws).await, "exit 0");

    live.ok(["down", &name]);
    assert_eq!(live.ok(["status", &name]), "A  made.txt\n");
    assert!(!live.project.join("made.txt").exists());
}
