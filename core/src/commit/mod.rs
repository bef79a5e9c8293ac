//! Commit and discard: the only way the host project ever changes.
//!
//! A commit compares each selected change's *base* (the host state the overlay started from)
//! with the host's state now. Equal: apply. Different: a conflict, and by default nothing at all
//! is applied. Applying is crash-safe: a `CommitBegin` record lists the paths; new content goes
//! to temporary files beside their targets, made durable (an fsync each for a few regular files,
//! one `syncfs` for a large batch); then each is
//! renamed into place and a `CommitApplied` record written; deletions follow (deepest first);
//! touched directories are fsynced; `CommitEnd` closes it. After a crash, [`roll_forward`]
//! finishes the commit: a path whose host state already equals the new state is skipped, so
//! applying twice is harmless.

pub mod host;
pub mod status;

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::api::{Change, CommitReport, CommitRequest, Conflict, DiscardReport};
use crate::error::{Error, IoContext, Result};
use crate::journal::record::{Draft, EntryState, Op, Record};
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::sys;
use status::same_content;

/// Up to this many staged regular files, each temporary file is fsynced on its own; above it
/// (or with symlinks or special files staged) one `syncfs` covers them all. `syncfs` also
/// flushes every other writer's dirty data on the disk (the overlay's upper layer often lives
/// there), which makes it the slower choice for a small commit.
const FSYNC_EACH_LIMIT: usize = 256;

/// Selects the pending changes a request covers.
fn select(ov: &Overlay, req: &CommitRequest) -> Result<Vec<Change>> {
    Ok(status::pending(ov)?
        .into_iter()
        .filter(|c| {
            let named = req.paths.iter().any(|p| c.path.starts_with(p));
            let in_scope = req.paths.is_empty() || named;
            let explicitly = req.paths.iter().any(|p| p == &c.path);
            in_scope && (!c.scratch || req.include_scratch || explicitly)
        })
        .collect())
}

fn hash_of(s: &EntryState) -> Option<crate::hash::ContentHash> {
    match s {
        EntryState::File { hash, .. } => *hash,
        _ => None,
    }
}

/// True if a symlink target would lead outside the project when followed from `path`.
fn symlink_escapes(path: &RelPath, target: &[u8]) -> bool {
    if target.starts_with(b"/") {
        return true;
    }
    let mut depth = path.depth() as i64 - 1;
    for comp in target.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

fn conflict(c: &Change, reason: &str, host: EntryState, hint: String) -> Conflict {
    Conflict {
        path: c.path.clone(),
        reason: reason.into(),
        base_hash: hash_of(&c.base),
        host_hash: hash_of(&host),
        overlay_hash: hash_of(&c.current),
        base: c.base.clone(),
        host,
        overlay: c.current.clone(),
        hint,
    }
}

/// Proper ancestors of `path`, nearest first (the root excluded).
fn ancestors(path: &RelPath) -> impl Iterator<Item = RelPath> {
    std::iter::successors(path.split_last().map(|(p, _)| p), |p| {
        p.split_last().map(|(pp, _)| pp)
    })
    .filter(|p| !p.is_root())
}

/// Checks one change against the host; `Ok(None)` when it may be applied.
fn check(
    ov: &Overlay,
    c: &Change,
    req: &CommitRequest,
    deleted: &HashSet<RelPath>,
    new_dirs: &HashSet<RelPath>,
) -> Result<Option<Conflict>> {
    let host_root = ov.lower_root().as_fd();
    if c.protected && !req.allow_protected {
        return Ok(Some(conflict(c, "protected", EntryState::Absent,
            format!("{} is protected (a change there can run code on the host); review it, then commit with --allow-protected", c.path))));
    }
    if let Some((parent, _)) = c.path.split_last() {
        if let Err(e) = sys::walk_dirs(host_root, &parent) {
            // A host file or symlink this very commit replaces by a directory is fine: it is
            // removed (never followed) before anything is written below it.
            let replaced = ancestors(&c.path).any(|a| new_dirs.contains(&a));
            if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) && !replaced {
                return Ok(Some(conflict(c, "unsafe_path", EntryState::Absent,
                    format!("a parent of {} in the host project is a symlink or not a directory; wsfs never writes through it. Fix the host tree or discard this path", c.path))));
            }
        }
    }
    if let EntryState::Symlink { target } = &c.current {
        if symlink_escapes(&c.path, target) {
            return Ok(Some(conflict(c, "unsafe_path", EntryState::Absent,
                format!("symlink {} points outside the project ({}); it is not committed. Discard it or make it relative inside the project", c.path, crate::relpath::escape_bytes(target)))));
        }
    }
    let host = ov.lower_state(&c.path)?;
    let drifted = !same_content(&host, &c.base) && !same_content(&host, &c.current);
    if drifted && !req.force {
        return Ok(Some(conflict(c, "host_changed", host,
            format!("{} changed on the host since the workspace based its change on it; compare with `wsfs diff`, then commit with --force (the host version is backed up) or discard", c.path))));
    }
    // A directory can only be deleted if everything in it on the host goes too.
    if !c.current.is_dir() && host.is_dir() {
        let fd = sys::walk_dirs(host_root, &c.path).ctx("open", &c.path)?;
        for e in sys::read_dir(fd.as_fd()).ctx("readdir", &c.path)? {
            let child = c.path.join(&e.name)?;
            if !deleted.contains(&child) {
                return Ok(Some(conflict(c, "host_changed", host,
                    format!("host directory {} has {} which the workspace never saw; commit or move it on the host first", c.path, child))));
            }
        }
    }
    Ok(None)
}

