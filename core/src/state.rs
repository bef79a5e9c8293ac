//! Where workspaces live on disk.
//!
//! ```text
//! <state root>/                       default /var/lib/wsfs (root) or $XDG_DATA_HOME/wsfs; WSFS_STATE_DIR overrides
//!   workspaces/<name>/
//!     meta.json                       WorkspaceMeta: project path, mountpoint, created, image id
//!     journal                         hashed change journal (JSON lines)
//!     upper/                          the upper layer: every file the container created or changed
//!     work/                           scratch for copy-up (same filesystem as upper/)
//!     backups/<commit-id>/            host files overwritten or deleted by a forced commit
//!   mnt/<name>/                       default mountpoint
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The control socket of `mountd`: `WSFS_SOCKET`, else `/run/wsfs/mountd.sock` for root, else
/// `$XDG_RUNTIME_DIR/wsfs/mountd.sock` (falling back to the state root when that is unset).
pub fn default_socket(state: &StateRoot) -> PathBuf {
    if let Some(s) = std::env::var_os("WSFS_SOCKET") {
        return PathBuf::from(s);
    }
    if crate::sys::geteuid() == 0 {
        return PathBuf::from("/run/wsfs/mountd.sock");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(run) => PathBuf::from(run).join("wsfs/mountd.sock"),
        None => state.path().join("mountd.sock"),
    }
}

/// The state root directory.
#[derive(Clone, Debug)]
pub struct StateRoot {
    root: PathBuf,
}

impl StateRoot {
    /// Uses `root` as given.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateRoot { root: root.into() }
    }

    /// `WSFS_STATE_DIR`, else `/var/lib/wsfs` for root, else `$XDG_DATA_HOME/wsfs`
    /// (`~/.local/share/wsfs`).
    pub fn default_location() -> Self {
        if let Some(dir) = std::env::var_os("WSFS_STATE_DIR") {
            return StateRoot::new(dir);
        }
        if crate::sys::geteuid() == 0 {
            return StateRoot::new("/var/lib/wsfs");
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        StateRoot::new(data.join("wsfs"))
    }

    /// The root path.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `workspaces/`.
    pub(crate) fn workspaces_dir(&self) -> PathBuf {
        self.root.join("workspaces")
    }

    /// `workspaces/<name>/`.
    pub fn workspace_dir(&self, name: &str) -> PathBuf {
        self.workspaces_dir().join(name)
    }

    /// Default mountpoint `mnt/<name>`.
    pub fn default_mountpoint(&self, name: &str) -> PathBuf {
        self.root.join("mnt").join(name)
    }

    /// Names of all workspaces on disk, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let dir = self.workspaces_dir();
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(Error::Workspace(format!(
                    "cannot read {}: {e}",
                    dir.display()
                )))
            }
        };
        for e in entries.flatten() {
            if e.path().join("meta.json").exists() {
                if let Some(n) = e.file_name().to_str() {
                    out.push(n.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Checks a workspace name: 1-64 chars of `[A-Za-z0-9._-]`, not starting with `.` or `-`.
pub fn check_workspace_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidWorkspaceName(name.to_string()))
    }
}

/// Derives a workspace name from a project directory's last component.
pub fn name_from_project(project: &Path) -> String {
    let raw = project
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    while s.starts_with('.') || s.starts_with('-') {
        s.remove(0);
    }
    s.truncate(64);
    if s.is_empty() {
        "workspace".into()
    } else {
        s
    }
}

/// `meta.json` of a workspace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceMeta {
    /// Workspace name.
    pub name: String,
    /// Absolute project directory.
    pub project: PathBuf,
    /// Mountpoint while mounted (kept across daemon restarts so they remount).
    #[serde(default)]
    pub mountpoint: Option<PathBuf>,
    /// Whether the daemon should (re)mount it on start.
    #[serde(default)]
    pub mounted: bool,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Container image id recorded by the controller.
    #[serde(default)]
    pub image_id: Option<String>,
    /// The workspace's own path rules, given when it was created; `None`: the documented
    /// defaults ([`crate::policy::PolicyConfig::default`]). The project's `.wsfsignore` adds to
    /// either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::policy::PolicyConfig>,
    /// The open mode it was last mounted with (kept so a restart remounts it the same way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_mode: Option<crate::api::OpenMode>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_workspace_name("my-proj_1.2").is_ok());
        assert!(check_workspace_name("-x").is_err());
        assert!(check_workspace_name("a/b").is_err());
        assert_eq!(name_from_project(Path::new("/home/u/My Proj")), "My_Proj");
    }
}
