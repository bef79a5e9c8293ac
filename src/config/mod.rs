//! Controller configuration: `~/.config/wsfs/config.toml` overlaid by the project's `.wsfs.toml`.
//!
//! Every field has a default (see `docs/controller.md`), so an empty or missing file is valid.
//! Unknown keys and wrong types are errors of the form `path:line: key `k`: message`.
//! Command-line flags are applied last with [`Config::apply`] and an [`Overrides`].

mod host;
mod load;
#[cfg(test)]
mod tests;
pub mod trust;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub(crate) use host::expand_tilde;
pub use host::{passwd_entries, HostUser, PasswdEntry};
pub use load::{load, read_project_file, user_config_path, PROJECT_FILE};
#[cfg(test)]
pub(crate) use load::{load_files, parse_str};

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[defaults]`: image, resources, network.
    pub defaults: Defaults,
    /// `[container]`: who the code runs as and where the workspace appears.
    pub container: ContainerConfig,
    /// `[mounts]`: extra bind mounts.
    pub mounts: MountsConfig,
    /// `[credentials]`: environment and files given to the container.
    pub credentials: Credentials,
    /// `[scripts]`: hooks run inside the container.
    pub scripts: Scripts,
}

/// `[defaults]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    /// Image reference (`name:tag` or an id). Default `debian:stable-slim`.
    pub image: String,
    /// Keep the container between `up`s (`down` only stops it). Default false.
    pub persistent: bool,
    /// Bind-mount the [`Defaults::tool_config`] paths at the same place under the container
    /// user's home (true, the default) instead of copying them in at creation (false).
    pub mount_tool_config: bool,
    /// Tool configuration paths under the host home. Default `["~/.claude", "~/.claude.json"]`.
    /// Paths missing on the host are skipped.
    pub tool_config: Vec<String>,
    /// `bridge` (default), `none`, `host`, or the name of a Docker network.
    pub network: String,
    /// Memory limit such as `512m` or `4g` (1024-based suffixes b/k/m/g/t); none by default.
    pub memory: Option<String>,
    /// CPU limit (e.g. `1.5`); none by default.
    pub cpus: Option<f64>,
    /// Maximum number of processes in the container; none by default.
    pub pids_limit: Option<i64>,
    /// Mount the container's root filesystem read-only (Docker's `--read-only`). Default
    /// false. The code user must then already exist in the image (no [`ContainerConfig::auto_user`]).
    pub read_only: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            image: "debian:stable-slim".into(),
            persistent: false,
            mount_tool_config: true,
            tool_config: vec!["~/.claude".into(), "~/.claude.json".into()],
            network: "bridge".into(),
            memory: None,
            cpus: None,
            pids_limit: None,
            read_only: false,
        }
    }
}

/// `[container]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerConfig {
    /// User name the code runs as. Default: the invoking host user's name (`SUDO_USER` under
    /// sudo).
    pub code_user: Option<String>,
    /// Numeric uid; default the invoking host user's uid (`SUDO_UID` under sudo).
    pub code_uid: Option<u32>,
    /// Numeric gid; default the invoking host user's gid (`SUDO_GID` under sudo).
    pub code_gid: Option<u32>,
    /// Where the workspace appears in the container: empty (default) = the host project's
    /// absolute path (mirror mode); e.g. `/workspace` for the legacy layout.
    pub workspace_container_path: String,
    /// When the image lacks the code user, or has its name at another uid, create it (or
    /// change its uid) in the container at `up` (default true). False: such an image is an
    /// error, as before.
    pub auto_user: bool,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        ContainerConfig {
            code_user: None,
            code_uid: None,
            code_gid: None,
            workspace_container_path: String::new(),
            auto_user: true,
        }
    }
}

/// `[mounts]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MountsConfig {
    /// Extra bind mounts for every container.
    pub default: Vec<MountSpec>,
}

/// One extra bind mount. `~` is the host user's home in `host` and the container user's home
/// in `container`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountSpec {
    /// Host path (must exist).
    pub host: String,
    /// Container path; default: the same as `host`.
    #[serde(default)]
    pub container: Option<String>,
    /// Mount read-only. Default false.
    #[serde(default)]
    pub readonly: bool,
}

/// `[credentials]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Credentials {
    /// Environment variables: `NAME = "value"` or `NAME = { from_env = "HOST_NAME" }`.
    pub env: BTreeMap<String, EnvValue>,
    /// Files copied into the container at creation: host path = container path (`~` expanded
    /// on each side). Mode is kept, owner is the code user; never written to the workspace.
    pub files: BTreeMap<String, String>,
}

