//! Harness for tests against the real thing: a `mountd` process on a temporary state dir and
//! socket, driven by the real `wsfs` binary, with the workspace served over a real FUSE mount.
//!
//! These tests need root and /dev/fuse. Elsewhere they print a SKIP line and pass, except when
//! `CI` is set: CI must run them, so there a missing prerequisite fails the test.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a SIGTERMed mountd may take to flush, unmount and exit (generous: a loaded
/// 2-core CI machine).
const STOP_LIMIT: Duration = Duration::from_secs(60);

/// The `wsfs` binary under test.
pub fn wsfs_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wsfs"))
}

/// The `mountd` binary (built by `cargo build --workspace`, next to `wsfs`).
pub fn mountd_bin() -> PathBuf {
    let p = wsfs_bin().with_file_name("mountd");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        p.display()
    );
    p
}

/// True when real mounts can run here; prints why not otherwise (and fails under CI).
pub fn can_mount(test: &str) -> bool {
    crate::prereq::can_mount(test)
}

fn unsafe_free_geteuid() -> u32 {
    wsfs::sys::geteuid()
}

/// A host project, a state dir and a running daemon.
pub struct Live {
    /// Scratch root holding everything below.
    pub root: tempfile::TempDir,
    /// The host project directory.
    pub project: PathBuf,
    /// The daemon's state directory.
    pub state: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
    daemon: Option<Child>,
    extra_env: Vec<(String, String)>,
}

