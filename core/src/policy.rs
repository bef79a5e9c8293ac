//! Per-workspace path policy: which paths are *hidden*, *scratch* or *protected*.
//!
//! All rules use gitignore syntax and are matched relative to the project root. As in git, a path
//! matches if it or any of its parent directories matches, and a parent directory that matches
//! cannot be re-included by a `!pattern` below it.
//!
//! - **hide**: secrets. A host entry a hide rule matches is masked (listed with its metadata,
//!   never opened or changed: `Overlay::masked`); one the workspace creates is never committed.
//!   Config patterns plus the `[hide]` section of the project's `.wsfsignore`.
//! - **scratch**: writable, but left out of status/commit unless asked. Config patterns, the
//!   `[scratch]` section, and (with [`PolicyConfig::scratch_from_gitignore`]) whatever the
//!   project's own git ignore rules ignore: the root `.gitignore`, `.git/info/exclude` and nested
//!   `.gitignore` files, read lazily per directory on first query and cached.
//! - **protected**: changes there can run code on the host; commit refuses them without
//!   `allow_protected`. Config patterns (by default the built-in list in [`defaults`]) plus the
//!   `[protected]` section, where `!pattern` undoes a default; the project's `.wsfsignore`
//!   itself is always protected, so an agent cannot weaken the rules through a commit.
//! - **write-through**: shared state (a tool's history, a build cache): each change is
//!   committed to the host as soon as it is recorded, by the daemon, with the same conflict
//!   check as any commit; never listed as pending. Config patterns plus the `[write-through]`
//!   section. Hidden and protected rules win over it: a protected path is never written
//!   through.
//!
//! Every rule file is read from the *host* project (never the upper layer, which the container
//! controls), by walking from the project root fd one component at a time with
//! `openat(O_NOFOLLOW)`: a symlinked rule file or directory is never followed. Files larger than
//! [`MAX_RULE_FILE`] are refused.
//!
//! See `docs/policy.md` for the user-facing description.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use dashmap::DashMap;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::Match;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::relpath::RelPath;
use crate::sys;

pub mod defaults;
pub mod tools;

/// Name of the per-project rules file at the project root.
pub const WSFSIGNORE: &str = ".wsfsignore";

/// Largest rule file (`.wsfsignore`, `.gitignore`, `.git/info/exclude`) read, in bytes.
pub const MAX_RULE_FILE: u64 = 1 << 20;

/// Most nested-`.gitignore` directories remembered; beyond this, lookups still work but are not
/// cached (bounds memory on enormous trees).
const MAX_CACHED_DIRS: usize = 1 << 18;

/// Policy settings for one workspace (the project's `.wsfsignore` adds to these).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Gitignore patterns for paths invisible in the workspace (secrets).
    pub hide: Vec<String>,
    /// Gitignore patterns for paths left out of status/commit unless asked.
    pub scratch: Vec<String>,
    /// Gitignore patterns for paths whose changes need `allow_protected` to commit.
    pub protected: Vec<String>,
    /// Gitignore patterns for entries whose own change (not what lies below them) needs
    /// `allow_protected`, like `.git` itself.
    pub protected_entries: Vec<String>,
    /// Gitignore patterns for paths whose changes go to the host as soon as they are recorded
    /// (shared state, never pending).
    pub write_through: Vec<String>,
    /// Also treat what the project's git ignore rules ignore as scratch.
    pub scratch_from_gitignore: bool,
}

impl Default for PolicyConfig {
    /// The documented defaults: common secret files hidden, files that run code on the host
    /// protected ([`defaults::PROTECTED`]), git-ignored files scratch.
    fn default() -> Self {
        let v = |s: &[&str]| s.iter().map(|p| p.to_string()).collect();
        PolicyConfig {
            // Templates of `.env` are not secrets: they are tracked, and `cp .env.example
            // .env` is how a project is set up.
            hide: v(&[
                ".env",
                ".env.*",
                "!.env.example",
                "!.env.sample",
                "!.env.template",
                "!.env.dist",
                "*.pem",
                "*.key",
                "id_rsa*",
                "id_ed25519*",
            ]),
            scratch: Vec::new(),
            protected: v(defaults::PROTECTED),
            protected_entries: v(defaults::PROTECTED_ENTRIES),
            write_through: Vec::new(),
            scratch_from_gitignore: true,
        }
    }
}

/// The compiled rules of one workspace. `Send + Sync`; queries take `&self` and never block on
/// I/O except the first [`Policy::is_scratch`] under a directory not seen before.
pub struct Policy {
    hide: Gitignore,
    scratch: Gitignore,
    protected: Gitignore,
    /// Entries protected themselves, not what lies below them ([`defaults::PROTECTED_ENTRIES`]).
    protected_entries: Gitignore,
    write_through: Gitignore,
    git: Option<GitRules>,
}

/// The project's git ignore rules, nested files loaded lazily.
struct GitRules {
    /// A dup of the project root fd (`O_PATH`), to walk to nested `.gitignore` files.
    root: OwnedFd,
    /// `.git/info/exclude` (lowest precedence).
    exclude: Gitignore,
    /// Directory (project-relative bytes; empty = root) → its `.gitignore`, if any.
    dirs: DashMap<Box<[u8]>, Option<Arc<Gitignore>>>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("hide", &self.hide.len())
            .field("scratch", &self.scratch.len())
            .field("protected", &self.protected.len())
            .field("write_through", &self.write_through.len())
            .field(
                "gitignore_dirs_cached",
                &self.git.as_ref().map(|g| g.dirs.len()),
            )
            .finish()
    }
}

