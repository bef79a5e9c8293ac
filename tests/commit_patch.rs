//! `wsfs commit -p` on a real mount, driven through a pseudo-terminal (tmux): the hunks
//! answered `y` reach the host, the others stay pending, and an added file offered whole
//! is committed on `y`. Needs root, /dev/fuse and tmux.

mod live;
mod prereq;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use live::{can_mount, eventually, wsfs_bin, Live};

fn lines(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

/// Runs `tmux -L SOCKET ARGS`.
fn tmux(socket: &str, args: &[&str]) -> std::process::Output {
    Command::new("tmux")
        .arg("-L")
        .arg(socket)
        .args(args)
        .output()
        .expect("tmux is installed (see .ci/run)")
}

/// Waits until `out` shows `n` prompts, then types `answer` and Enter in the pane.
fn answer(socket: &str, out: &Path, n: usize, answer: &str) {
    let seen = eventually(Duration::from_secs(20), || {
        fs::read_to_string(out).is_ok_and(|t| t.matches("]? ").count() >= n)
    });
    assert!(
        seen.is_some(),
        "prompt {n} never came: {}",
        fs::read_to_string(out).unwrap_or_default()
    );
    assert!(tmux(socket, &["send-keys", "-t", "p", answer, "Enter"])
        .status
        .success());
}

#[test]
fn commit_p_commits_the_hunks_answered_yes() {
    if !can_mount("commit_p_commits_the_hunks_answered_yes") {
        return;
    }
    let has_tmux = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !prereq::require("commit_p_commits_the_hunks_answered_yes", "tmux", has_tmux) {
        return;
    }
    let base = lines(40);
    let live = Live::new(&[("a.txt", &base)]);
    let mnt = live.mount();
    let ours = base
        .replace("line 2\n", "line 2, first\n")
        .replace("line 20\n", "line 20, second\n")
        .replace("line 38\n", "line 38, third\n");
    fs::write(mnt.join("a.txt"), &ours).unwrap();
    fs::write(mnt.join("new.txt"), "new\n").unwrap();

    let socket = format!("wsfs-test-{}", std::process::id());
    let out = live.root.path().join("commit-p.out");
    let done = live.root.path().join("commit-p.done");
    // stdout to a file (to wait for each prompt), stdin the pane's terminal.
    let script = format!(
        "cd {root} && WSFS_SOCKET={sock} WSFS_STATE_DIR={state} NO_COLOR=1 {wsfs} --no-autostart commit -p w > {out} 2>&1; echo $? > {done}",
        root = live.root.path().display(),
        sock = live.socket.display(),
        state = live.state.display(),
        wsfs = wsfs_bin().display(),
        out = out.display(),
        done = done.display(),
    );
    let started = tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-s",
            "p",
            "-x",
            "200",
            "-y",
            "50",
            &script,
        ],
    );
    assert!(started.status.success(), "{started:?}");
    // a.txt: yes to the first hunk, no to the second, yes to the third; new.txt: yes.
    answer(&socket, &out, 1, "y");
    answer(&socket, &out, 2, "n");
    answer(&socket, &out, 3, "y");
    answer(&socket, &out, 4, "y");
    let finished = eventually(Duration::from_secs(30), || done.exists());
    let _ = tmux(&socket, &["kill-server"]);
    let text = fs::read_to_string(&out).unwrap();
    assert!(finished.is_some(), "commit -p did not finish: {text}");
    assert_eq!(fs::read_to_string(&done).unwrap().trim(), "0", "{text}");
    assert!(
        text.contains("(1/3) Commit this hunk of a.txt [y,n,q,a,d,?]? "),
        "{text}"
    );
    assert!(
        text.contains("Commit addition of new.txt [y,n,q,?]? "),
        "{text}"
    );
    assert!(
        text.contains("applied  a.txt (chosen hunks; the rest stays pending)"),
        "{text}"
    );

    let host = base
        .replace("line 2\n", "line 2, first\n")
        .replace("line 38\n", "line 38, third\n");
    assert_eq!(
        fs::read_to_string(live.project.join("a.txt")).unwrap(),
        host
    );
    assert_eq!(
        fs::read_to_string(live.project.join("new.txt")).unwrap(),
        "new\n"
    );
    assert_eq!(fs::read_to_string(mnt.join("a.txt")).unwrap(), ours);
    assert_eq!(live.ok(["status", "w"]), "M  a.txt\n");
    let diff = live.ok(["diff", "w", "a.txt"]);
    assert!(diff.contains("+line 20, second"), "{diff}");
    assert!(!diff.contains("first") && !diff.contains("third"), "{diff}");

    // Without a terminal, -p refuses (usage, exit 2) and commits nothing.
    let no_tty = live.wsfs(["commit", "-p", "w"]);
    assert_eq!(no_tty.status.code(), Some(2), "{no_tty:?}");
}
