//! The workloads of issue 5. Each one measures one system and returns its rows: a name and
//! the timed samples (seconds), or `None` where the row does not apply to that system.

use std::cell::OnceCell;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::systems::{Mount, SystemKind, Systems};
use crate::tree::{Trees, BUILD_DIR};
use crate::util::{cmd, drop_caches, remove_all, run, spread, time, time_codes};

/// Sizes that differ between quick and full mode.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Files modified by the copy-up workload.
    pub modify_files: usize,
    /// Change counts for the commit rows.
    pub commit_changes: Vec<usize>,
    /// Sequential file size in MiB.
    pub seq_mib: u64,
    /// Bytes read by the 4k random-read job, in MiB.
    pub rand_mib: u64,
    /// Files in the create-storm tarball.
    pub storm_files: usize,
    /// C files in the build project.
    pub build_units: usize,
}

/// Everything a workload needs.
pub struct Ctx<'a> {
    /// The prepared trees.
    pub trees: &'a Trees,
    /// Mount factory (and the wsfs daemon).
    pub systems: &'a Systems,
    /// The native system's private copy of the tree.
    pub native_root: PathBuf,
    /// Scratch directory of this run.
    pub scratch: PathBuf,
    /// Timed runs per cell.
    pub runs: usize,
    /// Mode-dependent sizes.
    pub sizes: Sizes,
    /// Hard-link farms of the tree for the commit rows: (host, container copy).
    commit_trees: OnceCell<(PathBuf, PathBuf)>,
}

impl<'a> Ctx<'a> {
    /// A context; the commit trees are made on first use.
    pub fn new(
        trees: &'a Trees,
        systems: &'a Systems,
        native_root: PathBuf,
        scratch: PathBuf,
        runs: usize,
        sizes: Sizes,
    ) -> Self {
        Ctx {
            trees,
            systems,
            native_root,
            scratch,
            runs,
            sizes,
            commit_trees: OnceCell::new(),
        }
    }

    /// The tree a system works on: native has its own copy, the overlays share the lower.
    fn lower(&self, sys: SystemKind) -> &Path {
        if sys == SystemKind::Native {
            &self.native_root
        } else {
            &self.trees.tree
        }
    }

    /// A fresh view of the tree on `sys`.
    fn mount(&self, sys: SystemKind, tag: &str) -> Result<Mount> {
        self.systems.mount(sys, self.lower(sys), tag)
    }

    /// Files the write workloads touch (`n` spread over the tree, the build project excluded).
    fn pick_files(&self, n: usize) -> Vec<PathBuf> {
        let files: Vec<PathBuf> = self
            .trees
            .files
            .iter()
            .filter(|f| !f.starts_with(BUILD_DIR))
            .cloned()
            .collect();
        spread(&files, n)
    }

    /// (host, container) hard-link copies of the tree: writes replace files by rename (rsync,
    /// wsfs commit), so the shared tree is never modified through them.
    fn commit_trees(&self) -> Result<&(PathBuf, PathBuf)> {
        if self.commit_trees.get().is_none() {
            let host = self.scratch.join("commit-host");
            let cont = self.scratch.join("commit-container");
            for d in [&host, &cont] {
                run(cmd(
                    "cp",
                    ["-al".as_ref(), self.trees.tree.as_os_str(), d.as_os_str()],
                ))?;
            }
            let _ = self.commit_trees.set((host, cont));
        }
        Ok(self.commit_trees.get().expect("set above"))
    }
}

/// One benchmark of issue 5.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Name accepted by `WSFS_BENCH_ONLY` (a prefix before `_` also matches, e.g. `grep`).
    pub name: &'static str,
    kind: Kind,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Ready,
    StatWalk { cold: bool },
    ReadAll { cold: bool },
    Grep { cold: bool },
    GitStatus,
    CreateStorm,
    Modify,
    SeqIo,
    Build,
    Commit,
    Undo,
}

