//! Merged directory listings with stable offsets.
//!
//! A listing is the merged view of a directory (upper entries, then lower entries not
//! shadowed, whited out or hidden) sorted by a cookie derived from each name: the offset after
//! an entry is its cookie, so an offset names the same place in every listing of the
//! directory, and a reader resuming from it after the directory changed skips and repeats
//! nothing but the entries that changed.
//!
//! With a handle (`opendir`), the first `readdir` takes one snapshot that serves the handle
//! for its life. Without one ([`NO_HANDLE`]: the kernel stops sending `OPENDIR` once it is
//! refused), `readdir` at offset 0 takes a fresh listing and later offsets continue from it
//! while it is kept; a listing that was dropped is simply taken again.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
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

/// The file handle of a directory read without `opendir`.
pub const NO_HANDLE: Fh = 0;

/// Handle-less listings kept at once; past this they are dropped (and taken again if needed).
const KEPT_LISTINGS: usize = 64;

/// Offsets 1 and 2 follow `.` and `..`; names get cookies from here up.
const FIRST_COOKIE: u64 = 3;

/// The readdir offset after `name`: 62 bits of its blake3 hash (well inside `loff_t`, with
/// room above for the rare collision, which [`assign_offsets`] resolves).
fn name_cookie(name: &OsStr) -> u64 {
    let h = blake3::hash(name.as_bytes());
    let v = u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"));
    (v >> 2).max(FIRST_COOKIE)
}

