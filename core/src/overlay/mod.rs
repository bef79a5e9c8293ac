//! The merged view: the host project (lower, read-only) under the workspace's upper layer.
//!
//! FUSE-shaped and inode-based, but free of any FUSE crate, so it is tested directly.
//!
//! Resolution of `name` in directory `D` (path `P/name`):
//! 1. hidden by policy → ENOENT;
//! 2. present in `upper/P/name` → the upper entry;
//! 3. touched in the change set (a whiteout), or `D` is opaque → ENOENT;
//! 4. present in the lower `P/name` → the lower entry.
//!
//! Every change is first made in the upper layer, then appended to the journal and applied to
//! the [`ChangeSet`] under one short lock, so the journal order is the change order. A crash
//! between the two leaves the journal behind the upper layer; [`Overlay::new`] reconciles them
//! (appends records for what the upper layer really holds) so nothing the container wrote is
//! ever invisible to `status` or stale in `verify`.
//!
//! Submodules: `types` (the FUSE-shaped request and reply types), `node` (inodes and ids),
//! `dir_fds` (the daemon-wide budget of cached directory fds), `changes` (change set),
//! `copy_up`, `reconcile` (recovery: the journal brought in line with the upper layer),
//! `namespace` (lookup, setattr, create/remove/rename/link), `files` (handles and I/O),
//! `caller` (attribution of records to processes), `by_inode` (handle-less I/O and lazy hashing of the no-open mode), `dirs`
//! (merged listings), `xattr`, `merged` (a commit's merge written into the workspace), `state` (reading entry states for the journal and status),
//! `revert` (paths leaving the overlay after a commit or discard, and the kernel told to forget
//! them); `tests` holds unit tests of these internals.

mod by_inode;
pub mod caller;
mod changes;
mod copy_up;
mod dir_fds;
mod dirs;
mod files;
mod merged;
mod namespace;
mod node;
mod reconcile;
mod revert;
mod state;
mod undo;
pub(crate) use undo::Reverted;
#[cfg(test)]
mod tests;
pub mod types;
mod xattr;

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;

pub use changes::{Change, ChangeSet};
pub use dirs::NO_HANDLE;
pub use types::*;

use crate::error::{Error, IoContext, Result};
use crate::journal::record::{Draft, EntryState, Record};
use crate::journal::{line_bound, Journal, Reservation};
use crate::policy::Policy;
use crate::relpath::RelPath;
use crate::sys::{self, Stat};
use dir_fds::DirFdSlot;
use files::Handle;
use node::{Loc, Node, NodeTable};

/// The overlay. All methods are `&self` and safe to call concurrently.
pub struct Overlay {
    lower_root: OwnedFd,
    upper_root: OwnedFd,
    work_root: OwnedFd,
    lower_dev: u64,
    upper_dev: u64,
    nodes: NodeTable,
    changes: ChangeSet,
    handles: DashMap<Fh, Arc<Handle>>,
    /// No-open mode is on: files are opened by the kernel alone, I/O arrives by inode.
    handleless: AtomicBool,
    /// Files written by inode whose new content is not hashed yet (no-open mode): held here
    /// so a kernel `forget` cannot drop them before [`Overlay::settle_written`] records them.
    unsettled: DashMap<Ino, Arc<Node>>,
    dir_handles: DashMap<Fh, Arc<dirs::DirHandle>>,
    /// Listings of directories read without a handle, kept between `readdir` calls.
    dir_listings: DashMap<Ino, Arc<Vec<DirEntry>>>,
    next_fh: AtomicU64,
    journal: Arc<Journal>,
    policy: Arc<Policy>,
    /// Orders journal appends with change-set updates (short: one write(2)). Renames, links
    /// and unlinks also move a node's names under it, and a last close reads the names under
    /// it, so a write record always goes to the names the file has at that point of the
    /// journal (RELEASE is asynchronous: the file may be renamed or unlinked by then).
    record_lock: Mutex<()>,
    /// Serialises renames (they rewrite node paths), like the kernel's rename mutex.
    rename_lock: Mutex<()>,
    /// Writable opens, truncates and last closes hold it shared; a commit or discard holds it
    /// exclusively while it takes paths out of the overlay, so no writer can open (or finish
    /// closing) a file between the busy check and the removal of its upper copy.
    revert_gate: RwLock<()>,
    invalidator: RwLock<Option<Arc<dyn Invalidator>>>,
    /// FICLONE failed once: stop trying.
    no_reflink: AtomicBool,
    tmp_counter: AtomicU64,
    /// Recovery found the journal behind the upper layer but had no room to record it
    /// (disk full at open): [`Overlay::finish_deferred_recovery`] records it later.
    recovery_deferred: Mutex<bool>,
    /// Host files hashed by [`Overlay::lower_state_and_stat`] (tests count them).
    #[cfg(test)]
    pub(crate) host_hashes: AtomicU64,
}

