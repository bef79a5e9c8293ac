//! The review UI's files and its login over TCP (issue 18), against a real mountd: the page is
//! served without a token (it holds no data), the API is not; `POST /v1/login` trades the
//! token for an `HttpOnly; SameSite=Strict` session cookie that the API, the event stream and
//! logout accept; a cookie from another origin, a logged-out or rotated-away session is
//! refused; wrong tokens at login count against the failure limit, unknown cookies do not.

mod live;
mod prereq;

use std::io::{Read, Write};

use live::{can_mount, Live};

/// One raw HTTP request over TCP with extra `headers` and `body`; the answer's head and body
/// (the head only for the event stream, which does not end).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if path == "/v1/events" && out.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `wsfs_session=…` pair a login answer sets.
fn session_cookie(answer: &str) -> String {
    let line = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {answer}"));
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(line.contains(attr), "{line}");
    }
    line.split_once(':')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_string()
}

fn login(port: u16, token: &str) -> String {
    http(
        port,
        "POST",
        "/v1/login",
        &[],
        &format!(r#"{{"token":"{token}"}}"#),
    )
}

#[test]
fn the_ui_logs_in_with_the_token_and_keeps_a_session_cookie() {
    if !can_mount("the_ui_logs_in_with_the_token_and_keeps_a_session_cookie") {
        return;
    }
    let mut live = Live::new(&[("a.txt", "host\n")]);
    let (port, token) = live.restart_listening();

    // The page and its files need no token; the API does.
    let page = http(port, "GET", "/", &[], "");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("text/html") && page.contains("/ui/js/app.js"),
        "{page}"
    );
    assert!(page
        .to_ascii_lowercase()
        .contains("content-security-policy: default-src 'self'"));
    let js = http(port, "GET", "/ui/js/app.js", &[], "");
    assert!(
        js.starts_with("HTTP/1.1 200") && js.contains("text/javascript"),
        "{js}"
    );
    assert!(http(port, "GET", "/ui/vendor/xterm/xterm.mjs", &[], "").contains("Terminal"));
    assert!(http(port, "GET", "/ui/../remote-token", &[], "").starts_with("HTTP/1.1 404"));
    assert!(http(port, "GET", "/v1/workspaces", &[], "").starts_with("HTTP/1.1 401"));

    // A wrong token: 401 and no cookie; the right one: 204 and a session cookie.
    let r = login(port, "wrong");
    assert!(
        r.starts_with("HTTP/1.1 401") && !r.to_ascii_lowercase().contains("set-cookie"),
        "{r}"
    );
    let r = login(port, &token);
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    let cookie = session_cookie(&r);
    let with = |c: &str| vec![("cookie", c.to_string())];
    let get = |path: &str, headers: &[(&str, String)]| {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http(port, "GET", path, &h, "")
    };
    assert!(get("/v1/workspaces", &with(&cookie)).starts_with("HTTP/1.1 200"));
    let events = get("/v1/events", &with(&cookie));
    assert!(
        events.starts_with("HTTP/1.1 200") && events.contains("text/event-stream"),
        "{events}"
    );
    // The same session from another site's page: refused; from the UI's own origin: fine.
    let mut h = with(&cookie);
    h.push(("origin", "http://evil.example".into()));
    assert!(get("/v1/workspaces", &h).starts_with("HTTP/1.1 403"));
    let mut h = with(&cookie);
    h.push(("origin", format!("http://127.0.0.1:{port}")));
    assert!(get("/v1/workspaces", &h).starts_with("HTTP/1.1 200"));
    // A cookie with the right name but another value is nobody's session.
    assert!(get("/v1/workspaces", &with("wsfs_session=00")).starts_with("HTTP/1.1 401"));

    // Logout ends the session.
    let r = http(port, "POST", "/v1/logout", &[("cookie", &cookie)], "");
    assert!(
        r.starts_with("HTTP/1.1 204") && r.contains("Max-Age=0"),
        "{r}"
    );
    assert!(get("/v1/workspaces", &with(&cookie)).starts_with("HTTP/1.1 401"));

    // Rotating the token ends every session.
    let cookie = session_cookie(&login(port, &token));
    assert!(get("/v1/workspaces", &with(&cookie)).starts_with("HTTP/1.1 200"));
    let token = live.ok(["token", "rotate"]).trim().to_string();
    assert!(get("/v1/workspaces", &with(&cookie)).starts_with("HTTP/1.1 401"));

    // Unknown cookies (a browser left open across a restart) do not lock the address out...
    for _ in 0..15 {
        assert!(get("/v1/daemon", &with(&cookie)).starts_with("HTTP/1.1 401"));
    }
    let bearer = vec![("authorization", format!("Bearer {token}"))];
    assert!(get("/v1/daemon", &bearer).starts_with("HTTP/1.1 200"));
    // ...wrong tokens at login do, like wrong bearer headers: two failures so far (the API
    // without a token, the first wrong login), eight more make ten.
    for _ in 0..8 {
        assert!(login(port, "guess").starts_with("HTTP/1.1 401"));
    }
    assert!(login(port, &token).starts_with("HTTP/1.1 429"));
    assert!(get("/v1/daemon", &bearer).starts_with("HTTP/1.1 429"));
    assert!(live.log().contains("review UI login with a wrong token"));

    // Over the local socket the page is served too (the peer check instead of a login).
    let mut s = std::os::unix::net::UnixStream::connect(&live.socket).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200") && out.contains("/ui/js/app.js"),
        "{out}"
    );
}