/// Every workload, in table order.
pub fn all() -> Vec<Workload> {
    use Kind::*;
    let w = |name, kind| Workload { name, kind };
    vec![
        w("ready", Ready),
        w("stat_walk", StatWalk { cold: false }),
        w("stat_walk_cold", StatWalk { cold: true }),
        w("read_all", ReadAll { cold: false }),
        w("read_all_cold", ReadAll { cold: true }),
        w("grep", Grep { cold: false }),
        w("grep_cold", Grep { cold: true }),
        w("git_status", GitStatus),
        w("create_storm", CreateStorm),
        w("modify", Modify),
        w("seq_io", SeqIo),
        w("build", Build),
        w("commit", Commit),
        w("undo", Undo),
    ]
}

/// Rows of one workload with their samples, `None` where not applicable.
pub type Rows = Vec<(String, Option<Vec<f64>>)>;

impl Workload {
    /// The row names this workload produces (so failures can be shown per row).
    pub fn rows(&self, ctx: &Ctx) -> Vec<String> {
        let s = &ctx.sizes;
        let temp = |cold: bool| if cold { "cold" } else { "warm" };
        match self.kind {
            Kind::Ready => ctx
                .trees
                .ready
                .iter()
                .map(|(n, _)| format!("workspace ready, {n} files (native: rsync -a copy)"))
                .collect(),
            Kind::StatWalk { cold } => vec![format!("stat walk `find -printf` ({})", temp(cold))],
            Kind::ReadAll { cold } => vec![format!("read every file ({})", temp(cold))],
            Kind::Grep { cold } => vec![format!("`rg -uu -c` over the tree ({})", temp(cold))],
            Kind::GitStatus => vec!["`git status` (warm)".into()],
            Kind::CreateStorm => vec![
                format!("create storm: untar {} small files", s.storm_files),
                format!("create storm: `rm -rf` {} files", s.storm_files),
            ],
            Kind::Modify => vec![format!(
                "modify {} existing files (copy-up)",
                s.modify_files
            )],
            Kind::SeqIo => vec![
                format!("seq write {} MiB + fsync (fio)", s.seq_mib),
                format!("seq read {} MiB (cold, fio)", s.seq_mib),
                format!("4k random read {} MiB (warm, fio)", s.rand_mib),
            ],
            Kind::Build => vec![format!("`make -j2` of {} C files", s.build_units + 1)],
            Kind::Commit => s
                .commit_changes
                .iter()
                .map(|n| format!("commit {n} changes (native: rsync -a back)"))
                .collect(),
            Kind::Undo => vec![format!(
                "undo of a commit of {} changes",
                s.commit_changes[0]
            )],
        }
    }

    /// Whether mountd's peak RSS is recorded while this workload runs on wsfs.
    pub fn tracks_rss(&self) -> bool {
        matches!(self.kind, Kind::StatWalk { .. } | Kind::CreateStorm)
    }

    /// Runs this workload on `sys`: setup, untimed warm-up where it applies, `ctx.runs` timed runs.
    pub fn measure(&self, ctx: &Ctx, sys: SystemKind) -> Result<Rows> {
        let names = self.rows(ctx);
        let samples: Vec<Option<Vec<f64>>> = match self.kind {
            Kind::Ready => ready(ctx, sys)?,
            Kind::StatWalk { cold } => vec![Some(read_cell(ctx, sys, self.name, cold, stat_walk)?)],
            Kind::ReadAll { cold } => vec![Some(read_cell(ctx, sys, self.name, cold, read_all)?)],
            Kind::Grep { cold } => vec![Some(read_cell(ctx, sys, self.name, cold, grep)?)],
            Kind::GitStatus => vec![Some(read_cell(ctx, sys, self.name, false, git_status)?)],
            Kind::CreateStorm => create_storm(ctx, sys)?,
            Kind::Modify => vec![Some(modify(ctx, sys)?)],
            Kind::SeqIo => seq_io(ctx, sys)?,
            Kind::Build => vec![Some(build(ctx, sys)?)],
            Kind::Commit => commit(ctx, sys)?,
            Kind::Undo => vec![undo(ctx, sys)?],
        };
        Ok(names.into_iter().zip(samples).collect())
    }
}

