//! Inodes of the merged view.
//!
//! A [`Node`] is one entry the kernel knows about. Its node id is stable for the life of the
//! mount: an untouched lower entry reports its real `st_ino` (so `git status` in the workspace
//! reuses the host's index), entries that exist only in the upper layer get ids from a range
//! above 2^62 that lower inode numbers never reach, and a copied-up file keeps its id. The map
//! `(device, st_ino) -> node id` is never pruned, so the same file always gets the same id.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use dashmap::DashMap;

use super::caller;
use super::dir_fds::{self, DirFdSlot};
use super::types::{Ino, Kind, ROOT_INO};
use crate::journal::record::Writer;
use crate::relpath::RelPath;

/// First synthetic node id; lower inode numbers at or above it are remapped.
const SYNTHETIC_BASE: u64 = 1 << 62;

/// Where a node sits in the merged tree.
#[derive(Clone)]
pub(crate) struct Loc {
    /// Parent directory node (`None` for the root).
    pub parent: Option<Arc<Node>>,
    /// Name in the parent.
    pub name: OsString,
    /// Full workspace-relative path.
    pub path: RelPath,
}

/// One entry of the merged view.
pub(crate) struct Node {
    pub ino: Ino,
    pub kind: Kind,
    loc: RwLock<Loc>,
    /// Exists in the upper layer at `path`.
    upper: AtomicBool,
    /// Removed from the namespace (still alive while open).
    pub unlinked: AtomicBool,
    /// A commit or discard took this entry out of the overlay behind the kernel's back: the
    /// kernel may still hold it under its old name until the invalidation arrives. Opening it
    /// answers `ESTALE`, so the kernel looks the name up again and opens what is there now.
    pub reverted: AtomicBool,
    /// The workspace's own file, replaced by a rename over its name: another file than the
    /// host's at that path, which must never be given this node's id (the kernel may still
    /// hold it open, with its pages and passthrough backing file).
    pub replaced: AtomicBool,
    /// Kernel lookup count.
    pub lookups: AtomicU64,
    /// Serialises copy-up of this node.
    pub copy_up_lock: Mutex<()>,
    /// Cached `O_PATH` fds of this directory in each layer, within the daemon's fd budget.
    pub lower_dir: Arc<DirFdSlot>,
    pub upper_dir: Arc<DirFdSlot>,
    /// Open handles with write access.
    pub writers: AtomicU32,
    /// Content written since it was last hashed.
    pub dirty: AtomicBool,
    /// Bumped whenever the content changes through us; opens compare it for FOPEN_KEEP_CACHE.
    pub version: AtomicU64,
    /// Version at the last open (for keep_cache).
    pub opened_version: AtomicU64,
    /// Extra names of a hard-linked upper file (the primary is `loc.path`).
    pub aliases: Mutex<Vec<(Arc<Node>, OsString)>>,
    /// No-open mode: the upper file, kept open when its last name went (the kernel may still
    /// have it open without the daemon knowing), for I/O by inode until the node is forgotten.
    pub orphan: Mutex<Option<Arc<OwnedFd>>>,
    /// The kept fd is the host's file (read-only): the first write by inode copies it into a
    /// private unnamed file first.
    pub orphan_is_host: AtomicBool,
    /// No-open mode: when the content was last written by inode (ms on the overlay's clock).
    pub last_write_ms: AtomicU64,
    /// Who wrote the content last (see [`Node::note_writer`]), for its record at the
    /// asynchronous last close or settle, when that process may be gone.
    writer: Mutex<Option<Writer>>,
    /// The request pid `writer` was resolved from (0: none yet).
    writer_tid: AtomicU32,
}

impl Node {
    pub fn new(ino: Ino, kind: Kind, loc: Loc, upper: bool) -> Node {
        Node {
            ino,
            kind,
            loc: RwLock::new(loc),
            upper: AtomicBool::new(upper),
            unlinked: AtomicBool::new(false),
            reverted: AtomicBool::new(false),
            replaced: AtomicBool::new(false),
            lookups: AtomicU64::new(0),
            copy_up_lock: Mutex::new(()),
            lower_dir: DirFdSlot::new(dir_fds::global()),
            upper_dir: DirFdSlot::new(dir_fds::global()),
            writers: AtomicU32::new(0),
            dirty: AtomicBool::new(false),
            version: AtomicU64::new(1),
            opened_version: AtomicU64::new(0),
            aliases: Mutex::new(Vec::new()),
            orphan: Mutex::new(None),
            orphan_is_host: AtomicBool::new(false),
            last_write_ms: AtomicU64::new(0),
            writer: Mutex::new(None),
            writer_tid: AtomicU32::new(0),
        }
    }

    pub fn loc(&self) -> Loc {
        self.loc.read().unwrap().clone()
    }

    pub fn path(&self) -> RelPath {
        self.loc.read().unwrap().path.clone()
    }

