//! Live lower layer: an inotify watcher on the host project that tells the overlay which host
//! paths changed (`Overlay::lower_changed`); the overlay decides what the kernel must forget.
//!
//! Every visible directory is watched (hidden ones by policy are skipped); new directories are
//! added as they appear, moved-away ones are dropped. Events are coalesced over a short window so
//! an untar or a build on the host produces one call per path, not one per write. Directories
//! are opened by walking from the project's root fd and watched through `/proc/self/fd/N`, so a
//! symlink planted in the project is never followed. Directories on the mount itself (a
//! mountpoint inside the project) are skipped, so the watcher never reads its own filesystem.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use wsfs::overlay::Overlay;
use wsfs::RelPath;

use super::sys;

/// How long events are collected after the first one before the overlay is told.
const WINDOW: Duration = Duration::from_millis(50);
/// How often the thread checks its stop flag when the project is quiet.
const IDLE_POLL_MS: i32 = 200;
/// Directory depth beyond which nothing is watched (guards the recursion).
const MAX_DEPTH: usize = 256;

/// Events that mean "this path may look different now".
const CHANGE_MASK: u32 = libc::IN_MODIFY
    | libc::IN_CLOSE_WRITE
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_ATTRIB;
/// What every directory watch asks for.
const WATCH_MASK: u32 = CHANGE_MASK | libc::IN_ONLYDIR | libc::IN_EXCL_UNLINK;

/// The running watcher thread; stops (and is joined) on [`Watcher::stop`] or drop.
pub(super) struct Watcher {
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching `project` for `ov`, skipping directories whose `st_dev` is `own_dev`
    /// (the wsfs mount). The initial scan runs on the watcher thread. `complete` is set once
    /// every visible directory is watched and cleared when that stops being true (watch limit
    /// reached, watcher ended).
    pub(super) fn start(
        ov: Arc<Overlay>,
        project: &Path,
        own_dev: Option<u64>,
        complete: Arc<AtomicBool>,
    ) -> io::Result<Watcher> {
        let root = wsfs::sys::open_root(project)?;
        if std::env::var_os("NOWATCH").is_some() {
            return Err(io::Error::other("x"));
        }
        let inotify = File::from(sys::inotify_init()?);
        let stop = Arc::new(AtomicBool::new(false));
        let mut tree = Tree {
            ov,
            root,
            project: project.to_path_buf(),
            own_dev,
            inotify,
            wds: HashMap::new(),
            pending: BTreeSet::new(),
            overflow: false,
            limit_warned: false,
            complete,
        };
        let flag = stop.clone();
        let join = std::thread::Builder::new()
            .name("wsfs-watch".into())
            .spawn(move || tree.run(&flag))?;
        Ok(Watcher {
            stop,
            join: Some(join),
        })
    }

    /// Stops the thread and waits for it.
    pub(super) fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// One raw inotify event.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Event<'a> {
    pub(super) wd: i32,
    pub(super) mask: u32,
    pub(super) name: &'a [u8],
}

/// Splits a buffer read from an inotify fd into events (name without its NUL padding).
pub(super) fn parse_events(buf: &[u8]) -> Vec<Event<'_>> {
    const HEADER: usize = 16; // wd, mask, cookie, len
    let mut out = Vec::new();
    let mut off = 0;
    while off + HEADER <= buf.len() {
        let word = |i: usize| {
            let b = &buf[off + i..off + i + 4];
            [b[0], b[1], b[2], b[3]]
        };
        let wd = i32::from_ne_bytes(word(0));
        let mask = u32::from_ne_bytes(word(4));
        let len = u32::from_ne_bytes(word(12)) as usize;
        let end = (off + HEADER + len).min(buf.len());
        let raw = &buf[off + HEADER..end];
        let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
        out.push(Event { wd, mask, name });
        off = end;
    }
    out
}

struct Tree {
    ov: Arc<Overlay>,
    root: OwnedFd,
    project: PathBuf,
    /// `st_dev` of the wsfs mount: never watched.
    own_dev: Option<u64>,
    inotify: File,
    /// Watch descriptor → the directory it watches.
    wds: HashMap<i32, RelPath>,
    /// Paths changed since the last flush (sorted: parents first).
    pending: BTreeSet<RelPath>,
    /// The kernel dropped events: rescan everything at the next flush.
    overflow: bool,
    limit_warned: bool,
    /// Shared with the FUSE adapter: every visible directory is watched.
    complete: Arc<AtomicBool>,
}

impl Tree {
    fn run(&mut self, stop: &AtomicBool) {
        self.watch(stop);
        self.complete.store(false, Ordering::Release);
    }

