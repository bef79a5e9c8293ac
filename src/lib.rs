//! wsfs, the control plane: the API client, the container controller and its configuration.
//!
//! The workspace itself (overlay, journal, commit, policy, the path-safety syscalls, the API
//! types) lives in the `wsfs-core` crate (`core/`); the modules this crate, its binary, tests
//! and examples use are re-exported here under their usual names (`wsfs::overlay`,
//! `wsfs::api`, ...). `mountd` (the daemon) depends
//! on the core only; this crate adds what talks to the daemon ([`client`]) and to Docker
//! ([`controller`], configured by [`config`]), and the `wsfs` command line in `src/bin/wsfs`.
//!
//! See `docs/architecture.md` for the crates and how they depend on each other.

#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod client;
pub mod config;
mod control_error;
pub mod controller;

pub use control_error::{Error, Result};
pub use wsfs_core::{api, journal, overlay, policy, relpath, state, sys, workspace, RelPath};
