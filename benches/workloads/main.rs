//! Macro benchmarks (issue 5): each workload on native ext4, kernel overlayfs, fuse-overlayfs
//! and a wsfs mount, in one run on the same tree; median seconds and ratio to native.
//!
//! ```sh
//! sudo -E cargo bench --bench workloads                  # quick mode (generated tree, minutes)
//! WSFS_BENCH=full cargo bench --bench workloads          # Linux 6.1 source (~78k files)
//! ```
//! Environment: `WSFS_BENCH=quick|full`, `WSFS_BENCH_RUNS=n` (timed runs per cell, default 3),
//! `WSFS_BENCH_ONLY=ready,grep,...`, `WSFS_BENCH_SYSTEMS=native,kovl,fuse-overlayfs,wsfs,wsfs-noopen`
//! (`wsfs-noopen`: the same daemon, mounts with `--open-mode no-open`),
//! `WSFS_BENCH_DIR` (scratch and cache, default /var/tmp/wsfs-bench), `WSFS_BIN_DIR` (where
//! `mountd` and `wsfs` are; default beside this bench's build). Needs root (mounts, drop_caches).
//! The table is printed and written to `<target dir>/workloads.md`.

mod cases;
mod report;
mod systems;
mod tree;
mod util;

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use cases::{Ctx, Sizes, Workload};
use report::{fmt_secs, Outcome, Results};
use systems::{unmount_stale, SystemKind, Systems, Wsfs};
use tree::TreeSpec;
use util::{cmd, remove_all, run, tool_version};

/// Quick (generated tree, CI smoke test) or full (Linux source).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Quick,
    Full,
}

/// Settings read from the environment.
struct Config {
    mode: Mode,
    runs: usize,
    only: Option<Vec<String>>,
    systems: Vec<SystemKind>,
    dir: PathBuf,
}

impl Config {
    /// Reads the `WSFS_BENCH*` variables.
    fn from_env() -> Result<Config> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let mode = match var("WSFS_BENCH").as_deref() {
            None | Some("quick") => Mode::Quick,
            Some("full") => Mode::Full,
            Some(other) => bail!("WSFS_BENCH={other:?}: expected quick or full"),
        };
        let runs = match var("WSFS_BENCH_RUNS") {
            None => 3,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .with_context(|| format!("WSFS_BENCH_RUNS={v:?}: expected a positive integer"))?,
        };
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let systems = match var("WSFS_BENCH_SYSTEMS") {
            None => SystemKind::ALL.to_vec(),
            Some(v) => list(v)
                .iter()
                .map(|s| SystemKind::parse(s))
                .collect::<Result<_>>()?,
        };
        Ok(Config {
            mode,
            runs,
            only: var("WSFS_BENCH_ONLY").map(list),
            systems,
            dir: var("WSFS_BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/tmp/wsfs-bench")),
        })
    }

    /// Whether `WSFS_BENCH_ONLY` selects workload `name` (exact, or `grep` for `grep_cold`).
    fn selects(&self, name: &str) -> bool {
        match &self.only {
            None => true,
            Some(only) => only
                .iter()
                .any(|o| name == o || name.starts_with(&format!("{o}_"))),
        }
    }

    /// The tree to prepare.
    fn tree_spec(&self) -> TreeSpec {
        let s = self.sizes();
        match self.mode {
            Mode::Quick => TreeSpec {
                generated_files: Some(5_000),
                ready_sizes: vec![1_000],
                storm_files: s.storm_files,
                build_units: s.build_units,
            },
            Mode::Full => TreeSpec {
                generated_files: None,
                ready_sizes: vec![1_000, 10_000],
                storm_files: s.storm_files,
                build_units: s.build_units,
            },
        }
    }

    /// Workload sizes for the mode.
    fn sizes(&self) -> Sizes {
        match self.mode {
            Mode::Quick => Sizes {
                modify_files: 1_000,
                commit_changes: vec![100, 1_000],
                seq_mib: 256,
                rand_mib: 256,
                storm_files: 2_000,
                build_units: 8,
            },
            Mode::Full => Sizes {
                modify_files: 1_000,
                commit_changes: vec![100, 10_000],
                seq_mib: 2_048,
                rand_mib: 1_024,
                storm_files: 10_000,
                build_units: 32,
            },
        }
    }
}

