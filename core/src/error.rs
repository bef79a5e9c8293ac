//! The library's error type and the one errno table.
//!
//! Every fallible core operation returns [`Error`]. The FUSE adapter turns it into an errno with
//! [`Error::errno`], an exhaustive match: a new variant does not compile until someone decides
//! which errno the container sees.

use std::io;

use crate::relpath::RelPath;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An OS call failed; the raw errno is kept so the container sees exactly what the disk said.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The workspace-relative path involved (may be empty for the root).
        path: RelPath,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A plain POSIX refusal decided by the overlay itself (ENOENT, ENOTEMPTY, EXDEV, ...).
    #[error("{path}: {}", io::Error::from_raw_os_error(*errno))]
    Posix {
        /// The errno to return.
        errno: i32,
        /// The path involved.
        path: RelPath,
    },
    /// A name that cannot be a single path component ("", ".", "..", contains '/' or NUL, too long).
    #[error("invalid file name {0:?}")]
    InvalidName(Vec<u8>),
    /// The journal is damaged somewhere other than its tail; the workspace cannot be trusted.
    #[error("journal {path}: {reason}. Run `wsfs verify` for details; to recover, copy the upper layer out and discard the workspace")]
    JournalCorrupt {
        /// Journal file.
        path: std::path::PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A path in the host project resolved through a symlink or left the project.
    #[error("{path}: a parent directory in the host project is a symlink or not a directory; refusing to write through it")]
    UnsafeHostPath {
        /// The path that was refused.
        path: RelPath,
    },
    /// Workspace-level misuse (unknown workspace, bad state dir, ...), with advice.
    #[error("{0}")]
    Workspace(String),
    /// Serialization of state or journal payloads failed.
    #[error("encoding: {0}")]
    Encoding(String),
}

impl Error {
    /// Wraps an `io::Error` with the operation and path it came from.
    pub fn io(op: &'static str, path: &RelPath, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.clone(),
            source,
        }
    }

    /// A POSIX refusal for `path`.
    pub fn posix(errno: i32, path: &RelPath) -> Self {
        Error::Posix {
            errno,
            path: path.clone(),
        }
    }

    /// The errno the FUSE layer replies with. Exhaustive on purpose.
    pub fn errno(&self) -> i32 {
        match self {
            // Keep the kernel's own answer; EIO only when the error carries no errno.
            Error::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            Error::Posix { errno, .. } => *errno,
            Error::InvalidName(name) if name.len() > 255 => libc::ENAMETOOLONG,
            Error::InvalidName(_) => libc::EINVAL,
            // A symlink where a directory should be: the path cannot be walked safely.
            Error::UnsafeHostPath { .. } => libc::ELOOP,
            Error::JournalCorrupt { .. } | Error::Workspace(_) | Error::Encoding(_) => libc::EIO,
        }
    }

    /// True if this is the given errno (handy in tests and callers).
    pub fn is_errno(&self, errno: i32) -> bool {
        self.errno() == errno
    }
}

/// Adds the `op`/`path` context to an `io::Result`.
pub trait IoContext<T> {
    /// Maps the error into [`Error::Io`].
    fn ctx(self, op: &'static str, path: &RelPath) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &RelPath) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}
