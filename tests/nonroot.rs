//! A regular user's first steps, as that user: the test (root) drops to `nobody` with a
//! private HOME and a login's soft fd limit (1,024), lets `wsfs` autostart the user's own
//! mountd, mounts a project the user owns, runs a command with `wsfs run`, and commits. Once
//! without `user_allow_other` in /etc/fuse.conf (an owner-only mount and one note) and once
//! with it (`allow_other`, as before). Needs root, /dev/fuse, a setuid fusermount3 and
//! `setpriv`; under CI a missing prerequisite fails.

mod live;
mod prereq;

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use live::{can_mount, eventually, mountd_bin, wsfs_bin};

/// The unprivileged user the test runs as.
const USER: &str = "nobody";
/// Its uid and gid (Debian's `nobody:nogroup`).
const UID: u32 = 65534;
const GID: u32 = 65534;
/// The soft `RLIMIT_NOFILE` of a normal login shell.
const LOGIN_NOFILE: u32 = 1024;
const FUSE_CONF: &str = "/etc/fuse.conf";

fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Fails (under CI) or skips when a prerequisite of running as a regular user is missing.
fn prerequisites(test: &str) -> bool {
    if !can_mount(test) {
        return false;
    }
    let fusermount = ["/usr/bin/fusermount3", "/bin/fusermount3"]
        .into_iter()
        .find_map(|p| std::fs::metadata(p).ok());
    let setuid = fusermount.is_some_and(|m| m.uid() == 0 && m.mode() & 0o4000 != 0);
    let setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    prereq::require(
        test,
        &format!(
            "a setuid-root fusermount3 (fuse3) and setpriv (util-linux) \
             (setuid fusermount3={setuid}, setpriv={setpriv})"
        ),
        setuid && setpriv,
    )
}

/// Distributions make /dev/fuse world read-write (udev's `MODE="0666"`); some containers
/// create it 0600. A regular user's mount needs the former.
fn dev_fuse_like_a_distribution() {
    let mode = std::fs::metadata("/dev/fuse").unwrap().mode() & 0o777;
    if mode & 0o006 != 0o006 {
        eprintln!("/dev/fuse is {mode:o}; making it 0666 as distributions do");
        std::fs::set_permissions("/dev/fuse", std::fs::Permissions::from_mode(0o666)).unwrap();
    }
}

/// Holds /etc/fuse.conf for the test: an exclusive lock against other writers, the original
/// content restored on drop (also when the test fails).
struct FuseConf {
    _lock: std::fs::File,
    original: Option<Vec<u8>>,
}

impl FuseConf {
    fn take() -> FuseConf {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/wsfs-test-fuse.conf.lock")
            .unwrap();
        let locked = eventually(Duration::from_secs(300), || {
            wsfs::sys::try_lock_exclusive(lock.as_fd()).is_ok()
        });
        assert!(
            locked.is_some(),
            "another test held /etc/fuse.conf for 5 minutes"
        );
        FuseConf {
            _lock: lock,
            original: std::fs::read(FUSE_CONF).ok(),
        }
    }

    /// The original file with every active `user_allow_other` line removed or, when `allow`,
    /// with one added.
    fn set_user_allow_other(&self, allow: bool) {
        let orig = String::from_utf8_lossy(self.original.as_deref().unwrap_or_default());
        let mut lines: Vec<&str> = orig
            .lines()
            .filter(|l| l.trim() != "user_allow_other")
            .collect();
        if allow {
            lines.push("user_allow_other");
        }
        std::fs::write(FUSE_CONF, lines.join("\n") + "\n").unwrap();
    }
}

impl Drop for FuseConf {
    fn drop(&mut self) {
        match &self.original {
            Some(c) => std::fs::write(FUSE_CONF, c).unwrap(),
            None => std::fs::remove_file(FUSE_CONF).unwrap(),
        }
    }
}

/// A regular user's world: a HOME (with the default state dir below it), a runtime dir and a
/// project the user owns, and the wsfs binaries where the user can run them.
struct UserEnv {
    root: tempfile::TempDir,
    home: PathBuf,
    project: PathBuf,
    bin: PathBuf,
}

impl UserEnv {
    fn new(files: &[(&str, &str)]) -> UserEnv {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let home = root.path().join("home");
        let project = home.join("proj");
        let run = home.join("run");
        let bin = root.path().join("bin");
        for d in [&project, &run, &bin] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        for (p, c) in files {
            std::fs::write(project.join(p), c).unwrap();
        }
        chown_tree(&home);
        // The build tree may sit where the user cannot reach (/root/...): link or copy.
        for b in [wsfs_bin(), mountd_bin()] {
            let to = bin.join(b.file_name().unwrap());
            if std::fs::hard_link(&b, &to).is_err() {
                std::fs::copy(&b, &to).unwrap();
            }
        }
        UserEnv {
            root,
            home,
            project,
            bin,
        }
    }

    fn socket(&self) -> PathBuf {
        self.home.join("run/wsfs/mountd.sock")
    }

    fn mountd_log(&self) -> String {
        std::fs::read_to_string(self.home.join(".local/share/wsfs/mountd.log")).unwrap_or_default()
    }

