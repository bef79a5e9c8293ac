//! The user's main job end to end, through the real `wsfs` binary, a real mountd, a real FUSE
//! mount and (for `up`) a real dockerd: `wsfs run` and `wsfs up/exec/ps/down`. Writes from the
//! command or container land in the overlay, never in the host project, until a commit.

mod live;
mod prereq;
mod support;

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use live::{can_mount, Live};

/// A live daemon whose `wsfs` commands read an empty config dir (not the user's).
fn live(files: &[(&str, &str)]) -> Live {
    let mut live = Live::new(files);
    let config = live.root.path().join("config");
    std::fs::create_dir(&config).unwrap();
    live.set_env("XDG_CONFIG_HOME", &config);
    live
}

fn args<'a>(project: &'a Path, rest: &[&'a str]) -> Vec<&'a OsStr> {
    let mut v = vec![OsStr::new(rest[0]), project.as_os_str()];
    v.extend(rest[1..].iter().map(|s| OsStr::new(*s)));
    v
}

#[test]
fn run_shows_the_workspace_at_the_project_path_and_keeps_the_host_untouched() {
    if !can_mount("run_shows_the_workspace_at_the_project_path") {
        return;
    }
    let live = live(&[("a.txt", "host\n")]);
    let before = Live::snapshot(&live.project);
    let p = live.project.to_str().unwrap().to_owned();
    let script = format!("cat {p}/a.txt; echo agent > {p}/a.txt; echo new > {p}/b.txt; pwd");
    let out = live.wsfs_in(
        &live.project,
        args(&live.project, &["run", "--", "sh", "-c", &script]),
    );
    assert!(out.status.success(), "{out:?}\n{}", live.log());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, format!("host\n{p}\n"));
    assert_eq!(
        Live::snapshot(&live.project),
        before,
        "host changed before commit"
    );

    let status = live.ok(["status", "project"]);
    assert_eq!(status, "M  a.txt\nA  b.txt\n");
    live.ok(["commit", "project"]);
    assert_eq!(
        std::fs::read_to_string(live.project.join("a.txt")).unwrap(),
        "agent\n"
    );
    assert_eq!(
        std::fs::read_to_string(live.project.join("b.txt")).unwrap(),
        "new\n"
    );
}

#[test]
fn run_returns_the_command_exit_code() {
    if !can_mount("run_returns_the_command_exit_code") {
        return;
    }
    let live = live(&[]);
    let out = live.wsfs(args(&live.project, &["run", "--", "sh", "-c", "exit 5"]));
    assert_eq!(out.status.code(), Some(5), "{out:?}");
}

/// `up`, `exec` as the project owner's uid, `ps`, `down`, `up` again (resumes), then
/// `down --commit`: the container's file reaches the host only then, owned by the agent.
#[tokio::test(flavor = "multi_thread")]
async fn up_exec_down_resume_and_commit() {
    if !can_mount("up_exec_down_resume_and_commit") {
        return;
    }
    let Some(ctl) = support::docker("up_exec_down_resume_and_commit").await else {
        return;
    };
    let image = support::test_image(&ctl).await;
    let live = live(&[("README", "host readme\n")]);
    // The project belongs to the agent, and the container runs as the agent.
    let uid = support::AGENT_UID;
    let uid_s = uid.to_string();
    for p in [live.project.clone(), live.project.join("README")] {
        std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
    }
    let name = format!("cli-up-{}", std::process::id());
    let before = Live::snapshot(&live.project);
    let up = |extra: &[&str]| {
        let mut a = args(
            &live.project,
            &[
                "up",
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
            ],
        );
        a.extend(extra.iter().map(OsStr::new));
        live.wsfs(a)
    };
    let out = up(&[]);
    assert!(out.status.success(), "{out:?}\n{}", live.log());

    let p = live.project.to_str().unwrap();
    let script = format!("id -u; pwd; cat README; echo from-agent > {p}/made.txt");
    let out = live.wsfs(["exec", &name, "--", "sh", "-c", &script]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{uid}\n{p}\nhost readme\n")
    );
    assert_eq!(
        Live::snapshot(&live.project),
        before,
        "host changed before commit"
    );

    let ps = live.json(["ps"]);
    let row = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["workspace"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in ps: {ps}"));
    assert_eq!(row["state"], "running", "{row}");
    assert_eq!(row["pending"], 1, "{row}");

    live.ok(["down", &name]);
    assert!(ctl.status(&name).await.unwrap().is_none(), "container kept");
    assert_eq!(Live::snapshot(&live.project), before);

    // Up again: the overlay is resumed, the agent's file is still there.
    let out = up(&["--", "cat", "made.txt"]);
    assert!(out.status.success(), "{out:?}\n{}", live.log());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-agent\n");

    live.ok(["down", &name, "--commit"]);
    let made = live.project.join("made.txt");
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "from-agent\n");
    assert_eq!(std::fs::metadata(&made).unwrap().uid(), uid);
    assert!(ctl.status(&name).await.unwrap().is_none());
    live.ok(["remove", &name]);
}

/// `down --commit` refuses on a conflict (exit 3) and keeps both versions: the host's edit in
/// the project, the agent's in the workspace.
#[tokio::test(flavor = "multi_thread")]
async fn down_commit_refuses_a_conflict_with_exit_3() {
    if !can_mount("down_commit_refuses_a_conflict_with_exit_3") {
        return;
    }
    let Some(ctl) = support::docker("down_commit_refuses_a_conflict_with_exit_3").await else {
        return;
    };
    let image = support::test_image(&ctl).await;
    let live = live(&[("f", "base\n")]);
    let name = format!("cli-conflict-{}", std::process::id());
    let p = live.project.to_str().unwrap();
    let script = format!("echo agent > {p}/f");
    let out = live.wsfs(args(
        &live.project,
        &[
            "up", "--name", &name, "--image", &image, "--", "sh", "-c", &script,
        ],
    ));
    assert!(out.status.success(), "{out:?}\n{}", live.log());
    std::fs::write(live.project.join("f"), "host edit\n").unwrap();

    let out = live.wsfs(["down", &name, "--commit"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("conflict"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(live.project.join("f")).unwrap(),
        "host edit\n"
    );
    assert_eq!(live.ok(["status", &name]), "M  f\n");
    assert!(live.ok(["diff", &name]).contains("+agent"));

    live.ok(["down", &name, "--discard"]);
    assert!(ctl.status(&name).await.unwrap().is_none());
}
