//! One function per command: resolve the workspace, call mountd, print.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;
use wsfs::api::{CommitRequest, ExportRequest, MountRequest, PathsRequest, Show, WorkspaceInfo};
use wsfs::client::{Autostart, Client};
use wsfs::relpath::RelPath;
use wsfs::state::{default_socket, StateRoot};

use crate::cli::{Cli, Color, Command, Target, TokenAction};
use crate::output::{print_json, Outcome};
use crate::render;
use crate::resolve;

/// Printed by `wsfs mount` when mountd could mount for its own user only.
const OWNER_ONLY_NOTE: &str = "note: mounted for your user only. You, `wsfs run` and rootless \
containers (same uid) can use it; a Docker daemon running as root cannot, which needs the mount \
option allow_other. To get it: add the line `user_allow_other` to /etc/fuse.conf, then \
`wsfs unmount` and `wsfs mount` again; or run mountd as a system service (as root).";

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    if let Command::Completions { shell } = cli.command {
        let mut cmd = Cli::command();
        clap_complete::generate(shell, &mut cmd, "wsfs", &mut std::io::stdout());
        return Ok(Outcome::Ok);
    }
    if let Command::Trust { project } = &cli.command {
        return crate::containers::trust(project.as_deref());
    }
    if cli.remote.is_some() {
        refuse_remote(&cli.command)?;
    }
    let client = connect(&cli).await?;
    let json = cli.json;
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Completions { .. } | Command::Trust { .. } => unreachable!("handled above"),
        Command::Token { action } => {
            let info = match action {
                TokenAction::Show => client.token().await?,
                TokenAction::Rotate => client.rotate_token().await?,
            };
            if json {
                print_json(&mut out, &info)?;
            } else {
                writeln!(out, "{}", info.token)?;
            }
        }
        Command::Mount {
            project,
            name,
            mountpoint,
            open_mode,
        } => {
            let project = absolute(project)?;
            let mountpoint = mountpoint.map(absolute).transpose()?;
            let info = client
                .mount(&MountRequest {
                    project,
                    name,
                    mountpoint,
                    policy: None,
                    open_mode,
                })
                .await?;
            if json {
                print_json(&mut out, &info)?;
            } else {
                let mp = info.mountpoint.clone().unwrap_or_default();
                eprintln!(
                    "workspace {}: {} mounted at {} ({} pending change{})",
                    info.name,
                    info.project.display(),
                    mp.display(),
                    info.pending,
                    if info.pending == 1 { "" } else { "s" }
                );
                if info.allow_other == Some(false) {
                    eprintln!("{OWNER_ONLY_NOTE}");
                }
                writeln!(out, "{}", mp.display())?;
            }
        }
        Command::Unmount { ws } => {
            let ws = pick(&client, ws.get()).await?;
            let info = client.unmount(&ws.name).await?;
            if json {
                print_json(&mut out, &info)?;
            } else {
                eprintln!(
                    "unmounted {}; {} pending change{} kept (`wsfs mount {}` resumes)",
                    info.name,
                    info.pending,
                    if info.pending == 1 { "" } else { "s" },
                    info.project.display()
                );
            }
        }
        Command::List => {
            let list = client.list().await?;
            if json {
                print_json(&mut out, &list)?;
            } else {
                render::list(&mut out, &list)?;
            }
        }
        Command::Status { ws, show } => {
            let list = client.list().await?;
            let ws = resolve::workspace(&list, ws.get())?;
            let changes = client.status(&ws.name, show.show()).await?;
            let also_in = also_in(&client, &list, &ws).await?;
            if json {
                print_json(&mut out, &render::with_also_in(&changes, &also_in))?;
            } else {
                render::status(&mut out, &changes, &also_in)?;
                if show.show() == Show::Review {
                    render::hidden_summary(&mut out, &ws, "status")?;
                }
            }
        }
        Command::Diff {
            target,
            show,
            git,
            color,
            stat,
        } if range_target(&client, &target).await?.is_some() => {
            let (ws, range, paths) = range_target(&client, &target).await?.expect("checked");
            anyhow::ensure!(
                !git,
                "wsfs diff A..B: --git is not available for ranges yet"
            );
            let req = wsfs::api::RangeDiffRequest {
                from: range.0,
                to: range.1,
                paths,
            };
            let diffs = client.diff_range(&ws.name, &req, show.show()).await?;
            print_diffs(&mut out, &diffs, json, stat, color)?;
        }
        Command::Diff {
            target,
            show,
            git: true,
            ..
        } => {
            let (ws, paths) = target_paths(&client, &target).await?;
            let patch = client
                .patch(&ws.name, &PathsRequest { paths }, show.show())
                .await?;
            if json {
                print_json(&mut out, &patch)?;
            } else {
                out.write_all(patch.patch.as_bytes())?;
                for l in &patch.left_out {
                    eprintln!("wsfs: left out of the patch: {}: {}", l.path, l.reason);
                }
            }
        }
        Command::Diff {
            target,
            show,
            stat,
            color,
            git: false,
        } => {
            let (ws, paths) = target_paths(&client, &target).await?;
            let diffs = client
                .diff(&ws.name, &PathsRequest { paths }, show.show())
                .await?;
            print_diffs(&mut out, &diffs, json, stat, color)?;
        }
        Command::Export {
            target,
            branch,
            message,
            force,
        } => {
            let (ws, paths) = target_paths(&client, &target).await?;
            let req = ExportRequest {
                branch,
                message,
                paths,
                force,
            };
            let report = client.export(&ws.name, &req).await?;
            if json {
                print_json(&mut out, &report)?;
            } else {
                render::export(&report);
                writeln!(out, "{}", report.commit)?;
            }
        }
        Command::Commit {
            target,
            dry_run,
            force,
            allow_protected,
            include_scratch,
            keep_setid,
            merge,
            patch,
        } => {
            let (ws, paths) = target_paths(&client, &target).await?;
            let mut req = CommitRequest {
                paths,
                dry_run,
                force,
                allow_protected,
                include_scratch,
                keep_setid,
                merge,
                hunks: Vec::new(),
            };
            if patch {
                if !std::io::stdin().is_terminal() {
                    return Err(resolve::UsageError(
                        "wsfs commit -p asks about each hunk and needs a terminal;                          send `hunks` through the API (docs/api.md) to choose without one"
                            .into(),
                    )
                    .into());
                }
                let diffs = client
                    .diff(
                        &ws.name,
                        &PathsRequest {
                            paths: req.paths.clone(),
                        },
                        Show::Review,
                    )
                    .await?;
                let chosen = crate::interactive::choose(
                    &diffs,
                    &mut std::io::stdin().lock(),
                    &mut std::io::stdout(),
                )?;
                if chosen.is_empty() {
                    writeln!(out, "nothing chosen, nothing committed")?;
                    return Ok(Outcome::Ok);
                }
                req.paths = chosen.paths;
                req.hunks = chosen.hunks;
            }
            let bar = progress_bar(json);
            let started_ns = crate::interrupted::now_ns();
            let report = client
                .commit(&ws.name, &req, |done, total| {
                    if let Some(b) = &bar {
                        b.set_length(total);
                        b.set_position(done);
                    }
                })
                .await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let report = match report {
                Err(e @ wsfs::client::ClientError::CommitInterrupted { .. }) => {
                    let autostart =
                        autostart_of(&state_root(cli.state_dir.as_ref()), cli.no_autostart);
                    return crate::interrupted::commit(
                        e,
                        &client,
                        &ws.name,
                        started_ns,
                        autostart.as_ref(),
                    )
                    .await;
                }
                r => r?,
            };
            if json {
                print_json(&mut out, &report)?;
            } else {
                render::commit(&mut out, &report)?;
            }
            if !report.conflicts.is_empty() {
                return Ok(Outcome::Refused);
            }
        }
        Command::Discard { target } => {
            let (ws, paths) = target_paths(&client, &target).await?;
            let report = client.discard(&ws.name, &PathsRequest { paths }).await?;
            if json {
                print_json(&mut out, &report)?;
            } else if report.discarded.is_empty() {
                writeln!(out, "nothing to discard")?;
            } else {
                for p in &report.discarded {
                    writeln!(out, "discarded  {p}")?;
                }
            }
        }
        Command::Checkpoint { ws, message } => {
            let ws = pick(&client, ws.get()).await?;
            let info = client
                .checkpoint(&ws.name, &wsfs::api::CheckpointRequest { message })
                .await?;
            if json {
                print_json(&mut out, &info)?;
            } else {
                writeln!(out, "{}", info.id)?;
            }
        }
        Command::Checkpoints { ws, date } => {
            let ws = pick(&client, ws.get()).await?;
            let list = client.checkpoints(&ws.name).await?;
            if json {
                print_json(&mut out, &list)?;
            } else {
                render::checkpoints(&mut out, &list, date)?;
            }
        }
        Command::Restore { workspace, args } => {
            let list = client.list().await?;
            let (ws, rest) = resolve::split_target(&list, workspace.as_deref(), &args)?;
            let Some((id, paths)) = rest.split_first() else {
                return Err(resolve::UsageError(
                    "wsfs restore: name the checkpoint; usage: wsfs restore [NAME] CHECKPOINT [PATH...]".into(),
                )
                .into());
            };
            let req = wsfs::api::RestoreRequest {
                checkpoint: id.to_string_lossy().into_owned(),
                paths: resolve::paths(&ws, paths)?,
            };
            let report = client.restore(&ws.name, &req).await?;
            if json {
                print_json(&mut out, &report)?;
            } else {
                for p in &report.restored {
                    writeln!(out, "restored  {p}")?;
                }
                eprintln!(
                    "restored {} path{} to {}; the view before is checkpoint {} (`wsfs restore {}` undoes this)",
                    report.restored.len(),
                    if report.restored.len() == 1 { "" } else { "s" },
                    report.checkpoint,
                    report.saved,
                    report.saved
                );
            }
        }
        Command::Log {
            ws,
            date,
            commits: true,
        } => {
            let ws = pick(&client, ws.get()).await?;
            let commits = client.commits(&ws.name).await?;
            if json {
                print_json(&mut out, &commits)?;
            } else {
                crate::render_undo::commits(&mut out, &commits, date)?;
            }
        }
        Command::Log { ws, date, .. } => {
            let ws = pick(&client, ws.get()).await?;
            let records = client.log(&ws.name).await?;
            if json {
                print_json(&mut out, &records)?;
            } else {
                render::log(&mut out, &records, date)?;
            }
        }
        Command::Blame { target, date } => {
            let list = client.list().await?;
            let (ws, args) =
                resolve::split_target(&list, target.workspace.as_deref(), &target.args)?;
            if args.is_empty() {
                return Err(resolve::UsageError(
                    "wsfs blame: name a path; usage: wsfs blame [NAME] PATH...".into(),
                )
                .into());
            }
            // `.` at the project root selects every record, like `wsfs log`.
            let paths = resolve::paths(&ws, &args)?;
            let records = client.blame(&ws.name, &PathsRequest { paths }).await?;
            if json {
                print_json(&mut out, &records)?;
            } else {
                render::log(&mut out, &records, date)?;
            }
        }
        Command::Undo {
            commit,
            workspace,
            force,
        } => {
            let ws = pick(&client, workspace.as_deref()).await?;
            let req = wsfs::api::UndoRequest { commit, force };
            let report = client.undo(&ws.name, &req).await?;
            if json {
                print_json(&mut out, &report)?;
            } else {
                crate::render_undo::undo(&mut out, &report)?;
            }
            if !report.conflicts.is_empty() && report.id.is_empty() {
                return Ok(Outcome::Refused);
            }
        }
        Command::Gc { keep, workspace } => {
            let ws = pick(&client, workspace.as_deref()).await?;
            let report = client.gc(&ws.name, &wsfs::api::GcRequest { keep }).await?;
            if json {
                print_json(&mut out, &report)?;
            } else {
                writeln!(
                    out,
                    "kept the versions of the last {} commits: removed {} objects, {} bytes freed ({} objects kept)",
                    report.keep, report.removed, report.bytes_freed, report.kept
                )?;
            }
        }
        Command::Verify { ws } => {
            let ws = pick(&client, ws.get()).await?;
            let report = client.verify(&ws.name).await?;
            if json {
                print_json(&mut out, &report)?;
            } else {
                render::verify(&mut out, &report)?;
            }
            if !report.chain_ok || !report.problems.is_empty() {
                return Ok(Outcome::Failed);
            }
        }
        Command::Up {
            project,
            name,
            flags,
            command,
        } => return crate::containers::up(&client, project, name, &flags, command, json).await,
        Command::Exec { workspace, args } => {
            let (name, command) = exec_args(workspace, args)?;
            return crate::containers::exec(&client, &name, &command).await;
        }
        Command::Shell { ws } => return crate::containers::shell(&client, ws.get()).await,
        Command::Ps => return crate::containers::ps(&client, json).await,
        Command::Down {
            ws,
            commit,
            discard,
        } => return crate::containers::down(&client, ws.get(), commit, discard).await,
        Command::Logs { ws, follow } => {
            return crate::containers::logs(&client, ws.get(), follow).await
        }
        Command::Run { args } => return crate::containers::run(&client, args).await,
        Command::Remove { name, workspace } => {
            let name = name
                .or(workspace)
                .context("wsfs remove: name the workspace")?;
            let report = client.remove(&name).await?;
            if json {
                print_json(&mut out, &report)?;
            } else {
                eprintln!(
                    "removed workspace {name} and {} pending change{}",
                    report.discarded.len(),
                    if report.discarded.len() == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(Outcome::Ok)
}

/// Commands that act where the project is (mounts, containers) or on the daemon's own secret
/// cannot run against a remote daemon.
fn refuse_remote(command: &Command) -> anyhow::Result<()> {
    let what = match command {
        Command::Mount { .. } => "mount",
        Command::Up { .. } => "up",
        Command::Exec { .. } => "exec",
        Command::Shell { .. } => "shell",
        Command::Down { .. } => "down",
        Command::Logs { .. } => "logs",
        Command::Ps => "ps",
        Command::Run { .. } => "run",
        Command::Token { .. } => "token",
        _ => return Ok(()),
    };
    anyhow::bail!(
        "`wsfs {what}` runs on the daemon's host only (the mount and the containers live where \
         the project is, and the token is managed there); run it there, without --remote / \
         WSFS_REMOTE"
    )
}

/// Connects to mountd (remote with `--remote`), starting a local one unless `--no-autostart`.
async fn connect(cli: &Cli) -> anyhow::Result<Client> {
    if let Some(url) = &cli.remote {
        let token = std::env::var("WSFS_TOKEN").unwrap_or_default();
        return Ok(Client::remote(url, &token).await?);
    }
    let state = state_root(cli.state_dir.as_ref());
    let socket = cli.socket.clone().unwrap_or_else(|| default_socket(&state));
    let autostart = autostart_of(&state, cli.no_autostart);
    Ok(Client::connect_or_start(socket, autostart.as_ref()).await?)
}

fn state_root(dir: Option<&PathBuf>) -> StateRoot {
    match dir {
        Some(d) => StateRoot::new(d),
        None => StateRoot::default_location(),
    }
}

/// How to start mountd, unless `--no-autostart`.
fn autostart_of(state: &StateRoot, no_autostart: bool) -> Option<Autostart> {
    (!no_autostart).then(|| Autostart {
        program: mountd_program(),
        state_dir: state.path().to_owned(),
        log: state.path().join("mountd.log"),
    })
}

/// `mountd` next to this executable, else from PATH.
fn mountd_program() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("mountd")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("mountd"))
}

