//! The control API over TCP, for clients on other machines (`mountd --listen ADDR[:PORT]`).
//!
//! Every TCP request carries `Authorization: Bearer TOKEN`, or the session cookie the review
//! UI gets from `POST /v1/login` (see the `ui::session` module). The token (256 random bits, hex)
//! lives in `<state>/remote-token` (mode 0600), made on first start; `wsfs token show` reads
//! it and `wsfs token rotate` replaces it, both over the local socket only (the routes are
//! refused over TCP). Tokens are compared in constant time. A peer address with
//! [`MAX_FAILURES`] failed attempts within [`FAILURE_WINDOW`] is refused (429) until the
//! window passes; each failure is logged with the address.
//!
//! There is no TLS yet: listening on anything but loopback logs a warning that says to use a
//! private network (WireGuard, Tailscale) or an SSH tunnel.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use dashmap::DashMap;
use tracing::warn;

/// Port used when `--listen` names an address only.
pub const DEFAULT_PORT: u16 = 7391;
/// The token file's name in the state directory.
pub const TOKEN_FILE: &str = "remote-token";
/// Failed attempts from one address before it is refused for the rest of the window.
pub const MAX_FAILURES: u32 = 10;
/// The window failed attempts are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The daemon's remote API token, kept in a 0600 file.
pub struct Tokens {
    path: PathBuf,
    current: RwLock<String>,
    /// The browser sessions opened with the token; a rotation ends them.
    pub(crate) sessions: crate::ui::session::Sessions,
}

impl Tokens {
    /// Reads the token file in `state_dir`, or makes one.
    pub fn load_or_create(state_dir: &Path) -> std::io::Result<Tokens> {
        let path = state_dir.join(TOKEN_FILE);
        let current = match std::fs::read_to_string(&path) {
            Ok(s) if s.trim().len() >= 32 => s.trim().to_string(),
            Ok(_) | Err(_) => write_new(&path)?,
        };
        Ok(Tokens {
            path,
            current: RwLock::new(current),
            sessions: Default::default(),
        })
    }

    /// The token now.
    pub fn show(&self) -> String {
        self.current.read().unwrap().clone()
    }

    /// Replaces the token (file first, then memory): the old one and every browser session
    /// opened with it stop working at once.
    pub fn rotate(&self) -> std::io::Result<String> {
        let mut current = self.current.write().unwrap();
        *current = write_new(&self.path)?;
        self.sessions.clear();
        Ok(current.clone())
    }

    /// True if `presented` is the token (constant time in the token's content).
    pub fn accepts(&self, presented: &[u8]) -> bool {
        constant_time_eq::constant_time_eq(self.current.read().unwrap().as_bytes(), presented)
    }
}

/// 256 random bits as 64 hex digits.
pub(crate) fn random_hex() -> std::io::Result<String> {
    let mut raw = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut raw)?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh token written to `path` (0600, atomically replacing the old file).
fn write_new(path: &Path) -> std::io::Result<String> {
    let token = random_hex()?;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(token)
}

/// Parses `--listen`: `ADDR:PORT`, `ADDR` (port [`DEFAULT_PORT`]), `[v6]:PORT` or `[v6]`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let host = s.trim_start_matches('[').trim_end_matches(']');
    host.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        .map_err(|_| format!("--listen {s:?}: expected ADDR or ADDR:PORT (for example 127.0.0.1:{DEFAULT_PORT} or 0.0.0.0)"))
}

/// Failed attempts per peer address.
#[derive(Default)]
pub struct Failures(DashMap<IpAddr, (u32, Instant)>);

impl Failures {
    /// True if `ip` is refused for now.
    pub(crate) fn locked_out(&self, ip: IpAddr) -> bool {
        self.0
            .get(&ip)
            .is_some_and(|e| e.0 >= MAX_FAILURES && e.1.elapsed() < FAILURE_WINDOW)
    }

    /// Counts a failure; returns the count in the current window.
    pub(crate) fn record(&self, ip: IpAddr) -> u32 {
        let mut e = self.0.entry(ip).or_insert((0, Instant::now()));
        if e.1.elapsed() >= FAILURE_WINDOW {
            *e = (0, Instant::now());
        }
        e.0 += 1;
        e.0
    }
}

