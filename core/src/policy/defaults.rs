//! The built-in protected list: files that a tool on the host runs or obeys without asking,
//! so that an agent's change to one could run code there. Commit refuses changes to them
//! without `allow_protected`; `status` and `diff` mark them.
//!
//! This is the one place the list lives (`docs/policy.md` shows it to users). Each pattern is
//! gitignore syntax, matched like every other policy rule (a path is protected when it or a
//! parent directory matches), and any of them can be undone with a `!pattern` in the
//! `[protected]` section of the project's `.wsfsignore`. Patterns start with `**/` (or have no
//! slash) so that they hold at any depth: a nested repository, a submodule or a subproject
//! opened on its own is honoured by git and the editors just like the project root.
//!
//! Deliberately *not* here: ordinary source and build files (`Makefile`, `package.json`,
//! `build.rs`): they are the code under review, not configuration that runs behind the user's
//! back. Nor git's own bookkeeping (`objects/`, `refs/`, `HEAD`, `index`, `logs/`, `packed-refs`):
//! an agent's `git commit` inside the workspace writes those and must commit cleanly.

/// Gitignore patterns protected by default, in the order they are compiled (a later `!`
/// pattern wins over an earlier one).
pub const PROTECTED: &[&str] = &[
    // Git: the config, hooks and info of every git dir. `**/.git/` covers the project's own
    // repository and nested ones; `.git/modules/**/` submodule git dirs (names may contain `/`,
    // nested submodules add `modules/` levels); `.git/worktrees/*/` linked worktrees.
    "**/.git/config",
    "**/.git/config.worktree",
    "**/.git/hooks",
    "**/.git/info/*",
    "**/.git/modules/**/config",
    "**/.git/modules/**/config.worktree",
    "**/.git/modules/**/hooks",
    "**/.git/modules/**/info/*",
    "**/.git/worktrees/*/config",
    "**/.git/worktrees/*/config.worktree",
    "**/.git/worktrees/*/hooks",
    "**/.git/worktrees/*/info/*",
    // A linked worktree's pointer to the shared git dir (and so to its config and hooks).
    "**/.git/**/worktrees/*/commondir",
    // Written by `git gc` (also run by `git commit` once loose objects pile up): `info/refs`
    // is the ref list for dumb HTTP servers, `objects/info` belongs to the object store.
    "!**/.git/**/info/refs",
    "!**/.git/**/objects/info/*",
    // Filter and diff drivers, submodule URLs and update commands.
    ".gitattributes",
    ".gitmodules",
    // wsfs itself: container settings and the path policy of a workspace on this directory.
    ".wsfs.toml",
    ".wsfsignore",
    // Tools that run code on entering or opening the project.
    ".envrc",
    "**/.vscode/settings.json",
    "**/.vscode/tasks.json",
    "**/.vscode/launch.json",
    "*.code-workspace",
    "**/.devcontainer",
    ".devcontainer.json",
    "**/.idea",
    "**/.claude/settings*.json",
    "**/.claude/hooks",
    ".pre-commit-config.yaml",
    "**/.husky",
    "**/.github/workflows",
];

/// Gitignore patterns for entries protected themselves, not what lies below them: creating,
/// removing or replacing one (or changing its mode) is protected. A `.git` *file* saying
/// `gitdir: ../elsewhere`, or an `info` directory swapped for a symlink, points git at files
/// nobody reviewed; the files inside are decided by [`PROTECTED`]. A `!pattern` in
/// `.wsfsignore`'s `[protected]` that matches the entry itself undoes it.
pub const PROTECTED_ENTRIES: &[&str] = &[
    "**/.git",
    "**/.git/info",
    "**/.git/modules/**/info",
    "**/.git/worktrees/*/info",
    "!**/.git/**/objects/info",
];
