//! The systems under test — native ext4, kernel overlayfs, fuse-overlayfs and wsfs — and the
//! guards that unmount them (lazily if need be) and remove their layers, even on failure.

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::util::{cmd, is_mounted, output, remove_all, run, tail, wait_for};

/// One column of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SystemKind {
    /// A plain copy of the tree on ext4: the physical limit.
    Native,
    /// Kernel overlayfs (`mount -t overlay`): the in-kernel limit for copy-on-write.
    Kovl,
    /// fuse-overlayfs (Debian package): the FUSE peer.
    FuseOverlayfs,
    /// A wsfs workspace served by mountd (open mode `open`: a round trip per open).
    Wsfs,
    /// A wsfs workspace mounted with `--open-mode no-open` (opens never reach mountd).
    WsfsNoOpen,
}

impl SystemKind {
    /// All systems, in table order.
    pub const ALL: [SystemKind; 5] = [
        SystemKind::Native,
        SystemKind::Kovl,
        SystemKind::FuseOverlayfs,
        SystemKind::Wsfs,
        SystemKind::WsfsNoOpen,
    ];

    /// The column name (also the name accepted by `WSFS_BENCH_SYSTEMS`).
    pub fn name(self) -> &'static str {
        match self {
            SystemKind::Native => "native",
            SystemKind::Kovl => "kovl",
            SystemKind::FuseOverlayfs => "fuse-overlayfs",
            SystemKind::Wsfs => "wsfs",
            SystemKind::WsfsNoOpen => "wsfs-noopen",
        }
    }

    /// A wsfs column (served by the harness's mountd).
    pub fn is_wsfs(self) -> bool {
        matches!(self, SystemKind::Wsfs | SystemKind::WsfsNoOpen)
    }

    /// The `--open-mode` of a wsfs column.
    fn open_mode(self) -> &'static str {
        match self {
            SystemKind::WsfsNoOpen => "no-open",
            _ => "open",
        }
    }

    /// Parses a column name.
    pub fn parse(s: &str) -> Result<SystemKind> {
        SystemKind::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .with_context(|| {
                format!("unknown system {s:?} in WSFS_BENCH_SYSTEMS (native, kovl, fuse-overlayfs, wsfs, wsfs-noopen)")
            })
    }
}

/// How to call the `wsfs` CLI against the harness's own daemon.
#[derive(Clone, Debug)]
pub struct WsfsCli {
    bin: PathBuf,
    state_dir: PathBuf,
    socket: PathBuf,
}

impl WsfsCli {
    /// A `wsfs` command with the state directory and socket set.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("WSFS_STATE_DIR", &self.state_dir)
            .env("WSFS_SOCKET", &self.socket);
        c
    }

    /// `wsfs mount LOWER --name NAME --mountpoint MNT --open-mode MODE`, then waits for the
    /// mount to appear.
    pub fn mount(&self, lower: &Path, name: &str, mnt: &Path, open_mode: &str) -> Result<()> {
        run(self
            .command()
            .arg("mount")
            .arg(lower)
            .args(["--name", name, "--open-mode", open_mode, "--mountpoint"])
            .arg(mnt))?;
        if !wait_for(Duration::from_secs(10), || is_mounted(mnt)) {
            bail!(
                "wsfs mount {name} returned but {} is not a mount point after 10 s",
                mnt.display()
            );
        }
        Ok(())
    }

    /// `wsfs commit NAME --include-scratch`: every change, also those under git-ignored paths
    /// (Debian's linux tree ignores `/*`, which would make every path scratch).
    pub fn commit(&self, name: &str) -> Result<()> {
        run(self.command().args(["commit", name, "--include-scratch"]))
    }

    /// `wsfs undo -w NAME`: the workspace's last commit.
    pub fn undo(&self, name: &str) -> Result<()> {
        run(self.command().args(["undo", "-w", name]))
    }

    /// `wsfs unmount NAME`, then `wsfs remove NAME` (best effort) to free its upper layer.
    pub fn unmount(&self, name: &str) -> Result<()> {
        run(self.command().args(["unmount", name]))?;
        if let Err(e) = run(self.command().args(["remove", name])) {
            eprintln!("workloads: {e:#}");
        }
        Ok(())
    }
}

/// The wsfs daemon the harness started (or found), stopped with SIGTERM on drop.
pub struct Wsfs {
    /// The CLI, pointed at this daemon.
    pub cli: WsfsCli,
    child: Option<Child>,
    pid: Cell<Option<u32>>,
}

