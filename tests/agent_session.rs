//! An agent's session end to end, with the real tools: a small crate in a git repository,
//! worked on inside `wsfs run` (`cargo build` and `cargo test --no-run`, `sed -i` over its
//! files, `git mv`, `git add -A && git commit`, `rm -rf target`), and the same session in a
//! native copy of the project to compare with. Then the journal and the review must be exact:
//! `verify` clean, `status` the real changes (scratch summarised), `diff --stat` equal to
//! git's, and the commit leaving the host repository exactly where the native session left
//! its copy. Needs root, /dev/fuse, cargo and git (see `live::can_mount`).

mod live;
mod prereq;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use live::{can_mount, Live};

const CARGO_TOML: &str = r#"[package]
name = "tally"
version = "0.1.0"
edition = "2021"

[dependencies]
"#;

const LIB_RS: &str = r#"//! Counting Widgets.

pub mod shapes;

/// A Widget with a size.
#[derive(Debug, Clone, PartialEq)]
pub struct Widget {
    pub size: u32,
}

/// The total size of the Widgets.
pub fn total(widgets: &[Widget]) -> u32 {
    widgets.iter().map(|w| w.size).sum()
}

/// The largest Widget, if any.
pub fn largest(widgets: &[Widget]) -> Option<&Widget> {
    widgets.iter().max_by_key(|w| w.size)
}
"#;

const SHAPES_RS: &str = r#"//! Widget shapes.

use crate::Widget;

/// A square Widget of side `n`.
pub fn square(n: u32) -> Widget {
    Widget { size: area(n, n) }
}

/// The area of a `w` by `h` rectangle.
pub fn area(w: u32, h: u32) -> u32 {
    w * h
}

/// The perimeter of a `w` by `h` rectangle.
pub fn perimeter(w: u32, h: u32) -> u32 {
    2 * (w + h)
}

/// Whether a `w` by `h` rectangle is a square.
pub fn is_square(w: u32, h: u32) -> bool {
    w == h
}

/// The side of the largest square that fits in a `w` by `h` rectangle.
pub fn inner_square(w: u32, h: u32) -> u32 {
    w.min(h)
}
"#;

const MAIN_RS: &str = r#"use tally::{largest, shapes, total, Widget};

fn main() {
    let widgets = vec![Widget { size: 3 }, shapes::square(2)];
    println!("Widgets: {}", total(&widgets));
    println!("largest Widget: {:?}", largest(&widgets));
}
"#;

const TEST_RS: &str = r#"use tally::{shapes, total, Widget};

#[test]
fn sizes_add_up() {
    assert_eq!(total(&[Widget { size: 1 }, shapes::square(3)]), 10);
}
"#;

const README: &str = "# tally\n\nCounts Widgets.\n\nEvery Widget has a size.\n";

/// What the agent does, in the project's directory `$1`.
const SESSION: &str = r#"set -eu
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR
cd "$1"
cargo build --offline --quiet
cargo test --offline --no-run --quiet 2>/dev/null
sed -i 's/Widget/Gadget/g' src/lib.rs src/shapes.rs src/main.rs tests/sum.rs README.md
git mv src/shapes.rs src/figures.rs
sed -i 's/shapes/figures/g' src/lib.rs src/main.rs tests/sum.rs
echo 'Renamed in the session.' >> README.md
cargo build --offline --quiet
git add -A
git -c user.name=agent -c user.email=agent@example.com commit --quiet -m 'Widget is now Gadget'
rm -rf target
"#;

fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The directory holding `cargo` (PATH, else ~/.cargo/bin); fails under CI when absent.
fn cargo_dir() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    let found = std::env::split_paths(&path)
        .chain(home)
        .find(|d| d.join("cargo").is_file());
    prereq::require(
        "agent_session",
        "cargo on PATH or in ~/.cargo/bin",
        found.is_some(),
    );
    found
}

