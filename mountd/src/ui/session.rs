//! Browser sessions for the review UI over TCP.
//!
//! A browser cannot put the bearer token on an `EventSource` or a WebSocket, so the page trades
//! the token once (`POST /v1/login`) for a session: 256 random bits in an `HttpOnly;
//! SameSite=Strict` cookie ([`COOKIE`]) that the TCP auth check accepts besides the bearer
//! header. Sessions live in memory only: a daemon restart, a token rotation or
//! `POST /v1/logout` ends them, and each expires after [`SESSION_TTL`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "wsfs_session";
/// How long a session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; logging in beyond this ends the oldest.
pub const MAX_SESSIONS: usize = 64;

/// The open sessions (their ids, hex, with their start).
#[derive(Default)]
pub struct Sessions(Mutex<Vec<(String, Instant)>>);

impl Sessions {
    /// Opens a session; returns its id (64 hex digits).
    pub fn open(&self) -> std::io::Result<String> {
        let id = crate::remote::random_hex()?;
        let mut all = self.0.lock().unwrap();
        all.retain(|(_, t)| t.elapsed() < SESSION_TTL);
        if all.len() >= MAX_SESSIONS {
            all.remove(0);
        }
        all.push((id.clone(), Instant::now()));
        Ok(id)
    }

    /// True if `id` is an open, unexpired session. Every session is compared in constant time.
    pub fn accepts(&self, id: &[u8]) -> bool {
        let all = self.0.lock().unwrap();
        all.iter().fold(false, |found, (s, t)| {
            (constant_time_eq::constant_time_eq(s.as_bytes(), id) & (t.elapsed() < SESSION_TTL))
                | found
        })
    }

    /// Ends session `id` (logout).
    pub fn close(&self, id: &[u8]) {
        self.0.lock().unwrap().retain(|(s, _)| s.as_bytes() != id);
    }

    /// Ends every session (the token was rotated).
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// The session id a request's `Cookie` headers carry, if any.
pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<&[u8]> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .map(|c| c.trim_ascii())
        .find_map(|c| c.strip_prefix(COOKIE.as_bytes())?.strip_prefix(b"="))
}

/// The `Set-Cookie` value that stores session `id` in the browser.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_TTL.as_secs()
    )
}

/// The `Set-Cookie` value that deletes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, HeaderMap, HeaderValue};

    #[test]
    fn sessions_open_close_and_clear() {
        let s = Sessions::default();
        let a = s.open().unwrap();
        let b = s.open().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(s.accepts(a.as_bytes()) && s.accepts(b.as_bytes()));
        assert!(!s.accepts(&a.as_bytes()[..63]));
        assert!(!s.accepts(b""));
        s.close(a.as_bytes());
        assert!(!s.accepts(a.as_bytes()) && s.accepts(b.as_bytes()));
        s.clear();
        assert!(!s.accepts(b.as_bytes()));
    }

    #[test]
    fn the_oldest_session_makes_room() {
        let s = Sessions::default();
        let first = s.open().unwrap();
        for _ in 1..MAX_SESSIONS {
            s.open().unwrap();
        }
        assert!(s.accepts(first.as_bytes()));
        s.open().unwrap();
        assert!(!s.accepts(first.as_bytes()));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        assert_eq!(from_headers(&h), None);
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; wsfs_sessionx=2"),
        );
        assert_eq!(from_headers(&h), None);
        h.append(
            header::COOKIE,
            HeaderValue::from_static("b=3;  wsfs_session=abc ; c=4"),
        );
        assert_eq!(from_headers(&h), Some(&b"abc"[..]));
        assert!(set_cookie("abc").contains("HttpOnly; SameSite=Strict"));
    }
}
