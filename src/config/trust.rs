//! Trust of a project's `.wsfs.toml`.
//!
//! The project file lives in the project, so an agent can change it and get the change
//! committed. Settings in it that only narrow the container (a memory limit, `network =
//! "none"`) are honoured as they are; settings that raise its privileges (another network
//! than `bridge`/`none`, uid, gid or user root, a `post_start` script) are honoured only once
//! the user has trusted that exact content with `wsfs trust`, the way direnv gates `.envrc`.
//! Trust is a blake3 of the file per canonical project path, kept in `trusted.toml` beside the
//! user config; any change to the file needs trusting again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Name of the trust store, in the user config's directory.
pub const TRUST_FILE: &str = "trusted.toml";

/// The trust store's content.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Store {
    /// Canonical project path -> blake3 (hex) of its trusted `.wsfs.toml`.
    #[serde(default)]
    projects: BTreeMap<String, String>,
}

/// The settings in a project file's table that raise the container's privileges, each as
/// `key = value` for a message; empty when the file needs no trust.
pub fn raising_settings(table: &toml::Table) -> Vec<String> {
    let get = |section: &str, key: &str| table.get(section).and_then(|s| s.get(key));
    let mut out = Vec::new();
    if let Some(v) = get("defaults", "network") {
        if !matches!(v.as_str(), Some("bridge" | "none")) {
            out.push(format!("defaults.network = {v}"));
        }
    }
    for key in ["code_uid", "code_gid"] {
        if let Some(v) = get("container", key).filter(|v| v.as_integer() == Some(0)) {
            out.push(format!("container.{key} = {v}"));
        }
    }
    if let Some(v) = get("container", "code_user").filter(|v| v.as_str() == Some("root")) {
        out.push(format!("container.code_user = {v}"));
    }
    if let Some(v) = get("scripts", "post_start") {
        out.push(format!("scripts.post_start = {v}"));
    }
    out
}

/// The trust store next to `user_config` (`~/.config/wsfs/config.toml`).
pub fn store_path(user_config: &Path) -> PathBuf {
    user_config.with_file_name(TRUST_FILE)
}

fn key(project: &Path) -> Result<String> {
    let canonical = std::fs::canonicalize(project)
        .map_err(|e| Error::Config(format!("project {}: {e}", project.display())))?;
    canonical
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Config(format!("project {}: not UTF-8", canonical.display())))
}

fn read_store(store: &Path) -> Result<Store> {
    match std::fs::read_to_string(store) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {}", store.display(), e.message()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Store::default()),
        Err(e) => Err(Error::Config(format!("{}: {e}", store.display()))),
    }
}

fn digest(text: &str) -> String {
    wsfs_core::hash::ContentHash::of(text.as_bytes()).to_hex()
}

/// True if the user trusted exactly `text` as `project`'s project file.
pub fn is_trusted(store: &Path, project: &Path, text: &str) -> Result<bool> {
    let s = read_store(store)?;
    Ok(s.projects.get(&key(project)?) == Some(&digest(text)))
}

/// Records `text` as `project`'s trusted project file (atomically, owner-only).
pub fn trust(store: &Path, project: &Path, text: &str) -> Result<()> {
    let mut s = read_store(store)?;
    s.projects.insert(key(project)?, digest(text));
    let body = format!(
        "# Project files (.wsfs.toml) trusted with `wsfs trust`: canonical project path = blake3 \
         of the file.\n{}",
        toml::to_string(&s).map_err(|e| Error::Config(format!("{}: {e}", store.display())))?
    );
    let err = |e: std::io::Error| Error::Config(format!("{}: {e}", store.display()));
    if let Some(dir) = store.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = store.with_extension("toml.tmp");
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(body.as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, store).map_err(err)
}