    /// Runs `wsfs ARGS` as the user, from `dir`, with a login's soft fd limit and a login's
    /// environment (nothing inherited from the test but PATH).
    fn wsfs_in<I, S>(&self, dir: &Path, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command::new("setpriv")
            .args(["--reuid", &UID.to_string(), "--regid", &GID.to_string()])
            .args(["--init-groups", "--"])
            .args([
                "sh",
                "-c",
                &format!("ulimit -Sn {LOGIN_NOFILE} && exec \"$0\" \"$@\""),
            ])
            .arg(self.bin.join("wsfs"))
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("HOME", &self.home)
            .env("USER", USER)
            .env("LOGNAME", USER)
            .env("XDG_RUNTIME_DIR", self.home.join("run"))
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    /// `wsfs ARGS` as the user from the project, asserting success; returns the output.
    fn ok<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.wsfs_in(&self.project, &args);
        assert!(
            out.status.success(),
            "wsfs {args:?} as {USER} failed ({}):\n{}\nmountd log:\n{}",
            out.status,
            text(&out),
            self.mountd_log()
        );
        out
    }

    /// The pid of the mountd serving this user's socket.
    fn mountd_pid(&self) -> Option<u32> {
        let sock = self.socket();
        std::fs::read_dir("/proc").ok()?.find_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            let is_mountd = args.first()?.ends_with(b"/mountd");
            let ours = args
                .iter()
                .any(|a| *a == sock.as_os_str().as_encoded_bytes());
            (is_mountd && ours).then_some(pid)
        })
    }
}

impl Drop for UserEnv {
    fn drop(&mut self) {
        if let Some(pid) = self.mountd_pid() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            let gone = eventually(Duration::from_secs(30), || {
                !Path::new(&format!("/proc/{pid}")).exists()
            });
            if gone.is_none() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
        let mp = self.home.join(".local/share/wsfs/mnt/proj");
        let _ = Command::new("umount").arg("-l").arg(&mp).output();
        let _ = &self.root;
    }
}

fn chown_tree(p: &Path) {
    let st = Command::new("chown")
        .args(["-R", &format!("{UID}:{GID}")])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

/// The super options of the mount at `mp` (e.g. `rw,user_id=65534,allow_other`).
fn super_options(mp: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines().rev().find_map(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        (Path::new(fields[4]) == mp).then(|| fields.get(sep + 3).copied().unwrap_or("").to_owned())
    })
}

/// One round as the user: mount, check who may use it, `wsfs run` a write, commit, unmount.
/// Returns `wsfs mount`'s stderr.
fn mount_run_commit(env: &UserEnv, file: &str, allow_other: bool) -> String {
    let out = env.ok([OsStr::new("mount"), env.project.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mp = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        mp.starts_with(env.home.join(".local/share/wsfs")),
        "the default mountpoint of a user is under their XDG data dir: {}",
        mp.display()
    );
    let opts = super_options(&mp).unwrap_or_else(|| panic!("{} is not mounted", mp.display()));
    assert!(
        opts.contains(&format!("user_id={UID}")),
        "mount options {opts}"
    );
    assert_eq!(
        opts.contains("allow_other"),
        allow_other,
        "mount options {opts}"
    );
    let list = env.ok(["--json", "list"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[0]["allow_other"], allow_other, "{list:#}");

    // What allow_other is for: another user (here root) reaching the mount.
    let by_root = std::fs::read(mp.join("a.txt"));
    match (&by_root, allow_other) {
        (Ok(c), true) => assert_eq!(c, b"hello\n"),
        (Err(e), false) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}"),
        _ => panic!("root reading an allow_other={allow_other} mount: {by_root:?}"),
    }

    let script = format!("echo x > {file} && cat a.txt");
    let out = env.ok([OsStr::new("run"), OsStr::new("--"), OsStr::new("sh")]
        .into_iter()
        .chain([OsStr::new("-c"), OsStr::new(&script)]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\n",
        "{}",
        text(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("allow_other"),
        "the note belongs to `wsfs mount` only:\n{}",
        text(&out)
    );
    assert!(
        !env.project.join(file).exists(),
        "the write stayed in the workspace"
    );
    let status = env.ok(["status"]);
    assert_eq!(
        String::from_utf8_lossy(&status.stdout).trim(),
        format!("A  {file}")
    );
    env.ok(["commit"]);
    let committed = env.project.join(file);
    assert_eq!(std::fs::read(&committed).unwrap(), b"x\n");
    let meta = std::fs::metadata(&committed).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (UID, GID),
        "committed files belong to the user"
    );
    env.ok(["unmount"]);
    stderr
}

#[test]
fn regular_user_mounts_runs_and_commits_with_and_without_user_allow_other() {
    let test = "regular_user_mounts_runs_and_commits_with_and_without_user_allow_other";
    if !prerequisites(test) {
        return;
    }
    dev_fuse_like_a_distribution();
    let conf = FuseConf::take();
    let env = UserEnv::new(&[("a.txt", "hello\n")]);
    assert!(env.mountd_pid().is_none());

    // Without user_allow_other: the new path (the mount used to fail).
    conf.set_user_allow_other(false);
    let note = mount_run_commit(&env, "f1", false);
    let pid = env
        .mountd_pid()
        .expect("wsfs autostarted the user's mountd");
    let uid_line = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_owned();
    assert!(uid_line.contains(&UID.to_string()), "{uid_line}");
    for needed in [
        "user_allow_other",
        "/etc/fuse.conf",
        "system service",
        "Docker",
    ] {
        assert!(note.contains(needed), "the note names {needed:?}:\n{note}");
    }
    assert_eq!(
        env.mountd_log()
            .matches("mounted for this user only")
            .count(),
        1,
        "mountd logs the note once per mount"
    );

    // With it: allow_other, as for root, and no note.
    conf.set_user_allow_other(true);
    let note = mount_run_commit(&env, "f2", true);
    assert!(
        !note.contains("allow_other"),
        "no note with allow_other:\n{note}"
    );
    drop(env);
    drop(conf);
}
