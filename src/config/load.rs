//! Reading and merging the configuration files.

use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::{trust, Config, HostUser};
use crate::{Error, Result};

/// Name of the per-project file at the project root.
pub const PROJECT_FILE: &str = ".wsfs.toml";

/// Largest configuration file read (a bigger one is refused).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Keys a project file may not set, because they expose host data (files, env, mounts) to the
/// container and the project file can be changed by the container through a commit.
const USER_ONLY: &[(&str, Option<&str>)] = &[
    ("credentials", None),
    ("mounts", None),
    ("defaults", Some("tool_config")),
    ("defaults", Some("mount_tool_config")),
];

/// `$XDG_CONFIG_HOME/wsfs/config.toml`, else `<home>/.config/wsfs/config.toml` of the invoking
/// user (the real user under sudo).
pub fn user_config_path() -> PathBuf {
    match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x).join("wsfs/config.toml"),
        None => HostUser::detect().home.join(".config/wsfs/config.toml"),
    }
}

/// Loads the user config (if present) and the project's `.wsfs.toml` (if `project` is given
/// and the file is present), then validates.
pub fn load(project: Option<&Path>) -> Result<Config> {
    load_files(Some(&user_config_path()), project)
}

/// Like [`load`] with an explicit user config path (`None` = no user file).
pub fn load_files(user_file: Option<&Path>, project_root: Option<&Path>) -> Result<Config> {
    let mut merged = toml::Table::new();
    if let Some(path) = user_file {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let table = parse_layer(&text, &path.display().to_string(), false)?;
                merge(&mut merged, table);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Config(format!("{}: {e}", path.display()))),
        }
    }
    if let Some(root) = project_root {
        if let Some(text) = read_project_file(root)? {
            let origin = root.join(PROJECT_FILE).display().to_string();
            let table = parse_layer(&text, &origin, true)?;
            let raising = trust::raising_settings(&table);
            if !raising.is_empty() {
                let trusted = match user_file {
                    Some(u) => trust::is_trusted(&trust::store_path(u), root, &text)?,
                    None => false,
                };
                if !trusted {
                    return Err(Error::Config(format!(
                        "{origin} asks for settings that raise the container's privileges: {}. \
                         The agent can change this file (through a commit), so wsfs honours \
                         them only for content you trusted: review the file, then run `wsfs \
                         trust {}` (again after every change)",
                        raising.join(", "),
                        root.display()
                    )));
                }
            }
            merge(&mut merged, table);
        }
    }
    let cfg: Config = toml::Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| Error::Config(format!("merged configuration: {e}")))?;
    cfg.validate()?;
    Ok(cfg)
}

/// Parses one configuration text (named `origin` in errors) into a [`Config`] (the unit tests'
/// way in; the CLI loads files with [`load`]).
#[cfg(test)]
pub(crate) fn parse_str(text: &str, origin: &str) -> Result<Config> {
    let table = parse_layer(text, origin, false)?;
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| Error::Config(format!("{origin}: {e}")))
}

/// Checks a layer against the schema (with line numbers) and returns it as a table.
fn parse_layer(text: &str, origin: &str, project: bool) -> Result<toml::Table> {
    match toml::from_str::<Config>(text) {
        Err(e) => return Err(Error::Config(format_toml_error(text, origin, &e))),
        Ok(cfg) => {
            if let Err(e) = cfg.validate() {
                // Messages start with the dotted key (`defaults.memory: ...`).
                let msg = e.to_string();
                let key = msg.split(':').next().unwrap_or("");
                let leaf = key.rsplit('.').next().unwrap_or(key);
                let line = find_line(text, leaf);
                return Err(Error::Config(format!(
                    "{origin}:{line}: key `{key}`{}",
                    &msg[key.len()..]
                )));
            }
        }
    }
    let table: toml::Table = toml::from_str(text)
        .map_err(|e: toml::de::Error| Error::Config(format_toml_error(text, origin, &e)))?;
    if project {
        for (section, key) in USER_ONLY {
            let Some(sec) = table.get(*section) else {
                continue;
            };
            let present = match key {
                None => true,
                Some(k) => sec.get(*k).is_some(),
            };
            if present {
                let needle = key.unwrap_or(section);
                let line = find_line(text, needle);
                let full = match key {
                    Some(k) => format!("{section}.{k}"),
                    None => format!("[{section}]"),
                };
                return Err(Error::Config(format!(
                    "{origin}:{line}: key `{full}`: not allowed in a project file (it exposes host \
                     files or environment to the container); set it in {}",
                    user_config_path().display()
                )));
            }
        }
    }
    Ok(table)
}

/// `origin:line: key `k`: message` from a toml error.
fn format_toml_error(text: &str, origin: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim();
    let Some(span) = e.span() else {
        return format!("{origin}: {msg}");
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let key = line_text
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && !k.starts_with('['))
        .map(|k| k.trim_matches('"').to_string());
    match key {
        Some(k) if !msg.contains(&format!("`{k}`")) => {
            format!("{origin}:{line_no}: key `{k}`: {msg}")
        }
        _ => format!("{origin}:{line_no}: {msg}"),
    }
}

/// 1-based line of the first line mentioning `needle` as a key or section, else 1.
fn find_line(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.starts_with(needle) || l.starts_with(&format!("[{needle}"))
        })
        .map_or(1, |i| i + 1)
}

/// Deep merge: tables merge key by key, anything else in `over` replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Reads `<root>/.wsfs.toml` without following a symlink (a container could plant one).
pub fn read_project_file(root: &Path) -> Result<Option<String>> {
    let origin = || root.join(PROJECT_FILE).display().to_string();
    let dir = crate::sys::open_root(root)
        .map_err(|e| Error::Config(format!("project {}: {e}", root.display())))?;
    let fd = match crate::sys::openat(
        dir.as_fd(),
        std::ffi::OsStr::new(PROJECT_FILE),
        libc::O_RDONLY,
        0,
    ) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Error::Config(format!(
                "{}: is a symlink; refusing to follow it (replace it with a regular file)",
                origin()
            )))
        }
        Err(e) => return Err(Error::Config(format!("{}: {e}", origin()))),
    };
    let st =
        crate::sys::fstat(fd.as_fd()).map_err(|e| Error::Config(format!("{}: {e}", origin())))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::Config(format!("{}: not a regular file", origin())));
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::Config(format!("{}: {e}", origin())))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::Config(format!("{}: larger than 1 MiB", origin())));
    }
    Ok(Some(text))
}
