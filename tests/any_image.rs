//! `auto_user`: `up` on images without the code user (busybox: by editing /etc/passwd;
//! a debootstrap'd Debian: with `useradd`), with the name at another uid (the uid is changed
//! and the home re-owned), and where /etc/passwd cannot be written (a clear error). Against a
//! real dockerd with images built offline; the end-to-end tests also go through the real
//! `wsfs` binary, mountd and FUSE, as a non-root host user (the sudo user wsfs acts for), and
//! commit.

mod live;
mod prereq;
mod support;

use std::ffi::OsStr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use support::{busybox_image, docker};
use wsfs::config::{Config, HostUser, MountSpec};
use wsfs::controller::{Controller, Io, UpRequest};

const ROOT_ONLY_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n";
const ROOT_ONLY_GROUP: &str = "root:x:0:\n";

/// A host user that is not root (what wsfs detects from `sudo`).
fn host(name: &str, uid: u32, home: &Path) -> HostUser {
    HostUser {
        name: name.into(),
        uid,
        gid: uid,
        home: home.to_path_buf(),
    }
}

fn config(image: &str) -> Config {
    let mut c = Config::default();
    c.defaults.image = image.to_string();
    c.defaults.network = "none".into();
    c.defaults.tool_config.clear();
    c
}

/// A scratch dir (0755) with a project dir and a "mountpoint" dir (0777, owned by root).
struct Dirs {
    tmp: tempfile::TempDir,
    project: PathBuf,
    mnt: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let project = tmp.path().join("proj");
    let mnt = tmp.path().join("mnt");
    for d in [&project, &mnt] {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    Dirs { tmp, project, mnt }
}

fn request(ws: &str, d: &Dirs, cfg: Config, host: HostUser) -> UpRequest {
    let mut r = UpRequest::new(ws, &d.project, &d.mnt, cfg);
    r.host_user = host;
    r.io = Io::Capture { stdin: Vec::new() };
    r
}

fn name(test: &str) -> String {
    format!("t{}-{test}", std::process::id())
}

async fn sh(ctl: &Controller, ws: &str, script: &str) -> String {
    let cmd = vec!["/bin/sh".to_string(), "-c".into(), script.into()];
    let out = ctl
        .exec(ws, &cmd, Io::Capture { stdin: Vec::new() })
        .await
        .unwrap();
    assert_eq!(
        out.exit_code,
        0,
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn owner(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().uid()
}

/// A busybox image with only root: the host user is created by editing /etc/passwd, its home
/// is the host home (here the scratch dir holding the project, so the workspace is inside
/// it), re-owned without touching the workspace or a read-only mount below it.
#[tokio::test]
async fn busybox_without_the_user_creates_it_at_the_host_home() {
    let Some(ctl) = docker("busybox_without_the_user_creates_it_at_the_host_home").await else {
        return;
    };
    let image = busybox_image(&ctl, ROOT_ONLY_PASSWD, ROOT_ONLY_GROUP).await;
    let ws = name("bbnew");
    let d = dirs();
    let home = d.tmp.path().to_path_buf();
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cfg = config(&image);
    cfg.mounts.default = vec![MountSpec {
        host: shared.path().display().to_string(),
        container: Some("~/shared".into()),
        readonly: true,
    }];
    ctl.down(&ws).await.unwrap();
    let report = ctl
        .up(&request(&ws, &d, cfg, host("wsfs-me", 4343, &home)))
        .await
        .unwrap();
    let done = report.user_setup.clone().unwrap_or_default();
    assert!(
        done.contains("created user wsfs-me") && done.contains("editing /etc/passwd"),
        "{report:?}"
    );

    assert_eq!(
        sh(&ctl, &ws, "id -u; id -g; id -un").await,
        "4343\n4343\nwsfs-me"
    );
    let h = home.display().to_string();
    assert_eq!(sh(&ctl, &ws, "echo $HOME").await, h);
    assert_eq!(
        sh(
            &ctl,
            &ws,
            "grep '^wsfs-me:' /etc/passwd; grep '^wsfs-me:' /etc/group"
        )
        .await,
        format!("wsfs-me:x:4343:4343::{h}:/bin/sh\nwsfs-me:x:4343:")
    );
    assert_eq!(
        sh(
            &ctl,
            &ws,
            "stat -c %u:%g ~; touch ~/mine; stat -c %u ~/mine"
        )
        .await,
        "4343:4343\n4343"
    );
    assert_eq!(sh(&ctl, &ws, "pwd").await, d.project.display().to_string());
    sh(&ctl, &ws, "echo made > made.txt").await;
    assert_eq!(owner(&d.mnt.join("made.txt")), 4343);
    // The re-own of the home left the mounts below it alone.
    assert_eq!(owner(&d.mnt), 0, "the workspace mount was re-owned");
    assert_eq!(
        owner(shared.path()),
        0,
        "a mount under the home was re-owned"
    );
    ctl.down(&ws).await.unwrap();
}

/// The image has the name at another uid: the uid (and the group's gid) change as
/// devcontainers' updateRemoteUserUID does, the image's home is kept and re-owned.
#[tokio::test]
async fn name_at_another_uid_is_changed_and_the_home_reowned() {
    let Some(ctl) = docker("name_at_another_uid_is_changed_and_the_home_reowned").await else {
        return;
    };
    let image = busybox_image(
        &ctl,
        "root:x:0:0:root:/root:/bin/sh\nme:x:4242:4242::/home/me:/bin/sh\n",
        "root:x:0:\nme:x:4242:\n",
    )
    .await;
    let ws = name("regid");
    let d = dirs();
    ctl.down(&ws).await.unwrap();
    let report = ctl
        .up(&request(
            &ws,
            &d,
            config(&image),
            host("me", 4343, Path::new("/home/me")),
        ))
        .await
        .unwrap();
    let done = report.user_setup.clone().unwrap_or_default();
    assert!(
        done.contains("changed the uid of user me from 4242 to 4343:4343"),
        "{report:?}"
    );
    assert_eq!(
        sh(&ctl, &ws, "id -u; id -un; echo $HOME").await,
        "4343\nme\n/home/me"
    );
    assert_eq!(
        sh(
            &ctl,
            &ws,
            "stat -c %u:%g ~ ~/.profile; grep '^me:' /etc/group"
        )
        .await,
        "4343:4343\n4343:4343\nme:x:4343:"
    );
    sh(&ctl, &ws, "echo made > made.txt").await;
    assert_eq!(owner(&d.mnt.join("made.txt")), 4343);
    assert_eq!(owner(&d.mnt), 0);
    ctl.down(&ws).await.unwrap();

    // auto_user = false keeps the strict check.
    let mut cfg = config(&image);
    cfg.container.auto_user = false;
    let err = ctl
        .up(&request(
            &ws,
            &d,
            cfg,
            host("me", 4343, Path::new("/home/me")),
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has uid 4242") && err.contains("auto_user"),
        "{err}"
    );
    assert!(ctl.status(&ws).await.unwrap().is_none());
}

/// Where /etc/passwd cannot be written (a read-only root filesystem, or a read-only file
/// mounted over it), `up` fails saying why and what to do, and leaves no container.
#[tokio::test]
async fn unwritable_passwd_is_a_clear_error() {
    let Some(ctl) = docker("unwritable_passwd_is_a_clear_error").await else {
        return;
    };
    let image = busybox_image(&ctl, ROOT_ONLY_PASSWD, ROOT_ONLY_GROUP).await;
    let ws = name("rofs");
    let d = dirs();
    let me = || host("wsfs-me", 4343, Path::new("/home/wsfs-me"));

    let mut cfg = config(&image);
    cfg.defaults.read_only = true;
    let err = ctl
        .up(&request(&ws, &d, cfg, me()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("read-only") && err.contains("auto_user = false") && err.contains("wsfs-me"),
        "{err}"
    );
    assert!(ctl.status(&ws).await.unwrap().is_none());

    let passwd = d.tmp.path().join("passwd");
    std::fs::write(&passwd, ROOT_ONLY_PASSWD).unwrap();
    let mut cfg = config(&image);
    cfg.mounts.default = vec![MountSpec {
        host: passwd.display().to_string(),
        container: Some("/etc/passwd".into()),
        readonly: true,
    }];
    let err = ctl
        .up(&request(&ws, &d, cfg, me()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/etc/passwd is not writable") && err.contains("auto_user = false"),
        "{err}"
    );
    assert!(
        ctl.status(&ws).await.unwrap().is_none(),
        "container left behind"
    );
    assert_eq!(std::fs::read_to_string(&passwd).unwrap(), ROOT_ONLY_PASSWD);

    // A read-only root filesystem is fine when the image has the user.
    let mut cfg = config(&image);
    cfg.defaults.read_only = true;
    ctl.up(&request(&ws, &d, cfg, host("root", 0, Path::new("/root"))))
        .await
        .unwrap();
    assert_ne!(
        ctl.exec(
            &ws,
            &["touch".into(), "/etc/x".into()],
            Io::Capture { stdin: Vec::new() }
        )
        .await
        .unwrap()
        .exit_code,
        0,
        "the root filesystem is read-only"
    );
    ctl.down(&ws).await.unwrap();
}

/// A stock minimal Debian (debootstrap): `useradd` and `groupadd` create the user, bash is its
/// shell, /etc/skel is copied into the home.
#[tokio::test]
async fn debian_minbase_creates_the_user_with_useradd() {
    const TEST: &str = "debian_minbase_creates_the_user_with_useradd";
    let Some(ctl) = docker(TEST).await else {
        return;
    };
    let Some(image) = support::debian::image(&ctl, TEST).await else {
        return;
    };
    let ws = name("deb");
    let d = dirs();
    ctl.down(&ws).await.unwrap();
    let report = ctl
        .up(&request(
            &ws,
            &d,
            config(&image),
            host("wsfs-deb", 4344, Path::new("/home/wsfs-deb")),
        ))
        .await
        .unwrap();
    let done = report.user_setup.clone().unwrap_or_default();
    assert!(
        done.contains("created user wsfs-deb") && done.contains("useradd"),
        "{report:?}"
    );
    assert_eq!(
        sh(&ctl, &ws, "id -u; id -un; echo $HOME; getent passwd wsfs-deb; getent group 4344").await,
        "4344\nwsfs-deb\n/home/wsfs-deb\nwsfs-deb:x:4344:4344::/home/wsfs-deb:/bin/bash\nwsfs-deb:x:4344:"
    );
    assert_eq!(sh(&ctl, &ws, "stat -c %u ~ ~/.bashrc").await, "4344\n4344");
    let req = wsfs::controller::ExecRequest {
        cmd: vec![
            "grep".into(),
            "-c".into(),
            "^wsfs-deb:".into(),
            "/etc/shadow".into(),
        ],
        user: Some("0:0".into()),
        io: Io::Capture { stdin: Vec::new() },
        ..Default::default()
    };
    let out = ctl.exec_with(&ws, &req).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1\n",
        "useradd wrote /etc/shadow"
    );
    sh(&ctl, &ws, "echo made > made.txt").await;
    assert_eq!(owner(&d.mnt.join("made.txt")), 4344);
    ctl.down(&ws).await.unwrap();
}

/// End to end through the real CLI, mountd and FUSE, as a non-root host user (`nobody`, as
/// sudo reports it): `wsfs up` on an image without that user, exec, write, `down --commit`;
/// the file reaches the host owned by the user.
async fn cli_end_to_end(test: &str, image: &str, user: &str) {
    use live::Live;
    let mut live = Live::new(&[("README", "host readme\n")]);
    let config = live.root.path().join("config");
    std::fs::create_dir(&config).unwrap();
    live.set_env("XDG_CONFIG_HOME", &config);
    live.set_env("SUDO_UID", Path::new("65534"));
    live.set_env("SUDO_GID", Path::new("65534"));
    live.set_env("SUDO_USER", Path::new(user));
    let host_home = wsfs::config::passwd_entries(&std::fs::read_to_string("/etc/passwd").unwrap())
        .find(|e| e.uid == 65534)
        .map(|e| e.home)
        .expect("nobody (65534) in the host's /etc/passwd");
    for p in [live.project.clone(), live.project.join("README")] {
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    }
    let ws = format!("cli-{test}-{}", std::process::id());
    let args = |rest: &[&str]| -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = vec!["up".into(), live.project.clone().into()];
        v.extend(rest.iter().map(|s| OsStr::new(s).to_owned()));
        v
    };
    let out = live.wsfs(args(&[
        "--name",
        &ws,
        "--image",
        image,
        "--network",
        "none",
    ]));
    assert!(out.status.success(), "{out:?}\n{}", live.log());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("created user {user}")), "{stderr}");

    let out = live.wsfs([
        "exec",
        &ws,
        "--",
        "sh",
        "-c",
        "id -u; echo $HOME; cat README; echo from-agent > made.txt",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("65534\n{host_home}\nhost readme\n")
    );
    assert!(!live.project.join("made.txt").exists());
    live.ok(["down", &ws, "--commit"]);
    let made = live.project.join("made.txt");
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "from-agent\n");
    assert_eq!(owner(&made), 65534);
    live.ok(["remove", &ws]);
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_up_on_busybox_as_a_non_root_host_user_commits_as_that_user() {
    const TEST: &str = "cli_up_on_busybox_as_a_non_root_host_user";
    if !live::can_mount(TEST) {
        return;
    }
    let Some(ctl) = docker(TEST).await else {
        return;
    };
    let image = busybox_image(&ctl, ROOT_ONLY_PASSWD, ROOT_ONLY_GROUP).await;
    cli_end_to_end("bb", &image, "nobody").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_up_on_debian_as_a_non_root_host_user_commits_as_that_user() {
    const TEST: &str = "cli_up_on_debian_as_a_non_root_host_user";
    if !live::can_mount(TEST) {
        return;
    }
    let Some(ctl) = docker(TEST).await else {
        return;
    };
    let Some(image) = support::debian::image(&ctl, TEST).await else {
        return;
    };
    // Debian has `nobody` at 65534: a host user of another name at that uid is added beside it.
    cli_end_to_end("deb", &image, "wsfs-sudo-user").await;
}