impl Wsfs {
    /// Finds `mountd` and `wsfs` beside this bench's `wsfs` binary (or in `WSFS_BIN_DIR`) and
    /// checks they are the real programs; the error says why the wsfs column is skipped.
    pub fn locate() -> Result<(PathBuf, PathBuf)> {
        let dir = match std::env::var_os("WSFS_BIN_DIR") {
            Some(d) => PathBuf::from(d),
            None => Path::new(env!("CARGO_BIN_EXE_wsfs"))
                .parent()
                .context("CARGO_BIN_EXE_wsfs has no parent")?
                .to_path_buf(),
        };
        let (mountd, wsfs) = (dir.join("mountd"), dir.join("wsfs"));
        for b in [&mountd, &wsfs] {
            if !b.is_file() {
                bail!(
                    "{} is missing (build it: cargo build --release --workspace)",
                    b.display()
                );
            }
        }
        let help = Command::new(&wsfs)
            .arg("--help")
            .output()
            .with_context(|| format!("cannot run {} --help", wsfs.display()))?;
        let text = String::from_utf8_lossy(&help.stdout);
        if !(text.contains("mount") && text.contains("commit")) {
            bail!(
                "{} has no `mount`/`commit` subcommands yet (placeholder build: merge main's daemon/CLI and rebuild with cargo build --release --workspace)",
                wsfs.display()
            );
        }
        Ok((mountd, wsfs))
    }

    /// Starts `mountd --state-dir D --socket S` in the background under `dir` and waits for its
    /// socket. If it exits at once, `wsfs mount` is left to autostart it (pid found later).
    pub fn start(mountd: &Path, wsfs: &Path, dir: &Path) -> Result<Wsfs> {
        let state_dir = dir.join("wsfs-state");
        fs::create_dir_all(&state_dir)
            .with_context(|| format!("cannot create {}", state_dir.display()))?;
        let socket = state_dir.join("mountd.sock");
        let log = dir.join("mountd.log");
        let logf = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new(mountd)
            .arg("--state-dir")
            .arg(&state_dir)
            .arg("--socket")
            .arg(&socket)
            .env("WSFS_STATE_DIR", &state_dir)
            .env("WSFS_SOCKET", &socket)
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .spawn()
            .with_context(|| format!("cannot start {}", mountd.display()))?;
        let up = wait_for(Duration::from_secs(10), || {
            socket.exists() || matches!(child.try_wait(), Ok(Some(_)))
        });
        let cli = WsfsCli {
            bin: wsfs.to_path_buf(),
            state_dir,
            socket: socket.clone(),
        };
        if socket.exists() {
            let pid = child.id();
            return Ok(Wsfs {
                cli,
                child: Some(child),
                pid: Cell::new(Some(pid)),
            });
        }
        let why = if up {
            format!(
                "exited: {}",
                tail(&fs::read_to_string(&log).unwrap_or_default(), 300)
            )
        } else {
            let _ = child.kill();
            let _ = child.wait();
            "no socket after 10 s".to_string()
        };
        eprintln!("workloads: mountd --state-dir/--socket did not come up ({why}); relying on `wsfs mount` to autostart it");
        Ok(Wsfs {
            cli,
            child: None,
            pid: Cell::new(None),
        })
    }

