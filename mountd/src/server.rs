//! The control API: HTTP/JSON over the daemon's Unix socket and, with `--listen`, over TCP
//! for remote clients ([`crate::remote`]: bearer token) (axum).
//!
//! Routes (all under `/v1`, bodies and answers are the `wsfs::api` types; errors are
//! [`ApiError`] with a 4xx/5xx status by kind, see [`status_of`]: 404 no such workspace or
//! entry, 409 conflict with the current state, 400 bad request, 403 refused, 500 otherwise):
//!
//! | route | answer |
//! |---|---|
//! | `GET /v1/daemon` | [`DaemonInfo`] |
//! | `GET /v1/workspaces` | `[WorkspaceInfo]` |
//! | `POST /v1/workspaces` ([`MountRequest`]) | `WorkspaceInfo` (created or reopened, mounted) |
//! | `GET /v1/workspaces/{name}` | `WorkspaceInfo` |
//! | `DELETE /v1/workspaces/{name}` | `DiscardReport` (unmounted, state deleted) |
//! | `POST /v1/workspaces/{name}/unmount` | `WorkspaceInfo` |
//! | `POST /v1/workspaces/{name}/image` ([`ImageRecord`]) | `WorkspaceInfo` |
//! | `GET /v1/workspaces/{name}/status[?show=all\|review\|scratch]` | `[Change]` |
//! | `POST /v1/workspaces/{name}/diff[?show=…]` ([`PathsRequest`]) | `[FileDiff]` |
//! | `POST /v1/workspaces/{name}/patch[?show=…]` ([`PathsRequest`]) | `GitPatch` |
//! | `POST /v1/workspaces/{name}/export` (`ExportRequest`) | `ExportReport` |
//! | `POST /v1/workspaces/{name}/commit` ([`CommitRequest`]) | NDJSON stream of [`CommitEvent`] |
//! | `POST /v1/workspaces/{name}/discard` ([`PathsRequest`]) | `DiscardReport` |
//! | `GET /v1/workspaces/{name}/log` | `[Record]` |
//! | `POST /v1/workspaces/{name}/blame` ([`PathsRequest`]) | `[Record]` |
//! | `GET /v1/workspaces/{name}/verify` | `VerifyReport` |
//! | `GET`/`POST /v1/workspaces/{name}/checkpoints` (`CheckpointRequest`) | `[CheckpointInfo]` / `CheckpointInfo` |
//! | `POST /v1/workspaces/{name}/restore` (`RestoreRequest`) | `RestoreReport` |
//! | `POST /v1/workspaces/{name}/diff-range[?show=…]` (`RangeDiffRequest`) | `[FileDiff]` |
//! | `GET /v1/events` | Server-Sent Events, one [`wsfs::api::Event`] per `data:` line |
//! | `GET /v1/workspaces/{name}/terminal` | WebSocket to a shell ([`crate::ui::terminal`]) |
//! | `GET /`, `GET /ui/…` | the review UI's files ([`crate::ui`]; no auth: they hold no data) |
//! | `POST /v1/login`, `POST /v1/logout` (TCP only) | session cookie for the browser |
//! | `GET /v1/token`, `POST /v1/token/rotate` (local socket only) | `TokenInfo` |
//!
//! Every Unix-socket connection's peer credentials are checked: only root and the daemon's own
//! uid may act. Every TCP request needs the token.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixListener;
use tracing::warn;
use wsfs::api::{
    ApiError, CommitEvent, CommitRequest, DaemonInfo, ImageRecord, MountRequest, PathsRequest,
};

use crate::registry::{Failure, Registry};

/// Largest request body accepted (requests are small JSON documents).
const BODY_LIMIT: usize = 16 << 20;

/// What handlers share.
pub struct Shared {
    /// The workspaces.
    pub registry: Arc<Registry>,
    /// Static daemon facts and start-up problems.
    pub info: DaemonInfo,
    /// The uid allowed besides root (the daemon's own).
    pub owner_uid: u32,
    /// The remote API token.
    pub tokens: Arc<crate::remote::Tokens>,
}

type AppState = Arc<Shared>;

/// Peer credentials of a control connection (`SO_PEERCRED`).
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    uid: Option<u32>,
    pid: Option<i32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        let cred = stream.io().peer_cred().ok();
        Peer {
            uid: cred.map(|c| c.uid()),
            pid: cred.and_then(|c| c.pid()),
        }
    }
}