impl Live {
    /// Every non-directory entry under workspace `w`'s upper layer, relative to it, sorted.
    pub fn upper_files(&self) -> Vec<PathBuf> {
        let upper = self.state.join("workspaces/w/upper");
        let mut out = Vec::new();
        let mut stack = vec![upper.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(e.path().strip_prefix(&upper).unwrap().to_path_buf());
                }
            }
        }
        out.sort();
        out
    }

    /// A project with `files` (path, content) and a started daemon.
    pub fn new(files: &[(&str, &str)]) -> Live {
        let root = tempfile::tempdir().unwrap();
        let project = root.path().join("project");
        std::fs::create_dir(&project).unwrap();
        for (p, c) in files {
            let full = project.join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, c).unwrap();
        }
        let mut live = Live {
            state: root.path().join("state"),
            socket: root.path().join("run/mountd.sock"),
            project,
            root,
            daemon: None,
            extra_env: Vec::new(),
        };
        live.start();
        live
    }

    /// Like [`Live::new`], but with the daemon's state directory at `state` (for example on a
    /// small tmpfs the test mounted). The caller owns `state` and cleans it up.
    pub fn new_with_state(files: &[(&str, &str)], state: PathBuf) -> Live {
        let root = tempfile::tempdir().unwrap();
        let project = root.path().join("project");
        std::fs::create_dir(&project).unwrap();
        for (p, c) in files {
            let full = project.join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, c).unwrap();
        }
        let mut live = Live {
            state,
            socket: root.path().join("run/mountd.sock"),
            project,
            root,
            daemon: None,
            extra_env: Vec::new(),
        };
        live.start();
        live
    }

    /// Mounts `project` as workspace `name` at `<root>/<name>.mnt`; returns the mountpoint.
    pub fn mount_as(&self, project: &Path, name: &str) -> PathBuf {
        let mp = self.root.path().join(format!("{name}.mnt"));
        let out = self.ok([
            OsStr::new("mount"),
            project.as_os_str(),
            OsStr::new("--name"),
            OsStr::new(name),
            OsStr::new("--mountpoint"),
            mp.as_os_str(),
        ]);
        assert_eq!(out.trim(), mp.to_str().unwrap());
        mp
    }

    /// The daemon's pid, while it runs.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(|c| c.id())
    }

    /// True while the daemon process is alive.
    pub fn daemon_alive(&mut self) -> bool {
        match self.daemon.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Starts mountd (with `env` added) and waits until it answers.
    pub fn start_with(&mut self, env: &[(&str, &str)]) {
        self.spawn_mountd(Command::new(mountd_bin()), env);
    }

    /// Starts mountd with extra command-line `args` (`--listen ADDR`).
    pub fn start_with_args(&mut self, args: &[&str]) {
        let mut cmd = Command::new(mountd_bin());
        cmd.args(args);
        self.spawn_mountd(cmd, &[]);
    }

    /// Restarts mountd listening on a free loopback TCP port too (`--listen`); returns the
    /// port and the daemon's token (`wsfs token show`).
    pub fn restart_listening(&mut self) -> (u16, String) {
        self.stop();
        let port = free_port();
        self.start_with_args(&["--listen", &format!("127.0.0.1:{port}")]);
        let token = self.ok(["token", "show"]).trim().to_string();
        (port, token)
    }

    /// Starts mountd with both its soft and hard `RLIMIT_NOFILE` at `nofile` (through
    /// `prlimit`), so raising the soft limit to the hard one gains nothing.
    pub fn start_with_nofile(&mut self, nofile: u64) {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={nofile}:{nofile}"))
            .arg("--")
            .arg(mountd_bin());
        self.spawn_mountd(cmd, &[]);
    }

    fn spawn_mountd(&mut self, mut cmd: Command, env: &[(&str, &str)]) {
        assert!(self.daemon.is_none(), "daemon already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("mountd.log"))
            .unwrap();
        cmd.arg("--state-dir")
            .arg(&self.state)
            .arg("--socket")
            .arg(&self.socket)
            // `WSFS_TEST_RUST_LOG` raises the daemon's log level for an investigation.
            .env(
                "RUST_LOG",
                std::env::var("WSFS_TEST_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.daemon = Some(cmd.spawn().expect("spawning mountd"));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.wsfs(["list"]);
            if out.status.success() {
                return;
            }
            if let Some(status) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("mountd exited early: {status}\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "mountd did not answer:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts mountd.
    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    /// SIGTERM; returns the daemon's exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("daemon running");
        unsafe_free_kill(child.id(), libc::SIGTERM);
        wait_timeout(&mut child, STOP_LIMIT)
    }

    /// SIGKILL, as in a crash.
    pub fn kill9(&mut self) {
        let mut child = self.daemon.take().expect("daemon running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Waits for a daemon that is expected to die by itself (fault injection).
    pub fn wait_dead(&mut self) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("daemon running");
        wait_timeout(&mut child, Duration::from_secs(20))
    }

    /// Adds `key=value` to the environment of every later `wsfs` command.
    pub fn set_env(&mut self, key: &str, value: &Path) {
        self.extra_env
            .push((key.to_owned(), value.to_string_lossy().into_owned()));
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("mountd.log")).unwrap_or_default()
    }

    /// Runs `wsfs ARGS` against this daemon (never auto-starting another), from the project dir.
    pub fn wsfs<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.wsfs_in(self.root.path(), args)
    }

    /// Runs `wsfs ARGS` from directory `dir`.
    pub fn wsfs_in<I, S>(&self, dir: &Path, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(wsfs_bin());
        // Global flag first: `run`/`exec` take everything after their command verbatim.
        cmd.arg("--no-autostart")
            .args(args)
            .current_dir(dir)
            .env("WSFS_SOCKET", &self.socket)
            .env("WSFS_STATE_DIR", &self.state)
            .env("NO_COLOR", "1");
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// `wsfs ARGS`, asserting success; returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.wsfs(&args);
        assert!(
            out.status.success(),
            "wsfs {args:?} failed ({}):\nstdout: {}\nstderr: {}\nmountd log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `wsfs --json ARGS`, parsed.
    pub fn json<I, S>(&self, args: I) -> serde_json::Value
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<std::ffi::OsString> = vec!["--json".into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        serde_json::from_str(&self.ok(all)).unwrap()
    }

    /// Mounts the project as workspace `w`; returns the mountpoint.
    pub fn mount(&self) -> PathBuf {
        let mp = self.root.path().join("mnt");
        let out = self.ok([
            OsStr::new("mount"),
            self.project.as_os_str(),
            OsStr::new("--name"),
            OsStr::new("w"),
            OsStr::new("--mountpoint"),
            mp.as_os_str(),
        ]);
        assert_eq!(out.trim(), mp.to_str().unwrap());
        mp
    }

    /// `path -> content` of every regular file under `dir` (symlinks as `-> target`).
    pub fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let ft = e.file_type().unwrap();
                let rel = e.path().strip_prefix(dir).unwrap().to_path_buf();
                if ft.is_dir() {
                    out.insert(rel, b"<dir>".to_vec());
                    stack.push(e.path());
                } else if ft.is_symlink() {
                    let t = std::fs::read_link(e.path()).unwrap();
                    out.insert(rel, [b"-> ", t.as_os_str().as_encoded_bytes()].concat());
                } else {
                    out.insert(rel, std::fs::read(e.path()).unwrap());
                }
            }
        }
        out
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            unsafe_free_kill(child.id(), libc::SIGTERM);
            let status = wait_timeout(&mut child, STOP_LIMIT);
            if !status.success() && !std::thread::panicking() {
                panic!("mountd did not stop cleanly ({status}):\n{}", self.log());
            }
        }
        // `WSFS_TEST_KEEP_LOG=FILE` keeps the daemon's log past the temp dir (appended).
        if let Ok(keep) = std::env::var("WSFS_TEST_KEEP_LOG") {
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(keep)
            {
                use std::io::Write;
                let _ = f.write_all(self.log().as_bytes());
            }
        }
        // A crashed daemon leaves a dead mount: detach it so the temp dir can go.
        let mp = self.root.path().join("mnt");
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&mp)
            .stderr(Stdio::null())
            .status();
        // mountd seals bare mountpoints (immutable when root): release them so it can go.
        let mut sealed = vec![mp];
        if let Ok(dir) = std::fs::read_dir(self.state.join("mnt")) {
            sealed.extend(dir.flatten().map(|e| e.path()));
        }
        for p in sealed {
            let _ = Command::new("chattr")
                .arg("-i")
                .arg(&p)
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn unsafe_free_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

fn wait_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            // Where is it stuck? (gdb is optional; the backtrace goes into the failure.)
            let bt = Command::new("gdb")
                .args(["-p", &child.id().to_string(), "-batch", "-ex"])
                .arg("thread apply all bt")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            eprintln!("backtraces of process {}:\n{bt}", child.id());
            let _ = child.kill();
            let s = child.wait().unwrap();
            panic!(
                "process {} did not exit in {limit:?} ({:?})",
                child.id(),
                s.signal()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` until it returns true or `limit` passes; returns the time it took.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The `(path, reason)` pairs a commit report (`wsfs --json commit`) refused, sorted.
#[allow(
    dead_code,
    reason = "not every test binary that includes the harness commits"
)]
pub fn refused(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report["conflicts"]
        .as_array()
        .unwrap_or_else(|| panic!("no conflicts list in {report}"))
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A command's stdout and stderr, for assertion messages.
#[allow(
    dead_code,
    reason = "not every test binary that includes the harness needs it"
)]
pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A free TCP port on loopback (bound, then released for the caller to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
