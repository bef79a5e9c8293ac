//! Restore: the workspace's view (all, or chosen paths) back to a checkpoint, live.
//!
//! Driven through the overlay's own operations, as the kernel would drive them, so every step
//! is journaled, the change set follows, whiteouts and opaque directories come out as they do
//! for any change, and nothing is written behind the overlay's back:
//! 1. paths whose checkpoint state is the host's (not changed then, or changed back to the
//!    base the host still has) are discarded: they leave the change set and the upper layer
//!    (a directory with paths below it to make is kept when the view has it as a plain
//!    directory; otherwise it is discarded and the paths below are made again in step 2);
//! 2. every other selected path, parents first, is made to hold its checkpoint state: a file
//!    or symlink is written under a temporary name in its directory and renamed over the path
//!    (so a kill -9 leaves the old or the new version, never a torn one), a directory gets its
//!    mode (or is made again, opaque, when the checkpoint had the host's one replaced), an
//!    absent path is removed (a directory with everything in it);
//! 3. the kernel is told to drop what it cached of every path touched.
//!
//! A temporary file a crash left behind is removed by the next restore.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicU64, Ordering};

use super::Checkpoint;
use crate::error::{Error, Result};
use crate::journal::record::{CheckpointEntry, EntryState};
use crate::overlay::{Kind, Overlay, Req};
use crate::relpath::RelPath;
use crate::store::ContentStore;

/// Names of the temporary files a restore writes before renaming them into place.
pub const TMP_PREFIX: &[u8] = b".wsfs-restore-";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What a path must become.
enum Goal<'a> {
    /// What the host has: the path leaves the change set.
    Host,
    /// The checkpoint's state.
    Entry(&'a CheckpointEntry),
}

/// Returns the view at or below `paths` (all when empty) to `cp`; the paths whose state
/// changed, sorted.
pub(crate) fn restore(
    ov: &Overlay,
    store: &ContentStore,
    cp: &Checkpoint,
    paths: &[RelPath],
) -> Result<Vec<RelPath>> {
    let selected = |p: &RelPath| paths.is_empty() || paths.iter().any(|s| p.starts_with(s));
    let mut touched = Touched::default();
    remove_leftovers(ov, &mut touched)?;
    let snapshot = ov.changes().snapshot();
    let mut goals: BTreeMap<RelPath, Goal> = BTreeMap::new();
    for e in cp.entries.iter().filter(|e| selected(&e.path)) {
        goals.insert(e.path.clone(), Goal::Entry(e));
    }
    let pending = crate::commit::status::pending(ov)?;
    let now = snapshot
        .iter()
        .map(|(p, _)| p)
        .chain(pending.iter().map(|c| &c.path));
    for p in now.filter(|p| selected(p)) {
        goals.entry(p.clone()).or_insert(Goal::Host);
    }
    // Below a directory that hides the host's, the host's state is absence.
    let opaque_above = |p: &RelPath| {
        p.ancestors().any(|a| match goals.get(&a) {
            Some(Goal::Entry(e)) => e.opaque && e.state.is_dir(),
            Some(Goal::Host) => false,
            None => ov.changes().is_opaque(&a),
        })
    };
    let hidden: HashSet<RelPath> = goals
        .iter()
        .filter(|(p, g)| matches!(g, Goal::Host) && opaque_above(p))
        .map(|(p, _)| p.clone())
        .collect();
    // A path whose goal is the host's state is discarded, unless a path below it must be
    // made different (a discard takes everything below with it).
    let mut discard = Vec::new();
    let mut made: Vec<&RelPath> = Vec::new();
    for (p, g) in goals.iter().rev() {
        let host_goal = match g {
            _ if opaque_above(p) => false,
            Goal::Host => true,
            Goal::Entry(e) => {
                e.state.same_state(&e.base)
                    && !e.opaque
                    && ov.changes().contains(p)
                    && ov.lower_state(p)?.same_state(&e.base)
            }
        };
        let below = made.iter().any(|m| m.starts_with(p));
        // With paths below to make, a directory the view has (not hiding the host's) only
        // needs its mode; anything else is discarded first and the paths below made after.
        let keep_dir = below && matches!(view_state(ov, p)?, (EntryState::Dir { .. }, false));
        if host_goal && !keep_dir {
            if ov.changes().contains(p) {
                discard.push(p.clone());
            }
        } else {
            made.push(p);
        }
    }
    if !discard.is_empty() {
        let report = crate::commit::discard(ov, &discard)?;
        touched.changed.extend(report.discarded);
        touched.names.extend(discard.iter().cloned());
    }
    let discarded: HashSet<&RelPath> = discard.iter().collect();
    for (p, g) in &goals {
        if discarded.contains(p) {
            continue;
        }
        let want = match g {
            Goal::Entry(e) => (*e).clone(),
            Goal::Host if hidden.contains(p) => CheckpointEntry {
                path: p.clone(),
                base: EntryState::Absent,
                state: EntryState::Absent,
                opaque: false,
                owner: None,
            },
            Goal::Host => host_entry(ov, p)?,
        };
        if make(ov, store, &want, &mut touched)? {
            touched.changed.push(p.clone());
        }
    }
    ov.changed_behind_kernel(&touched.names);
    ov.settle_kernel_caches();
    let mut out = touched.changed;
    out.sort();
    out.dedup();
    Ok(out)
}

