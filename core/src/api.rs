//! Control API types shared by `mountd` (server) and the `wsfs` CLI (client).
//!
//! HTTP/JSON over a Unix socket. Paths are [`RelPath`]s (bytes: JSON text when UTF-8, else
//! `{"b64": "..."}`). Every error response is an [`ApiError`] with a machine `code` and a human
//! `message` that says what to do next. This schema is documented in `docs/api.md`; additions
//! are backwards compatible (new optional fields), removals bump [`API_VERSION`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::hash::ContentHash;
use crate::journal::record::EntryState;
use crate::relpath::RelPath;

/// Version of this schema; the daemon reports it as `api` in `GET /v1/daemon` ([`DaemonInfo`]).
pub const API_VERSION: u32 = 1;

/// A workspace as listed by `wsfs list`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    /// Workspace name (unique per state dir).
    pub name: String,
    /// Absolute host project directory (the lower layer).
    pub project: PathBuf,
    /// Where it is mounted, if it is.
    pub mountpoint: Option<PathBuf>,
    /// Number of pending changes a reviewer sees (neither scratch nor git churn), from the
    /// in-memory change set (no walk, no hash).
    pub pending: u64,
    /// Pending scratch paths (left out of `pending` and of commit unless asked).
    #[serde(default)]
    pub scratch: u64,
    /// Pending git object store and reflog paths (left out of `pending`, committed).
    #[serde(default)]
    pub git_churn: u64,
    /// The largest groups of pending scratch paths (`node_modules/`, `target/`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scratch_under: Vec<String>,
    /// The groups of pending git churn (`.git/objects/`, `.git/logs/`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub git_churn_under: Vec<String>,
    /// Write-through paths not yet on the host: open for writing, or held back by a conflict
    /// (left out of `pending`; the daemon commits them).
    #[serde(default)]
    pub write_through: u64,
    /// The groups of those write-through paths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_through_under: Vec<String>,
    /// Container image id recorded by the controller, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Why the daemon could not open or mount it, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// While mounted: whether users other than mountd's own (a Docker daemon running as
    /// root) may use the mount (`allow_other`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_other: Option<bool>,
    /// While mounted: how the mount serves `open(2)` ([`OpenMode`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_mode: Option<OpenMode>,
}

/// How a path differs from the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// New in the overlay.
    Added,
    /// Content, mode or target changed.
    Modified,
    /// Removed in the overlay.
    Deleted,
    /// Changed type (file became dir, ...).
    TypeChanged,
    /// Renamed from `from` (content unchanged or changed).
    Renamed,
}

impl ChangeKind {
    /// One-letter code like `git status --short`.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Modified => 'M',
            ChangeKind::Deleted => 'D',
            ChangeKind::TypeChanged => 'T',
            ChangeKind::Renamed => 'R',
        }
    }
}

/// One pending change, as `status` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Path in the workspace.
    pub path: RelPath,
    /// What happened.
    pub kind: ChangeKind,
    /// For renames: where the content came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<RelPath>,
    /// The host state the change was based on.
    pub base: EntryState,
    /// The overlay's current state.
    pub current: EntryState,
    /// Matches a scratch rule (left out of commit unless asked).
    #[serde(default)]
    pub scratch: bool,
    /// Matches a protected rule (refused at commit without `allow_protected`).
    #[serde(default)]
    pub protected: bool,
    /// Git's own object store or reflog churn (`.git/objects/**`, `.git/logs/**`): hidden from
    /// review like scratch, but committed like any change.
    #[serde(default)]
    pub git_churn: bool,
    /// Matches a hide rule: a secret the workspace created itself (a host secret is masked
    /// and cannot change). Never committed.
    #[serde(default)]
    pub secret: bool,
    /// Matches a write-through rule: the daemon commits it as soon as it can; pending only
    /// while open for writing or held back by a conflict.
    #[serde(default)]
    pub write_through: bool,
}

/// Which pending changes `status` and `diff` return (`?show=` on the API).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Show {
    /// Every pending change (the API default, as before `show` existed).
    #[default]
    All,
    /// What a reviewer wants: neither scratch, git churn nor write-through (the CLI
    /// default).
    Review,
    /// Scratch paths only.
    Scratch,
}

