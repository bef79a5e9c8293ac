//! What one journal record says. The on-disk encoding lives in [`super::codec`].
//!
//! A record describes one change the container made (or one step of a commit/discard):
//! the operation, the path(s) as bytes, the *base* state of the path (the lower layer's state,
//! captured the first time the overlay touched it since the last commit/discard of that path),
//! the *new* state after the operation, and the hash of the previous record.

use serde::{Deserialize, Serialize};

use crate::hash::ContentHash;
use crate::relpath::RelPath;

/// The state of one path in a layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryState {
    /// Nothing at this path.
    Absent,
    /// A regular file. `hash` is `None` while the content is not hashed yet (open for writing).
    File {
        /// blake3 of the content.
        hash: Option<ContentHash>,
        /// Permission bits (`st_mode & 0o7777`).
        mode: u32,
        /// Size in bytes.
        size: u64,
    },
    /// A directory.
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Link target, as bytes.
        #[serde(with = "crate::bytes_serde::vec")]
        target: Vec<u8>,
    },
    /// A FIFO, socket, or character or block device (`mode` includes the type bits). Device
    /// nodes exist only in the overlay: commit refuses them ([`EntryState::is_device`]).
    Special {
        /// Full `st_mode`.
        mode: u32,
        /// Device number (`st_rdev`) of a device node; 0, and left out of the record, for
        /// FIFOs and sockets (records written before it existed read as 0).
        #[serde(default, skip_serializing_if = "is_zero")]
        rdev: u64,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl EntryState {
    /// True for [`EntryState::Absent`].
    pub fn is_absent(&self) -> bool {
        matches!(self, EntryState::Absent)
    }

    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self, EntryState::Dir { .. })
    }

    /// True for a character or block device node: it may exist in the overlay, but a commit
    /// never creates one on the host.
    pub fn is_device(&self) -> bool {
        matches!(self, EntryState::Special { mode, .. }
            if matches!(mode & libc::S_IFMT, libc::S_IFCHR | libc::S_IFBLK))
    }

    /// `char device 1:3` / `block device 8:0` for a device node, `None` for anything else.
    pub fn device_label(&self) -> Option<String> {
        let EntryState::Special { mode, rdev } = self else {
            return None;
        };
        let what = match mode & libc::S_IFMT {
            libc::S_IFCHR => "char device",
            libc::S_IFBLK => "block device",
            _ => return None,
        };
        Some(format!(
            "{what} {}:{}",
            libc::major(*rdev as libc::dev_t),
            libc::minor(*rdev as libc::dev_t)
        ))
    }

    /// Short type word for humans ("file", "dir", ...).
    pub fn kind_word(&self) -> &'static str {
        match self {
            EntryState::Absent => "absent",
            EntryState::File { .. } => "file",
            EntryState::Dir { .. } => "dir",
            EntryState::Symlink { .. } => "symlink",
            EntryState::Special { .. } => "special",
        }
    }

    /// True when both states describe the same content (for files: hash and mode).
    pub fn same_state(&self, other: &EntryState) -> bool {
        match (self, other) {
            (
                EntryState::File {
                    hash: ha,
                    mode: ma,
                    size: sa,
                },
                EntryState::File {
                    hash: hb,
                    mode: mb,
                    size: sb,
                },
            ) => ma == mb && sa == sb && ha.is_some() && ha == hb,
            _ => self == other,
        }
    }

    /// True when `self` is a file state whose hash was never settled (copied up for a
    /// `chmod`, `utime` or link, never written) and `committed` is the same file with its
    /// hash: a commit that verified the upper content against that hash settles the record.
    pub fn settled_by(&self, committed: &EntryState) -> bool {
        match (self, committed) {
            (
                EntryState::File {
                    hash: None,
                    mode: ma,
                    size: sa,
                },
                EntryState::File {
                    hash: Some(_),
                    mode: mb,
                    size: sb,
                },
            ) => ma == mb && sa == sb,
            _ => false,
        }
    }

    /// Same content ignoring mode (conflict checks compare content only).
    pub fn same_content(&self, other: &EntryState) -> bool {
        match (self, other) {
            (
                EntryState::File {
                    hash: ha, size: sa, ..
                },
                EntryState::File {
                    hash: hb, size: sb, ..
                },
            ) => sa == sb && ha.is_some() && ha == hb,
            (EntryState::Dir { .. }, EntryState::Dir { .. }) => true,
            (
                EntryState::Special { mode: ma, rdev: ra },
                EntryState::Special { mode: mb, rdev: rb },
            ) => ma & libc::S_IFMT == mb & libc::S_IFMT && ra == rb,
            _ => self == other,
        }
    }
}

