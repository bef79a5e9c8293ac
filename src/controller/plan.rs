//! Turning an `up` request and the configuration into a container specification (pure: no
//! Docker calls, except that the caller supplies what it learnt from the image).

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};

use super::exec::Io;
use super::tar::{Meta, TarBuilder};
use super::*;
use crate::config::{expand_tilde, Config, EnvValue, HostUser, PasswdEntry};
use crate::{Error, Result};

/// The idle keep-alive process run under Docker's init (tini) when no command is given. Any
/// POSIX `sh` does; the shell dies on SIGTERM, tini reaps and exits.
pub(super) const KEEPALIVE: &str = "while :; do sleep 3600; done";

/// Largest tool-config tree copied in (when `mount_tool_config = false`).
const MAX_COPY_BYTES: u64 = 256 << 20;

/// What `up` needs.
#[derive(Debug)]
pub struct UpRequest {
    /// Workspace name.
    pub workspace: String,
    /// Absolute host project directory.
    pub project: PathBuf,
    /// Host directory bind-mounted as the workspace (the FUSE mountpoint).
    pub mountpoint: PathBuf,
    /// Effective configuration (files + flags).
    pub config: Config,
    /// The invoking host user (for `~` on the host side and default ids).
    pub host_user: HostUser,
    /// Command to run attached after the start; empty = leave the container up, idle.
    pub command: Vec<String>,
    /// Streams for `command`.
    pub io: Io,
    /// With `mount_tool_config`: each tool configuration directory on the host
    /// ([`tool_config_dirs`]) and the mountpoint of the wsfs workspace that serves it, which
    /// is what the container gets (its writes then follow that workspace's rules, never
    /// reaching the host directory unreviewed). A directory missing here is refused.
    pub tool_mounts: Vec<(PathBuf, PathBuf)>,
}

impl UpRequest {
    /// A request for the detected host user, without a command.
    pub fn new(
        workspace: &str,
        project: impl Into<PathBuf>,
        mountpoint: impl Into<PathBuf>,
        config: Config,
    ) -> UpRequest {
        UpRequest {
            workspace: workspace.to_string(),
            project: project.into(),
            mountpoint: mountpoint.into(),
            config,
            host_user: HostUser::detect(),
            command: Vec::new(),
            io: Io::Terminal,
            tool_mounts: Vec::new(),
        }
    }

    /// The workspace directory inside the container.
    pub fn container_dir(&self) -> PathBuf {
        match self.config.container.workspace_container_path.as_str() {
            "" => self.project.clone(),
            p => PathBuf::from(p),
        }
    }

    /// Checks names and directories before anything is created.
    pub(super) fn validate(&self) -> Result<()> {
        crate::state::check_workspace_name(&self.workspace)?;
        self.config.validate()?;
        for (what, p) in [("project", &self.project), ("mountpoint", &self.mountpoint)] {
            if !p.is_absolute() || p == Path::new("/") {
                return Err(Error::Workspace(format!(
                    "{what} {} must be an absolute path other than /",
                    p.display()
                )));
            }
            match std::fs::metadata(p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::Workspace(format!(
                        "{what} {} is not a directory",
                        p.display()
                    )))
                }
                Err(e) => return Err(Error::Workspace(format!("{what} {}: {e}", p.display()))),
            }
        }
        Ok(())
    }
}

/// The tool configuration directories `mount_tool_config` serves through a wsfs workspace
/// each: the `tool_config` entries that are directories on the host.
pub fn tool_config_dirs(cfg: &Config, host_home: &Path) -> Vec<PathBuf> {
    if !cfg.defaults.mount_tool_config {
        return Vec::new();
    }
    cfg.defaults
        .tool_config
        .iter()
        .map(|t| expand_tilde(t, host_home))
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()))
        .collect()
}

/// The name of the workspace that serves tool configuration directory `dir` to the
/// containers of workspace `workspace`: `WORKSPACE.claude` for `~/.claude`.
pub fn tool_workspace_name(workspace: &str, dir: &Path) -> String {
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().trim_start_matches('.').to_string())
        .unwrap_or_default();
    let base: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "{workspace}.{}",
        if base.is_empty() { "tool" } else { &base }
    )
}

/// Refuses a project directory that is missing, not a directory, or inside (or equal to) a
/// mountpoint of another workspace: a workspace over a workspace would journal the other
/// overlay's view. `mountpoints` are the other workspaces' mountpoints.
pub fn check_project(project: &Path, mountpoints: &[PathBuf]) -> Result<()> {
    let md = std::fs::metadata(project)
        .map_err(|e| Error::Workspace(format!("project directory {}: {e}", project.display())))?;
    if !md.is_dir() {
        return Err(Error::Workspace(format!(
            "project {} is not a directory",
            project.display()
        )));
    }
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let project_c = canon(project);
    for m in mountpoints {
        let mc = canon(m);
        if project_c.starts_with(&mc) {
            return Err(Error::Workspace(format!(
                "project {} is inside the mountpoint {} of another workspace; use the host \
                 project directory itself (see `wsfs list`)",
                project.display(),
                m.display()
            )));
        }
    }
    Ok(())
}