impl Show {
    /// True if a change of review class `noise` is shown.
    pub fn keeps(self, noise: crate::policy::Noise) -> bool {
        use crate::policy::Noise;
        match self {
            Show::All => true,
            Show::Review => noise == Noise::None,
            Show::Scratch => noise == Noise::Scratch,
        }
    }
}

/// Query of `GET status` and `POST diff`: `?show=all|review|scratch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShowQuery {
    /// Which changes (default `all`).
    #[serde(default)]
    pub show: Show,
}

/// A file's diff, as `diff` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    /// The change.
    pub change: Change,
    /// Unified diff text (empty for binary, directories, or no content change).
    pub unified: String,
    /// True when either side is binary (NUL byte or not UTF-8).
    pub binary: bool,
    /// Lines added.
    pub added_lines: u64,
    /// Lines removed.
    pub removed_lines: u64,
    /// For renames: git's similarity index of the content, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<u8>,
    /// Both sides have the same bytes (a pure rename or a mode change).
    #[serde(default)]
    pub same_content: bool,
    /// The hunks of `unified`, in order, each choosable on its own in a commit
    /// ([`CommitRequest::hunks`]); empty for binary files and for no content change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hunks: Vec<Hunk>,
}

/// One hunk of a text file's diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hunk {
    /// Index in the file's hunks, from 0.
    pub id: u32,
    /// blake3 of `text`: a selection naming a hunk by id must carry it, so a selection
    /// made before the file changed is refused.
    pub hash: ContentHash,
    /// The hunk as the unified diff shows it: its `@@ -a,b +c,d @@` line and its lines.
    pub text: String,
}

/// Hunks chosen from one file (see [`CommitRequest::hunks`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HunkSelection {
    /// The file.
    pub path: RelPath,
    /// The hunks to commit, by id and hash (as the diff gave them).
    pub hunks: Vec<HunkRef>,
}

/// A hunk named by its id and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HunkRef {
    /// [`Hunk::id`].
    pub id: u32,
    /// [`Hunk::hash`].
    pub hash: ContentHash,
}

/// `POST /v1/workspaces/{name}/commit` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// Paths to commit (and everything below them); empty = all. A path naming the project
    /// root, or an absolute path, is refused ([`RelPath::selection`]).
    #[serde(default, deserialize_with = "crate::relpath::deserialize_selection")]
    pub paths: Vec<RelPath>,
    /// Plan only; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Overwrite conflicting host files after backing them up.
    #[serde(default)]
    pub force: bool,
    /// Allow changes to protected paths.
    #[serde(default)]
    pub allow_protected: bool,
    /// Also commit scratch paths.
    #[serde(default)]
    pub include_scratch: bool,
    /// Commit setuid/setgid bits (stripped otherwise).
    #[serde(default)]
    pub keep_setid: bool,
    /// 3-way merge each text file the host changed since the workspace based its change on
    /// it (`wsfs commit --merge`); apply the clean merges and the other changes, and report
    /// what could not be merged as conflicts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub merge: bool,
    /// Parts of files to commit (`wsfs commit -p`): each listed file gets the host's
    /// content with only the chosen hunks applied, and stays pending with the rest, rebased
    /// on what was committed. When given, the commit covers these files and the whole
    /// changes at `paths` only (empty `paths` then means none). A hunk whose hash no longer
    /// matches is refused (409) naming the path; a file the host changed since the workspace
    /// based its change on it is a conflict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hunks: Vec<HunkSelection>,
}

/// A path the commit would not apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The path.
    pub path: RelPath,
    /// Why: `host_changed`, `protected`, `unsafe_path`, `device` (a device node: never
    /// committed, whatever the flags); with `merge`: `merge_conflict`, `no_base`, `busy`.
    pub reason: String,
    /// The base the overlay recorded.
    pub base: EntryState,
    /// What the host has now.
    pub host: EntryState,
    /// What the overlay has.
    pub overlay: EntryState,
    /// Base content hash, for convenience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_hash: Option<ContentHash>,
    /// Host content hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_hash: Option<ContentHash>,
    /// Overlay content hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay_hash: Option<ContentHash>,
    /// What to do about it.
    pub hint: String,
}