/// Splits `selected` into the changes to apply and the paths left pending because the
/// workspace has them open for writing (`busy`). A rename's source stays with a busy
/// destination, so the host never loses the old file before it gets the new one.
fn split_busy(selected: Vec<Change>, busy: &HashSet<RelPath>) -> (Vec<Change>, BTreeSet<RelPath>) {
    let mut skipped: BTreeSet<RelPath> = BTreeSet::new();
    for c in selected.iter().filter(|c| busy.contains(&c.path)) {
        skipped.insert(c.path.clone());
        skipped.extend(c.from.clone());
    }
    let ready = selected
        .into_iter()
        .filter(|c| !skipped.contains(&c.path))
        .collect();
    (ready, skipped)
}

/// Commits the changes `req` selects. Paths the workspace has open for writing are not
/// committed (their content is not final): they stay pending and are listed in
/// [`CommitReport::busy`].
pub fn commit(
    ov: &Overlay,
    backups_root: &Path,
    req: &CommitRequest,
    progress: &dyn Fn(u64, u64),
) -> Result<CommitReport> {
    let mut timer = PhaseTimer::start();
    // Never commit from a journal that no longer verifies (edited behind our back while the
    // workspace is open): the change set in memory may not be what the journal says.
    ov.journal().check_unchanged()?;
    let (selected, busy) = split_busy(select(ov, req)?, &ov.busy_paths());
    let deleted: HashSet<RelPath> = selected
        .iter()
        .filter(|c| c.current.is_absent())
        .map(|c| c.path.clone())
        .collect();
    let new_dirs: HashSet<RelPath> = selected
        .iter()
        .filter(|c| c.current.is_dir() && !c.base.is_dir())
        .map(|c| c.path.clone())
        .collect();
    let mut conflicts = Vec::new();
    for c in &selected {
        if let Some(x) = check(ov, c, req, &deleted, &new_dirs)? {
            conflicts.push(x);
        }
    }
    let mut report = CommitReport {
        dry_run: req.dry_run,
        busy: busy.into_iter().collect(),
        ..Default::default()
    };
    if !conflicts.is_empty() {
        report.conflicts = conflicts;
        return Ok(report);
    }
    report.applied = selected.iter().map(|c| c.path.clone()).collect();
    let noops = if req.dry_run {
        Vec::new()
    } else {
        unchanged_in_scope(ov, req, &selected)?
    };
    if req.dry_run || (selected.is_empty() && noops.is_empty()) {
        return Ok(report);
    }
    let id = format!("{}-{}", chrono_like_now(), ov.journal().last_seq() + 1);
    report.id = id.clone();
    timer.lap(&id, "select and check for conflicts");
    ov.journal()
        .append_durable(Draft::control(Op::CommitBegin {
            id: id.clone(),
            paths: report.applied.clone(),
        }))?;
    crate::fault::commit_step("after commit_begin");
    let backup_dir = backups_root.join(&id);
    let (backed_up, changed) = apply(ov, &id, &selected, req, &backup_dir, progress, &mut timer)?;
    if !changed.is_empty() {
        report.applied.retain(|p| !changed.contains(p));
        report.busy.extend(changed);
        report.busy.sort();
    }
    // Paths the workspace touched but left as the host had them leave the overlay too, so a
    // commit leaves nothing that shadows later host edits.
    ov.finish_commit(&id, &noops, &|| {})?;
    if backed_up {
        report.backup_dir = Some(backup_dir);
    }
    let rec = ov
        .journal()
        .append_durable(Draft::control(Op::CommitEnd { id }))?;
    ov.changes().apply(&rec);
    ov.settle_kernel_caches();
    Ok(report)
}

