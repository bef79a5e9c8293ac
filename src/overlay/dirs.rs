//! Merged directory listings with stable offsets.
//!
//! The first `readdir` of a handle takes one snapshot of the merged listing (upper entries, then
//! lower entries not shadowed, whited out or hidden); `readdir` serves it by index, so offsets
//! stay stable for the life of the handle whatever happens to the directory meanwhile. The
//! snapshot is not taken at `opendir`: when the kernel serves the directory from its own readdir
//! cache, no `readdir` arrives and the listing is never needed.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use super::node::Node;
use super::{Attr, DirEntry, Fh, Ino, Kind, Layer, Overlay, ROOT_INO};
use crate::error::{Error, IoContext, Result};
use crate::sys;

/// One entry of a merged listing.
pub(crate) struct MergedEntry {
    pub name: OsString,
    pub kind: Kind,
    pub layer: Layer,
    pub st_ino: u64,
}

/// An open directory: a snapshot of its merged listing, taken at the first `readdir`.
pub(crate) struct DirHandle {
    ino: Ino,
    entries: Mutex<Option<Arc<Vec<DirEntry>>>>,
}

fn kind_of_dtype(d: u8) -> Option<Kind> {
    Some(match d {
        libc::DT_DIR => Kind::Dir,
        libc::DT_REG => Kind::File,
        libc::DT_LNK => Kind::Symlink,
        libc::DT_FIFO => Kind::Fifo,
        libc::DT_SOCK => Kind::Socket,
        libc::DT_CHR => Kind::CharDevice,
        libc::DT_BLK => Kind::BlockDevice,
        _ => return None,
    })
}

impl Overlay {
    /// The merged entries of directory `dir` (no `.`/`..`).
    pub(crate) fn merged_listing(&self, dir: &Arc<Node>) -> Result<Vec<MergedEntry>> {
        let dpath = dir.path();
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        if let Some(ufd) = self.upper_dir_fd(dir) {
            for e in sys::read_dir(ufd.as_fd()).ctx("readdir", &dpath)? {
                let kind = match kind_of_dtype(e.d_type) {
                    Some(k) => k,
                    None => Kind::from_mode(
                        sys::lstatat(ufd.as_fd(), &e.name)
                            .ctx("lstat", &dpath)?
                            .st_mode,
                    ),
                };
                seen.insert(e.name.clone());
                out.push(MergedEntry {
                    name: e.name,
                    kind,
                    layer: Layer::Upper,
                    st_ino: e.ino,
                });
            }
        }
        if !self.changes.is_opaque(&dpath) {
            if let Some(lfd) = self.lower_dir_fd(dir) {
                for e in sys::read_dir(lfd.as_fd()).ctx("readdir", &dpath)? {
                    if seen.contains(&e.name) {
                        continue;
                    }
                    let path = dpath.join(&e.name)?;
                    if self.changes.contains(&path) {
                        continue;
                    }
                    let kind = match kind_of_dtype(e.d_type) {
                        Some(k) => k,
                        None => Kind::from_mode(
                            sys::lstatat(lfd.as_fd(), &e.name)
                                .ctx("lstat", &path)?
                                .st_mode,
                        ),
                    };
                    if self.policy.is_hidden(&path, kind == Kind::Dir) {
                        continue;
                    }
                    out.push(MergedEntry {
                        name: e.name,
                        kind,
                        layer: Layer::Lower,
                        st_ino: e.ino,
                    });
                }
            }
        }
        Ok(out)
    }

