//! A workspace: a host project, its state directory, the overlay and the journal.
//!
//! This is the facade `mountd` and tests use. Opening a workspace is its recovery: the journal
//! is replayed (a torn tail cut), the change set rebuilt, upper entries the journal missed
//! adopted, and an interrupted commit rolled forward.

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::api;
use crate::commit;
use crate::error::{Error, Result};
use crate::journal::record::{EntryState, Record};
use crate::journal::Journal;
use crate::overlay::Overlay;
use crate::policy::{Policy, PolicyConfig};
use crate::relpath::RelPath;
use crate::state::{check_workspace_name, StateRoot, WorkspaceMeta};
use crate::store::ContentStore;
use crate::sys;

/// One workspace, open.
pub struct Workspace {
    name: String,
    dir: PathBuf,
    meta: Mutex<WorkspaceMeta>,
    overlay: Arc<Overlay>,
    /// Every file version the workspace may have to bring back, by hash (`<dir>/store`).
    store: ContentStore,
    /// One commit, discard, write-through flush, checkpoint or restore at a time.
    commit_lock: Mutex<()>,
    /// Checkpoints taken so far (the next id is `c<n+1>`).
    checkpoints: AtomicU64,
    /// The journal's last sequence number after the last write-through flush: a flush with
    /// nothing recorded since has nothing new to try.
    flushed_at: AtomicU64,
    _lock: fs::File,
}

fn werr(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Workspace(format!("{what} {}: {e}", path.display()))
}

impl Workspace {
    /// Creates a new workspace for `project` (an existing directory) with the default rules.
    pub fn create(state: &StateRoot, name: &str, project: &Path) -> Result<Arc<Workspace>> {
        Self::create_with(state, name, project, None)
    }

    /// Creates a new workspace for `project` with its own path rules (`None`: the defaults);
    /// they are kept in its meta.json for every later open.
    pub fn create_with(
        state: &StateRoot,
        name: &str,
        project: &Path,
        policy: Option<PolicyConfig>,
    ) -> Result<Arc<Workspace>> {
        check_workspace_name(name)?;
        let project = fs::canonicalize(project).map_err(|e| {
            werr(
                "project directory",
                project,
                format!("{e}; pass an existing directory"),
            )
        })?;
        if !project.is_dir() {
            return Err(werr("project", &project, "is not a directory"));
        }
        let dir = state.workspace_dir(name);
        if dir.join("meta.json").exists() {
            return Err(Error::WorkspaceExists(name.to_string()));
        }
        for sub in ["upper", "work", "backups"] {
            fs::create_dir_all(dir.join(sub)).map_err(|e| werr("create", &dir.join(sub), e))?;
        }
        let _ = fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let meta = WorkspaceMeta {
            name: name.to_string(),
            project,
            mountpoint: None,
            mounted: false,
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
            image_id: None,
            policy,
            open_mode: None,
        };
        write_meta(&dir, &meta)?;
        Self::open(state, name)
    }

