//! `GET /v1/workspaces/{name}/terminal`: a WebSocket bound to a shell on a pseudo-terminal.
//!
//! Binary frames carry the terminal's input (client → daemon) and output (daemon → client); a
//! text frame `{"type":"resize","cols":…,"rows":…}` resizes it (`?cols=&rows=` give the first
//! size, 80 × 24 by default). The shell is the workspace's view, chosen by [`shell_command`].
//! When the shell exits the daemon sends a close frame with its status (`exit 0`); when the
//! client closes, the shell's session gets SIGHUP (SIGKILL after two seconds); so it does when
//! the daemon stops (close code 1001, "mountd is stopping").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tokio::process::{Child, Command};
use tracing::{debug, info, warn};
use wsfs::api::WorkspaceInfo;

use super::pty::{self, Pty};
use crate::server::{api_error, Shared};

/// A text frame from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Control {
    /// The terminal's new size.
    Resize { cols: u16, rows: u16 },
}

/// Opens a terminal into workspace `name`.
pub async fn open(
    State(s): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    let entry = match s.registry.get(&name) {
        Ok(e) => e,
        Err(f) => return crate::server::failure(f),
    };
    let info = entry.info();
    let Some(mountpoint) = info.mountpoint.clone() else {
        return api_error(
            StatusCode::CONFLICT,
            "conflict",
            format!("workspace {name:?} is not mounted: mount it first (`wsfs mount`)"),
        );
    };
    let shares_project = s
        .registry
        .list()
        .iter()
        .any(|w| w.name != name && w.project == info.project);
    let wsfs_bin = wsfs_binary();
    let container = match &info.image_id {
        Some(_) => container_running(&wsfs_bin, &s, &name).await,
        None => false,
    };
    let cmd = shell_command(&wsfs_bin, &s, &info, &mountpoint, container, shares_project);
    let (cols, rows) = initial_size(query.as_deref());
    let (pty, child) = match pty::spawn(cmd, cols, rows) {
        Ok(v) => v,
        Err(e) => {
            return api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("starting a terminal for workspace {name:?}: {e}"),
            )
        }
    };
    info!(workspace = %name, container, pid = child.id(), "terminal opened");
    let stopping = s.registry.events.closed();
    upgrade.on_upgrade(move |socket| bridge(socket, Arc::new(pty), child, name, stopping))
}

/// `wsfs` next to this mountd, else the one on `PATH`.
fn wsfs_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|p| p.with_file_name("wsfs"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("wsfs"))
}

/// A `wsfs` command talking to this daemon.
fn wsfs_command(wsfs_bin: &Path, s: &Shared) -> Command {
    let mut cmd = Command::new(wsfs_bin);
    cmd.env("WSFS_SOCKET", &s.info.socket)
        .env("WSFS_STATE_DIR", &s.info.state_dir)
        .env_remove("WSFS_REMOTE")
        .env_remove("WSFS_TOKEN");
    cmd
}

/// True if `wsfs ps` (the controller: mountd has no Docker client) reports the workspace's
/// container running.
async fn container_running(wsfs_bin: &Path, s: &Shared, name: &str) -> bool {
    #[derive(Deserialize)]
    struct Row {
        workspace: String,
        state: Option<String>,
    }
    let mut cmd = wsfs_command(wsfs_bin, s);
    cmd.args(["--json", "ps"]).kill_on_drop(true);
    let out = match tokio::time::timeout(Duration::from_secs(10), cmd.output()).await {
        Ok(Ok(out)) if out.status.success() => out,
        other => {
            debug!(?other, "wsfs ps failed: no container for the terminal");
            return false;
        }
    };
    serde_json::from_slice::<Vec<Row>>(&out.stdout)
        .unwrap_or_default()
        .iter()
        .any(|r| r.workspace == name && r.state.as_deref() == Some("running"))
}