impl Overlay {
    /// Opens the overlay of `project` with its upper and work dirs (same filesystem), replaying
    /// `replay` into the change set and adopting upper entries the journal missed.
    pub fn new(
        project: &Path,
        upper: &Path,
        work: &Path,
        journal: Arc<Journal>,
        policy: Arc<Policy>,
        replay: &[Record],
    ) -> Result<Arc<Overlay>> {
        let root = RelPath::root();
        let open = |p: &Path| {
            sys::open_root(p)
                .map_err(|e| Error::Workspace(format!("cannot open {}: {e}", p.display())))
        };
        let lower_root = open(project)?;
        let upper_root = open(upper)?;
        let work_root = open(work)?;
        let lower_dev = sys::fstat(lower_root.as_fd()).ctx("stat", &root)?.st_dev;
        let upper_dev = sys::fstat(upper_root.as_fd()).ctx("stat", &root)?.st_dev;
        let root_node = Node::new(
            ROOT_INO,
            Kind::Dir,
            Loc {
                parent: None,
                name: Default::default(),
                path: RelPath::root(),
            },
            true,
        );
        let ov = Arc::new(Overlay {
            lower_root,
            upper_root,
            work_root,
            lower_dev,
            upper_dev,
            nodes: NodeTable::new(root_node, lower_dev),
            changes: ChangeSet::replay_with(replay, Some(policy.clone())),
            handles: DashMap::new(),
            handleless: AtomicBool::new(false),
            unsettled: DashMap::new(),
            dir_handles: DashMap::new(),
            dir_listings: DashMap::new(),
            next_fh: AtomicU64::new(1),
            journal,
            policy,
            record_lock: Mutex::new(()),
            rename_lock: Mutex::new(()),
            revert_gate: RwLock::new(()),
            invalidator: RwLock::new(None),
            no_reflink: AtomicBool::new(false),
            tmp_counter: AtomicU64::new(0),
            recovery_deferred: Mutex::new(false),
            #[cfg(test)]
            host_hashes: AtomicU64::new(0),
        });
        ov.clean_work_dir();
        ov.reconcile(replay)?;
        Ok(ov)
    }

    /// Registers the kernel-cache invalidator (the FUSE adapter's notifier).
    pub fn set_invalidator(&self, inval: Arc<dyn Invalidator>) {
        *self.invalidator.write().unwrap() = Some(inval);
    }

    /// The change set (read-only use by the workspace: status, commit).
    pub fn changes(&self) -> &ChangeSet {
        &self.changes
    }

    /// The journal.
    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// The policy.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// `O_PATH` fd of the project root (the lower layer).
    pub(crate) fn lower_root(&self) -> &OwnedFd {
        &self.lower_root
    }

    /// `O_PATH` fd of the upper layer root.
    pub(crate) fn upper_root(&self) -> &OwnedFd {
        &self.upper_root
    }

    /// Flushes journal and upper data (daemon shutdown).
    pub fn sync_all(&self) -> Result<()> {
        if let Err(e) = self.settle_written(None) {
            tracing::warn!(error = %e, "settling written files at shutdown (recovery re-hashes them)");
        }
        let _gate = self.revert_gate.read().unwrap();
        for h in self.handles.iter() {
            if h.writable {
                let _ = self.finish_write(h.value());
            }
        }
        sys::syncfs(self.upper_root.as_fd()).ctx("syncfs", &RelPath::root())?;
        self.journal.sync()
    }

    // ----- helpers shared by the submodules -----

    /// True if `node` (at `path`) is a masked secret: a host entry a hide rule matches. It is
    /// listed with its metadata (so git sees it unchanged) but never opened, listed inside,
    /// changed, moved or removed through the mount. A hidden name the workspace created itself
    /// (in the upper layer) is not masked: it is the workspace's own, and never committed.
    pub(crate) fn masked(&self, node: &Node, path: &RelPath) -> bool {
        node.ino != ROOT_INO
            && !node.is_upper()
            && self.policy.is_hidden(path, node.kind == Kind::Dir)
    }