    /// Opens an existing workspace (recovery included).
    pub fn open(state: &StateRoot, name: &str) -> Result<Arc<Workspace>> {
        check_workspace_name(name)?;
        let dir = state.workspace_dir(name);
        let meta_path = dir.join("meta.json");
        let raw = fs::read(&meta_path).map_err(|e| Error::NoSuchWorkspace {
            name: name.to_string(),
            detail: format!("{}: {e}", meta_path.display()),
        })?;
        let meta: WorkspaceMeta =
            serde_json::from_slice(&raw).map_err(|e| werr("corrupt", &meta_path, e))?;
        let lock = lock_dir(&dir)?;
        let (journal, replay) = Journal::open(&dir.join("journal"))?;
        let store = ContentStore::open(&dir.join("store"))?;
        let journal = Arc::new(journal);
        let project_root = sys::open_root(&meta.project).map_err(|e| {
            werr(
                "project directory",
                &meta.project,
                format!("{e}; was it moved or deleted?"),
            )
        })?;
        let rules = meta.policy.clone().unwrap_or_default();
        let policy = Arc::new(Policy::load(project_root.as_fd(), &rules)?);
        let overlay = Overlay::new(
            &meta.project,
            &dir.join("upper"),
            &dir.join("work"),
            journal,
            policy,
            &replay.records,
        )?;
        commit::roll_forward(
            &overlay,
            &commit::backups_dir(&dir),
            Some(&store),
            &replay.records,
        )?;
        crate::undo::roll_forward(
            &overlay,
            &store,
            &commit::backups_dir(&dir),
            &replay.records,
        )?;
        let checkpoints = AtomicU64::new(crate::checkpoint::count(&replay.records));
        Ok(Arc::new(Workspace {
            name: name.to_string(),
            dir,
            meta: Mutex::new(meta),
            overlay,
            store,
            commit_lock: Mutex::new(()),
            checkpoints,
            flushed_at: AtomicU64::new(0),
            _lock: lock,
        }))
    }

    /// The workspace's content store.
    pub fn store(&self) -> &ContentStore {
        &self.store
    }

    /// Workspace name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its state directory.
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// A copy of meta.json.
    pub fn meta(&self) -> WorkspaceMeta {
        self.meta.lock().unwrap().clone()
    }

    /// Updates and persists meta.json.
    pub fn update_meta(&self, f: &dyn Fn(&mut WorkspaceMeta)) -> Result<()> {
        let mut m = self.meta.lock().unwrap();
        let before = m.clone();
        f(&mut m);
        if *m == before {
            // Nothing to write (a remount at start): needs no free space.
            return Ok(());
        }
        write_meta(&self.dir, &m)
    }

    /// Summary for `list`, `mount` and the container commands: the pending counts come from
    /// the change set in memory (O(1); no walk, no hash).
    pub fn info(&self) -> api::WorkspaceInfo {
        let m = self.meta();
        let counts = self.overlay.changes().counts();
        api::WorkspaceInfo {
            name: self.name.clone(),
            project: m.project,
            mountpoint: if m.mounted { m.mountpoint } else { None },
            pending: counts.changes,
            scratch: counts.scratch,
            git_churn: counts.git_churn,
            scratch_under: counts.scratch_under,
            git_churn_under: counts.git_churn_under,
            write_through: counts.write_through,
            write_through_under: counts.write_through_under,
            image_id: m.image_id,
            problem: None,
            allow_other: None,
            open_mode: None,
        }
    }

    /// The overlay (what the FUSE adapter serves).
    pub fn overlay(&self) -> &Arc<Overlay> {
        &self.overlay
    }

    /// Pending changes, sorted by path.
    pub fn status(&self) -> Result<Vec<api::Change>> {
        self.settle_recovery();
        self.overlay.settle_written(None)?;
        commit::status::pending(&self.overlay)
    }

    /// The pending changes `show` selects, sorted by path (hidden classes cost no I/O).
    pub fn status_shown(&self, show: api::Show) -> Result<Vec<api::Change>> {
        self.overlay.settle_written(None)?;
        commit::status::pending_where(&self.overlay, |n| show.keeps(n))
    }

    /// Diffs of the pending changes at or below `paths` (all when empty).
    pub fn diff(&self, paths: &[RelPath]) -> Result<Vec<api::FileDiff>> {
        self.diff_shown(paths, api::Show::All)
    }