/// Touched paths in the commit's scope whose overlay state equals their base (no change to
/// apply), with that state.
fn unchanged_in_scope(
    ov: &Overlay,
    req: &CommitRequest,
    selected: &[Change],
) -> Result<Vec<(RelPath, EntryState)>> {
    let chosen: HashSet<&RelPath> = selected.iter().map(|c| &c.path).collect();
    let mut out = Vec::new();
    for (path, change) in ov.changes().snapshot() {
        let in_scope = req.paths.is_empty() || req.paths.iter().any(|p| path.starts_with(p));
        if !in_scope || chosen.contains(&path) || change.opaque {
            continue;
        }
        let current = ov.upper_state(&path, false)?;
        if status::same_state(&change.base, &current) && change.origin.is_none() {
            out.push((path, current));
        }
    }
    Ok(out)
}

/// Time stamp for commit ids: seconds since the epoch in hex (sortable, filename-safe).
fn chrono_like_now() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{s:x}")
}

struct Staged {
    dir: OwnedFd,
    tmp: std::ffi::OsString,
    name: std::ffi::OsString,
    change: Change,
}

/// Applies checked changes. Returns whether anything was backed up, and the files left
/// pending because their upper content no longer matched the state being committed (a writer
/// changed them after the busy check).
fn apply(
    ov: &Overlay,
    id: &str,
    changes: &[Change],
    req: &CommitRequest,
    backup_dir: &Path,
    progress: &dyn Fn(u64, u64),
    timer: &mut PhaseTimer,
) -> Result<(bool, HashSet<RelPath>)> {
    let host_root = ov.lower_root().as_fd();
    let total = changes.len() as u64;
    let mut backed_up = false;
    let mut staged: Vec<Staged> = Vec::new();
    // File contents to write into temporary files: (index in `staged`, mode, owner).
    let mut jobs: Vec<(usize, u32, (u32, u32))> = Vec::new();
    let mut moved_away: HashSet<RelPath> = HashSet::new();
    let mut touched_dirs: BTreeSet<RelPath> = BTreeSet::new();
    let mut applied_now: Vec<(Change, EntryState)> = Vec::new();
    let deleting: HashSet<RelPath> = changes
        .iter()
        .filter(|c| c.current.is_absent())
        .map(|c| c.path.clone())
        .collect();
    // 1. creations and modifications, parents first.
    for (n, c) in changes.iter().enumerate() {
        if c.current.is_absent() {
            continue;
        }
        let host_now = ov.lower_state(&c.path)?;
        if same_content(&host_now, &c.current) && host_now == c.current {
            applied_now.push((c.clone(), c.current.clone()));
            continue;
        }
        if req.force && !host_now.is_absent() && !same_content(&host_now, &c.base) {
            backup(ov, &c.path, backup_dir)?;
            backed_up = true;
        }
        let (dir, name) = host::host_parent(host_root, &c.path)?;
        touched_dirs.insert(c.path.split_last().map(|(p, _)| p).unwrap_or_default());
        let mode_of = |m: u32| {
            if req.keep_setid {
                m & 0o7777
            } else {
                m & 0o1777
            }
        };
        // Replace an entry of another type first.
        if !host_now.is_absent()
            && std::mem::discriminant(&host_now) != std::mem::discriminant(&c.current)
        {
            if host_now.is_dir() {
                crate::tree::remove_tree(dir.as_fd(), &name, &c.path)?;
            } else {
                host::remove(dir.as_fd(), &name, false, &c.path)?;
            }
        }
        match &c.current {
            EntryState::Dir { mode } => {
                if !host_now.is_dir() || host_now.is_absent() {
                    match sys::mkdirat(dir.as_fd(), &name, 0o700) {
                        Ok(()) => {
                            let (u, g) = host::owner_for_new(dir.as_fd());
                            sys::lchownat(dir.as_fd(), &name, u, g).ctx("chown", &c.path)?;
                        }
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(Error::io("mkdir", &c.path, e)),
                    }
                }
                let fd = sys::openat(dir.as_fd(), &name, libc::O_PATH | libc::O_DIRECTORY, 0)
                    .ctx("open", &c.path)?;
                sys::chmod_fd(fd.as_fd(), mode_of(*mode)).ctx("chmod", &c.path)?;
                applied_now.push((c.clone(), c.current.clone()));
            }
            EntryState::File { mode, .. } => {
                // A rename whose content is unchanged is applied as a rename.
                if let Some(origin) = &c.from {
                    let obase = ov.changes().get(origin).map(|o| o.base);
                    if let Some(obase) = obase {
                        let ohost = ov.lower_state(origin)?;
                        if deleting.contains(origin)
                            && same_content(&obase, &c.current)
                            && same_content(&ohost, &obase)
                            && host_now.is_absent()
                        {
                            let (odir, oname) = host::host_parent(host_root, origin)?;
                            sys::renameat2(odir.as_fd(), &oname, dir.as_fd(), &name, 0)
                                .ctx("rename", &c.path)?;
                            let fd = sys::openat(dir.as_fd(), &name, libc::O_PATH, 0)
                                .ctx("open", &c.path)?;
                            sys::chmod_fd(fd.as_fd(), mode_of(*mode)).ctx("chmod", &c.path)?;
                            moved_away.insert(origin.clone());
                            touched_dirs
                                .insert(origin.split_last().map(|(p, _)| p).unwrap_or_default());
                            applied_now.push((c.clone(), c.current.clone()));
                            continue;
                        }
                    }
                }
                let owner = match sys::lstatat(dir.as_fd(), &name) {
                    Ok(st) => (st.st_uid, st.st_gid),
                    Err(_) => host::owner_for_new(dir.as_fd()),
                };
                let tmp = host::tmp_name(id, n);
                jobs.push((staged.len(), mode_of(*mode), owner));
                staged.push(Staged {
                    dir,
                    tmp,
                    name,
                    change: c.clone(),
                });
            }
            EntryState::Symlink { target } => {
                let tmp = host::tmp_name(id, n);
                let _ = sys::unlinkat(dir.as_fd(), &tmp, false);
                sys::symlinkat(OsStr::from_bytes(target), dir.as_fd(), &tmp)
                    .ctx("symlink", &c.path)?;
                let (u, g) = host::owner_for_new(dir.as_fd());
                sys::lchownat(dir.as_fd(), &tmp, u, g).ctx("chown", &c.path)?;
                staged.push(Staged {
                    dir,
                    tmp,
                    name,
                    change: c.clone(),
                });
            }
            EntryState::Special { mode } => {
                let tmp = host::tmp_name(id, n);
                let _ = sys::unlinkat(dir.as_fd(), &tmp, false);
                sys::mknodat(dir.as_fd(), &tmp, mode & (libc::S_IFMT | 0o777), 0)
                    .ctx("mknod", &c.path)?;
                staged.push(Staged {
                    dir,
                    tmp,
                    name,
                    change: c.clone(),
                });
            }
            EntryState::Absent => {}
        }
    }
    timer.lap(id, "check the host and stage");
    // 2. make every staged file durable, then rename them into place. A few regular files are
    // fsynced one by one (cheap, and blind to other writers on the disk); a large batch, or
    // one with symlinks or special files, gets one `syncfs` of the host filesystem.
    // Write the temporary files in parallel: each is independent, and the disk, not the CPU,
    // is what they wait on.
    let fsync_each = jobs.len() == staged.len() && jobs.len() <= FSYNC_EACH_LIMIT;
    let kept = on_workers(&jobs, |(i, mode, owner)| {
        let kept = stage_file(ov, &staged[*i], *mode, *owner, fsync_each)?;
        crate::fault::commit_step("after a temporary file");
        Ok(kept)
    })?;
    let changed_idx: HashSet<usize> = jobs
        .iter()
        .zip(kept)
        .filter(|(_, kept)| !kept)
        .map(|((i, _, _), _)| *i)
        .collect();
    timer.lap(id, "write temporary files");
    let mut changed: HashSet<RelPath> = changed_idx
        .iter()
        .map(|i| staged[*i].change.path.clone())
        .collect();
    // The source of a rename whose destination was left pending stays on the host too.
    let kept_origins: Vec<RelPath> = changed_idx
        .iter()
        .filter_map(|i| staged[*i].change.from.clone())
        .collect();
    changed.extend(kept_origins);
    let staged: Vec<Staged> = staged
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !changed_idx.contains(i))
        .map(|(_, s)| s)
        .collect();
    if !staged.is_empty() && !fsync_each {
        sys::syncfs(host_root).ctx("syncfs", &RelPath::root())?;
        crate::fault::commit_step("after syncfs");
    }
    // Renames are independent of each other (they wait on the disk, not the CPU).
    on_workers(&staged, |s| {
        sys::renameat2(s.dir.as_fd(), &s.tmp, s.dir.as_fd(), &s.name, 0)
            .ctx("rename", &s.change.path)?;
        crate::fault::commit_step("after a rename into place");
        Ok(())
    })?;
    for s in staged {
        let cur = s.change.current.clone();
        applied_now.push((s.change, cur));
    }
    timer.lap(id, "rename into place");
    // 3. deletions, deepest first.
    let mut deletions: Vec<&Change> = changes
        .iter()
        .filter(|c| c.current.is_absent() && !changed.contains(&c.path))
        .collect();
    deletions.sort_by(|a, b| b.path.cmp(&a.path));
    for c in deletions {
        if !moved_away.contains(&c.path) {
            let host_now = ov.lower_state(&c.path)?;
            if req.force
                && !host_now.is_absent()
                && !same_content(&host_now, &c.base)
                && !host_now.is_dir()
            {
                backup(ov, &c.path, backup_dir)?;
                backed_up = true;
            }
            if !host_now.is_absent() {
                let (dir, name) = host::host_parent(host_root, &c.path)?;
                host::remove(dir.as_fd(), &name, host_now.is_dir(), &c.path)?;
                crate::fault::commit_step("after a deletion");
            }
        }
        touched_dirs.insert(c.path.split_last().map(|(p, _)| p).unwrap_or_default());
        applied_now.push((c.clone(), EntryState::Absent));
    }
    timer.lap(id, "deletions");
    // 4. directories durable (in parallel, like the files), journal, overlay cleanup.
    let touched_dirs: Vec<RelPath> = touched_dirs.into_iter().collect();
    on_workers(&touched_dirs, |d| {
        if let Ok(fd) = sys::walk_dirs(host_root, d) {
            let _ = host::fsync_dir(fd.as_fd());
        }
        Ok(())
    })?;
    timer.lap(id, "fsync directories");
    let batch: Vec<(RelPath, EntryState)> =
        applied_now.into_iter().map(|(c, s)| (c.path, s)).collect();
    let done = std::cell::Cell::new(0u64);
    ov.finish_commit(id, &batch, &|| {
        crate::fault::commit_step("after commit_applied");
        done.set(done.get() + 1);
        progress(done.get(), total);
    })?;
    timer.lap(id, "journal and overlay cleanup");
    Ok((backed_up, changed))
}