/// Result of a commit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitReport {
    /// Commit id (journal + backups folder name); empty for dry runs and no-ops.
    pub id: String,
    /// Paths applied (or that would be, for a dry run).
    pub applied: Vec<RelPath>,
    /// Paths refused; when non-empty and not forced, nothing was applied.
    pub conflicts: Vec<Conflict>,
    /// Where overwritten host files were saved (forced commits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_dir: Option<PathBuf>,
    /// Paths left pending because the workspace had them open for writing, or they changed
    /// while the commit ran (in the workspace, or on the host after the conflict check).
    /// Commit them again once they are closed (the next commit checks a host change again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub busy: Vec<RelPath>,
    /// True for a dry run.
    pub dry_run: bool,
    /// Scratch paths still pending after this commit (not selected without
    /// `include_scratch`).
    #[serde(default)]
    pub scratch_pending: u64,
    /// Workspace-only secrets (paths a hide rule matches) left pending: never committed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<RelPath>,
    /// Paths of `applied` committed in part (`hunks`): they stay pending with the hunks
    /// left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<RelPath>,
    /// Paths `merge` applied as a 3-way merge of the host's and the workspace's changes
    /// (also in `applied`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<RelPath>,
}

/// Result of a discard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscardReport {
    /// Paths whose changes were dropped.
    pub discarded: Vec<RelPath>,
}

/// Result of `verify`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// Chain intact.
    pub chain_ok: bool,
    /// Upper files whose content matches the recorded hash.
    pub files_ok: u64,
    /// Content store objects checked (every one present is re-hashed).
    #[serde(default)]
    pub store_objects: u64,
    /// Problems found, each naming the path or record and what to do.
    pub problems: Vec<String>,
}

/// `POST /v1/workspaces` body: mount a project.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountRequest {
    /// Absolute host project directory.
    pub project: PathBuf,
    /// Workspace name; default derived from the directory name.
    #[serde(default)]
    pub name: Option<String>,
    /// Where to mount; default `<state>/mnt/<name>`.
    #[serde(default)]
    pub mountpoint: Option<PathBuf>,
    /// Path rules for a new workspace (default: the documented defaults). An existing
    /// workspace keeps the rules it was created with; asking for other ones is a conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::policy::PolicyConfig>,
    /// How the mount serves `open(2)`; default: what the workspace was last mounted with,
    /// else the daemon's default (`mountd --open-mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_mode: Option<OpenMode>,
}

/// One line of the event stream (`GET /v1/events`, Server-Sent Events): a journal record of
/// a workspace as it is appended (a change, a commit's begin and end, ...), or a note that
/// this client fell behind and missed `missed` events (re-read the state then).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A record appended to a workspace's journal.
    Record {
        /// The workspace.
        workspace: String,
        /// The record, as `GET …/log` shows it.
        record: Box<crate::journal::record::Record>,
    },
    /// The client read too slowly; `missed` events were dropped for it.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// The remote API token (`GET /v1/token`, `POST /v1/token/rotate`; local socket only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// The bearer token remote clients send (`Authorization: Bearer TOKEN`).
    pub token: String,
}

/// How a workspace mount serves `open(2)` of regular files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpenMode {
    /// Every open is a round trip to the daemon, which answers with a file handle (FUSE
    /// passthrough for files of the upper layer); the content of a written file is hashed
    /// when its last writer closes it.
    #[default]
    Open,
    /// Opens never reach the daemon (`FUSE_OPEN` answered `ENOSYS`: the kernel stops sending
    /// OPEN, FLUSH and RELEASE and keeps file pages cached across opens); reads and writes
    /// are served by inode, a file is copied up at its first write, truncate or fallocate,
    /// and written content is hashed when its writes go idle or status, verify or commit
    /// need it. No FUSE passthrough.
    NoOpen,
}