/// Seconds of each `Duration`.
fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A read-only workload: one mount, a warm-up run (warm) or a cache drop before each run (cold).
fn read_cell(
    ctx: &Ctx,
    sys: SystemKind,
    tag: &str,
    cold: bool,
    f: fn(&Path) -> Result<Duration>,
) -> Result<Vec<f64>> {
    let m = ctx.mount(sys, tag)?;
    if !cold {
        f(&m.root)?;
    }
    let mut out = Vec::new();
    for _ in 0..ctx.runs {
        if cold {
            drop_caches()?;
        }
        out.push(secs(f(&m.root)?));
    }
    m.unmount()?;
    Ok(out)
}

/// (1) Time to a usable workspace: mount + first listing, or `rsync -a` into a fresh copy.
fn ready(ctx: &Ctx, sys: SystemKind) -> Result<Vec<Option<Vec<f64>>>> {
    let mut rows = Vec::new();
    for (n, src) in &ctx.trees.ready {
        let once = || -> Result<f64> {
            if sys == SystemKind::Native {
                let dest = ctx.scratch.join("ready-copy");
                remove_all(&dest)?;
                let mut src_arg = src.as_os_str().to_owned();
                src_arg.push("/");
                let t = time(cmd("rsync", [src_arg.as_os_str(), dest.as_os_str()]).arg("-a"))?;
                remove_all(&dest)?;
                return Ok(secs(t));
            }
            let t = Instant::now();
            let m = ctx.systems.mount(sys, src, &format!("ready{n}"))?;
            let first = fs::read_dir(&m.root)
                .with_context(|| format!("listing {}", m.root.display()))?
                .next();
            let elapsed = secs(t.elapsed());
            first.context("the fresh workspace is empty")??;
            m.unmount()?;
            Ok(elapsed)
        };
        once()?; // warm-up
        rows.push(Some((0..ctx.runs).map(|_| once()).collect::<Result<_>>()?));
    }
    Ok(rows)
}

/// (2) `find ROOT -printf '%s %m %i\n'` (lstat of every entry).
fn stat_walk(root: &Path) -> Result<Duration> {
    time(cmd(
        "find",
        [root.as_os_str(), "-printf".as_ref(), "%s %m %i\n".as_ref()],
    ))
}

/// (3) Reads every regular file to the end (one thread, 256 KiB reads).
fn read_all(root: &Path) -> Result<Duration> {
    let t = Instant::now();
    let mut buf = vec![0u8; 256 << 10];
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let p = e.path();
                let mut f =
                    fs::File::open(&p).with_context(|| format!("opening {}", p.display()))?;
                while f
                    .read(&mut buf)
                    .with_context(|| format!("reading {}", p.display()))?
                    > 0
                {}
            }
        }
    }
    Ok(t.elapsed())
}

/// (4) `rg -uu -c EXPORT_SYMBOL_GPL ROOT` (hidden and ignored files included; exit 1 = no match).
fn grep(root: &Path) -> Result<Duration> {
    time_codes(
        cmd(
            "rg",
            [
                "-uu".as_ref(),
                "-c".as_ref(),
                "EXPORT_SYMBOL_GPL".as_ref(),
                root.as_os_str(),
            ],
        ),
        &[0, 1],
    )
}

/// (5) `git -C ROOT status --porcelain`.
fn git_status(root: &Path) -> Result<Duration> {
    time(cmd(
        "git",
        [
            "-C".as_ref(),
            root.as_os_str(),
            "status".as_ref(),
            "--porcelain".as_ref(),
        ],
    ))
}

