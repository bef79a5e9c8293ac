//! Applying a checked plan to the host, phase by phase: stage each creation and modification
//! (directories made, file contents written to temporary files beside their targets), make
//! the temporary files durable, rename them into place, delete (deepest first), fsync the
//! touched directories, and record each applied path.

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use super::host;
use super::plan::{ancestors, drifted, Checked};
use super::seen::Seen;
use super::workers::{on_workers, PhaseTimer};
use crate::api::{Change, CommitRequest};
use crate::error::{Error, IoContext, Result};
use crate::journal::record::EntryState;
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::sys;

/// Up to this many staged regular files, each temporary file is fsynced on its own; above it
/// (or with symlinks or special files staged) one `syncfs` covers them all. `syncfs` also
/// flushes every other writer's dirty data on the disk (the overlay's upper layer often lives
/// there), which makes it the slower choice for a small commit.
const FSYNC_EACH_LIMIT: usize = 256;

/// What applying did besides the paths it recorded.
pub(super) struct Outcome {
    /// Something was backed up (forced commit).
    pub backed_up: bool,
    /// Paths left pending because they changed while the commit ran: in the upper layer
    /// (a writer after the busy check), or on the host (after the conflict check).
    pub left_pending: HashSet<RelPath>,
}

/// Applies the checked changes `ready` as commit `id`.
pub(super) fn apply(
    ov: &Overlay,
    id: &str,
    ready: &[Checked],
    req: &CommitRequest,
    backup_dir: &Path,
    progress: &dyn Fn(u64, u64),
    timer: &mut PhaseTimer,
) -> Result<Outcome> {
    let mut a = Applier {
        ov,
        id,
        req,
        backup_dir,
        backed_up: false,
        moved_away: HashSet::new(),
        touched_dirs: BTreeSet::new(),
        applied: Vec::new(),
        pending: HashSet::new(),
    };
    let (staged, jobs) = a.stage(ready)?;
    timer.lap(id, "check the host and stage");
    // A few regular files are fsynced one by one (cheap, and blind to other writers on the
    // disk); a large batch, or one with symlinks or special files, gets one `syncfs`.
    let fsync_each = jobs.len() == staged.len() && jobs.len() <= FSYNC_EACH_LIMIT;
    let staged = a.write_files(staged, &jobs, fsync_each)?;
    timer.lap(id, "write temporary files");
    a.rename_into_place(staged, fsync_each)?;
    timer.lap(id, "rename into place");
    a.delete(ready)?;
    timer.lap(id, "deletions");
    a.fsync_dirs()?;
    timer.lap(id, "fsync directories");
    let outcome = a.record(ready.len() as u64, progress)?;
    timer.lap(id, "journal and overlay cleanup");
    Ok(outcome)
}

/// An entry waiting in a temporary file `tmp` beside its target `name` in `dir`.
struct Staged {
    dir: OwnedFd,
    tmp: OsString,
    name: OsString,
    change: Change,
    /// What the host must still hold at `name` when the entry is renamed over it.
    expect: Seen,
    /// The content to write, when not the upper file's (a file committed in part).
    src: Option<Arc<OwnedFd>>,
}

/// A regular file to write into its temporary file.
struct Job {
    /// Index in the staged list.
    index: usize,
    mode: u32,
    owner: (u32, u32),
}

/// One commit's application in progress.
struct Applier<'a> {
    ov: &'a Overlay,
    id: &'a str,
    req: &'a CommitRequest,
    backup_dir: &'a Path,
    backed_up: bool,
    /// Rename sources the host already moved to their destination (nothing left to delete).
    moved_away: HashSet<RelPath>,
    /// Host directories whose entries changed (fsynced at the end).
    touched_dirs: BTreeSet<RelPath>,
    /// Each applied path with the state committed, in the order they are recorded.
    applied: Vec<(RelPath, EntryState)>,
    /// See [`Outcome::left_pending`].
    pending: HashSet<RelPath>,
}

