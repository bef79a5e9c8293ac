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
///
/// The overlay's own refusals are named variants, one per kind; [`Error::errno`] is the one
/// table that maps each to the errno the container sees. Their messages name the path.
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
    /// The entry does not exist (`ENOENT`).
    #[error("{0}: no such file or directory")]
    NotFound(RelPath),
    /// No node has this inode number (forgotten, or never handed out) (`ENOENT`).
    #[error("inode {0}: unknown to the overlay")]
    UnknownInode(u64),
    /// A path component, or the object of a directory operation, is not a directory (`ENOTDIR`).
    #[error("{0}: not a directory")]
    NotADirectory(RelPath),
    /// A file operation on a directory (`EISDIR`).
    #[error("{0}: is a directory")]
    IsADirectory(RelPath),
    /// The directory is not empty (`ENOTEMPTY`).
    #[error("{0}: directory not empty")]
    NotEmpty(RelPath),
    /// The name is taken (`EEXIST`).
    #[error("{0}: file exists")]
    Exists(RelPath),
    /// The node was reverted (discarded) under an open handle (`ESTALE`).
    #[error("{0}: stale: the entry was discarded while in use")]
    Stale(RelPath),
    /// No open file or directory has this handle (`EBADF`).
    #[error("handle {0}: not open")]
    UnknownHandle(u64),
    /// The handle is not open for this operation (writing through a read-only handle) (`EBADF`).
    #[error("{0}: bad file handle for this operation (not open for writing)")]
    BadHandle(RelPath),
    /// The operation would move content across what the overlay can record (`EXDEV`).
    #[error("{0}: cross-device operation refused")]
    CrossDevice(RelPath),
    /// Access refused by permissions (`EACCES`).
    #[error("{0}: permission denied")]
    PermissionDenied(RelPath),
    /// The operation is not permitted on this kind of entry (`EPERM`).
    #[error("{0}: operation not permitted")]
    NotPermitted(RelPath),
    /// An argument is invalid for this entry (`EINVAL`).
    #[error("{0}: invalid argument")]
    InvalidArgument(RelPath),
    /// The operation is not supported here (`EOPNOTSUPP`).
    #[error("{0}: operation not supported")]
    Unsupported(RelPath),
    /// The upper layer lacks a directory the overlay's own bookkeeping says it has (`EIO`).
    #[error("{0}: the upper layer lacks this entry's directory (internal inconsistency)")]
    UpperMissing(RelPath),
    /// The entry has no parent directory (the root) where the operation needs one (`EIO`).
    #[error("{0}: has no parent directory (internal inconsistency)")]
    NoParent(RelPath),
    /// Any other errno, passed through as given (journal space reservation, ...).
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
    /// No workspace of this name in the state directory.
    #[error("no workspace {name:?} ({detail}); see `wsfs list`")]
    NoSuchWorkspace {
        /// The name asked for.
        name: String,
        /// What the state directory said.
        detail: String,
    },
    /// A workspace of this name already exists.
    #[error("workspace {0:?} already exists; open it, or pick another --name")]
    WorkspaceExists(String),
    /// The name cannot be a workspace name.
    #[error("invalid workspace name {0:?}: use 1-64 letters, digits, '.', '_' or '-', not starting with '.' or '-'")]
    InvalidWorkspaceName(String),
    /// Another process holds the workspace's lock.
    #[error("workspace {dir} is in use by another process (lock {lock}); stop the other mountd first", dir = .dir.display(), lock = .lock.display())]
    WorkspaceBusy {
        /// The workspace directory.
        dir: std::path::PathBuf,
        /// Its lock file.
        lock: std::path::PathBuf,
    },
    /// Other workspace-level misuse (bad project or state directory, invalid policy pattern,
    /// corrupt metadata, ...), with advice.
    #[error("{0}")]
    Workspace(String),
    /// Serialization of state or journal payloads failed.
    #[error("encoding: {0}")]
    Encoding(String),
    /// `export --branch` refused, with what to do: the project is not a git repository, the
    /// branch exists or is checked out, the host's files differ from HEAD, ...
    #[error("{0}")]
    GitRefused(String),
    /// A git command failed; the message carries its stderr.
    #[error("{0}")]
    GitFailed(String),
    /// `wsfs undo` named a commit the journal does not have.
    #[error("no commit {0:?} in this workspace's journal; `wsfs log --commits` lists them")]
    NoSuchCommit(String),
    /// `wsfs undo` refused: the commit cannot be undone (already undone, kept no versions,
    /// its versions collected); the message says which and what to do.
    #[error("{0}")]
    UndoRefused(String),
    /// No checkpoint of that id.
    #[error("no checkpoint {0:?} in this workspace; `wsfs checkpoints` lists them")]
    NoSuchCheckpoint(String),
    /// The content store failed (see [`crate::store`]).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A commit's hunk selection no longer matches the file's diff (it changed since it was
    /// shown), or names a path whose hunks cannot be chosen; the message names the path.
    #[error("{0}")]
    HunksRefused(String),
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

    /// Passes `errno` through for `path`. For the overlay's own refusals use the named
    /// constructors ([`Error::not_found`], ...); this is for errnos decided elsewhere.
    pub fn posix(errno: i32, path: &RelPath) -> Self {
        Error::Posix {
            errno,
            path: path.clone(),
        }
    }

    /// [`Error::NotFound`] for `path`.
    pub fn not_found(path: &RelPath) -> Self {
        Error::NotFound(path.clone())
    }

    /// [`Error::NotADirectory`] for `path`.
    pub fn not_a_directory(path: &RelPath) -> Self {
        Error::NotADirectory(path.clone())
    }

    /// [`Error::IsADirectory`] for `path`.
    pub fn is_a_directory(path: &RelPath) -> Self {
        Error::IsADirectory(path.clone())
    }

    /// [`Error::NotEmpty`] for `path`.
    pub fn not_empty(path: &RelPath) -> Self {
        Error::NotEmpty(path.clone())
    }

    /// [`Error::Exists`] for `path`.
    pub fn exists(path: &RelPath) -> Self {
        Error::Exists(path.clone())
    }

    /// [`Error::Stale`] for `path`.
    pub fn stale(path: &RelPath) -> Self {
        Error::Stale(path.clone())
    }

    /// [`Error::BadHandle`] for `path`.
    pub fn bad_handle(path: &RelPath) -> Self {
        Error::BadHandle(path.clone())
    }

    /// [`Error::CrossDevice`] for `path`.
    pub fn cross_device(path: &RelPath) -> Self {
        Error::CrossDevice(path.clone())
    }

    /// [`Error::PermissionDenied`] for `path`.
    pub fn permission_denied(path: &RelPath) -> Self {
        Error::PermissionDenied(path.clone())
    }

    /// [`Error::NotPermitted`] for `path`.
    pub fn not_permitted(path: &RelPath) -> Self {
        Error::NotPermitted(path.clone())
    }

    /// [`Error::InvalidArgument`] for `path`.
    pub fn invalid_argument(path: &RelPath) -> Self {
        Error::InvalidArgument(path.clone())
    }

    /// [`Error::Unsupported`] for `path`.
    pub fn unsupported(path: &RelPath) -> Self {
        Error::Unsupported(path.clone())
    }

    /// [`Error::UpperMissing`] for `path`.
    pub fn upper_missing(path: &RelPath) -> Self {
        Error::UpperMissing(path.clone())
    }

    /// [`Error::NoParent`] for `path`.
    pub fn no_parent(path: &RelPath) -> Self {
        Error::NoParent(path.clone())
    }

    /// The errno the FUSE layer replies with: the one table. Exhaustive on purpose: a new
    /// variant does not compile until someone decides which errno the container sees.
    pub fn errno(&self) -> i32 {
        match self {
            // Keep the kernel's own answer; EIO only when the error carries no errno.
            Error::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            Error::NotFound(_) | Error::UnknownInode(_) => libc::ENOENT,
            Error::NotADirectory(_) => libc::ENOTDIR,
            Error::IsADirectory(_) => libc::EISDIR,
            Error::NotEmpty(_) => libc::ENOTEMPTY,
            Error::Exists(_) => libc::EEXIST,
            Error::Stale(_) => libc::ESTALE,
            Error::UnknownHandle(_) | Error::BadHandle(_) => libc::EBADF,
            Error::CrossDevice(_) => libc::EXDEV,
            Error::PermissionDenied(_) => libc::EACCES,
            Error::NotPermitted(_) => libc::EPERM,
            Error::InvalidArgument(_) => libc::EINVAL,
            Error::Unsupported(_) => libc::EOPNOTSUPP,
            Error::UpperMissing(_) | Error::NoParent(_) => libc::EIO,
            Error::Posix { errno, .. } => *errno,
            Error::InvalidName(name) if name.len() > 255 => libc::ENAMETOOLONG,
            Error::InvalidName(_) => libc::EINVAL,
            // A symlink where a directory should be: the path cannot be walked safely.
            Error::UnsafeHostPath { .. } => libc::ELOOP,
            // Workspace-level errors never reach FUSE; EIO as for any error without an errno.
            Error::NoSuchWorkspace { .. }
            | Error::WorkspaceExists(_)
            | Error::InvalidWorkspaceName(_)
            | Error::WorkspaceBusy { .. }
            | Error::Workspace(_)
            | Error::JournalCorrupt { .. }
            | Error::Encoding(_)
            | Error::GitRefused(_)
            | Error::HunksRefused(_)
            | Error::GitFailed(_)
            | Error::NoSuchCommit(_)
            | Error::UndoRefused(_)
            | Error::NoSuchCheckpoint(_)
            | Error::Store(_) => libc::EIO,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The named refusals answer exactly the errnos their `Error::posix` calls did, and their
    /// messages name the path.
    #[test]
    fn each_named_error_has_its_errno_and_names_its_path() {
        let p = RelPath::new("src/x.c").unwrap();
        let table = [
            (Error::not_found(&p), libc::ENOENT),
            (Error::UnknownInode(7), libc::ENOENT),
            (Error::not_a_directory(&p), libc::ENOTDIR),
            (Error::is_a_directory(&p), libc::EISDIR),
            (Error::not_empty(&p), libc::ENOTEMPTY),
            (Error::exists(&p), libc::EEXIST),
            (Error::stale(&p), libc::ESTALE),
            (Error::UnknownHandle(3), libc::EBADF),
            (Error::bad_handle(&p), libc::EBADF),
            (Error::cross_device(&p), libc::EXDEV),
            (Error::permission_denied(&p), libc::EACCES),
            (Error::not_permitted(&p), libc::EPERM),
            (Error::invalid_argument(&p), libc::EINVAL),
            (Error::unsupported(&p), libc::EOPNOTSUPP),
            (Error::upper_missing(&p), libc::EIO),
            (Error::no_parent(&p), libc::EIO),
            (Error::posix(libc::ENOSPC, &p), libc::ENOSPC),
        ];
        for (e, errno) in table {
            assert_eq!(e.errno(), errno, "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains("src/x.c")
                    || msg.starts_with("inode 7")
                    || msg.starts_with("handle 3"),
                "{msg}"
            );
        }
        assert_eq!(
            Error::not_found(&p).to_string(),
            "src/x.c: no such file or directory"
        );
    }

    #[test]
    fn workspace_errors_keep_eio_and_their_messages() {
        let table = [
            Error::NoSuchWorkspace {
                name: "w".into(),
                detail: "meta.json: gone".into(),
            },
            Error::WorkspaceExists("w".into()),
            Error::InvalidWorkspaceName("-w".into()),
            Error::WorkspaceBusy {
                dir: "/s/w".into(),
                lock: "/s/w/lock".into(),
            },
            Error::Workspace("x".into()),
        ];
        for e in &table {
            assert_eq!(e.errno(), libc::EIO, "{e}");
        }
        assert_eq!(
            table[0].to_string(),
            "no workspace \"w\" (meta.json: gone); see `wsfs list`"
        );
        assert_eq!(
            table[1].to_string(),
            "workspace \"w\" already exists; open it, or pick another --name"
        );
        assert_eq!(
            table[3].to_string(),
            "workspace /s/w is in use by another process (lock /s/w/lock); stop the other mountd first"
        );
    }
}