    /// `EACCES` for a masked secret (see [`Overlay::masked`]).
    pub(crate) fn refuse_masked(&self, node: &Node, path: &RelPath) -> Result<()> {
        if self.masked(node, path) {
            return Err(Error::permission_denied(path));
        }
        Ok(())
    }

    fn node(&self, ino: Ino) -> Result<Arc<Node>> {
        self.nodes.get(ino).ok_or(Error::UnknownInode(ino))
    }

    fn new_fh(&self) -> Fh {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    fn tmp_name(&self) -> String {
        format!(
            "tmp.{}.{}",
            std::process::id(),
            self.tmp_counter.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// `O_PATH` fd of directory `node` in the lower layer (cached within the fd budget), or
    /// `None` if the lower layer has no directory at its path. Any other failure, an fd
    /// shortage included, is an error: a directory is never absent because it could not be
    /// opened.
    fn lower_dir_fd(&self, node: &Node) -> Result<Option<Arc<OwnedFd>>> {
        layer_dir_fd(&node.lower_dir, &self.lower_root, node)
    }

    /// `O_PATH` fd of directory `node` in the upper layer, or `None` if it has no upper
    /// directory (errors as for [`Overlay::lower_dir_fd`]).
    fn upper_dir_fd(&self, node: &Node) -> Result<Option<Arc<OwnedFd>>> {
        if !node.is_upper() {
            return Ok(None);
        }
        layer_dir_fd(&node.upper_dir, &self.upper_root, node)
    }

    /// Resolves `name` in directory `dir` in the merged view.
    fn resolve(&self, dir: &Node, name: &OsStr, path: &RelPath) -> Result<Option<(Stat, Layer)>> {
        if let Some(ufd) = self.upper_dir_fd(dir)? {
            match sys::lstatat(ufd.as_fd(), name) {
                Ok(st) => return Ok(Some((st, Layer::Upper))),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(Error::io("lstat", path, e)),
            }
        }
        if self.changes.contains(path) || self.changes.is_opaque(&dir.path()) {
            return Ok(None);
        }
        let Some(lfd) = self.lower_dir_fd(dir)? else {
            return Ok(None);
        };
        match sys::lstatat(lfd.as_fd(), name) {
            Ok(st) => Ok(Some((st, Layer::Lower))),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                Ok(None)
            }
            Err(e) => Err(Error::io("lstat", path, e)),
        }
    }

    /// Finds or creates the node for a resolved entry, and counts a kernel lookup.
    fn node_for(
        &self,
        dir: &Arc<Node>,
        name: &OsStr,
        path: RelPath,
        st: &Stat,
        layer: Layer,
    ) -> Result<Arc<Node>> {
        let dev = if layer == Layer::Upper {
            self.upper_dev
        } else {
            self.lower_dev
        };
        let mut ino = self.nodes.id_for(layer == Layer::Upper, dev, st.st_ino);
        let kind = Kind::from_mode(st.st_mode);
        if let Some(n) = self.nodes.get(ino) {
            if layer == Layer::Lower {
                // A live upper entry elsewhere has this id, or a removed upper file (a process
                // may hold it open, the kernel caching its pages under this id): the host's
                // file is another file and gets an id of its own.
                let unlinked = n.unlinked.load(Ordering::Acquire);
                let taken = (n.is_upper() && (unlinked || n.path() != path))
                    || (unlinked && n.replaced.load(Ordering::Acquire));
                if taken {
                    ino = self.nodes.remap_lower(dev, st.st_ino);
                }
            } else if self.upper_id_is_stale(&n, &path, st)? {
                ino = self.nodes.remap_upper(dev, st.st_ino);
            }
        }
        let make = || {
            Node::new(
                ino,
                kind,
                Loc {
                    parent: Some(dir.clone()),
                    name: name.to_owned(),
                    path: path.clone(),
                },
                layer == Layer::Upper,
            )
        };
        let mut node = self.nodes.get_or_insert(ino, make);
        if node.kind != kind {
            node = self.nodes.replace(make());
        } else if node.unlinked.load(Ordering::Acquire) || node.path() != path {
            // The same file reached under another name (hard link) or after the host moved it:
            // follow it to where it was just found.
            if node.unlinked.load(Ordering::Acquire) || !node.is_upper() {
                node.unlinked.store(false, Ordering::Release);
                node.reverted.store(false, Ordering::Release);
                node.set_loc(Loc {
                    parent: Some(dir.clone()),
                    name: name.to_owned(),
                    path,
                });
                node.forget_lower_fd();
            }
        }
        if node.is_upper() != (layer == Layer::Upper) {
            node.set_upper(layer == Layer::Upper);
        }
        Ok(node)
    }

    /// True if `node`, the node the id map gives for the upper entry `path` (stat `st`), is
    /// not that entry: its upper file was removed behind the kernel's back (a commit or
    /// discard reverted it, or the container unlinked it) and the filesystem reused the inode
    /// number for the entry now found. A hard link (same inode, another name of a live node)
    /// is not stale. Reusing such a node would attach a new file to the old path, so writes to
    /// the new file would be journaled under the old one.
    fn upper_id_is_stale(&self, node: &Node, path: &RelPath, st: &Stat) -> Result<bool> {
        if node.unlinked.load(Ordering::Acquire) {
            return Ok(true);
        }
        let loc = node.loc();
        if loc.path == *path {
            return Ok(false);
        }
        // Another name: a hard link only if the node's own path still holds this inode.
        let Some(parent) = loc.parent.as_ref() else {
            return Ok(true);
        };
        let Some(fd) = self.upper_dir_fd(parent)? else {
            return Ok(true);
        };
        match sys::lstatat(fd.as_fd(), &loc.name) {
            Ok(own) => Ok(own.st_ino != st.st_ino),
            Err(e) if sys::is_absent(&e) => Ok(true),
            Err(e) => Err(Error::io("lstat", &loc.path, e)),
        }
    }

    fn attr_of(&self, ino: Ino, st: &Stat) -> Attr {
        attr_from_stat(ino, st)
    }

    /// Stats `node` in its current layer.
    fn stat_node(&self, node: &Node) -> Result<Stat> {
        if node.ino == ROOT_INO {
            let fd = if node.is_upper() {
                &self.upper_root
            } else {
                &self.lower_root
            };
            let mut st = sys::fstat(fd.as_fd()).ctx("stat", &RelPath::root())?;
            // The root shows the project's own ownership and mode.
            let lst = sys::fstat(self.lower_root.as_fd()).ctx("stat", &RelPath::root())?;
            st.st_uid = lst.st_uid;
            st.st_gid = lst.st_gid;
            st.st_mode = lst.st_mode;
            return Ok(st);
        }
        let loc = node.loc();
        let parent = loc.parent.as_ref().expect("non-root has a parent");
        let fd = if node.is_upper() {
            self.upper_dir_fd(parent)?
        } else {
            self.lower_dir_fd(parent)?
        }
        .ok_or_else(|| Error::not_found(&loc.path))?;
        sys::lstatat(fd.as_fd(), &loc.name).ctx("lstat", &loc.path)
    }

    /// Appends a record and applies it to the change set, in one order.
    fn record(&self, draft: Draft) -> Result<Record> {
        let draft = attributed(draft);
        let _g = self.record_lock.lock().unwrap();
        let rec = self.journal.append(draft)?;
        self.changes.apply(&rec);
        Ok(rec)
    }

    /// [`Overlay::record`], then syncs the journal: a commit's control records (begin, end)
    /// go through the one recording path like every other record.
    pub(crate) fn record_durable(&self, draft: Draft) -> Result<Record> {
        let rec = self.record(draft)?;
        self.journal.sync()?;
        Ok(rec)
    }

    /// [`Overlay::record`] for a caller that holds the record lock (`order`): it appends
    /// several records, or moves nodes, as one step that no other record can come between.
    fn record_locked(&self, order: &MutexGuard<'_, ()>, draft: Draft) -> Result<Record> {
        let _ = order;
        let draft = attributed(draft);
        let rec = self.journal.append(draft)?;
        self.changes.apply(&rec);
        Ok(rec)
    }

    /// Claims journal room for `records` records naming `paths` (and symlink targets of
    /// `link_bytes` in all) before an operation changes the upper layer: on a full disk the
    /// operation then fails with `ENOSPC` having changed nothing, instead of changing the upper
    /// layer and failing to record it. `frees`: the operation frees space (see
    /// [`crate::journal::FREEING_MARGIN`]).
    pub(crate) fn reserve(
        &self,
        records: usize,
        paths: &[&RelPath],
        link_bytes: usize,
        frees: bool,
    ) -> Result<Reservation<'_>> {
        let text: usize = paths.iter().map(|p| p.as_bytes().len()).sum::<usize>() + link_bytes;
        self.journal
            .reserve(records as u64 * line_bound(text), frees)
            .map_err(|e| match paths.first() {
                Some(p) => Error::posix(e.errno(), p),
                None => e,
            })
    }

    /// Like [`Overlay::record`], in room claimed by [`Overlay::reserve`].
    fn record_in(&self, res: &mut Reservation<'_>, draft: Draft) -> Result<Record> {
        let draft = attributed(draft);
        let _g = self.record_lock.lock().unwrap();
        let rec = self.journal.append_reserved(draft, res)?;
        self.changes.apply(&rec);
        Ok(rec)
    }

    /// [`Overlay::record_in`] for a caller that holds the record lock (`order`), like
    /// [`Overlay::record_locked`].
    fn record_locked_in(
        &self,
        order: &MutexGuard<'_, ()>,
        res: &mut Reservation<'_>,
        draft: Draft,
    ) -> Result<Record> {
        let _ = order;
        let draft = attributed(draft);
        let rec = self.journal.append_reserved(draft, res)?;
        self.changes.apply(&rec);
        Ok(rec)
    }

    /// The base to record for `path`: its lower state on first touch, else `None`.
    fn base_for(&self, path: &RelPath) -> Result<Option<EntryState>> {
        if self.changes.contains(path) {
            return Ok(None);
        }
        Ok(Some(self.lower_state(path)?))
    }

    fn invalidate_entry(&self, parent: Ino, name: &OsStr) {
        if let Some(inv) = &*self.invalidator.read().unwrap() {
            inv.inval_entry(parent, name);
        }
    }

    fn invalidate_inode(&self, ino: Ino) {
        if let Some(inv) = &*self.invalidator.read().unwrap() {
            inv.inval_inode(ino);
        }
    }

    /// The overlay changed `paths` on its own initiative (a restore), not at the kernel's
    /// request: the kernel forgets each name's dentry, the attributes and pages of every node
    /// that had one of these paths (one a process still holds open included: a node id can
    /// come back for the host's file once the overlay's version is gone), and the parents'
    /// listings. Call [`Overlay::settle_kernel_caches`] afterwards, holding no lock.
    pub(crate) fn changed_behind_kernel(&self, paths: &[RelPath]) {
        if paths.is_empty() {
            return;
        }
        let set: std::collections::HashSet<&RelPath> = paths.iter().collect();
        for node in self.nodes.all() {
            if set.contains(&node.path()) {
                self.invalidate_inode(node.ino);
            }
        }
        for path in paths {
            if let Some((parent_path, name)) = path.split_last() {
                if let Some(parent) = self.nodes.at_path(&parent_path) {
                    self.invalidate_entry(parent.ino, name);
                    self.invalidate_inode(parent.ino);
                }
            }
        }
    }

    /// The host changed `path` (from a watcher): drop cached state and tell the kernel,
    /// unless the overlay has its own version of that path.
    pub fn lower_changed(&self, path: &RelPath) {
        if self.changes.contains(path) {
            return;
        }
        if let Some(node) = self.nodes.at_path(path) {
            if !node.is_upper() {
                node.forget_lower_fd();
                self.invalidate_inode(node.ino);
            }
        }
        if let Some((parent_path, name)) = path.split_last() {
            if let Some(parent) = self.nodes.at_path(&parent_path) {
                parent.forget_lower_fd();
                self.invalidate_entry(parent.ino, name);
                self.invalidate_inode(parent.ino);
            }
        }
    }

    /// `statfs` of the upper layer's filesystem.
    pub fn statfs(&self) -> Result<StatFs> {
        let s = sys::fstatvfs(self.upper_root.as_fd()).ctx("statfs", &RelPath::root())?;
        Ok(StatFs {
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: s.f_files,
            ffree: s.f_ffree,
            bsize: s.f_bsize as u32,
            namelen: 255,
            frsize: s.f_frsize as u32,
        })
    }

    /// Permission check for `access(2)` (the kernel checks with `default_permissions`; this
    /// answers existence and the simple mode test).
    pub fn access(&self, req: &Req, ino: Ino, mask: i32) -> Result<()> {
        let node = self.node(ino)?;
        if mask != libc::F_OK {
            self.refuse_masked(&node, &node.path())?;
        }
        let st = self.stat_node(&node)?;
        if mask == libc::F_OK || req.uid == 0 {
            return Ok(());
        }
        let mode = st.st_mode;
        let bits = if req.uid == st.st_uid {
            (mode >> 6) & 7
        } else if req.gid == st.st_gid {
            (mode >> 3) & 7
        } else {
            mode & 7
        };
        if (mask as u32) & !bits & 7 != 0 {
            return Err(Error::permission_denied(&node.path()));
        }
        Ok(())
    }

    /// Applies a kernel `forget`.
    pub fn forget(&self, ino: Ino, nlookup: u64) {
        self.nodes.forget(ino, nlookup);
    }

    /// What the daemon knows of node `ino`, for a log line about a request that failed in a
    /// way it should not (an inode the kernel holds answering `ENOENT`).
    pub fn describe_node(&self, ino: Ino) -> String {
        let Some(n) = self.nodes.get(ino) else {
            return format!("node {ino} unknown to the table");
        };
        let names: Vec<String> = n.names().iter().map(|p| p.to_string()).collect();
        format!(
            "node {ino} {:?} names {names:?} upper={} unlinked={} reverted={} lookups={} writers={}",
            n.kind,
            n.is_upper(),
            n.unlinked.load(Ordering::Acquire),
            n.reverted.load(Ordering::Acquire),
            n.lookups.load(Ordering::Acquire),
            n.writers.load(Ordering::Acquire),
        )
    }

    /// Paths a container has open for writing (or written and not yet settled by the last
    /// close): their content is not final, so commit leaves them pending.
    pub(crate) fn busy_paths(&self) -> std::collections::HashSet<RelPath> {
        let unsettled = self.unsettled.iter().map(|e| e.value().clone());
        self.nodes
            .all()
            .into_iter()
            .chain(unsettled)
            .filter(|n| {
                !n.unlinked.load(Ordering::Acquire)
                    && (n.writers.load(Ordering::Acquire) > 0 || n.dirty.load(Ordering::Acquire))
            })
            .map(|n| n.path())
            .collect()
    }
}

/// The cached fd of `node`'s directory in the layer rooted at `root`, opened on demand.
/// `None` only if a component of the path is missing or not a directory there (`ENOENT`,
/// `ENOTDIR`, or `ELOOP`: a symlink met under `O_NOFOLLOW` is not a directory).
fn layer_dir_fd(
    slot: &Arc<DirFdSlot>,
    root: &OwnedFd,
    node: &Node,
) -> Result<Option<Arc<OwnedFd>>> {
    match slot.get_or_open(|| sys::walk_dirs(root.as_fd(), &node.path())) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if sys::is_absent(&e) => Ok(None),
        Err(e) => Err(Error::io("open", &node.path(), e)),
    }
}

