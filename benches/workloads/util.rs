//! Small helpers shared by the harness: running commands with clear errors, timing, dropping
//! caches, mount-table queries and a deterministic PRNG.

use std::borrow::BorrowMut;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Runs `cmd` to completion with stdout discarded; fails with the command line, the exit
/// status and the tail of stderr if the status is not one of `ok_codes`.
pub fn run_codes(mut cmd: impl BorrowMut<Command>, ok_codes: &[i32]) -> Result<()> {
    let cmd = cmd.borrow_mut();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot start {}", describe(cmd)))?;
    match out.status.code() {
        Some(c) if ok_codes.contains(&c) => Ok(()),
        _ => bail!(
            "{} failed ({}): {}",
            describe(cmd),
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 600)
        ),
    }
}

/// Runs `cmd`, which must exit 0, with stdout discarded.
pub fn run(cmd: impl BorrowMut<Command>) -> Result<()> {
    run_codes(cmd, &[0])
}

/// Runs `cmd`, which must exit 0, and returns its stdout as text.
pub fn output(mut cmd: impl BorrowMut<Command>) -> Result<String> {
    let cmd = cmd.borrow_mut();
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot start {}", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            describe(cmd),
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr), 600)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Times `cmd` (must exit with one of `ok_codes`), wall clock.
pub fn time_codes(cmd: impl BorrowMut<Command>, ok_codes: &[i32]) -> Result<Duration> {
    let t = Instant::now();
    run_codes(cmd, ok_codes)?;
    Ok(t.elapsed())
}

/// Times `cmd`, which must exit 0.
pub fn time(cmd: impl BorrowMut<Command>) -> Result<Duration> {
    time_codes(cmd, &[0])
}

/// Builds a `Command` from a program and its arguments.
pub fn cmd<I, S>(program: &str, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = Command::new(program);
    c.args(args);
    c
}

/// The command line of `cmd`, for error messages.
fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The last `max` bytes of `s` (on a char boundary), trimmed.
pub fn tail(s: &str, max: usize) -> String {
    let s = s.trim();
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

/// `sync`, then drops the page cache, dentries and inodes (needs root).
pub fn drop_caches() -> Result<()> {
    run(Command::new("sync"))?;
    fs::write("/proc/sys/vm/drop_caches", "3").context("cannot write /proc/sys/vm/drop_caches")
}

/// Mount points currently listed in /proc/self/mountinfo (octal escapes decoded).
pub fn mount_points() -> Result<Vec<PathBuf>> {
    let info =
        fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    Ok(info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_octal(p)))
        .collect())
}

/// Whether `path` is currently a mount point.
pub fn is_mounted(path: &Path) -> bool {
    mount_points()
        .map(|m| m.iter().any(|p| p == path))
        .unwrap_or(false)
}

/// Decodes the `\040`-style escapes of /proc/self/mountinfo.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// First line of `program --version` (or of `args`), or "not installed".
pub fn tool_version(program: &str, args: &[&str]) -> String {
    let args = if args.is_empty() {
        &["--version"][..]
    } else {
        args
    };
    match Command::new(program).args(args).output() {
        Ok(o) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .find(|l| !l.trim().is_empty() && !l.contains("unknown argument"))
                .unwrap_or("?")
                .trim()
                .to_string()
        }
        Err(_) => "not installed".into(),
    }
}

/// Removes `path` recursively if it exists.
pub fn remove_all(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Regular files under `root` (relative paths, sorted, `.git` skipped), found by a plain walk.
pub fn list_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let rd = fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
        for e in rd {
            let e = e?;
            let name = e.file_name();
            if rel.as_os_str().is_empty() && name == ".git" {
                continue;
            }
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(rel.join(&name));
            } else if ft.is_file() {
                out.push(rel.join(&name));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every `step`-th element of `files`, `n` of them (deterministic spread over the tree).
pub fn spread<T: Clone>(files: &[T], n: usize) -> Vec<T> {
    let n = n.min(files.len());
    if n == 0 {
        return Vec::new();
    }
    let step = files.len() / n;
    (0..n).map(|i| files[i * step].clone()).collect()
}

/// SplitMix64: a tiny deterministic PRNG, so generated trees are identical across runs.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Median of `xs` (which must not be empty).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Set by SIGINT/SIGTERM: the harness stops after the current cell and cleans up.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Installs the SIGINT/SIGTERM handler that sets the stop flag (so guards still run).
pub fn install_stop_handler() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Whether a stop was requested.
pub fn stop_requested() -> bool {
    STOP.load(std::sync::atomic::Ordering::SeqCst)
}