impl Applier<'_> {
    /// Phase 1: creations and modifications, parents first. Directories are made (or their
    /// mode set), unchanged-content renames are applied as renames, and every other entry is
    /// staged beside its target; regular files become [`Job`]s (written in phase 2).
    fn stage(&mut self, ready: &[Checked]) -> Result<(Vec<Staged>, Vec<Job>)> {
        let ov = self.ov;
        let host_root = ov.lower_root().as_fd();
        let keep_setid = self.req.keep_setid;
        let mode_of = |m: u32| {
            if keep_setid {
                m & 0o7777
            } else {
                m & 0o1777
            }
        };
        let deleting: HashMap<&RelPath, &Seen> = ready
            .iter()
            .filter(|c| c.change.current.is_absent())
            .map(|c| (&c.change.path, &c.host))
            .collect();
        let mut staged: Vec<Staged> = Vec::new();
        let mut jobs: Vec<Job> = Vec::new();
        for (n, checked) in ready.iter().enumerate() {
            let (c, seen) = (&checked.change, &checked.host);
            if c.current.is_absent() {
                continue;
            }
            if self.under_pending(&c.path) {
                self.leave_pending(c);
                continue;
            }
            let Some(host_now) = self.host_now_or_pending(ov, c, seen)? else {
                continue;
            };
            let host = &host_now.state;
            if host.same_content(&c.current) && *host == c.current {
                self.applied.push((c.path.clone(), c.current.clone()));
                continue;
            }
            if self.req.force && !host.is_absent() && !host.same_content(&c.base) {
                backup(ov, &c.path, self.backup_dir)?;
                self.backed_up = true;
            }
            let (dir, name) = host::host_parent(host_root, &c.path)?;
            self.touched_dirs.insert(parent_of(&c.path));
            // Replace an entry of another type first.
            let mut expect = host_now.clone();
            if !host.is_absent()
                && std::mem::discriminant(host) != std::mem::discriminant(&c.current)
            {
                if host.is_dir() {
                    crate::tree::remove_tree(dir.as_fd(), &name, &c.path)?;
                } else {
                    host::remove(dir.as_fd(), &name, false, &c.path)?;
                }
                expect = Seen::absent();
            }
            match &c.current {
                EntryState::Dir { mode } => {
                    if !host.is_dir() || host.is_absent() {
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
                    self.applied.push((c.path.clone(), c.current.clone()));
                }
                EntryState::File { mode, .. } => {
                    // A rename whose content is unchanged is applied as a rename.
                    if let Some((origin, oseen)) = c
                        .from
                        .as_ref()
                        .and_then(|o| deleting.get(o).map(|s| (o, *s)))
                    {
                        if let Some(obase) = ov.changes().get(origin).map(|o| o.base) {
                            let ohost = oseen.now(ov, origin)?;
                            if obase.same_content(&c.current)
                                && ohost.state.same_content(&obase)
                                && host.is_absent()
                            {
                                let (odir, oname) = host::host_parent(host_root, origin)?;
                                sys::renameat2(odir.as_fd(), &oname, dir.as_fd(), &name, 0)
                                    .ctx("rename", &c.path)?;
                                let fd = sys::openat(dir.as_fd(), &name, libc::O_PATH, 0)
                                    .ctx("open", &c.path)?;
                                sys::chmod_fd(fd.as_fd(), mode_of(*mode)).ctx("chmod", &c.path)?;
                                self.moved_away.insert(origin.clone());
                                self.touched_dirs.insert(parent_of(origin));
                                self.applied.push((c.path.clone(), c.current.clone()));
                                continue;
                            }
                        }
                    }
                    let owner = match sys::lstatat(dir.as_fd(), &name) {
                        Ok(st) => (st.st_uid, st.st_gid),
                        Err(_) => host::owner_for_new(dir.as_fd()),
                    };
                    jobs.push(Job {
                        index: staged.len(),
                        mode: mode_of(*mode),
                        owner,
                    });
                    staged.push(Staged {
                        dir,
                        tmp: host::tmp_name(self.id, n),
                        name,
                        change: c.clone(),
                        expect,
                        src: checked.src.clone(),
                    });
                }
                EntryState::Symlink { target } => {
                    let tmp = host::tmp_name(self.id, n);
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
                        expect,
                        src: None,
                    });
                }
                EntryState::Special { mode, .. } => {
                    // The plan refuses device nodes; this is the last line of defence (e.g.
                    // a commit rolled forward from a journal written by an older wsfs).
                    if c.current.is_device() {
                        return Err(crate::Error::Workspace(format!(
                            "{}: a device node is never created on the host",
                            c.path
                        )));
                    }
                    let tmp = host::tmp_name(self.id, n);
                    let _ = sys::unlinkat(dir.as_fd(), &tmp, false);
                    sys::mknodat(dir.as_fd(), &tmp, mode & (libc::S_IFMT | 0o777), 0)
                        .ctx("mknod", &c.path)?;
                    staged.push(Staged {
                        dir,
                        tmp,
                        name,
                        change: c.clone(),
                        expect,
                        src: None,
                    });
                }
                EntryState::Absent => {}
            }
        }
        Ok((staged, jobs))
    }

    /// Phase 2a: writes the regular files' temporary files, in parallel (each is independent,
    /// and the disk, not the CPU, is what they wait on). Returns the staged entries still to
    /// rename; a file whose upper content changed since it was selected is left pending.
    fn write_files(
        &mut self,
        staged: Vec<Staged>,
        jobs: &[Job],
        fsync_each: bool,
    ) -> Result<Vec<Staged>> {
        let ov = self.ov;
        let kept = on_workers(jobs, |j| {
            let kept = stage_file(ov, &staged[j.index], j.mode, j.owner, fsync_each)?;
            crate::fault::commit_step("after a temporary file");
            Ok(kept)
        })?;
        let changed: HashSet<usize> = jobs
            .iter()
            .zip(kept)
            .filter(|(_, kept)| !kept)
            .map(|(j, _)| j.index)
            .collect();
        for i in &changed {
            // The source of a rename whose destination is left pending stays on the host too.
            self.leave_pending(&staged[*i].change);
        }
        Ok(staged
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !changed.contains(i))
            .map(|(_, s)| s)
            .collect())
    }

    /// Phase 2b: makes the staged entries durable (unless each file was fsynced already),
    /// then renames each over its target, in parallel, if the host still holds there what the
    /// commit staged it against (see [`super::seen`]); otherwise it is left pending.
    fn rename_into_place(&mut self, staged: Vec<Staged>, fsync_each: bool) -> Result<()> {
        let ov = self.ov;
        if !staged.is_empty() && !fsync_each {
            sys::syncfs(ov.lower_root().as_fd()).ctx("syncfs", &RelPath::root())?;
            crate::fault::commit_step("after syncfs");
        }
        let renamed = on_workers(&staged, |s| {
            let path = &s.change.path;
            if !s.expect.holds(ov, s.dir.as_fd(), &s.name, path)? {
                tracing::warn!(path = %path, "changed on the host while committing: left pending");
                let _ = sys::unlinkat(s.dir.as_fd(), &s.tmp, false);
                return Ok(false);
            }
            sys::renameat2(s.dir.as_fd(), &s.tmp, s.dir.as_fd(), &s.name, 0).ctx("rename", path)?;
            crate::fault::commit_step("after a rename into place");
            Ok(true)
        })?;
        for (s, renamed) in staged.into_iter().zip(renamed) {
            if renamed {
                self.applied.push((s.change.path, s.change.current));
            } else {
                self.leave_pending(&s.change);
            }
        }
        Ok(())
    }

    /// Phase 3: deletions, deepest first. A directory that keeps a pending entry stays too.
    fn delete(&mut self, ready: &[Checked]) -> Result<()> {
        let ov = self.ov;
        let host_root = ov.lower_root().as_fd();
        let mut deletions: Vec<&Checked> = ready
            .iter()
            .filter(|c| c.change.current.is_absent() && !self.pending.contains(&c.change.path))
            .collect();
        deletions.sort_by(|a, b| b.change.path.cmp(&a.change.path));
        for checked in deletions {
            let (c, seen) = (&checked.change, &checked.host);
            if !self.moved_away.contains(&c.path) {
                if self.pending.iter().any(|p| p.starts_with(&c.path)) {
                    self.leave_pending(c);
                    continue;
                }
                let Some(host_now) = self.host_now_or_pending(ov, c, seen)? else {
                    continue;
                };
                let host = host_now.state;
                if self.req.force
                    && !host.is_absent()
                    && !host.same_content(&c.base)
                    && !host.is_dir()
                {
                    backup(ov, &c.path, self.backup_dir)?;
                    self.backed_up = true;
                }
                if !host.is_absent() {
                    let (dir, name) = host::host_parent(host_root, &c.path)?;
                    host::remove(dir.as_fd(), &name, host.is_dir(), &c.path)?;
                    crate::fault::commit_step("after a deletion");
                }
            }
            self.touched_dirs.insert(parent_of(&c.path));
            self.applied.push((c.path.clone(), EntryState::Absent));
        }
        Ok(())
    }

    /// Phase 4: makes the touched host directories durable, in parallel like the files.
    fn fsync_dirs(&self) -> Result<()> {
        let host_root = self.ov.lower_root().as_fd();
        let dirs: Vec<&RelPath> = self.touched_dirs.iter().collect();
        on_workers(&dirs, |d| {
            if let Ok(fd) = sys::walk_dirs(host_root, d) {
                let _ = host::fsync_dir(fd.as_fd());
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Phase 5: records each applied path and takes it out of the overlay (`total`: the
    /// number of changes, for `progress`).
    fn record(self, total: u64, progress: &dyn Fn(u64, u64)) -> Result<Outcome> {
        let done = Cell::new(0u64);
        self.ov.finish_commit(self.id, &self.applied, &|| {
            crate::fault::commit_step("after commit_applied");
            done.set(done.get() + 1);
            progress(done.get(), total);
        })?;
        Ok(Outcome {
            backed_up: self.backed_up,
            left_pending: self.pending,
        })
    }

    /// The host's state of `c`'s path now, or `None` with `c` left pending when it changed
    /// since the check read `seen` and conflicts with `c` (neither its base nor its new
    /// state): applying `c` would overwrite a host change. A forced commit applies it (after
    /// a backup).
    fn host_now_or_pending(
        &mut self,
        ov: &Overlay,
        c: &Change,
        seen: &Seen,
    ) -> Result<Option<Seen>> {
        let now = seen.now(ov, &c.path)?;
        let changed =
            !self.req.force && !now.state.same_content(&seen.state) && drifted(&now.state, c);
        if changed {
            tracing::warn!(path = %c.path, "changed on the host while committing: left pending");
            self.leave_pending(c);
            return Ok(None);
        }
        Ok(Some(now))
    }

    /// True if an ancestor of `path` was left pending (so `path` has nowhere to go).
    fn under_pending(&self, path: &RelPath) -> bool {
        !self.pending.is_empty() && ancestors(path).any(|a| self.pending.contains(&a))
    }

    /// Leaves `c` pending, and the source of its rename with it (the host never loses the old
    /// file before it gets the new one).
    fn leave_pending(&mut self, c: &Change) {
        self.pending.insert(c.path.clone());
        self.pending.extend(c.from.clone());
    }
}

/// The parent directory of `path` (the root for a top-level path).
fn parent_of(path: &RelPath) -> RelPath {
    path.parent().unwrap_or_default()
}

/// Writes the upper content of a staged file into its temporary host file and checks it is
/// exactly the state being committed. `Ok(false)` (temporary file removed) when the upper
/// file is gone or its content differs: a writer changed it after the commit selected it, so
/// it is left pending rather than committed half written or under a stale record.
fn stage_file(ov: &Overlay, s: &Staged, mode: u32, owner: (u32, u32), fsync: bool) -> Result<bool> {
    let path = &s.change.path;
    let src = match &s.src {
        Some(fd) => fd.clone(),
        None => match open_upper(ov, path) {
            Ok(fd) => Arc::new(fd),
            Err(e) if e.is_errno(libc::ENOENT) => return Ok(false),
            Err(e) => return Err(e),
        },
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
    let dest = backup_dir.join(OsStr::from_bytes(path.as_bytes()));
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