impl Policy {
    /// Compiles `cfg` plus the project's `.wsfsignore`, root `.gitignore` and
    /// `.git/info/exclude` (nested `.gitignore` files are read later, on demand).
    ///
    /// `project_root` is the project directory fd (an `O_PATH` fd is fine); it is duplicated
    /// and kept for lazy loading when git rules are enabled.
    ///
    /// Fails with [`Error::Workspace`] on an invalid pattern (naming the file or "config", the
    /// line and the pattern) and on a `.wsfsignore` that cannot be used safely (a symlink, not a
    /// regular file, too large, not UTF-8): hide rules must never be dropped silently.
    pub fn load(project_root: BorrowedFd<'_>, cfg: &PolicyConfig) -> Result<Policy> {
        let mut hide = Rules::new();
        let mut scratch = Rules::new();
        let mut protected = Rules::new();
        hide.add_config("hide", &cfg.hide)?;
        scratch.add_config("scratch", &cfg.scratch)?;
        protected.add_config("protected", &cfg.protected)?;
        let mut write_through = Rules::new();
        write_through.add_config("write_through", &cfg.write_through)?;
        let mut entries = Rules::new();
        entries.add_config("protected_entries", &cfg.protected_entries)?;

        match read_rule_file(project_root, OsStr::new(WSFSIGNORE)) {
            Ok(data) => {
                let sections = parse_wsfsignore(&data)?;
                hide.add_lines(WSFSIGNORE, &sections.hide)?;
                scratch.add_lines(WSFSIGNORE, &sections.scratch)?;
                protected.add_lines(WSFSIGNORE, &sections.protected)?;
                write_through.add_lines(WSFSIGNORE, &sections.write_through)?;
            }
            Err(ReadFail::Absent) => {}
            Err(e) => {
                return Err(Error::Workspace(format!(
                    "{WSFSIGNORE}: {e}; wsfs reads it only as a regular file of at most {} bytes \
                     at the project root (symlinks are never followed). Replace it with a regular \
                     file, or remove it",
                    MAX_RULE_FILE
                )))
            }
        }

        // Like git (and ripgrep's default `require_git`): ignore rules count only inside a git
        // work tree, so a stray `.gitignore` in a plain directory turns nothing into scratch.
        let git = if cfg.scratch_from_gitignore && inside_git_work_tree(project_root) {
            Some(GitRules::load(project_root)?)
        } else {
            None
        };
        Ok(Policy {
            hide: hide.build("hide")?,
            scratch: scratch.build("scratch")?,
            protected: protected.build("protected")?,
            protected_entries: entries.build("protected_entries")?,
            write_through: write_through.build("write_through")?,
            git,
        })
    }

    /// A policy with no rules at all: nothing hidden, scratch or protected (tests).
    pub fn allow_all() -> Policy {
        Policy {
            hide: Gitignore::empty(),
            scratch: Gitignore::empty(),
            protected: Gitignore::empty(),
            protected_entries: Gitignore::empty(),
            write_through: Gitignore::empty(),
            git: None,
        }
    }

    /// True if `path` (or a parent directory) matches a hide rule. Called on every lookup:
    /// no allocation, no I/O. The project root is never hidden.
    pub fn is_hidden(&self, path: &RelPath, is_dir: bool) -> bool {
        matches_tree(&self.hide, path.as_bytes(), is_dir, false)
    }

    /// True if `path` (or a parent directory) matches a scratch rule or, when enabled, is
    /// ignored by the project's git ignore rules. A `.git` directory itself is never scratch,
    /// and git ignore rules never apply inside one (git does not look there either).
    pub fn is_scratch(&self, path: &RelPath, is_dir: bool) -> bool {
        let p = path.as_bytes();
        matches_tree(&self.scratch, p, is_dir, true)
            || self.git.as_ref().is_some_and(|g| g.is_ignored(p, is_dir))
    }

    /// True if changes at `path` go straight to the host: it (or a parent directory) matches
    /// a write-through rule, and it is neither hidden nor protected (those rules win).
    pub fn is_write_through(&self, path: &RelPath, is_dir: bool) -> bool {
        matches_tree(&self.write_through, path.as_bytes(), is_dir, false)
            && !self.is_hidden(path, is_dir)
            && !self.is_protected(path)
    }

    /// How `path` is treated in review (status, diff, the pending counts): write-through
    /// first (the daemon commits it), then scratch (also left out of commit), then the agent's
    /// own git churn.
    pub fn noise(&self, path: &RelPath, is_dir: bool) -> Noise {
        if self.is_write_through(path, is_dir) {
            Noise::WriteThrough
        } else if self.is_scratch(path, is_dir) {
            Noise::Scratch
        } else if is_git_churn(path) {
            Noise::GitChurn
        } else {
            Noise::None
        }
    }

    /// True if `path` (or a parent directory) matches a protected rule, is the project's
    /// `.wsfsignore`, or itself matches a protected-entry rule (a `.git` entry, for example)
    /// that no `!` protected rule re-includes. Without a file type, a directory-only pattern (`dir/`) is honoured as if
    /// `path` were a directory: when in doubt, protect.
    pub fn is_protected(&self, path: &RelPath) -> bool {
        let p = path.as_bytes();
        p == WSFSIGNORE.as_bytes()
            || matches_tree(&self.protected, p, false, false)
            || matches_tree(&self.protected, p, true, false)
            || (!p.is_empty()
                && self.protected_entries.matched(as_path(p), true).is_ignore()
                && !self.protected.matched(as_path(p), true).is_whitelist())
    }
}

/// How a pending change is shown in review.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Noise {
    /// A real change: listed by `status` and `diff`, counted as pending.
    #[default]
    None,
    /// A scratch path: hidden and summarised, left out of commit unless asked.
    Scratch,
    /// Git's own bookkeeping churn (`.git/objects/**`, `.git/logs/**` of any repository in
    /// the project): hidden and summarised, but committed like any change (the host's
    /// repository needs the objects its refs now name). `.git/index`, `HEAD` and refs are small
    /// and meaningful, so they are listed.
    GitChurn,
    /// Shared state committed to the host by the daemon as soon as it is recorded
    /// ([`Policy::is_write_through`]): hidden and summarised while on its way (or when a
    /// conflict holds it back), committed like any change.
    WriteThrough,
}

/// The directory that groups `path` in a hidden-paths summary: its first component (with a
/// trailing `/` when that is a directory); for git churn, the `.git/objects/` or `.git/logs/`
/// directory it lies in.
pub fn summary_group(path: &RelPath, noise: Noise, is_dir: bool) -> Vec<u8> {
    let p = path.as_bytes();
    if noise == Noise::GitChurn {
        if let Some(end) = git_churn_dir_end(p) {
            let mut g = p[..end].to_vec();
            g.push(b'/');
            return g;
        }
    }
    match p.iter().position(|&b| b == b'/') {
        Some(i) => p[..=i].to_vec(),
        None if is_dir => [p, b"/"].concat(),
        None => p.to_vec(),
    }
}