/// (6) Untar the storm tarball into the workspace, then `rm -rf` it; one warm-up round.
fn create_storm(ctx: &Ctx, sys: SystemKind) -> Result<Vec<Option<Vec<f64>>>> {
    let m = ctx.mount(sys, "storm")?;
    let dest = m.root.join("storm");
    let round = || -> Result<(f64, f64)> {
        let untar = time(
            cmd("tar", ["-xf".as_ref(), ctx.trees.storm_tar.as_os_str()])
                .arg("-C")
                .arg(&m.root),
        )?;
        let rm = time(cmd("rm", ["-rf".as_ref(), dest.as_os_str()]))?;
        Ok((secs(untar), secs(rm)))
    };
    round()?;
    let (mut untar, mut rm) = (Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        let (u, r) = round()?;
        untar.push(u);
        rm.push(r);
    }
    m.unmount()?;
    Ok(vec![Some(untar), Some(rm)])
}

/// Appends a line to `path` (open, write, close).
fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {} for append", path.display()))?;
    f.write_all(line.as_bytes())
        .with_context(|| format!("appending to {}", path.display()))
}

/// (7) Appends a line to N existing files; fresh workspace per run (every write is a copy-up).
fn modify(ctx: &Ctx, sys: SystemKind) -> Result<Vec<f64>> {
    let files = ctx.pick_files(ctx.sizes.modify_files);
    for f in &files {
        fs::read(ctx.lower(sys).join(f))?; // warm the lower's page cache
    }
    let mut out = Vec::new();
    for run_no in 0..ctx.runs {
        let m = ctx.mount(sys, "modify")?;
        let line = format!("/* wsfs-bench modify {run_no} */\n");
        let t = Instant::now();
        for f in &files {
            append_line(&m.root.join(f), &line)?;
        }
        out.push(secs(t.elapsed()));
        m.unmount()?;
    }
    Ok(out)
}

/// A fio job on `file` (psync, output discarded).
fn fio(name: &str, file: &Path, extra: &[&str]) -> Result<Duration> {
    let mut c = cmd(
        "fio",
        ["--name", name, "--ioengine=psync", "--output-format=terse"],
    );
    c.arg(format!("--filename={}", file.display())).args(extra);
    time(&mut c)
}

/// (8) Sequential write (end_fsync) and cold read of one file, then 4k random reads with the
/// file in the page cache (`--invalidate=0`: fio would otherwise drop it first).
fn seq_io(ctx: &Ctx, sys: SystemKind) -> Result<Vec<Option<Vec<f64>>>> {
    let m = ctx.mount(sys, "seqio")?;
    let file = m.root.join("wsfs-bench-fio.dat");
    let size = format!("--size={}M", ctx.sizes.seq_mib);
    let io = format!("--io_size={}M", ctx.sizes.rand_mib);
    let (mut w, mut r, mut rr) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        let _ = fs::remove_file(&file);
        w.push(secs(fio(
            "seqwrite",
            &file,
            &["--rw=write", "--bs=1M", &size, "--end_fsync=1"],
        )?));
        drop_caches()?;
        r.push(secs(fio(
            "seqread",
            &file,
            &["--rw=read", "--bs=1M", &size],
        )?));
        rr.push(secs(fio(
            "randread",
            &file,
            &["--rw=randread", "--bs=4k", "--invalidate=0", &size, &io],
        )?));
    }
    fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
    m.unmount()?;
    Ok(vec![Some(w), Some(r), Some(rr)])
}

/// (9) `make -j2` of the generated C project inside the workspace; `make clean` between runs.
fn build(ctx: &Ctx, sys: SystemKind) -> Result<Vec<f64>> {
    let m = ctx.mount(sys, "build")?;
    let dir = m.root.join(BUILD_DIR);
    let make = |args: &[&str]| time(cmd("make", ["-s", "-C"]).arg(&dir).args(args));
    make(&["clean"])?;
    make(&["-j2"])?; // warm-up: headers and compiler in the page cache
    let mut out = Vec::new();
    for _ in 0..ctx.runs {
        make(&["clean"])?;
        out.push(secs(make(&["-j2"])?));
    }
    make(&["clean"])?;
    m.unmount()?;
    Ok(out)
}