/// The container name of a workspace: `wsfs-<workspace>`.
pub fn container_name(workspace: &str) -> String {
    format!("wsfs-{workspace}")
}

/// Everything `up` creates.
pub(super) struct Spec {
    /// The create body.
    pub body: ContainerCreateBody,
    /// Files uploaded at creation (credentials, copied tool config); empty when none.
    pub uploads: TarBuilder,
    /// Warnings to show the user.
    pub warnings: Vec<String>,
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Config(format!("{}: path is not UTF-8", p.display())))
}

/// Refuses a container path inside the workspace directory (it would land in the overlay).
fn outside_workspace(what: &str, dst: &Path, workdir: &Path) -> Result<()> {
    if dst.starts_with(workdir) || workdir.starts_with(dst) {
        return Err(Error::Config(format!(
            "{what} {}: inside (or above) the workspace directory {} in the container; \
             choose a path outside it (files there would end up in the overlay)",
            dst.display(),
            workdir.display()
        )));
    }
    Ok(())
}

fn bind(source: &Path, target: &Path, read_only: bool) -> Result<Mount> {
    Ok(Mount {
        source: Some(path_str(source)?),
        target: Some(path_str(target)?),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..Default::default()
    })
}

/// Where a host path under the host home goes under the container home.
fn rehome(host_path: &Path, host_home: &Path, container_home: &Path) -> PathBuf {
    match host_path.strip_prefix(host_home) {
        Ok(rel) => container_home.join(rel),
        Err(_) => host_path.to_path_buf(),
    }
}

/// Adds the directories strictly between `home` and `dst`'s parent (`~/.ssh` for
/// `~/.ssh/id`), owned by the code user, mode 0700.
fn parent_dirs(tar: &mut TarBuilder, dst: &Path, home: &Path, meta: Meta) -> Result<()> {
    let Ok(rel) = dst.strip_prefix(home) else {
        return Ok(());
    };
    let mut cur = home.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        cur.push(c);
        if let Some(s) = cur.to_str() {
            tar.dir(
                s.trim_start_matches('/'),
                Meta {
                    mode: 0o700,
                    ..meta
                },
            )
            .map_err(|e| Error::Config(format!("archiving {}: {e}", cur.display())))?;
        }
    }
    Ok(())
}

/// Copies a host file or tree into `tar` at `dst`, owned by `uid:gid`, modes kept.
fn add_tree(
    tar: &mut TarBuilder,
    src: &Path,
    dst: &Path,
    owner: (u32, u32),
    budget: &mut u64,
) -> Result<()> {
    let err = |e: std::io::Error| Error::Config(format!("{}: {e}", src.display()));
    let md = std::fs::symlink_metadata(src).map_err(err)?;
    let meta = Meta {
        mode: md.permissions().mode() & 0o7777,
        uid: owner.0,
        gid: owner.1,
        mtime: md.mtime().max(0) as u64,
    };
    let name = path_str(dst)?;
    let name = name.trim_start_matches('/');
    if md.is_symlink() {
        let target = std::fs::read_link(src).map_err(err)?;
        tar.symlink(name, &target, meta).map_err(err)?;
    } else if md.is_dir() {
        tar.dir(name, meta).map_err(err)?;
        let mut entries: Vec<_> = std::fs::read_dir(src)
            .map_err(err)?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            add_tree(tar, &e.path(), &dst.join(e.file_name()), owner, budget)?;
        }
    } else if md.is_file() {
        if md.len() > *budget {
            return Err(Error::Config(format!(
                "{}: too much data to copy into the container (limit {} MiB); mount it instead",
                src.display(),
                MAX_COPY_BYTES >> 20
            )));
        }
        *budget -= md.len();
        let data = std::fs::read(src).map_err(err)?;
        tar.file(name, &data, meta).map_err(err)?;
    }
    Ok(())
}