fn main() -> ExitCode {
    // `cargo test --all-targets` runs bench binaries without `--bench`: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("workloads: run with `cargo bench --bench workloads` (needs root)");
        return ExitCode::SUCCESS;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("workloads: skipped: needs root (overlay and FUSE mounts, drop_caches)");
        return ExitCode::SUCCESS;
    }
    match Config::from_env().and_then(|cfg| bench(&cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workloads: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The whole run: lock, prepare, measure every cell, report, clean up.
fn bench(cfg: &Config) -> Result<()> {
    fs::create_dir_all(&cfg.dir).with_context(|| format!("cannot create {}", cfg.dir.display()))?;
    let _lock = lock(&cfg.dir)?;
    let run_dir = cfg.dir.join("run");
    unmount_stale(&run_dir)?;
    remove_all(&run_dir)?;
    fs::create_dir_all(&run_dir)?;
    let _cleanup = RemoveOnDrop(run_dir.clone());
    util::install_stop_handler();
    preflight(cfg);

    let trees = tree::prepare(&cfg.tree_spec(), &cfg.dir.join("cache"))?;
    eprintln!(
        "workloads: tree: {} ({})",
        trees.description,
        trees.tree.display()
    );
    let (wsfs, wsfs_skip) = start_wsfs(cfg, &run_dir);
    let native_root = run_dir.join("native");
    if cfg.systems.contains(&SystemKind::Native) {
        eprintln!("workloads: copying the tree for native (cp -a)");
        run(cmd(
            "cp",
            [
                "-a".as_ref(),
                trees.tree.as_os_str(),
                native_root.as_os_str(),
            ],
        ))?;
    }
    let systems = Systems::new(&run_dir, wsfs);
    let ctx = Ctx::new(
        &trees,
        &systems,
        native_root,
        run_dir.clone(),
        cfg.runs,
        cfg.sizes(),
    );

    let mut results = Results::default();
    'all: for w in cases::all().into_iter().filter(|w| cfg.selects(w.name)) {
        for &sys in &cfg.systems {
            if util::stop_requested() {
                eprintln!("workloads: interrupted: cleaning up, partial report");
                break 'all;
            }
            measure_cell(&ctx, &w, sys, wsfs_skip.is_some(), &mut results);
        }
    }
    drop(systems); // stops mountd before the report reads nothing more from it
    let md = render(cfg, &trees.description, &results, wsfs_skip.as_deref());
    println!("\n{md}");
    let out = target_dir().join("workloads.md");
    fs::write(&out, &md).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("workloads: written to {}", out.display());
    Ok(())
}

/// Starts the wsfs daemon if the wsfs column is selected and the binaries are real; otherwise
/// returns why the column is skipped.
fn start_wsfs(cfg: &Config, run_dir: &Path) -> (Option<Wsfs>, Option<String>) {
    if !cfg.systems.iter().any(|s| s.is_wsfs()) {
        return (None, None);
    }
    let started = Wsfs::locate().and_then(|(mountd, cli)| Wsfs::start(&mountd, &cli, run_dir));
    match started {
        Ok(w) => (Some(w), None),
        Err(e) => {
            let why = format!("{e:#}");
            eprintln!("workloads: wsfs column skipped: {why}");
            (None, Some(why))
        }
    }
}

/// Measures one workload on one system and records its rows (or why they are missing).
fn measure_cell(
    ctx: &Ctx,
    w: &Workload,
    sys: SystemKind,
    wsfs_skipped: bool,
    results: &mut Results,
) {
    let rows = w.rows(ctx);
    if sys.is_wsfs() && wsfs_skipped {
        for r in &rows {
            results.add(r, sys, Outcome::Skipped);
        }
        return;
    }
    eprintln!("workloads: {} on {} ...", w.name, sys.name());
    let daemon = ctx
        .systems
        .wsfs
        .as_ref()
        .filter(|_| sys.is_wsfs() && w.tracks_rss());
    if let Some(d) = daemon {
        d.reset_peak_rss();
    }
    match w.measure(ctx, sys) {
        Ok(measured) => {
            for (row, samples) in measured {
                let o = match samples {
                    Some(v) => {
                        eprintln!("    {row}: median {}", fmt_secs(util::median(&v)));
                        Outcome::Samples(v)
                    }
                    None => Outcome::NotApplicable,
                };
                results.add(&row, sys, o);
            }
        }
        Err(e) => {
            eprintln!("workloads: {} on {} FAILED: {e:#}", w.name, sys.name());
            for r in &rows {
                results.add(r, sys, Outcome::Failed(format!("{e:#}")));
            }
        }
    }
    if let Some(kib) = daemon.and_then(|d| d.peak_rss_kib()) {
        results.rss.push((w.name.to_string(), kib));
    }
}

/// The markdown report: machine, tools, command, table, mountd memory, samples.
fn render(cfg: &Config, tree: &str, results: &Results, wsfs_skip: Option<&str>) -> String {
    let mode = if cfg.mode == Mode::Full {
        "full"
    } else {
        "quick"
    };
    let mut md = format!(
        "## Workloads ({mode} mode)\n\n- Machine: {}\n- Tree: {tree}\n- Command: `WSFS_BENCH={mode} WSFS_BENCH_RUNS={} cargo bench --bench workloads`\n\n",
        machine(&cfg.dir),
        cfg.runs
    );
    md.push_str(
        "Median of the timed runs; in parentheses the ratio to native (lower is better).\n\n",
    );
    md.push_str(&results.table(&cfg.systems));
    if let Some(why) = wsfs_skip {
        md.push_str(&format!("\nwsfs column skipped: {why}\n"));
    }
    if !results.rss.is_empty() {
        md.push_str("\nmountd peak RSS (VmHWM, reset before each workload):\n");
        for (w, kib) in &results.rss {
            md.push_str(&format!("- {w}: {:.1} MiB\n", *kib as f64 / 1024.0));
        }
    }
    md.push_str(&format!("\nTools: {}.\n", tools()));
    md.push_str("\n<details><summary>All samples (seconds)</summary>\n\n");
    md.push_str(&results.details());
    md.push_str("\n</details>\n");
    md
}

/// `nproc`, kernel, memory and the filesystem of the scratch directory.
fn machine(dir: &Path) -> String {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = tool_version("uname", &["-r"]);
    let fstype = tool_version(
        "findmnt",
        &["-n", "-o", "FSTYPE,SOURCE", "-T", &dir.to_string_lossy()],
    );
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|k| k.parse::<u64>().ok())
        .map(|k| format!("{:.0} GiB RAM", k as f64 / 1048576.0))
        .unwrap_or_default();
    format!(
        "{nproc} CPUs, {mem}, Linux {kernel}, scratch and trees on {fstype} ({})",
        dir.display()
    )
}

