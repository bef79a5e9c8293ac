//! Per-command cost against pending changes (issue 12, defect 5): `wsfs run true`, `wsfs list`
//! and `wsfs status` on a workspace with 0 and with 50,000 pending scratch paths.
//!
//! ```sh
//! cargo build --release --workspace && sudo -E cargo bench --bench pending
//! ```
//! Targets: `run true` ≤ 30 ms at both sizes (independent of the pending count), `status` with
//! scratch hidden ≤ 100 ms at 50,000. Environment: `WSFS_BENCH_PENDING=n` (scratch paths,
//! default 50000), `WSFS_BENCH_RUNS=n` (timed runs per cell, default 10), `WSFS_BENCH_DIR`
//! (default /var/tmp/wsfs-bench), `WSFS_BIN_DIR` (where `mountd` and `wsfs` are; default
//! beside this bench's build). Needs root (or fusermount3) for `wsfs run`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

struct Daemon {
    child: Child,
    wsfs: PathBuf,
    state: PathBuf,
    socket: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.cli(&["unmount", "bench"]).output();
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.wsfs);
        c.env("WSFS_STATE_DIR", &self.state)
            .env("WSFS_SOCKET", &self.socket)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Runs `args` and checks it succeeded; returns its wall time.
    fn timed(&self, args: &[&str]) -> Result<Duration> {
        let start = Instant::now();
        let out = self.cli(args).output()?;
        let took = start.elapsed();
        if !out.status.success() {
            bail!(
                "wsfs {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(took)
    }
}

fn median_ms(d: &Daemon, args: &[&str], runs: usize) -> Result<f64> {
    d.timed(args)?; // warm-up
    let mut v: Vec<f64> = (0..runs)
        .map(|_| d.timed(args).map(|t| t.as_secs_f64() * 1e3))
        .collect::<Result<_>>()?;
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v[v.len() / 2])
}

fn env_usize(key: &str, default: usize) -> Result<usize> {
    match std::env::var(key) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{key}={v:?}: expected a number")),
        Err(_) => Ok(default),
    }
}

fn bench() -> Result<String> {
    let pending = env_usize("WSFS_BENCH_PENDING", 50_000)?;
    let runs = env_usize("WSFS_BENCH_RUNS", 10)?.max(1);
    let bin_dir = match std::env::var_os("WSFS_BIN_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_BIN_EXE_wsfs"))
            .parent()
            .context("no bin dir")?
            .to_path_buf(),
    };
    let (mountd, wsfs) = (bin_dir.join("mountd"), bin_dir.join("wsfs"));
    if !mountd.is_file() {
        bail!(
            "{} is missing (cargo build --release --workspace)",
            mountd.display()
        );
    }
    let root = PathBuf::from(
        std::env::var_os("WSFS_BENCH_DIR").unwrap_or_else(|| "/var/tmp/wsfs-bench".into()),
    )
    .join("pending");
    let _ = fs::remove_dir_all(&root);
    let project = root.join("project");
    fs::create_dir_all(project.join(".git"))?;
    fs::create_dir_all(project.join("src"))?;
    fs::write(project.join(".gitignore"), "node_modules/\n")?;
    fs::write(project.join("src/main.rs"), "fn main() {}\n")?;
    let state = root.join("state");
    fs::create_dir_all(&state)?;
    let socket = state.join("mountd.sock");
    let log = fs::File::create(root.join("mountd.log"))?;
    let child = Command::new(&mountd)
        .arg("--state-dir")
        .arg(&state)
        .arg("--socket")
        .arg(&socket)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", mountd.display()))?;
    let d = Daemon {
        child,
        wsfs,
        state,
        socket: socket.clone(),
    };
    let t0 = Instant::now();
    while !socket.exists() {
        if t0.elapsed() > Duration::from_secs(10) {
            bail!("mountd did not come up (see {}/mountd.log)", root.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mnt = root.join("mnt");
    let project_s = project.to_str().context("utf-8 path")?;
    let mnt_s = mnt.to_str().context("utf-8 path")?;
    d.timed(&["mount", project_s, "--name", "bench", "--mountpoint", mnt_s])?;

    let cells = |label: &str| -> Result<Vec<(String, f64)>> {
        Ok(vec![
            (
                format!("`wsfs run true`, {label}"),
                median_ms(&d, &["run", project_s, "--", "true"], runs)?,
            ),
            (
                format!("`wsfs list`, {label}"),
                median_ms(&d, &["list"], runs)?,
            ),
            (
                format!("`wsfs status` (scratch hidden), {label}"),
                median_ms(&d, &["status", "bench"], runs)?,
            ),
        ])
    };
    let mut rows = cells("0 pending")?;

    // `npm install`-like scratch: directories of small files, written through the mount.
    let t = Instant::now();
    let per_dir = 99;
    let mut made = 0;
    let mut dir_no = 0;
    while made < pending {
        let dir = mnt.join(format!("node_modules/pkg{dir_no:05}"));
        fs::create_dir_all(&dir)?;
        made += 1 + usize::from(dir_no == 0); // the directory (and node_modules itself)
        for f in 0..per_dir {
            if made >= pending {
                break;
            }
            fs::write(dir.join(format!("f{f:03}.js")), b"module.exports = 1;\n")?;
            made += 1;
        }
        dir_no += 1;
    }
    fs::write(mnt.join("src/main.rs"), "fn main() { println!(); }\n")?;
    let fill = t.elapsed();
    let info = d.cli(&["--json", "list"]).output()?;
    let info: serde_json::Value = serde_json::from_slice(&info.stdout)?;
    let label = format!("{} pending scratch", info[0]["scratch"]);
    rows.extend(cells(&label)?);
    let status_all = median_ms(&d, &["status", "bench", "--all"], runs.min(3))?;
    rows.push((format!("`wsfs status --all`, {label}"), status_all));

    let mut md = format!(
        "pending-count bench: {runs} runs per cell (median), scratch written in {:.1} s\n\n\
         | command | ms |\n|---|---:|\n",
        fill.as_secs_f64()
    );
    for (name, ms) in rows {
        md.push_str(&format!("| {name} | {ms:.1} |\n"));
    }
    Ok(md)
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    match bench() {
        Ok(md) => {
            println!("{md}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pending bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