async fn pick(client: &Client, name: Option<&str>) -> anyhow::Result<WorkspaceInfo> {
    let list = client.list().await?;
    resolve::workspace(&list, name)
}

/// `wsfs diff`'s output: JSON, the `--stat` summary or the unified diff.
fn print_diffs(
    out: &mut impl Write,
    diffs: &[wsfs::api::FileDiff],
    json: bool,
    stat: bool,
    color: Color,
) -> anyhow::Result<()> {
    let pal = palette(color);
    if json {
        print_json(out, &diffs)?;
    } else if stat {
        render::diff_stat(out, diffs, pal)?;
    } else {
        render::diff(out, diffs, pal)?;
    }
    Ok(())
}

/// The colour palette `--color` asks for.
fn palette(color: Color) -> render::Palette {
    render::Palette::new(match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    })
}

/// `[NAME] A..B [PATH...]` of `wsfs diff`: the workspace, the two points and the paths, or
/// `None` when the first argument after the name is not a range.
async fn range_target(
    client: &Client,
    target: &Target,
) -> anyhow::Result<Option<(WorkspaceInfo, (String, String), Vec<RelPath>)>> {
    let has_range = target.args.iter().take(2).any(|a| parse_range(a).is_some());
    if !has_range {
        return Ok(None);
    }
    let list = client.list().await?;
    let (ws, args) = resolve::split_target(&list, target.workspace.as_deref(), &target.args)?;
    let Some(range) = args.first().and_then(|a| parse_range(a)) else {
        return Ok(None);
    };
    let paths = resolve::paths(&ws, &args[1..])?;
    Ok(Some((ws, range, paths)))
}