/// Sorts `entries` by name cookie and sets each one's `next_offset` to its cookie (bumped past
/// its predecessor's when two names collide, so offsets strictly increase).
fn assign_offsets(entries: &mut [DirEntry]) {
    for e in entries.iter_mut() {
        e.next_offset = name_cookie(&e.name);
    }
    entries.sort_unstable_by(|a, b| (a.next_offset, &a.name).cmp(&(b.next_offset, &b.name)));
    let mut last = FIRST_COOKIE - 1;
    for e in entries {
        last = e.next_offset.max(last + 1);
        e.next_offset = last;
    }
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
        if let Some(ufd) = self.upper_dir_fd(dir)? {
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
            if let Some(lfd) = self.lower_dir_fd(dir)? {
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
        if let Some(ufd) = self.upper_dir_fd(dir)? {
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
        if let Some(lfd) = self.lower_dir_fd(dir)? {
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
            return Err(Error::not_a_directory(&dir.path()));
        }
        self.refuse_masked(&dir, &dir.path())?;
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
        // Also here: without OPENDIR (no-opendir mode) a listing starts at `readdir`.
        self.refuse_masked(&dir, &dir.path())?;
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
        let mut named: Vec<DirEntry> = self
            .merged_listing(&dir)?
            .into_iter()
            .map(|e| {
                let dev = if e.layer == Layer::Upper {
                    self.upper_dev
                } else {
                    self.lower_dev
                };
                DirEntry {
                    ino: self.nodes.id_for(e.layer == Layer::Upper, dev, e.st_ino),
                    next_offset: 0,
                    kind: e.kind,
                    name: e.name,
                }
            })
            .collect();
        assign_offsets(&mut named);
        entries.append(&mut named);
        Ok(entries)
    }

    /// The listing `readdir` of `ino` at `offset` serves: the handle's snapshot, or without a
    /// handle the kept listing (a fresh one at offset 0).
    fn listing(&self, ino: Ino, fh: Fh, offset: u64) -> Result<Arc<Vec<DirEntry>>> {
        if fh != NO_HANDLE {
            return self.dir_entries(fh);
        }
        if offset != 0 {
            if let Some(l) = self.dir_listings.get(&ino) {
                return Ok(l.clone());
            }
        }
        let l = Arc::new(self.dir_snapshot(ino)?);
        if self.dir_listings.len() >= KEPT_LISTINGS {
            self.dir_listings.clear();
        }
        self.dir_listings.insert(ino, l.clone());
        Ok(l)
    }

    /// The entries of `listing` after `offset`; at the end of a handle-less listing, drops it.
    fn entries_after(
        &self,
        ino: Ino,
        fh: Fh,
        listing: &Arc<Vec<DirEntry>>,
        offset: u64,
    ) -> std::ops::Range<usize> {
        let start = listing.partition_point(|e| e.next_offset <= offset);
        if start == listing.len() && fh == NO_HANDLE {
            self.dir_listings
                .remove_if(&ino, |_, kept| Arc::ptr_eq(kept, listing));
        }
        start..listing.len()
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
            .ok_or(Error::UnknownHandle(fh))
    }

    /// Entries from `offset` on; `fill` returns false when the reply buffer is full.
    pub fn readdir(
        &self,
        ino: Ino,
        fh: Fh,
        offset: u64,
        fill: &mut dyn FnMut(&DirEntry) -> bool,
    ) -> Result<()> {
        let entries = self.listing(ino, fh, offset)?;
        for e in &entries[self.entries_after(ino, fh, &entries, offset)] {
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
        let entries = self.listing(ino, fh, offset)?;
        let mut sent = 0;
        for e in &entries[self.entries_after(ino, fh, &entries, offset)] {
            if e.name == "." || e.name == ".." {
                let attr = self.getattr(e.ino, None)?;
                if !fill(e, &attr) {
                    break;
                }
                sent += 1;
                continue;
            }
            let attr = match self.lookup(ino, &e.name) {
                Ok(a) => a,
                Err(err) if err.errno() == libc::ENOENT => continue, // removed since opendir
                // Any other failure ends this reply; the reader's next call resumes here and
                // gets the error if it persists. An entry that could not be read is never
                // skipped as if it were gone.
                Err(_) if sent > 0 => break,
                Err(err) => return Err(err),
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
            sent += 1;
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
        if let Some(fd) = self.upper_dir_fd(&dir)? {
            let f = sys::reopen(fd.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)
                .ctx("open", &dir.path())?;
            sys::fsync(f.as_fd(), false).ctx("fsync", &dir.path())?;
        }
        self.journal.sync()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::ffi::OsStr;

    use super::*;
    use crate::testing::{create, TestWorkspace};

    /// Reads `ino` without a handle, `chunk` entries per call, running `between` after each
    /// call; returns how often each name was returned.
    fn read_in_chunks(
        ov: &Overlay,
        chunk: usize,
        mut between: impl FnMut(usize),
    ) -> HashMap<OsString, usize> {
        let mut seen = HashMap::new();
        let (mut offset, mut calls) = (0, 0);
        loop {
            let mut got = 0;
            ov.readdir(ROOT_INO, NO_HANDLE, offset, &mut |e| {
                if got == chunk {
                    return false;
                }
                got += 1;
                offset = e.next_offset;
                *seen.entry(e.name.clone()).or_insert(0) += 1;
                true
            })
            .unwrap();
            if got == 0 {
                return seen;
            }
            calls += 1;
            between(calls);
        }
    }

    /// A handle-less reader resuming after the directory changed (its listing dropped and taken
    /// again) returns every entry that stayed exactly once: offsets come from names, not places.
    #[test]
    fn handle_less_readdir_survives_changes_between_calls() {
        let host: Vec<(String, String)> =
            (0..120).map(|i| (format!("h{i}"), String::new())).collect();
        let files: Vec<(&str, &str)> = host.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
        let fx = TestWorkspace::new(&files);
        let ov = fx.ov();
        for i in 0..40 {
            create(ov, format!("u{i}"), b"x");
        }
        let seen = read_in_chunks(ov, 7, |call| {
            // Remove two entries and add one, and drop the kept listing now and then.
            for name in [format!("h{}", call * 2), format!("u{call}")] {
                let _ = ov.unlink(ROOT_INO, OsStr::new(&name));
            }
            create(ov, format!("new{call}"), b"y");
            if call % 3 == 0 {
                ov.dir_listings.clear();
            }
        });
        for (name, n) in &seen {
            assert_eq!(*n, 1, "{name:?} returned {n} times");
        }
        let stayed = (0..120)
            .map(|i| format!("h{i}"))
            .chain((0..40).map(|i| format!("u{i}")))
            .filter(|n| ov.lookup(ROOT_INO, OsStr::new(n)).is_ok());
        for name in stayed {
            assert!(seen.contains_key(OsStr::new(&name)), "{name} was skipped");
        }
        assert!(seen.contains_key(OsStr::new(".")) && seen.contains_key(OsStr::new("..")));
        assert!(
            ov.dir_listings.is_empty(),
            "the listing outlived its reader"
        );
    }

    /// Offsets increase strictly, also for names whose cookies collide.
    #[test]
    fn offsets_increase_strictly_through_collisions() {
        let entry = |name: &str| DirEntry {
            ino: 1,
            next_offset: 0,
            kind: Kind::File,
            name: name.into(),
        };
        // The same name twice stands in for two names with one cookie.
        let mut entries = vec![entry("b"), entry("a"), entry("a"), entry("c")];
        assign_offsets(&mut entries);
        assert!(entries
            .windows(2)
            .all(|w| w[0].next_offset < w[1].next_offset));
        assert!(entries
            .iter()
            .all(|e| e.next_offset >= FIRST_COOKIE && e.next_offset < 1 << 63));
        let a: Vec<u64> = entries
            .iter()
            .filter(|e| e.name == "a")
            .map(|e| e.next_offset)
            .collect();
        assert_eq!(a[1], a[0] + 1);
    }
}
