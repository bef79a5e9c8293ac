//! Client of the `mountd` control API (HTTP/JSON over its Unix socket, or over TCP with a
//! token for a remote daemon: [`Client::remote`]), used by the `wsfs` CLI and the controller.
//!
//! One connection per request: requests are rare and small, and a fresh connection keeps the
//! client free of pooling state. [`Client::connect_or_start`] starts `mountd` in the
//! background when nothing answers on the socket.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;

use crate::api::{self, ApiError, CommitEvent, CommitReport, CommitRequest};

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers on the socket.
    #[error("mountd is not reachable on {socket}: {source}; start it with `mountd` (or let `wsfs` start it: drop --no-autostart)")]
    Unreachable {
        /// The socket tried.
        socket: PathBuf,
        /// The connect error.
        source: std::io::Error,
    },
    /// The socket exists but this user may not use it.
    #[error("permission denied on {socket}: this mountd belongs to another user; run as root or as the socket's owner, or set WSFS_SOCKET to your own daemon's socket")]
    Forbidden {
        /// The socket tried.
        socket: PathBuf,
    },
    /// The daemon answered with an error.
    #[error("{}", .0.message)]
    Api(Box<ApiError>),
    /// Starting the daemon failed.
    #[error("could not start mountd ({program}): {message}")]
    Autostart {
        /// The program run.
        program: PathBuf,
        /// What went wrong, and where its log is.
        message: String,
    },
    /// The daemon stopped answering while it committed (killed, crashed, or its connection
    /// broke): the commit may be partly applied, and mountd completes it when it starts again.
    #[error("mountd stopped while committing ({detail}): the commit may be partly applied to the project (each file entirely old or entirely new); mountd completes it when it starts again. Start it (any wsfs command without --no-autostart does), then check `wsfs status`")]
    CommitInterrupted {
        /// What the connection said.
        detail: String,
    },
    /// The daemon speaks another version of the control API (an older or newer mountd is still
    /// running after an upgrade).
    #[error("mountd on {socket} speaks API v{daemon_api}, this wsfs speaks v{client_api}: restart mountd (it is pid {pid}, version {daemon_version}; `kill {pid}` stops it cleanly, unmounting its workspaces, and the next wsfs command starts the matching one)")]
    ApiMismatch {
        /// The socket.
        socket: PathBuf,
        /// The daemon's [`api::API_VERSION`].
        daemon_api: u32,
        /// This crate's [`api::API_VERSION`].
        client_api: u32,
        /// The daemon's wsfs version.
        daemon_version: String,
        /// The daemon's process id.
        pid: u32,
    },
    /// Nothing answers at a remote daemon's address.
    #[error("mountd is not reachable at {url}: {source}; is it running there with --listen, and is the address right?")]
    RemoteUnreachable {
        /// The address tried.
        url: String,
        /// The connect error.
        source: std::io::Error,
    },
    /// A remote address this client cannot use.
    #[error("{0}")]
    BadRemote(String),
    /// The daemon's answer was not understood.
    #[error("bad answer from mountd on {socket}: {message}")]
    Protocol {
        /// The socket.
        socket: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// Result of client calls.
pub type ClientResult<T> = std::result::Result<T, ClientError>;

/// A handle on one daemon: its socket, or a remote address with a token.
#[derive(Clone, Debug)]
pub struct Client {
    socket: PathBuf,
    remote: Option<Remote>,
}

/// A remote daemon's TCP address and the token its requests carry.
#[derive(Clone)]
struct Remote {
    url: String,
    addr: String,
    token: String,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Remote").field("url", &self.url).finish()
    }
}

/// Port of a remote daemon's URL without one (mountd's `--listen` default).
pub const DEFAULT_REMOTE_PORT: u16 = 7391;

/// How to start `mountd` when it is not running.
#[derive(Clone, Debug)]
pub struct Autostart {
    /// The `mountd` executable.
    pub program: PathBuf,
    /// State directory to pass (`--state-dir`).
    pub state_dir: PathBuf,
    /// Where the daemon's log goes.
    pub log: PathBuf,
}

