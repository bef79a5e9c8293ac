//! Mounting and unmounting: the FUSE session, the notification thread and the host watcher of
//! one workspace mount.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use fuser::{Config, MountOption, Session, SessionACL, SessionUnmounter};
use tracing::{debug, info, warn};
use wsfs::api::OpenMode;
use wsfs::overlay::Overlay;

use super::adapter::WsfsFs;
use super::notify::NotifyThread;
use super::settle::Settler;
use super::stale::{self, prepare_mountpoint};
use super::sys;
use super::watch::Watcher;

/// Event-loop threads, each with its own cloned /dev/fuse fd.
const THREADS: usize = 4;
/// How long an unmounted session may take to end before its connection is aborted.
const GRACE: Duration = Duration::from_secs(2);

/// A running workspace mount. Dropping it unmounts like [`MountHandle::unmount`], logging
/// errors instead of returning them.
pub struct MountHandle {
    mountpoint: PathBuf,
    /// Whether users other than the daemon's own may use the mount (`allow_other`).
    allow_other: bool,
    open_mode: OpenMode,
    running: Option<Running>,
    /// Namespaces (containers) that still hold the dead mount this one replaced.
    problems: Vec<String>,
}

struct Running {
    unmounter: SessionUnmounter,
    session: JoinHandle<std::io::Result<()>>,
    notify: NotifyThread,
    watcher: Option<Watcher>,
    /// No-open mode: hashes files whose writes went idle.
    settler: Option<Settler>,
    /// The connection's id under /sys/fs/fuse/connections.
    conn: Option<u64>,
    /// Set while the watcher covers every visible host directory.
    #[cfg(test)]
    host_watched: Arc<AtomicBool>,
}

