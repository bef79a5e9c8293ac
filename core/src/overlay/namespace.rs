//! Lookups and namespace changes: lookup, getattr, setattr, readlink, mknod, mkdir, unlink,
//! rmdir, symlink, rename, link.

use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::node::{Loc, Node};
use super::state::state_of;
use super::{to_timespec, Attr, Ino, Kind, Layer, Overlay, Req, SetAttr, SetTime, ROOT_INO};
use crate::error::{Error, IoContext, Result};
use crate::journal::record::{Draft, EntryState, Op, Target};
use crate::journal::{line_bound, Reservation};
use crate::relpath::RelPath;
use crate::sys;

/// `renameat2` flags.
pub const RENAME_NOREPLACE: u32 = 1;
/// `renameat2` flags.
pub const RENAME_EXCHANGE: u32 = 2;

impl Overlay {
    /// Looks `name` up in `parent`; counts one kernel lookup on success.
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Attr> {
        let dir = self.node(parent)?;
        let dir_path = dir.path();
        // Nothing inside a masked secret directory is listed.
        self.refuse_masked(&dir, &dir_path)?;
        let path = dir_path.join(name)?;
        if dir.kind != Kind::Dir {
            return Err(Error::not_a_directory(&path));
        }
        let (st, layer) = self
            .resolve(&dir, name, &path)?
            .ok_or_else(|| Error::not_found(&path))?;
        let node = self.node_for(&dir, name, path, &st, layer)?;
        let node = self.nodes.count_lookup(&node);
        Ok(self.attr_of(node.ino, &st))
    }

    /// The node at `path`, resolving each component (no lookup count).
    pub(crate) fn node_at(&self, path: &RelPath) -> Result<Arc<Node>> {
        let mut cur = self.nodes.root();
        let mut p = RelPath::root();
        for name in path.components() {
            p = p.join(name)?;
            let (st, layer) = self
                .resolve(&cur, name, &p)?
                .ok_or_else(|| Error::not_found(&p))?;
            cur = self.node_for(&cur, name, p.clone(), &st, layer)?;
        }
        Ok(cur)
    }

    /// Attributes of `ino` (through the open handle when given).
    pub fn getattr(&self, ino: Ino, fh: Option<super::Fh>) -> Result<Attr> {
        if let Some(h) = fh.and_then(|fh| self.handles.get(&fh).map(|h| h.clone())) {
            if h.node.ino == ino {
                let fd = h.fd();
                let st = sys::fstat(fd.as_fd()).ctx("fstat", &h.node.path())?;
                return Ok(self.attr_of(ino, &st));
            }
        }
        let node = self.node(ino)?;
        if node.unlinked.load(Ordering::Acquire) {
            // No-open mode: an open file outlives its last name (see `Node::orphan`).
            if let Some(fd) = node.orphan.lock().unwrap().clone() {
                let st = sys::fstat(fd.as_fd()).ctx("fstat", &node.path())?;
                // A kept host file still has its host name: here it has none.
                return Ok(Attr {
                    nlink: 0,
                    ..self.attr_of(ino, &st)
                });
            }
        }
        let st = self.stat_node(&node)?;
        Ok(self.attr_of(ino, &st))
    }