    fn watch(&mut self, stop: &AtomicBool) {
        let started = Instant::now();
        self.walk(RelPath::root(), false);
        self.complete.store(!self.limit_warned, Ordering::Release);
        info!(
            project = %self.project.display(),
            dirs = self.wds.len(),
            ms = started.elapsed().as_millis() as u64,
            "watching host project"
        );
        let mut deadline: Option<Instant> = None;
        let mut buf = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) {
            let timeout = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).as_millis() as i32,
                None => IDLE_POLL_MS,
            };
            match sys::poll_readable(self.inotify.as_fd(), timeout) {
                Ok(true) => self.drain(&mut buf),
                Ok(false) => {}
                Err(e) => {
                    warn!(error = %e, "inotify poll failed; host changes are no longer watched");
                    return;
                }
            }
            if deadline.is_none() && (!self.pending.is_empty() || self.overflow) {
                deadline = Some(Instant::now() + WINDOW);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.flush();
                deadline = None;
            }
        }
        debug!(project = %self.project.display(), "watcher stopped");
    }

    fn drain(&mut self, buf: &mut [u8]) {
        loop {
            let n = match self.inotify.read(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!(error = %e, "inotify read failed");
                    return;
                }
            };
            if n == 0 {
                return;
            }
            for ev in parse_events(&buf[..n]) {
                self.handle(ev);
            }
        }
    }

    fn handle(&mut self, ev: Event<'_>) {
        if ev.mask & libc::IN_Q_OVERFLOW != 0 {
            self.overflow = true;
            return;
        }
        if ev.mask & libc::IN_IGNORED != 0 {
            self.wds.remove(&ev.wd);
            return;
        }
        let Some(dir) = self.wds.get(&ev.wd) else {
            return;
        };
        let path = if ev.name.is_empty() {
            dir.clone()
        } else {
            match dir.join(OsStr::from_bytes(ev.name)) {
                Ok(p) => p,
                Err(_) => return,
            }
        };
        let is_dir = ev.mask & libc::IN_ISDIR != 0;
        // A masked secret's own entry shows its host metadata, so its changes are reported;
        // nothing inside a hidden directory is watched (it cannot be listed).
        if is_dir && ev.mask & libc::IN_MOVED_FROM != 0 {
            self.unwatch_under(&path);
        }
        let hidden = is_dir && self.ov.policy().is_hidden(&path, true);
        if is_dir && !hidden && ev.mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0 {
            // Entries may have appeared before the watch did: report them all.
            self.walk(path.clone(), true);
        }
        if ev.mask & CHANGE_MASK != 0 {
            self.pending.insert(path);
        }
    }

    fn flush(&mut self) {
        if std::mem::take(&mut self.overflow) {
            warn!(project = %self.project.display(), "inotify queue overflowed; rescanning the project");
            self.walk(RelPath::root(), true);
        }
        let pending = std::mem::take(&mut self.pending);
        debug!(paths = pending.len(), "host changes");
        for p in &pending {
            self.ov.lower_changed(p);
        }
    }

    /// Watches directory `rel` and everything below it; with `report`, every entry found is
    /// queued as changed.
    fn walk(&mut self, rel: RelPath, report: bool) {
        match wsfs::sys::walk_dirs(self.root.as_fd(), &rel) {
            Ok(fd) => self.walk_fd(fd, rel, report, 0),
            Err(e) => debug!(path = %rel, error = %e, "not watching"),
        }
    }

    fn walk_fd(&mut self, dir: OwnedFd, rel: RelPath, report: bool, depth: usize) {
        if self.own_dev.is_some()
            && wsfs::sys::fstat(dir.as_fd()).ok().map(|st| st.st_dev) == self.own_dev
        {
            return;
        }
        if !self.add_watch(&dir, &rel) {
            return;
        }
        let entries = match wsfs::sys::read_dir(dir.as_fd()) {
            Ok(e) => e,
            Err(e) => {
                debug!(path = %rel, error = %e, "cannot list");
                return;
            }
        };
        for e in entries {
            let Ok(child) = rel.join(&e.name) else {
                continue;
            };
            let is_dir = match e.d_type {
                libc::DT_DIR => true,
                libc::DT_UNKNOWN => wsfs::sys::lstatat(dir.as_fd(), &e.name)
                    .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR),
                _ => false,
            };
            if report {
                self.pending.insert(child.clone());
            }
            let hidden = self.ov.policy().is_hidden(&child, is_dir);
            if is_dir && !hidden && depth < MAX_DEPTH {
                // O_NOFOLLOW: a symlink swapped in is not walked.
                if let Ok(fd) = wsfs::sys::open_dir_path(dir.as_fd(), &e.name) {
                    self.walk_fd(fd, child, report, depth + 1);
                }
            }
        }
    }

    /// Adds (or re-keys) the watch of directory `dir` at `rel`; false if it could not be added.
    fn add_watch(&mut self, dir: &OwnedFd, rel: &RelPath) -> bool {
        let proc_path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        match sys::inotify_add_watch(self.inotify.as_fd(), &proc_path, WATCH_MASK) {
            Ok(wd) => {
                self.wds.insert(wd, rel.clone());
                true
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                self.complete.store(false, Ordering::Release);
                if !std::mem::replace(&mut self.limit_warned, true) {
                    warn!(
                        path = %rel,
                        watched = self.wds.len(),
                        "inotify watch limit reached (raise fs.inotify.max_user_watches); \
                         host changes in unwatched directories reach the workspace only when \
                         the kernel cache expires"
                    );
                }
                false
            }
            Err(e) => {
                debug!(path = %rel, error = %e, "cannot watch");
                false
            }
        }
    }

    /// Drops the watches of `rel` and everything below it (the directory moved away).
    fn unwatch_under(&mut self, rel: &RelPath) {
        let gone: Vec<i32> = self
            .wds
            .iter()
            .filter(|(_, p)| p.starts_with(rel))
            .map(|(wd, _)| *wd)
            .collect();
        for wd in gone {
            self.wds.remove(&wd);
            let _ = sys::inotify_rm_watch(self.inotify.as_fd(), wd);
        }
    }
}
