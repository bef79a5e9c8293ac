//! After a restart: hands the new mount of a workspace to every other mount namespace that
//! still holds a copy of the dead one (a container's bind mount, a `wsfs run` namespace).
//!
//! A daemon killed without unmounting leaves its FUSE mount behind, dead (`ENOTCONN`), in the
//! host and in every namespace that copied it. Docker copied it when the container started
//! (a bind mount resolves its source to the mount on top at that path), so nothing the host
//! does at the mountpoint later reaches the container. So the new daemon, once it has mounted
//! the workspace again, finds the copies by the dead mount's device number in
//! `/proc/PID/mountinfo` of every namespace, and in each: clones the new mount
//! (`open_tree`), enters the namespace in a forked child, detaches the dead copy and moves the
//! clone to the same path (`move_mount`; kernel 5.2+). Needs root (`CAP_SYS_ADMIN` in the
//! namespace's owner); a non-root daemon reports what it could not do.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::stale::{mounts, mounts_of, MountInfo};
use super::sys::{self, AttachPlan, AttachStep};

/// A copy of a dead mount in another namespace.
#[derive(Debug)]
struct Copy {
    /// A process in that namespace (the first one found).
    pid: u32,
    /// The namespace's identity (`st_dev`, `st_ino` of `/proc/PID/ns/mnt`).
    ns: (u64, u64),
    /// The copy, as that process sees it.
    mount: MountInfo,
}

/// Replaces the copies of the dead mounts `stale` (device numbers) in other namespaces by the
/// live mount at `mp`. Returns one message per copy that keeps the dead mount, naming it and
/// what to do; the rest is logged.
pub(super) fn reattach(stale: &[u64], mp: &Path) -> Vec<String> {
    if stale.is_empty() {
        return Vec::new();
    }
    let copies = match find_copies(stale) {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot look for containers holding the dead mount");
            return vec![format!(
                "cannot look for containers holding the dead mount of {}: {e}; restart them \
                 (`wsfs down` and `wsfs up`)",
                mp.display()
            )];
        }
    };
    let flags_now = mounts()
        .ok()
        .and_then(|ms| ms.into_iter().rfind(|m| m.mount_point == mp))
        .map(|m| mount_flags(&m.options));
    let mut problems = Vec::new();
    for c in &copies {
        let at = c.mount.mount_point.display();
        match attach(c, mp, flags_now) {
            Ok(()) => info!(pid = c.pid, path = %at, mountpoint = %mp.display(),
                "gave the new mount to a namespace that held the dead one"),
            // A live mount answers there (the host's new mount reached it by propagation).
            Err(Skipped::Live) => info!(pid = c.pid, path = %at,
                "a namespace that held the dead mount has a live one on top of it; left alone"),
            Err(Skipped::Failed(why)) => {
                let msg = format!(
                    "the mount namespace of process {} keeps the dead mount of {} at {at}: \
                     {why}; restart that container (`wsfs down NAME` and `wsfs up`) or command",
                    c.pid,
                    mp.display()
                );
                warn!("{msg}");
                problems.push(msg);
            }
        }
    }
    problems
}

/// `st_dev` and `st_ino` of a namespace file.
fn ns_id(path: &Path) -> std::io::Result<(u64, u64)> {
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// Every wsfs mount with a device number in `stale`, in every mount namespace but ours, once
/// per namespace. Processes that vanish or that we may not inspect are skipped.
fn find_copies(stale: &[u64]) -> std::io::Result<Vec<Copy>> {
    let own = ns_id(Path::new("/proc/self/ns/mnt"))?;
    let mut seen = HashSet::from([own]);
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let proc = entry.path();
        let Ok(ns) = ns_id(&proc.join("ns/mnt")) else {
            continue;
        };
        if seen.contains(&ns) {
            continue;
        }
        let Ok(ms) = mounts_of(&proc.join("mountinfo")) else {
            continue;
        };
        seen.insert(ns);
        out.extend(
            ms.into_iter()
                .filter(|m| stale.contains(&m.dev) && m.is_wsfs())
                .map(|mount| Copy { pid, ns, mount }),
        );
    }
    Ok(out)
}