/// True for git's object store and reflogs of any repository in the project:
/// `.git/objects` and `.git/logs` and everything below them.
pub fn is_git_churn(path: &RelPath) -> bool {
    git_churn_dir_end(path.as_bytes()).is_some()
}

/// End offset of the `…/.git/objects` or `…/.git/logs` prefix of `p`, if it has one.
fn git_churn_dir_end(p: &[u8]) -> Option<usize> {
    let mut prev_git = false;
    let mut start = 0;
    for comp in p.split(|&b| b == b'/') {
        let end = start + comp.len();
        if prev_git && (comp == b"objects" || comp == b"logs") {
            return Some(end);
        }
        prev_git = comp == b".git";
        start = end + 1;
    }
    None
}

/// True if the project directory is inside a git work tree: it, or one of its ancestors, holds a
/// `.git` (a directory, or a file as in linked worktrees and submodules). An ancestor that
/// cannot be reached ends the search (answering "not a git tree": no path becomes scratch).
fn inside_git_work_tree(project_root: BorrowedFd<'_>) -> bool {
    let Ok(mut dir) = project_root.try_clone_to_owned() else {
        return false;
    };
    // Bounded: a path has at most PATH_MAX / 2 components.
    for _ in 0..2048 {
        if sys::lstatat(dir.as_fd(), OsStr::new(".git")).is_ok() {
            return true;
        }
        let Ok(parent) = sys::open_dir_path(dir.as_fd(), OsStr::new("..")) else {
            return false;
        };
        let (Ok(a), Ok(b)) = (sys::fstat(dir.as_fd()), sys::fstat(parent.as_fd())) else {
            return false;
        };
        if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) {
            return false; // the filesystem root
        }
        dir = parent;
    }
    false
}