/// (10) Commit N changes: `wsfs commit` of a fresh workspace with N modified files, vs
/// `rsync -a` of a container copy with N modified files back to the host copy.
fn commit(ctx: &Ctx, sys: SystemKind) -> Result<Vec<Option<Vec<f64>>>> {
    let applicable = sys == SystemKind::Native || sys.is_wsfs();
    if !applicable {
        return Ok(ctx.sizes.commit_changes.iter().map(|_| None).collect());
    }
    let (host, cont) = ctx.commit_trees()?.clone();
    let mut rows = Vec::new();
    for &n in &ctx.sizes.commit_changes {
        let files = ctx.pick_files(n);
        let mut samples = Vec::new();
        for run_no in 0..ctx.runs {
            let line = format!("/* wsfs-bench commit {n} {run_no} */\n");
            let t = if sys == SystemKind::Native {
                rewrite_files(&cont, &files, &line)?;
                let mut src = cont.as_os_str().to_owned();
                src.push("/");
                time(cmd("rsync", [src.as_os_str(), host.as_os_str()]).arg("-a"))?
            } else {
                wsfs_commit_run(ctx, sys, &host, &files, &line)?
            };
            samples.push(secs(t));
        }
        rows.push(Some(samples));
    }
    Ok(rows)
}

/// (11) Undo of a commit of N changes (the first commit size): a fresh workspace commits N
/// modified files (untimed), then `wsfs undo` is timed; the host holds the old content again
/// (checked). wsfs only: nothing native undoes a copy back.
fn undo(ctx: &Ctx, sys: SystemKind) -> Result<Option<Vec<f64>>> {
    if !sys.is_wsfs() {
        return Ok(None);
    }
    let (host, _) = ctx.commit_trees()?.clone();
    let n = ctx.sizes.commit_changes[0];
    let files = ctx.pick_files(n);
    let cli = &ctx
        .systems
        .wsfs
        .as_ref()
        .context("wsfs is not available")?
        .cli;
    let mut samples = Vec::new();
    for run_no in 0..ctx.runs {
        let line = format!("/* wsfs-bench undo {n} {run_no} */\n");
        let first = host.join(&files[0]);
        let old = fs::read(&first).with_context(|| format!("reading {}", first.display()))?;
        let m = ctx.systems.mount(sys, &host, "undo")?;
        for f in &files {
            append_line(&m.root.join(f), &line)?;
        }
        cli.commit(m.name())?;
        let t = Instant::now();
        cli.undo(m.name())?;
        let elapsed = t.elapsed();
        m.unmount()?;
        if fs::read(&first)? != old {
            bail!(
                "wsfs undo returned but {} is not its old self",
                first.display()
            );
        }
        samples.push(secs(elapsed));
    }
    Ok(Some(samples))
}

/// Replaces each file with its content plus `line`, by write-to-temp and rename (the
/// container copy is a hard-link farm: in-place writes would reach the shared tree).
fn rewrite_files(root: &Path, files: &[PathBuf], line: &str) -> Result<()> {
    for f in files {
        let p = root.join(f);
        let mut data = fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        data.extend_from_slice(line.as_bytes());
        let tmp = p.with_extension("wsfs-bench-tmp");
        fs::write(&tmp, &data).with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &p).with_context(|| format!("renaming onto {}", p.display()))?;
    }
    Ok(())
}

/// One wsfs commit run: fresh workspace over `host`, modify `files` (untimed), time the commit.
fn wsfs_commit_run(
    ctx: &Ctx,
    sys: SystemKind,
    host: &Path,
    files: &[PathBuf],
    line: &str,
) -> Result<Duration> {
    let m = ctx.systems.mount(sys, host, "commit")?;
    for f in files {
        append_line(&m.root.join(f), line)?;
    }
    let cli = &ctx
        .systems
        .wsfs
        .as_ref()
        .context("wsfs is not available")?
        .cli;
    let t = Instant::now();
    cli.commit(m.name())?;
    let elapsed = t.elapsed();
    m.unmount()?;
    for f in [files.first(), files.last()].into_iter().flatten() {
        let p = host.join(f);
        let data = fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        if !data.ends_with(line.as_bytes()) {
            bail!("wsfs commit returned but {} lacks the change", p.display());
        }
    }
    Ok(elapsed)
}