impl Client {
    /// A client of the daemon listening on `socket` (no connection yet).
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Client {
            socket: socket.into(),
            remote: None,
        }
    }

    /// A client of the daemon at `url` (`http://HOST[:PORT]`, port 7391 by default), sending
    /// `token` with every request; checks it answers and speaks this API version.
    pub async fn remote(url: &str, token: &str) -> ClientResult<Client> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            ClientError::BadRemote(if url.starts_with("https://") {
                format!("{url}: TLS is not supported yet; use http:// over a private network (WireGuard, Tailscale) or an SSH tunnel")
            } else {
                format!("{url}: expected http://HOST[:PORT]")
            })
        })?;
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            return Err(ClientError::BadRemote(format!(
                "{url}: expected http://HOST[:PORT] with no path"
            )));
        }
        let has_port = host
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && !p.contains(']') && p.parse::<u16>().is_ok());
        let addr = if has_port {
            host.to_string()
        } else {
            format!("{host}:{DEFAULT_REMOTE_PORT}")
        };
        if token.is_empty() {
            return Err(ClientError::BadRemote(format!(
                "no token for {url}: set WSFS_TOKEN to what `wsfs token show` prints on the daemon's host"
            )));
        }
        let client = Client {
            socket: PathBuf::from(url),
            remote: Some(Remote {
                url: url.to_string(),
                addr,
                token: token.to_string(),
            }),
        };
        let info = client.daemon().await?;
        client.same_api(info)
    }

    /// True for a client of a remote daemon.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Checks the daemon answers and speaks this crate's [`api::API_VERSION`] (else
    /// [`ClientError::ApiMismatch`]); with `autostart`, starts it first when nothing answers
    /// and waits (up to 15 s) until it does. Every client the CLI uses is made here, so the
    /// version is checked once per client.
    pub async fn connect_or_start(
        socket: impl Into<PathBuf>,
        autostart: Option<&Autostart>,
    ) -> ClientResult<Client> {
        let client = Client::new(socket);
        match client.daemon().await {
            Ok(info) => return client.same_api(info),
            Err(ClientError::Unreachable { .. }) if autostart.is_some() => {}
            Err(e) => return Err(e),
        }
        let a = autostart.expect("checked above");
        let mut child = spawn_daemon(a, &client.socket)?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            match client.daemon().await {
                Ok(info) => return client.same_api(info),
                Err(ClientError::Unreachable { .. }) if Instant::now() < deadline => {}
                Err(e) => return Err(e),
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ClientError::Autostart {
                    program: a.program.clone(),
                    message: format!("it exited with {status}; see {}", a.log.display()),
                });
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Autostart {
                    program: a.program.clone(),
                    message: format!("it did not answer within 15 s; see {}", a.log.display()),
                });
            }
        }
    }

    /// `self` when the daemon that sent `info` speaks this crate's API version.
    fn same_api(self, info: api::DaemonInfo) -> ClientResult<Client> {
        if info.api == api::API_VERSION {
            return Ok(self);
        }
        Err(ClientError::ApiMismatch {
            socket: self.socket,
            daemon_api: info.api,
            client_api: api::API_VERSION,
            daemon_version: info.version,
            pid: info.pid,
        })
    }

    /// `GET /v1/daemon`.
    pub async fn daemon(&self) -> ClientResult<api::DaemonInfo> {
        self.call(Method::GET, "/v1/daemon", None::<&()>).await
    }

    /// `GET /v1/token` (local socket only): the remote API token.
    pub async fn token(&self) -> ClientResult<api::TokenInfo> {
        self.call(Method::GET, "/v1/token", None::<&()>).await
    }

    /// `POST /v1/token/rotate` (local socket only): a new remote API token; the old one stops
    /// working.
    pub async fn rotate_token(&self) -> ClientResult<api::TokenInfo> {
        self.call(Method::POST, "/v1/token/rotate", None::<&()>)
            .await
    }

    /// `GET /v1/workspaces`.
    pub async fn list(&self) -> ClientResult<Vec<api::WorkspaceInfo>> {
        self.call(Method::GET, "/v1/workspaces", None::<&()>).await
    }

    /// `POST /v1/workspaces`: creates (or reopens) and mounts a workspace.
    pub async fn mount(&self, req: &api::MountRequest) -> ClientResult<api::WorkspaceInfo> {
        self.call(Method::POST, "/v1/workspaces", Some(req)).await
    }

    /// `POST /v1/workspaces/{name}/unmount`: unmounts; the overlay stays.
    pub async fn unmount(&self, name: &str) -> ClientResult<api::WorkspaceInfo> {
        self.call(Method::POST, &ws(name, "unmount"), None::<&()>)
            .await
    }

    /// `DELETE /v1/workspaces/{name}`: unmounts and deletes the workspace and its changes.
    pub async fn remove(&self, name: &str) -> ClientResult<api::DiscardReport> {
        self.call(
            Method::DELETE,
            &format!("/v1/workspaces/{name}"),
            None::<&()>,
        )
        .await
    }

    /// `GET /v1/workspaces/{name}`.
    pub async fn info(&self, name: &str) -> ClientResult<api::WorkspaceInfo> {
        self.call(Method::GET, &format!("/v1/workspaces/{name}"), None::<&()>)
            .await
    }

    /// `POST /v1/workspaces/{name}/image`: records the container image id.
    pub async fn record_image(
        &self,
        name: &str,
        image_id: &str,
    ) -> ClientResult<api::WorkspaceInfo> {
        let body = api::ImageRecord {
            image_id: image_id.to_string(),
        };
        self.call(Method::POST, &ws(name, "image"), Some(&body))
            .await
    }

    /// `GET /v1/workspaces/{name}/status?show=…`.
    pub async fn status(&self, name: &str, show: api::Show) -> ClientResult<Vec<api::Change>> {
        let path = format!("{}?show={}", ws(name, "status"), show_word(show));
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// `POST /v1/workspaces/{name}/diff?show=…`.
    pub async fn diff(
        &self,
        name: &str,
        req: &api::PathsRequest,
        show: api::Show,
    ) -> ClientResult<Vec<api::FileDiff>> {
        let path = format!("{}?show={}", ws(name, "diff"), show_word(show));
        self.call(Method::POST, &path, Some(req)).await
    }

    /// `POST /v1/workspaces/{name}/patch?show=…`: the changes as a patch `git apply` accepts.
    pub async fn patch(
        &self,
        name: &str,
        req: &api::PathsRequest,
        show: api::Show,
    ) -> ClientResult<api::GitPatch> {
        let path = format!("{}?show={}", ws(name, "patch"), show_word(show));
        self.call(Method::POST, &path, Some(req)).await
    }

    /// `POST /v1/workspaces/{name}/export`: the changes as a commit on a branch of the host
    /// repository.
    pub async fn export(
        &self,
        name: &str,
        req: &api::ExportRequest,
    ) -> ClientResult<api::ExportReport> {
        self.call(Method::POST, &ws(name, "export"), Some(req))
            .await
    }

    /// `POST /v1/workspaces/{name}/discard`.
    pub async fn discard(
        &self,
        name: &str,
        req: &api::PathsRequest,
    ) -> ClientResult<api::DiscardReport> {
        self.call(Method::POST, &ws(name, "discard"), Some(req))
            .await
    }

    /// `POST /v1/workspaces/{name}/checkpoints`: takes a checkpoint.
    pub async fn checkpoint(
        &self,
        name: &str,
        req: &api::CheckpointRequest,
    ) -> ClientResult<api::CheckpointInfo> {
        self.call(Method::POST, &ws(name, "checkpoints"), Some(req))
            .await
    }

    /// `GET /v1/workspaces/{name}/checkpoints`.
    pub async fn checkpoints(&self, name: &str) -> ClientResult<Vec<api::CheckpointInfo>> {
        self.call(Method::GET, &ws(name, "checkpoints"), None::<&()>)
            .await
    }

    /// `POST /v1/workspaces/{name}/restore`.
    pub async fn restore(
        &self,
        name: &str,
        req: &api::RestoreRequest,
    ) -> ClientResult<api::RestoreReport> {
        self.call(Method::POST, &ws(name, "restore"), Some(req))
            .await
    }

    /// `POST /v1/workspaces/{name}/diff-range?show=…`: what changed between two points.
    pub async fn diff_range(
        &self,
        name: &str,
        req: &api::RangeDiffRequest,
        show: api::Show,
    ) -> ClientResult<Vec<api::FileDiff>> {
        let path = format!("{}?show={}", ws(name, "diff-range"), show_word(show));
        self.call(Method::POST, &path, Some(req)).await
    }

    /// `GET /v1/workspaces/{name}/log`.
    pub async fn log(&self, name: &str) -> ClientResult<Vec<crate::journal::record::Record>> {
        self.call(Method::GET, &ws(name, "log"), None::<&()>).await
    }

    /// `POST /v1/workspaces/{name}/blame`: the records that touched `req.paths`.
    pub async fn blame(
        &self,
        name: &str,
        req: &api::PathsRequest,
    ) -> ClientResult<Vec<crate::journal::record::Record>> {
        self.call(Method::POST, &ws(name, "blame"), Some(req)).await
    }

    /// `GET /v1/workspaces/{name}/commits`.
    pub async fn commits(&self, name: &str) -> ClientResult<Vec<api::CommitInfo>> {
        self.call(Method::GET, &ws(name, "commits"), None::<&()>)
            .await
    }

    /// `POST /v1/workspaces/{name}/undo`.
    pub async fn undo(&self, name: &str, req: &api::UndoRequest) -> ClientResult<api::UndoReport> {
        self.call(Method::POST, &ws(name, "undo"), Some(req)).await
    }

    /// `POST /v1/workspaces/{name}/gc`.
    pub async fn gc(&self, name: &str, req: &api::GcRequest) -> ClientResult<api::GcReport> {
        self.call(Method::POST, &ws(name, "gc"), Some(req)).await
    }

    /// `GET /v1/workspaces/{name}/verify`.
    pub async fn verify(&self, name: &str) -> ClientResult<api::VerifyReport> {
        self.call(Method::GET, &ws(name, "verify"), None::<&()>)
            .await
    }

    /// `POST /v1/workspaces/{name}/commit`: streams progress to `on_progress(done, total)` and
    /// returns the report (refused commits included: check `report.conflicts`).
    pub async fn commit(
        &self,
        name: &str,
        req: &CommitRequest,
        mut on_progress: impl FnMut(u64, u64),
    ) -> ClientResult<CommitReport> {
        let mut body = self
            .send(Method::POST, &ws(name, "commit"), Some(req))
            .await?;
        let mut pending = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ClientError::CommitInterrupted {
                detail: format!("reading the commit stream: {e}"),
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let event: CommitEvent = serde_json::from_slice(&line)
                    .map_err(|e| self.protocol(format!("commit event: {e}")))?;
                match event {
                    CommitEvent::Progress { done, total } => on_progress(done, total),
                    CommitEvent::Done { report } => return Ok(report),
                    CommitEvent::Error { error } => return Err(ClientError::Api(Box::new(error))),
                }
            }
        }
        Err(ClientError::CommitInterrupted {
            detail: "the commit stream ended without a result".into(),
        })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> ClientResult<T> {
        let body = self.send(method, path, body).await?;
        let bytes = body
            .collect()
            .await
            .map_err(|e| self.protocol(format!("reading the answer to {path}: {e}")))?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| self.protocol(format!("answer to {path}: {e}")))
    }

    /// Sends one request; a non-2xx answer becomes [`ClientError::Api`].
    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> ClientResult<hyper::body::Incoming> {
        let mut sender = match &self.remote {
            None => {
                let stream = UnixStream::connect(&self.socket).await.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::PermissionDenied {
                        ClientError::Forbidden {
                            socket: self.socket.clone(),
                        }
                    } else {
                        ClientError::Unreachable {
                            socket: self.socket.clone(),
                            source: e,
                        }
                    }
                })?;
                drive(handshake(self, stream).await?)
            }
            Some(r) => {
                let stream = tokio::net::TcpStream::connect(&r.addr).await.map_err(|e| {
                    ClientError::RemoteUnreachable {
                        url: r.url.clone(),
                        source: e,
                    }
                })?;
                drive(handshake(self, stream).await?)
            }
        };
        let payload = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| self.protocol(e.to_string()))?,
            None => Vec::new(),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        req = match &self.remote {
            None => req.header("host", "mountd"),
            Some(r) => req
                .header("host", r.addr.as_str())
                .header("authorization", format!("Bearer {}", r.token)),
        };
        let req = req
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| self.protocol(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.protocol(format!("{path}: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp.into_body());
        }
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| self.protocol(e.to_string()))?
            .to_bytes();
        match serde_json::from_slice::<ApiError>(&bytes) {
            Ok(err) => Err(ClientError::Api(Box::new(err))),
            Err(_) => Err(ClientError::Api(Box::new(ApiError {
                code: code_for(status).into(),
                message: format!("{path}: {status}: {}", String::from_utf8_lossy(&bytes)),
                commit: None,
            }))),
        }
    }

    fn protocol(&self, message: String) -> ClientError {
        ClientError::Protocol {
            socket: self.socket.clone(),
            message,
        }
    }
}