/// `A..B` (either side may be empty: `A..` is `A..@`, `..B` is `base..B`).
fn parse_range(arg: &std::ffi::OsStr) -> Option<(String, String)> {
    let s = arg.to_str()?;
    let (a, b) = s.split_once("..")?;
    let word = |w: &str| w.is_empty() || w == "@" || w == "base" || is_checkpoint_id(w);
    if !word(a) || !word(b) || s.contains('/') {
        return None;
    }
    let a = if a.is_empty() { "base" } else { a };
    let b = if b.is_empty() { "@" } else { b };
    Some((a.to_string(), b.to_string()))
}

/// `c` followed by digits.
fn is_checkpoint_id(w: &str) -> bool {
    w.strip_prefix('c')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

async fn target_paths(
    client: &Client,
    target: &Target,
) -> anyhow::Result<(WorkspaceInfo, Vec<wsfs::relpath::RelPath>)> {
    let list = client.list().await?;
    let (ws, args) = resolve::split_target(&list, target.workspace.as_deref(), &target.args)?;
    let paths = resolve::paths(&ws, &args)?;
    Ok((ws, paths))
}

/// `wsfs exec`'s workspace and command: `-w NAME CMD...` or `NAME [--] CMD...`.
fn exec_args(
    workspace: Option<String>,
    mut args: Vec<String>,
) -> anyhow::Result<(String, Vec<String>)> {
    let name = match workspace {
        Some(name) => name,
        None => {
            anyhow::ensure!(
                !args.is_empty(),
                "wsfs exec: name the workspace; usage: wsfs exec NAME [--] CMD..."
            );
            args.remove(0)
        }
    };
    if args.first().is_some_and(|a| a == "--") {
        args.remove(0);
    }
    if args.is_empty() {
        return Err(resolve::UsageError(
            "wsfs exec: no command given; usage: wsfs exec NAME [--] CMD... or wsfs exec -w NAME [--] CMD..."
                .into(),
        )
        .into());
    }
    Ok((name, args))
}

/// For each path `ws` changed, the other workspaces of the same project that changed it too
/// (their pending changes, every class, as the API reports them). A workspace that cannot
/// answer is skipped with a warning: its marks are missing, the status is not.
async fn also_in(
    client: &Client,
    list: &[WorkspaceInfo],
    ws: &WorkspaceInfo,
) -> anyhow::Result<BTreeMap<RelPath, Vec<String>>> {
    let mut out: BTreeMap<RelPath, Vec<String>> = BTreeMap::new();
    let others = list
        .iter()
        .filter(|o| o.name != ws.name && o.problem.is_none() && o.project == ws.project);
    for other in others {
        match client.status(&other.name, Show::All).await {
            Ok(changes) => {
                let mut paths: Vec<&RelPath> = changes
                    .iter()
                    .flat_map(|c| std::iter::once(&c.path).chain(c.from.as_ref()))
                    .collect();
                paths.dedup();
                for p in paths {
                    let names = out.entry(p.clone()).or_default();
                    if !names.contains(&other.name) {
                        names.push(other.name.clone());
                    }
                }
            }
            Err(e) => eprintln!(
                "wsfs: warning: cannot read workspace {}'s changes ({e}); `[also in]` marks leave it out",
                other.name
            ),
        }
    }
    Ok(out)
}

fn absolute(p: PathBuf) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p);
    }
    Ok(std::env::current_dir()
        .context("reading the current directory")?
        .join(p))
}