/// `git ARGS` in `dir`.
fn git_output(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args([
            "-c",
            "user.name=owner",
            "-c",
            "user.email=owner@example.com",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `git ARGS` in `dir`, asserting success; returns stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} in {}:\n{}",
        dir.display(),
        text(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The crate, committed in a fresh git repository (with its Cargo.lock, as crates keep it).
fn write_project(dir: &Path, cargo_env: &[(&str, PathBuf)]) {
    for (p, c) in [
        ("Cargo.toml", CARGO_TOML),
        ("src/lib.rs", LIB_RS),
        ("src/shapes.rs", SHAPES_RS),
        ("src/main.rs", MAIN_RS),
        ("tests/sum.rs", TEST_RS),
        ("README.md", README),
        (".gitignore", "/target\n/.cargo-home\n"),
    ] {
        let full = dir.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, c).unwrap();
    }
    let out = Command::new("cargo")
        .args(["generate-lockfile", "--offline"])
        .current_dir(dir)
        .envs(cargo_env.iter().map(|(k, v)| (k, v)))
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo generate-lockfile:\n{}",
        text(&out)
    );
    std::fs::remove_dir_all(dir.join(".cargo-home")).ok();
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "--quiet", "-m", "tally"]);
}

/// The environment of the agent's commands: cargo on PATH, CARGO_HOME inside the project
/// (so its cache is the workspace's scratch).
fn cargo_env(project: &Path, cargo_dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        std::iter::once(cargo_dir.to_path_buf()).chain(std::env::split_paths(&path)),
    )
    .unwrap();
    vec![
        ("PATH", PathBuf::from(path)),
        ("CARGO_HOME", project.join(".cargo-home")),
    ]
}

/// Runs the session natively in `dir`.
fn session_natively(dir: &Path, env: &[(&str, PathBuf)]) {
    let out = Command::new("sh")
        .args(["-c", SESSION, "session"])
        .arg(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the native session failed:\n{}",
        text(&out)
    );
}