    /// Changes mode, owner, size or times. Copies up first; never touches the host.
    pub fn setattr(&self, req: &Req, ino: Ino, set: &SetAttr) -> Result<Attr> {
        let node = self.node(ino)?;
        let path = node.path();
        if set.size.is_some() && node.kind == Kind::Dir {
            return Err(Error::is_a_directory(&path));
        }
        let _gate = set.size.is_some().then(|| self.revert_gate.read().unwrap());
        let via_handle = set
            .fh
            .and_then(|fh| self.handles.get(&fh).map(|h| h.clone()));
        let data_needed = set.size != Some(0);
        // Journal room first: a full disk fails the change before it happens.
        let mut res = self.reserve(1, &[&path], link_bytes(&node), set.size.is_some())?;
        self.copy_up(&node, data_needed)?;
        let (dir_fd, name) = self.upper_location(&node)?;
        let dir = dir_fd.as_fd();
        let _ = req;
        // Each step changes the upper entry; when a later one fails, what the earlier ones did
        // is still recorded before the error is returned, so the journal never misses it.
        let mut changed_content = false;
        let mut changed_any = false;
        let steps = (|| -> Result<()> {
            if let Some(size) = set.size {
                let fd = match &via_handle {
                    Some(h) if h.writable => h.upper_fd(self)?,
                    _ => Arc::new(sys::openat(dir, &name, libc::O_WRONLY, 0).ctx("open", &path)?),
                };
                sys::ftruncate(fd.as_fd(), size).ctx("truncate", &path)?;
                changed_content = true;
                changed_any = true;
            }
            if set.uid.is_some() || set.gid.is_some() {
                sys::lchownat(
                    dir,
                    &name,
                    set.uid.unwrap_or(u32::MAX),
                    set.gid.unwrap_or(u32::MAX),
                )
                .ctx("chown", &path)?;
                changed_any = true;
            }
            if let Some(mode) = set.mode {
                if node.kind != Kind::Symlink {
                    let fd = sys::openat(dir, &name, libc::O_PATH, 0).ctx("open", &path)?;
                    sys::chmod_fd(fd.as_fd(), mode & 0o7777).ctx("chmod", &path)?;
                    changed_any = true;
                }
            }
            if set.atime.is_some() || set.mtime.is_some() {
                let ts = |t: Option<SetTime>| match t {
                    None => sys::TimeSpec::Omit,
                    Some(SetTime::Now) => sys::TimeSpec::Now,
                    Some(SetTime::At(t)) => to_timespec(t),
                };
                sys::utimensat(dir, &name, ts(set.atime), ts(set.mtime)).ctx("utimes", &path)?;
            }
            Ok(())
        })();
        if let Err(e) = steps {
            if changed_any {
                if let Err(re) = self.record_setattr(&node, dir, &name, changed_content, &mut res) {
                    tracing::warn!(path = %path, error = %re, "recording a partly applied setattr");
                }
            }
            return Err(e);
        }
        let st = self.record_setattr(&node, dir, &name, changed_content, &mut res)?;
        Ok(self.attr_of(ino, &st))
    }

    /// Records the shape of `node`'s upper entry (`dir`/`name`) after a `setattr` and returns
    /// its stat. Content hashes are settled when the file is closed: a truncate while a writer
    /// has the file open is left to its close.
    fn record_setattr(
        &self,
        node: &Node,
        dir: std::os::fd::BorrowedFd<'_>,
        name: &OsStr,
        changed_content: bool,
        res: &mut Reservation<'_>,
    ) -> Result<sys::Stat> {
        let path = node.path();
        let st = sys::lstatat(dir, name).ctx("lstat", &path)?;
        if changed_content {
            node.version.fetch_add(1, Ordering::AcqRel);
            if node.writers.load(Ordering::Acquire) > 0 {
                node.dirty.store(true, Ordering::Release);
            }
        }
        if changed_content && node.writers.load(Ordering::Acquire) > 0 {
            return Ok(st);
        }
        let hashed_version = node.version.load(Ordering::Acquire);
        let new = state_of(
            dir,
            name,
            &st,
            &path,
            node.kind == Kind::File && changed_content,
        )?;
        // The known hash and the name are read under the record lock: a last close settling
        // concurrently (RELEASE is asynchronous) may record a newer hash first.
        let order = self.record_lock.lock().unwrap();
        let gone = node.unlinked.load(Ordering::Acquire) && !node.reverted.load(Ordering::Acquire);
        if !gone {
            let path = node.path();
            let new = unsettled_if_changed(node, hashed_version, new);
            // A file written since its last record (no-open mode) has no known hash yet.
            let new = if node.dirty.load(Ordering::Acquire) {
                new
            } else {
                self.keep_known_hash(&path, new)
            };
            let base = self.base_for(&path)?;
            self.record_locked_in(&order, res, Draft::new(Op::Setattr, path, base, new))?;
        }
        Ok(st)
    }

    /// Reuses the recorded content hash when only metadata changed.
    fn keep_known_hash(&self, path: &RelPath, new: EntryState) -> EntryState {
        match new {
            EntryState::File {
                hash: None,
                mode,
                size,
            } => {
                let hash = self.changes.get(path).and_then(|c| match c.current {
                    EntryState::File { hash, size: s, .. } if s == size => hash,
                    _ => None,
                });
                EntryState::File { hash, mode, size }
            }
            other => other,
        }
    }