/// What the TCP listener's auth check needs.
#[derive(Clone)]
pub struct Auth {
    /// The token store.
    pub tokens: Arc<Tokens>,
    /// Failed attempts per address.
    pub failures: Arc<Failures>,
}

/// Lets a request through only with the right bearer token or an open session's cookie (then
/// only from the UI's own origin, see `same_origin`).
pub async fn check_token(
    State(auth): State<Auth>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let ip = peer.ip();
    if auth.failures.locked_out(ip) {
        return rate_limited(ip);
    }
    // A session cookie is 256 random bits: nothing to guess, so an unknown one (a restarted
    // daemon, a rotated token) is not counted as a failed attempt.
    let session = crate::ui::session::from_headers(req.headers());
    if let Some(id) = session {
        if auth.tokens.sessions.accepts(id) {
            if !same_origin(req.headers()) {
                return crate::server::api_error(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "a session cookie is accepted only from the review UI's own origin".into(),
                );
            }
            return next.run(req).await;
        }
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    if presented.is_some_and(|t| auth.tokens.accepts(t)) {
        return next.run(req).await;
    }
    let n = if presented.is_none() && session.is_some() {
        0
    } else {
        auth.failures.record(ip)
    };
    warn!(peer = %peer, failures = n, "remote API request without the right token");
    crate::server::api_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong token: send `Authorization: Bearer TOKEN` (the CLI: WSFS_TOKEN; the \
         browser: log in again); `wsfs token show` on the daemon's host prints it"
            .into(),
    )
}

/// The answer to an address over the failure limit.
pub(crate) fn rate_limited(ip: IpAddr) -> Response {
    crate::server::api_error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many failed attempts from {ip}; wait a minute, then use the token `wsfs token show` prints on the daemon's host"),
    )
}

/// False when the request names an `Origin` other than the host it was sent to: a page of
/// another site using the browser's session (cross-site WebSocket or form), on top of what
/// `SameSite=Strict` already stops.
pub(crate) fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).map(|h| h.as_bytes());
    let origin = origin.as_bytes();
    let origin_host = origin
        .strip_prefix(b"http://")
        .or_else(|| origin.strip_prefix(b"https://"));
    origin_host.is_some() && origin_host == host
}

/// Logs what a listener on `addr` exposes.
pub fn warn_if_exposed(addr: SocketAddr) {
    if !addr.ip().is_loopback() {
        warn!(%addr, "serving the control API over plain TCP (no TLS yet) beyond this machine: \
            use it only on a private network (WireGuard, Tailscale) or through an SSH tunnel; \
            every request needs the token, but it travels unencrypted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_take_the_default_port() {
        assert_eq!(parse_listen("127.0.0.1:9000").unwrap().port(), 9000);
        assert_eq!(
            parse_listen("0.0.0.0").unwrap(),
            SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))
        );
        assert_eq!(parse_listen("[::1]").unwrap().port(), DEFAULT_PORT);
        assert_eq!(parse_listen("[::1]:7").unwrap().port(), 7);
        assert!(parse_listen("example.com").is_err());
    }

    #[test]
    fn a_session_is_used_only_from_its_own_origin() {
        use axum::http::{HeaderMap, HeaderValue};
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7391"));
        assert!(
            same_origin(&h),
            "no Origin: not a cross-site browser request"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:7391"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn rotating_the_token_ends_the_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tokens::load_or_create(dir.path()).unwrap();
        let id = t.sessions.open().unwrap();
        assert!(t.sessions.accepts(id.as_bytes()));
        t.rotate().unwrap();
        assert!(!t.sessions.accepts(id.as_bytes()));
    }

    #[test]
    fn tokens_persist_rotate_and_accept_only_the_exact_token() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tokens::load_or_create(dir.path()).unwrap();
        let first = t.show();
        assert_eq!(first.len(), 64);
        assert!(t.accepts(first.as_bytes()));
        assert!(!t.accepts(&first.as_bytes()[..63]));
        assert!(!t.accepts(format!("{first}0").as_bytes()));
        assert!(!t.accepts(b""));
        // The same token after a restart; a new one after a rotation.
        assert_eq!(Tokens::load_or_create(dir.path()).unwrap().show(), first);
        let second = t.rotate().unwrap();
        assert_ne!(second, first);
        assert!(!t.accepts(first.as_bytes()));
        assert_eq!(Tokens::load_or_create(dir.path()).unwrap().show(), second);
    }
}
