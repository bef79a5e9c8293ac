//! wsfs core (`wsfs-core`): copy-on-write workspaces over a host project.
//!
//! A *workspace* is a host project directory (the read-only lower layer) plus a state directory
//! holding the upper layer, the hashed change journal and metadata. The core serves a merged
//! view with a FUSE-shaped API ([`overlay::Overlay`]), records every change in the journal
//! ([`journal`]), and applies or drops changes on request (the crate-private commit engine in
//! `commit/`, reached through [`workspace::Workspace::commit`] and
//! [`workspace::Workspace::discard`]). It knows nothing about FUSE or Docker and runs no async
//! runtime: `mountd` adapts it to the kernel and serves the
//! control API ([`api`] holds its types); the `wsfs` crate holds the CLI, the API client and the
//! container controller.
//!
//! See `docs/architecture.md` for the layers, the on-disk layout and the journal format.

#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod api;
pub(crate) mod bytes_serde;
pub mod checkpoint;
pub(crate) mod commit;
pub(crate) mod copy;
pub(crate) mod diff;
pub mod error;
pub mod fault;
pub(crate) mod gitexport;
pub(crate) mod gitpatch;
pub mod hash;
pub mod journal;
pub mod overlay;
pub mod policy;
pub mod relpath;
pub mod state;
pub mod store;
pub mod sys;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub(crate) mod tree;
pub mod undo;
pub mod workspace;

pub use error::{Error, Result};
pub use relpath::RelPath;
