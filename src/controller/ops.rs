//! Finding a workspace's container, `ps`, `down` and `logs`.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::container::LogOutput;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::*;
use crate::{Error, Result};

/// Seconds `down` waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT_SECS: i32 = 5;

/// A workspace container as `ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerStatus {
    /// Workspace name (label `wsfs.workspace`).
    pub workspace: String,
    /// Container name.
    pub name: String,
    /// Container id.
    pub id: String,
    /// Docker state: `created`, `running`, `exited`, ...
    pub state: String,
    /// True while running.
    pub running: bool,
    /// Image reference configured at creation (e.g. `debian:stable-slim`).
    pub image_ref: String,
    /// Content id the container runs (`sha256:...`).
    pub image_id: String,
    /// Content id `image_ref` points to now, when it differs from `image_id` (the tag moved),
    /// or `None` when it is the same or the tag no longer exists.
    pub image_ref_now: Option<String>,
    /// Seconds since the container started (running containers only).
    pub uptime_secs: Option<u64>,
    /// Host project path (label `wsfs.project`).
    pub project: PathBuf,
    /// Kept between `up`s.
    pub persistent: bool,
}

/// What `down` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DownReport {
    /// A running container was stopped.
    pub stopped: bool,
    /// The container was removed (not for persistent ones).
    pub removed: bool,
    /// There was a container at all.
    pub found: bool,
}