    /// True if `dir` has no entries in the merged view, counting hidden host entries (so an
    /// rmdir can never delete a secret the container cannot see).
    pub(crate) fn is_empty_dir(&self, dir: &Arc<Node>) -> Result<bool> {
        let dpath = dir.path();
        if let Some(ufd) = self.upper_dir_fd(dir) {
            if !sys::read_dir(ufd.as_fd())
                .ctx("readdir", &dpath)?
                .is_empty()
            {
                return Ok(false);
            }
        }
        if self.changes.is_opaque(&dpath) {
            return Ok(true);
        }
        if let Some(lfd) = self.lower_dir_fd(dir) {
            for e in sys::read_dir(lfd.as_fd()).ctx("readdir", &dpath)? {
                if !self.changes.contains(&dpath.join(&e.name)?) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Opens a directory (the listing is taken at the first `readdir`).
    pub fn opendir(&self, ino: Ino) -> Result<Fh> {
        let dir = self.node(ino)?;
        if dir.kind != Kind::Dir {
            return Err(Error::posix(libc::ENOTDIR, &dir.path()));
        }
        let fh = self.new_fh();
        self.dir_handles.insert(
            fh,
            Arc::new(DirHandle {
                ino,
                entries: Mutex::new(None),
            }),
        );
        Ok(fh)
    }

    /// The snapshot of directory `ino`'s merged listing, with `.` and `..`.
    fn dir_snapshot(&self, ino: Ino) -> Result<Vec<DirEntry>> {
        let dir = self.node(ino)?;
        let parent_ino = dir.loc().parent.as_ref().map(|p| p.ino).unwrap_or(ROOT_INO);
        let mut entries = vec![
            DirEntry {
                ino,
                next_offset: 1,
                kind: Kind::Dir,
                name: ".".into(),
            },
            DirEntry {
                ino: parent_ino,
                next_offset: 2,
                kind: Kind::Dir,
                name: "..".into(),
            },
        ];
        for e in self.merged_listing(&dir)? {
            let dev = if e.layer == Layer::Upper {
                self.upper_dev
            } else {
                self.lower_dev
            };
            let next_offset = entries.len() as u64 + 1;
            entries.push(DirEntry {
                ino: self.nodes.id_for(e.layer == Layer::Upper, dev, e.st_ino),
                next_offset,
                kind: e.kind,
                name: e.name,
            });
        }
        Ok(entries)
    }

    /// The entries of handle `fh`, snapshotting them on first use.
    fn dir_entries(&self, fh: Fh) -> Result<Arc<Vec<DirEntry>>> {
        let h = self.dir_handle(fh)?;
        let mut slot = h.entries.lock().unwrap();
        if let Some(e) = &*slot {
            return Ok(e.clone());
        }
        let e = Arc::new(self.dir_snapshot(h.ino)?);
        *slot = Some(e.clone());
        Ok(e)
    }

    fn dir_handle(&self, fh: Fh) -> Result<Arc<DirHandle>> {
        self.dir_handles
            .get(&fh)
            .map(|h| h.clone())
            .ok_or_else(|| Error::posix(libc::EBADF, &crate::relpath::RelPath::root()))
    }

    /// Entries from `offset` on; `fill` returns false when the reply buffer is full.
    pub fn readdir(
        &self,
        _ino: Ino,
        fh: Fh,
        offset: u64,
        fill: &mut dyn FnMut(&DirEntry) -> bool,
    ) -> Result<()> {
        let entries = self.dir_entries(fh)?;
        for e in entries.iter().skip(offset as usize) {
            if !fill(e) {
                break;
            }
        }
        Ok(())
    }

    /// Like readdir, with attributes; each entry except `.`/`..` counts as one lookup.
    pub fn readdirplus(
        &self,
        ino: Ino,
        fh: Fh,
        offset: u64,
        fill: &mut dyn FnMut(&DirEntry, &Attr) -> bool,
    ) -> Result<()> {
        let entries = self.dir_entries(fh)?;
        for e in entries.iter().skip(offset as usize) {
            if e.name == "." || e.name == ".." {
                let attr = self.getattr(e.ino, None)?;
                if !fill(e, &attr) {
                    break;
                }
                continue;
            }
            let attr = match self.lookup(ino, &e.name) {
                Ok(a) => a,
                Err(_) => continue, // removed since opendir
            };
            let entry = DirEntry {
                ino: attr.ino,
                ..e.clone()
            };
            if !fill(&entry, &attr) {
                // Not sent: undo the lookup count.
                self.forget(attr.ino, 1);
                break;
            }
        }
        Ok(())
    }

    /// Closes a directory handle.
    pub fn releasedir(&self, fh: Fh) {
        self.dir_handles.remove(&fh);
    }

    /// fsync of a directory: the journal is what makes namespace changes durable.
    pub fn fsyncdir(&self, ino: Ino) -> Result<()> {
        let dir = self.node(ino)?;
        if let Some(fd) = self.upper_dir_fd(&dir) {
            let f = sys::reopen(fd.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)
                .ctx("open", &dir.path())?;
            sys::fsync(f.as_fd(), false).ctx("fsync", &dir.path())?;
        }
        self.journal.sync()
    }
}