/// Builds the container specification.
pub(super) fn build_spec(req: &UpRequest, image_id: &str, user: &PasswdEntry) -> Result<Spec> {
    let cfg = &req.config;
    let (user_name, uid, gid) = cfg.code_user(&req.host_user);
    let host_home = req.host_user.home.clone();
    let home = PathBuf::from(if user.home.is_empty() {
        "/"
    } else {
        &user.home
    });
    let workdir = req.container_dir();
    let owner = Meta {
        mode: 0o600,
        uid,
        gid,
        mtime: 0,
    };
    let mut warnings = Vec::new();
    let mut uploads = TarBuilder::new();

    let mut mounts = vec![bind(&req.mountpoint, &workdir, false)?];
    for m in &cfg.mounts.default {
        let src = expand_tilde(&m.host, &host_home);
        let dst = expand_tilde(m.container.as_deref().unwrap_or(&m.host), &home);
        if !src.exists() {
            return Err(Error::Config(format!(
                "mounts.default: host path {} does not exist",
                src.display()
            )));
        }
        if !dst.is_absolute() {
            return Err(Error::Config(format!(
                "mounts.default: container path {} is not absolute",
                dst.display()
            )));
        }
        outside_workspace("mounts.default: container path", &dst, &workdir)?;
        mounts.push(bind(&src, &dst, m.readonly)?);
    }

    let mut tool_found = false;
    let mut budget = MAX_COPY_BYTES;
    for t in &cfg.defaults.tool_config {
        let src = expand_tilde(t, &host_home);
        if std::fs::symlink_metadata(&src).is_err() {
            tracing::debug!(path = %src.display(), "tool config not present on the host; skipped");
            continue;
        }
        tool_found = true;
        let dst = rehome(&src, &host_home, &home);
        outside_workspace("defaults.tool_config", &dst, &workdir)?;
        if cfg.defaults.mount_tool_config && src.is_dir() {
            let served = req.tool_mounts.iter().find(|(host, _)| host == &src);
            let Some((_, mountpoint)) = served else {
                return Err(Error::Config(format!(
                    "defaults.tool_config: {} is not served through a wsfs workspace; it is \
                     never bind-mounted directly (a container write there would reach the \
                     host unreviewed). Start containers with `wsfs up`, or set \
                     mount_tool_config = false to copy it in",
                    src.display()
                )));
            };
            mounts.push(bind(mountpoint, &dst, false)?);
        } else {
            // A single file (`~/.claude.json`) cannot carry a mount of its own: it is copied
            // in, and the container's changes to it stay in the container.
            parent_dirs(&mut uploads, &dst, &home, owner)?;
            add_tree(&mut uploads, &src, &dst, (uid, gid), &mut budget)?;
        }
    }
    if tool_found && cfg.defaults.mount_tool_config && home != host_home {
        warnings.push(format!(
            "tool config is mounted under the container home {} but the host home is {}: \
             absolute paths inside the tool configuration may not resolve",
            home.display(),
            host_home.display()
        ));
    }

    for (src, dst) in &cfg.credentials.files {
        let src = expand_tilde(src, &host_home);
        let dst = expand_tilde(dst, &home);
        if !dst.is_absolute() {
            return Err(Error::Config(format!(
                "credentials.files: container path {} is not absolute",
                dst.display()
            )));
        }
        outside_workspace("credentials.files: container path", &dst, &workdir)?;
        let md = std::fs::metadata(&src)
            .map_err(|e| Error::Config(format!("credentials.files: {}: {e}", src.display())))?;
        if !md.is_file() {
            return Err(Error::Config(format!(
                "credentials.files: {} is not a regular file",
                src.display()
            )));
        }
        parent_dirs(&mut uploads, &dst, &home, owner)?;
        add_tree(&mut uploads, &src, &dst, (uid, gid), &mut budget)?;
    }

    let mut env = vec![
        format!("HOME={}", home.display()),
        format!("USER={user_name}"),
        format!("LOGNAME={user_name}"),
    ];
    for (name, v) in &cfg.credentials.env {
        match v {
            EnvValue::Value(s) => env.push(format!("{name}={s}")),
            EnvValue::FromEnv { from_env } => match std::env::var(from_env) {
                Ok(s) => env.push(format!("{name}={s}")),
                Err(_) => warnings.push(format!(
                    "credentials.env.{name}: host variable {from_env} is not set; left out"
                )),
            },
        }
    }

    let workdir_s = path_str(&workdir)?;
    let labels: HashMap<String, String> = [
        (LABEL_WORKSPACE, req.workspace.clone()),
        (LABEL_PROJECT, path_str(&req.project)?),
        (LABEL_VERSION, env!("CARGO_PKG_VERSION").to_string()),
        (LABEL_WORKDIR, workdir_s.clone()),
        (LABEL_USER, format!("{uid}:{gid}")),
        (LABEL_SHELL, user.shell.clone()),
        (LABEL_PERSISTENT, cfg.defaults.persistent.to_string()),
        (LABEL_IMAGE_REF, cfg.defaults.image.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    let memory = cfg
        .defaults
        .memory
        .as_deref()
        .map(crate::config::parse_memory)
        .transpose()
        .map_err(|e| Error::Config(format!("defaults.memory: {e}")))?;
    let host_config = HostConfig {
        init: Some(true),
        mounts: Some(mounts),
        network_mode: Some(cfg.defaults.network.clone()),
        memory,
        nano_cpus: cfg.defaults.cpus.map(|c| (c * 1e9) as i64),
        pids_limit: cfg.defaults.pids_limit,
        readonly_rootfs: cfg.defaults.read_only.then_some(true),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(image_id.to_string()),
        entrypoint: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            KEEPALIVE.into(),
            "wsfs-keepalive".into(),
        ]),
        cmd: Some(vec![]),
        user: Some(format!("{uid}:{gid}")),
        working_dir: Some(workdir_s),
        env: Some(env),
        labels: Some(labels),
        host_config: Some(host_config),
        ..Default::default()
    };
    Ok(Spec {
        body,
        uploads,
        warnings,
    })
}
