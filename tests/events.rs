//! The event stream (`GET /v1/events`, Server-Sent Events) over the daemon's real socket: a
//! change made through a real mount reaches a subscriber as its journal record, and so does a
//! commit; the time from the write to the event is printed (issue 18's "agent's write to the
//! UI" figure; the target is ≤ 200 ms).

mod live;
mod prereq;

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use live::{can_mount, Live};

/// Subscribes over the socket; returns the reader positioned after the response headers.
fn subscribe(live: &Live) -> BufReader<std::os::unix::net::UnixStream> {
    let mut s = std::os::unix::net::UnixStream::connect(&live.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /v1/events HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            return r;
        }
        if line.to_ascii_lowercase().starts_with("content-type") {
            assert!(line.contains("text/event-stream"), "{line}");
        }
    }
}

/// The next `data:` event whose JSON satisfies `want` (chunk-size lines and keep-alives are
/// skipped).
fn next_event(
    r: &mut BufReader<std::os::unix::net::UnixStream>,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        r.read_line(&mut line).expect("the stream stays open");
        if let Some(data) = line.trim_end().strip_prefix("data:") {
            let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
            if want(&v) {
                return v;
            }
        }
    }
    panic!("no matching event within 10 s");
}

#[test]
fn changes_and_commits_reach_event_subscribers() {
    if !can_mount("changes_and_commits_reach_event_subscribers") {
        return;
    }
    let live = Live::new(&[("a.txt", "a\n")]);
    let mp = live.mount();
    let mut events = subscribe(&live);
    let written = Instant::now();
    std::fs::write(mp.join("hello.txt"), "hi\n").unwrap();
    let e = next_event(&mut events, |v| v.to_string().contains("hello.txt"));
    let latency = written.elapsed();
    assert_eq!(e["event"], "record", "{e}");
    assert_eq!(e["workspace"], "w", "{e}");
    assert!(e["record"]["seq"].as_u64().unwrap() > 0, "{e}");
    eprintln!("event latency: write to event {latency:?}");
    assert!(latency < Duration::from_secs(2), "{latency:?}");

    live.ok(["commit", "w"]);
    let e = next_event(&mut events, |v| v.to_string().contains("commit_end"));
    assert_eq!(e["workspace"], "w", "{e}");
}