fn as_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// Git semantics for one matcher: walks the path top-down; a parent directory that matches an
/// ignore pattern decides (it cannot be re-included below), otherwise the path itself decides.
/// With `skip_git`, a component named `.git` is never tested itself (its contents still are).
fn matches_tree(gi: &Gitignore, path: &[u8], is_dir: bool, skip_git: bool) -> bool {
    if gi.is_empty() || path.is_empty() {
        return false;
    }
    let mut start = 0;
    loop {
        let end = path[start..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(path.len(), |i| start + i);
        let last = end == path.len();
        let skip = skip_git && &path[start..end] == b".git";
        if !skip {
            let dir = !last || is_dir;
            if gi.matched(as_path(&path[..end]), dir).is_ignore() {
                return true;
            }
        }
        if last {
            return false;
        }
        start = end + 1;
    }
}

impl GitRules {
    fn load(project_root: BorrowedFd<'_>) -> Result<GitRules> {
        let root = project_root
            .try_clone_to_owned()
            .map_err(|e| Error::io("dup project root", &RelPath::root(), e))?;
        let top = load_gitignore(root.as_fd(), &RelPath::root(), true)?;
        let info = RelPath::new(".git/info").expect("valid path");
        let exclude = match sys::walk_dirs(root.as_fd(), &info) {
            Ok(dir) => load_gitignore_at(dir.as_fd(), ".git/info/exclude", "exclude", true)?,
            Err(e) if sys::is_absent(&e) => None,
            Err(e) => return Err(Error::io("walk", &info, e)),
        };
        let dirs = DashMap::new();
        dirs.insert(Box::<[u8]>::from(&b""[..]), top.map(Arc::new));
        Ok(GitRules {
            root,
            exclude: exclude.unwrap_or_else(Gitignore::empty),
            dirs,
        })
    }

    /// True if git would ignore `path` (project-relative bytes).
    fn is_ignored(&self, path: &[u8], is_dir: bool) -> bool {
        if path.is_empty() {
            return false;
        }
        let mut start = 0;
        loop {
            let end = path[start..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(path.len(), |i| start + i);
            if &path[start..end] == b".git" {
                // Git never applies ignore rules to (or inside) a `.git` directory.
                return false;
            }
            let last = end == path.len();
            if self.level_ignored(&path[..end], !last || is_dir) {
                return true;
            }
            if last {
                return false;
            }
            start = end + 1;
        }
    }

    /// Decides `prefix` alone (its parents were not ignored): the `.gitignore` of the nearest
    /// directory with a matching pattern wins, then `.git/info/exclude`.
    fn level_ignored(&self, prefix: &[u8], is_dir: bool) -> bool {
        let mut dir_end = prefix.iter().rposition(|&b| b == b'/');
        loop {
            let (dir, rel) = match dir_end {
                Some(i) => (&prefix[..i], &prefix[i + 1..]),
                None => (&b""[..], prefix),
            };
            if let Some(gi) = self.dir_rules(dir) {
                match gi.matched(as_path(rel), is_dir) {
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                    Match::None => {}
                }
            }
            match dir_end {
                Some(i) => dir_end = prefix[..i].iter().rposition(|&b| b == b'/'),
                None => break,
            }
        }
        self.exclude.matched(as_path(prefix), is_dir).is_ignore()
    }

    /// The `.gitignore` of directory `dir`, read on first use and cached.
    fn dir_rules(&self, dir: &[u8]) -> Option<Arc<Gitignore>> {
        if let Some(hit) = self.dirs.get(dir) {
            return hit.value().clone();
        }
        // Read outside any map lock; a racing thread may read it too, which is harmless.
        let mut cacheable = true;
        let loaded = RelPath::new(dir).ok().and_then(|rel| {
            match load_gitignore(self.root.as_fd(), &rel, false) {
                Ok(gi) => gi.map(Arc::new),
                Err(e) => {
                    // Unreadable now (EMFILE, EIO): decide without it this once, but do not
                    // remember "no rules", so the next call reads it again.
                    tracing::warn!(dir = %rel, error = %e, "ignoring nested .gitignore");
                    cacheable = false;
                    None
                }
            }
        });
        if cacheable && self.dirs.len() < MAX_CACHED_DIRS {
            self.dirs
                .entry(Box::from(dir))
                .or_insert(loaded)
                .value()
                .clone()
        } else {
            loaded
        }
    }
}

/// Reads `<dir>/.gitignore` from the host project. Unusable files (missing, symlinked, not
/// regular, too large, unreadable; also `dir` itself not reachable without following a symlink)
/// count as absent. With `strict`, an invalid pattern is an error; otherwise it is skipped with a
/// warning.
fn load_gitignore(root: BorrowedFd<'_>, dir: &RelPath, strict: bool) -> Result<Option<Gitignore>> {
    let fd = match sys::walk_dirs(root, dir) {
        Ok(fd) => fd,
        Err(e) if sys::is_absent(&e) => return Ok(None),
        Err(e) => return Err(Error::io("walk", dir, e)),
    };
    let label = if dir.is_root() {
        ".gitignore".to_string()
    } else {
        format!("{}/.gitignore", dir.display())
    };
    load_gitignore_at(fd.as_fd(), &label, ".gitignore", strict)
}

fn load_gitignore_at(
    dir: BorrowedFd<'_>,
    label: &str,
    name: &str,
    strict: bool,
) -> Result<Option<Gitignore>> {
    let data = match read_rule_file(dir, OsStr::new(name)) {
        Ok(d) => d,
        Err(ReadFail::Absent) => return Ok(None),
        // An I/O failure (EMFILE, EIO) is not "no rules": the caller decides what to do.
        Err(ReadFail::Io(e)) => {
            let path = RelPath::new(label).unwrap_or_else(|_| RelPath::root());
            return Err(Error::io("read", &path, e));
        }
        Err(e) => {
            tracing::warn!(file = label, "not reading git ignore rules: {e}");
            return Ok(None);
        }
    };
    let mut rules = Rules::new();
    for (n, line) in data.split(|&b| b == b'\n').enumerate() {
        let lineno = n + 1;
        let line = if n == 0 {
            line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line)
        } else {
            line
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Ok(line) = std::str::from_utf8(line) else {
            tracing::warn!(
                file = label,
                line = lineno,
                "skipping a pattern that is not UTF-8"
            );
            continue;
        };
        if let Err(e) = rules.add(label, lineno, line, Some(GITIGNORE_ADVICE)) {
            if strict {
                return Err(e);
            }
            tracing::warn!(file = label, line = lineno, "skipping: {e}");
        }
    }
    Ok(Some(rules.build(label)?).filter(|gi| !gi.is_empty()))
}

const GITIGNORE_ADVICE: &str =
    "or set scratch_from_gitignore = false to stop wsfs reading git ignore rules";

/// Why a rule file was not read.
#[derive(Debug)]
enum ReadFail {
    Absent,
    Symlink,
    NotRegular,
    TooLarge,
    Io(io::Error),
}

impl fmt::Display for ReadFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFail::Absent => f.write_str("not found"),
            ReadFail::Symlink => f.write_str("is a symlink (not followed)"),
            ReadFail::NotRegular => f.write_str("is not a regular file"),
            ReadFail::TooLarge => write!(f, "is larger than {MAX_RULE_FILE} bytes"),
            ReadFail::Io(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

/// Reads the regular file `name` in `dir` without following symlinks, up to [`MAX_RULE_FILE`].
fn read_rule_file(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Vec<u8>, ReadFail> {
    // O_NONBLOCK: a FIFO planted under a rule file's name must not hang the open.
    let fd = sys::openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    )
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => ReadFail::Absent,
        Some(libc::ELOOP) => ReadFail::Symlink,
        _ => ReadFail::Io(e),
    })?;
    let st = sys::fstat(fd.as_fd()).map_err(ReadFail::Io)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(ReadFail::NotRegular);
    }
    if st.st_size as u64 > MAX_RULE_FILE {
        return Err(ReadFail::TooLarge);
    }
    let mut buf = Vec::with_capacity(st.st_size.max(0) as usize);
    File::from(fd)
        .take(MAX_RULE_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(ReadFail::Io)?;
    if buf.len() as u64 > MAX_RULE_FILE {
        return Err(ReadFail::TooLarge);
    }
    Ok(buf)
}

/// One gitignore matcher under construction, with error reporting.
struct Rules(GitignoreBuilder);

impl Rules {
    fn new() -> Rules {
        // Root "." : the matcher strips nothing, we always pass paths relative to the directory
        // the rules belong to.
        Rules(GitignoreBuilder::new("."))
    }

    fn add(&mut self, source: &str, lineno: usize, line: &str, advice: Option<&str>) -> Result<()> {
        self.0.add_line(None, line).map(drop).map_err(|e| {
            Error::Workspace(format!(
                "{source} line {lineno}: invalid pattern {line:?}: {e}. Fix the pattern \
                 (gitignore syntax; escape special characters with a backslash) or remove it{}",
                advice.map(|a| format!(", {a}")).unwrap_or_default()
            ))
        })
    }

    fn add_config(&mut self, field: &str, patterns: &[String]) -> Result<()> {
        for (i, p) in patterns.iter().enumerate() {
            self.add(&format!("config `{field}`"), i + 1, p, None)?;
        }
        Ok(())
    }

    fn add_lines(&mut self, source: &str, lines: &[(usize, String)]) -> Result<()> {
        for (n, l) in lines {
            self.add(source, *n, l, None)?;
        }
        Ok(())
    }

    fn build(&self, what: &str) -> Result<Gitignore> {
        self.0.build().map_err(|e| {
            Error::Workspace(format!(
                "cannot compile the {what} rules: {e}. Check the patterns in the workspace \
                 config and {WSFSIGNORE}"
            ))
        })
    }
}

/// The sections of a `.wsfsignore`, as `(line number, pattern)`.
#[derive(Debug, Default)]
struct Sections {
    hide: Vec<(usize, String)>,
    scratch: Vec<(usize, String)>,
    protected: Vec<(usize, String)>,
    write_through: Vec<(usize, String)>,
}

/// Parses `.wsfsignore`: gitignore lines, `#` comments, section headers `[hide]`,
/// `[scratch]`, `[protected]`, `[write-through]` (lines before any header are `[hide]`).
fn parse_wsfsignore(data: &[u8]) -> Result<Sections> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let mut out = Sections::default();
    let mut current = 0usize; // 0 hide, 1 scratch, 2 protected, 3 write-through
    for (n, raw) in data.split(|&b| b == b'\n').enumerate() {
        let lineno = n + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|_| {
            Error::Workspace(format!(
                "{WSFSIGNORE} line {lineno}: not valid UTF-8. Patterns must be UTF-8 text; \
                 match other bytes with `?` or `*`"
            ))
        })?;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = section_header(trimmed) {
            current = match name.to_ascii_lowercase().as_str() {
                "hide" => 0,
                "scratch" => 1,
                "protected" => 2,
                "write-through" => 3,
                _ => {
                    return Err(Error::Workspace(format!(
                        "{WSFSIGNORE} line {lineno}: unknown section [{name}]. Known sections \
                         are [hide], [scratch], [protected] and [write-through]; to match a \
                         file name with \
                         brackets, escape the first one: \\[{name}]"
                    )))
                }
            };
            continue;
        }
        let target = match current {
            0 => &mut out.hide,
            1 => &mut out.scratch,
            2 => &mut out.protected,
            _ => &mut out.write_through,
        };
        target.push((lineno, line.to_string()));
    }
    Ok(out)
}

