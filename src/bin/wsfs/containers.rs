//! The container commands (`up`, `exec`, `shell`, `ps`, `down`, `logs`) and `run`: mount
//! through mountd, then hand over to the controller (`wsfs::controller`).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use wsfs::api::{CommitRequest, MountRequest, PathsRequest, WorkspaceInfo};
use wsfs::client::Client;
use wsfs::config::Overrides;
use wsfs::controller::{Controller, Io, LogStream, RunPlan, UpRequest};

use crate::cli::ContainerFlags;
use crate::output::{print_json, Outcome};
use crate::{render, resolve};

/// Mounts `project` (optionally as `name` at `mountpoint`) through mountd.
async fn mount(
    client: &Client,
    project: &Path,
    name: Option<String>,
    mountpoint: Option<PathBuf>,
) -> anyhow::Result<WorkspaceInfo> {
    let project = std::fs::canonicalize(project)
        .with_context(|| format!("project directory {}", project.display()))?;
    let others: Vec<PathBuf> = client
        .list()
        .await?
        .into_iter()
        .filter_map(|w| w.mountpoint)
        .collect();
    wsfs::controller::check_project(&project, &others)?;
    Ok(client
        .mount(&MountRequest {
            project,
            name,
            mountpoint,
            policy: None,
            open_mode: None,
        })
        .await?)
}

/// Mounts a workspace over each tool configuration directory the container gets
/// (`~/.claude` → workspace `NAME.claude`): the tool's state is written through to the host,
/// its settings, hooks and commands wait for review there. Returns (host dir, mountpoint).
async fn serve_tool_config(
    client: &Client,
    workspace: &str,
    req: &UpRequest,
) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let mut served = Vec::new();
    for dir in wsfs::controller::tool_config_dirs(&req.config, &req.host_user.home) {
        let name = wsfs::controller::tool_workspace_name(workspace, &dir);
        let rules = dir
            .file_name()
            .map(wsfs::policy::tools::tool_config_rules)
            .unwrap_or_default();
        let info = client
            .mount(&MountRequest {
                project: dir.clone(),
                name: Some(name.clone()),
                mountpoint: None,
                policy: Some(rules),
                open_mode: None,
            })
            .await
            .with_context(|| format!("serving tool configuration {}", dir.display()))?;
        let mountpoint = info
            .mountpoint
            .with_context(|| format!("mountd did not report where {name} is mounted"))?;
        served.push((dir, mountpoint));
    }
    Ok(served)
}

fn overrides(f: &ContainerFlags) -> Overrides {
    Overrides {
        image: f.image.clone(),
        network: f.network.clone(),
        code_user: f.user.clone(),
        code_uid: f.uid,
        code_gid: f.gid,
        persistent: f.persistent.then_some(true),
        workspace_container_path: f.workspace_path.clone(),
        memory: f.memory.clone(),
        cpus: f.cpus,
        pids_limit: f.pids_limit,
    }
}

/// `wsfs up`.
pub async fn up(
    client: &Client,
    project: Option<PathBuf>,
    name: Option<String>,
    flags: &ContainerFlags,
    command: Vec<String>,
    json: bool,
) -> anyhow::Result<Outcome> {
    let project = match project {
        Some(p) => p,
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let ctl = Controller::connect().await?;
    let info = mount(client, &project, name, flags.mountpoint.clone()).await?;
    let mountpoint = info
        .mountpoint
        .clone()
        .context("mountd did not report a mountpoint")?;
    let mut config = wsfs::config::load(Some(&info.project))?;
    config.apply(&overrides(flags));
    let attached = !command.is_empty();
    let mut req = UpRequest::new(&info.name, &info.project, &mountpoint, config);
    req.tool_mounts = serve_tool_config(client, &info.name, &req).await?;
    req.command = command;
    req.io = Io::Terminal;
    let report = ctl.up(&req).await?;
    client.record_image(&info.name, &report.image_id).await?;
    if let Some(done) = &report.user_setup {
        eprintln!("wsfs: {done}");
    }
    for w in &report.warnings {
        eprintln!("wsfs: warning: {w}");
    }
    if let Some(ps) = &report.post_start {
        std::io::stderr().write_all(&ps.stdout)?;
        std::io::stderr().write_all(&ps.stderr)?;
        if ps.exit_code != 0 {
            eprintln!("wsfs: post_start {} exited with {}", ps.path, ps.exit_code);
        }
    }
    if json {
        #[derive(Serialize)]
        struct Up<'a> {
            workspace: &'a str,
            container: &'a str,
            image_id: &'a str,
            mountpoint: &'a Path,
            exit_code: Option<i64>,
            user_setup: Option<&'a str>,
        }
        print_json(
            &mut std::io::stdout(),
            &Up {
                workspace: &info.name,
                container: &report.container_name,
                image_id: &report.image_id,
                mountpoint: &mountpoint,
                exit_code: report.exit_code,
                user_setup: report.user_setup.as_deref(),
            },
        )?;
    } else if !attached {
        eprintln!(
            "workspace {} is up: container {} ({}) sees {} at {}; `wsfs exec {} -- CMD` or `wsfs shell {}`",
            info.name,
            report.container_name,
            short_id(&report.image_id),
            info.project.display(),
            req.container_dir().display(),
            info.name,
            info.name
        );
    }
    if attached {
        auto_checkpoint(client, &info.name, "up", &req.command).await;
    }
    Ok(match report.exit_code {
        Some(code) => Outcome::Exit(code),
        None => Outcome::Ok,
    })
}