/// The shell a terminal runs:
/// - the workspace's running container: `wsfs shell NAME` (the controller's own shell);
/// - otherwise, like `wsfs run`: `wsfs run PROJECT -- $SHELL`, the workspace at the project's
///   own path in a private mount namespace;
/// - when another workspace shares the project (`wsfs run` would pick by project, not by
///   name): `$SHELL` in the workspace's mountpoint.
fn shell_command(
    wsfs_bin: &Path,
    s: &Shared,
    info: &WorkspaceInfo,
    mountpoint: &Path,
    container: bool,
    shares_project: bool,
) -> Command {
    let shell = std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            if Path::new("/bin/bash").exists() {
                "/bin/bash".into()
            } else {
                "/bin/sh".into()
            }
        });
    let mut cmd = if container {
        let mut cmd = wsfs_command(wsfs_bin, s);
        cmd.args(["shell", &info.name]);
        cmd
    } else if shares_project {
        let mut cmd = Command::new(&shell);
        cmd.env("PWD", mountpoint);
        cmd.current_dir(mountpoint);
        cmd
    } else {
        let mut cmd = wsfs_command(wsfs_bin, s);
        cmd.arg("run").arg(&info.project).arg("--").arg(&shell);
        cmd.current_dir(&info.project);
        cmd
    };
    cmd.env("TERM", "xterm-256color")
        .env("COLORTERM", "truecolor")
        .env("WSFS_WORKSPACE", &info.name);
    cmd
}

/// `?cols=N&rows=M`, each within 1..=1000; 80 × 24 otherwise.
fn initial_size(query: Option<&str>) -> (u16, u16) {
    let get = |key: &str, default: u16| {
        query
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse::<u16>().ok())
            .filter(|v| (1..=1000).contains(v))
            .unwrap_or(default)
    };
    (get("cols", 80), get("rows", 24))
}

/// Copies between the socket and the terminal until either side ends.
async fn bridge(
    mut socket: WebSocket,
    pty: Arc<Pty>,
    mut child: Child,
    name: String,
    events_closed: impl std::future::Future<Output = ()>,
) {
    let (input, mut inputs) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let writer = {
        let pty = pty.clone();
        tokio::spawn(async move {
            while let Some(data) = inputs.recv().await {
                if pty.write_all(&data).await.is_err() {
                    break;
                }
            }
        })
    };
    let mut buf = vec![0u8; 64 << 10];
    let stopping = events_closed;
    tokio::pin!(stopping);
    let mut daemon_stops = false;
    let ended_by_client = loop {
        tokio::select! {
            _ = &mut stopping => {
                daemon_stops = true;
                break true;
            },
            n = pty.read(&mut buf) => match n {
                Ok(n) if n > 0 => {
                    let out = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
                    if socket.send(out).await.is_err() {
                        break true;
                    }
                }
                // The child's side closed: the shell ended.
                _ => break false,
            },
            // The status is read again below (tokio keeps it).
            _ = child.wait() => {
                // Output still in the terminal goes out before the close frame.
                while let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(50), pty.read(&mut buf)).await
                {
                    if n == 0 || socket.send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                        break;
                    }
                }
                break false;
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    let _ = input.send(data);
                }
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(&text) {
                    Ok(Control::Resize { cols, rows }) => {
                        if let Err(e) = pty.resize(cols.clamp(1, 1000), rows.clamp(1, 1000)) {
                            warn!(workspace = %name, "terminal resize: {e}");
                        }
                    }
                    Err(e) => debug!(workspace = %name, "terminal: ignoring text frame: {e}"),
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break true,
            },
        }
    };
    writer.abort();
    let _ = writer.await;
    // The last handle on the master: closing it hangs the terminal up.
    drop(pty);
    let status = if ended_by_client {
        hang_up(&mut child).await
    } else {
        child.wait().await.ok()
    };
    let reason = match status.and_then(|s| s.code()) {
        Some(code) => format!("exit {code}"),
        None => "ended".to_string(),
    };
    info!(workspace = %name, ended_by_client, %reason, "terminal closed");
    if daemon_stops {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: axum::extract::ws::close_code::AWAY,
                reason: "mountd is stopping".into(),
            })))
            .await;
    } else if !ended_by_client {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: axum::extract::ws::close_code::NORMAL,
                reason: reason.into(),
            })))
            .await;
    }
}

/// Ends the shell's session: SIGHUP, then SIGKILL after two seconds.
async fn hang_up(child: &mut Child) -> Option<std::process::ExitStatus> {
    if let Some(pid) = child.id() {
        // The child leads its own session and process group (setsid): signal all of it.
        signal_group(pid, libc::SIGHUP);
        if let Ok(status) = tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
            return status.ok();
        }
        signal_group(pid, libc::SIGKILL);
    }
    child.wait().await.ok()
}

fn signal_group(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill has no memory preconditions; a negative pid names the process group.
    unsafe { libc::kill(-pid, sig) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_size_comes_from_the_query() {
        assert_eq!(initial_size(None), (80, 24));
        assert_eq!(initial_size(Some("cols=120&rows=40")), (120, 40));
        assert_eq!(initial_size(Some("rows=0&cols=x")), (80, 24));
        assert_eq!(initial_size(Some("xcols=5")), (80, 24));
    }
}
