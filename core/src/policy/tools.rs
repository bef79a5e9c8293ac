//! Rules for a tool's own configuration directory (`~/.claude`) served to a container through
//! its own workspace: the tool's state is shared live with the host (write-through), and what
//! configures the tool or runs code through it stays for review (protected).
//!
//! A container that writes `~/.claude/settings.json` or a hook there would run code on the
//! host the next time the user starts the tool; its session history and todo lists are only
//! data, and the user wants them on the host at once. Anything on neither list is an ordinary
//! pending change (reviewed and committed with `wsfs commit` of that workspace).

use std::ffi::OsStr;

use super::PolicyConfig;

/// State of Claude Code written through to the host (relative to `~/.claude`).
pub const CLAUDE_WRITE_THROUGH: &[&str] = &[
    "/history.jsonl",
    "/projects/",
    "/todos/",
    "/sessions/",
    "/session-env/",
    "/shell-snapshots/",
    "/file-history/",
    "/plans/",
    "/statsig/",
    "/ide/",
    "/debug/",
    "/cache/",
    // The login: a token refreshed in the container must not strand the host's session.
    "/.credentials.json",
];

/// What configures Claude Code or runs code through it (relative to `~/.claude`).
pub const CLAUDE_PROTECTED: &[&str] = &[
    "/settings*.json",
    "/hooks/",
    "/commands/",
    "/agents/",
    "/plugins/",
    "/skills/",
    "/output-styles/",
    "/CLAUDE.md",
    // A local install of the tool itself.
    "/local/",
];

/// The rules for the tool configuration directory named `dir_name` (its last component, as
/// in `.claude`). A directory wsfs knows nothing about gets the default protected list and no
/// write-through: every change waits for review.
pub fn tool_config_rules(dir_name: &OsStr) -> PolicyConfig {
    let v = |s: &[&str]| s.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    let mut rules = PolicyConfig {
        // Not a git work tree: no git ignore rules to read.
        scratch_from_gitignore: false,
        ..PolicyConfig::default()
    };
    if dir_name == ".claude" {
        rules.write_through = v(CLAUDE_WRITE_THROUGH);
        rules.protected.extend(v(CLAUDE_PROTECTED));
    }
    rules
}