/// Threads that write, fsync and rename a commit's files: the work waits on the disk, and
/// concurrent fsyncs share the filesystem's journal commits.
const WORKERS: usize = 8;

/// Runs `f` on every item, spread over up to [`WORKERS`] threads, and returns the results in
/// the items' order. Each thread stops at its first error; the first error is returned.
fn on_workers<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let per = items.len().div_ceil(WORKERS).max(1);
    let f = &f;
    let chunks: Vec<Result<Vec<R>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Result<Vec<R>>>()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("commit worker"))
            .collect()
    });
    let mut out = Vec::with_capacity(items.len());
    for c in chunks {
        out.extend(c?);
    }
    Ok(out)
}

/// Logs (at debug level) how long each phase of a commit took.
struct PhaseTimer {
    last: std::time::Instant,
}

impl PhaseTimer {
    fn start() -> PhaseTimer {
        PhaseTimer {
            last: std::time::Instant::now(),
        }
    }

    /// Logs the time since the previous lap (or the start) as `phase` of commit `id`.
    fn lap(&mut self, id: &str, phase: &str) {
        let now = std::time::Instant::now();
        let ms = (now - self.last).as_secs_f64() * 1e3;
        tracing::debug!(commit = %id, phase, ms, "commit phase");
        self.last = now;
    }
}