    /// Diffs of the pending changes `show` selects at or below `paths` (all when empty), with
    /// renames paired as git pairs them (see `diff::pair_renames`).
    pub fn diff_shown(&self, paths: &[RelPath], show: api::Show) -> Result<Vec<api::FileDiff>> {
        let mut out = Vec::new();
        for change in self.status_shown(show)? {
            if !paths.is_empty() && !paths.iter().any(|p| change.path.starts_with(p)) {
                continue;
            }
            // A renamed entry diffs against the host content it was renamed from.
            let (old_path, old_state) = match &change.from {
                Some(from) => (from.clone(), self.overlay.lower_state(from)?),
                None => (change.path.clone(), change.base.clone()),
            };
            let old = read_side(self.overlay.lower_root().as_fd(), &old_path, &old_state);
            let new = read_side(
                self.overlay.upper_root().as_fd(),
                &change.path,
                &change.current,
            );
            out.push(crate::diff::Side::pair(change, old, new));
        }
        Ok(crate::diff::pair_renames(out))
    }

    /// The pending changes `show` selects at or below `paths` (all when empty) as one patch
    /// `git apply` accepts (see `gitpatch`), with what git cannot hold left out.
    pub fn git_patch(&self, paths: &[RelPath], show: api::Show) -> Result<api::GitPatch> {
        let (files, left_out) = self.git_files(paths, show)?;
        Ok(api::GitPatch {
            patch: crate::gitpatch::render(&files),
            paths: files.iter().map(|f| f.path().clone()).collect(),
            left_out,
        })
    }

    /// Writes the pending changes at or below `req.paths` that a reviewer sees (neither scratch
    /// nor git churn: what `git_patch` shows by default) as one commit on branch `req.branch`
    /// of the project's git repository, parented on HEAD (see `gitexport`).
    pub fn export_branch(&self, req: &api::ExportRequest) -> Result<api::ExportReport> {
        let (files, left_out) = self.git_files(&req.paths, api::Show::Review)?;
        let mut report = crate::gitexport::export(&self.meta().project, &self.name, &files, req)?;
        report.left_out = left_out;
        Ok(report)
    }

    fn git_files(
        &self,
        paths: &[RelPath],
        show: api::Show,
    ) -> Result<(Vec<crate::gitpatch::GitFile>, Vec<api::LeftOut>)> {
        self.settle_recovery();
        let changes = self
            .status_shown(show)?
            .into_iter()
            .filter(|c| {
                paths.is_empty()
                    || paths.iter().any(|p| {
                        c.path.starts_with(p) || c.from.as_ref().is_some_and(|f| f.starts_with(p))
                    })
            })
            .collect();
        crate::gitpatch::collect(&self.overlay, changes)
    }

    /// Commits changes to the host project.
    pub fn commit(
        &self,
        req: &api::CommitRequest,
        progress: &dyn Fn(u64, u64),
    ) -> Result<api::CommitReport> {
        let _one = self.commit_lock.lock().unwrap();
        // Never commit past changes the journal has not recorded yet.
        self.overlay.finish_deferred_recovery()?;
        self.overlay.settle_written(None)?;
        let mut report = commit::commit_merging(
            &self.overlay,
            &commit::backups_dir(&self.dir),
            &self.meta().project,
            req,
            Some(&self.store),
            progress,
        )?;
        report.scratch_pending = self.overlay.changes().counts().scratch;
        Ok(report)
    }

    /// Drops changes at or below `paths` (all when empty).
    pub fn discard(&self, paths: &[RelPath]) -> Result<api::DiscardReport> {
        let _one = self.commit_lock.lock().unwrap();
        self.overlay.finish_deferred_recovery()?;
        self.overlay.settle_written(None)?;
        commit::discard(&self.overlay, paths)
    }

    /// Commits the pending write-through changes that can go to the host now (per-file
    /// conflict check; a conflict holds back only its own paths). `None` when there was nothing to try: none pending,
    /// or nothing recorded since the last flush (a path held back by a conflict or still open
    /// is tried again once the journal moves). Cheap enough to call every few hundred ms.
    pub fn flush_write_through(&self) -> Result<Option<api::CommitReport>> {
        // The atomic first: the journal's sequence number takes its append lock.
        if self.overlay.changes().write_through_pending() == 0
            || self.flushed_at.load(Ordering::Relaxed) == self.overlay.journal().last_seq()
        {
            return Ok(None);
        }
        let _one = self.commit_lock.lock().unwrap();
        self.overlay.finish_deferred_recovery()?;
        let report = commit::flush_write_through(&self.overlay, &commit::backups_dir(&self.dir))?;
        self.flushed_at
            .store(self.overlay.journal().last_seq(), Ordering::Relaxed);
        Ok(report)
    }

