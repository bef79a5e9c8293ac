//! Mountpoint preparation: finds and lazily detaches stale wsfs mounts (a daemon that died
//! leaves its FUSE mount behind, answering `ENOTCONN`), and creates the directory.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use anyhow::{bail, Context};
use tracing::warn;

use super::sys;

/// Mountpoints with a live session in this process.
static LIVE: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(Default::default);

/// Records that `mp` is served by this process (false if it already was).
pub(super) fn register_live(mp: &Path) -> bool {
    LIVE.lock().unwrap().insert(mp.to_path_buf())
}

/// Forgets `mp` as served by this process.
pub(super) fn unregister_live(mp: &Path) {
    LIVE.lock().unwrap().remove(mp);
}

fn is_live(mp: &Path) -> bool {
    LIVE.lock().unwrap().contains(mp)
}

/// One line of `/proc/self/mountinfo` (the fields we use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MountInfo {
    /// `st_dev` of the mounted filesystem (from "major:minor").
    pub(super) dev: u64,
    /// The directory of the filesystem mounted there (`/` unless a subdirectory was bound).
    pub(super) root: PathBuf,
    /// Where it is mounted.
    pub(super) mount_point: PathBuf,
    /// Filesystem type ("fuse", "fuse.wsfs", ...).
    pub(super) fstype: String,
    /// Mount source ("wsfs" for ours).
    pub(super) source: String,
    /// Per-mount options (`rw,nosuid,nodev,noatime`).
    pub(super) options: String,
}

impl MountInfo {
    /// A wsfs FUSE mount. Mounted directly by root, fuser gives fstype "fuse" and source
    /// "wsfs"; through fusermount it is "fuse.wsfs".
    pub(super) fn is_wsfs(&self) -> bool {
        self.fstype == "fuse.wsfs" || (self.fstype.starts_with("fuse") && self.source == "wsfs")
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Parses the text of a mountinfo file.
pub(super) fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 5 || fields.len() < sep + 3 {
            continue;
        }
        let Some((major, minor)) = fields[2].split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        out.push(MountInfo {
            dev: libc::makedev(major as u32, minor as u32),
            root: PathBuf::from(OsString::from_vec(unescape(fields[3]))),
            mount_point: PathBuf::from(OsString::from_vec(unescape(fields[4]))),
            fstype: fields[sep + 1].to_string(),
            source: String::from_utf8_lossy(&unescape(fields[sep + 2])).into_owned(),
            options: fields[5].to_string(),
        });
    }
    out
}

/// The mounts of this process's namespace.
pub(super) fn mounts() -> io::Result<Vec<MountInfo>> {
    mounts_of("/proc/self/mountinfo".as_ref())
}

/// The mounts listed in a mountinfo file (`/proc/PID/mountinfo`: that process's namespace,
/// paths relative to its root).
pub(super) fn mounts_of(mountinfo: &Path) -> io::Result<Vec<MountInfo>> {
    Ok(parse_mountinfo(&std::fs::read_to_string(mountinfo)?))
}

/// `mp` made absolute with its parent resolved, without touching `mp` itself (it may be a
/// dead mount that fails every stat).
pub(super) fn absolute(mp: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::path::absolute(mp).with_context(|| format!("mountpoint {}", mp.display()))?;
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        bail!("{} cannot be a mountpoint", abs.display());
    };
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let parent = parent
        .canonicalize()
        .with_context(|| format!("resolving {}", parent.display()))?;
    Ok(parent.join(name))
}

fn detach(mp: &Path, why: &str) -> anyhow::Result<()> {
    warn!(mountpoint = %mp.display(), why, "detaching stale wsfs mount");
    match sys::umount2(mp, libc::MNT_DETACH) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()), // no longer mounted
        Err(e) => Err(e).with_context(|| format!("detaching stale mount {}", mp.display())),
    }
}