/// The sending half of an HTTP/1 connection over `stream`, and the connection to drive.
type Conn<S> = (
    hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    hyper::client::conn::http1::Connection<TokioIo<S>, Full<Bytes>>,
);

async fn handshake<S>(client: &Client, stream: S) -> ClientResult<Conn<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| client.protocol(format!("handshake: {e}")))
}

/// Spawns the connection's driver; returns the sending half.
fn drive<S>((sender, conn): Conn<S>) -> hyper::client::conn::http1::SendRequest<Full<Bytes>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

fn show_word(show: api::Show) -> &'static str {
    match show {
        api::Show::All => "all",
        api::Show::Review => "review",
        api::Show::Scratch => "scratch",
    }
}

fn ws(name: &str, action: &str) -> String {
    format!("/v1/workspaces/{name}/{action}")
}

fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::CONFLICT => "conflict",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    }
}

/// Starts `mountd` detached (own session, log file) so it outlives the CLI.
fn spawn_daemon(a: &Autostart, socket: &Path) -> ClientResult<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let fail = |message: String| ClientError::Autostart {
        program: a.program.clone(),
        message,
    };
    if let Some(dir) = a.log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&a.log)
        .map_err(|e| fail(format!("{}: {e}", a.log.display())))?;
    let log2 = log
        .try_clone()
        .map_err(|e| fail(format!("{}: {e}", a.log.display())))?;
    std::process::Command::new(&a.program)
        .arg("--state-dir")
        .arg(&a.state_dir)
        .arg("--socket")
        .arg(socket)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| fail(format!("{e}; install mountd next to wsfs or on PATH")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    /// A stand-in daemon on `socket` that answers every request with `info` and then closes.
    fn fake_daemon(socket: &Path, info: api::DaemonInfo) -> tokio::task::JoinHandle<()> {
        let listener = UnixListener::bind(socket).unwrap();
        let body = serde_json::to_vec(&info).unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&body).await;
                let _ = conn.shutdown().await;
            }
        })
    }

    fn info(api: u32) -> api::DaemonInfo {
        api::DaemonInfo {
            api,
            version: "9.9.9".into(),
            pid: 4242,
            state_dir: "/nowhere".into(),
            socket: "/nowhere/mountd.sock".into(),
            problems: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_daemon_of_another_api_version_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("mountd.sock");
        let daemon = fake_daemon(&socket, info(api::API_VERSION + 1));
        let err = Client::connect_or_start(&socket, None).await.unwrap_err();
        assert!(
            matches!(err, ClientError::ApiMismatch { daemon_api, client_api, pid: 4242, .. }
                if daemon_api == api::API_VERSION + 1 && client_api == api::API_VERSION),
            "{err:?}"
        );
        let msg = err.to_string();
        let want = format!(
            "speaks API v{}, this wsfs speaks v{}: restart mountd",
            api::API_VERSION + 1,
            api::API_VERSION
        );
        assert!(msg.contains(&want), "{msg}");
        assert!(msg.contains("kill 4242"), "{msg}");
        daemon.abort();
    }

    #[tokio::test]
    async fn a_daemon_of_the_same_api_version_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("mountd.sock");
        let daemon = fake_daemon(&socket, info(api::API_VERSION));
        let client = Client::connect_or_start(&socket, None).await.unwrap();
        assert_eq!(client.socket(), socket);
        daemon.abort();
    }

    #[test]
    fn an_api_error_shows_the_daemons_message_and_unparsed_answers_keep_their_kind() {
        let err = ClientError::Api(Box::new(ApiError {
            code: "conflict".into(),
            message: "workspace \"w\" belongs to /a, not /b; pick another --name".into(),
            commit: None,
        }));
        assert_eq!(
            err.to_string(),
            "workspace \"w\" belongs to /a, not /b; pick another --name"
        );
        assert_eq!(code_for(StatusCode::NOT_FOUND), "not_found");
        assert_eq!(code_for(StatusCode::CONFLICT), "conflict");
        assert_eq!(code_for(StatusCode::FORBIDDEN), "forbidden");
        assert_eq!(code_for(StatusCode::BAD_REQUEST), "bad_request");
        assert_eq!(code_for(StatusCode::PAYLOAD_TOO_LARGE), "bad_request");
        assert_eq!(code_for(StatusCode::INTERNAL_SERVER_ERROR), "internal");
    }
}