    /// Puts the host back as it was before a commit (see `undo`); the commit's changes are
    /// pending in the workspace again.
    pub fn undo(&self, req: &api::UndoRequest) -> Result<api::UndoReport> {
        let _one = self.commit_lock.lock().unwrap();
        self.overlay.finish_deferred_recovery()?;
        self.overlay.settle_written(None)?;
        let records = self.log()?;
        crate::undo::undo(
            &self.overlay,
            &self.store,
            &commit::backups_dir(&self.dir),
            &records,
            req,
        )
    }

    /// The commits in the journal, oldest first (`wsfs log --commits`).
    pub fn commits(&self) -> Result<Vec<api::CommitInfo>> {
        Ok(crate::undo::history::commits(&self.log()?)
            .iter()
            .map(|c| c.info())
            .collect())
    }

    /// Drops the content-store objects that neither the last `keep` commits that can be undone
    /// (default [`crate::undo::history::DEFAULT_KEEP`]) nor checkpoints reference; the
    /// journal records the cut first.
    pub fn gc(&self, req: &api::GcRequest) -> Result<api::GcReport> {
        let _one = self.commit_lock.lock().unwrap();
        let keep = req.keep.unwrap_or(crate::undo::history::DEFAULT_KEEP);
        self.overlay
            .record_durable(crate::journal::record::Draft::control(
                crate::journal::record::Op::Gc { keep },
            ))?;
        let referenced = crate::undo::history::referenced(&self.log()?, keep);
        let r = self.store.gc(&referenced)?;
        Ok(api::GcReport {
            keep,
            removed: r.removed,
            bytes_freed: r.bytes_freed,
            kept: r.kept,
        })
    }

    /// Takes a checkpoint (see `checkpoint`): the state of every pending change, contents in
    /// the store.
    pub fn checkpoint(&self, message: &str) -> Result<api::CheckpointInfo> {
        let _one = self.commit_lock.lock().unwrap();
        self.checkpoint_locked(message)
    }

    fn checkpoint_locked(&self, message: &str) -> Result<api::CheckpointInfo> {
        self.overlay.finish_deferred_recovery()?;
        let n = self.checkpoints.load(Ordering::Relaxed) + 1;
        let cp = crate::checkpoint::take(&self.overlay, &self.store, &format!("c{n}"), message)?;
        self.checkpoints.store(n, Ordering::Relaxed);
        let records = self.log()?;
        let changed = crate::checkpoint::infos(&records)
            .into_iter()
            .find(|i| i.id == cp.id)
            .map_or(cp.entries.len() as u64, |i| i.changed);
        Ok(crate::checkpoint::info(&cp, changed))
    }