/// Writes the upper content of a staged file into its temporary host file and checks it is
/// exactly the state being committed. `Ok(false)` (temporary file removed) when the upper
/// file is gone or its content differs: a writer changed it after the commit selected it, so
/// it is left pending rather than committed half written or under a stale record.
fn stage_file(ov: &Overlay, s: &Staged, mode: u32, owner: (u32, u32), fsync: bool) -> Result<bool> {
    let path = &s.change.path;
    let src = match open_upper(ov, path) {
        Ok(fd) => fd,
        Err(e) if e.is_errno(libc::ENOENT) => return Ok(false),
        Err(e) => return Err(e),
    };
    let written = host::write_tmp(src.as_fd(), s.dir.as_fd(), &s.tmp, mode, owner, path, fsync)?;
    let expected = match &s.change.current {
        EntryState::File {
            hash: Some(h),
            size,
            ..
        } => Some((*h, *size)),
        _ => None,
    };
    if expected == Some(written) {
        return Ok(true);
    }
    tracing::info!(path = %path, "changed while committing: left pending");
    let _ = sys::unlinkat(s.dir.as_fd(), &s.tmp, false);
    Ok(false)
}

fn open_upper(ov: &Overlay, path: &RelPath) -> Result<OwnedFd> {
    let (dir, name) = sys::walk_parent(ov.upper_root().as_fd(), path).ctx("open", path)?;
    sys::openat(dir.as_fd(), name, libc::O_RDONLY, 0).ctx("open", path)
}