/// The number of directory fds the daemon keeps cached at most (half its soft fd limit at the
/// first use; see `overlay/dir_fds.rs`).
pub fn dir_fd_budget() -> usize {
    dir_fds::global().limit()
}

/// Converts a `stat` into an [`Attr`] with the given node id.
pub(crate) fn attr_from_stat(ino: Ino, st: &Stat) -> Attr {
    let t = |s: i64, ns: i64| {
        if s >= 0 {
            UNIX_EPOCH + Duration::new(s as u64, ns as u32)
        } else {
            UNIX_EPOCH - Duration::new((-s) as u64, 0)
        }
    };
    Attr {
        ino,
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        atime: t(st.st_atime, st.st_atime_nsec),
        mtime: t(st.st_mtime, st.st_mtime_nsec),
        ctime: t(st.st_ctime, st.st_ctime_nsec),
        kind: Kind::from_mode(st.st_mode),
        perm: (st.st_mode & 0o7777) as u16,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev as u32,
        blksize: st.st_blksize as u32,
    }
}

/// Seconds/nanoseconds of a `SystemTime` for utimensat.
pub(crate) fn to_timespec(t: SystemTime) -> sys::TimeSpec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => sys::TimeSpec::At(d.as_secs() as i64, d.subsec_nanos() as i64),
        Err(e) => sys::TimeSpec::At(-(e.duration().as_secs() as i64), 0),
    }
}

/// `draft` with its writer: the process of the FUSE request this thread serves, unless the
/// caller named one (a content record names the file's last writer).
fn attributed(mut draft: Draft) -> Draft {
    if draft.by.is_none() {
        draft.by = caller::current();
    }
    draft
}
