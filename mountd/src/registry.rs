//! The workspaces this daemon serves: opened (recovered) workspaces and their mounts.
//!
//! Every method blocks (journal replay, FUSE mount/unmount, commits): the control server calls
//! them from `spawn_blocking`. Workspaces are independent: a per-workspace lock serialises mount
//! changes of one workspace, never two workspaces; one that fails to open is reported and the
//! others keep working.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use tracing::{error, info, warn};
use wsfs::api::{MountRequest, OpenMode, WorkspaceInfo};
use wsfs::policy::PolicyConfig;
use wsfs::state::{check_workspace_name, name_from_project, StateRoot};
use wsfs::workspace::Workspace;

use crate::fuse::{self, MountHandle};

/// Why a registry operation failed; the server maps each kind to an HTTP status
/// (`server::status_of`).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// No such workspace or entry (404).
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be served as asked (bad path, invalid name or argument, ...) (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with the current state (name taken, already mounted elsewhere,
    /// workspace in use, entry exists or not empty) (409).
    #[error("{0}")]
    Conflict(String),
    /// Refused by permissions or a protection (403).
    #[error("{0}")]
    Forbidden(String),
    /// Something failed inside the daemon (500).
    #[error("{0}")]
    Internal(String),
}

impl From<wsfs::Error> for Failure {
    fn from(e: wsfs::Error) -> Self {
        use wsfs::Error as E;
        let kind: fn(String) -> Failure = match &e {
            E::NotFound(_)
            | E::NoSuchWorkspace { .. }
            | E::NoSuchCommit(_)
            | E::NoSuchCheckpoint(_) => Failure::NotFound,
            E::Exists(_)
            | E::NotEmpty(_)
            | E::Stale(_)
            | E::WorkspaceExists(_)
            | E::WorkspaceBusy { .. }
            | E::GitRefused(_)
            | E::HunksRefused(_)
            | E::UndoRefused(_) => Failure::Conflict,
            E::InvalidName(_)
            | E::InvalidArgument(_)
            | E::NotADirectory(_)
            | E::IsADirectory(_)
            | E::CrossDevice(_)
            | E::InvalidWorkspaceName(_)
            | E::Workspace(_) => Failure::BadRequest,
            E::PermissionDenied(_) | E::NotPermitted(_) | E::UnsafeHostPath { .. } => {
                Failure::Forbidden
            }
            E::Io { .. }
            | E::UnknownInode(_)
            | E::UnknownHandle(_)
            | E::BadHandle(_)
            | E::Unsupported(_)
            | E::UpperMissing(_)
            | E::NoParent(_)
            | E::Posix { .. }
            | E::JournalCorrupt { .. }
            | E::Encoding(_)
            | E::GitFailed(_)
            | E::Store(_) => Failure::Internal,
        };
        kind(e.to_string())
    }
}

/// One open workspace and its mount, if mounted.
pub struct Entry {
    /// The workspace (overlay, journal, commit engine).
    pub ws: Arc<Workspace>,
    mount: Mutex<Option<MountHandle>>,
}

impl Entry {
    /// The workspace's summary, with whether its mount allows other users.
    pub fn info(&self) -> WorkspaceInfo {
        let mut info = self.ws.info();
        if info.mountpoint.is_some() {
            let mount = self.mount.lock().unwrap();
            info.allow_other = mount.as_ref().map(|h| h.allow_other());
            info.open_mode = mount.as_ref().map(|h| h.open_mode());
        }
        info
    }
}

/// All workspaces of one state directory.
pub struct Registry {
    state: StateRoot,
    /// The open mode of a mount whose request and workspace name none (`mountd --open-mode`).
    default_open_mode: OpenMode,
    entries: DashMap<String, Arc<Entry>>,
    /// Workspaces that could not be opened, with the reason (listed, not served).
    broken: DashMap<String, String>,
    /// Serialises workspace creation (name choice); never held during mounts.
    create: Mutex<()>,
    /// Every workspace's journal records, for `GET /v1/events`.
    pub events: crate::events::Events,
}

impl Registry {
    /// An empty registry over `state`, mounting in `default_open_mode` unless told otherwise.
    pub fn new(state: StateRoot, default_open_mode: OpenMode) -> Self {
        Registry {
            state,
            default_open_mode,
            events: crate::events::Events::default(),
            entries: DashMap::new(),
            broken: DashMap::new(),
            create: Mutex::new(()),
        }
    }

    /// Opens every workspace of the state dir (journal replay, interrupted commits rolled
    /// forward) and remounts those that were mounted. Returns what could not be recovered.
    pub fn recover_all(&self) -> Vec<String> {
        let names = match self.state.list() {
            Ok(n) => n,
            Err(e) => return vec![format!("listing workspaces: {e}")],
        };
        let mut problems = Vec::new();
        for name in names {
            let ws = match Workspace::open(&self.state, &name) {
                Ok(ws) => ws,
                Err(e) => {
                    error!(workspace = %name, error = %e, "cannot recover workspace");
                    let msg = format!("{name}: cannot open: {e}");
                    self.broken.insert(name, e.to_string());
                    problems.push(msg);
                    continue;
                }
            };
            let meta = ws.meta();
            let entry = self.insert(ws);
            if meta.mounted {
                let mp = meta
                    .mountpoint
                    .clone()
                    .unwrap_or_else(|| self.state.default_mountpoint(&name));
                match self.mount_entry(&entry, &mp, None) {
                    Ok(left) => problems.extend(left.into_iter().map(|p| format!("{name}: {p}"))),
                    Err(e) => {
                        error!(workspace = %name, error = %e, "cannot remount workspace");
                        problems.push(format!(
                            "{name}: cannot remount at {}: {e}; run `wsfs mount` again",
                            mp.display()
                        ));
                    }
                }
            }
            info!(workspace = %name, mounted = meta.mounted, "recovered workspace");
        }
        problems
    }

    fn insert(&self, ws: Arc<Workspace>) -> Arc<Entry> {
        self.events.follow(&ws);
        let entry = Arc::new(Entry {
            ws,
            mount: Mutex::new(None),
        });
        self.broken.remove(entry.ws.name());
        self.entries
            .insert(entry.ws.name().to_string(), entry.clone());
        entry
    }

    /// Every open workspace.
    pub fn workspaces(&self) -> Vec<Arc<Workspace>> {
        self.entries.iter().map(|e| e.ws.clone()).collect()
    }

    /// The workspace `name`, or why it cannot be served.
    pub fn get(&self, name: &str) -> Result<Arc<Entry>, Failure> {
        if let Some(e) = self.entries.get(name) {
            return Ok(e.clone());
        }
        if let Some(why) = self.broken.get(name) {
            return Err(Failure::BadRequest(format!(
                "workspace {name:?} could not be opened: {}",
                why.value()
            )));
        }
        Err(Failure::NotFound(format!(
            "no workspace named {name:?}; see `wsfs list`"
        )))
    }

    /// Every workspace, sorted by name (broken ones with their `problem`).
    pub fn list(&self) -> Vec<WorkspaceInfo> {
        let mut out: Vec<WorkspaceInfo> = self.entries.iter().map(|e| e.info()).collect();
        for b in self.broken.iter() {
            out.push(WorkspaceInfo {
                name: b.key().clone(),
                project: PathBuf::new(),
                mountpoint: None,
                problem: Some(b.value().clone()),
                ..WorkspaceInfo::default()
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Creates or reopens the workspace for `req.project` and mounts it (idempotent when it
    /// is already mounted where asked).
    pub fn mount(&self, req: &MountRequest) -> Result<WorkspaceInfo, Failure> {
        let project = std::fs::canonicalize(&req.project).map_err(|e| {
            Failure::BadRequest(format!(
                "project directory {}: {e}; pass an existing directory",
                req.project.display()
            ))
        })?;
        if !project.is_dir() {
            return Err(Failure::BadRequest(format!(
                "project {} is not a directory",
                project.display()
            )));
        }
        self.refuse_nested(&project)?;
        if let Some(m) = &req.mountpoint {
            // Before a workspace is created for a request that cannot be mounted.
            refuse_overlap(&project, &absolute(m)?)?;
        }
        let entry = self.entry_for(&project, req.name.as_deref(), &req.policy)?;
        let meta = entry.ws.meta();
        if req.policy.is_some() && meta.policy != req.policy {
            return Err(Failure::Conflict(format!(
                "workspace {:?} was created with other path rules than this request asks for; \
                 a workspace keeps its rules: remove it (`wsfs remove {}`) or pick another name",
                meta.name, meta.name
            )));
        }
        let mp = match &req.mountpoint {
            Some(m) => absolute(m)?,
            None => meta
                .mountpoint
                .clone()
                .unwrap_or_else(|| self.state.default_mountpoint(entry.ws.name())),
        };
        // Containers left with a dead mount are logged; the request itself succeeded.
        self.mount_entry(&entry, &mp, req.open_mode)?;
        Ok(entry.info())
    }

    /// A project inside a workspace mountpoint (or the state dir) would stack overlays.
    fn refuse_nested(&self, project: &Path) -> Result<(), Failure> {
        if project.starts_with(self.state.path()) {
            return Err(Failure::BadRequest(format!(
                "{} is inside the wsfs state directory {}; pass the host project directory",
                project.display(),
                self.state.path().display()
            )));
        }
        for e in self.entries.iter() {
            if let Some(mp) = e
                .mount
                .lock()
                .unwrap()
                .as_ref()
                .map(|h| h.mountpoint().to_owned())
            {
                if project.starts_with(&mp) {
                    return Err(Failure::BadRequest(format!(
                        "{} is inside the mountpoint {} of workspace {:?}; pass the host project directory ({})",
                        project.display(),
                        mp.display(),
                        e.ws.name(),
                        e.ws.meta().project.display()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The existing workspace for `project` (by name, or the one on that project), or a new one.
    fn entry_for(
        &self,
        project: &Path,
        name: Option<&str>,
        policy: &Option<PolicyConfig>,
    ) -> Result<Arc<Entry>, Failure> {
        let _guard = self.create.lock().unwrap();
        if let Some(name) = name {
            check_workspace_name(name)?;
            if let Ok(entry) = self.get(name) {
                let existing = entry.ws.meta().project;
                if existing != project {
                    return Err(Failure::Conflict(format!(
                        "workspace {name:?} belongs to {}, not {}; pick another --name",
                        existing.display(),
                        project.display()
                    )));
                }
                return Ok(entry);
            }
            if let Some(why) = self.broken.get(name) {
                return Err(Failure::Conflict(format!(
                    "workspace {name:?} exists but could not be opened: {}",
                    why.value()
                )));
            }
            return Ok(self.insert(Workspace::create_with(
                &self.state,
                name,
                project,
                policy.clone(),
            )?));
        }
        if let Some(e) = self.entries.iter().find(|e| e.ws.meta().project == project) {
            return Ok(e.clone());
        }
        let base = name_from_project(project);
        let name = (1..)
            .map(|i| {
                if i == 1 {
                    base.clone()
                } else {
                    format!("{base}-{i}")
                }
            })
            .find(|n| {
                !self.entries.contains_key(n)
                    && !self.broken.contains_key(n)
                    && !self.state.workspace_dir(n).exists()
            })
            .expect("an unused name exists");
        Ok(self.insert(Workspace::create_with(
            &self.state,
            &name,
            project,
            policy.clone(),
        )?))
    }

    /// Mounts `entry` at `mp` in `open_mode`, else in the mode it was last mounted with, else
    /// in the daemon's default. Returns what the mount could not re-attach where a dead mount
    /// of an earlier daemon was (containers that keep it; also logged).
    fn mount_entry(
        &self,
        entry: &Entry,
        mp: &Path,
        open_mode: Option<OpenMode>,
    ) -> Result<Vec<String>, Failure> {
        let mut slot = entry.mount.lock().unwrap();
        if let Some(h) = slot.as_ref() {
            let want = mp.canonicalize().unwrap_or_else(|_| mp.to_owned());
            if open_mode.is_some_and(|m| m != h.open_mode()) {
                return Err(Failure::Conflict(format!(
                    "workspace {:?} is mounted in open mode {}; run `wsfs unmount {}` first to mount it in mode {}",
                    entry.ws.name(),
                    h.open_mode(),
                    entry.ws.name(),
                    open_mode.unwrap_or_default()
                )));
            }
            if h.mountpoint() == want {
                return Ok(Vec::new());
            }
            return Err(Failure::Conflict(format!(
                "workspace {:?} is already mounted at {}; run `wsfs unmount {}` first",
                entry.ws.name(),
                h.mountpoint().display(),
                entry.ws.name()
            )));
        }
        let project = entry.ws.meta().project;
        refuse_overlap(&project, mp)?;
        let mode = open_mode
            .or(entry.ws.meta().open_mode)
            .unwrap_or(self.default_open_mode);
        let handle = fuse::mount(entry.ws.overlay().clone(), &project, mp, mode)
            .map_err(|e| Failure::Internal(format!("mounting at {}: {e:#}", mp.display())))?;
        let mounted_at = handle.mountpoint().to_owned();
        let left = handle.problems().to_vec();
        *slot = Some(handle);
        entry.ws.update_meta(&|m| {
            m.mounted = true;
            m.mountpoint = Some(mounted_at.clone());
            m.open_mode = Some(mode);
        })?;
        Ok(left)
    }

    /// Unmounts `name`; the overlay and journal stay, and mounting again resumes them.
    pub fn unmount(&self, name: &str) -> Result<WorkspaceInfo, Failure> {
        let entry = self.get(name)?;
        let handle = entry.mount.lock().unwrap().take();
        if let Some(h) = handle {
            entry.ws.overlay().sync_all()?;
            h.unmount()
                .map_err(|e| Failure::Internal(format!("unmounting {name}: {e:#}")))?;
        }
        entry.ws.update_meta(&|m| m.mounted = false)?;
        Ok(entry.info())
    }

    /// Unmounts `name` and deletes its state: every pending change is dropped.
    pub fn remove(&self, name: &str) -> Result<wsfs::api::DiscardReport, Failure> {
        let entry = self.get(name)?;
        let dropped = entry.ws.status()?.into_iter().map(|c| c.path).collect();
        self.unmount(name)?;
        let default_mp = self.state.default_mountpoint(name);
        let mp = entry.ws.meta().mountpoint;
        for m in mp.iter().chain([&default_mp]) {
            fuse::release_placeholder(m);
        }
        self.entries.remove(name);
        drop(entry);
        Workspace::destroy(&self.state, name)?;
        let _ = std::fs::remove_dir(default_mp);
        Ok(wsfs::api::DiscardReport { discarded: dropped })
    }

    /// Daemon shutdown: flush every journal and upper layer, unmount everything. Workspaces
    /// stay marked mounted, so the next start remounts them.
    pub fn shutdown(&self) {
        for e in self.entries.iter() {
            if let Err(err) = e.ws.overlay().sync_all() {
                warn!(workspace = %e.ws.name(), error = %err, "flush at shutdown failed");
            }
            let handle = e.mount.lock().unwrap().take();
            if let Some(h) = handle {
                if let Err(err) = h.unmount() {
                    warn!(workspace = %e.ws.name(), error = %format!("{err:#}"), "unmount at shutdown failed");
                }
            }
        }
    }
}

/// Refuses a mountpoint inside the project, and a project inside (or equal to) the
/// mountpoint: the workspace would show itself inside itself (`proj/sub/sub/…` without end)
/// and hide the host files under it. Symlinks in the existing part of `mp` are resolved.
fn refuse_overlap(project: &Path, mp: &Path) -> Result<(), Failure> {
    let project_c = std::fs::canonicalize(project).unwrap_or_else(|_| project.to_owned());
    let mp_c = resolve_existing_prefix(mp);
    let advice = "pick a mountpoint outside the project (or leave --mountpoint out for the \
                  default under the wsfs state directory)";
    if mp_c.starts_with(&project_c) {
        return Err(Failure::BadRequest(format!(
            "mountpoint {} is inside the project {}: the workspace would show itself inside \
             itself and hide the host's files there; {advice}",
            mp.display(),
            project.display()
        )));
    }
    if project_c.starts_with(&mp_c) {
        return Err(Failure::BadRequest(format!(
            "project {} is inside the mountpoint {}: the mount would hide the project behind \
             its own workspace; {advice}",
            project.display(),
            mp.display()
        )));
    }
    Ok(())
}

/// `p` (absolute) with its longest existing prefix canonicalized and the rest (not there
/// yet, so no symlinks) appended lexically.
fn resolve_existing_prefix(p: &Path) -> PathBuf {
    let mut existing = p;
    let mut tail = Vec::new();
    let base = loop {
        if let Ok(c) = std::fs::canonicalize(existing) {
            break c;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_owned());
                existing = parent;
            }
            // `..` or `.` last: keep walking up lexically.
            (Some(parent), None) => {
                tail.push(std::ffi::OsString::from(".."));
                existing = parent;
            }
            (None, _) => break existing.to_owned(),
        }
    };
    let mut out = base;
    for name in tail.iter().rev() {
        if name == ".." {
            out.pop();
        } else if name != "." {
            out.push(name);
        }
    }
    out
}

fn absolute(p: &Path) -> Result<PathBuf, Failure> {
    if p.is_absolute() {
        Ok(p.to_owned())
    } else {
        Err(Failure::BadRequest(format!(
            "mountpoint {} must be an absolute path",
            p.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountpoint_and_project_must_not_overlap() {
        let t = tempfile::tempdir().unwrap();
        let project = t.path().join("proj");
        std::fs::create_dir_all(project.join("sub")).unwrap();
        let refused = |mp: &Path| match refuse_overlap(&project, mp) {
            Err(Failure::BadRequest(m)) => {
                assert!(
                    m.contains(&*project.to_string_lossy()) && m.contains(&*mp.to_string_lossy()),
                    "{m}"
                );
                true
            }
            Err(e) => panic!("{e}"),
            Ok(()) => false,
        };
        assert!(refused(&project.join("sub")));
        assert!(refused(&project.join("new/mnt")));
        assert!(refused(&project));
        assert!(refused(&project.join("sub/..")));
        assert!(refused(t.path()));
        assert!(refused(Path::new("/")));
        // Through a symlink to the project.
        std::os::unix::fs::symlink(&project, t.path().join("link")).unwrap();
        assert!(refused(&t.path().join("link/sub")));
        assert!(!refused(&t.path().join("mnt")));
        assert!(!refused(&t.path().join("proj-mnt")));
        assert!(!refused(&t.path().join("proj/../elsewhere")));
    }
}
