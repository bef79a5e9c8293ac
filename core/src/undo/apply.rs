//! Putting the host back (step 4 of an undo): removals deepest first, then directories in
//! path order, then files, symlinks and special files through temporary files renamed over
//! their targets, then fsyncs of the touched directories. A path the host already has in its
//! old state is skipped, so the roll-forward can run it again.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::Item;
use crate::commit::host;
use crate::commit::workers::on_workers;
use crate::error::{Error, IoContext, Result};
use crate::journal::record::EntryState;
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::store::ContentStore;
use crate::sys;

/// Prefix of an undo's temporary files in host directories.
pub(super) const TMP_PREFIX: &str = ".wsfs-undo-";

/// A non-directory waiting to be written beside its target and renamed over it.
struct Job<'a> {
    item: &'a Item,
    n: usize,
    dir: OwnedFd,
    name: OsString,
    owner: (u32, u32),
}

/// Puts every item's old state back on the host; true when something was backed up first
/// (`force`, a host version that is not what the commit wrote).
pub(super) fn to_host(
    ov: &Overlay,
    store: &ContentStore,
    id: &str,
    items: &[Item],
    force: bool,
    backup_dir: &Path,
) -> Result<bool> {
    let root = ov.lower_root().as_fd();
    let mut backed_up = false;
    let mut touched: BTreeSet<RelPath> = BTreeSet::new();
    // What each path holds now; paths already back (or changed and not forced) are left.
    let mut todo: Vec<(&Item, EntryState)> = Vec::new();
    for i in items {
        let host = ov.lower_state(&i.path)?;
        if host.same_state(&i.before) {
            continue;
        }
        if !host.same_content(&i.after) && !host.is_absent() {
            if !force {
                tracing::warn!(path = %i.path, "changed on the host since the undo checked it: left as it is");
                continue;
            }
            if !host.is_dir() {
                backup(root, &i.path, backup_dir)?;
                backed_up = true;
            }
        }
        todo.push((i, host));
    }
    // Removals, deepest first: paths that were absent, and entries of another type.
    let mut removals: Vec<&(&Item, EntryState)> = todo
        .iter()
        .filter(|(i, host)| {
            !host.is_absent()
                && (i.before.is_absent()
                    || std::mem::discriminant(host) != std::mem::discriminant(&i.before))
        })
        .collect();
    removals.sort_by(|a, b| b.0.path.cmp(&a.0.path));
    for (i, host) in removals {
        let (dir, name) = host::host_parent(root, &i.path)?;
        if host.is_dir() && force {
            crate::tree::remove_tree(dir.as_fd(), &name, &i.path)?;
        } else {
            host::remove(dir.as_fd(), &name, host.is_dir(), &i.path)?;
        }
        touched.insert(parent_of(&i.path));
        crate::fault::commit_step("undo: after a removal");
    }
    // Directories, parents first; the rest become jobs.
    let mut jobs = Vec::new();
    for (n, (i, host)) in todo.iter().enumerate() {
        if i.before.is_absent() {
            continue;
        }
        let (dir, name) = host::host_parent(root, &i.path)?;
        let same_type = std::mem::discriminant(host) == std::mem::discriminant(&i.before);
        if let EntryState::Dir { mode } = &i.before {
            if !same_type {
                sys::mkdirat(dir.as_fd(), &name, 0o700).ctx("mkdir", &i.path)?;
                let (u, g) = host::owner_for_new(dir.as_fd());
                sys::lchownat(dir.as_fd(), &name, u, g).ctx("chown", &i.path)?;
                touched.insert(parent_of(&i.path));
            }
            let fd = sys::open_dir_path(dir.as_fd(), &name).ctx("open", &i.path)?;
            sys::chmod_fd(fd.as_fd(), *mode).ctx("chmod", &i.path)?;
            continue;
        }
        let owner = match sys::lstatat(dir.as_fd(), &name) {
            Ok(st) => (st.st_uid, st.st_gid),
            Err(_) => host::owner_for_new(dir.as_fd()),
        };
        touched.insert(parent_of(&i.path));
        jobs.push(Job {
            item: i,
            n,
            dir,
            name,
            owner,
        });
    }
    on_workers(&jobs, |j| {
        put_back(store, id, j)?;
        crate::fault::commit_step("undo: after a file put back");
        Ok(())
    })?;
    let dirs: Vec<&RelPath> = touched.iter().collect();
    on_workers(&dirs, |d| {
        if let Ok(fd) = sys::walk_dirs(root, d) {
            let _ = host::fsync_dir(fd.as_fd());
        }
        Ok(())
    })?;
    Ok(backed_up)
}

/// Writes one file, symlink or special file beside its target, durably, and renames it over
/// the target.
fn put_back(store: &ContentStore, id: &str, j: &Job<'_>) -> Result<()> {
    let path = &j.item.path;
    let tmp = OsString::from(format!("{TMP_PREFIX}{id}-{}", j.n));
    let dir = j.dir.as_fd();
    let _ = sys::unlinkat(dir, &tmp, false);
    match &j.item.before {
        EntryState::File {
            hash: Some(h),
            mode,
            size,
        } => {
            let src = store.open_object(h)?;
            let written = host::write_tmp(src.as_fd(), dir, &tmp, *mode, j.owner, path, true)?;
            if written != (*h, *size) {
                let _ = sys::unlinkat(dir, &tmp, false);
                return Err(Error::Workspace(format!(
                    "{path}: the content store's copy of its old version {} is damaged (it hashes to {}); nothing written there. `wsfs verify` lists damaged objects",
                    h.short(),
                    written.0.short()
                )));
            }
        }
        EntryState::Symlink { target } => {
            sys::symlinkat(OsStr::from_bytes(target), dir, &tmp).ctx("symlink", path)?;
            sys::lchownat(dir, &tmp, j.owner.0, j.owner.1).ctx("chown", path)?;
        }
        EntryState::Special { mode, rdev } => {
            sys::mknodat(dir, &tmp, *mode, *rdev).ctx("mknod", path)?;
        }
        other => {
            return Err(Error::Workspace(format!(
                "{path}: cannot put back a {} without its content hash",
                other.kind_word()
            )))
        }
    }
    sys::renameat2(dir, &tmp, dir, &j.name, 0).ctx("rename", path)?;
    Ok(())
}

fn parent_of(path: &RelPath) -> RelPath {
    path.parent().unwrap_or_default()
}

/// Saves the host's current version of `path` (a file or symlink) under `backup_dir`.
fn backup(root: std::os::fd::BorrowedFd<'_>, path: &RelPath, backup_dir: &Path) -> Result<()> {
    let dest = backup_dir.join(OsStr::from_bytes(path.as_bytes()));
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("backup", path, e))?;
    }
    let (dir, name) = host::host_parent(root, path)?;
    let st = sys::lstatat(dir.as_fd(), &name).ctx("lstat", path)?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => {
            let src = sys::openat(dir.as_fd(), &name, libc::O_RDONLY | libc::O_NOFOLLOW, 0)
                .ctx("open", path)?;
            let mut out = std::fs::File::create(&dest).map_err(|e| Error::io("backup", path, e))?;
            std::io::copy(&mut std::fs::File::from(src), &mut out)
                .map_err(|e| Error::io("backup", path, e))?;
            out.sync_all().map_err(|e| Error::io("backup", path, e))?;
        }
        libc::S_IFLNK => {
            let t = sys::readlinkat(dir.as_fd(), &name).ctx("readlink", path)?;
            std::os::unix::fs::symlink(t, &dest).map_err(|e| Error::io("backup", path, e))?;
        }
        _ => {}
    }
    Ok(())
}
