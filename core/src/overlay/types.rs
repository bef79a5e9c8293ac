//! FUSE-shaped types of the overlay API, free of any FUSE crate.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::SystemTime;

/// Inode number as the kernel sees it (the FUSE node id). 1 is the root.
pub type Ino = u64;
/// An open file or directory handle.
pub type Fh = u64;
/// The root's inode number.
pub const ROOT_INO: Ino = 1;

/// The kinds of entry the overlay serves. Device nodes are refused at creation (EPERM).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Character device (the mount is `nodev`; commit refuses one made in the overlay).
    CharDevice,
    /// Block device (the mount is `nodev`; commit refuses one made in the overlay).
    BlockDevice,
}

impl Kind {
    /// From `st_mode`.
    pub fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::CharDevice,
            libc::S_IFBLK => Kind::BlockDevice,
            _ => Kind::File,
        }
    }
}

/// Attributes of one entry (what `stat` shows in the workspace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Inode number (equals the node id).
    pub ino: Ino,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Last access.
    pub atime: SystemTime,
    /// Last modification.
    pub mtime: SystemTime,
    /// Last status change.
    pub ctime: SystemTime,
    /// Kind.
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub perm: u16,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number (special files).
    pub rdev: u32,
    /// Preferred I/O size.
    pub blksize: u32,
}

/// Who is asking (from the FUSE request header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Req {
    /// Caller's fsuid.
    pub uid: u32,
    /// Caller's fsgid.
    pub gid: u32,
    /// Caller's pid.
    pub pid: u32,
}

impl Req {
    /// The daemon itself (used by tests and internal callers).
    pub fn root() -> Req {
        Req {
            uid: 0,
            gid: 0,
            pid: 0,
        }
    }
}

/// A time to set with `setattr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetTime {
    /// Now.
    Now,
    /// A specific time.
    At(SystemTime),
}

/// Fields to change in `setattr`; `None` leaves a field alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate/extend).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
    /// Handle the change came through, if any.
    pub fh: Option<Fh>,
}

/// One entry of a merged directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode number to report (for `readdirplus`, the looked-up node id).
    pub ino: Ino,
    /// Offset of the *next* entry: derived from this entry's name, so the same in every
    /// listing of the directory.
    pub next_offset: u64,
    /// Kind.
    pub kind: Kind,
    /// Name (bytes).
    pub name: OsString,
}

/// Which layer an open file handle reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// The host project (read-only opens of untouched files).
    Lower,
    /// The workspace's upper layer.
    Upper,
}

/// Result of `open`/`create`.
#[derive(Clone, Debug)]
pub struct Opened {
    /// The handle.
    pub fh: Fh,
    /// Layer of the backing file.
    pub layer: Layer,
    /// The backing file (for FUSE passthrough of upper files). Keep it alive while registered.
    pub backing: Arc<OwnedFd>,
    /// The content did not change since the last open: the kernel may keep its page cache.
    pub keep_cache: bool,
}

/// Filesystem statistics (of the upper layer's filesystem).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Available blocks.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Block size.
    pub bsize: u32,
    /// Max name length.
    pub namelen: u32,
    /// Fragment size.
    pub frsize: u32,
}

/// Told by the overlay when the kernel's caches must forget something (a commit or discard
/// brought the lower file back, or the host changed a file the overlay has not touched).
/// The FUSE adapter implements it with `Notifier::inval_*`, sent from its own thread.
pub trait Invalidator: Send + Sync {
    /// Forget the dentry `name` in directory `parent`.
    fn inval_entry(&self, parent: Ino, name: &std::ffi::OsStr);
    /// Forget attributes and cached pages of `ino`.
    fn inval_inode(&self, ino: Ino);
    /// Returns once every invalidation asked for before has reached the kernel (or after a
    /// bounded wait). Never call it while holding a lock a FUSE request may wait on.
    fn flush(&self) {}
}