/// The automatic checkpoint at the end of `wsfs exec`, `wsfs run` and `wsfs up -- CMD`,
/// through the API. A failure is a warning: the command's own outcome stands.
pub async fn auto_checkpoint(client: &Client, workspace: &str, verb: &str, command: &[String]) {
    let mut cmd = command.join(" ");
    if cmd.len() > 60 {
        let mut end = 57;
        while !cmd.is_char_boundary(end) {
            end -= 1;
        }
        cmd.truncate(end);
        cmd.push_str("...");
    }
    let req = wsfs::api::CheckpointRequest {
        message: format!("after wsfs {verb}: {cmd}"),
    };
    match client.checkpoint(workspace, &req).await {
        Ok(info) => tracing::debug!(workspace, id = %info.id, "automatic checkpoint"),
        Err(e) => eprintln!("wsfs: warning: no checkpoint taken after the command: {e}"),
    }
}

fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// `wsfs exec`.
pub async fn exec(client: &Client, name: &str, command: &[String]) -> anyhow::Result<Outcome> {
    let ctl = Controller::connect().await?;
    let out = ctl.exec(name, command, Io::Terminal).await?;
    auto_checkpoint(client, name, "exec", command).await;
    Ok(Outcome::Exit(out.exit_code))
}

/// `wsfs shell`.
pub async fn shell(client: &Client, name: Option<&str>) -> anyhow::Result<Outcome> {
    let ws = pick(client, name).await?;
    let ctl = Controller::connect().await?;
    Ok(Outcome::Exit(ctl.shell(&ws.name).await?))
}

async fn pick(client: &Client, name: Option<&str>) -> anyhow::Result<WorkspaceInfo> {
    let list = client.list().await?;
    resolve::workspace(&list, name)
}

/// One `wsfs ps` row.
#[derive(Serialize)]
struct PsRow {
    workspace: String,
    project: PathBuf,
    mountpoint: Option<PathBuf>,
    pending: u64,
    container: Option<String>,
    state: Option<String>,
    image_id: Option<String>,
    /// Set when the configured tag now points to another image.
    image_tag_now: Option<String>,
    uptime_secs: Option<u64>,
}

