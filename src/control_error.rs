//! The control plane's error type: configuration, containers and workspace selection.
//!
//! These errors never reach FUSE, so they carry no errno; a failure of the core passes through
//! unchanged as [`Error::Core`].

/// Result alias used by the controller and the configuration.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A core operation failed (state directory, workspace name, path-safety walk, ...).
    #[error(transparent)]
    Core(#[from] wsfs_core::Error),
    /// Workspace-level misuse (unknown workspace, bad project directory, ...), with advice.
    #[error("{0}")]
    Workspace(String),
    /// A configuration file or flag is invalid (the message names the file, line and key).
    #[error("{0}")]
    Config(String),
    /// The container runtime refused or failed (Docker unreachable, image or user missing, ...),
    /// with advice on what to do.
    #[error("{0}")]
    Container(String),
}
