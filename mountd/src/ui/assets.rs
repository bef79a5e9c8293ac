//! The review UI's files (`mountd/assets/`), embedded in the binary at build time.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file.
struct Asset {
    /// Its path below `/ui/`.
    path: &'static str,
    /// Its `Content-Type`.
    mime: &'static str,
    /// Its bytes.
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $mime:expr) => {
        Asset {
            path: $path,
            mime: $mime,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", CSS),
    asset!("js/app.js", JS),
    asset!("js/api.js", JS),
    asset!("js/live.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/workspaces.js", JS),
    asset!("js/changes.js", JS),
    asset!("js/tree.js", JS),
    asset!("js/diff.js", JS),
    asset!("js/log.js", JS),
    asset!("js/terminal.js", JS),
    asset!("vendor/xterm/xterm.mjs", JS),
    asset!("vendor/xterm/addon-fit.mjs", JS),
    asset!("vendor/xterm/xterm.css", CSS),
    asset!("vendor/xterm/LICENSE-xterm", "text/plain; charset=utf-8"),
    asset!(
        "vendor/xterm/LICENSE-addon-fit",
        "text/plain; charset=utf-8"
    ),
];

/// What the page may load and talk to: only this origin (xterm.js sets inline styles).
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn serve(a: &Asset) -> Response {
    (
        [
            (header::CONTENT_TYPE, a.mime),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        a.body,
    )
        .into_response()
}

/// `GET /`: the page.
pub async fn index() -> Response {
    serve(&ASSETS[0])
}

/// `GET /ui/{path}`: one of the page's files.
pub async fn file(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.path == path) {
        Some(a) => serve(a),
        None => (StatusCode::NOT_FOUND, "no such file in the review UI").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_imports_is_embedded() {
        // Every `./x.js` import and `/ui/…` reference in the embedded files names an asset.
        for a in ASSETS.iter().filter(|a| !a.path.starts_with("vendor/")) {
            let text = std::str::from_utf8(a.body).unwrap();
            let dir = a.path.rsplit_once('/').map_or("", |(d, _)| d);
            for (i, _) in text.match_indices("from \"./") {
                let rest = &text[i + 6..];
                let name = &rest[2..rest.find('"').unwrap()];
                let full = format!("{dir}/{name}");
                assert!(ASSETS.iter().any(|b| b.path == full), "{}: {full}", a.path);
            }
            for (i, _) in text.match_indices("/ui/") {
                let rest = &text[i + 4..];
                let end = rest.find(['"', '\'', ')']).unwrap();
                let name = &rest[..end];
                assert!(ASSETS.iter().any(|b| b.path == name), "{}: {name}", a.path);
            }
        }
    }
}