/// A credential environment value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    /// A literal value.
    Value(String),
    /// Taken from the host environment at `up` time (left out, with a warning, when unset).
    FromEnv {
        /// Name of the host variable.
        from_env: String,
    },
}

/// `[scripts]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scripts {
    /// Executable run inside the container as the code user, in the workspace directory, after
    /// every start. A relative path is relative to the workspace directory in the container.
    pub post_start: Option<String>,
    /// Fail `up` when `post_start` fails (default false: reported only).
    pub post_start_fatal: bool,
}

/// Values from command-line flags; `Some` wins over both files.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// `--image`.
    pub image: Option<String>,
    /// `--network`.
    pub network: Option<String>,
    /// `--user`.
    pub code_user: Option<String>,
    /// `--uid`.
    pub code_uid: Option<u32>,
    /// `--gid`.
    pub code_gid: Option<u32>,
    /// `--persistent` / `--no-persistent`.
    pub persistent: Option<bool>,
    /// `--workspace-path`.
    pub workspace_container_path: Option<String>,
    /// `--memory`.
    pub memory: Option<String>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
}

impl Config {
    /// Applies command-line overrides.
    pub fn apply(&mut self, o: &Overrides) {
        fn set<T: Clone>(dst: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *dst = v.clone();
            }
        }
        set(&mut self.defaults.image, &o.image);
        set(&mut self.defaults.network, &o.network);
        set(&mut self.defaults.persistent, &o.persistent);
        set(
            &mut self.container.workspace_container_path,
            &o.workspace_container_path,
        );
        if o.code_user.is_some() {
            self.container.code_user = o.code_user.clone();
        }
        if o.code_uid.is_some() {
            self.container.code_uid = o.code_uid;
        }
        if o.code_gid.is_some() {
            self.container.code_gid = o.code_gid;
        }
        if o.memory.is_some() {
            self.defaults.memory = o.memory.clone();
        }
        if o.cpus.is_some() {
            self.defaults.cpus = o.cpus;
        }
        if o.pids_limit.is_some() {
            self.defaults.pids_limit = o.pids_limit;
        }
    }

    /// The code user (name, uid, gid): configured values, else the invoking host user's.
    pub fn code_user(&self, host: &HostUser) -> (String, u32, u32) {
        (
            self.container
                .code_user
                .clone()
                .unwrap_or_else(|| host.name.clone()),
            self.container.code_uid.unwrap_or(host.uid),
            self.container.code_gid.unwrap_or(host.gid),
        )
    }

    /// Checks values serde cannot (memory syntax, cpus range, paths).
    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |key: &str, msg: String| crate::Error::Config(format!("{key}: {msg}"));
        if let Some(m) = &self.defaults.memory {
            parse_memory(m).map_err(|e| bad("defaults.memory", e))?;
        }
        if let Some(c) = self.defaults.cpus {
            if !(c.is_finite() && c > 0.0) {
                return Err(bad(
                    "defaults.cpus",
                    format!("{c} is not a positive number"),
                ));
            }
        }
        if let Some(p) = self.defaults.pids_limit {
            if p <= 0 {
                return Err(bad("defaults.pids_limit", format!("{p} must be positive")));
            }
        }
        if self.defaults.image.is_empty() {
            return Err(bad("defaults.image", "must not be empty".into()));
        }
        let wcp = &self.container.workspace_container_path;
        if !wcp.is_empty() && (!wcp.starts_with('/') || wcp == "/") {
            return Err(bad(
                "container.workspace_container_path",
                format!(
                    "{wcp:?} must be empty (mirror the host path) or an absolute path other than /"
                ),
            ));
        }
        Ok(())
    }
}

/// Parses a memory size: a number with an optional 1024-based suffix `b`, `k`, `m`, `g`, `t`
/// (case-insensitive, an optional trailing `b`/`ib` accepted: `512m`, `4G`, `1gb`).
pub(crate) fn parse_memory(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b').filter(|r| !r.is_empty()))
        .unwrap_or(&t);
    let (num, mult): (&str, i64) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 512m or 4g"))?;
    let bytes = n * mult as f64;
    if !(bytes.is_finite() && bytes >= 4.0 * 1024.0 * 1024.0 && bytes < i64::MAX as f64) {
        return Err(format!("{s:?} is out of range (at least 4m)"));
    }
    Ok(bytes as i64)
}
