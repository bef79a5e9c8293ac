//! Per-inode I/O mode for FUSE passthrough.
//!
//! The kernel (fs/fuse/iomode.c) keeps one backing file per inode while any passthrough handle
//! is open, refuses a passthrough open of an inode that is open in cached mode and a cached open
//! of an inode that is open in passthrough mode. This table mirrors that: our counts are taken
//! before the reply is sent and dropped when `release` arrives (the kernel drops its own count
//! before sending `release`), so they never undercount the kernel's and the two modes are never
//! both live for one inode. The table also names an open handle of an inode, for `getattr` of a
//! file that was unlinked while open.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use fuser::BackingId;
use tracing::{debug, warn};
use wsfs::overlay::{Fh, Ino};

/// The open handles of one inode and how they were opened.
struct InodeIo {
    /// `Some` while the inode is open in passthrough mode, `None` in cached mode.
    backing: Option<Arc<BackingId>>,
    /// Its open handles (never empty while in the table).
    handles: Vec<Fh>,
}

/// The I/O mode of every open inode.
#[derive(Default)]
pub(super) struct IoModes {
    inodes: DashMap<Ino, InodeIo>,
    /// Registering a backing file failed with a permission error: stop trying.
    broken: AtomicBool,
}

impl IoModes {
    /// Decides how handle `fh` of `ino` is opened. `want` is true when the file may use
    /// passthrough (an upper-layer file on a connection that negotiated it); `register` opens
    /// the backing id when this is the inode's first passthrough open. Returns the backing id to
    /// reply with, or `None` for a cached open.
    pub(super) fn open(
        &self,
        ino: Ino,
        fh: Fh,
        want: bool,
        register: impl FnOnce() -> io::Result<BackingId>,
    ) -> Option<Arc<BackingId>> {
        let want = want && !self.broken.load(Ordering::Relaxed);
        match self.inodes.entry(ino) {
            Entry::Occupied(mut e) => {
                let io = e.get_mut();
                io.handles.push(fh);
                if want && io.backing.is_none() {
                    debug!(ino, "inode already open in cached mode: no passthrough");
                }
                // Every open of a passthrough inode must use its backing file.
                io.backing.clone()
            }
            Entry::Vacant(e) => {
                let backing = if want {
                    self.register(ino, register)
                } else {
                    None
                };
                e.insert(InodeIo {
                    backing: backing.clone(),
                    handles: vec![fh],
                });
                backing
            }
        }
    }

    fn register(
        &self,
        ino: Ino,
        register: impl FnOnce() -> io::Result<BackingId>,
    ) -> Option<Arc<BackingId>> {
        match register() {
            Ok(id) => Some(Arc::new(id)),
            Err(e) => {
                if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EOPNOTSUPP))
                    && !self.broken.swap(true, Ordering::Relaxed)
                {
                    warn!(ino, error = %e, "FUSE passthrough unavailable; using normal I/O");
                } else {
                    warn!(ino, error = %e, "passthrough open failed; using normal I/O");
                }
                None
            }
        }
    }

    /// Forgets handle `fh` of `ino`; the inode's last handle drops its mode (and backing id).
    pub(super) fn release(&self, ino: Ino, fh: Fh) {
        if let Entry::Occupied(mut e) = self.inodes.entry(ino) {
            let handles = &mut e.get_mut().handles;
            handles.retain(|&h| h != fh);
            if handles.is_empty() {
                e.remove();
            }
        }
    }

    /// Some open handle of `ino` (to reach a file that has no name any more).
    pub(super) fn any_handle(&self, ino: Ino) -> Option<Fh> {
        self.inodes
            .get(&ino)
            .and_then(|io| io.handles.first().copied())
    }

    /// Number of inodes with open handles (tests).
    #[cfg(test)]
    pub(super) fn open_inodes(&self) -> usize {
        self.inodes.len()
    }
}