/// `[name]` (spaces around the name allowed) with a name of ASCII letters, `-` or `_` is a
/// section header.
fn section_header(line: &str) -> Option<&str> {
    let name = line.strip_prefix('[')?.strip_suffix(']')?.trim();
    (!name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphabetic() || b == b'-' || b == b'_'))
    .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;

    fn rp(s: impl AsRef<[u8]>) -> RelPath {
        RelPath::new(s).unwrap()
    }

    fn load(dir: &Path, cfg: &PolicyConfig) -> Result<Policy> {
        let root = sys::open_root(dir).unwrap();
        Policy::load(root.as_fd(), cfg)
    }

    /// A git work tree (an empty `.git` directory) holding `files`.
    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = plain_dir(files);
        fs::create_dir_all(t.path().join(".git")).unwrap();
        t
    }

    /// A directory that is not in a git work tree, holding `files`.
    fn plain_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let p = t.path().join(name);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, body).unwrap();
        }
        t
    }

    #[test]
    fn policy_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Policy>();
    }

    #[test]
    fn defaults_hide_secrets_and_protect_git() {
        let t = project(&[]);
        let p = load(t.path(), &PolicyConfig::default()).unwrap();
        assert!(p.is_hidden(&rp(".env"), false));
        assert!(p.is_hidden(&rp("sub/.env.local"), false));
        assert!(p.is_hidden(&rp("x.pem"), false));
        assert!(p.is_hidden(&rp("a/b/server.key"), false));
        assert!(p.is_hidden(&rp("home/id_rsa.pub"), false));
        assert!(p.is_hidden(&rp("id_ed25519"), false));
        assert!(!p.is_hidden(&rp("env.txt"), false));
        assert!(!p.is_hidden(&rp(".envrc"), false));
        assert!(!p.is_hidden(&rp("src/main.rs"), false));
        // Templates are not secrets (`cp .env.example .env` sets a project up).
        assert!(!p.is_hidden(&rp(".env.example"), false));
        assert!(!p.is_hidden(&rp("app/.env.sample"), false));
        assert!(p.is_hidden(&rp("app/.env.production"), false));
        assert!(!p.is_hidden(&RelPath::root(), true));
        // Everything below a hidden directory is hidden.
        assert!(p.is_hidden(&rp("certs.pem/inner.txt"), false));

        assert!(p.is_protected(&rp(".git/hooks/pre-commit")));
        assert!(p.is_protected(&rp(".git/hooks/sub/x")));
        assert!(p.is_protected(&rp(".git/config")));
        assert!(!p.is_protected(&rp(".git/HEAD")));
        assert!(p.is_protected(&rp("sub/.git/config")));
        assert!(!p.is_protected(&rp("src/lib.rs")));
        // Protected paths are not hidden by default.
        assert!(!p.is_hidden(&rp(".git/config"), false));
        assert!(!p.is_hidden(&rp(".git/hooks/pre-commit"), false));
        // The rules file itself is always protected.
        assert!(p.is_protected(&rp(WSFSIGNORE)));
        assert!(p.is_protected(&rp("sub/.wsfsignore")));
    }

    #[test]
    fn files_that_run_code_are_protected_at_any_depth() {
        let p = load(project(&[]).path(), &PolicyConfig::default()).unwrap();
        for path in [
            // Every git dir: the root one, nested repositories, submodules, worktrees.
            ".git/config",
            ".git/config.worktree",
            ".git/hooks",
            ".git/hooks/post-checkout",
            ".git/info/attributes",
            ".git/info/exclude",
            "sub/.git/config",
            "sub/.git/hooks/pre-commit",
            "a/b/c/.git/info/attributes",
            ".git/modules/sub/config",
            ".git/modules/sub/hooks/post-checkout",
            ".git/modules/sub/info/exclude",
            ".git/modules/libs/foo/config",
            ".git/modules/a/modules/b/hooks/pre-push",
            "sub/.git/modules/x/config",
            ".git/worktrees/wt/config.worktree",
            ".git/worktrees/wt/commondir",
            ".git/worktrees/wt/info/sparse-checkout",
            ".git/info",
            ".git/modules/sub/info",
            ".git/modules/sub/worktrees/wt/commondir",
            // `.git` entries themselves (a `gitdir:` file can point anywhere).
            ".git",
            "sub/.git",
            ".gitattributes",
            "src/.gitattributes",
            ".gitmodules",
            "vendor/x/.gitmodules",
            // wsfs itself.
            ".wsfs.toml",
            "sub/.wsfs.toml",
            ".wsfsignore",
            // Tools that run code on entering or opening the project.
            ".envrc",
            "sub/.envrc",
            ".vscode/settings.json",
            ".vscode/tasks.json",
            ".vscode/launch.json",
            "app/.vscode/tasks.json",
            "proj.code-workspace",
            ".devcontainer/devcontainer.json",
            ".devcontainer/Dockerfile",
            ".devcontainer.json",
            ".idea/workspace.xml",
            ".idea/runConfigurations/x.xml",
            ".claude/settings.json",
            ".claude/settings.local.json",
            ".claude/hooks/stop.sh",
            ".pre-commit-config.yaml",
            ".husky/pre-commit",
            ".husky/_/husky.sh",
            ".github/workflows/ci.yml",
            "sub/.github/workflows/x.yml",
        ] {
            assert!(p.is_protected(&rp(path)), "{path} should be protected");
        }
        for path in [
            // Git's bookkeeping, written by an agent's `git commit`, stays committable.
            ".git/HEAD",
            ".git/index",
            ".git/COMMIT_EDITMSG",
            ".git/ORIG_HEAD",
            ".git/packed-refs",
            ".git/refs/heads/main",
            ".git/logs/HEAD",
            ".git/logs/refs/heads/main",
            ".git/objects/ab/cdef",
            ".git/objects/info/commit-graph",
            ".git/objects/info",
            ".git/info/refs",
            ".git/modules/sub/info/refs",
            ".git/modules/sub/objects/info",
            ".git/objects/info/packs",
            ".git/objects/pack/pack-1.pack",
            "sub/.git/objects/ab/cdef",
            "sub/.git/refs/heads/main",
            ".git/modules/sub/HEAD",
            ".git/modules/sub/objects/ab/cdef",
            ".git/modules/sub/objects/info/commit-graph",
            ".git/modules/sub/refs/heads/main",
            ".git/worktrees/wt/HEAD",
            ".git/worktrees/wt/index",
            // Ordinary source and build files are the code under review.
            "Makefile",
            "package.json",
            "build.rs",
            "src/config",
            "config/app.toml",
            "hooks/x",
            "info/x",
            ".vscode/extensions.json",
            ".claude/commands/x.md",
            ".github/CODEOWNERS",
            "docs/.git-blame-ignore-revs",
        ] {
            assert!(!p.is_protected(&rp(path)), "{path} should not be protected");
        }
    }

    #[test]
    fn protected_defaults_are_undone_with_a_negation() {
        let t = project(&[(
            WSFSIGNORE,
            "[protected]\n!.envrc\n!**/.vscode/settings.json\n!**/.git\n!.wsfsignore\n",
        )]);
        let p = load(t.path(), &PolicyConfig::default()).unwrap();
        assert!(!p.is_protected(&rp(".envrc")));
        assert!(!p.is_protected(&rp("sub/.envrc")));
        assert!(!p.is_protected(&rp(".vscode/settings.json")));
        assert!(p.is_protected(&rp(".vscode/tasks.json")));
        assert!(!p.is_protected(&rp("sub/.git")));
        assert!(p.is_protected(&rp("sub/.git/config")));
        // The root `.wsfsignore` cannot be unprotected; others can.
        assert!(p.is_protected(&rp(WSFSIGNORE)));
        assert!(!p.is_protected(&rp("sub/.wsfsignore")));
        // Without `.wsfsignore` rules and with no config at all, nothing is protected.
        assert!(!Policy::allow_all().is_protected(&rp(".git")));
    }

    #[test]
    fn allow_all_has_no_rules() {
        let p = Policy::allow_all();
        assert!(!p.is_hidden(&rp(".env"), false));
        assert!(!p.is_scratch(&rp("target"), true));
        assert!(!p.is_protected(&rp(".git/config")));
    }

    #[test]
    fn gitignore_scratch_with_nested_and_negation() {
        let t = project(&[
            (".gitignore", "target/\n*.log\n!keep.log\n/build\n"),
            ("sub/.gitignore", "*.tmp\n!important.tmp\n!again.log\n"),
            ("sub/deep/.gitignore", "!sub-keep.tmp\n"),
            (".git/info/exclude", "local-notes.md\n"),
            (".git/HEAD", "ref: refs/heads/main\n"),
        ]);
        let p = load(t.path(), &PolicyConfig::default()).unwrap();
        // Nested files are loaded lazily: only the root one is cached after load.
        assert_eq!(p.git.as_ref().unwrap().dirs.len(), 1);

        assert!(p.is_scratch(&rp("target"), true));
        assert!(!p.is_scratch(&rp("target"), false)); // dir-only pattern
        assert!(p.is_scratch(&rp("target/debug/app"), false));
        assert!(p.is_scratch(&rp("a/target/x"), false));
        assert!(p.is_scratch(&rp("x.log"), false));
        assert!(p.is_scratch(&rp("dir/x.log"), false));
        assert!(!p.is_scratch(&rp("keep.log"), false));
        assert!(p.is_scratch(&rp("build"), false));
        assert!(!p.is_scratch(&rp("src/build"), false)); // anchored
        assert!(!p.is_scratch(&rp("src/main.rs"), false));

        // Nested .gitignore applies below its directory only, and overrides the root one.
        assert!(p.is_scratch(&rp("sub/a.tmp"), false));
        assert!(p.is_scratch(&rp("sub/x/a.tmp"), false));
        assert!(!p.is_scratch(&rp("a.tmp"), false));
        assert!(!p.is_scratch(&rp("sub/important.tmp"), false));
        assert!(!p.is_scratch(&rp("sub/again.log"), false));
        assert!(p.is_scratch(&rp("sub/other.log"), false));
        assert!(!p.is_scratch(&rp("sub/deep/sub-keep.tmp"), false));
        assert!(p.is_scratch(&rp("sub/deep/other.tmp"), false));
        assert!(p.git.as_ref().unwrap().dirs.len() > 1);

        // A parent directory that is ignored cannot be re-included (git semantics).
        assert!(p.is_scratch(&rp("target/keep.log"), false));

        // .git/info/exclude, with lower precedence than .gitignore files.
        assert!(p.is_scratch(&rp("local-notes.md"), false));
        assert!(p.is_scratch(&rp("sub/local-notes.md"), false));

        // Disabled: only explicit patterns count.
        let cfg = PolicyConfig {
            scratch_from_gitignore: false,
            ..PolicyConfig::default()
        };
        let p = load(t.path(), &cfg).unwrap();
        assert!(!p.is_scratch(&rp("x.log"), false));
    }

    #[test]
    fn git_ignore_rules_apply_only_inside_a_git_work_tree() {
        // Debian's linux-source tree ships a `.gitignore` whose `/*` ignores everything.
        let files = [(".gitignore", "/*\n"), ("sub/.gitignore", "*.o\n")];
        let t = plain_dir(&files);
        let p = load(t.path(), &PolicyConfig::default()).unwrap();
        assert!(!p.is_scratch(&rp("Makefile"), false));
        assert!(!p.is_scratch(&rp("sub/a.o"), false));
        assert_eq!(p.noise(&rp("drivers/net/x.c"), false), Noise::None);

        // The same files in a git work tree: git's rules apply.
        let t = project(&files);
        let p = load(t.path(), &PolicyConfig::default()).unwrap();
        assert!(p.is_scratch(&rp("Makefile"), false));

        // A project below a git work tree's root is inside it (a `.git` file counts too).
        let t = plain_dir(&[
            (".git", "gitdir: elsewhere\n"),
            ("proj/.gitignore", "*.o\n"),
        ]);
        let p = load(&t.path().join("proj"), &PolicyConfig::default()).unwrap();
        assert!(p.is_scratch(&rp("a.o"), false));

        // Explicit scratch patterns need no git.
        let cfg = PolicyConfig {
            scratch: vec!["tmp/".into()],
            ..PolicyConfig::default()
        };
        let p = load(plain_dir(&files).path(), &cfg).unwrap();
        assert!(p.is_scratch(&rp("tmp/x"), false));
    }

    #[test]
    fn git_churn_is_objects_and_logs_of_any_repository() {
        let t = project(&[(".gitignore", "target/\n")]);
        let p = load(t.path(), &PolicyConfig::default()).unwrap();
        let n = |s: &str| p.noise(&rp(s), false);
        assert_eq!(n(".git/objects/ab/cdef"), Noise::GitChurn);
        assert_eq!(n(".git/objects"), Noise::GitChurn);
        assert_eq!(n(".git/logs/HEAD"), Noise::GitChurn);
        assert_eq!(n("vendor/lib/.git/objects/pack/x.pack"), Noise::GitChurn);
        assert_eq!(n(".git/index"), Noise::None);
        assert_eq!(n(".git/refs/heads/main"), Noise::None);
        assert_eq!(n(".git/HEAD"), Noise::None);
        assert_eq!(n("objects/x"), Noise::None);
        assert_eq!(n("target/debug/app"), Noise::Scratch);
        let g = |s: &str, k, d| String::from_utf8(summary_group(&rp(s), k, d)).unwrap();
        assert_eq!(
            g("sub/.git/objects/ab/c", Noise::GitChurn, false),
            "sub/.git/objects/"
        );
        assert_eq!(g(".git/objects", Noise::GitChurn, true), ".git/objects/");
        assert_eq!(g("target/debug/app", Noise::Scratch, false), "target/");
        assert_eq!(g("target", Noise::Scratch, true), "target/");
        assert_eq!(g("x.log", Noise::Scratch, false), "x.log");
    }

    #[test]
    fn dot_git_is_never_scratch() {
        let t = project(&[(".gitignore", ".*\n*\n!*/\n!*.rs\n")]);
        let p = load(t.path(), &PolicyConfig::default()).unwrap();
        assert!(p.is_scratch(&rp(".cache"), false));
        assert!(!p.is_scratch(&rp("dir"), true)); // `!*/` re-includes directories
        assert!(p.is_scratch(&rp("notes.txt"), false));
        assert!(!p.is_scratch(&rp("main.rs"), false));
        assert!(!p.is_scratch(&rp(".git"), true));
        assert!(!p.is_scratch(&rp(".git/HEAD"), false));
        assert!(!p.is_scratch(&rp(".git/objects/ab/cdef"), false));

        // Explicit scratch patterns never make `.git` itself scratch either.
        let t = project(&[]);
        let cfg = PolicyConfig {
            scratch: vec![".git".into(), ".git/objects/".into()],
            ..PolicyConfig::default()
        };
        let p = load(t.path(), &cfg).unwrap();
        assert!(!p.is_scratch(&rp(".git"), true));
        assert!(!p.is_scratch(&rp(".git/HEAD"), false));
        assert!(p.is_scratch(&rp(".git/objects/ab/cdef"), false));
    }

    #[test]
    fn wsfsignore_sections() {
        let t = project(&[(
            WSFSIGNORE,
            "# secrets first (implicit [hide])\n\
             secrets/\n\
             *.p12\n\
             \n\
             [scratch]\n\
             *.cache\n\
             tmp/\n\
             [protected]\n\
             Makefile\n\
             scripts/deploy.sh\n\
             [ Hide ]\n\
             credentials.json\r\n\
             [hide]\n\
             !.env.example\n",
        )]);
        let p = load(t.path(), &PolicyConfig::default()).unwrap();
        assert!(p.is_hidden(&rp("secrets"), true));
        assert!(p.is_hidden(&rp("secrets/db.txt"), false));
        assert!(p.is_hidden(&rp("a/b.p12"), false));
        assert!(p.is_hidden(&rp("credentials.json"), false));
        assert!(p.is_hidden(&rp(".env.local"), false)); // defaults still apply
        assert!(!p.is_hidden(&rp(".env.example"), false)); // negation in the file wins
        assert!(!p.is_hidden(&rp("x.cache"), false));
        assert!(!p.is_hidden(&rp("Makefile"), false));

        assert!(p.is_scratch(&rp("x.cache"), false));
        assert!(p.is_scratch(&rp("tmp/a/b"), false));
        assert!(!p.is_scratch(&rp("secrets/db.txt"), false));

        assert!(p.is_protected(&rp("Makefile")));
        assert!(p.is_protected(&rp("scripts/deploy.sh")));
        assert!(!p.is_protected(&rp("scripts/other.sh")));
        assert!(p.is_protected(&rp(".git/config")));
    }

    /// `[write-through]` rules (file and config) make a path write-through; hide and protected
    /// rules win over them; write-through wins over scratch in review.
    #[test]
    fn write_through_rules_and_their_precedence() {
        let t = project(&[(
            WSFSIGNORE,
            "[write-through]\n\
             .cache/shared/\n\
             [protected]\n\
             .cache/shared/hook.sh\n\
             [scratch]\n\
             .cache/\n",
        )]);
        let cfg = PolicyConfig {
            write_through: vec!["history.jsonl".into(), ".env".into()],
            ..PolicyConfig::default()
        };
        let p = load(t.path(), &cfg).unwrap();
        assert!(p.is_write_through(&rp("history.jsonl"), false));
        assert!(p.is_write_through(&rp(".cache/shared/a/b.o"), false));
        assert!(p.is_write_through(&rp(".cache/shared"), true));
        assert!(!p.is_write_through(&rp(".cache/other"), false));
        assert!(
            !p.is_write_through(&rp(".cache/shared/hook.sh"), false),
            "protected wins"
        );
        assert!(!p.is_write_through(&rp(".env"), false), "hidden wins");
        assert!(!p.is_write_through(&rp(".git/config"), false));
        assert_eq!(p.noise(&rp(".cache/shared/x"), false), Noise::WriteThrough);
        assert_eq!(p.noise(&rp(".cache/other"), false), Noise::Scratch);
        assert_eq!(p.noise(&rp("src/main.rs"), false), Noise::None);
        // The default rules write nothing through.
        let d = load(t.path(), &PolicyConfig::default()).unwrap();
        assert!(!d.is_write_through(&rp("history.jsonl"), false));
    }

    #[test]
    fn wsfsignore_errors_name_file_line_and_pattern() {
        let t = project(&[(WSFSIGNORE, "ok\n[scratch]\nfoo{bar\n")]);
        let err = load(t.path(), &PolicyConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(".wsfsignore line 3"), "{err}");
        assert!(err.contains("foo{bar"), "{err}");

        let t = project(&[(WSFSIGNORE, "[scrach]\nx\n")]);
        let err = load(t.path(), &PolicyConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1") && err.contains("unknown section"),
            "{err}"
        );

        let cfg = PolicyConfig {
            hide: vec!["ok".into(), "a{b".into()],
            ..PolicyConfig::default()
        };
        let err = load(project(&[]).path(), &cfg).unwrap_err().to_string();
        assert!(err.contains("config `hide` line 2"), "{err}");
        assert!(err.contains("a{b"), "{err}");

        let t = project(&[(".gitignore", "fine\nbad{\n")]);
        let err = load(t.path(), &PolicyConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(".gitignore line 2"), "{err}");
        assert!(err.contains("scratch_from_gitignore"), "{err}");

        // A bad nested .gitignore line is skipped, the rest still applies.
        let t = project(&[("sub/.gitignore", "bad{\n*.o\n")]);
        let p = load(t.path(), &PolicyConfig::default()).unwrap();
        assert!(p.is_scratch(&rp("sub/a.o"), false));
    }

    #[test]
    fn symlinked_rule_files_are_not_followed() {
        let t = project(&[("real-ignore", "*.log\n"), ("sub/real", "*.tmp\n")]);
        std::os::unix::fs::symlink("real-ignore", t.path().join(".gitignore")).unwrap();
        std::os::unix::fs::symlink("real", t.path().join("sub/.gitignore")).unwrap();
        fs::create_dir(t.path().join("other")).unwrap();
        fs::write(t.path().join("other/.gitignore"), "*.o\n").unwrap();
        std::os::unix::fs::symlink("other", t.path().join("link")).unwrap();
        let p = load(t.path(), &PolicyConfig::default()).unwrap();
        assert!(!p.is_scratch(&rp("x.log"), false));
        assert!(!p.is_scratch(&rp("sub/x.tmp"), false));
        assert!(p.is_scratch(&rp("other/x.o"), false));
        // A symlinked directory is not walked through either.
        assert!(!p.is_scratch(&rp("link/x.o"), false));

        // A symlinked .wsfsignore is refused loudly: hide rules must not vanish silently.
        let t = project(&[("rules", "secret\n")]);
        std::os::unix::fs::symlink("rules", t.path().join(WSFSIGNORE)).unwrap();
        let err = load(t.path(), &PolicyConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("symlink"), "{err}");
    }

    #[test]
    fn oversized_and_special_rule_files() {
        let big = "x\n".repeat((MAX_RULE_FILE as usize) / 2 + 1);
        let t = project(&[(WSFSIGNORE, &big)]);
        let err = load(t.path(), &PolicyConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than"), "{err}");

        // An oversized .gitignore is skipped, not fatal.
        let t = project(&[(".gitignore", &big)]);
        let p = load(t.path(), &PolicyConfig::default()).unwrap();
        assert!(!p.is_scratch(&rp("x"), false));

        // A FIFO named .gitignore neither hangs nor counts.
        let t = project(&[]);
        let status = std::process::Command::new("mkfifo")
            .arg(t.path().join(".gitignore"))
            .status();
        if status.map(|s| s.success()).unwrap_or(false) {
            let p = load(t.path(), &PolicyConfig::default()).unwrap();
            assert!(!p.is_scratch(&rp("x"), false));
        }
    }

    #[test]
    fn non_utf8_path_names() {
        let t = project(&[]);
        let dir = t.path().join(OsStr::from_bytes(b"d\xff"));
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(".gitignore"), "*.o\n").unwrap();
        let p = load(t.path(), &PolicyConfig::default()).unwrap();
        assert!(p.is_hidden(&rp(b"caf\xe9.pem"), false));
        assert!(p.is_hidden(&rp(b"\xfe\xff/.env"), false));
        assert!(!p.is_hidden(&rp(b"caf\xe9.txt"), false));
        assert!(p.is_scratch(&rp(b"d\xff/a\xe9.o"), false));
        assert!(!p.is_scratch(&rp(b"d\xfe/a.o"), false));
        assert!(!p.is_scratch(&rp(b"d\xff/a.c"), false));
    }

    #[test]
    fn concurrent_queries() {
        let t = project(&[("a/.gitignore", "*.o\n"), ("b/.gitignore", "*.a\n")]);
        let p = Arc::new(load(t.path(), &PolicyConfig::default()).unwrap());
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for j in 0..200 {
                        let d = if (i + j) % 2 == 0 { "a" } else { "b" };
                        assert_eq!(p.is_scratch(&rp(format!("{d}/x.o")), false), d == "a");
                        assert!(p.is_hidden(&rp(format!("{d}/.env")), false));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