    /// Every checkpoint, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<api::CheckpointInfo>> {
        Ok(crate::checkpoint::infos(&self.log()?))
    }

    /// Every content-store hash a checkpoint references (a store gc must keep them).
    pub fn checkpoint_hashes(&self) -> Result<std::collections::HashSet<crate::hash::ContentHash>> {
        Ok(crate::checkpoint::referenced_hashes(&self.log()?))
    }

    /// Returns the view at or below `req.paths` (all when empty) to checkpoint
    /// `req.checkpoint`, after taking a checkpoint of the view as it is (so the restore can be
    /// restored away).
    pub fn restore(&self, req: &api::RestoreRequest) -> Result<api::RestoreReport> {
        let _one = self.commit_lock.lock().unwrap();
        let cp = crate::checkpoint::find(&self.log()?, &req.checkpoint)?;
        let saved = self.checkpoint_locked(&format!("before restore to {}", cp.id))?;
        let restored =
            crate::checkpoint::restore::restore(&self.overlay, &self.store, &cp, &req.paths)?;
        Ok(api::RestoreReport {
            checkpoint: cp.id,
            saved: saved.id,
            restored,
        })
    }

    /// Diffs from point `req.from` to `req.to` (checkpoint ids, `@`, `base`).
    pub fn diff_range(
        &self,
        req: &api::RangeDiffRequest,
        show: api::Show,
    ) -> Result<Vec<api::FileDiff>> {
        use crate::checkpoint::range::{diff, Point};
        self.overlay.settle_written(None)?;
        let records = self.log()?;
        let from = Point::parse(&records, &req.from)?;
        let to = Point::parse(&records, &req.to)?;
        diff(&self.overlay, &self.store, &from, &to, &req.paths, show)
    }

    /// Every journal record.
    pub fn log(&self) -> Result<Vec<Record>> {
        Journal::read(&self.dir.join("journal"))
    }

    /// The records that touched any of `paths` or something below them (`wsfs blame`; see
    /// [`crate::journal::blame::touches`]); every record when `paths` is empty. Content
    /// written by inode and not hashed yet is recorded first, so the last write shows.
    pub fn blame(&self, paths: &[RelPath]) -> Result<Vec<Record>> {
        self.overlay.settle_written(None)?;
        Ok(crate::journal::blame::select(self.log()?, paths))
    }

    /// Walks the hash chain and re-hashes upper files against their recorded hashes.
    pub fn verify(&self) -> Result<api::VerifyReport> {
        self.settle_recovery();
        self.overlay.settle_written(None)?;
        let chain = Journal::verify_chain(&self.dir.join("journal"))?;
        let mut report = api::VerifyReport {
            records: chain.records,
            chain_ok: chain.ok,
            ..Default::default()
        };
        if let Some(p) = chain.problem {
            report.problems.push(format!("journal: {p}"));
        }
        // The chain above is the file at the journal's path: it must be the one open here.
        match self.overlay.journal().check_identity() {
            Ok(()) => {}
            Err(Error::JournalCorrupt { reason, .. }) => {
                report.problems.push(format!("journal: {reason}"))
            }
            Err(e) => report.problems.push(format!("journal: {e}")),
        }
        if self.overlay.recovery_deferred() {
            report.problems.push(
                "journal: recovery records are deferred until the state disk has free space (free some, then run verify again)".into(),
            );
        }
        // Every object the journal still references is in the store and hashes to its name.
        // A journal that no longer reads names nothing reliably: then every object is only
        // re-hashed (the problem above already says the journal is damaged).
        let referenced = match self.log() {
            Ok(records) => crate::undo::history::referenced(&records, u64::MAX),
            Err(e) => {
                report
                    .problems
                    .push(format!("content store: references not checked: {e}"));
                Default::default()
            }
        };
        let store = self.store.verify(&referenced)?;
        report.store_objects = store.objects;
        for h in &store.missing {
            report.problems.push(format!(
                "content store: object {h} is missing (a commit that names it cannot be undone)"
            ));
        }
        for h in &store.corrupt {
            report.problems.push(format!("content store: object {h} does not hash to its name (damaged; a commit that names it cannot be undone)"));
        }
        // Every record must be true of the upper layer: kind, mode, size and link target of
        // each changed path, and the content of each file whose hash is settled.
        for (path, change) in self.overlay.changes().snapshot() {
            let recorded = &change.current;
            let shape = self.overlay.upper_shape(&path)?;
            if let Some(problem) = shape_problem(recorded, &shape) {
                report.problems.push(format!("{path}: {problem}"));
                continue;
            }
            if let EntryState::File {
                hash: Some(recorded),
                ..
            } = recorded
            {
                match self.overlay.upper_state(&path, true)? {
                    EntryState::File { hash: Some(actual), .. } if actual == *recorded => report.files_ok += 1,
                    EntryState::File { hash: Some(actual), .. } => report.problems.push(format!(
                        "{path}: upper content hash {} differs from the journal's {} (a file still open for writing settles on close; otherwise the upper layer was changed behind wsfs' back)",
                        actual.short(), recorded.short()
                    )),
                    other => report.problems.push(format!(
                        "{path}: journal says file {}, upper layer has {}", recorded.short(), other.kind_word()
                    )),
                }
            }
        }
        Ok(report)
    }

    /// Writes recovery records a full disk deferred at open, if there is room now (else
    /// they wait: status and verify still answer, from the journal as it is).
    fn settle_recovery(&self) {
        if let Err(e) = self.overlay.finish_deferred_recovery() {
            tracing::warn!(workspace = %self.name, error = %e, "deferred recovery records still wait for space");
        }
    }

    /// Deletes a workspace's state entirely.
    pub fn destroy(state: &StateRoot, name: &str) -> Result<()> {
        check_workspace_name(name)?;
        let dir = state.workspace_dir(name);
        fs::remove_dir_all(&dir).map_err(|e| werr("remove", &dir, e))
    }
}