impl OpenMode {
    /// The name used on the command line and in the API (`open`, `no-open`).
    pub fn as_str(self) -> &'static str {
        match self {
            OpenMode::Open => "open",
            OpenMode::NoOpen => "no-open",
        }
    }
}

impl std::fmt::Display for OpenMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OpenMode {
    type Err = String;

    fn from_str(s: &str) -> Result<OpenMode, String> {
        match s {
            "open" => Ok(OpenMode::Open),
            "no-open" => Ok(OpenMode::NoOpen),
            _ => Err(format!("unknown open mode {s:?}: use `open` or `no-open`")),
        }
    }
}

/// Error body of every non-2xx response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable machine code: `not_found`, `bad_request`, `conflict`, `forbidden`, `internal`.
    pub code: String,
    /// Human message, naming the path/workspace and what to do.
    pub message: String,
    /// For refused commits: the report with the conflict list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitReport>,
}

/// `GET /v1/daemon`: who is answering, and what it could not recover at start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// [`API_VERSION`] of the daemon.
    pub api: u32,
    /// wsfs version of the daemon.
    pub version: String,
    /// Daemon process id.
    pub pid: u32,
    /// Its state directory.
    pub state_dir: PathBuf,
    /// Its control socket.
    pub socket: PathBuf,
    /// Workspaces it could not recover or remount at start, with the reason.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// Body of `diff` and `discard`: paths to act on (and everything below them); empty = all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsRequest {
    /// Workspace-relative paths; the project root and absolute paths are refused
    /// ([`RelPath::selection`]).
    #[serde(default, deserialize_with = "crate::relpath::deserialize_selection")]
    pub paths: Vec<RelPath>,
}

/// One line of the commit response stream (`application/x-ndjson`): zero or more
/// `progress` lines, then exactly one `done` or `error`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CommitEvent {
    /// `done` of `total` paths applied so far.
    Progress {
        /// Paths applied.
        done: u64,
        /// Paths to apply.
        total: u64,
    },
    /// The commit finished (or was refused: then `report.conflicts` is non-empty and nothing
    /// was applied unless forced).
    Done {
        /// The result.
        report: CommitReport,
    },
    /// The commit failed; the error says why and what to do.
    Error {
        /// The error.
        error: ApiError,
    },
}

/// `POST /v1/workspaces/{name}/image` body: the image content id the controller started the
/// workspace's container from (shown by `wsfs ps` and `wsfs list`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRecord {
    /// `sha256:...`.
    pub image_id: String,
}

/// A pending change a git patch or export cannot carry, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    /// The path.
    pub path: RelPath,
    /// Why: inside a `.git` directory, a workspace-only secret, or a FIFO, socket or device
    /// node (git has no such entries).
    pub reason: String,
}

/// `POST /v1/workspaces/{name}/patch`: the pending changes as one patch `git apply` accepts
/// (`wsfs diff --git`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitPatch {
    /// The patch, as `git diff --binary --full-index -M` writes it.
    pub patch: String,
    /// The paths it touches (a rename's destination), in patch order.
    pub paths: Vec<RelPath>,
    /// Selected changes git cannot hold, left out of the patch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
}

/// `POST /v1/workspaces/{name}/export` body: write the pending changes as one git commit on a
/// branch of the host repository (`wsfs export --branch`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// Branch name (`refs/heads/<branch>`).
    pub branch: String,
    /// Commit message; a default names the workspace.
    #[serde(default)]
    pub message: Option<String>,
    /// Paths to export (and everything below them); empty = all. Root and absolute paths are
    /// refused ([`RelPath::selection`]).
    #[serde(default, deserialize_with = "crate::relpath::deserialize_selection")]
    pub paths: Vec<RelPath>,
    /// Replace the branch when it exists (never the checked-out branch).
    #[serde(default)]
    pub force: bool,
}

/// Result of an export.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportReport {
    /// The branch written (short name).
    pub branch: String,
    /// The new commit's id.
    pub commit: String,
    /// Its parent: the host's HEAD (none when HEAD had no commit yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The new commit's tree id.
    pub tree: String,
    /// The commit the branch pointed at before (`force` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    /// The paths the commit changes (a rename's destination), as in [`GitPatch::paths`].
    pub paths: Vec<RelPath>,
    /// Selected changes git cannot hold, left out of the commit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<LeftOut>,
}

