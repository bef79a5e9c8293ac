//! The content store: every file version a workspace must be able to bring back, kept by its
//! blake3 hash in the workspace's state directory.
//!
//! Layout: `<workspace>/store/objects/<2 hex>/<62 hex>` (one file per distinct content, mode
//! 0400) and `<workspace>/store/tmp/` for objects being written. [`ContentStore::put_fd`] copies
//! a file into `tmp/` (a reflink where the filesystem offers one, else an in-kernel copy),
//! hashes *the copy*, and renames it to its hash: an object's name is always the hash of what was
//! stored, whatever the source did meanwhile. Equal content is stored once.
//!
//! Durability is batched: a put does not fsync. A caller that is about to write a journal record
//! naming objects calls [`ContentStore::sync`] first (one `syncfs`), so every object a durable
//! record names is itself durable. An object left torn by a crash before that sync is named by
//! no record; [`ContentStore::verify`] finds it and [`ContentStore::gc`] drops it.
//!
//! Reading back: [`ContentStore::open_object`] and [`ContentStore::read`]. Retention is the caller's:
//! [`ContentStore::gc`] keeps the hashes it is given and removes the rest.

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::hash::{hash_fd_len, ContentHash};
use crate::sys;

/// Store failures. Each names the object or file involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An OS call on the store's own files failed.
    #[error("content store {path}: {op}: {source}", path = .path.display())]
    Io {
        /// What we were doing.
        op: &'static str,
        /// The store file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The object is not in the store.
    #[error("content store: object {0} is missing; `wsfs verify` lists what is affected")]
    Missing(ContentHash),
    /// The caller expected other content than the source held when it was copied.
    #[error("content store: the source changed while it was stored (expected {expected}, found {found})")]
    Changed {
        /// The hash the caller expected.
        expected: ContentHash,
        /// The hash of what was copied.
        found: ContentHash,
    },
}

type Result<T> = std::result::Result<T, StoreError>;

fn err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A workspace's content store (see the module docs).
pub struct ContentStore {
    root: PathBuf,
    objects: OwnedFd,
    tmp: OwnedFd,
    /// Names temporary files uniquely within this process.
    next_tmp: AtomicU64,
}

/// What [`ContentStore::verify`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyStore {
    /// Objects in the store.
    pub objects: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// Referenced hashes with no object.
    pub missing: Vec<ContentHash>,
    /// Objects whose content no longer hashes to their name.
    pub corrupt: Vec<ContentHash>,
}

/// What [`ContentStore::gc`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcReport {
    /// Objects removed.
    pub removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Objects kept.
    pub kept: u64,
}