    /// Every name of the node: its path, then the names of its hard links.
    pub fn names(&self) -> Vec<RelPath> {
        let mut names = vec![self.path()];
        let aliases = self.aliases.lock().unwrap();
        names.extend(aliases.iter().filter_map(|(d, n)| d.path().join(n).ok()));
        names
    }

    pub fn set_loc(&self, loc: Loc) {
        *self.loc.write().unwrap() = loc;
    }

    /// Rewrites the path prefix after an ancestor was renamed.
    pub fn rebase(&self, from: &RelPath, to: &RelPath) {
        let mut loc = self.loc.write().unwrap();
        if loc.path.starts_with(from) {
            loc.path = loc.path.rebase(from, to);
        }
    }

    pub fn is_upper(&self) -> bool {
        self.upper.load(Ordering::Acquire)
    }

    pub fn set_upper(&self, v: bool) {
        self.upper.store(v, Ordering::Release);
        if !v {
            self.upper_dir.clear();
        }
    }

    /// Content changed through us: unsettled until the last writer's close hashes it (`dirty`),
    /// and cached pages of earlier opens are stale (`version`).
    pub fn mark_written(&self) {
        self.dirty.store(true, Ordering::Release);
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Remembers the process of the request being served as the writer of the content
    /// (called on a writable open and a writable handle's close, where a program that
    /// `exec`ed since its open shows under its new name).
    pub fn note_writer(&self) {
        let tid = caller::current_pid();
        if tid == 0 {
            return;
        }
        if let Some(w) = caller::writer_of(tid) {
            self.writer_tid.store(tid, Ordering::Relaxed);
            *self.writer.lock().unwrap() = Some(w);
        }
    }

    /// [`Node::note_writer`] when the request comes from another thread than the last
    /// writer's: a write by inode costs one atomic load when the writer stays the same.
    pub fn note_writer_if_new(&self) {
        let tid = caller::current_pid();
        if tid != 0 && self.writer_tid.load(Ordering::Relaxed) != tid {
            self.note_writer();
        }
    }

    /// The content's last writer, if known.
    pub fn writer(&self) -> Option<Writer> {
        self.writer.lock().unwrap().clone()
    }

    /// Marks the node as taken out of the overlay by a commit or discard (see `reverted`).
    pub fn mark_reverted(&self) {
        self.set_upper(false);
        self.forget_lower_fd();
        self.unlinked.store(true, Ordering::Release);
        self.reverted.store(true, Ordering::Release);
    }

    /// Drops cached lower fds (the host may have moved things).
    pub fn forget_lower_fd(&self) {
        self.lower_dir.clear();
    }
}

/// The node table and the id map.
pub(crate) struct NodeTable {
    nodes: DashMap<Ino, Arc<Node>>,
    ids: DashMap<(bool, u64, u64), Ino>,
    next: AtomicU64,
    lower_dev: u64,
}

impl NodeTable {
    pub fn new(root: Node, lower_dev: u64) -> NodeTable {
        let nodes = DashMap::new();
        root.lookups.store(1, Ordering::Relaxed);
        nodes.insert(ROOT_INO, Arc::new(root));
        NodeTable {
            nodes,
            ids: DashMap::new(),
            next: AtomicU64::new(SYNTHETIC_BASE),
            lower_dev,
        }
    }

    pub fn get(&self, ino: Ino) -> Option<Arc<Node>> {
        self.nodes.get(&ino).map(|n| n.clone())
    }

    pub fn root(&self) -> Arc<Node> {
        self.get(ROOT_INO).expect("root node")
    }

    /// The node id for a file identified by its layer and `(dev, st_ino)`. The layer is part
    /// of the key: upper and lower may share a device, and an inode number freed in one may
    /// be reused in the other.
    pub fn id_for(&self, upper: bool, dev: u64, st_ino: u64) -> Ino {
        let key = (upper, dev, st_ino);
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        *self.ids.entry(key).or_insert_with(|| {
            if !upper && dev == self.lower_dev && st_ino > ROOT_INO && st_ino < SYNTHETIC_BASE {
                st_ino
            } else {
                self.next.fetch_add(1, Ordering::Relaxed)
            }
        })
    }

    /// Gives a lower entry a fresh id: its inode number is already the id of a live upper
    /// entry elsewhere (a copied-up file that moved away, while the host reused the name).
    pub fn remap_lower(&self, dev: u64, st_ino: u64) -> Ino {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.ids.insert((false, dev, st_ino), id);
        id
    }

    /// Gives an upper entry a fresh id: its inode number is mapped to a node whose upper
    /// entry is gone (the filesystem reused the number for a new file).
    pub fn remap_upper(&self, dev: u64, st_ino: u64) -> Ino {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.ids.insert((true, dev, st_ino), id);
        id
    }

    /// Makes `(dev, st_ino)` resolve to `ino` (a copied-up file keeps its id).
    pub fn alias_id(&self, dev: u64, st_ino: u64, ino: Ino) {
        self.ids.insert((true, dev, st_ino), ino);
    }