/// The per-mount flags of a mountinfo options field, as `MS_*` bits.
fn mount_flags(options: &str) -> libc::c_ulong {
    options
        .split(',')
        .map(|o| match o {
            "ro" => libc::MS_RDONLY,
            "nosuid" => libc::MS_NOSUID,
            "nodev" => libc::MS_NODEV,
            "noexec" => libc::MS_NOEXEC,
            "noatime" => libc::MS_NOATIME,
            "nodiratime" => libc::MS_NODIRATIME,
            "relatime" => libc::MS_RELATIME,
            "strictatime" => libc::MS_STRICTATIME,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

fn open(path: &Path, flags: libc::c_int) -> std::io::Result<OwnedFd> {
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_CLOEXEC)
        .open(path)?
        .into())
}

/// Why a copy keeps the dead mount.
enum Skipped {
    /// A live mount is on top of it: nothing to do.
    Live,
    /// What failed.
    Failed(String),
}

impl From<String> for Skipped {
    fn from(why: String) -> Self {
        Skipped::Failed(why)
    }
}

impl From<&str> for Skipped {
    fn from(why: &str) -> Self {
        Skipped::Failed(why.to_string())
    }
}

/// Puts a clone of the live mount at `mp` where `c` is, in `c`'s namespace.
fn attach(c: &Copy, mp: &Path, flags_now: Option<libc::c_ulong>) -> Result<(), Skipped> {
    if wsfs::sys::geteuid() != 0 {
        return Err(
            "mountd does not run as root, so it cannot reach into other mount \
                    namespaces"
                .into(),
        );
    }
    let proc = PathBuf::from(format!("/proc/{}", c.pid));
    let ns = std::fs::File::from(
        open(&proc.join("ns/mnt"), 0).map_err(|e| format!("opening its namespace: {e}"))?,
    );
    // The pid may have been reused since the scan: the namespace must be the one scanned.
    if !ns.metadata().is_ok_and(|m| (m.dev(), m.ino()) == c.ns) {
        return Err("the process left (its pid now names another namespace)".into());
    }
    let root = open(&proc.join("root"), libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| format!("opening its root: {e}"))?;
    // A bind of a subdirectory of the workspace gets that subdirectory again.
    let source = match c.mount.root.strip_prefix("/") {
        Ok(rel) if !rel.as_os_str().is_empty() => mp.join(rel),
        _ => mp.to_owned(),
    };
    let tree = sys::open_tree_clone(&source)
        .map_err(|e| format!("cloning the new mount at {}: {e}", source.display()))?;
    let target = CString::new(c.mount.mount_point.as_os_str().as_bytes())
        .map_err(|_| "its path holds a NUL byte".to_string())?;
    let want = mount_flags(&c.mount.options);
    let plan = AttachPlan {
        ns: ns.into(),
        root,
        tree,
        target,
        remount: (Some(want) != flags_now).then_some(want),
    };
    sys::attach_in_namespace(&plan).map_err(|(step, errno)| {
        let e = std::io::Error::from_raw_os_error(errno);
        Skipped::Failed(match step {
            AttachStep::Enter => format!("entering the namespace: {e}"),
            AttachStep::NotDead if errno == 0 => return Skipped::Live,
            AttachStep::NotDead => format!("checking the mount there: {e}; left alone"),
            AttachStep::Detach => format!("detaching the dead mount: {e}"),
            AttachStep::Move => format!("moving the new mount in: {e}"),
            AttachStep::Private => format!("making the new mount private: {e}"),
            AttachStep::Flags => {
                format!("giving the new mount the old one's flags ({want:#x}): {e}; unmounted it")
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::mount_flags;

    #[test]
    fn mountinfo_options_become_mount_flags() {
        assert_eq!(
            mount_flags("ro,nosuid,nodev,noatime"),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME
        );
        assert_eq!(mount_flags("rw,relatime"), libc::MS_RELATIME);
        assert_eq!(mount_flags("rw,noexec,unknown"), libc::MS_NOEXEC);
    }
}
