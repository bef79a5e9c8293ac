//! Command-line syntax (clap).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Workspace names: every command that takes a workspace takes it as -w NAME (--workspace); most \
also take it as their first argument. It may be omitted when the current directory is inside \
the workspace's mountpoint (that workspace is meant) or its project directory; when several \
workspaces share that project directory, the command stops (exit 2), names them and asks for \
-w NAME. For diff/commit/export/discard the first argument is taken as the name when a workspace of \
that name exists, else as a path.

Paths are relative to the current directory when it is inside the workspace, else to the \
project root; absolute paths inside the project or the mountpoint are accepted.

Output is for humans by default; --json prints the documented JSON schema (docs/api.md). \
File names that are not UTF-8 are printed with \\xNN escapes, and in JSON as {\"b64\": \"...\"}.

Exit codes: 0 ok, 1 error, 2 usage error (including an ambiguous workspace), 3 commit refused (conflicts or protected paths; \
nothing was applied).

mountd is started in the background when it is not running (same --state-dir and --socket); \
pass --no-autostart to refuse.";

/// wsfs: copy-on-write workspaces for coding agents. The container writes into an overlay;
/// the host project changes only when you commit.
#[derive(Parser, Debug)]
#[command(version, after_long_help = AFTER_HELP, after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 commit refused. `wsfs help <command>` for details.")]
pub struct Cli {
    /// mountd's control socket [default: /run/wsfs/mountd.sock as root, else
    /// $XDG_RUNTIME_DIR/wsfs/mountd.sock].
    #[arg(long, env = "WSFS_SOCKET", global = true)]
    pub socket: Option<PathBuf>,
    /// State directory given to an auto-started mountd [default: /var/lib/wsfs as root, else
    /// $XDG_DATA_HOME/wsfs].
    #[arg(long, env = "WSFS_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// Do not start mountd when it is not running.
    #[arg(long, global = true)]
    pub no_autostart: bool,
    /// A remote mountd (`http://HOST[:PORT]`, port 7391 by default) started with `--listen`;
    /// the token comes from WSFS_TOKEN (`wsfs token show` on that host prints it). Review
    /// commands work remotely; mounts and containers run on the daemon's host only.
    #[arg(long, env = "WSFS_REMOTE", global = true, value_name = "URL")]
    pub remote: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `wsfs token` actions.
#[derive(Subcommand, Debug, Clone, Copy)]
pub enum TokenAction {
    /// Print the token.
    Show,
    /// Replace the token with a new one and print it.
    Rotate,
}

/// Which pending changes `status` and `diff` show.
#[derive(Args, Debug, Clone, Copy)]
pub struct ShowFlags {
    /// Only the scratch paths (build output, caches, git-ignored files).
    #[arg(long, conflicts_with = "all")]
    pub scratch: bool,
    /// Everything: real changes, scratch, and git's object/reflog churn.
    #[arg(long)]
    pub all: bool,
}

impl ShowFlags {
    /// The API's view for these flags.
    pub fn show(self) -> wsfs::api::Show {
        match (self.scratch, self.all) {
            (true, _) => wsfs::api::Show::Scratch,
            (_, true) => wsfs::api::Show::All,
            _ => wsfs::api::Show::Review,
        }
    }
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Mount a project as a workspace (created on first use, resumed afterwards); prints the
    /// mountpoint.
    Mount {
        /// The host project directory (the read-only lower layer).
        project: PathBuf,
        /// Workspace name [default: the directory's name].
        #[arg(long)]
        name: Option<String>,
        /// Where to mount [default: <state-dir>/mnt/<name>].
        #[arg(long)]
        mountpoint: Option<PathBuf>,
        /// How the mount serves open(2): `open` (a round trip per open, FUSE passthrough for
        /// written files) or `no-open` (opens never reach mountd: warm reads at page-cache
        /// speed; written files are hashed when their writes go idle) [default: as last
        /// mounted, else mountd's --open-mode].
        #[arg(long, value_name = "MODE")]
        open_mode: Option<wsfs::api::OpenMode>,
    },
    /// Unmount a workspace; its changes stay, and `wsfs mount` resumes them.
    Unmount {
        #[command(flatten)]
        ws: WsName,
    },
    /// List workspaces.
    List,
    /// Pending changes, like `git status --short` (A added, M modified, D deleted,
    /// R renamed, T type changed). Scratch paths and git's object/reflog churn are summarised
    /// in one line each, like git hides ignored files.
    Status {
        #[command(flatten)]
        ws: WsName,
        #[command(flatten)]
        show: ShowFlags,
    },
    /// Unified diff of pending changes against the host project (renames paired as
    /// `git diff -M` pairs them; scratch and git churn left out unless asked). With a range
    /// `A..B` as the first argument after the name (checkpoint ids, `@` for now, `base` for the
    /// host state the workspace started from): what changed from A to B.
    Diff {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        show: ShowFlags,
        /// Summary of changed lines per file instead of the diff.
        #[arg(long, conflicts_with = "git")]
        stat: bool,
        /// A patch `git apply` accepts (as `git diff --binary --full-index -M` writes it):
        /// binary files, modes, symlinks, renames; no colour. Changes git cannot hold (FIFOs,
        /// devices, `.git/`, workspace-only secrets) are named on stderr.
        #[arg(long)]
        git: bool,
        /// Colour: auto (when stdout is a terminal and NO_COLOR is unset), always, never.
        #[arg(long, default_value = "auto")]
        color: Color,
    },
    /// Apply pending changes to the host project, atomically per file. Refused (exit 3, nothing
    /// applied) when a host file changed since the workspace read it, or a path is protected.
    Commit {
        #[command(flatten)]
        target: Target,
        /// Show what would be applied; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Overwrite conflicting host files (each is backed up first; the backup dir is printed).
        #[arg(long)]
        force: bool,
        /// Allow changes to protected paths (git hooks and config, .envrc, CI workflows, ...;
        /// see docs/policy.md).
        #[arg(long)]
        allow_protected: bool,
        /// Also commit scratch paths (build output, caches, .gitignored files).
        #[arg(long)]
        include_scratch: bool,
        /// Keep setuid/setgid bits (stripped otherwise).
        #[arg(long)]
        keep_setid: bool,
        /// 3-way merge text files the host changed since the workspace based its change on
        /// them (when the base is HEAD's or the index's version in git and the changes do not
        /// overlap); apply the merges and the other changes, report the rest as conflicts.
        #[arg(long, conflicts_with = "force")]
        merge: bool,
        /// Choose hunks interactively, like `git add -p` (y/n/q/a/d/?): chosen hunks are
        /// committed, a file's other hunks stay pending. Needs a terminal.
        #[arg(short = 'p', long, conflicts_with_all = ["merge", "dry_run"])]
        patch: bool,
    },
    /// Write the pending changes (all, or those at or below PATHs; neither scratch nor git
    /// churn) as one commit on branch NAME of the host repository, parented on HEAD. The host's
    /// work tree, index, HEAD and current branch are not touched. Prints the commit id.
    Export {
        #[command(flatten)]
        target: Target,
        /// The branch to write (refused when it exists, unless --force; never the current one).
        #[arg(long, value_name = "NAME")]
        branch: String,
        /// Commit message [default: "Changes from wsfs workspace N"].
        #[arg(short = 'm', long)]
        message: Option<String>,
        /// Replace the branch when it exists.
        #[arg(long)]
        force: bool,
    },
    /// Drop pending changes (all, or those at or below PATHs); the host project is untouched.
    Discard {
        #[command(flatten)]
        target: Target,
    },
    /// Record a checkpoint: the exact state of every changed path (contents kept in the
    /// workspace's store), restorable with `wsfs restore`. Prints its id.
    Checkpoint {
        #[command(flatten)]
        ws: WsName,
        /// What the checkpoint marks.
        #[arg(short = 'm', long, default_value = "")]
        message: String,
    },
    /// List the checkpoints: id, time, message, paths changed since the previous one.
    Checkpoints {
        #[command(flatten)]
        ws: WsName,
        /// Show times in UTC.
        #[arg(long, value_enum, default_value_t = DateStyle::Local)]
        date: DateStyle,
    },
    /// Return the workspace's view (all, or the paths at or below PATHs) to a checkpoint, live
    /// on the mount. A checkpoint of the view as it was is taken first (printed), so a restore
    /// can itself be undone.
    Restore {
        /// The workspace (instead of giving it as the first argument).
        #[arg(short = 'w', long = "workspace")]
        workspace: Option<String>,
        /// [NAME] CHECKPOINT [PATH...].
        #[arg(required = true)]
        args: Vec<OsString>,
    },
    /// The workspace's change journal, oldest first.
    Log {
        #[command(flatten)]
        ws: WsName,
        /// Show times in UTC (`--date=utc`); the default is local time with its offset, as
        /// git shows it.
        #[arg(long, value_enum, default_value_t = DateStyle::Local)]
        date: DateStyle,
        /// List the commits instead: id, time, paths, and whether each can be undone.
        #[arg(long)]
        commits: bool,
    },
    /// Put the host project back as it was before a commit (default: the last one that can be
    /// undone): content, mode and type of every path it wrote; created paths go, deleted ones
    /// come back. The commit's changes are pending in the workspace again. Refused (exit 3,
    /// nothing applied) when the host changed a path since the commit.
    Undo {
        /// The commit (`wsfs log --commits` lists them).
        #[arg(value_name = "COMMIT_ID")]
        commit: Option<String>,
        /// The workspace [default: the workspace of the current directory].
        #[arg(short = 'w', long = "workspace", value_name = "NAME")]
        workspace: Option<String>,
        /// Put back paths the host changed since the commit too (each host version is backed
        /// up first; the backup dir is printed).
        #[arg(long)]
        force: bool,
    },
    /// Drop the kept file versions that neither the last N commits that can be undone nor
    /// checkpoints need; older commits can no longer be undone. Prints the bytes freed.
    Gc {
        /// Commits to keep undoable [default: 20].
        #[arg(value_name = "N")]
        keep: Option<u64>,
        /// The workspace [default: the workspace of the current directory].
        #[arg(short = 'w', long = "workspace", value_name = "NAME")]
        workspace: Option<String>,
    },
    /// The journal records that touched PATHs (or anything below them), oldest first, with
    /// the process that made each change.
    Blame {
        #[command(flatten)]
        target: Target,
        /// Show times in UTC; the default is local time with its offset.
        #[arg(long, value_enum, default_value_t = DateStyle::Local)]
        date: DateStyle,
    },
    /// Check the journal's hash chain and that upper files match their recorded hashes.
    Verify {
        #[command(flatten)]
        ws: WsName,
    },
    /// Unmount a workspace and delete it with all its pending changes.
    #[command(alias = "rm")]
    Remove {
        /// Workspace name (or -w NAME); never inferred from the current directory.
        #[arg(required_unless_present = "workspace")]
        name: Option<String>,
        /// The workspace (instead of giving it as the argument).
        #[arg(
            short = 'w',
            long = "workspace",
            value_name = "NAME",
            conflicts_with = "name"
        )]
        workspace: Option<String>,
    },
    /// Mount the workspace (through mountd) and start its container with the workspace at the
    /// project's own absolute path (mirror mode). Without CMD the container stays up for
    /// `exec`/`shell`; with CMD, runs it attached and exits with its code.
    Up {
        /// The host project directory [default: the current directory].
        project: Option<PathBuf>,
        /// Workspace name [default: the directory's name].
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        flags: ContainerFlags,
        /// Command to run (after `--`).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Run a command in the workspace's container, as the code user, in the workspace
    /// directory; exits with the command's code.
    Exec {
        /// The workspace (then every argument is the command).
        #[arg(short = 'w', long = "workspace", value_name = "NAME")]
        workspace: Option<String>,
        /// NAME (unless -w), then the command (after `--`, or directly).
        #[arg(
            value_name = "[NAME] CMD",
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required = true
        )]
        args: Vec<String>,
    },
    /// Interactive shell in the workspace's container.
    Shell {
        #[command(flatten)]
        ws: WsName,
    },
    /// Workspaces with their container: state, image id, uptime, pending changes.
    Ps,
    /// Stop and remove the workspace's container (persistent ones are only stopped) and
    /// unmount. The overlay is kept unless --discard.
    Down {
        #[command(flatten)]
        ws: WsName,
        /// Commit first; stop (exit 3) if the commit is refused.
        #[arg(long, conflicts_with = "discard")]
        commit: bool,
        /// Drop the workspace's changes.
        #[arg(long)]
        discard: bool,
    },
    /// The container's output.
    Logs {
        #[command(flatten)]
        ws: WsName,
        /// Keep streaming until the container stops.
        #[arg(short, long)]
        follow: bool,
    },
    /// Without Docker: run CMD on the host in a private mount namespace where the project's
    /// path shows the workspace (same path, same user); the rest of the host sees nothing.
    /// `wsfs run [PROJECT_DIR] [--] CMD...`; PROJECT_DIR defaults to the current directory.
    Run {
        /// [PROJECT_DIR] CMD...
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<OsString>,
    },
    /// Trust the project's `.wsfs.toml` as it is now: settings in it that raise the
    /// container's privileges (network, root, `post_start`) are honoured only for content you
    /// trusted. Review the file first; any change needs trusting again.
    Trust {
        /// The project directory (default: the current directory).
        project: Option<PathBuf>,
    },
    /// The token remote clients need (`mountd --listen`): `show` prints it, `rotate` replaces
    /// it (the old one stops working). Local socket only.
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// The workspace a command acts on: `NAME` or `-w NAME`; without either, the workspace of the
/// current directory (an error naming the candidates when several share it).
#[derive(Args, Debug)]
pub struct WsName {
    /// Workspace name [default: the workspace of the current directory].
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// The workspace (same as NAME).
    #[arg(
        short = 'w',
        long = "workspace",
        value_name = "NAME",
        conflicts_with = "name"
    )]
    pub workspace: Option<String>,
}