/// `wsfs ps`.
pub async fn ps(client: &Client, json: bool) -> anyhow::Result<Outcome> {
    let list = client.list().await?;
    let ctl = Controller::connect().await?;
    let containers = ctl.ps().await?;
    let rows: Vec<PsRow> = list
        .into_iter()
        .map(|w| {
            let c = containers.iter().find(|c| c.workspace == w.name);
            PsRow {
                container: c.map(|c| c.name.clone()),
                state: c.map(|c| c.state.clone()),
                image_id: c.map(|c| c.image_id.clone()).or(w.image_id.clone()),
                image_tag_now: c.and_then(|c| c.image_ref_now.clone()),
                uptime_secs: c.and_then(|c| c.uptime_secs),
                workspace: w.name,
                project: w.project,
                mountpoint: w.mountpoint,
                pending: w.pending,
            }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        print_json(&mut out, &rows)?;
        return Ok(Outcome::Ok);
    }
    writeln!(
        out,
        "{:<20} {:<10} {:<14} {:>8} {:>8}  PROJECT",
        "WORKSPACE", "STATE", "IMAGE", "UPTIME", "PENDING"
    )?;
    for r in &rows {
        let image = r.image_id.as_deref().map(short_id).unwrap_or("-");
        writeln!(
            out,
            "{:<20} {:<10} {:<14} {:>8} {:>8}  {}{}",
            r.workspace,
            r.state.as_deref().unwrap_or("-"),
            image,
            r.uptime_secs.map(uptime).unwrap_or_else(|| "-".into()),
            r.pending,
            r.project.display(),
            match &r.image_tag_now {
                Some(now) => format!("  (image tag now points to {})", short_id(now)),
                None => String::new(),
            }
        )?;
    }
    // What mountd's start could not recover, remount or give back to running containers.
    for p in client.daemon().await?.problems {
        eprintln!("wsfs: warning: {p}");
    }
    Ok(Outcome::Ok)
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// `wsfs down`.
pub async fn down(
    client: &Client,
    name: Option<&str>,
    commit: bool,
    discard: bool,
) -> anyhow::Result<Outcome> {
    let ws = pick(client, name).await?;
    if commit {
        let report = client
            .commit(&ws.name, &CommitRequest::default(), |_, _| {})
            .await?;
        render::commit(&mut std::io::stdout(), &report)?;
        if !report.conflicts.is_empty() {
            eprintln!(
                "wsfs: commit refused; the container of {} is left running (resolve, then `wsfs down` again)",
                ws.name
            );
            return Ok(Outcome::Refused);
        }
    }
    let ctl = Controller::connect().await?;
    let report = ctl.down(&ws.name).await?;
    client.unmount(&ws.name).await?;
    if discard {
        let dropped = client.discard(&ws.name, &PathsRequest::default()).await?;
        eprintln!("discarded {} change(s)", dropped.discarded.len());
    }
    eprintln!(
        "{}: container {}; workspace unmounted{}",
        ws.name,
        match (report.found, report.removed, report.stopped) {
            (false, _, _) => "none",
            (true, true, _) => "stopped and removed",
            (true, false, true) => "stopped (persistent: kept)",
            (true, false, false) => "already stopped",
        },
        if discard {
            ""
        } else {
            "; changes kept (`wsfs up` resumes)"
        }
    );
    Ok(Outcome::Ok)
}

/// `wsfs logs`.
pub async fn logs(client: &Client, name: Option<&str>, follow: bool) -> anyhow::Result<Outcome> {
    let ws = pick(client, name).await?;
    let ctl = Controller::connect().await?;
    let mut sink = |stream: LogStream, data: &[u8]| {
        let _ = match stream {
            LogStream::Stdout => std::io::stdout().write_all(data),
            LogStream::Stderr => std::io::stderr().write_all(data),
        };
    };
    ctl.logs(&ws.name, follow, &mut sink).await?;
    Ok(Outcome::Ok)
}

/// `wsfs run [PROJECT_DIR] [--] CMD...`.
pub async fn run(client: &Client, args: Vec<OsString>) -> anyhow::Result<Outcome> {
    let mut args: Vec<OsString> = args;
    let (project, command) = match args.iter().position(|a| a == "--") {
        Some(0) => (None, args.split_off(1)),
        Some(1) => {
            let cmd = args.split_off(2);
            (Some(PathBuf::from(&args[0])), cmd)
        }
        _ if args.len() > 1 && Path::new(&args[0]).is_dir() => {
            let cmd = args.split_off(1);
            (Some(PathBuf::from(&args[0])), cmd)
        }
        _ => (None, args),
    };
    anyhow::ensure!(
        !command.is_empty(),
        "wsfs run: no command given; usage: wsfs run [PROJECT_DIR] [--] CMD..."
    );
    let project = match project {
        Some(p) => p,
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let info = mount(client, &project, None, None).await?;
    let mountpoint = info
        .mountpoint
        .clone()
        .context("mountd did not report a mountpoint")?;
    let words: Vec<String> = command
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    let plan = RunPlan::new(&info.project, &mountpoint, command);
    let code = tokio::task::spawn_blocking(move || wsfs::controller::run_in_namespace(&plan))
        .await
        .context("wsfs run")??;
    auto_checkpoint(client, &info.name, "run", &words).await;
    Ok(Outcome::Exit(i64::from(code)))
}

/// `wsfs trust [PROJECT_DIR]`: records the project file's current content as trusted.
pub fn trust(project: Option<&Path>) -> anyhow::Result<Outcome> {
    use wsfs::config::{read_project_file, trust, user_config_path, PROJECT_FILE};
    let project = match project {
        Some(p) => p.to_path_buf(),
        None => std::env::current_dir()?,
    };
    let Some(text) = read_project_file(&project)? else {
        anyhow::bail!(
            "{}: no such file; there is nothing to trust",
            project.join(PROJECT_FILE).display()
        );
    };
    let table: toml::Table = toml::from_str(&text)?;
    let store = trust::store_path(&user_config_path());
    trust::trust(&store, &project, &text)?;
    let raising = trust::raising_settings(&table);
    let file = project.join(PROJECT_FILE);
    if raising.is_empty() {
        println!(
            "trusted {} (it asks for nothing that needs trust)",
            file.display()
        );
    } else {
        println!("trusted {}: {}", file.display(), raising.join(", "));
    }
    Ok(Outcome::Ok)
}
