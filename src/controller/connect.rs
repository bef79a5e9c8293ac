//! Connecting to the Docker daemon.

use bollard::{Docker, API_DEFAULT_VERSION};

use super::Controller;
use crate::{Error, Result};

/// Seconds before a request without a response fails.
const TIMEOUT_SECS: u64 = 120;

/// The endpoint: `explicit`, else `DOCKER_HOST`, else the default Unix socket.
fn endpoint(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_string)
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

pub(super) async fn connect(explicit: Option<&str>) -> Result<Controller> {
    let endpoint = endpoint(explicit);
    let unreachable = |why: String| {
        Error::Container(format!(
            "cannot reach the Docker daemon at {endpoint}: {why}. Start dockerd (or set \
             DOCKER_HOST to its socket); `wsfs run` works without Docker"
        ))
    };
    let docker = if let Some(path) = endpoint.strip_prefix("unix://") {
        Docker::connect_with_unix(path, TIMEOUT_SECS, API_DEFAULT_VERSION)
    } else if endpoint.starts_with('/') {
        Docker::connect_with_unix(&endpoint, TIMEOUT_SECS, API_DEFAULT_VERSION)
    } else if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
        Docker::connect_with_http(&endpoint, TIMEOUT_SECS, API_DEFAULT_VERSION)
    } else {
        return Err(unreachable(
            "unsupported DOCKER_HOST scheme (use unix:// or tcp://)".into(),
        ));
    }
    .map_err(|e| unreachable(e.to_string()))?;
    // Also the reachability check: GET /version.
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    tracing::debug!(%endpoint, version = %docker.client_version(), "connected to Docker");
    Ok(Controller { docker })
}