/// What the restore changed: paths to report, names the kernel must forget.
#[derive(Default)]
struct Touched {
    changed: Vec<RelPath>,
    names: Vec<RelPath>,
}

/// The host's state of `p` as an entry (a directory kept in the overlay for what is below it).
fn host_entry(ov: &Overlay, p: &RelPath) -> Result<CheckpointEntry> {
    let state = ov.lower_state(p)?;
    Ok(CheckpointEntry {
        path: p.clone(),
        base: state.clone(),
        state,
        opaque: false,
        owner: None,
    })
}

/// Removes temporary files an interrupted restore left in the view.
fn remove_leftovers(ov: &Overlay, touched: &mut Touched) -> Result<()> {
    for (p, c) in ov.changes().snapshot() {
        if p.file_name().as_bytes().starts_with(TMP_PREFIX) && !c.current.is_absent() {
            remove_tree(ov, &p, touched)?;
        }
    }
    Ok(())
}

/// The current state of `p` in the merged view, and whether it is an opaque directory.
fn view_state(ov: &Overlay, p: &RelPath) -> Result<(EntryState, bool)> {
    match ov.node_at(p) {
        Ok(node) if node.is_upper() => Ok((ov.upper_state(p, false)?, ov.changes().is_opaque(p))),
        Ok(_) => Ok((ov.lower_state(p)?, false)),
        Err(Error::NotFound(_) | Error::NotADirectory(_)) => Ok((EntryState::Absent, false)),
        Err(e) => Err(e),
    }
}

/// Makes the view at `want.path` hold `want.state`; true when something changed.
fn make(
    ov: &Overlay,
    store: &ContentStore,
    want: &CheckpointEntry,
    touched: &mut Touched,
) -> Result<bool> {
    let p = &want.path;
    let (now, opaque) = view_state(ov, p)?;
    let same = match (&now, &want.state) {
        (EntryState::Dir { .. }, EntryState::Dir { .. }) => {
            now == want.state && (opaque || !want.opaque)
        }
        _ => now.same_state(&want.state),
    };
    if same {
        return Ok(false);
    }
    let req = owner_req(ov, want)?;
    match &want.state {
        EntryState::Absent => remove_tree(ov, p, touched)?,
        EntryState::Dir { mode } => {
            if now.is_dir() && (opaque || !want.opaque) {
                set_mode(ov, p, *mode)?;
            } else {
                if !now.is_absent() {
                    remove_tree(ov, p, touched)?;
                }
                let (parent, name) = parent_of(ov, p)?;
                ov.mkdir(&req, parent, name, *mode, 0)?;
                set_mode(ov, p, *mode)?;
            }
        }
        EntryState::File { hash, mode, .. } => {
            let hash = hash.ok_or_else(|| {
                Error::Workspace(format!("{p}: the checkpoint has no content hash for it"))
            })?;
            if now.is_dir() {
                remove_tree(ov, p, touched)?;
            }
            let (parent, name) = parent_of(ov, p)?;
            let tmp = tmp_name();
            let (_, opened) = ov.create(&req, parent, &tmp, *mode, 0, libc::O_WRONLY)?;
            let copied = copy_in(ov, store, &hash, opened.fh, p);
            ov.release(opened.fh)?;
            copied?;
            ov.rename(parent, &tmp, parent, name, 0)?;
        }
        EntryState::Symlink { target } => {
            if now.is_dir() {
                remove_tree(ov, p, touched)?;
            }
            let (parent, name) = parent_of(ov, p)?;
            let tmp = tmp_name();
            ov.symlink(&req, parent, &tmp, OsStr::from_bytes(target))?;
            ov.rename(parent, &tmp, parent, name, 0)?;
        }
        EntryState::Special { mode, rdev } => {
            if !now.is_absent() {
                remove_tree(ov, p, touched)?;
            }
            let (parent, name) = parent_of(ov, p)?;
            ov.mknod(&req, parent, name, *mode, 0, *rdev as u32)?;
        }
    }
    touched.names.push(p.clone());
    Ok(true)
}