    /// The daemon's pid (found with `pgrep -f <socket>` if `wsfs mount` autostarted it).
    pub fn pid(&self) -> Option<u32> {
        if self.pid.get().is_none() {
            let found = output(cmd("pgrep", ["-f".as_ref(), self.cli.socket.as_os_str()]))
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()));
            self.pid.set(found);
        }
        self.pid.get()
    }

    /// Resets the daemon's peak RSS (`echo 5 > /proc/PID/clear_refs`).
    pub fn reset_peak_rss(&self) {
        if let Some(pid) = self.pid() {
            let _ = fs::write(format!("/proc/{pid}/clear_refs"), "5");
        }
    }

    /// The daemon's peak RSS in KiB (VmHWM) since start or the last reset.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.pid()?;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Wsfs {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on the daemon we started (or the one serving our private socket).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        if let Some(child) = self.child.as_mut() {
            let done = wait_for(Duration::from_secs(10), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !done {
                eprintln!("workloads: mountd ignored SIGTERM for 10 s, killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A mounted view of a tree (or, for native, the tree itself). Dropping it unmounts (lazily if
/// a plain unmount fails) and removes its upper and work layers.
pub struct Mount {
    /// Where the workload runs.
    pub root: PathBuf,
    kind: SystemKind,
    name: String,
    layers: Option<PathBuf>,
    cli: Option<WsfsCli>,
}

impl Mount {
    /// The wsfs workspace name (empty for the other systems).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Unmounts now, reporting errors (Drop only retries lazily and logs).
    pub fn unmount(mut self) -> Result<()> {
        let r = self.unmount_inner();
        if r.is_err() && is_mounted(&self.root) {
            let _ = run(cmd("umount", ["-l".as_ref(), self.root.as_os_str()]));
        }
        self.kind = SystemKind::Native; // nothing left for Drop to unmount
        if let Some(l) = self.layers.take() {
            remove_all(&l)?;
        }
        r
    }

    fn unmount_inner(&self) -> Result<()> {
        let m = &self.root;
        match self.kind {
            SystemKind::Native => Ok(()),
            SystemKind::Kovl => run(cmd("umount", [m])),
            SystemKind::FuseOverlayfs => run(cmd("fusermount3", ["-u".as_ref(), m.as_os_str()])),
            SystemKind::Wsfs | SystemKind::WsfsNoOpen => match &self.cli {
                Some(cli) => {
                    cli.unmount(&self.name)?;
                    if !wait_for(Duration::from_secs(10), || !is_mounted(m)) {
                        bail!("wsfs unmount {} left {} mounted", self.name, m.display());
                    }
                    Ok(())
                }
                None => Ok(()),
            },
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.kind != SystemKind::Native {
            if let Err(e) = self.unmount_inner() {
                eprintln!(
                    "workloads: unmount of {} failed ({e:#}); unmounting lazily",
                    self.root.display()
                );
            }
            if is_mounted(&self.root) {
                let _ = run(cmd("umount", ["-l".as_ref(), self.root.as_os_str()]));
            }
        }
        if let Some(l) = self.layers.take() {
            if let Err(e) = remove_all(&l) {
                eprintln!("workloads: {e:#}");
            }
        }
    }
}

/// Creates mounts of each system under a run directory, with unique names.
pub struct Systems {
    dir: PathBuf,
    /// The wsfs daemon, if the wsfs column runs.
    pub wsfs: Option<Wsfs>,
    counter: Cell<u32>,
}

impl Systems {
    /// Mounts will live under `dir/mnt` and `dir/layers`.
    pub fn new(dir: &Path, wsfs: Option<Wsfs>) -> Systems {
        Systems {
            dir: dir.to_path_buf(),
            wsfs,
            counter: Cell::new(0),
        }
    }

    /// A fresh view of `lower` on `kind` (fresh upper layer); for native, `lower` itself.
    pub fn mount(&self, kind: SystemKind, lower: &Path, tag: &str) -> Result<Mount> {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        let id = format!("{tag}-{n}");
        let mut m = Mount {
            root: lower.to_path_buf(),
            kind: SystemKind::Native,
            name: String::new(),
            layers: None,
            cli: None,
        };
        if kind == SystemKind::Native {
            return Ok(m);
        }
        let mnt = self.dir.join("mnt").join(&id);
        fs::create_dir_all(&mnt).with_context(|| format!("cannot create {}", mnt.display()))?;
        m.root = mnt.clone();
        match kind {
            SystemKind::Native => unreachable!(),
            SystemKind::Kovl | SystemKind::FuseOverlayfs => {
                let layers = self.dir.join("layers").join(&id);
                let (upper, work) = (layers.join("upper"), layers.join("work"));
                fs::create_dir_all(&upper)?;
                fs::create_dir_all(&work)?;
                m.layers = Some(layers);
                let opts = format!(
                    "lowerdir={},upperdir={},workdir={}",
                    lower.display(),
                    upper.display(),
                    work.display()
                );
                let mut c = if kind == SystemKind::Kovl {
                    cmd("mount", ["-t", "overlay", "overlay", "-o", &opts])
                } else {
                    cmd("fuse-overlayfs", ["-o", &opts])
                };
                run(c.arg(&mnt))?;
                m.kind = kind;
            }
            SystemKind::Wsfs | SystemKind::WsfsNoOpen => {
                let w = self.wsfs.as_ref().context("wsfs is not available")?;
                let name = format!("bench-{id}");
                w.cli.mount(lower, &name, &mnt, kind.open_mode())?;
                m.kind = kind;
                m.name = name;
                m.cli = Some(w.cli.clone());
            }
        }
        Ok(m)
    }
}

/// Lazily unmounts every mount left under `dir` by an interrupted earlier run.
pub fn unmount_stale(dir: &Path) -> Result<()> {
    let mut stale: Vec<PathBuf> = crate::util::mount_points()?
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect();
    stale.sort();
    for p in stale.iter().rev() {
        eprintln!("workloads: unmounting stale {}", p.display());
        run(cmd("umount", ["-l".as_ref(), p.as_os_str()]))?;
    }
    Ok(())
}