/// A progress bar on stderr for interactive, human-output commits.
fn progress_bar(json: bool) -> Option<indicatif::ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("committing {bar:40} {pos}/{len} files {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::exec_args;
    use crate::cli::{Cli, Command};

    fn exec(argv: &[&str]) -> (String, Vec<String>) {
        let cli = Cli::try_parse_from(argv).unwrap();
        match cli.command {
            Command::Exec { workspace, args } => exec_args(workspace, args).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exec_takes_the_workspace_either_way() {
        let want = ("n".to_string(), vec!["ls".to_string(), "-la".to_string()]);
        assert_eq!(exec(&["wsfs", "exec", "n", "--", "ls", "-la"]), want);
        assert_eq!(exec(&["wsfs", "exec", "n", "ls", "-la"]), want);
        assert_eq!(exec(&["wsfs", "exec", "-w", "n", "--", "ls", "-la"]), want);
        assert_eq!(exec(&["wsfs", "exec", "-w", "n", "ls", "-la"]), want);
        let cli = Cli::try_parse_from(["wsfs", "exec", "-w", "n"]);
        assert!(cli.is_err());
    }

    #[test]
    fn every_workspace_command_takes_w() {
        for cmd in [
            "status", "diff", "commit", "discard", "log", "verify", "unmount", "remove", "shell",
            "down", "logs",
        ] {
            Cli::try_parse_from(["wsfs", cmd, "-w", "n"])
                .unwrap_or_else(|e| panic!("{cmd} -w: {e}"));
        }
        Cli::try_parse_from(["wsfs", "export", "-w", "n", "--branch", "b"]).unwrap();
        assert!(Cli::try_parse_from(["wsfs", "remove"]).is_err());
        assert!(Cli::try_parse_from(["wsfs", "status", "a", "-w", "b"]).is_err());
    }
}
