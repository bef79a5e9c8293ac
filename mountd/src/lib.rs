//! `mountd`, the wsfs daemon: serves each workspace as a FUSE mount and answers the control API
//! on a Unix socket.
//!
//! - `fuse`: the FUSE adapter (kernel ⇄ overlay);
//! - `events`: the event stream of journal records (`GET /v1/events`, SSE);
//! - `registry`: the workspaces this daemon serves, their mounts, recovery and shutdown;
//! - `server`: the HTTP/JSON control API (axum) with the peer-credential check;
//! - `remote`: the API over TCP for other machines: token, auth check, failure limit;
//! - `ui`: the review UI in the browser: embedded page, login sessions, terminal WebSocket;
//! - `write_through`: the thread that commits write-through changes to the host as they come;
//! - [`daemon`]: start-up (state dir lock, socket), signals and shutdown;
//! - [`memory`]: allocator settings that keep the footprint flat across mounts.
//!
//! Only `daemon`, `memory` and `remote` are public (the binary in `main.rs` calls them); the rest is
//! crate-private, so the compiler reports its dead code.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod daemon;
pub(crate) mod events;
pub(crate) mod fuse;
pub mod memory;
pub(crate) mod registry;
pub mod remote;
pub(crate) mod server;
pub(crate) mod ui;
pub(crate) mod write_through;
