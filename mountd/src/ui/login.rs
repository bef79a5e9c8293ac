//! `POST /v1/login` and `POST /v1/logout` on the TCP listener: the review UI trades the token
//! for a session cookie (see [`super::session`]). A wrong token counts as a failed attempt
//! against the same per-address limit as a wrong bearer header.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::warn;
use wsfs::api::TokenInfo;

use super::session;
use crate::remote::Auth;
use crate::server::api_error;

/// `POST /v1/login` with `{"token": "…"}`: 204 with the session cookie, or 401 (429 over the
/// failure limit).
pub async fn login(
    State(auth): State<Auth>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ip = peer.ip();
    if auth.failures.locked_out(ip) {
        return crate::remote::rate_limited(ip);
    }
    if !crate::remote::same_origin(&headers) {
        return api_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "log in from the review UI's own page".into(),
        );
    }
    let Ok(req) = serde_json::from_slice::<TokenInfo>(&body) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "expected {\"token\": \"…\"}; see docs/api.md".into(),
        );
    };
    if !auth.tokens.accepts(req.token.trim().as_bytes()) {
        let n = auth.failures.record(ip);
        warn!(peer = %peer, failures = n, "review UI login with a wrong token");
        return api_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong token: `wsfs token show` on the daemon's host prints it".into(),
        );
    }
    match auth.tokens.sessions.open() {
        Ok(id) => (
            StatusCode::NO_CONTENT,
            [(header::SET_COOKIE, session::set_cookie(&id))],
        )
            .into_response(),
        Err(e) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("opening a session: {e}"),
        ),
    }
}

/// `POST /v1/logout`: ends the request's session (if any) and deletes the cookie; 204.
pub async fn logout(State(auth): State<Auth>, headers: HeaderMap) -> Response {
    if let Some(id) = session::from_headers(&headers) {
        auth.tokens.sessions.close(id);
    }
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session::clear_cookie())],
    )
        .into_response()
}