/// Saves the host's current version of `path` under the commit's backup folder.
fn backup(ov: &Overlay, path: &RelPath, backup_dir: &Path) -> Result<()> {
    let dest = backup_dir.join(std::ffi::OsStr::from_bytes(path.as_bytes()));
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("backup", path, e))?;
    }
    let (dir, name) = host::host_parent(ov.lower_root().as_fd(), path)?;
    let st = sys::lstatat(dir.as_fd(), &name).ctx("lstat", path)?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => {
            let src = sys::openat(dir.as_fd(), &name, libc::O_RDONLY, 0).ctx("open", path)?;
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

/// Finishes a commit interrupted by a crash: removes its temporary files and applies the paths
/// it had not applied yet (skipping those the host already has), then closes it.
pub fn roll_forward(
    ov: &Overlay,
    backups_root: &Path,
    records: &[Record],
) -> Result<Option<String>> {
    let mut open: Option<(String, Vec<RelPath>)> = None;
    let mut applied: HashSet<RelPath> = HashSet::new();
    for r in records {
        match &r.draft.op {
            Op::CommitBegin { id, paths } => {
                open = Some((id.clone(), paths.clone()));
                applied.clear();
            }
            Op::CommitApplied { .. } => {
                applied.insert(r.draft.path.clone());
            }
            Op::CommitEnd { id } if open.as_ref().is_some_and(|(o, _)| o == id) => open = None,
            _ => {}
        }
    }
    let Some((id, paths)) = open else {
        return Ok(None);
    };
    tracing::warn!(commit = %id, "rolling an interrupted commit forward");
    let tmp_prefix = format!("{}{id}-", host::TMP_PREFIX);
    let parents: BTreeSet<RelPath> = paths
        .iter()
        .map(|p| p.split_last().map(|(d, _)| d).unwrap_or_default())
        .collect();
    for d in parents {
        if let Ok(fd) = sys::walk_dirs(ov.lower_root().as_fd(), &d) {
            for e in sys::read_dir(fd.as_fd()).unwrap_or_default() {
                if e.name.as_bytes().starts_with(tmp_prefix.as_bytes()) {
                    let _ = sys::unlinkat(fd.as_fd(), &e.name, false);
                }
            }
        }
    }
    let remaining: Vec<RelPath> = paths.into_iter().filter(|p| !applied.contains(p)).collect();
    if !remaining.is_empty() {
        let req = CommitRequest {
            paths: remaining,
            allow_protected: true,
            include_scratch: true,
            ..Default::default()
        };
        let report = commit(ov, backups_root, &req, &|_, _| {})?;
        for c in &report.conflicts {
            tracing::warn!(path = %c.path, reason = %c.reason, "interrupted commit: path left in the workspace");
        }
    }
    let rec = ov
        .journal()
        .append_durable(Draft::control(Op::CommitEnd { id: id.clone() }))?;
    ov.changes().apply(&rec);
    Ok(Some(id))
}

/// Drops the overlay's changes at or below `paths` (all when empty).
pub fn discard(ov: &Overlay, paths: &[RelPath]) -> Result<DiscardReport> {
    let pending = status::pending(ov)?;
    let discarded: Vec<RelPath> = pending
        .iter()
        .filter(|c| paths.is_empty() || paths.iter().any(|p| c.path.starts_with(p)))
        .map(|c| c.path.clone())
        .collect();
    ov.discard_paths(paths)?;
    Ok(DiscardReport { discarded })
}

/// The backups folder of a workspace state dir.
pub fn backups_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("backups")
}