/// The mount configuration; `acl` decides who besides the daemon's user may use the mount.
fn config(acl: SessionACL) -> Config {
    let mut c = Config::default();
    c.mount_options = vec![
        MountOption::FSName("wsfs".into()),
        MountOption::Subtype("wsfs".into()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
        MountOption::NoSuid,
        MountOption::NoDev,
    ];
    c.acl = acl;
    c.n_threads = Some(THREADS);
    c.clone_fd = true;
    c
}

/// `st_dev` of the wsfs mount at `mp`, from mountinfo (no request to the mount itself).
fn mount_dev(mp: &Path) -> Option<u64> {
    stale::mounts()
        .ok()?
        .into_iter()
        .rfind(|m| m.mount_point == mp && m.is_wsfs())
        .map(|m| m.dev)
}

/// The fusectl connection id of a mount's `st_dev` (the kernel's internal `dev_t`).
fn connection_id(dev: u64) -> u64 {
    ((libc::major(dev) as u64) << 20) | libc::minor(dev) as u64
}

/// Mounts `overlay` (whose lower layer is `project`) at `mountpoint` and serves it in the
/// background: FUSE event loops, a notification thread for kernel cache invalidation, and an
/// inotify watcher that reports host changes in `project` to the overlay. Calls
/// [`prepare_mountpoint`] first; when that detached a dead mount of an earlier daemon, gives the
/// new mount to every other namespace that held the dead one ([`super::reattach`]).
pub fn mount(
    overlay: Arc<Overlay>,
    project: &Path,
    mountpoint: &Path,
    open_mode: OpenMode,
) -> anyhow::Result<MountHandle> {
    let stale = prepare_mountpoint(mountpoint)?;
    let mp = stale::absolute(mountpoint)?
        .canonicalize()
        .with_context(|| format!("mountpoint {}", mountpoint.display()))?;
    if !stale::register_live(&mp) {
        anyhow::bail!("{} is already mounted by this daemon", mp.display());
    }
    let placeholder = match stale::Placeholder::unseal(&mp) {
        Ok(p) => p,
        Err(e) => {
            stale::unregister_live(&mp);
            return Err(e);
        }
    };
    let started = start(overlay, project, &mp, open_mode);
    // Sealed underneath the mount: whenever it is not mounted, it refuses writes (never the
    // host project's own directory, should it be mounted over).
    if project.canonicalize().ok().as_deref() != Some(mp.as_path()) {
        placeholder.seal();
    }
    match started {
        Ok((running, allow_other)) => {
            info!(mountpoint = %mp.display(), project = %project.display(), allow_other, %open_mode, "mounted");
            let problems = super::reattach::reattach(&stale, &mp);
            Ok(MountHandle {
                mountpoint: mp,
                allow_other,
                open_mode,
                running: Some(running),
                problems,
            })
        }
        Err(e) => {
            stale::unregister_live(&mp);
            Err(e)
        }
    }
}

/// Mounts with `allow_other` (so a Docker daemon running as root can reach the workspace);
/// where fusermount3 refuses it to a regular user (no `user_allow_other` in /etc/fuse.conf),
/// mounts for the daemon's user only and logs the note once. Returns the session and whether
/// it allows other users.
fn open_session(
    overlay: &Arc<Overlay>,
    host_watched: &Arc<AtomicBool>,
    mp: &Path,
    open_mode: OpenMode,
) -> anyhow::Result<(Session<WsfsFs>, bool)> {
    let fs = || WsfsFs::new(overlay.clone(), host_watched.clone(), open_mode);
    let context = || format!("mounting FUSE at {}", mp.display());
    match Session::new(fs(), mp, &config(SessionACL::All)) {
        Ok(session) => Ok((session, true)),
        Err(e) if allow_other_refused(&e) => {
            warn!(mountpoint = %mp.display(),
                "mounted for this user only: fusermount3 refuses allow_other without \
                 user_allow_other in /etc/fuse.conf. You, `wsfs run` and rootless containers \
                 (same uid) can use the workspace; a Docker daemon running as root cannot. \
                 To allow it: add the line user_allow_other to /etc/fuse.conf and mount again, \
                 or run mountd as a system service (as root)");
            let session =
                Session::new(fs(), mp, &config(SessionACL::Owner)).with_context(context)?;
            Ok((session, false))
        }
        Err(e) => Err(e).with_context(context),
    }
}

/// True for fusermount3's refusal of `allow_other` to a regular user.
fn allow_other_refused(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied && e.to_string().contains("user_allow_other")
}

fn start(
    overlay: Arc<Overlay>,
    project: &Path,
    mp: &Path,
    open_mode: OpenMode,
) -> anyhow::Result<(Running, bool)> {
    // Mounts and runs the INIT handshake; dropping `session` on an error below unmounts.
    let host_watched = Arc::new(AtomicBool::new(false));
    let (mut session, allow_other) = open_session(&overlay, &host_watched, mp, open_mode)?;
    let unmounter = session.unmount_callable();
    let (notify, inval) =
        NotifyThread::start(session.notifier()).context("starting the notification thread")?;
    overlay.set_invalidator(Arc::new(inval));
    let session = std::thread::Builder::new()
        .name("wsfs-fuse".into())
        .spawn(move || session.run())
        .context("starting the FUSE session")?;
    let settler = match open_mode {
        OpenMode::NoOpen => {
            Some(Settler::start(overlay.clone()).context("starting the settler thread")?)
        }
        OpenMode::Open => None,
    };
    let dev = mount_dev(mp);
    let watcher = match Watcher::start(overlay, project, dev, host_watched.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            warn!(project = %project.display(), error = %e,
                "cannot watch the host project; host changes show only after cache expiry");
            None
        }
    };
    let running = Running {
        unmounter,
        session,
        notify,
        watcher,
        settler,
        conn: dev.map(connection_id),
        #[cfg(test)]
        host_watched,
    };
    Ok((running, allow_other))
}

impl MountHandle {
    /// Where the workspace is mounted (absolute, resolved).
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Whether users other than the daemon's own may use the mount (`allow_other`).
    pub fn allow_other(&self) -> bool {
        self.allow_other
    }

    /// How the mount serves `open(2)`.
    pub fn open_mode(&self) -> OpenMode {
        self.open_mode
    }