/// Copies object `hash` into the open handle `fh`.
fn copy_in(
    ov: &Overlay,
    store: &ContentStore,
    hash: &crate::hash::ContentHash,
    fh: crate::overlay::Fh,
    p: &RelPath,
) -> Result<()> {
    use std::io::Read;
    let mut src = store.open_object(hash)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        let n = src
            .read(&mut buf)
            .map_err(|e| Error::io("read the stored content of", p, e))?;
        if n == 0 {
            return Ok(());
        }
        let mut done = 0;
        while done < n {
            done += ov.write(fh, off + done as u64, &buf[done..n])? as usize;
        }
        off += n as u64;
    }
}

/// Removes `p` from the view, with everything below it when it is a directory.
fn remove_tree(ov: &Overlay, p: &RelPath, touched: &mut Touched) -> Result<()> {
    let node = match ov.node_at(p) {
        Ok(n) => n,
        Err(Error::NotFound(_) | Error::NotADirectory(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if node.kind == Kind::Dir {
        for child in ov.merged_listing(&node)? {
            remove_tree(ov, &p.join(&child.name)?, touched)?;
        }
    }
    let (parent, name) = parent_of(ov, p)?;
    if node.kind == Kind::Dir {
        ov.rmdir(parent, name)?;
    } else {
        ov.unlink(parent, name)?;
    }
    touched.names.push(p.clone());
    Ok(())
}

fn set_mode(ov: &Overlay, p: &RelPath, mode: u32) -> Result<()> {
    let node = ov.node_at(p)?;
    let attr = ov.getattr(node.ino, None)?;
    if attr.perm as u32 & 0o7777 == mode & 0o7777 {
        return Ok(());
    }
    let set = crate::overlay::SetAttr {
        mode: Some(mode & 0o7777),
        ..Default::default()
    };
    ov.setattr(&Req::root(), node.ino, &set).map(|_| ())
}

/// The node of `p`'s parent directory and `p`'s last name.
fn parent_of<'a>(ov: &Overlay, p: &'a RelPath) -> Result<(crate::overlay::Ino, &'a OsStr)> {
    let (parent, name) = p.split_last().ok_or_else(|| Error::invalid_argument(p))?;
    Ok((ov.node_at(&parent)?.ino, name))
}

/// The caller to create `e` as: its recorded owner, else the upper layer's (the daemon's).
fn owner_req(ov: &Overlay, e: &CheckpointEntry) -> Result<Req> {
    let (uid, gid) = match e.owner {
        Some(o) => o,
        None => {
            let st = crate::sys::fstat(std::os::fd::AsFd::as_fd(ov.upper_root()))
                .map_err(|err| Error::io("stat the upper layer for", &e.path, err))?;
            (st.st_uid, st.st_gid)
        }
    };
    Ok(Req { uid, gid, pid: 0 })
}

fn tmp_name() -> OsString {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = TMP_PREFIX.to_vec();
    name.extend_from_slice(format!("{}-{n}", std::process::id()).as_bytes());
    OsString::from_vec(name)
}