/// The routes both listeners serve.
fn api_routes() -> Router<AppState> {
    let ws = Router::new()
        .route("/unmount", post(unmount))
        .route("/image", post(record_image))
        .route("/status", get(status))
        .route("/diff", post(diff))
        .route("/patch", post(patch))
        .route("/export", post(export))
        .route("/commit", post(commit))
        .route("/discard", post(discard))
        .route("/log", get(log))
        .route("/blame", post(blame))
        .route("/commits", get(commits))
        .route("/undo", post(undo))
        .route("/gc", post(gc))
        .route("/verify", get(verify))
        .route("/checkpoints", get(checkpoints).post(checkpoint))
        .route("/restore", post(restore))
        .route("/diff-range", post(diff_range))
        .route("/terminal", get(crate::ui::terminal::open));
    Router::new()
        .route("/v1/daemon", get(daemon))
        .route("/v1/events", get(events))
        .route("/v1/workspaces", get(list).post(mount))
        .route("/v1/workspaces/{name}", get(workspace_info).delete(remove))
        .nest("/v1/workspaces/{name}", ws)
}

/// The Unix socket's router: every route, the token routes, and the peer check.
pub fn router(shared: AppState) -> Router {
    api_routes()
        .route("/v1/token", get(token_show))
        .route("/v1/token/rotate", post(token_rotate))
        .merge(crate::ui::asset_routes())
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(shared.clone(), check_peer))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// The TCP listener's router: the API behind the token check; the token routes refused.
pub fn tcp_router(shared: AppState, failures: Arc<crate::remote::Failures>) -> Router {
    let auth = crate::remote::Auth {
        tokens: shared.tokens.clone(),
        failures,
    };
    let public = crate::ui::public_routes(auth.clone());
    let local_only = || async {
        api_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the token is shown and rotated only over the daemon's local socket: run `wsfs token` on its host".into(),
        )
    };
    api_routes()
        .route("/v1/token", get(local_only))
        .route("/v1/token/rotate", post(local_only))
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(
            auth,
            crate::remote::check_token,
        ))
        .merge(public)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn no_route() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; this mountd speaks API v1 (see docs/api.md)".into(),
    )
}

/// Serves the TCP router on `listener` until `shutdown` resolves.
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    shared: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = tcp_router(shared, Arc::default())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn events(State(s): State<AppState>) -> Response {
    s.registry.events.stream().into_response()
}

async fn token_show(State(s): State<AppState>) -> Response {
    Json(wsfs::api::TokenInfo {
        token: s.tokens.show(),
    })
    .into_response()
}

async fn token_rotate(State(s): State<AppState>) -> Response {
    match s.tokens.rotate() {
        Ok(token) => Json(wsfs::api::TokenInfo { token }).into_response(),
        Err(e) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("writing a new token into the state directory: {e}"),
        ),
    }
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: UnixListener,
    shared: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(shared).into_make_service_with_connect_info::<Peer>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn check_peer(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    match peer.uid {
        Some(0) => next.run(req).await,
        Some(uid) if uid == s.owner_uid => next.run(req).await,
        other => {
            warn!(uid = ?other, pid = ?peer.pid, "refused control connection");
            api_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "uid {} may not use this mountd (it belongs to uid {}); run as root or as uid {}, or start your own mountd with WSFS_SOCKET and WSFS_STATE_DIR",
                    other.map_or("unknown".into(), |u| u.to_string()),
                    s.owner_uid,
                    s.owner_uid
                ),
            )
        }
    }
}

pub(crate) fn api_error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(ApiError {
            code: code.into(),
            message,
            commit: None,
        }),
    )
        .into_response()
}

/// The HTTP status and the `ApiError` code of each kind of failure: the one table.
pub fn status_of(f: &Failure) -> (StatusCode, &'static str) {
    match f {
        Failure::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        Failure::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        Failure::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
        Failure::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        Failure::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

pub(crate) fn failure(f: Failure) -> Response {
    let (status, code) = status_of(&f);
    let (Failure::NotFound(m)
    | Failure::BadRequest(m)
    | Failure::Conflict(m)
    | Failure::Forbidden(m)
    | Failure::Internal(m)) = f;
    api_error(status, code, m)
}

/// Parses a JSON body; an empty body is the type's default.
fn parse<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        Failure::BadRequest(format!(
            "malformed request body: {e}; see docs/api.md for the schema"
        ))
    })
}

/// Like [`parse`], but an empty body is refused: on the routes that change state (commit,
/// discard) an empty request must not mean "everything".
fn parse_required<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Failure::BadRequest(
            "empty request body: this route changes the workspace, send a JSON object \
             (`{}` for all paths); see docs/api.md"
                .into(),
        ));
    }
    parse(body)
}

/// Runs blocking registry work off the async threads and answers with its JSON.
async fn blocking<T, F>(f: F) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce() -> Result<T, Failure> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => failure(e),
        Err(e) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("request handler failed: {e}; see the mountd log"),
        ),
    }
}

