//! Test support, for the core's own tests and for mountd's FUSE tests (cargo feature `testing`,
//! never enabled in the shipped binaries): [`TestWorkspace`], a host project with files, a state
//! directory and an open workspace on them; helpers that drive the inode-based overlay API by
//! path, the way the kernel would ([`paths`]); and [`tree`], a listing of a real directory.
//!
//! The process-level harness (a real mountd and the CLI) is `tests/live` in the `wsfs` crate.

mod fixture;
mod host_tree;
pub mod paths;

pub use fixture::TestWorkspace;
pub use host_tree::tree;
pub use paths::*;