/// Detects a stale FUSE mount at `mountpoint` (`ENOTCONN` on stat, or listed in
/// `/proc/self/mountinfo` as a wsfs mount with no live session in this process) and lazily
/// unmounts it (`umount2(MNT_DETACH)`). Creates the mountpoint directory if missing.
/// Fails if this process already serves `mountpoint`, or if it exists and is not a directory.
/// Returns the device numbers of the stale wsfs mounts it detached: copies of them in other
/// mount namespaces (containers) are what [`super::reattach`] replaces.
pub fn prepare_mountpoint(mountpoint: &Path) -> anyhow::Result<Vec<u64>> {
    let mp = absolute(mountpoint)?;
    if is_live(&mp) {
        bail!("{} is already mounted by this daemon", mp.display());
    }
    // Mounts may be stacked: detach until no wsfs mount is left on top. Checked from mountinfo
    // first, so a hung mount is never stat'ed.
    let mut detached = Vec::new();
    for _ in 0..16 {
        let stale = mounts()
            .context("reading /proc/self/mountinfo")?
            .into_iter()
            .rfind(|m| m.mount_point == mp && m.is_wsfs());
        let Some(stale) = stale else {
            break;
        };
        detach(&mp, "left behind by an earlier daemon")?;
        detached.push(stale.dev);
    }
    for _ in 0..16 {
        match std::fs::symlink_metadata(&mp) {
            Ok(m) if m.is_dir() => return Ok(detached),
            Ok(_) => bail!("mountpoint {} exists and is not a directory", mp.display()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                detach(&mp, "transport endpoint is not connected")?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&mp)
                    .with_context(|| format!("creating mountpoint {}", mp.display()))?;
                return Ok(detached);
            }
            Err(e) => return Err(e).with_context(|| format!("mountpoint {}", mp.display())),
        }
    }
    bail!(
        "mountpoint {} stays unusable after detaching stale mounts",
        mp.display()
    )
}

/// The bare mountpoint directory under a mount. While nothing is mounted on it (the daemon
/// is down, could not open the workspace, or the workspace was unmounted) it must not accept
/// writes as if it were the workspace: they would land untracked in the state directory or
/// the user's directory. So it is sealed: mode 0555 and, when the daemon may (root, and a
/// filesystem with inode flags), immutable, which refuses even root. It is unsealed just
/// before a mount (fusermount wants write access) and sealed again through a descriptor
/// opened before the mount, which still reaches the directory underneath.
pub(super) struct Placeholder {
    dir: std::fs::File,
}

impl Placeholder {
    /// Opens and unseals the directory at `mp` (not following a symlink).
    pub(super) fn unseal(mp: &Path) -> anyhow::Result<Placeholder> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(mp)
            .with_context(|| format!("opening mountpoint {}", mp.display()))?;
        let p = Placeholder { dir };
        p.set_immutable(false);
        p.chmod(0o755)
            .with_context(|| format!("making mountpoint {} writable to mount on", mp.display()))?;
        Ok(p)
    }

    /// Seals the directory (also once a mount covers it: this reaches the one underneath).
    pub(super) fn seal(&self) {
        if let Err(e) = self.chmod(0o555) {
            warn!(error = %e, "cannot make the bare mountpoint read-only");
        }
        self.set_immutable(true);
    }

    fn chmod(&self, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        self.dir
            .set_permissions(std::fs::Permissions::from_mode(mode))
    }

    /// Sets or clears the immutable flag where the daemon may; silently nothing elsewhere
    /// (mode 0555 still stops other users' and the owner's ordinary writes).
    fn set_immutable(&self, on: bool) {
        use std::os::fd::AsFd;
        let Ok(flags) = sys::inode_flags(self.dir.as_fd()) else {
            return;
        };
        let want = if on {
            flags | sys::FS_IMMUTABLE_FL
        } else {
            flags & !sys::FS_IMMUTABLE_FL
        };
        if want == flags {
            return;
        }
        if let Err(e) = sys::set_inode_flags(self.dir.as_fd(), want) {
            if on && e.raw_os_error() != Some(libc::EPERM) {
                warn!(error = %e, "cannot make the bare mountpoint immutable");
            }
        }
    }
}

/// Gives a sealed mountpoint back as an ordinary directory (when its workspace is removed).
/// Does nothing while something is mounted on it, or when it does not exist.
pub fn release_placeholder(mp: &Path) {
    let mounted = mounts().is_ok_and(|ms| ms.iter().any(|m| m.mount_point == mp));
    if mounted {
        return;
    }
    if let Ok(p) = Placeholder::unseal(mp) {
        drop(p);
    }
}