impl ContentStore {
    /// Opens (creating if needed) the store at `root`, dropping temporary files a crash left.
    pub fn open(root: &Path) -> Result<ContentStore> {
        let objects_path = root.join("objects");
        let tmp_path = root.join("tmp");
        for dir in [&objects_path, &tmp_path] {
            std::fs::create_dir_all(dir).map_err(err("create", dir))?;
        }
        let objects = sys::open_root(&objects_path).map_err(err("open", &objects_path))?;
        let tmp = sys::open_root(&tmp_path).map_err(err("open", &tmp_path))?;
        for e in sys::read_dir(tmp.as_fd()).map_err(err("list", &tmp_path))? {
            let _ = sys::unlinkat(tmp.as_fd(), &e.name, false);
        }
        Ok(ContentStore {
            root: root.to_path_buf(),
            objects,
            tmp,
            next_tmp: AtomicU64::new(0),
        })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores the whole content of `src` (an fd open for reading) and returns its hash and size.
    /// With `expect`, a copy whose hash differs is dropped and [`StoreError::Changed`] returned.
    pub fn put_fd(
        &self,
        src: BorrowedFd<'_>,
        expect: Option<ContentHash>,
    ) -> Result<(ContentHash, u64)> {
        if let Some(h) = expect {
            if self.contains(&h) {
                let size = self.size_of(&h)?;
                return Ok((h, size));
            }
        }
        let (name, tmp) = self.tmp_file()?;
        let tmp_path = self.root.join("tmp").join(OsStr::from_bytes(&name));
        let size = sys::fstat(src)
            .map_err(err("stat source for", &tmp_path))?
            .st_size as u64;
        let copied = sys::ficlone(tmp.as_fd(), src)
            .or_else(|_| crate::copy::copy_sparse(src, tmp.as_fd(), size));
        let result = copied
            .and_then(|()| hash_fd_len(tmp.as_fd()))
            .map_err(err("copy into", &tmp_path));
        let (hash, len) = match result {
            Ok(v) => v,
            Err(e) => {
                let _ = sys::unlinkat(self.tmp.as_fd(), OsStr::from_bytes(&name), false);
                return Err(e);
            }
        };
        if let Some(expected) = expect.filter(|e| *e != hash) {
            let _ = sys::unlinkat(self.tmp.as_fd(), OsStr::from_bytes(&name), false);
            return Err(StoreError::Changed {
                expected,
                found: hash,
            });
        }
        self.publish(&name, tmp, &hash)?;
        Ok((hash, len))
    }

    /// Stores `bytes` and returns their hash.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<ContentHash> {
        let hash = ContentHash::of(bytes);
        if self.contains(&hash) {
            return Ok(hash);
        }
        let (name, tmp) = self.tmp_file()?;
        let mut off = 0;
        while off < bytes.len() {
            match sys::pwrite(tmp.as_fd(), &bytes[off..], off as u64) {
                Ok(n) => off += n,
                Err(e) => {
                    let _ = sys::unlinkat(self.tmp.as_fd(), OsStr::from_bytes(&name), false);
                    return Err(err("write", &self.root.join("tmp"))(e));
                }
            }
        }
        self.publish(&name, tmp, &hash)?;
        Ok(hash)
    }

    /// True when the object is stored.
    pub fn contains(&self, hash: &ContentHash) -> bool {
        let (dir, file) = split(hash);
        sys::lstatat(self.objects.as_fd(), OsStr::new(&format!("{dir}/{file}"))).is_ok()
    }

    /// Opens an object for reading.
    pub fn open_object(&self, hash: &ContentHash) -> Result<File> {
        let (dir, file) = split(hash);
        let rel = format!("{dir}/{file}");
        match sys::openat(
            self.objects.as_fd(),
            OsStr::new(&rel),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        ) {
            Ok(fd) => Ok(File::from(fd)),
            Err(e) if sys::is_absent(&e) => Err(StoreError::Missing(*hash)),
            Err(e) => Err(err("open", &self.object_path(hash))(e)),
        }
    }

    /// Reads a whole object.
    pub fn read(&self, hash: &ContentHash) -> Result<Vec<u8>> {
        use std::io::Read;
        let mut out = Vec::new();
        self.open_object(hash)?
            .read_to_end(&mut out)
            .map_err(err("read", &self.object_path(hash)))?;
        Ok(out)
    }

    /// The object's path (for messages and tools; open it with [`ContentStore::open_object`]).
    pub fn object_path(&self, hash: &ContentHash) -> PathBuf {
        let (dir, file) = split(hash);
        self.root.join("objects").join(dir).join(file)
    }

    /// Makes every object stored so far durable (one `syncfs` of the store's filesystem).
    pub fn sync(&self) -> Result<()> {
        sys::syncfs(self.objects.as_fd()).map_err(err("sync", &self.root))
    }

    /// Checks every object in the store against its name, and that each of `referenced` is
    /// present.
    pub fn verify(&self, referenced: &HashSet<ContentHash>) -> Result<VerifyStore> {
        let mut report = VerifyStore::default();
        let mut present = HashSet::new();
        for (hash, size) in self.list()? {
            report.objects += 1;
            report.bytes += size;
            let file = self.open_object(&hash)?;
            let (found, _) =
                hash_fd_len(file.as_fd()).map_err(err("read", &self.object_path(&hash)))?;
            if found != hash {
                report.corrupt.push(hash);
            }
            present.insert(hash);
        }
        report.missing = referenced
            .iter()
            .filter(|h| !present.contains(h))
            .copied()
            .collect();
        report.missing.sort();
        report.corrupt.sort();
        Ok(report)
    }

