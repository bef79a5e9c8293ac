//! The merged view: host project (lower) + workspace upper layer. (Bodies being written.)
#![allow(missing_docs, unused_variables)]

pub mod types;

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::Arc;

pub use types::*;

use crate::error::Result;
use crate::journal::record::Record;
use crate::relpath::RelPath;

/// The overlay. All methods are `&self` and safe to call concurrently.
pub struct Overlay {}

impl Overlay {
    pub fn new(
        project: &Path,
        upper: &Path,
        work: &Path,
        journal: Arc<crate::journal::Journal>,
        policy: Arc<crate::policy::Policy>,
        replay: &[Record],
    ) -> Result<Arc<Overlay>> {
        todo!()
    }
    pub fn set_invalidator(&self, inval: Arc<dyn Invalidator>) {
        todo!()
    }
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Attr> {
        todo!()
    }
    pub fn forget(&self, ino: Ino, nlookup: u64) {
        todo!()
    }
    pub fn getattr(&self, ino: Ino, fh: Option<Fh>) -> Result<Attr> {
        todo!()
    }
    pub fn setattr(&self, req: &Req, ino: Ino, set: &SetAttr) -> Result<Attr> {
        todo!()
    }
    pub fn readlink(&self, ino: Ino) -> Result<OsString> {
        todo!()
    }
    pub fn mknod(
        &self,
        req: &Req,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
    ) -> Result<Attr> {
        todo!()
    }
    pub fn mkdir(
        &self,
        req: &Req,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Result<Attr> {
        todo!()
    }
    pub fn unlink(&self, parent: Ino, name: &OsStr) -> Result<()> {
        todo!()
    }
    pub fn rmdir(&self, parent: Ino, name: &OsStr) -> Result<()> {
        todo!()
    }
    pub fn symlink(&self, req: &Req, parent: Ino, name: &OsStr, target: &OsStr) -> Result<Attr> {
        todo!()
    }
    pub fn rename(
        &self,
        parent: Ino,
        name: &OsStr,
        newparent: Ino,
        newname: &OsStr,
        flags: u32,
    ) -> Result<()> {
        todo!()
    }
    pub fn link(&self, ino: Ino, newparent: Ino, newname: &OsStr) -> Result<Attr> {
        todo!()
    }
    pub fn open(&self, req: &Req, ino: Ino, flags: i32) -> Result<Opened> {
        todo!()
    }
    pub fn create(
        &self,
        req: &Req,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
    ) -> Result<(Attr, Opened)> {
        todo!()
    }
    pub fn read(&self, fh: Fh, offset: u64, size: u32) -> Result<Vec<u8>> {
        todo!()
    }
    pub fn write(&self, fh: Fh, offset: u64, data: &[u8]) -> Result<u32> {
        todo!()
    }
    pub fn flush(&self, fh: Fh) -> Result<()> {
        todo!()
    }
    pub fn release(&self, fh: Fh) -> Result<()> {
        todo!()
    }
    pub fn fsync(&self, fh: Fh, datasync: bool) -> Result<()> {
        todo!()
    }
    pub fn fallocate(&self, fh: Fh, offset: u64, length: u64, mode: i32) -> Result<()> {
        todo!()
    }
    pub fn lseek(&self, fh: Fh, offset: i64, whence: i32) -> Result<i64> {
        todo!()
    }
    pub fn copy_file_range(
        &self,
        fh_in: Fh,
        off_in: u64,
        fh_out: Fh,
        off_out: u64,
        len: u64,
    ) -> Result<u32> {
        todo!()
    }
    pub fn opendir(&self, ino: Ino) -> Result<Fh> {
        todo!()
    }
    /// Entries from `offset` on; `fill` returns false when the reply buffer is full.
    pub fn readdir(
        &self,
        ino: Ino,
        fh: Fh,
        offset: u64,
        fill: &mut dyn FnMut(&DirEntry) -> bool,
    ) -> Result<()> {
        todo!()
    }
    /// Like readdir but each entry (except "." and "..") is looked up (counts as a lookup).
    pub fn readdirplus(
        &self,
        ino: Ino,
        fh: Fh,
        offset: u64,
        fill: &mut dyn FnMut(&DirEntry, &Attr) -> bool,
    ) -> Result<()> {
        todo!()
    }
    pub fn releasedir(&self, fh: Fh) {
        todo!()
    }
    pub fn fsyncdir(&self, ino: Ino) -> Result<()> {
        todo!()
    }
    pub fn setxattr(&self, ino: Ino, name: &OsStr, value: &[u8], flags: i32) -> Result<()> {
        todo!()
    }
    pub fn getxattr(&self, ino: Ino, name: &OsStr) -> Result<Vec<u8>> {
        todo!()
    }
    pub fn listxattr(&self, ino: Ino) -> Result<Vec<OsString>> {
        todo!()
    }
    pub fn removexattr(&self, ino: Ino, name: &OsStr) -> Result<()> {
        todo!()
    }
    pub fn statfs(&self) -> Result<StatFs> {
        todo!()
    }
    pub fn access(&self, req: &Req, ino: Ino, mask: i32) -> Result<()> {
        todo!()
    }
    /// The host changed `path` (from a watcher): drop cached state and tell the kernel,
    /// unless the overlay has its own version of that path.
    pub fn lower_changed(&self, path: &RelPath) {
        todo!()
    }
    /// Flushes journal and upper data (daemon shutdown).
    pub fn sync_all(&self) -> Result<()> {
        todo!()
    }
}
