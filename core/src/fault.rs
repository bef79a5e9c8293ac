//! Fault injection.
//!
//! - Crash tests: with `WSFS_FAULT_COMMIT=N` set, the process aborts at the N-th commit step
//!   (1-based; the steps of an undo count too), as if killed there. Costs one atomic increment per step otherwise.
//! - Error tests: [`fail_calls`] makes the N-th `openat`, `getdents`, `fstatat` or `chmod` of the
//!   [`crate::sys`] wrappers fail with a chosen errno. Costs one relaxed atomic load per call
//!   when nothing is armed.
//! - Interleaving tests: [`run_at`] runs a test's code at a named [`Point`] inside an
//!   operation, on the operation's thread, so a race window becomes a deterministic sequence.
//!   One relaxed atomic load per point when nothing is armed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
static STEPS: AtomicU64 = AtomicU64::new(0);

/// Marks one commit step; aborts the process if it is the configured one.
pub(crate) fn commit_step(what: &str) {
    let limit = LIMIT.get_or_init(|| {
        std::env::var("WSFS_FAULT_COMMIT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(limit) = limit {
        let n = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
        if n == *limit {
            eprintln!("wsfs fault injection: aborting at commit step {n} ({what})");
            std::process::abort();
        }
    }
}

/// A syscall wrapper of [`crate::sys`] that a test can make fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    /// `openat` (every open below a root: walks, file opens).
    Openat,
    /// Reading a directory's entries (`getdents`, via `readdir`).
    Getdents,
    /// `fstatat` (lstat of an entry, fstat of a fd).
    Fstatat,
    /// `chmod` of an open entry (setattr's mode change, copy-up's final mode).
    Chmod,
}

/// One armed fault: on the arming thread, calls `from..from + count` (1-based) of `call` fail
/// with `errno`.
struct Plan {
    call: Syscall,
    from: u64,
    count: u64,
    errno: i32,
    thread: std::thread::ThreadId,
    seen: u64,
}

static ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static PLAN: std::sync::Mutex<Option<Plan>> = std::sync::Mutex::new(None);

/// Makes calls `from..from + count` (1-based, counted from now) of `call` made *by the calling
/// thread* fail with `errno`, until the returned guard is dropped. Only one plan is armed at a
/// time (a second replaces the first). Calls from other threads are not counted, so tests in
/// the same process do not disturb each other's counts.
pub fn fail_calls(call: Syscall, from: u64, count: u64, errno: i32) -> FaultGuard {
    *PLAN.lock().unwrap_or_else(|e| e.into_inner()) = Some(Plan {
        call,
        from,
        count,
        errno,
        thread: std::thread::current().id(),
        seen: 0,
    });
    ARMED.store(true, Ordering::Release);
    FaultGuard(())
}

/// Disarms the plan of [`fail_calls`] when dropped.
pub struct FaultGuard(());

impl FaultGuard {
    /// How many calls of the planned syscall the arming thread has made so far.
    pub fn calls(&self) -> u64 {
        PLAN.lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |p| p.seen)
    }
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        ARMED.store(false, Ordering::Release);
        *PLAN.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Called by the `sys` wrappers before the real syscall. One relaxed load when nothing is
/// armed.
#[inline]
pub(crate) fn syscall(call: Syscall) -> std::io::Result<()> {
    if !ARMED.load(Ordering::Relaxed) {
        return Ok(());
    }
    armed_syscall(call)
}

#[cold]
fn armed_syscall(call: Syscall) -> std::io::Result<()> {
    let mut plan = PLAN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(p) = plan.as_mut() else {
        return Ok(());
    };
    if p.call != call || p.thread != std::thread::current().id() {
        return Ok(());
    }
    p.seen += 1;
    if p.seen >= p.from && p.seen - p.from < p.count {
        return Err(std::io::Error::from_raw_os_error(p.errno));
    }
    Ok(())
}

/// A point inside an operation where a test can run code (see [`run_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// In `unlink`, after the upper entry is removed and before the unlink is recorded: the
    /// freed inode number can already belong to a file another request creates.
    UnlinkAfterRemove,
    /// In a last close, after the content is hashed and before it is recorded: another
    /// writer can open, write and close the file in between.
    ReleaseAfterHash,
    /// In a commit, after the conflict check hashed the host files and before their old
    /// versions go into the content store: the host can change a file in between.
    CommitAfterCheck,
}

type Hook = Box<dyn FnOnce() + Send>;

static HOOK_ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static HOOK: std::sync::Mutex<Option<(Point, std::thread::ThreadId, Hook)>> =
    std::sync::Mutex::new(None);

/// Runs `f` once, the next time *the calling thread* reaches `point` (so tests running in
/// parallel do not trigger each other's hooks). One hook is armed at a time (a second
/// replaces the first).
pub fn run_at(point: Point, f: impl FnOnce() + Send + 'static) {
    let me = std::thread::current().id();
    *HOOK.lock().unwrap_or_else(|e| e.into_inner()) = Some((point, me, Box::new(f)));
    HOOK_ARMED.store(true, Ordering::Release);
}

/// Called by operations at `point`. One relaxed load when nothing is armed.
#[inline]
pub(crate) fn point(point: Point) {
    if HOOK_ARMED.load(Ordering::Relaxed) {
        run_hook(point);
    }
}

#[cold]
fn run_hook(point: Point) {
    let hook = {
        let mut slot = HOOK.lock().unwrap_or_else(|e| e.into_inner());
        match slot.take() {
            Some((p, t, f)) if p == point && t == std::thread::current().id() => {
                HOOK_ARMED.store(false, Ordering::Release);
                Some(f)
            }
            other => {
                *slot = other;
                None
            }
        }
    };
    if let Some(f) = hook {
        f();
    }
}
