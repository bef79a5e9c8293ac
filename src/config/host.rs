//! The invoking host user (sudo-aware) and `~` expansion.

use std::path::{Path, PathBuf};

/// The host user wsfs acts for: the real user behind `sudo`, else the effective user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostUser {
    /// Login name.
    pub name: String,
    /// Uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
}

impl HostUser {
    /// Detects the invoking user: `SUDO_UID`/`SUDO_GID`/`SUDO_USER` when running as root under
    /// sudo, else the effective uid/gid; name and home from `/etc/passwd`, falling back to
    /// `$USER` and `$HOME`.
    pub(crate) fn detect() -> HostUser {
        let euid = crate::sys::geteuid();
        let env_u32 = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
        let sudo_uid = if euid == 0 { env_u32("SUDO_UID") } else { None };
        let (uid, gid, name_hint) = match sudo_uid {
            Some(uid) => (
                uid,
                env_u32("SUDO_GID").unwrap_or(uid),
                std::env::var("SUDO_USER").ok(),
            ),
            None => (euid, crate::sys::getegid(), None),
        };
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let entry = passwd_entries(&passwd).find(|e| e.uid == uid);
        let name = name_hint
            .or_else(|| entry.as_ref().map(|e| e.name.clone()))
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| uid.to_string());
        let home = match (&entry, sudo_uid) {
            (Some(e), _) => PathBuf::from(&e.home),
            (None, None) => std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/")),
            (None, Some(_)) => PathBuf::from("/"),
        };
        HostUser {
            name,
            uid,
            gid,
            home,
        }
    }
}

/// One `/etc/passwd` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// Uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Home directory.
    pub home: String,
    /// Login shell (may be empty).
    pub shell: String,
}

/// Parses `/etc/passwd` text, skipping malformed lines and comments.
pub fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry> + '_ {
    text.lines().filter_map(|line| {
        if line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 6 {
            return None;
        }
        Some(PasswdEntry {
            name: f[0].to_string(),
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5].to_string(),
            shell: f.get(6).unwrap_or(&"").to_string(),
        })
    })
}

/// Expands a leading `~` or `~/` to `home`; other paths are returned unchanged.
pub fn expand_tilde(path: &str, home: &Path) -> PathBuf {
    if path == "~" {
        home.to_path_buf()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home.join(rest)
    } else {
        PathBuf::from(path)
    }
}