/// Versions of the tools the workloads call.
fn tools() -> String {
    let fovl = tool_version(
        "dpkg-query",
        &["-W", "-f", "fuse-overlayfs ${Version}", "fuse-overlayfs"],
    );
    [
        tool_version("fio", &[]),
        tool_version("rg", &[]),
        tool_version("rsync", &[]),
        tool_version("git", &[]),
        tool_version("gcc", &[]),
        tool_version("make", &[]),
        tool_version("tar", &[]),
        tool_version("find", &[]),
        fovl,
    ]
    .join("; ")
}

/// Warns about missing tools (the cells that need them will fail with the same message).
fn preflight(cfg: &Config) {
    let mut missing = Vec::new();
    for t in ["fio", "rg", "rsync", "git", "make", "gcc", "tar", "find"] {
        if tool_version(t, &[]) == "not installed" {
            missing.push(t);
        }
    }
    if cfg.systems.contains(&SystemKind::FuseOverlayfs)
        && tool_version("fusermount3", &["-V"]) == "not installed"
    {
        missing.push("fusermount3");
    }
    if !missing.is_empty() {
        eprintln!(
            "workloads: missing tools {missing:?}: apt-get install -y fio ripgrep rsync git make gcc fuse3 fuse-overlayfs"
        );
    }
}

/// The cargo target directory (this binary is `<target>/<profile>/deps/workloads-*`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// An exclusive flock on `dir/lock`, so two runs never share the scratch directory.
fn lock(dir: &Path) -> Result<fs::File> {
    let path = dir.join("lock");
    let f = fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!("another workloads run holds {}", path.display());
    }
    Ok(f)
}

/// Removes the run directory at the end, after every mount guard has been dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Err(e) = unmount_stale(&self.0).and_then(|()| remove_all(&self.0)) {
            eprintln!("workloads: cleanup: {e:#}");
        }
    }
}