async fn daemon(State(s): State<AppState>) -> Response {
    Json(s.info.clone()).into_response()
}

async fn list(State(s): State<AppState>) -> Response {
    blocking(move || Ok(s.registry.list())).await
}

async fn mount(State(s): State<AppState>, body: Bytes) -> Response {
    let req: MountRequest = match parse(&body) {
        Ok(r) => r,
        Err(f) => return failure(f),
    };
    blocking(move || s.registry.mount(&req)).await
}

async fn workspace_info(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    blocking(move || Ok(s.registry.get(&name)?.info())).await
}

async fn remove(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    blocking(move || s.registry.remove(&name)).await
}

async fn unmount(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    blocking(move || s.registry.unmount(&name)).await
}

async fn record_image(
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let req: ImageRecord = match parse(&body) {
        Ok(r) => r,
        Err(f) => return failure(f),
    };
    blocking(move || {
        let entry = s.registry.get(&name)?;
        entry
            .ws
            .update_meta(&|m| m.image_id = Some(req.image_id.clone()))?;
        Ok(entry.ws.info())
    })
    .await
}

/// `?show=all|review|scratch` (absent: all).
fn parse_show(query: Option<String>) -> Result<wsfs::api::Show, Failure> {
    let Some(value) = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("show="))
    else {
        return Ok(wsfs::api::Show::All);
    };
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|_| {
        Failure::BadRequest(format!(
            "show={value:?}: expected one of all, review, scratch"
        ))
    })
}

async fn status(
    State(s): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let show = match parse_show(query) {
        Ok(v) => v,
        Err(f) => return failure(f),
    };
    blocking(move || Ok(s.registry.get(&name)?.ws.status_shown(show)?)).await
}

async fn diff(
    State(s): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (req, show) = match paths_and_show(&body, query) {
        Ok(v) => v,
        Err(f) => return failure(f),
    };
    blocking(move || Ok(s.registry.get(&name)?.ws.diff_shown(&req.paths, show)?)).await
}

/// The body and `?show=` of the routes that take both (diff, patch).
fn paths_and_show(
    body: &Bytes,
    query: Option<String>,
) -> Result<(PathsRequest, wsfs::api::Show), Failure> {
    Ok((parse(body)?, parse_show(query)?))
}

/// The pending changes as one patch `git apply` accepts (`wsfs diff --git`).
async fn patch(
    State(s): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (req, show) = match paths_and_show(&body, query) {
        Ok(v) => v,
        Err(f) => return failure(f),
    };
    blocking(move || Ok(s.registry.get(&name)?.ws.git_patch(&req.paths, show)?)).await
}

/// The pending changes as one git commit on a branch of the host repository.
async fn export(State(s): State<AppState>, Path(name): Path<String>, body: Bytes) -> Response {
    let req: wsfs::api::ExportRequest = match parse_required(&body) {
        Ok(r) => r,
        Err(f) => return failure(f),
    };
    blocking(move || Ok(s.registry.get(&name)?.ws.export_branch(&req)?)).await
}

async fn discard(State(s): State<AppState>, Path(name): Path<String>, body: Bytes) -> Response {
    let req: PathsRequest = match parse_required(&body) {
        Ok(r) => r,
        Err(f) => return failure(f),
    };
    blocking(move || Ok(s.registry.get(&name)?.ws.discard(&req.paths)?)).await
}

/// Takes a checkpoint (an empty body: no message; it changes nothing in the view).
async fn checkpoint(State(s): State<AppState>, Path(name): Path<String>, body: Bytes) -> Response {
    let req: wsfs::api::CheckpointRequest = match parse(&body) {
        Ok(r) => r,
        Err(f) => return failure(f),
    };
    blocking(move || Ok(s.registry.get(&name)?.ws.checkpoint(&req.message)?)).await
}

async fn checkpoints(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    blocking(move || Ok(s.registry.get(&name)?.ws.checkpoints()?)).await
}

async fn restore(State(s): State<AppState>, Path(name): Path<String>, body: Bytes) -> Response {
    let req: wsfs::api::RestoreRequest = match parse_required(&body) {
        Ok(r) => r,
        Err(f) => return failure(f),
    };
    blocking(move || Ok(s.registry.get(&name)?.ws.restore(&req)?)).await
}

/// What changed between two points (`wsfs diff A..B`).
async fn diff_range(
    State(s): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (req, show) = match parse_required(&body).and_then(|r| Ok((r, parse_show(query)?))) {
        Ok(v) => v,
        Err(f) => return failure(f),
    };
    blocking(move || Ok(s.registry.get(&name)?.ws.diff_range(&req, show)?)).await
}

async fn log(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    blocking(move || Ok(s.registry.get(&name)?.ws.log()?)).await
}