    /// Returns the live node `ino`, or inserts the one `make` builds. Updates the location of an
    /// existing node (the same file found under a new name) only when it has none.
    pub fn get_or_insert(&self, ino: Ino, make: impl FnOnce() -> Node) -> Arc<Node> {
        self.nodes
            .entry(ino)
            .or_insert_with(|| Arc::new(make()))
            .clone()
    }

    /// Replaces whatever node `ino` was with a new one (the path now holds a different kind).
    pub fn replace(&self, node: Node) -> Arc<Node> {
        let n = Arc::new(node);
        self.nodes.insert(n.ino, n.clone());
        n
    }

    /// Counts one kernel lookup of `node`, the node a reply is about to name. Done under the
    /// table's entry lock, the lock [`NodeTable::forget`] takes: a `forget` of the kernel's
    /// previous references that ran between finding the node and counting it has removed it
    /// from the table, and the kernel would then hold an id the daemon no longer knows (every
    /// later request for it failing with `ENOENT`). Such a node is put back. If the id now
    /// names another node (replaced meanwhile), that one is counted and returned: it is what
    /// the id means from now on.
    pub fn count_lookup(&self, node: &Arc<Node>) -> Arc<Node> {
        match self.nodes.entry(node.ino) {
            dashmap::mapref::entry::Entry::Occupied(e) => {
                e.get().lookups.fetch_add(1, Ordering::AcqRel);
                e.get().clone()
            }
            dashmap::mapref::entry::Entry::Vacant(e) => {
                node.lookups.fetch_add(1, Ordering::AcqRel);
                e.insert(node.clone());
                node.clone()
            }
        }
    }

    /// Applies a kernel `forget`.
    pub fn forget(&self, ino: Ino, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        if let dashmap::mapref::entry::Entry::Occupied(e) = self.nodes.entry(ino) {
            let left = e.get().lookups.fetch_sub(
                n.min(e.get().lookups.load(Ordering::Relaxed)),
                Ordering::AcqRel,
            );
            if left <= n {
                e.remove();
            }
        }
    }

    /// All live nodes whose path lies under `prefix` (for renames and invalidation).
    pub fn under(&self, prefix: &RelPath) -> Vec<Arc<Node>> {
        self.nodes
            .iter()
            .filter(|e| e.value().path().starts_with(prefix))
            .map(|e| e.value().clone())
            .collect()
    }

    /// Every live node.
    pub fn all(&self) -> Vec<Arc<Node>> {
        self.nodes.iter().map(|e| e.value().clone()).collect()
    }

    /// The live node currently at `path`, if any.
    pub fn at_path(&self, path: &RelPath) -> Option<Arc<Node>> {
        self.nodes
            .iter()
            .find(|e| !e.value().unlinked.load(Ordering::Relaxed) && &e.value().path() == path)
            .map(|e| e.value().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> NodeTable {
        let root = Node::new(
            ROOT_INO,
            Kind::Dir,
            Loc {
                parent: None,
                name: Default::default(),
                path: RelPath::root(),
            },
            false,
        );
        NodeTable::new(root, 1)
    }

    fn file(t: &NodeTable, ino: Ino) -> Node {
        Node::new(
            ino,
            Kind::File,
            Loc {
                parent: Some(t.root()),
                name: "f".into(),
                path: RelPath::root().join(std::ffi::OsStr::new("f")).unwrap(),
            },
            false,
        )
    }

    /// The interleaving behind "an existing file answers ENOENT under load": a lookup finds
    /// the node, the kernel's forget of its earlier reference removes it, then the lookup
    /// counts. The id the reply names must still be known afterwards.
    #[test]
    fn a_lookup_counted_after_a_racing_forget_keeps_the_node() {
        let t = table();
        // Nodes are built before the table's entry lock is taken (building one reads the
        // table for the root).
        let made = file(&t, 7);
        let found = t.get_or_insert(7, || made);
        t.count_lookup(&found);
        // The lookup in flight has found the node; the kernel forgets its old reference.
        let made = file(&t, 7);
        let again = t.get_or_insert(7, || made);
        t.forget(7, 1);
        assert!(
            t.get(7).is_none(),
            "forget of the last reference removes the node"
        );
        let counted = t.count_lookup(&again);
        assert!(Arc::ptr_eq(&counted, &again));
        let live = t.get(7).expect("the id the reply names is known");
        assert_eq!(live.lookups.load(Ordering::Acquire), 1);
        t.forget(7, 1);
        assert!(t.get(7).is_none());
    }

    /// When the id was given to a new node meanwhile, that node is counted and returned.
    #[test]
    fn a_lookup_counts_the_node_the_id_names_now() {
        let t = table();
        let old = Arc::new(file(&t, 9));
        let made = file(&t, 9);
        let new = t.get_or_insert(9, || made);
        let counted = t.count_lookup(&old);
        assert!(Arc::ptr_eq(&counted, &new));
        assert_eq!(new.lookups.load(Ordering::Acquire), 1);
        assert_eq!(old.lookups.load(Ordering::Acquire), 0);
    }
}