/// `(files, insertions, deletions)` of a `--stat` summary line, git's or wsfs's (git leaves
/// out a zero count).
fn stat_totals(stat: &str) -> (u64, u64, u64) {
    let line = stat
        .lines()
        .rev()
        .find(|l| l.contains(" changed"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stat}"));
    let count = |word: &str| {
        line.split(',')
            .find(|part| part.contains(word))
            .and_then(|part| part.split_whitespace().next())
            .map_or(0, |n| n.replace(',', "").parse().unwrap())
    };
    (count("changed"), count("insertion"), count("deletion"))
}

/// True for a status line that summarises hidden paths instead of listing one (defect 4's
/// `4,854 scratch paths under node_modules/, target/ — wsfs status --scratch`).
fn is_summary(line: &str) -> bool {
    line.contains("wsfs status --")
}

#[test]
fn agent_session_with_cargo_sed_and_git_is_exact() {
    if !can_mount("agent_session_with_cargo_sed_and_git_is_exact") {
        return;
    }
    let Some(cargo_dir) = cargo_dir() else {
        return;
    };
    let mut live = Live::new(&[]);
    let project = live.project.clone();
    let env = cargo_env(&project, &cargo_dir);
    write_project(&project, &env);
    let native = live.root.path().join("native");
    let out = Command::new("cp")
        .args(["-a"])
        .arg(&project)
        .arg(&native)
        .output()
        .unwrap();
    assert!(out.status.success(), "cp -a: {}", text(&out));
    let native_env = cargo_env(&native, &cargo_dir);
    session_natively(&native, &native_env);

    // The same session inside the workspace.
    for (k, v) in &env {
        live.set_env(k, v);
    }
    let args: Vec<&OsStr> = vec![
        OsStr::new("run"),
        project.as_os_str(),
        OsStr::new("--"),
        OsStr::new("sh"),
        OsStr::new("-c"),
        OsStr::new(SESSION),
        OsStr::new("session"),
        project.as_os_str(),
    ];
    let out = live.wsfs(&args);
    assert!(
        out.status.success(),
        "the session inside `wsfs run` failed:\n{}\nmountd log:\n{}",
        text(&out),
        live.log()
    );
    assert!(
        !project.join("src/figures.rs").exists(),
        "the session's changes stay in the workspace until commit"
    );
    let ws = "project";

    // Every check below is collected, so one run reports all that is wrong.
    let mut problems: Vec<String> = Vec::new();

    // The journal agrees with the upper layer, without a restart.
    let out = live.wsfs(["verify", ws]);
    if !out.status.success() {
        problems.push(format!("wsfs verify after the session:\n{}", text(&out)));
    }

    // Status: the real changes, one line each; scratch (the cargo cache) and the agent's
    // .git/objects churn summarised, never listed.
    let status = live.ok(["status", ws]);
    let changes: Vec<&str> = status.lines().filter(|l| !is_summary(l)).collect();
    let names = |l: &&str, p: &str| {
        l.split_whitespace()
            .any(|w| w == p || w.starts_with(&format!("{p}/")))
    };
    for real in [
        "src/lib.rs",
        "src/main.rs",
        "src/figures.rs",
        "tests/sum.rs",
        "README.md",
    ] {
        if !changes.iter().any(|l| names(l, real)) {
            problems.push(format!("status does not list the real change {real}"));
        }
    }
    for hidden in [".cargo-home", "target", ".git/objects"] {
        let n = changes.iter().filter(|l| names(l, hidden)).count();
        if n > 0 {
            problems.push(format!(
                "status lists {n} paths under {hidden}/ one by one instead of summarising them"
            ));
        }
    }
    if !status
        .lines()
        .any(|l| is_summary(l) && l.contains("scratch"))
    {
        problems.push("status has no one-line summary of the scratch paths".into());
    }
    if !status
        .lines()
        .any(|l| is_summary(l) && l.contains(".git/objects"))
    {
        problems.push("status has no one-line summary of the .git/objects churn".into());
    }
    let git_meta = changes.iter().filter(|l| names(l, ".git")).count();
    if changes.len() > 6 + git_meta || git_meta > 8 {
        problems.push(format!(
            "status shows more than the real changes: {} lines, {git_meta} under .git/",
            changes.len()
        ));
    }

    // diff --stat over the work tree agrees with git's stat of the same change.
    let git_stat = git(&native, &["diff", "--stat", "-M", "HEAD~1", "HEAD"]);
    let tracked = git(&native, &["ls-tree", "--name-only", "HEAD"]);
    let mut args = vec!["diff", "--stat", "-w", ws];
    args.extend(tracked.lines());
    let wsfs_stat = live.ok(&args);
    if stat_totals(&wsfs_stat) != stat_totals(&git_stat) {
        problems.push(format!(
            "wsfs diff --stat disagrees with git's:\n{wsfs_stat}git diff --stat of the same \
             change natively:\n{git_stat}"
        ));
    }
    if !problems.is_empty() {
        problems.push(format!("(the status was:\n{status})"));
    }

    // Commit: the host repository ends where the native session left its copy.
    let out = live.wsfs(["commit", ws]);
    assert!(
        out.status.success(),
        "wsfs commit:\n{}\nmountd log:\n{}\nproblems before the commit:\n{}",
        text(&out),
        live.log(),
        problems.join("\n")
    );
    let fsck = git_output(&project, &["fsck", "--strict", "--no-progress"]);
    if !fsck.status.success() || !fsck.stdout.is_empty() {
        problems.push(format!(
            "git fsck on the host after the commit:\n{}",
            text(&fsck)
        ));
    }
    let host_status = git(
        &project,
        &["status", "--porcelain", "--untracked-files=all"],
    );
    if !host_status.is_empty() {
        problems.push(format!(
            "git status on the host after the commit:\n{host_status}"
        ));
    }
    let (host_tree, native_tree) = (
        git(&project, &["rev-parse", "HEAD^{tree}"]),
        git(&native, &["rev-parse", "HEAD^{tree}"]),
    );
    if host_tree != native_tree {
        problems.push(format!(
            "the host's HEAD tree {host_tree} is not the native session's {native_tree}"
        ));
    }
    let subject = git(&project, &["log", "-1", "--format=%s"]);
    if subject.trim() != "Widget is now Gadget" {
        problems.push(format!(
            "the host's HEAD is not the agent's commit: {subject}"
        ));
    }
    let out = live.wsfs(["verify", ws]);
    if !out.status.success() {
        problems.push(format!("wsfs verify after the commit:\n{}", text(&out)));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    live.stop();
}