impl WsName {
    /// The name given, either way.
    pub fn get(&self) -> Option<&str> {
        self.name.as_deref().or(self.workspace.as_deref())
    }
}

/// A workspace and paths within it.
#[derive(Args, Debug)]
pub struct Target {
    /// The workspace (instead of giving it as the first argument).
    #[arg(short = 'w', long = "workspace")]
    pub workspace: Option<String>,
    /// [NAME] [PATH...]: the workspace (optional), then paths (and everything below them).
    pub args: Vec<OsString>,
}

/// `--color`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Color {
    /// Colour when stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Container options of `wsfs up` (each overrides the config files).
#[derive(Args, Debug, Default)]
pub struct ContainerFlags {
    /// Image to run.
    #[arg(long)]
    pub image: Option<String>,
    /// Network: bridge, none, or a named network.
    #[arg(long)]
    pub network: Option<String>,
    /// Code user's name in the image.
    #[arg(long)]
    pub user: Option<String>,
    /// Code user's uid.
    #[arg(long)]
    pub uid: Option<u32>,
    /// Code user's gid.
    #[arg(long)]
    pub gid: Option<u32>,
    /// Keep the container between `up`s.
    #[arg(long)]
    pub persistent: bool,
    /// Workspace path in the container (empty = the host's absolute path; `/workspace` for
    /// the legacy layout).
    #[arg(long)]
    pub workspace_path: Option<String>,
    /// Memory limit, e.g. 4g.
    #[arg(long)]
    pub memory: Option<String>,
    /// CPU limit, e.g. 1.5.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Process limit.
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Where to mount the workspace on the host [default: <state-dir>/mnt/<name>].
    #[arg(long)]
    pub mountpoint: Option<PathBuf>,
}

/// How `wsfs log` shows record times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DateStyle {
    /// Local time and its UTC offset (`2026-11-18 12:06:40 +0100`).
    Local,
    /// UTC (`2026-11-18 11:06:40 +0000`).
    Utc,
}
