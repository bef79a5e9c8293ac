//! `up`: create (or reuse, or restart) the workspace's container, run `post_start`, and
//! optionally a command attached.

use std::path::{Path, PathBuf};

use bollard::query_parameters::{CreateContainerOptionsBuilder, UploadToContainerOptionsBuilder};

use super::exec::Io;
use super::plan::build_spec;
use super::user::{created_home, plan, UserAction, Wanted};
use super::*;
use crate::{Error, Result};

/// What `post_start` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostStartReport {
    /// The script path in the container.
    pub path: String,
    /// Its exit code.
    pub exit_code: i64,
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its stderr.
    pub stderr: Vec<u8>,
}

/// What `up` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpReport {
    /// Container name (`wsfs-<workspace>`).
    pub container_name: String,
    /// Container id.
    pub container_id: String,
    /// Content id of the image the container runs (`sha256:...`): store it in
    /// `WorkspaceMeta::image_id`.
    pub image_id: String,
    /// A new container was created (false: an existing one was reused or restarted).
    pub created: bool,
    /// The container was started by this call (false: it was already running).
    pub started: bool,
    /// The `post_start` run, when configured and the container was started.
    pub post_start: Option<PostStartReport>,
    /// Exit code of the command, when one was given.
    pub exit_code: Option<i64>,
    /// The container was stopped (and removed unless persistent) after the command.
    pub downed: bool,
    /// Warnings for the user (tool-config home mismatch, unset env, failed post_start...).
    pub warnings: Vec<String>,
    /// What was done to make the code user exist at its uid in a new container (created,
    /// uid changed), when anything was (`auto_user`).
    pub user_setup: Option<String>,
}