    /// Removes every object not in `keep` and reports what it freed.
    pub fn gc(&self, keep: &HashSet<ContentHash>) -> Result<GcReport> {
        let mut report = GcReport::default();
        for (hash, size) in self.list()? {
            if keep.contains(&hash) {
                report.kept += 1;
                continue;
            }
            let (dir, file) = split(&hash);
            let rel = format!("{dir}/{file}");
            match sys::unlinkat(self.objects.as_fd(), OsStr::new(&rel), false) {
                Ok(()) => {
                    report.removed += 1;
                    report.bytes_freed += size;
                }
                Err(e) if sys::is_absent(&e) => {}
                Err(e) => return Err(err("remove", &self.object_path(&hash))(e)),
            }
        }
        Ok(report)
    }

    /// Every object with its size.
    pub fn list(&self) -> Result<Vec<(ContentHash, u64)>> {
        let objects_path = self.root.join("objects");
        let mut out = Vec::new();
        for d in sys::read_dir(self.objects.as_fd()).map_err(err("list", &objects_path))? {
            let Some(prefix) = d.name.to_str().filter(|n| n.len() == 2) else {
                continue;
            };
            let sub_path = objects_path.join(prefix);
            let sub = match sys::open_dir_path(self.objects.as_fd(), OsStr::new(prefix)) {
                Ok(fd) => fd,
                Err(e) if sys::is_absent(&e) => continue,
                Err(e) => return Err(err("open", &sub_path)(e)),
            };
            for f in sys::read_dir(sub.as_fd()).map_err(err("list", &sub_path))? {
                let Some(rest) = f.name.to_str() else {
                    continue;
                };
                let Some(hash) = ContentHash::from_hex(&format!("{prefix}{rest}")) else {
                    continue;
                };
                let size = sys::lstatat(sub.as_fd(), &f.name)
                    .map(|st| st.st_size as u64)
                    .unwrap_or(0);
                out.push((hash, size));
            }
        }
        out.sort();
        Ok(out)
    }

    fn size_of(&self, hash: &ContentHash) -> Result<u64> {
        let (dir, file) = split(hash);
        sys::lstatat(self.objects.as_fd(), OsStr::new(&format!("{dir}/{file}")))
            .map(|st| st.st_size as u64)
            .map_err(|e| match sys::is_absent(&e) {
                true => StoreError::Missing(*hash),
                false => err("stat", &self.object_path(hash))(e),
            })
    }

    /// A new temporary file in `tmp/`, and its name.
    fn tmp_file(&self) -> Result<(Vec<u8>, OwnedFd)> {
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{n}", std::process::id()).into_bytes();
        let fd = sys::openat(
            self.tmp.as_fd(),
            OsStr::from_bytes(&name),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o400,
        )
        .map_err(err("create", &self.root.join("tmp")))?;
        Ok((name, fd))
    }

    /// Renames the temporary file `name` to the object `hash` (keeping an existing object).
    fn publish(&self, name: &[u8], tmp: OwnedFd, hash: &ContentHash) -> Result<()> {
        drop(tmp);
        let (dir, file) = split(hash);
        match sys::mkdirat(self.objects.as_fd(), OsStr::new(&dir), 0o700) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(err("create", &self.root.join("objects").join(&dir))(e)),
        }
        let dest = format!("{dir}/{file}");
        // RENAME_NOREPLACE: an object already there has this content; keep it, drop the copy.
        match sys::renameat2(
            self.tmp.as_fd(),
            OsStr::from_bytes(name),
            self.objects.as_fd(),
            OsStr::new(&dest),
            libc::RENAME_NOREPLACE,
        ) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let _ = sys::unlinkat(self.tmp.as_fd(), OsStr::from_bytes(name), false);
                Ok(())
            }
            Err(e) => {
                let _ = sys::unlinkat(self.tmp.as_fd(), OsStr::from_bytes(name), false);
                Err(err("store", &self.object_path(hash))(e))
            }
        }
    }
}

/// `(first 2 hex digits, the other 62)`.
fn split(hash: &ContentHash) -> (String, String) {
    let hex = hash.to_hex();
    (hex[..2].to_string(), hex[2..].to_string())
}
