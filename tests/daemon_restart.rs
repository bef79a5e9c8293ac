//! Surviving a daemon restart: mountd killed with SIGKILL and started again gives its new
//! mount to every namespace that held the dead one, so a running container (real dockerd) or a
//! running `wsfs run` command reads what it wrote before and writes again, without being
//! restarted, and nothing acknowledged is lost.

mod live;
mod prereq;
mod support;

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use live::{can_mount, eventually, Live};
use wsfs::controller::{ExecRequest, Io};

fn live(files: &[(&str, &str)]) -> Live {
    let mut live = Live::new(files);
    let config = live.root.path().join("config");
    std::fs::create_dir(&config).unwrap();
    live.set_env("XDG_CONFIG_HOME", &config);
    live
}

/// Removes the container when the test ends, passing or not.
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The container's init pid and start time: unchanged when it was not restarted.
async fn started(ctl: &wsfs::controller::Controller, name: &str) -> (i64, String) {
    let c = ctl
        .docker()
        .inspect_container(&wsfs::controller::container_name(name), None)
        .await
        .unwrap_or_else(|e| panic!("inspecting {name}: {e}"));
    let s = c.state.expect("container state");
    assert_eq!(s.running, Some(true), "{name} is not running: {s:?}");
    (s.pid.unwrap(), s.started_at.unwrap())
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `up`, a write in the container, kill -9 mountd: the container's mount is dead. mountd
/// starts again: the same container (same init process) reads its earlier write and writes
/// again; both are pending in the workspace, `down` and `up` still work, and the commit brings
/// both writes to the host.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_container_survives_a_mountd_kill_and_restart() {
    let test = "a_running_container_survives_a_mountd_kill_and_restart";
    if !can_mount(test) {
        return;
    }
    let Some(ctl) = support::docker(test).await else {
        return;
    };
    let image = support::test_image(&ctl).await;
    let mut live = live(&[("README", "host readme\n")]);
    let uid = support::AGENT_UID;
    let uid_s = uid.to_string();
    for p in [live.project.clone(), live.project.join("README")] {
        std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
    }
    let name = format!("restart-{}", std::process::id());
    let _gone = RemoveOnDrop(wsfs::controller::container_name(&name));
    let project = live.project.clone();
    let up = |live: &Live, extra: &[&str]| {
        let mut a: Vec<OsString> = vec!["up".into(), project.clone().into()];
        for s in ["--name", &name, "--image", &image, "--user", support::AGENT] {
            a.push(s.into());
        }
        for s in ["--uid", &uid_s, "--gid", &uid_s].iter().chain(extra) {
            a.push(s.into());
        }
        live.wsfs(a)
    };
    let o = up(&live, &[]);
    assert!(o.status.success(), "{}\n{}", out(&o), live.log());
    let p = live.project.to_str().unwrap().to_owned();
    let exec = |live: &Live, script: &str| live.wsfs(["exec", &name, "--", "sh", "-c", script]);

    let o = exec(
        &live,
        &format!("echo first > {p}/first.txt && cat {p}/README"),
    );
    assert!(o.status.success(), "{}", out(&o));
    let before = started(&ctl, &name).await;

    live.kill9();
    // The container's mount is dead now (what the restart must repair); asked through Docker
    // directly, as `wsfs` needs mountd.
    let dead = ctl
        .exec_with(
            &name,
            &ExecRequest {
                cmd: vec!["cat".into(), format!("{p}/first.txt")],
                workdir: Some("/".into()),
                io: Io::Capture { stdin: Vec::new() },
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_ne!(dead.exit_code, 0, "read through a dead mount: {dead:?}");
    assert!(
        String::from_utf8_lossy(&dead.stderr).contains("not connected"),
        "{dead:?}"
    );

    live.start();
    let o = exec(
        &live,
        &format!("cat {p}/first.txt && echo second > {p}/second.txt && ls {p}"),
    );
    assert!(o.status.success(), "{}\n{}", out(&o), live.log());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "first\nREADME\nfirst.txt\nsecond.txt\n"
    );
    assert_eq!(
        started(&ctl, &name).await,
        before,
        "the container was restarted"
    );
    assert!(
        live.log()
            .contains("gave the new mount to a namespace that held the dead one"),
        "{}",
        live.log()
    );
    assert_eq!(live.ok(["status", &name]), "A  first.txt\nA  second.txt\n");
    // The project is untouched until the commit.
    assert!(!live.project.join("first.txt").exists());

    // `down` and `up` work after the restart; the overlay is resumed.
    live.ok(["down", &name]);
    assert!(ctl.status(&name).await.unwrap().is_none(), "container kept");
    let o = up(&live, &["--", "cat", "first.txt", "second.txt"]);
    assert!(o.status.success(), "{}\n{}", out(&o), live.log());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "first\nsecond\n");

    let o = up(&live, &[]);
    assert!(o.status.success(), "{}\n{}", out(&o), live.log());
    live.ok(["down", &name, "--commit"]);
    for (f, want) in [("first.txt", "first\n"), ("second.txt", "second\n")] {
        assert_eq!(
            std::fs::read_to_string(live.project.join(f)).unwrap(),
            want,
            "{f}"
        );
    }
    live.ok(["remove", &name]);
}

/// The same without Docker: a `wsfs run` command still running across the kill -9 and the
/// restart writes before and after it, through absolute paths (its working directory stays in
/// the dead mount; see docs/controller.md).
#[test]
fn a_running_wsfs_run_command_survives_a_mountd_kill_and_restart() {
    let test = "a_running_wsfs_run_command_survives_a_mountd_kill_and_restart";
    if !can_mount(test) {
        return;
    }
    let mut live = live(&[("README", "host\n")]);
    let mp = live.mount();
    let p = live.project.to_str().unwrap().to_owned();
    let script = format!(
        "echo one > {p}/one.txt; i=0; until cat {p}/go 2>/dev/null; do \
         i=$((i+1)); [ $i -gt 400 ] && exit 9; sleep 0.05; done; cat {p}/one.txt > {p}/two.txt"
    );
    let mut run = Command::new(live::wsfs_bin());
    run.args(["--no-autostart", "run"])
        .arg(&live.project)
        .args(["--", "sh", "-c", &script])
        .current_dir(live.root.path())
        .env("WSFS_SOCKET", &live.socket)
        .env("WSFS_STATE_DIR", &live.state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = run.spawn().unwrap();
    let written = || live.ok(["status", "w"]).contains("one.txt");
    assert!(
        eventually(Duration::from_secs(20), written).is_some(),
        "{}",
        live.log()
    );
    live.kill9();
    live.start();
    std::fs::write(mp.join("go"), "go\n").unwrap();
    let done = eventually(Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    if done.is_none() {
        let _ = child.kill();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}\n{}", out(&o), live.log());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "go\n");
    assert_eq!(live.ok(["status", "w"]), "A  go\nA  one.txt\nA  two.txt\n");
    assert_eq!(
        std::fs::read_to_string(mp.join("two.txt")).unwrap(),
        "one\n"
    );
    assert!(!Path::new(&p).join("two.txt").exists());
}