    /// What could not be re-attached after a restart: namespaces (containers) that keep the
    /// dead mount this one replaced, each with the reason and what to do.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// True while the host watcher covers every visible host directory.
    #[cfg(test)]
    pub(super) fn covers_host(&self) -> bool {
        self.running
            .as_ref()
            .is_some_and(|r| r.host_watched.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Unmounts cleanly and joins the threads. A mount still in use (open files, a container
    /// holding a bind mount of it) is detached and, if it does not end within a short grace
    /// period, its FUSE connection is aborted (users then see `ENOTCONN`).
    pub fn unmount(mut self) -> anyhow::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        let Some(r) = self.running.take() else {
            return Ok(());
        };
        if let Some(w) = r.watcher {
            w.stop();
        }
        if let Some(s) = r.settler {
            s.stop();
        }
        let res = end_session(r.unmounter, r.session, &self.mountpoint, r.conn);
        r.notify.stop();
        stale::unregister_live(&self.mountpoint);
        info!(mountpoint = %self.mountpoint.display(), ok = res.is_ok(), "unmounted");
        res
    }
}

impl Drop for MountHandle {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            warn!(mountpoint = %self.mountpoint.display(), error = %e, "unmount failed");
        }
    }
}

/// Unmounts, then waits for the session to end, aborting the connection if it lingers.
fn end_session(
    mut unmounter: SessionUnmounter,
    session: JoinHandle<std::io::Result<()>>,
    mp: &Path,
    conn: Option<u64>,
) -> anyhow::Result<()> {
    match unmounter.unmount() {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            debug!(mountpoint = %mp.display(), "already unmounted");
        }
        Err(e) => {
            warn!(mountpoint = %mp.display(), error = %e, "unmount failed; detaching lazily");
            match sys::umount2(mp, libc::MNT_DETACH) {
                Err(e) if e.raw_os_error() != Some(libc::EINVAL) => {
                    return Err(e).with_context(|| format!("unmounting {}", mp.display()));
                }
                _ => {}
            }
        }
    }
    if !wait_finished(&session, GRACE) {
        warn!(mountpoint = %mp.display(),
            "the filesystem is still in use (open files, or a container's bind mount); \
             aborting its FUSE connection");
        if let Err(e) = abort_connection(conn) {
            warn!(error = %e, "cannot abort the FUSE connection");
        }
        if !wait_finished(&session, GRACE) {
            anyhow::bail!(
                "the FUSE session of {} did not end; it keeps serving its remaining users",
                mp.display()
            );
        }
    }
    match session.join() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e).context("FUSE session"),
        Err(_) => anyhow::bail!("the FUSE session thread panicked"),
    }
}

fn wait_finished<T>(h: &JoinHandle<T>, max: Duration) -> bool {
    let until = Instant::now() + max;
    while !h.is_finished() {
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Writes to `/sys/fs/fuse/connections/<conn>/abort`, mounting fusectl there if needed.
fn abort_connection(conn: Option<u64>) -> std::io::Result<()> {
    let conn = conn.ok_or_else(|| std::io::Error::other("connection id unknown"))?;
    let dir = PathBuf::from(format!("/sys/fs/fuse/connections/{conn}"));
    if !dir.exists() {
        if let Err(e) = sys::mount_fusectl() {
            debug!(error = %e, "mounting fusectl");
        }
    }
    std::fs::write(dir.join("abort"), b"1")
}

#[cfg(test)]
mod acl_tests {
    use super::allow_other_refused;
    use std::io::{Error, ErrorKind};

    #[test]
    fn only_fusermounts_allow_other_refusal_falls_back_to_an_owner_only_mount() {
        let refusal = "fusermount3: option allow_other only allowed if 'user_allow_other' is set \
                       in /etc/fuse.conf\n";
        assert!(allow_other_refused(&Error::new(
            ErrorKind::PermissionDenied,
            refusal
        )));
        assert!(!allow_other_refused(&Error::other(refusal)));
        assert!(!allow_other_refused(&Error::from_raw_os_error(
            libc::EACCES
        )));
        assert!(!allow_other_refused(&Error::new(
            ErrorKind::PermissionDenied,
            "fusermount3: failed to access mountpoint /x: Permission denied"
        )));
    }
}