    /// Upper parent fd and name of an upper node.
    pub(crate) fn upper_location(
        &self,
        node: &Node,
    ) -> Result<(Arc<std::os::fd::OwnedFd>, OsString)> {
        let loc = node.loc();
        if node.ino == ROOT_INO {
            return Ok((
                Arc::new(self.upper_root.try_clone().ctx("dup", &loc.path)?),
                OsString::new(),
            ));
        }
        let parent = loc
            .parent
            .as_ref()
            .ok_or_else(|| Error::no_parent(&loc.path))?;
        let fd = self
            .upper_dir_fd(parent)?
            .ok_or_else(|| Error::not_found(&loc.path))?;
        Ok((fd, loc.name))
    }

    /// Target of a symlink.
    pub fn readlink(&self, ino: Ino) -> Result<OsString> {
        let node = self.node(ino)?;
        let loc = node.loc();
        if node.kind != Kind::Symlink {
            return Err(Error::invalid_argument(&loc.path));
        }
        self.refuse_masked(&node, &loc.path)?;
        let parent = loc
            .parent
            .as_ref()
            .ok_or_else(|| Error::invalid_argument(&loc.path))?;
        let fd = if node.is_upper() {
            self.upper_dir_fd(parent)?
        } else {
            self.lower_dir_fd(parent)?
        }
        .ok_or_else(|| Error::not_found(&loc.path))?;
        sys::readlinkat(fd.as_fd(), &loc.name).ctx("readlink", &loc.path)
    }

    /// Checks that `name` may be created in `dir` and returns its path.
    fn prepare_create(&self, dir: &Arc<Node>, name: &OsStr) -> Result<RelPath> {
        let path = dir.path().join(name)?;
        if dir.kind != Kind::Dir {
            return Err(Error::not_a_directory(&path));
        }
        // A hidden name the host has is listed (masked) and makes this EEXIST; one it does
        // not have may be created: the workspace's own secret, never committed.
        self.refuse_masked(dir, &dir.path())?;
        if self.resolve(dir, name, &path)?.is_some() {
            return Err(Error::exists(&path));
        }
        Ok(path)
    }

    /// Owner of a new entry: the caller, with the group inherited from a setgid parent.
    fn new_owner(&self, req: &Req, parent_upper: &std::os::fd::OwnedFd) -> (u32, u32) {
        match sys::fstat(parent_upper.as_fd()) {
            Ok(st) if st.st_mode & libc::S_ISGID != 0 => (req.uid, st.st_gid),
            _ => (req.uid, req.gid),
        }
    }