#[cfg(test)]
mod tests {
    use crate::api::CommitRequest;
    use crate::overlay::tests::{create, create_open, p, Fx};
    use crate::overlay::Req;

    fn commit_all(fx: &Fx) -> crate::api::CommitReport {
        fx.ws.commit(&CommitRequest::default(), &|_, _| {}).unwrap()
    }

    /// A file the workspace still has open for writing is not committed: it is reported busy,
    /// stays pending, and is committed once closed.
    #[test]
    fn files_open_for_writing_are_left_pending() {
        let fx = Fx::new(&[]);
        let ov = fx.ov();
        create(ov, "done", b"finished\n");
        let (_, open) = create_open(ov, "half", libc::O_WRONLY);
        ov.write(open.fh, 0, b"half wri").unwrap();
        let r = commit_all(&fx);
        assert_eq!(r.applied, vec![p("done")]);
        assert_eq!(r.busy, vec![p("half")]);
        assert!(
            !fx.host("half").exists(),
            "a half-written file reached the host"
        );
        let pending: Vec<_> = fx
            .ws
            .status()
            .unwrap()
            .into_iter()
            .map(|c| c.path)
            .collect();
        assert_eq!(pending, vec![p("half")]);
        ov.write(open.fh, 8, b"tten\n").unwrap();
        ov.release(open.fh).unwrap();
        let r = commit_all(&fx);
        assert_eq!((r.applied, r.busy), (vec![p("half")], vec![]));
        assert_eq!(std::fs::read(fx.host("half")).unwrap(), b"half written\n");
    }

