//! Controller tests against a real dockerd (skipped loudly without one, never under `CI`), with
//! an offline busybox image, plus `wsfs run`'s mount-namespace runner (root only).
//!
//! A plain temporary directory stands in for the workspace's FUSE mountpoint: the controller
//! only bind-mounts a host directory at the project's path.

mod prereq;
mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use support::{docker, test_image, AGENT, AGENT_UID};
use wsfs::config::{Config, EnvValue, HostUser, MountSpec};
use wsfs::controller::{run_in_namespace, Controller, ExecOutcome, Io, RunPlan, UpRequest};

/// A project dir and a "mountpoint" dir, both world-accessible (the container runs as 4242).
struct Dirs {
    _tmp: tempfile::TempDir,
    project: PathBuf,
    mnt: PathBuf,
}

fn dirs(files: &[(&str, &str)]) -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let project = tmp.path().join("proj");
    let mnt = tmp.path().join("mnt");
    for d in [&project, &mnt] {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::fs::write(project.join("host-only.txt"), "host\n").unwrap();
    for (p, c) in files {
        std::fs::write(mnt.join(p), c).unwrap();
    }
    Dirs {
        _tmp: tmp,
        project,
        mnt,
    }
}

fn name(test: &str) -> String {
    format!("t{}-{test}", std::process::id())
}

fn config(image: &str) -> Config {
    let mut c = Config::default();
    c.defaults.image = image.to_string();
    c.defaults.network = "none".into();
    c.defaults.tool_config.clear();
    c.container.code_user = Some(AGENT.into());
    c.container.code_uid = Some(AGENT_UID);
    c.container.code_gid = Some(AGENT_UID);
    c
}

fn request(ws: &str, d: &Dirs, cfg: Config) -> UpRequest {
    let mut r = UpRequest::new(ws, &d.project, &d.mnt, cfg);
    r.host_user = HostUser {
        name: "tester".into(),
        uid: 0,
        gid: 0,
        home: PathBuf::from("/root"),
    };
    r.io = Io::Capture { stdin: Vec::new() };
    r
}

async fn sh(ctl: &Controller, ws: &str, script: &str) -> ExecOutcome {
    let cmd = vec!["/bin/sh".to_string(), "-c".into(), script.into()];
    ctl.exec(ws, &cmd, Io::Capture { stdin: Vec::new() })
        .await
        .unwrap()
}

