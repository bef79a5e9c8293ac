//! The controller: an agent's container on a workspace, through the Docker API (bollard), and
//! `wsfs run` without Docker ([`run_in_namespace`]).
//!
//! The API is async (tokio); a synchronous CLI wraps each call in `Runtime::block_on`.
//! Containers are named `wsfs-<workspace>` and found by the label `wsfs.workspace=<name>`;
//! everything `exec`/`shell`/`down` need later (user, workspace directory, persistence) is kept
//! in labels, so they work without re-reading the configuration.
//!
//! ```no_run
//! # async fn f() -> wsfs::Result<()> {
//! use wsfs::controller::{Controller, UpRequest, Io};
//! let ctl = Controller::connect().await?;
//! let cfg = wsfs::config::load(Some("/home/me/proj".as_ref()))?;
//! let req = UpRequest::new("proj", "/home/me/proj", "/var/lib/wsfs/mnt/proj", cfg);
//! let report = ctl.up(&req).await?;           // store report.image_id in WorkspaceMeta
//! let out = ctl.exec("proj", &["make".to_string()], Io::Terminal).await?;
//! ctl.down("proj").await?;
//! # Ok(()) }
//! ```

mod connect;
mod exec;
mod image;
pub(crate) mod ns_sys;
mod ops;
mod plan;
pub(crate) mod run;
pub mod tar;
mod up;
mod user;

use bollard::Docker;

pub use exec::{ExecOutcome, ExecRequest, Io};
pub use ops::{ContainerStatus, DownReport, LogStream};
pub use plan::{check_project, container_name, tool_config_dirs, tool_workspace_name, UpRequest};
pub use run::{run_in_namespace, RunPlan};
pub use up::{PostStartReport, UpReport};

/// Label holding the workspace name.
pub const LABEL_WORKSPACE: &str = "wsfs.workspace";
/// Label holding the host project path.
pub const LABEL_PROJECT: &str = "wsfs.project";
/// Label holding the wsfs version that created the container.
pub const LABEL_VERSION: &str = "wsfs.version";
/// Label holding the workspace directory inside the container.
pub const LABEL_WORKDIR: &str = "wsfs.workdir";
/// Label holding `uid:gid` of the code user.
pub const LABEL_USER: &str = "wsfs.user";
/// Label holding the code user's login shell in the image.
pub const LABEL_SHELL: &str = "wsfs.shell";
/// Label `true` when the container is kept between `up`s.
pub const LABEL_PERSISTENT: &str = "wsfs.persistent";
/// Label holding the configured image reference (tag) the container was created from.
pub const LABEL_IMAGE_REF: &str = "wsfs.image";

/// A connection to the Docker daemon.
#[derive(Clone, Debug)]
pub struct Controller {
    docker: Docker,
}

impl Controller {
    /// Connects to `DOCKER_HOST` (default `unix:///var/run/docker.sock`) and negotiates the API
    /// version. When the daemon does not answer, the error names the socket and says that
    /// `wsfs run` works without Docker.
    pub async fn connect() -> crate::Result<Controller> {
        connect::connect(None).await
    }

    /// Connects to an explicit endpoint (`unix:///path`, `/path` or `tcp://host:port`).
    pub async fn connect_to(endpoint: &str) -> crate::Result<Controller> {
        connect::connect(Some(endpoint)).await
    }

    /// The underlying bollard client (for callers that need more than this API).
    pub fn docker(&self) -> &Docker {
        &self.docker
    }
}

/// Wraps a bollard error with what we were doing.
pub(crate) fn docker_err(what: impl std::fmt::Display, e: bollard::errors::Error) -> crate::Error {
    crate::Error::Container(format!("{what}: {e}"))
}

/// True for a Docker "404 not found" answer.
pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