    /// Finishes any create: owner, exact mode, node, record.
    #[allow(
        clippy::too_many_arguments,
        reason = "shared tail of mknod, mkdir, symlink and create: each passes what it already holds"
    )]
    fn finish_create(
        &self,
        req: &Req,
        dir: &Arc<Node>,
        ufd: &std::os::fd::OwnedFd,
        name: &OsStr,
        path: RelPath,
        op: Op,
        perm: Option<u32>,
        res: &mut Reservation<'_>,
    ) -> Result<(Attr, Arc<Node>)> {
        let is_dir = op == Op::Mkdir;
        let recorded = (|| {
            let (uid, gid) = self.new_owner(req, ufd);
            sys::lchownat(ufd.as_fd(), name, uid, gid).ctx("chown", &path)?;
            if let Some(perm) = perm {
                // Exactly the mode asked for (after chown, which may clear set-id bits): the
                // daemon's own umask must not apply a second time.
                let fd = sys::openat(ufd.as_fd(), name, libc::O_PATH, 0).ctx("open", &path)?;
                sys::chmod_fd(fd.as_fd(), perm).ctx("chmod", &path)?;
            }
            let st = sys::lstatat(ufd.as_fd(), name).ctx("lstat", &path)?;
            let hash_new = st.st_mode & libc::S_IFMT == libc::S_IFREG;
            let new = state_of(ufd.as_fd(), name, &st, &path, hash_new)?;
            let base = self.base_for(&path)?;
            self.record_in(res, Draft::new(op, path.clone(), base, new))?;
            Ok(st)
        })();
        let st = match recorded {
            Ok(st) => st,
            Err(e) => {
                // The entry was created just now (the name was free): an operation that fails
                // (e.g. ENOSPC appending its journal record) must leave nothing behind, or it
                // would show through the mount and be adopted as a change on the next open.
                let _ = sys::unlinkat(ufd.as_fd(), name, is_dir);
                return Err(e);
            }
        };
        let node = self.node_for(dir, name, path, &st, Layer::Upper)?;
        let node = self.nodes.count_lookup(&node);
        Ok((self.attr_of(node.ino, &st), node))
    }

    /// Creates a FIFO, socket, device node or (empty) regular file. A device node lives in the
    /// upper layer only: the mount is `nodev` (opening it as a device fails with EACCES) and a
    /// commit refuses it ([`EntryState::is_device`]). Creating one needs the daemon to be
    /// allowed to (root); otherwise the kernel's EPERM is the answer.
    pub fn mknod(
        &self,
        req: &Req,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
    ) -> Result<Attr> {
        let dir = self.node(parent)?;
        let path = self.prepare_create(&dir, name)?;
        let kind = mode & libc::S_IFMT;
        let device = matches!(kind, libc::S_IFCHR | libc::S_IFBLK);
        if !device && !matches!(kind, libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFREG | 0) {
            return Err(Error::not_permitted(&path));
        }
        let rdev = if device { u64::from(rdev) } else { 0 };
        let mut res = self.reserve(1, &[&path], 0, false)?;
        let ufd = self.ensure_upper_dir(&dir)?;
        let perm = mode & 0o7777 & !umask;
        if kind == libc::S_IFREG || kind == 0 {
            sys::openat(
                ufd.as_fd(),
                name,
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                perm,
            )
            .ctx("create", &path)?;
        } else {
            sys::mknodat(ufd.as_fd(), name, kind | perm, rdev).ctx("mknod", &path)?;
        }
        let op = if kind == libc::S_IFREG || kind == 0 {
            Op::Create
        } else {
            Op::Mknod
        };
        Ok(self
            .finish_create(req, &dir, &ufd, name, path, op, Some(perm), &mut res)?
            .0)
    }

    /// Creates a directory.
    pub fn mkdir(
        &self,
        req: &Req,
        parent: Ino,
        name: &OsStr,
        mode: u32,
        umask: u32,
    ) -> Result<Attr> {
        let dir = self.node(parent)?;
        let path = self.prepare_create(&dir, name)?;
        let mut res = self.reserve(1, &[&path], 0, false)?;
        let ufd = self.ensure_upper_dir(&dir)?;
        sys::mkdirat(ufd.as_fd(), name, mode & 0o7777 & !umask).ctx("mkdir", &path)?;
        let (attr, node) = self.finish_create(
            req,
            &dir,
            &ufd,
            name,
            path,
            Op::Mkdir,
            Some(mode & 0o7777 & !umask),
            &mut res,
        )?;
        node.upper_dir.clear();
        Ok(attr)
    }

    /// Creates a symlink (the target is stored as given, never resolved).
    pub fn symlink(&self, req: &Req, parent: Ino, name: &OsStr, target: &OsStr) -> Result<Attr> {
        let dir = self.node(parent)?;
        let path = self.prepare_create(&dir, name)?;
        let mut res = self.reserve(1, &[&path], target.len(), false)?;
        let ufd = self.ensure_upper_dir(&dir)?;
        sys::symlinkat(target, ufd.as_fd(), name).ctx("symlink", &path)?;
        Ok(self
            .finish_create(req, &dir, &ufd, name, path, Op::Symlink, None, &mut res)?
            .0)
    }

    /// Removes a non-directory.
    pub fn unlink(&self, parent: Ino, name: &OsStr) -> Result<()> {
        let dir = self.node(parent)?;
        let path = dir.path().join(name)?;
        let (st, layer) = self
            .resolve(&dir, name, &path)?
            .ok_or_else(|| Error::not_found(&path))?;
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return Err(Error::is_a_directory(&path));
        }
        // The node is found while the entry still exists: once it is unlinked, its inode
        // number is free for a file another request creates, and the id map would name that
        // file's node instead (which would then be marked gone while the kernel holds it).
        let node = self.node_for(&dir, name, path.clone(), &st, layer)?;
        self.refuse_masked(&node, &path)?;
        let base = self.base_for(&path)?;
        let link = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            st.st_size as usize
        } else {
            0
        };
        let mut res = self.reserve(1, &[&path], link, true)?;
        if layer == Layer::Upper {
            let ufd = self
                .upper_dir_fd(&dir)?
                .ok_or_else(|| Error::upper_missing(&path))?;
            if st.st_nlink <= 1 {
                self.keep_if_open(&node, ufd.as_fd(), name);
            }
            sys::unlinkat(ufd.as_fd(), name, false).ctx("unlink", &path)?;
        } else if self.is_handleless() && node.kind == Kind::File {
            if let Some(lfd) = self.lower_dir_fd(&dir)? {
                self.keep_if_open(&node, lfd.as_fd(), name);
            }
        }
        crate::fault::point(crate::fault::Point::UnlinkAfterRemove);
        // Recorded and detached as one step: a last close settling concurrently either
        // records before the unlink or sees the node gone (never writes the dead name).
        let order = self.record_lock.lock().unwrap();
        self.record_locked_in(
            &order,
            &mut res,
            Draft::new(Op::Unlink, path.clone(), base, EntryState::Absent),
        )?;
        self.detach(&node, &dir, name, st.st_nlink <= 1 || layer == Layer::Lower);
        Ok(())
    }

    /// Marks the node at `dir/name` gone (or moves its primary name to a surviving hard link).
    fn detach(&self, node: &Node, dir: &Arc<Node>, name: &OsStr, last_link: bool) {
        let mut aliases = node.aliases.lock().unwrap();
        aliases.retain(|(d, n)| !(Arc::ptr_eq(d, dir) && n == name));
        if !last_link {
            if let Some((d, n)) = aliases.pop() {
                if let Ok(p) = d.path().join(&n) {
                    node.set_loc(Loc {
                        parent: Some(d),
                        name: n,
                        path: p,
                    });
                    return;
                }
            }
        }
        node.unlinked.store(true, Ordering::Release);
    }

    /// Removes an empty directory (empty in the merged view, hidden entries included).
    pub fn rmdir(&self, parent: Ino, name: &OsStr) -> Result<()> {
        let dir = self.node(parent)?;
        let path = dir.path().join(name)?;
        let (st, layer) = self
            .resolve(&dir, name, &path)?
            .ok_or_else(|| Error::not_found(&path))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(Error::not_a_directory(&path));
        }
        let child = self.node_for(&dir, name, path.clone(), &st, layer)?;
        self.refuse_masked(&child, &path)?;
        if !self.is_empty_dir(&child)? {
            return Err(Error::not_empty(&path));
        }
        let base = self.base_for(&path)?;
        let mut res = self.reserve(1, &[&path], 0, true)?;
        if child.is_upper() {
            let ufd = self
                .upper_dir_fd(&dir)?
                .ok_or_else(|| Error::upper_missing(&path))?;
            sys::unlinkat(ufd.as_fd(), name, true).ctx("rmdir", &path)?;
        }
        self.record_in(
            &mut res,
            Draft::new(Op::Rmdir, path, base, EntryState::Absent),
        )?;
        child.set_upper(false);
        child.unlinked.store(true, Ordering::Release);
        Ok(())
    }

    /// Makes a hard link. The source is copied up first; links never reach outside the
    /// workspace because both names live in the upper layer.
    pub fn link(&self, ino: Ino, newparent: Ino, newname: &OsStr) -> Result<Attr> {
        let node = self.node(ino)?;
        if node.kind == Kind::Dir {
            return Err(Error::not_permitted(&node.path()));
        }
        let dir = self.node(newparent)?;
        let path = self.prepare_create(&dir, newname)?;
        let mut res = self.reserve(1, &[&node.path(), &path], 2 * link_bytes(&node), false)?;
        self.copy_up(&node, true)?;
        let (src_dir, src_name) = self.upper_location(&node)?;
        let ufd = self.ensure_upper_dir(&dir)?;
        sys::linkat(src_dir.as_fd(), &src_name, ufd.as_fd(), newname).ctx("link", &path)?;
        let st = sys::lstatat(ufd.as_fd(), newname).ctx("lstat", &path)?;
        let new = self.keep_known_hash(
            &node.path(),
            state_of(ufd.as_fd(), newname, &st, &path, false)?,
        );
        let new = match new {
            EntryState::File { hash: None, .. } => {
                state_of(ufd.as_fd(), newname, &st, &path, true)?
            }
            n => n,
        };
        let base = self.base_for(&path)?;
        let mut d = Draft::new(Op::Link, node.path(), None, new.clone());
        d.to = Some(Target {
            path: path.clone(),
            base,
            new,
        });
        // Recorded and aliased as one step, so a last close records the new name too.
        let order = self.record_lock.lock().unwrap();
        self.record_locked_in(&order, &mut res, d)?;
        node.aliases
            .lock()
            .unwrap()
            .push((dir.clone(), newname.to_owned()));
        drop(order);
        let node = self.nodes.count_lookup(&node);
        Ok(self.attr_of(node.ino, &st))
    }

    /// Renames `parent/name` to `newparent/newname` (flags: RENAME_NOREPLACE, RENAME_EXCHANGE).
    /// Lower entries are copied up first (directories with their whole subtree), so the host
    /// is never touched; each moved entry is journaled with its base for commit.
    pub fn rename(
        &self,
        parent: Ino,
        name: &OsStr,
        newparent: Ino,
        newname: &OsStr,
        flags: u32,
    ) -> Result<()> {
        let _g = self.rename_lock.lock().unwrap();
        let sdir = self.node(parent)?;
        let ddir = self.node(newparent)?;
        let spath = sdir.path().join(name)?;
        let dpath = ddir.path().join(newname)?;
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 {
            return Err(Error::invalid_argument(&spath));
        }
        let (sst, slayer) = self
            .resolve(&sdir, name, &spath)?
            .ok_or_else(|| Error::not_found(&spath))?;
        let dst = self.resolve(&ddir, newname, &dpath)?;
        let s_is_dir = sst.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if spath == dpath {
            return Ok(());
        }
        if dpath.starts_with(&spath) {
            return Err(Error::invalid_argument(&dpath));
        }
        let snode = self.node_for(&sdir, name, spath.clone(), &sst, slayer)?;
        // A masked secret is neither moved nor replaced; a directory is not moved into one.
        self.refuse_masked(&snode, &spath)?;
        self.refuse_masked(&ddir, &ddir.path())?;
        if flags & RENAME_EXCHANGE != 0 {
            let (dst_st, dlayer) = dst.ok_or_else(|| Error::not_found(&dpath))?;
            return self.exchange(
                &sdir,
                name,
                &spath,
                &snode,
                &ddir,
                newname,
                &dpath,
                (dst_st, dlayer),
            );
        }
        let mut dnode = None;
        if let Some((dst_st, dlayer)) = dst {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Error::exists(&dpath));
            }
            let d_is_dir = dst_st.st_mode & libc::S_IFMT == libc::S_IFDIR;
            match (s_is_dir, d_is_dir) {
                (true, false) => return Err(Error::not_a_directory(&dpath)),
                (false, true) => return Err(Error::is_a_directory(&dpath)),
                _ => {}
            }
            let n = self.node_for(&ddir, newname, dpath.clone(), &dst_st, dlayer)?;
            self.refuse_masked(&n, &dpath)?;
            if n.ino == snode.ino {
                // Two names of one file: POSIX rename does nothing.
                return Ok(());
            }
            if d_is_dir && !self.is_empty_dir(&n)? {
                return Err(Error::not_empty(&dpath));
            }
            let last_link = dst_st.st_nlink <= 1 || dlayer == Layer::Lower;
            dnode = Some((n, last_link));
        }
        // Bases first (before anything moves), then the physical move in the upper layer.
        let sbase = self.base_for(&spath)?;
        let dbase = self.base_for(&dpath)?;
        let descendants = if s_is_dir {
            self.materialize_tree(&snode)?
        } else {
            Vec::new()
        };
        let mut res =
            self.reserve_rename(&spath, &dpath, &snode, [&sbase, &dbase], &descendants)?;
        if s_is_dir {
            self.ensure_upper_dir(&snode)?;
        } else {
            self.copy_up(&snode, true)?;
        }
        let sfd = self
            .upper_dir_fd(&sdir)?
            .ok_or_else(|| Error::upper_missing(&spath))?;
        let dfd = self.ensure_upper_dir(&ddir)?;
        if let Some((d, true)) = &dnode {
            self.keep_if_open(d, dfd.as_fd(), newname);
        }
        sys::renameat2(sfd.as_fd(), name, dfd.as_fd(), newname, 0).ctx("rename", &spath)?;
        let st = sys::lstatat(dfd.as_fd(), newname).ctx("lstat", &dpath)?;
        let hashed_version = snode.version.load(Ordering::Acquire);
        let new = self.keep_known_hash(&spath, state_of(dfd.as_fd(), newname, &st, &dpath, false)?);
        let new = match new {
            EntryState::File { hash: None, .. } if snode.writers.load(Ordering::Acquire) == 0 => {
                state_of(dfd.as_fd(), newname, &st, &dpath, true)?
            }
            n => n,
        };
        // Records: the entry itself, then each descendant (children before grandchildren).
        let mut d = Draft::new(Op::Rename, spath.clone(), sbase, EntryState::Absent);
        d.to = Some(Target {
            path: dpath.clone(),
            base: dbase,
            new,
        });
        let mut drafts = vec![d];
        for (child, is_dir, cbase) in descendants {
            let to = child.rebase(&spath, &dpath);
            let tbase = self.base_for(&to)?;
            let new = if is_dir {
                super::state::state_at(self.upper_root.as_fd(), &to, false)?
            } else {
                super::state::state_at(self.upper_root.as_fd(), &to, true)?
            };
            let mut d = Draft::new(Op::Rename, child, cbase, EntryState::Absent);
            d.to = Some(Target {
                path: to,
                base: tbase,
                new,
            });
            drafts.push(d);
        }
        // Records and node moves as one step: a last close settling concurrently records
        // under the old names before the rename, or under the new ones after it.
        let order = self.record_lock.lock().unwrap();
        for mut d in drafts {
            if let Some(t) = d.to.as_mut().filter(|t| t.path == dpath) {
                t.new = unsettled_if_changed(&snode, hashed_version, t.new.clone());
            }
            self.record_locked_in(&order, &mut res, d)?;
        }
        // Move the nodes.
        if let Some((d, last_link)) = dnode {
            // A replaced file with other hard links lives on under them.
            self.detach(&d, &ddir, newname, last_link);
            if last_link {
                if d.is_upper() {
                    d.replaced.store(true, Ordering::Release);
                }
                d.set_upper(false);
            }
        }
        let moved = if s_is_dir {
            self.nodes.under(&spath)
        } else {
            Vec::new()
        };
        for n in moved {
            if n.ino != snode.ino {
                // Everything below was materialized in the upper layer and moved with it.
                n.rebase(&spath, &dpath);
                n.set_upper(true);
                n.forget_lower_fd();
            }
        }
        // A hard link's other name moves only that name; the primary name stays.
        let moved_alias = snode.path() != spath && {
            let mut aliases = snode.aliases.lock().unwrap();
            let alias = aliases
                .iter_mut()
                .find(|(d, n)| Arc::ptr_eq(d, &sdir) && n == name);
            alias
                .map(|a| *a = (ddir.clone(), newname.to_owned()))
                .is_some()
        };
        if !moved_alias {
            snode.set_loc(Loc {
                parent: Some(ddir.clone()),
                name: newname.to_owned(),
                path: dpath,
            });
        }
        snode.set_upper(true);
        snode.forget_lower_fd();
        drop(order);
        Ok(())
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "both sides of RENAME_EXCHANGE (dir, name, path, node or stat), as rename resolved them"
    )]
    fn exchange(
        &self,
        sdir: &Arc<Node>,
        name: &OsStr,
        spath: &RelPath,
        snode: &Arc<Node>,
        ddir: &Arc<Node>,
        newname: &OsStr,
        dpath: &RelPath,
        dst: (sys::Stat, Layer),
    ) -> Result<()> {
        let dnode = self.node_for(ddir, newname, dpath.clone(), &dst.0, dst.1)?;
        self.refuse_masked(&dnode, dpath)?;
        for n in [snode, &dnode] {
            if n.kind == Kind::Dir
                && self.lower_dir_fd(n)?.is_some()
                && !self.changes.is_opaque(&n.path())
            {
                // Exchanging directories that merge host content would need per-entry moves in
                // both directions; refuse rather than record something commit cannot replay.
                return Err(Error::cross_device(&n.path()));
            }
        }
        let sbase = self.base_for(spath)?;
        let dbase = self.base_for(dpath)?;
        let link = link_bytes(snode) + link_bytes(&dnode);
        let mut res = self.reserve(1, &[spath, dpath], 2 * link, false)?;
        self.copy_up(snode, true)?;
        self.copy_up(&dnode, true)?;
        let sfd = self
            .upper_dir_fd(sdir)?
            .ok_or_else(|| Error::upper_missing(spath))?;
        let dfd = self
            .upper_dir_fd(ddir)?
            .ok_or_else(|| Error::upper_missing(dpath))?;
        sys::renameat2(sfd.as_fd(), name, dfd.as_fd(), newname, RENAME_EXCHANGE)
            .ctx("rename", spath)?;
        let snew = super::state::state_at(self.upper_root.as_fd(), spath, true)?;
        let dnew = super::state::state_at(self.upper_root.as_fd(), dpath, true)?;
        let mut d = Draft::new(Op::Exchange, spath.clone(), sbase, snew);
        d.to = Some(Target {
            path: dpath.clone(),
            base: dbase,
            new: dnew,
        });
        let order = self.record_lock.lock().unwrap();
        self.record_locked_in(&order, &mut res, d)?;
        let sloc = snode.loc();
        let dloc = dnode.loc();
        snode.set_loc(Loc {
            parent: dloc.parent,
            name: dloc.name,
            path: dloc.path,
        });
        dnode.set_loc(Loc {
            parent: sloc.parent,
            name: sloc.name,
            path: sloc.path,
        });
        drop(order);
        Ok(())
    }

    /// Journal room for a rename's records: the entry itself, then one per descendant of a
    /// directory (each names its old and new path; a symlink's target twice, as base and new).
    fn reserve_rename(
        &self,
        spath: &RelPath,
        dpath: &RelPath,
        snode: &Node,
        bases: [&Option<EntryState>; 2],
        descendants: &[(RelPath, bool, Option<EntryState>)],
    ) -> Result<Reservation<'_>> {
        let grow = dpath
            .as_bytes()
            .len()
            .saturating_sub(spath.as_bytes().len());
        // The entry's own record: both bases, and its target as the new state.
        let links: usize = bases
            .iter()
            .filter_map(|b| b.as_ref())
            .map(symlink_len)
            .sum();
        let mut bytes =
            line_bound(spath.as_bytes().len() + dpath.as_bytes().len() + links + link_bytes(snode));
        for (child, _, cbase) in descendants {
            let state = match cbase {
                Some(base) => Some(base.clone()),
                None => self.changes.get(child).map(|c| c.current),
            };
            let link = state.as_ref().map_or(0, symlink_len);
            bytes += line_bound(2 * child.as_bytes().len() + grow + 2 * link);
        }
        self.journal
            .reserve(bytes, false)
            .map_err(|e| Error::posix(e.errno(), spath))
    }
}

/// Longest symlink target Linux stores.
const PATH_MAX: usize = 4096;

/// Room a symlink's target may take in a record (its exact length is not at hand).
fn link_bytes(node: &Node) -> usize {
    if node.kind == Kind::Symlink {
        PATH_MAX
    } else {
        0
    }
}

/// Length of a symlink state's target (0 for anything else).
fn symlink_len(state: &EntryState) -> usize {
    match state {
        EntryState::Symlink { target } => target.len(),
        _ => 0,
    }
}

/// `new` without its content hash if `node`'s content changed (a writer opened it, or it was
/// truncated) since `hashed_version`, when the hash was taken outside the record lock: the
/// newer change records the settled hash itself, and a stale one must not follow it.
fn unsettled_if_changed(node: &Node, hashed_version: u64, new: EntryState) -> EntryState {
    match new {
        EntryState::File { mode, size, .. }
            if node.version.load(Ordering::Acquire) != hashed_version =>
        {
            EntryState::File {
                hash: None,
                mode,
                size,
            }
        }
        other => other,
    }
}