impl Controller {
    /// Brings the workspace's container up; see the module docs of [`super`] and
    /// `docs/controller.md`. With `req.command`, runs it attached and then stops the container
    /// again (unless it was already running before this call).
    pub async fn up(&self, req: &UpRequest) -> Result<UpReport> {
        req.validate()?;
        let cfg = &req.config;
        let name = container_name(&req.workspace);
        let mut report = UpReport {
            container_name: name.clone(),
            container_id: String::new(),
            image_id: String::new(),
            created: false,
            started: false,
            post_start: None,
            exit_code: None,
            downed: false,
            warnings: Vec::new(),
            user_setup: None,
        };
        let mut existing = self.find_container(&req.workspace).await?;
        if let Some(c) = &existing {
            let running = c.state.as_ref().and_then(|s| s.running) == Some(true);
            let persistent = c
                .config
                .as_ref()
                .and_then(|c| c.labels.as_ref())
                .and_then(|l| l.get(LABEL_PERSISTENT))
                .map(String::as_str)
                == Some("true");
            if !running && !persistent {
                tracing::info!(container = %name, "removing the stopped container before re-creating it");
                self.remove(c.id.as_deref().unwrap_or(&name)).await?;
                existing = None;
            }
        }
        if let Some(c) = &existing {
            let project = c
                .config
                .as_ref()
                .and_then(|c| c.labels.as_ref())
                .and_then(|l| l.get(LABEL_PROJECT));
            if project.map(std::path::Path::new) != Some(req.project.as_path()) {
                return Err(Error::Container(format!(
                    "container {name} belongs to project {}, not {}; run `wsfs down {}` (and \
                     remove it if it is persistent) or choose another workspace name",
                    project.map_or("?", |p| p.as_str()),
                    req.project.display(),
                    req.workspace
                )));
            }
        }
        let (user, uid, gid) = cfg.code_user(&req.host_user);
        match existing {
            Some(c) => {
                report.container_id = c.id.clone().unwrap_or_default();
                report.image_id = c.image.clone().unwrap_or_default();
                if c.state.as_ref().and_then(|s| s.running) != Some(true) {
                    self.start(&report.container_id).await?;
                    report.started = true;
                }
            }
            None => {
                let image = &cfg.defaults.image;
                report.image_id = self.ensure_image(image).await?;
                let wanted = Wanted {
                    name: &user,
                    uid,
                    gid,
                    home: created_home(
                        cfg.container.workspace_container_path.is_empty(),
                        uid,
                        &req.host_user,
                        &user,
                    ),
                    auto: cfg.container.auto_user,
                    image,
                };
                let facts = self
                    .image_facts(&report.image_id, |f| {
                        plan(&wanted, f)
                            .ok()
                            .filter(|p| p.action == UserAction::Create)
                            .map(|p| p.entry.home)
                    })
                    .await?;
                let user_plan = plan(&wanted, &facts)?;
                if user_plan.action != UserAction::Keep && cfg.defaults.read_only {
                    return Err(Error::Container(format!(
                        "image {image} has no user {user} at uid {uid}, and the container's root \
                         filesystem is read-only (defaults.read_only = true), so wsfs cannot add \
                         it to /etc/passwd. Use an image with that user and set [container] \
                         auto_user = false, set code_user (--user) to a user the image has at \
                         that uid, or set read_only = false"
                    )));
                }
                let spec = build_spec(req, &report.image_id, &user_plan.entry)?;
                let mounts: Vec<PathBuf> = spec
                    .body
                    .host_config
                    .as_ref()
                    .and_then(|h| h.mounts.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.target.as_ref().map(PathBuf::from))
                    .collect();
                let home = Path::new(&user_plan.entry.home);
                let reown = match user_plan.action {
                    UserAction::Keep => false,
                    UserAction::Create => !facts.home_exists,
                    UserAction::ChangeUid { .. } => true,
                } && home != Path::new("/")
                    && !home.starts_with(req.container_dir())
                    && !mounts.iter().any(|m| m == home);
                report.warnings.extend(spec.warnings.iter().cloned());
                for w in &spec.warnings {
                    tracing::warn!("{w}");
                }
                let opts = CreateContainerOptionsBuilder::default().name(&name).build();
                let created = self
                    .docker
                    .create_container(Some(opts), spec.body)
                    .await
                    .map_err(|e| docker_err(format_args!("creating container {name}"), e))?;
                report.container_id = created.id.clone();
                report.created = true;
                let setup = async {
                    if !spec.uploads.is_empty() {
                        let opts = UploadToContainerOptionsBuilder::default().path("/").build();
                        let tar = spec.uploads.finish().map_err(|e| {
                            Error::Container(format!("archiving files to copy in: {e}"))
                        })?;
                        let tar = bytes::Bytes::from(tar);
                        self.docker
                            .upload_to_container(&created.id, Some(opts), bollard::body_full(tar))
                            .await
                            .map_err(|e| {
                                docker_err("copying credential and tool-config files in", e)
                            })?;
                    }
                    self.start(&created.id).await?;
                    if user_plan.action == UserAction::Keep {
                        return Ok(None);
                    }
                    self.ensure_user(&created.id, image, &user_plan, reown, &mounts)
                        .await
                        .map(Some)
                };
                match setup.await {
                    Ok(done) => report.user_setup = done,
                    Err(e) => {
                        let _ = self.remove(&created.id).await;
                        return Err(e);
                    }
                }
                if let Some(done) = &report.user_setup {
                    tracing::info!("{done}");
                }
                report.started = true;
            }
        }
        let workdir = req.container_dir().to_string_lossy().into_owned();
        let user_spec = format!("{uid}:{gid}");
        if report.started {
            if let Some(script) = &cfg.scripts.post_start {
                let path = if script.starts_with('/') {
                    script.clone()
                } else {
                    format!(
                        "{}/{}",
                        workdir.trim_end_matches('/'),
                        script.trim_start_matches("./")
                    )
                };
                let out = self
                    .exec_in(
                        &report.container_id,
                        std::slice::from_ref(&path),
                        Some(user_spec.clone()),
                        Some(workdir.clone()),
                        &[],
                        &Io::Capture { stdin: Vec::new() },
                        Some(false),
                    )
                    .await?;
                let ps = PostStartReport {
                    path: path.clone(),
                    exit_code: out.exit_code,
                    stdout: out.stdout,
                    stderr: out.stderr,
                };
                if ps.exit_code != 0 {
                    let msg = format!(
                        "post_start {path} failed with exit code {}: {}",
                        ps.exit_code,
                        String::from_utf8_lossy(&ps.stderr).trim()
                    );
                    if cfg.scripts.post_start_fatal {
                        let _ = self.down(&req.workspace).await;
                        return Err(Error::Container(format!(
                            "{msg} (post_start_fatal is set, so the container was stopped)"
                        )));
                    }
                    tracing::warn!("{msg}");
                    report.warnings.push(msg);
                }
                report.post_start = Some(ps);
            }
        }
        if !req.command.is_empty() {
            let out = self
                .exec_in(
                    &report.container_id,
                    &req.command,
                    Some(user_spec),
                    Some(workdir),
                    &[],
                    &req.io,
                    None,
                )
                .await;
            if report.started {
                self.down(&req.workspace).await?;
                report.downed = true;
            }
            let out = out?;
            if let Io::Capture { .. } = req.io {
                // Captured output is not part of the report; show it in the logs for debugging.
                tracing::debug!(stdout = %String::from_utf8_lossy(&out.stdout), "command output");
            }
            report.exit_code = Some(out.exit_code);
        }
        Ok(report)
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| docker_err(format_args!("starting container {id}"), e))
    }
}