/// Which stream a log chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Parses Docker's RFC 3339 UTC time (`2026-11-23T09:19:20.123Z`) into Unix seconds.
fn parse_docker_time(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let time = time.trim_end_matches('Z');
    let time = time.split(['.', '+']).next()?;
    let mut t = time.split(':').map(|x| x.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    if y < 1971 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

impl Controller {
    /// The workspace's container, if there is one (found by name, checked by label).
    pub(crate) async fn find_container(
        &self,
        workspace: &str,
    ) -> Result<Option<ContainerInspectResponse>> {
        match self
            .docker
            .inspect_container(&container_name(workspace), None)
            .await
        {
            Ok(c) => {
                let label = c
                    .config
                    .as_ref()
                    .and_then(|c| c.labels.as_ref())
                    .and_then(|l| l.get(LABEL_WORKSPACE));
                if label.map(String::as_str) == Some(workspace) {
                    Ok(Some(c))
                } else {
                    Err(Error::Container(format!(
                        "a container named {} exists but was not created by wsfs for workspace \
                         {workspace}; rename or remove it",
                        container_name(workspace)
                    )))
                }
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(docker_err(
                format_args!("inspecting {}", container_name(workspace)),
                e,
            )),
        }
    }

    /// The workspace's container, which must be running.
    pub(super) async fn running_container(
        &self,
        workspace: &str,
    ) -> Result<ContainerInspectResponse> {
        match self.find_container(workspace).await? {
            Some(c) if c.state.as_ref().and_then(|s| s.running) == Some(true) => Ok(c),
            Some(_) => Err(Error::Container(format!(
                "the container of workspace {workspace} is not running; start it with `wsfs up`"
            ))),
            None => Err(Error::Container(format!(
                "workspace {workspace} has no container; start one with `wsfs up`"
            ))),
        }
    }

    /// Every wsfs container (label `wsfs.workspace`), sorted by workspace.
    pub async fn ps(&self) -> Result<Vec<ContainerStatus>> {
        let filters = HashMap::from([("label".to_string(), vec![LABEL_WORKSPACE.to_string()])]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| docker_err("listing containers", e))?;
        let mut out = Vec::new();
        for c in list {
            let ws = c
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_WORKSPACE))
                .cloned()
                .unwrap_or_default();
            if let Some(s) = self.status(&ws).await? {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.workspace.cmp(&b.workspace));
        Ok(out)
    }

    /// `ps` data for one workspace (`None` without a container).
    pub async fn status(&self, workspace: &str) -> Result<Option<ContainerStatus>> {
        let Some(c) = self.find_container(workspace).await? else {
            return Ok(None);
        };
        let labels = c
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let state = c.state.clone().unwrap_or_default();
        let running = state.running == Some(true);
        let image_id = c.image.clone().unwrap_or_default();
        let image_ref = labels.get(LABEL_IMAGE_REF).cloned().unwrap_or_default();
        let image_ref_now = if image_ref.is_empty() {
            None
        } else {
            self.image_id(&image_ref)
                .await?
                .filter(|now| *now != image_id)
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let uptime_secs = running
            .then(|| state.started_at.as_deref().and_then(parse_docker_time))
            .flatten()
            .map(|t| (now - t).max(0) as u64);
        Ok(Some(ContainerStatus {
            workspace: workspace.to_string(),
            name: c
                .name
                .clone()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            id: c.id.clone().unwrap_or_default(),
            state: state
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into()),
            running,
            image_ref,
            image_id,
            image_ref_now,
            uptime_secs,
            project: labels
                .get(LABEL_PROJECT)
                .map(PathBuf::from)
                .unwrap_or_default(),
            persistent: labels.get(LABEL_PERSISTENT).map(String::as_str) == Some("true"),
        }))
    }

    /// Stops the workspace's container and removes it unless it is persistent. No container is
    /// not an error (`found: false`).
    pub async fn down(&self, workspace: &str) -> Result<DownReport> {
        let Some(c) = self.find_container(workspace).await? else {
            return Ok(DownReport::default());
        };
        let id = c.id.clone().unwrap_or_default();
        let persistent = c
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(LABEL_PERSISTENT))
            .map(String::as_str)
            == Some("true");
        let mut report = DownReport {
            found: true,
            ..Default::default()
        };
        if c.state.as_ref().and_then(|s| s.running) == Some(true) {
            let opts = StopContainerOptionsBuilder::default()
                .t(STOP_TIMEOUT_SECS)
                .build();
            self.docker
                .stop_container(&id, Some(opts))
                .await
                .map_err(|e| {
                    docker_err(format_args!("stopping {}", container_name(workspace)), e)
                })?;
            report.stopped = true;
        }
        if !persistent {
            self.remove(&id).await?;
            report.removed = true;
        }
        Ok(report)
    }

    /// Stops and removes the workspace's container even when it is persistent (for
    /// `wsfs down --rm`, or before re-creating it with a new configuration).
    pub async fn destroy(&self, workspace: &str) -> Result<DownReport> {
        let Some(c) = self.find_container(workspace).await? else {
            return Ok(DownReport::default());
        };
        let running = c.state.as_ref().and_then(|s| s.running) == Some(true);
        self.remove(c.id.as_deref().unwrap_or_default()).await?;
        Ok(DownReport {
            found: true,
            stopped: running,
            removed: true,
        })
    }

    /// Force-removes a container (its anonymous volumes too; bind mounts are untouched).
    pub(super) async fn remove(&self, id: &str) -> Result<()> {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(docker_err(format_args!("removing container {id}"), e)),
        }
    }

    /// The container's output (its keep-alive process and anything written to PID 1's
    /// streams), passed chunk by chunk to `sink`; with `follow`, until the container stops.
    pub async fn logs(
        &self,
        workspace: &str,
        follow: bool,
        sink: &mut (dyn FnMut(LogStream, &[u8]) + Send),
    ) -> Result<()> {
        let Some(c) = self.find_container(workspace).await? else {
            return Err(Error::Container(format!(
                "workspace {workspace} has no container"
            )));
        };
        let id = c.id.unwrap_or_default();
        let opts = LogsOptionsBuilder::default()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .build();
        let mut stream = self.docker.logs(&id, Some(opts));
        while let Some(item) = stream.next().await {
            match item.map_err(|e| docker_err("reading logs", e))? {
                LogOutput::StdErr { message } => sink(LogStream::Stderr, &message),
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    sink(LogStream::Stdout, &message)
                }
                LogOutput::StdIn { .. } => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn docker_time() {
        assert_eq!(super::parse_docker_time("1970-01-02T00:00:01Z"), None);
        assert_eq!(
            super::parse_docker_time("2026-11-23T09:19:20.510582356Z"),
            Some(1_795_425_560)
        );
    }
}