    /// Content that differs from the state the commit selected (a writer through FUSE
    /// passthrough rewrote it after its record; simulated by writing the upper file directly,
    /// same size, so the selection still carries the recorded hash) is left pending, never
    /// committed under the older record.
    #[test]
    fn content_changed_since_its_record_is_left_pending() {
        let fx = Fx::new(&[]);
        create(fx.ov(), "a", b"recorded\n");
        assert_eq!(b"recorded\n".len(), b"REWRITTEN".len());
        std::fs::write(fx.upper("a"), b"REWRITTEN").unwrap();
        let r = commit_all(&fx);
        assert!(r.applied.is_empty(), "{r:?}");
        assert_eq!(r.busy, vec![p("a")]);
        assert!(!fx.host("a").exists());
    }

    /// A `chmod` and a `utime` of host files copy them up with no content hash recorded: the
    /// commit checks the upper content, settles the record, and leaves no upper copy and no
    /// change behind (so the next start has nothing to re-record).
    #[test]
    fn metadata_only_changes_leave_no_upper_copy() {
        use crate::overlay::{SetAttr, SetTime, ROOT_INO};
        let fx = Fx::new(&[("a", "a\n"), ("b", "b\n")]);
        let ov = fx.ov();
        let ino = |name: &str| ov.lookup(ROOT_INO, std::ffi::OsStr::new(name)).unwrap().ino;
        let chmod = SetAttr {
            mode: Some(0o600),
            ..Default::default()
        };
        let utime = SetAttr {
            mtime: Some(SetTime::Now),
            ..Default::default()
        };
        ov.setattr(&Req::root(), ino("a"), &chmod).unwrap();
        ov.setattr(&Req::root(), ino("b"), &utime).unwrap();
        assert!(fx.upper("a").exists() && fx.upper("b").exists());
        let r = commit_all(&fx);
        assert_eq!(r.applied, vec![p("a")]);
        assert!(
            !fx.upper("a").exists(),
            "the applied chmod stayed in the upper layer"
        );
        assert!(
            !fx.upper("b").exists(),
            "the settled utime stayed in the upper layer"
        );
        assert!(ov.changes().is_empty(), "{:?}", ov.changes().snapshot());
        assert!(fx.ws.verify().unwrap().problems.is_empty());
    }

    /// After a commit took a file out of the overlay, the kernel's old node answers ESTALE
    /// (the kernel then looks the name up again); the fresh node can be rewritten, and its
    /// base is what was committed, so the next commit is no conflict.
    #[test]
    fn reverted_node_is_stale_and_the_rewrite_commits_cleanly() {
        let fx = Fx::new(&[]);
        let ov = fx.ov();
        let old = create(ov, "a", b"v1\n");
        assert_eq!(commit_all(&fx).applied, vec![p("a")]);
        let err = ov
            .open(&Req::root(), old, libc::O_WRONLY | libc::O_TRUNC)
            .unwrap_err();
        assert!(err.is_errno(libc::ESTALE), "{err}");
        let (_, open) = create_open(ov, "a", libc::O_WRONLY | libc::O_TRUNC);
        ov.write(open.fh, 0, b"v2\n").unwrap();
        ov.release(open.fh).unwrap();
        let r = commit_all(&fx);
        assert!(r.conflicts.is_empty(), "{:?}", r.conflicts);
        assert_eq!(r.applied, vec![p("a")]);
        assert_eq!(std::fs::read(fx.host("a")).unwrap(), b"v2\n");
    }
}