/// Reads one side of a diff (capped; `None` when it is not a regular file).
pub(crate) fn read_side(
    root: std::os::fd::BorrowedFd<'_>,
    path: &RelPath,
    state: &EntryState,
) -> Option<Vec<u8>> {
    const CAP: u64 = 8 << 20;
    match state {
        EntryState::File { size, .. } if *size <= CAP => {
            let (dir, name) = sys::walk_parent(root, path).ok()?;
            let fd = sys::openat(dir.as_fd(), name, libc::O_RDONLY, 0).ok()?;
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut fs::File::from(fd), &mut buf).ok()?;
            Some(buf)
        }
        EntryState::File { .. } => Some(vec![0]),
        EntryState::Symlink { target } => {
            let mut t = b"-> ".to_vec();
            t.extend_from_slice(target);
            t.push(b'\n');
            Some(t)
        }
        _ => None,
    }
}

fn write_meta(dir: &Path, meta: &WorkspaceMeta) -> Result<()> {
    let tmp = dir.join("meta.json.tmp");
    let data = serde_json::to_vec_pretty(meta).map_err(|e| Error::Encoding(e.to_string()))?;
    fs::write(&tmp, data).map_err(|e| werr("write", &tmp, e))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| werr("sync", &tmp, e))?;
    fs::rename(&tmp, dir.join("meta.json")).map_err(|e| werr("rename", &tmp, e))
}

fn lock_dir(dir: &Path) -> Result<fs::File> {
    let path = dir.join("lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| werr("open", &path, e))?;
    sys::try_lock_exclusive(f.as_fd()).map_err(|_| Error::WorkspaceBusy {
        dir: dir.to_owned(),
        lock: path.clone(),
    })?;
    Ok(f)
}

/// What differs between a recorded state and the upper entry's shape (content hashes aside),
/// or `None` when the record is true of it.
fn shape_problem(recorded: &EntryState, upper: &EntryState) -> Option<String> {
    let agree = match (recorded, upper) {
        (
            EntryState::File { mode, size, .. },
            EntryState::File {
                mode: m, size: s, ..
            },
        ) => {
            if (mode, size) != (m, s) {
                return Some(format!(
                    "journal says file of {size} bytes, mode {mode:o}; upper layer has {s} bytes, mode {m:o} (a file still open for writing settles on close)"
                ));
            }
            true
        }
        (a, b) => a == b,
    };
    (!agree).then(|| {
        format!(
            "journal says {}, upper layer has {}",
            recorded.kind_word(),
            upper.kind_word()
        )
    })
}