/// `POST /v1/workspaces/{name}/undo` body: put the host back as it was before a commit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UndoRequest {
    /// The commit to undo; default the last one that can be undone.
    #[serde(default)]
    pub commit: Option<String>,
    /// Put back paths the host changed since the commit too, backing the host version up
    /// first.
    #[serde(default)]
    pub force: bool,
}

/// Result of an undo.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoReport {
    /// Undo id (journal, and the backups folder of a forced undo); empty when refused.
    pub id: String,
    /// The commit undone (or refused).
    pub commit: String,
    /// Paths put back on the host; each is pending in the workspace again.
    pub restored: Vec<RelPath>,
    /// Paths the host changed since the commit; when non-empty and not forced, nothing was
    /// applied. `base` is the state the undo would restore, `overlay` what the commit wrote.
    pub conflicts: Vec<Conflict>,
    /// Where host versions were saved (forced undo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_dir: Option<PathBuf>,
}

/// One commit in `GET /v1/workspaces/{name}/commits` (`wsfs log --commits`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// Commit id.
    pub id: String,
    /// When it began, ns since the epoch.
    pub time_ns: i64,
    /// The paths it applied.
    pub paths: Vec<CommittedPath>,
    /// True when `wsfs undo` can put it back.
    pub undoable: bool,
    /// Why not, when it cannot: `undone`, `no_versions` (made by an older wsfs, or a
    /// write-through flush), `collected` (`wsfs gc` dropped its versions), `unfinished`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_undoable: Option<String>,
    /// The undo that put it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undone_by: Option<String>,
}

/// One path of a commit: the host's state before and after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedPath {
    /// The path.
    pub path: RelPath,
    /// The host's state before the commit (absent from commits that kept no versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<EntryState>,
    /// The state the commit wrote.
    pub after: EntryState,
}

/// `POST /v1/workspaces/{name}/gc` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcRequest {
    /// Keep the versions of the last `keep` commits that can be undone; default 20.
    #[serde(default)]
    pub keep: Option<u64>,
}

/// Result of `wsfs gc`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// Commits whose versions were kept.
    pub keep: u64,
    /// Objects removed from the content store.
    pub removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Objects kept.
    pub kept: u64,
}

/// `POST /v1/workspaces/{name}/checkpoints` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRequest {
    /// What the checkpoint marks (may be empty).
    #[serde(default)]
    pub message: String,
}

/// One checkpoint: the answer of `POST …/checkpoints`, one item of `GET …/checkpoints`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Its id (`c1`, `c2`, ...; in the order taken).
    pub id: String,
    /// Sequence number of its journal record.
    pub seq: u64,
    /// When it was taken, nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// Its message.
    pub message: String,
    /// Paths the workspace had changed at that point.
    pub paths: u64,
    /// Paths whose state differs from the previous checkpoint's (all of them for the first).
    pub changed: u64,
}

/// `POST /v1/workspaces/{name}/restore` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The checkpoint to return to.
    pub checkpoint: String,
    /// Paths to restore (and everything below them); empty = all. The root and absolute paths
    /// are refused ([`RelPath::selection`]).
    #[serde(default, deserialize_with = "crate::relpath::deserialize_selection")]
    pub paths: Vec<RelPath>,
}

/// What a restore did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReport {
    /// The checkpoint restored.
    pub checkpoint: String,
    /// The checkpoint taken automatically just before (restore it to undo this restore).
    pub saved: String,
    /// Paths whose state changed, sorted.
    pub restored: Vec<RelPath>,
}

/// `POST /v1/workspaces/{name}/diff-range` body: what changed from one point to another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeDiffRequest {
    /// A checkpoint id, `@` (now) or `base` (the host state the workspace started from).
    pub from: String,
    /// Same as `from`.
    pub to: String,
    /// Paths to show (and everything below them); empty = all.
    #[serde(default, deserialize_with = "crate::relpath::deserialize_selection")]
    pub paths: Vec<RelPath>,
}