async fn stdout(ctl: &Controller, ws: &str, script: &str) -> String {
    let out = sh(ctl, ws, script).await;
    assert_eq!(
        out.exit_code,
        0,
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Sets up Docker + image or returns from the test (SKIP).
macro_rules! setup {
    ($test:expr) => {{
        let Some(ctl) = docker($test).await else {
            return;
        };
        let image = test_image(&ctl).await;
        (ctl, image)
    }};
}

#[tokio::test]
async fn project_at_host_path_as_configured_user_with_exit_codes() {
    let (ctl, image) = setup!("project_at_host_path");
    let ws = name("mirror");
    let d = dirs(&[("hello.txt", "from the workspace\n")]);
    ctl.down(&ws).await.unwrap();
    let report = ctl.up(&request(&ws, &d, config(&image))).await.unwrap();
    assert!(report.created && report.started);
    assert!(report.image_id.starts_with("sha256:"), "{report:?}");
    assert_eq!(
        Some(report.image_id.clone()),
        ctl.image_id(&image).await.unwrap()
    );

    let p = d.project.display();
    assert_eq!(stdout(&ctl, &ws, "pwd").await, p.to_string());
    assert_eq!(
        stdout(&ctl, &ws, &format!("cat {p}/hello.txt")).await,
        "from the workspace"
    );
    // The project path shows the mount dir, not the host project.
    assert_ne!(
        sh(&ctl, &ws, &format!("test -e {p}/host-only.txt"))
            .await
            .exit_code,
        0
    );
    assert_eq!(stdout(&ctl, &ws, "id -u").await, AGENT_UID.to_string());
    assert_eq!(stdout(&ctl, &ws, "id -g").await, AGENT_UID.to_string());
    assert_eq!(stdout(&ctl, &ws, "echo $HOME").await, "/home/agent");
    // Exit codes, including a signal death.
    assert_eq!(sh(&ctl, &ws, "exit 7").await.exit_code, 7);
    assert_eq!(sh(&ctl, &ws, "kill -9 $$").await.exit_code, 137);
    // Stdin is streamed.
    let cmd = vec!["/bin/cat".to_string()];
    let out = ctl
        .exec(
            &ws,
            &cmd,
            Io::Capture {
                stdin: b"piped\n".to_vec(),
            },
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, b"piped\n");
    // A file written in the container lands in the mount dir, owned by the code user.
    stdout(&ctl, &ws, "echo new > made.txt").await;
    let made = d.mnt.join("made.txt");
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "new\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&made).unwrap().uid(), AGENT_UID);
    assert!(!d.project.join("made.txt").exists());

    let st = ctl.status(&ws).await.unwrap().unwrap();
    assert!(st.running, "{st:?}");
    assert_eq!(st.image_id, report.image_id);
    assert_eq!(st.image_ref_now, None);
    assert_eq!(st.project, d.project);
    assert!(ctl.ps().await.unwrap().iter().any(|s| s.workspace == ws));

    let down = ctl.down(&ws).await.unwrap();
    assert!(down.found && down.stopped && down.removed);
    assert!(ctl.status(&ws).await.unwrap().is_none());
}

#[tokio::test]
async fn credentials_mounts_and_post_start() {
    let (ctl, image) = setup!("credentials_mounts_and_post_start");
    let ws = name("creds");
    let d = dirs(&[(
        "post.sh",
        "#!/bin/sh\necho post-start-ran as $(id -u)\ntouch /tmp/post-start-marker\n",
    )]);
    std::fs::set_permissions(
        d.mnt.join("post.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let key = secrets.path().join("id_test");
    std::fs::write(&key, "SECRET-KEY\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let extra = tempfile::tempdir().unwrap();
    std::fs::set_permissions(extra.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(extra.path().join("shared.txt"), "shared\n").unwrap();
    std::env::set_var("WSFS_TEST_HOST_TOKEN", "from-host-env");

    let mut cfg = config(&image);
    cfg.credentials.env = BTreeMap::from([
        (
            "API_TOKEN".to_string(),
            EnvValue::Value("literal-token".into()),
        ),
        (
            "OTHER_TOKEN".to_string(),
            EnvValue::FromEnv {
                from_env: "WSFS_TEST_HOST_TOKEN".into(),
            },
        ),
    ]);
    cfg.credentials.files =
        BTreeMap::from([(key.display().to_string(), "~/.secrets/id_test".to_string())]);
    cfg.mounts.default = vec![MountSpec {
        host: extra.path().display().to_string(),
        container: Some("/extra".into()),
        readonly: true,
    }];
    cfg.scripts.post_start = Some("post.sh".into());
    ctl.down(&ws).await.unwrap();
    let report = ctl.up(&request(&ws, &d, cfg)).await.unwrap();

    let ps = report.post_start.expect("post_start ran");
    assert_eq!(ps.exit_code, 0, "{}", String::from_utf8_lossy(&ps.stderr));
    assert_eq!(
        String::from_utf8_lossy(&ps.stdout).trim(),
        format!("post-start-ran as {AGENT_UID}")
    );
    assert_eq!(
        stdout(&ctl, &ws, "ls /tmp/post-start-marker").await,
        "/tmp/post-start-marker"
    );

    assert_eq!(stdout(&ctl, &ws, "echo $API_TOKEN").await, "literal-token");
    assert_eq!(
        stdout(&ctl, &ws, "echo $OTHER_TOKEN").await,
        "from-host-env"
    );
    assert_eq!(
        stdout(&ctl, &ws, "cat ~/.secrets/id_test").await,
        "SECRET-KEY"
    );
    assert_eq!(
        stdout(&ctl, &ws, "stat -c '%a %u %g' ~/.secrets/id_test").await,
        format!("640 {AGENT_UID} {AGENT_UID}")
    );
    assert_eq!(
        stdout(&ctl, &ws, "stat -c '%a %u' ~/.secrets").await,
        format!("700 {AGENT_UID}")
    );
    // Never in the workspace.
    let in_mnt: Vec<_> = std::fs::read_dir(&d.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !in_mnt
            .iter()
            .any(|n| n.to_string_lossy().contains("secret")),
        "{in_mnt:?}"
    );
    // Extra read-only mount.
    assert_eq!(stdout(&ctl, &ws, "cat /extra/shared.txt").await, "shared");
    assert_ne!(sh(&ctl, &ws, "echo x > /extra/new.txt").await.exit_code, 0);

    ctl.down(&ws).await.unwrap();
}

#[tokio::test]
async fn failing_post_start_is_reported_and_fatal_only_when_configured() {
    let (ctl, image) = setup!("failing_post_start");
    let ws = name("postfail");
    let d = dirs(&[("fail.sh", "#!/bin/sh\necho oops >&2\nexit 3\n")]);
    std::fs::set_permissions(
        d.mnt.join("fail.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let mut cfg = config(&image);
    cfg.scripts.post_start = Some("./fail.sh".into());
    ctl.down(&ws).await.unwrap();
    let report = ctl.up(&request(&ws, &d, cfg.clone())).await.unwrap();
    assert_eq!(report.post_start.as_ref().unwrap().exit_code, 3);
    assert!(
        report.warnings.iter().any(|w| w.contains("oops")),
        "{report:?}"
    );
    ctl.down(&ws).await.unwrap();

    cfg.scripts.post_start_fatal = true;
    let err = ctl
        .up(&request(&ws, &d, cfg))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("fail.sh") && err.contains("exit code 3"),
        "{err}"
    );
    assert!(ctl.status(&ws).await.unwrap().is_none());
}

#[tokio::test]
async fn missing_user_is_a_clear_error_with_auto_user_off() {
    let (ctl, image) = setup!("missing_user_is_a_clear_error");
    let ws = name("nouser");
    let d = dirs(&[]);
    let mut cfg = config(&image);
    cfg.container.code_user = Some("ghost".into());
    cfg.container.auto_user = false;
    let err = ctl
        .up(&request(&ws, &d, cfg))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("user ghost does not exist in image"), "{err}");
    assert!(err.contains(&image) && err.contains("code_user"), "{err}");
    assert!(
        ctl.status(&ws).await.unwrap().is_none(),
        "no container left behind"
    );

    // A user whose uid differs from the configured one is refused too.
    let mut cfg = config(&image);
    cfg.container.code_uid = Some(1234);
    cfg.container.auto_user = false;
    let err = ctl
        .up(&request(&ws, &d, cfg))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has uid 4242") && err.contains("1234"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_image_is_a_clear_error() {
    let Some(ctl) = docker("missing_image_is_a_clear_error").await else {
        return;
    };
    let d = dirs(&[]);
    let cfg = config("wsfs-test-missing:never");
    let err = ctl
        .up(&request(&name("noimage"), &d, cfg))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("image wsfs-test-missing:never is not present locally"),
        "{err}"
    );
    assert!(
        err.contains("docker import") && err.contains("docker load"),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_docker_names_the_socket_and_wsfs_run() {
    let err = Controller::connect_to("unix:///nonexistent/wsfs-test.sock")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unix:///nonexistent/wsfs-test.sock"), "{err}");
    assert!(err.contains("wsfs run"), "{err}");
}

#[tokio::test]
async fn legacy_workspace_layout() {
    let (ctl, image) = setup!("legacy_workspace_layout");
    let ws = name("legacy");
    let d = dirs(&[("hello.txt", "legacy\n")]);
    let mut cfg = config(&image);
    cfg.container.workspace_container_path = "/workspace".into();
    ctl.down(&ws).await.unwrap();
    ctl.up(&request(&ws, &d, cfg)).await.unwrap();
    assert_eq!(stdout(&ctl, &ws, "pwd").await, "/workspace");
    assert_eq!(
        stdout(&ctl, &ws, "cat /workspace/hello.txt").await,
        "legacy"
    );
    let p = d.project.display();
    assert_ne!(sh(&ctl, &ws, &format!("test -e {p}")).await.exit_code, 0);
    ctl.down(&ws).await.unwrap();
}

#[tokio::test]
async fn two_workspaces_at_once_are_isolated() {
    let (ctl, image) = setup!("two_workspaces_at_once_are_isolated");
    let (wa, wb) = (name("iso-a"), name("iso-b"));
    let (da, db) = (dirs(&[("a.txt", "A\n")]), dirs(&[("b.txt", "B\n")]));
    ctl.down(&wa).await.unwrap();
    ctl.down(&wb).await.unwrap();
    ctl.up(&request(&wa, &da, config(&image))).await.unwrap();
    ctl.up(&request(&wb, &db, config(&image))).await.unwrap();
    assert_eq!(stdout(&ctl, &wa, "cat a.txt").await, "A");
    assert_eq!(stdout(&ctl, &wb, "cat b.txt").await, "B");
    assert_ne!(sh(&ctl, &wa, "test -e b.txt").await.exit_code, 0);
    let pb = db.project.display();
    assert_ne!(sh(&ctl, &wa, &format!("test -e {pb}")).await.exit_code, 0);
    stdout(&ctl, &wa, "echo only-a > w.txt").await;
    assert!(da.mnt.join("w.txt").exists() && !db.mnt.join("w.txt").exists());
    ctl.down(&wa).await.unwrap();
    // b is unaffected by a's down.
    assert_eq!(stdout(&ctl, &wb, "cat b.txt").await, "B");
    ctl.down(&wb).await.unwrap();
}

#[tokio::test]
async fn down_then_up_again_and_persistent_containers() {
    let (ctl, image) = setup!("down_then_up_again");
    let ws = name("again");
    let d = dirs(&[]);
    ctl.down(&ws).await.unwrap();
    let first = ctl.up(&request(&ws, &d, config(&image))).await.unwrap();
    stdout(&ctl, &ws, "echo kept > state.txt").await;
    ctl.down(&ws).await.unwrap();
    let second = ctl.up(&request(&ws, &d, config(&image))).await.unwrap();
    assert!(second.created && second.container_id != first.container_id);
    assert_eq!(stdout(&ctl, &ws, "cat state.txt").await, "kept");
    // Up on a running container reuses it.
    let third = ctl.up(&request(&ws, &d, config(&image))).await.unwrap();
    assert!(!third.created && !third.started && third.container_id == second.container_id);
    ctl.down(&ws).await.unwrap();

    // Persistent: down only stops; up restarts the same container (container files survive).
    let mut cfg = config(&image);
    cfg.defaults.persistent = true;
    let p1 = ctl.up(&request(&ws, &d, cfg.clone())).await.unwrap();
    stdout(&ctl, &ws, "echo in-container > /tmp/keep").await;
    let down = ctl.down(&ws).await.unwrap();
    assert!(down.stopped && !down.removed);
    assert!(!ctl.status(&ws).await.unwrap().unwrap().running);
    let p2 = ctl.up(&request(&ws, &d, cfg)).await.unwrap();
    assert!(!p2.created && p2.started && p2.container_id == p1.container_id);
    assert_eq!(stdout(&ctl, &ws, "cat /tmp/keep").await, "in-container");
    // A different project under the same workspace name is refused.
    let other = dirs(&[]);
    let err = ctl
        .up(&request(&ws, &other, config(&image)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("belongs to project"), "{err}");
    // destroy removes even a persistent container.
    let gone = ctl.destroy(&ws).await.unwrap();
    assert!(gone.found && gone.removed && gone.stopped);
    assert!(ctl.status(&ws).await.unwrap().is_none());
}

#[tokio::test]
async fn up_with_a_command_returns_its_exit_code() {
    let (ctl, image) = setup!("up_with_a_command");
    let ws = name("cmd");
    let d = dirs(&[]);
    let mut req = request(&ws, &d, config(&image));
    req.command = vec![
        "/bin/sh".into(),
        "-c".into(),
        "echo ran > ran.txt; exit 3".into(),
    ];
    ctl.down(&ws).await.unwrap();
    let report = ctl.up(&req).await.unwrap();
    assert_eq!(report.exit_code, Some(3));
    assert!(report.downed);
    assert_eq!(
        std::fs::read_to_string(d.mnt.join("ran.txt")).unwrap(),
        "ran\n"
    );
    assert!(ctl.status(&ws).await.unwrap().is_none());
}

#[tokio::test]
async fn credential_destination_inside_the_workspace_is_refused() {
    let (ctl, image) = setup!("credential_destination_inside_the_workspace");
    let ws = name("credws");
    let d = dirs(&[]);
    let key = d.project.parent().unwrap().join("key");
    std::fs::write(&key, "k").unwrap();
    let mut cfg = config(&image);
    cfg.credentials.files = BTreeMap::from([(
        key.display().to_string(),
        d.project.join("leak").display().to_string(),
    )]);
    let err = ctl
        .up(&request(&ws, &d, cfg))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("inside"), "{err}");
    assert!(!d.mnt.join("leak").exists());
    assert!(ctl.status(&ws).await.unwrap().is_none());
}

// ---- wsfs run: private mount namespace, no Docker ----

fn root_or_skip(test: &str) -> bool {
    prereq::require(test, "root (mount namespaces)", wsfs::sys::geteuid() == 0)
}

fn run_plan(d: &Dirs, script: &str) -> RunPlan {
    RunPlan {
        project: d.project.clone(),
        mountpoint: d.mnt.clone(),
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        cwd: Some(d.project.clone()),
        uid: AGENT_UID,
        gid: AGENT_UID,
        groups: vec![AGENT_UID],
    }
}

fn mounted_anywhere(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.display().to_string();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(p.as_str()))
}

#[test]
fn run_shows_the_mountpoint_at_the_project_path() {
    if !root_or_skip("run_shows_the_mountpoint_at_the_project_path") {
        return;
    }
    let d = dirs(&[("ws.txt", "workspace\n")]);
    let script =
        "test -f ws.txt && ! test -e host-only.txt && id -u > uid.txt && pwd > pwd.txt; exit 5";
    let code = run_in_namespace(&run_plan(&d, script)).unwrap();
    assert_eq!(code, 5);
    assert_eq!(
        std::fs::read_to_string(d.mnt.join("uid.txt"))
            .unwrap()
            .trim(),
        AGENT_UID.to_string()
    );
    assert_eq!(
        std::fs::read_to_string(d.mnt.join("pwd.txt"))
            .unwrap()
            .trim(),
        d.project.display().to_string()
    );
    // The host project is unchanged and nothing is mounted in our namespace.
    assert!(!d.project.join("uid.txt").exists());
    assert!(d.project.join("host-only.txt").exists());
    assert!(!mounted_anywhere(&d.project));
}

#[test]
fn run_keeps_the_subdirectory_and_reports_signals() {
    if !root_or_skip("run_keeps_the_subdirectory_and_reports_signals") {
        return;
    }
    let d = dirs(&[]);
    for base in [&d.project, &d.mnt] {
        std::fs::create_dir(base.join("sub")).unwrap();
        std::fs::set_permissions(base.join("sub"), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let mut plan = run_plan(&d, "pwd > here.txt");
    plan.cwd = Some(d.project.join("sub"));
    assert_eq!(run_in_namespace(&plan).unwrap(), 0);
    assert_eq!(
        std::fs::read_to_string(d.mnt.join("sub/here.txt"))
            .unwrap()
            .trim(),
        d.project.join("sub").display().to_string()
    );
    // Outside the project: start at the project root.
    plan.cwd = Some(PathBuf::from("/"));
    plan.command = vec!["/bin/sh".into(), "-c".into(), "kill -9 $$".into()];
    assert_eq!(run_in_namespace(&plan).unwrap(), 137);
    // A missing mountpoint is refused before anything runs.
    plan.mountpoint = d.mnt.join("missing");
    let err = run_in_namespace(&plan).unwrap_err().to_string();
    assert!(
        err.contains("mountpoint") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn project_checks_refuse_missing_files_and_nested_workspaces() {
    use wsfs::controller::check_project;
    let d = dirs(&[]);
    assert!(check_project(&d.project, std::slice::from_ref(&d.mnt)).is_ok());
    let err = check_project(&d.project.join("nope"), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
    let err = check_project(&d.project.join("host-only.txt"), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a directory"), "{err}");
    std::fs::create_dir(d.mnt.join("inner")).unwrap();
    let err = check_project(&d.mnt.join("inner"), std::slice::from_ref(&d.mnt))
        .unwrap_err()
        .to_string();
    assert!(err.contains("inside the mountpoint"), "{err}");
}

#[tokio::test]
async fn tool_config_mounted_or_copied() {
    let (ctl, image) = setup!("tool_config_mounted_or_copied");
    let ws = name("tools");
    let d = dirs(&[]);
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(home.path().join(".claude")).unwrap();
    std::fs::set_permissions(
        home.path().join(".claude"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    std::fs::write(home.path().join(".claude/settings.json"), "{}\n").unwrap();
    std::fs::write(home.path().join(".claude.json"), "{\"a\":1}\n").unwrap();
    let mut cfg = config(&image);
    cfg.defaults.tool_config = vec![
        "~/.claude".into(),
        "~/.claude.json".into(),
        "~/.not-there".into(),
    ];
    let mut req = request(&ws, &d, cfg.clone());
    req.host_user.home = home.path().to_path_buf();
    ctl.down(&ws).await.unwrap();
    // Never bind-mounted directly: the directory must be served through a workspace.
    let err = ctl.up(&req).await.unwrap_err().to_string();
    assert!(err.contains("not served through a wsfs workspace"), "{err}");

    // Served: the container gets the serving workspace's mountpoint (a stand-in directory
    // here; tests/cli_containers.rs runs the real one), never the host directory.
    let served = tempfile::tempdir().unwrap();
    std::fs::set_permissions(served.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(served.path().join("settings.json"), "{\"served\":1}\n").unwrap();
    req.tool_mounts = vec![(home.path().join(".claude"), served.path().to_path_buf())];
    let report = ctl.up(&req).await.unwrap();
    // The container home differs from the host home, so a warning.
    assert!(
        report.warnings.iter().any(|w| w.contains("/home/agent")),
        "{report:?}"
    );
    assert_eq!(
        stdout(&ctl, &ws, "cat ~/.claude/settings.json").await,
        "{\"served\":1}"
    );
    assert_eq!(stdout(&ctl, &ws, "cat ~/.claude.json").await, "{\"a\":1}");
    stdout(
        &ctl,
        &ws,
        "echo x > ~/.claude/written; echo y > ~/.claude.json",
    )
    .await;
    assert!(served.path().join("written").exists(), "the served mount");
    assert!(
        !home.path().join(".claude/written").exists(),
        "not the host"
    );
    assert_eq!(
        std::fs::read_to_string(home.path().join(".claude.json")).unwrap(),
        "{\"a\":1}\n",
        "a single file is copied in, its changes stay in the container"
    );
    ctl.down(&ws).await.unwrap();

    // Copied: owned by the code user, changes stay in the container.
    cfg.defaults.mount_tool_config = false;
    let mut req = request(&ws, &d, cfg);
    req.host_user.home = home.path().to_path_buf();
    let report = ctl.up(&req).await.unwrap();
    assert!(report.warnings.is_empty(), "{report:?}");
    assert_eq!(
        stdout(
            &ctl,
            &ws,
            "stat -c %u ~/.claude/settings.json ~/.claude.json"
        )
        .await,
        format!("{AGENT_UID}\n{AGENT_UID}")
    );
    stdout(&ctl, &ws, "echo y > ~/.claude/copied-only").await;
    assert!(!home.path().join(".claude/copied-only").exists());
    ctl.down(&ws).await.unwrap();
}

#[tokio::test]
async fn exec_options_tty_logs_and_moved_image_tag() {
    let (ctl, image) = setup!("exec_options_tty_logs_and_moved_image_tag");
    let ws = name("opts");
    let d = dirs(&[]);
    std::fs::create_dir(d.mnt.join("sub")).unwrap();
    // Our own tag on the test image, moved later.
    let moving = format!("wsfs-test-moving:{}", std::process::id());
    let (repo, tag) = moving.split_once(':').unwrap();
    let opts = bollard::query_parameters::TagImageOptionsBuilder::default()
        .repo(repo)
        .tag(tag)
        .build();
    ctl.docker().tag_image(&image, Some(opts)).await.unwrap();
    ctl.down(&ws).await.unwrap();
    let report = ctl.up(&request(&ws, &d, config(&moving))).await.unwrap();

    let req = wsfs::controller::ExecRequest {
        cmd: vec![
            "/bin/sh".into(),
            "-c".into(),
            "pwd; echo $EXTRA; id -u; test -t 1 && echo tty".into(),
        ],
        workdir: Some(d.project.join("sub").display().to_string()),
        env: vec!["EXTRA=extra-value".into()],
        user: Some("0:0".into()),
        io: Io::Capture { stdin: Vec::new() },
        tty: Some(true),
    };
    let out = ctl.exec_with(&ws, &req).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert_eq!(
        text.trim(),
        format!("{}\nextra-value\n0\ntty", d.project.join("sub").display())
    );

    // Io::Terminal (the CLI's mode) streams to the process's own stdout/stderr; no TTY here.
    let req = wsfs::controller::ExecRequest {
        cmd: vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo terminal-mode-output; exit 9".into(),
        ],
        io: Io::Terminal,
        tty: Some(false),
        ..Default::default()
    };
    let out = ctl.exec_with(&ws, &req).await.unwrap();
    assert_eq!(out.exit_code, 9);
    assert!(out.stdout.is_empty(), "not captured in terminal mode");

    let mut logs = Vec::new();
    ctl.logs(&ws, false, &mut |_, b| logs.extend_from_slice(b))
        .await
        .unwrap();
    assert!(logs.is_empty(), "the keep-alive is silent");

    // Move the tag to another image: ps says so.
    let mut t = wsfs::controller::tar::TarBuilder::new();
    let meta = wsfs::controller::tar::Meta {
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
    };
    t.file("marker", ws.as_bytes(), meta).unwrap();
    let opts = bollard::query_parameters::CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .build();
    let body = bollard::body_full(bytes::Bytes::from(t.finish().unwrap()));
    use futures_util::StreamExt;
    let mut s = ctl.docker().create_image(Some(opts), Some(body), None);
    while let Some(item) = s.next().await {
        item.unwrap();
    }
    let st = ctl.status(&ws).await.unwrap().unwrap();
    assert_eq!(st.image_id, report.image_id);
    let now = st.image_ref_now.expect("tag moved");
    assert_ne!(now, report.image_id);
    assert!(st.uptime_secs.is_some());

    ctl.down(&ws).await.unwrap();
    let rm = bollard::query_parameters::RemoveImageOptionsBuilder::default()
        .force(true)
        .build();
    ctl.docker()
        .remove_image(&moving, Some(rm), None)
        .await
        .unwrap();
}

/// Re-executes this test binary as uid 4242 (no capabilities): `wsfs run` then uses an
/// unprivileged user namespace and the command runs as the caller.
#[test]
fn run_as_unprivileged_user_uses_a_user_namespace() {
    const TEST: &str = "run_as_unprivileged_user_uses_a_user_namespace";
    if let Some(project) = std::env::var_os("WSFS_TEST_UNPRIV_PROJECT") {
        let project = PathBuf::from(project);
        let mnt = PathBuf::from(std::env::var_os("WSFS_TEST_UNPRIV_MNT").unwrap());
        assert_eq!(wsfs::sys::geteuid(), AGENT_UID);
        let plan = RunPlan {
            project: project.clone(),
            mountpoint: mnt,
            command: vec![
                "/bin/sh".into(),
                "-c".into(),
                "test -f ws.txt && id -u > uid.txt; exit 4".into(),
            ],
            cwd: Some(project),
            uid: AGENT_UID,
            gid: AGENT_UID,
            groups: vec![],
        };
        assert_eq!(run_in_namespace(&plan).unwrap(), 4);
        // Another uid needs root.
        let mut other = plan.clone();
        other.uid = 0;
        assert!(run_in_namespace(&other)
            .unwrap_err()
            .to_string()
            .contains("needs root"));
        return;
    }
    if !root_or_skip(TEST) {
        return;
    }
    use std::os::unix::process::CommandExt;
    let d = dirs(&[("ws.txt", "w\n")]);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env("WSFS_TEST_UNPRIV_PROJECT", &d.project)
        .env("WSFS_TEST_UNPRIV_MNT", &d.mnt)
        .uid(AGENT_UID)
        .gid(AGENT_UID)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(d.mnt.join("uid.txt"))
            .unwrap()
            .trim(),
        AGENT_UID.to_string()
    );
    assert!(!d.project.join("uid.txt").exists());
}