async fn blame(State(s): State<AppState>, Path(name): Path<String>, body: Bytes) -> Response {
    let req: PathsRequest = match parse(&body) {
        Ok(r) => r,
        Err(f) => return failure(f),
    };
    blocking(move || Ok(s.registry.get(&name)?.ws.blame(&req.paths)?)).await
}

/// The commits in the journal (`wsfs log --commits`).
async fn commits(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    blocking(move || Ok(s.registry.get(&name)?.ws.commits()?)).await
}

/// Puts the host back as it was before a commit (`wsfs undo`).
async fn undo(State(s): State<AppState>, Path(name): Path<String>, body: Bytes) -> Response {
    let req: wsfs::api::UndoRequest = match parse_required(&body) {
        Ok(r) => r,
        Err(f) => return failure(f),
    };
    blocking(move || Ok(s.registry.get(&name)?.ws.undo(&req)?)).await
}

/// Drops content-store objects no kept commit or checkpoint references (`wsfs gc`).
async fn gc(State(s): State<AppState>, Path(name): Path<String>, body: Bytes) -> Response {
    let req: wsfs::api::GcRequest = match parse_required(&body) {
        Ok(r) => r,
        Err(f) => return failure(f),
    };
    blocking(move || Ok(s.registry.get(&name)?.ws.gc(&req)?)).await
}

async fn verify(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    blocking(move || Ok(s.registry.get(&name)?.ws.verify()?)).await
}

/// Commits in a blocking task and streams [`CommitEvent`] lines: progress (at most ~10 per
/// second), then the result.
async fn commit(State(s): State<AppState>, Path(name): Path<String>, body: Bytes) -> Response {
    let req: CommitRequest = match parse_required(&body) {
        Ok(r) => r,
        Err(f) => return failure(f),
    };
    let entry = match s.registry.get(&name) {
        Ok(e) => e,
        Err(f) => return failure(f),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<CommitEvent>();
    tokio::task::spawn_blocking(move || {
        let last = std::sync::Mutex::new(Instant::now() - Duration::from_secs(1));
        let progress = |done: u64, total: u64| {
            let mut last = last.lock().unwrap();
            if done == total || last.elapsed() >= Duration::from_millis(100) {
                *last = Instant::now();
                let _ = tx.send(CommitEvent::Progress { done, total });
            }
        };
        let event = match entry.ws.commit(&req, &progress) {
            Ok(report) => CommitEvent::Done { report },
            Err(e) => {
                let message = format!("commit of {name} failed: {e}");
                CommitEvent::Error {
                    error: ApiError {
                        code: status_of(&Failure::from(e)).1.into(),
                        message,
                        commit: None,
                    },
                }
            }
        };
        let _ = tx.send(event);
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|e| api_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsfs::relpath::RelPath;

    fn status(e: wsfs::Error) -> StatusCode {
        status_of(&Failure::from(e)).0
    }

    #[test]
    fn each_kind_of_error_has_its_status() {
        let p = RelPath::new("a/b").unwrap();
        assert_eq!(status(wsfs::Error::not_found(&p)), StatusCode::NOT_FOUND);
        assert_eq!(
            status(wsfs::Error::NoSuchWorkspace {
                name: "w".into(),
                detail: "gone".into()
            }),
            StatusCode::NOT_FOUND
        );
        assert_eq!(status(wsfs::Error::exists(&p)), StatusCode::CONFLICT);
        assert_eq!(
            status(wsfs::Error::HunksRefused("a/b: hunk 1 changed".into())),
            StatusCode::CONFLICT
        );
        assert_eq!(status(wsfs::Error::not_empty(&p)), StatusCode::CONFLICT);
        assert_eq!(
            status(wsfs::Error::WorkspaceExists("w".into())),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(wsfs::Error::WorkspaceBusy {
                dir: "/s/w".into(),
                lock: "/s/w/lock".into()
            }),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(wsfs::Error::invalid_argument(&p)),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(wsfs::Error::InvalidName(b"..".to_vec())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(wsfs::Error::InvalidWorkspaceName("-x".into())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(wsfs::Error::Workspace("bad project".into())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(wsfs::Error::permission_denied(&p)),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(wsfs::Error::UnsafeHostPath { path: p.clone() }),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(wsfs::Error::io(
                "read",
                &p,
                std::io::Error::from_raw_os_error(libc::EIO)
            )),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status(wsfs::Error::Encoding("x".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn the_message_is_the_errors_own_and_names_the_path() {
        let f = Failure::from(wsfs::Error::not_found(&RelPath::new("src/x.c").unwrap()));
        assert_eq!(f.to_string(), "src/x.c: no such file or directory");
        assert_eq!(status_of(&f), (StatusCode::NOT_FOUND, "not_found"));
    }
}
