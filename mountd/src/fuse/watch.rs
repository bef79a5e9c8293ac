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
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use inotify::{Event, EventMask, Inotify, WatchDescriptor, WatchMask};
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
pub(super) const CHANGE_MASK: EventMask = EventMask::MODIFY
    .union(EventMask::CLOSE_WRITE)
    .union(EventMask::CREATE)
    .union(EventMask::DELETE)
    .union(EventMask::MOVED_FROM)
    .union(EventMask::MOVED_TO)
    .union(EventMask::ATTRIB);
/// What every directory watch asks for: the change events plus `IN_ONLYDIR | IN_EXCL_UNLINK`.
pub(super) const WATCH_MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::ONLYDIR)
    .union(WatchMask::EXCL_UNLINK);

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
        // `Inotify::init` is `inotify_init1(IN_NONBLOCK | IN_CLOEXEC)`.
        let inotify = Inotify::init()?;
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

struct Tree {
    ov: Arc<Overlay>,
    root: OwnedFd,
    project: PathBuf,
    /// `st_dev` of the wsfs mount: never watched.
    own_dev: Option<u64>,
    inotify: Inotify,
    /// Watch descriptor → the directory it watches.
    wds: HashMap<WatchDescriptor, RelPath>,
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
            // The fd is non-blocking: `WouldBlock` means the queue is drained.
            let events = match self.inotify.read_events(buf) {
                Ok(events) => events,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return,
                Err(e) => {
                    warn!(error = %e, "inotify read failed");
                    return;
                }
            };
            for ev in events {
                self.handle(ev);
            }
        }
    }

    fn handle(&mut self, ev: Event<&OsStr>) {
        if ev.mask.contains(EventMask::Q_OVERFLOW) {
            self.overflow = true;
            return;
        }
        if ev.mask.contains(EventMask::IGNORED) {
            self.wds.remove(&ev.wd);
            return;
        }
        let Some(dir) = self.wds.get(&ev.wd) else {
            return;
        };
        let path = match ev.name {
            None => dir.clone(),
            Some(name) if name.is_empty() => dir.clone(),
            Some(name) => match dir.join(name) {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let is_dir = ev.mask.contains(EventMask::ISDIR);
        // A masked secret's own entry shows its host metadata, so its changes are reported;
        // nothing inside a hidden directory is watched (it cannot be listed).
        if is_dir && ev.mask.contains(EventMask::MOVED_FROM) {
            self.unwatch_under(&path);
        }
        let hidden = is_dir && self.ov.policy().is_hidden(&path, true);
        if is_dir && !hidden && ev.mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
            // Entries may have appeared before the watch did: report them all.
            self.walk(path.clone(), true);
        }
        if ev.mask.intersects(CHANGE_MASK) {
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
        match self.inotify.watches().add(&proc_path, WATCH_MASK) {
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
        let gone: Vec<WatchDescriptor> = self
            .wds
            .iter()
            .filter(|(_, p)| p.starts_with(rel))
            .map(|(wd, _)| wd.clone())
            .collect();
        let mut watches = self.inotify.watches();
        for wd in gone {
            self.wds.remove(&wd);
            let _ = watches.remove(wd);
        }
    }
}
