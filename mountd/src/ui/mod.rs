//! The review UI (issue 18): a browser client of the control API, served by mountd itself.
//!
//! - [`assets`]: the page, its scripts and styles and the vendored xterm.js, embedded in the
//!   binary (`GET /`, `GET /ui/…`; no build step, no CDN);
//! - [`session`], [`login`]: the browser's login over TCP (`POST /v1/login` trades the token
//!   for an `HttpOnly; SameSite=Strict` session cookie, which `EventSource` and WebSocket
//!   send by themselves);
//! - [`terminal`] over [`pty`]: `GET /v1/workspaces/{name}/terminal`, a shell on a
//!   pseudo-terminal bridged to a WebSocket.
//!
//! The static files are public (they hold no data: the page asks for the token); every
//! `/v1` route stays behind the token or a session.

pub mod assets;
pub mod login;
pub mod pty;
pub mod session;
pub mod terminal;

use axum::routing::{get, post};
use axum::Router;

/// The static files (both listeners).
pub fn asset_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(assets::index))
        .route("/ui/{*path}", get(assets::file))
}

/// The TCP listener's routes outside the token check: the static files, login and logout.
pub fn public_routes<S: Clone + Send + Sync + 'static>(auth: crate::remote::Auth) -> Router<S> {
    Router::new()
        .route("/v1/login", post(login::login))
        .route("/v1/logout", post(login::logout))
        .with_state(auth)
        .merge(asset_routes())
}