/// The operation a record describes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A regular file was created (empty).
    Create,
    /// A file's content was finalised (closed after writing, or fsynced); `new` has its hash.
    Write,
    /// A directory was created.
    Mkdir,
    /// A non-directory was removed.
    Unlink,
    /// A directory was removed.
    Rmdir,
    /// A symlink was created.
    Symlink,
    /// A FIFO, socket or device node was created.
    Mknod,
    /// `path` was renamed to `to.path`.
    Rename,
    /// `path` and `to.path` were swapped (RENAME_EXCHANGE).
    Exchange,
    /// A hard link `to.path` was made to `path`.
    Link,
    /// Mode, ownership, size or times changed.
    Setattr,
    /// A user xattr was set or removed.
    Xattr,
    /// A commit started; it will apply exactly `paths`.
    CommitBegin {
        /// Commit id (also the backups/ folder name).
        id: String,
        /// Paths the commit applies, in order.
        paths: Vec<RelPath>,
        /// The host's state of each of `paths` before the commit (same order), its files'
        /// content kept in the content store: what `wsfs undo` puts back. Empty in journals
        /// of older versions and in write-through flushes (such commits cannot be undone).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        prior: Vec<EntryState>,
    },
    /// One path of commit `id` has been applied to the host.
    CommitApplied {
        /// Commit id.
        id: String,
    },
    /// Commit `id` finished; its paths left the overlay.
    CommitEnd {
        /// Commit id.
        id: String,
    },
    /// `wsfs undo` of commit `commit` started; it puts `paths` back as they were before it.
    UndoBegin {
        /// Undo id (also the backups/ folder name of a forced undo).
        id: String,
        /// The commit being undone.
        commit: String,
        /// Paths it puts back, in order.
        paths: Vec<RelPath>,
    },
    /// One path of undo `id` is back in the overlay: `new` is the workspace's version (the
    /// committed one, or a later change), `base` the host state the undo restores.
    UndoApplied {
        /// Undo id.
        id: String,
    },
    /// Undo `id` finished: every path of it holds its old state on the host.
    UndoEnd {
        /// Undo id.
        id: String,
    },
    /// `wsfs gc` dropped the stored versions of every commit but the last `keep` that can be
    /// undone (and those checkpoints name); older commits can no longer be undone.
    Gc {
        /// Commits kept.
        keep: u64,
    },
    /// Overlay changes under `paths` were dropped (empty = everything).
    Discard {
        /// Dropped paths.
        paths: Vec<RelPath>,
    },
    /// A checkpoint: the exact state of every changed path at this point of the journal
    /// (every file's content is in the content store). Changes nothing.
    Checkpoint {
        /// Checkpoint id (`c1`, `c2`, ...).
        id: String,
        /// The user's message (may be empty).
        #[serde(default)]
        message: String,
        /// One entry per path in the change set, sorted by path.
        entries: Vec<CheckpointEntry>,
    },
}

/// One changed path as a checkpoint saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointEntry {
    /// The path.
    pub path: RelPath,
    /// The host's state when the workspace first touched it.
    pub base: EntryState,
    /// Its state in the workspace (a file always with its hash: the content is in the store).
    pub state: EntryState,
    /// A directory that hides the host directory at the same path.
    #[serde(default, skip_serializing_if = "is_false")]
    pub opaque: bool,
    /// Owner and group of the upper entry (absent for a whiteout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<(u32, u32)>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The second path of a rename, exchange or link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Destination path.
    pub path: RelPath,
    /// Base state of the destination, when this is its first touch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<EntryState>,
    /// State of the destination after the operation.
    pub new: EntryState,
}

/// A record before the journal assigns its sequence number, time and chain hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// The operation.
    #[serde(flatten)]
    pub op: Op,
    /// Main path (the source for rename/link).
    pub path: RelPath,
    /// Base state of `path`, present when this is the first touch since its last commit/discard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<EntryState>,
    /// State of `path` after the operation.
    pub new: EntryState,
    /// Destination for rename/exchange/link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Target>,
    /// The process whose request through the mount made the change. Absent for records no
    /// process made: commit and discard bookkeeping, API actions, recovery, and every record
    /// written before attribution existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Writer>,
}

/// Who made a change: the process behind the FUSE request (see `overlay::caller`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    /// Process id (the thread group id of the calling thread), in mountd's pid namespace.
    pub pid: u32,
    /// The calling thread's name (`/proc/PID/comm`: the executable's name, at most 15
    /// bytes, unless the program renamed itself); lossy UTF-8.
    pub comm: String,
    /// Full id of the Docker container the process runs in, from its cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl Draft {
    /// A draft for a single-path operation.
    pub fn new(op: Op, path: RelPath, base: Option<EntryState>, new: EntryState) -> Self {
        Draft {
            op,
            path,
            base,
            new,
            to: None,
            by: None,
        }
    }

    /// A control record (commit/discard bookkeeping) with no path state.
    pub fn control(op: Op) -> Self {
        Draft::new(op, RelPath::root(), None, EntryState::Absent)
    }
}

/// One appended record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// 1-based, strictly increasing.
    pub seq: u64,
    /// Wall-clock time of the append, nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// blake3 of the previous record's encoded payload (all zeros for the first record).
    pub prev: ContentHash,
    /// The change itself.
    #[serde(flatten)]
    pub draft: Draft,
}
