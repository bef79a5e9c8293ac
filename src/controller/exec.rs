//! `exec` and `shell`: a command in the workspace's container, as the code user, in the
//! workspace directory, with streams attached.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{docker_err, Controller, LABEL_SHELL, LABEL_USER, LABEL_WORKDIR};
use crate::{Error, Result};

/// Where a command's streams go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Io {
    /// The caller's stdin/stdout/stderr; a TTY (raw mode, window size forwarded) when stdin is a
    /// terminal. Stdin is read by a detached thread, so the process can exit while it blocks.
    #[default]
    Terminal,
    /// Collect stdout and stderr into [`ExecOutcome`]; feed `stdin` (then EOF) when not empty.
    Capture {
        /// Bytes given to the command's stdin.
        stdin: Vec<u8>,
    },
}

/// A command to run in a workspace's container.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    /// Command and arguments.
    pub cmd: Vec<String>,
    /// Working directory in the container; default the workspace directory.
    pub workdir: Option<String>,
    /// Extra `NAME=value` environment.
    pub env: Vec<String>,
    /// `user[:group]` to run as; default the code user.
    pub user: Option<String>,
    /// Streams.
    pub io: Io,
    /// Force a TTY on or off; default: on when `io` is [`Io::Terminal`] and stdin is a terminal.
    pub tty: Option<bool>,
}

/// How a command ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutcome {
    /// Exit code (128 + signal when killed, as the shell reports it).
    pub exit_code: i64,
    /// Captured stdout (empty with [`Io::Terminal`]); with a TTY, all output lands here.
    pub stdout: Vec<u8>,
    /// Captured stderr (empty with [`Io::Terminal`]).
    pub stderr: Vec<u8>,
}

impl Controller {
    /// Runs `cmd` in the workspace's container as the code user in the workspace directory.
    pub async fn exec(&self, workspace: &str, cmd: &[String], io: Io) -> Result<ExecOutcome> {
        let req = ExecRequest {
            cmd: cmd.to_vec(),
            io,
            ..Default::default()
        };
        self.exec_with(workspace, &req).await
    }

    /// An interactive login shell (the code user's shell from the image, else `/bin/sh`) with a
    /// TTY when stdin is a terminal. Returns the shell's exit code.
    pub async fn shell(&self, workspace: &str) -> Result<i64> {
        let c = self.running_container(workspace).await?;
        let shell = c
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(LABEL_SHELL))
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| "/bin/sh".into());
        let req = ExecRequest {
            cmd: vec![shell, "-l".into()],
            ..Default::default()
        };
        Ok(self.exec_with(workspace, &req).await?.exit_code)
    }

    /// Runs a command described by `req` in the workspace's (running) container.
    pub async fn exec_with(&self, workspace: &str, req: &ExecRequest) -> Result<ExecOutcome> {
        if req.cmd.is_empty() {
            return Err(Error::Container("exec: no command given".into()));
        }
        let c = self.running_container(workspace).await?;
        let id = c.id.clone().unwrap_or_default();
        let labels = c.config.and_then(|c| c.labels).unwrap_or_default();
        let user = req.user.clone().or_else(|| labels.get(LABEL_USER).cloned());
        let workdir = req
            .workdir
            .clone()
            .or_else(|| labels.get(LABEL_WORKDIR).cloned());
        self.exec_in(&id, &req.cmd, user, workdir, &req.env, &req.io, req.tty)
            .await
    }

    /// Runs `cmd` in container `id` (which must be running).
    #[allow(
        clippy::too_many_arguments,
        reason = "the fields of one exec request (Docker's ExecConfig), passed as the callers hold them"
    )]
    pub(super) async fn exec_in(
        &self,
        id: &str,
        cmd: &[String],
        user: Option<String>,
        workdir: Option<String>,
        env: &[String],
        io: &Io,
        tty: Option<bool>,
    ) -> Result<ExecOutcome> {
        let terminal = matches!(io, Io::Terminal);
        let tty = tty.unwrap_or(terminal && std::io::stdin().is_terminal());
        let feed_stdin = match io {
            Io::Terminal => true,
            Io::Capture { stdin } => !stdin.is_empty(),
        };
        let what = format_args!("exec {:?}", cmd.first().map_or("", |s| s.as_str())).to_string();
        let opts = CreateExecOptions {
            cmd: Some(cmd.to_vec()),
            attach_stdin: Some(feed_stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(tty),
            env: (!env.is_empty()).then(|| env.to_vec()),
            user,
            working_dir: workdir,
            ..Default::default()
        };
        let created = self
            .docker
            .create_exec(id, opts)
            .await
            .map_err(|e| docker_err(&what, e))?;
        let start = StartExecOptions {
            detach: false,
            tty,
            output_capacity: None,
        };
        let started = self
            .docker
            .start_exec(&created.id, Some(start))
            .await
            .map_err(|e| docker_err(&what, e))?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            return Err(Error::Container(format!("{what}: not attached")));
        };

        let _raw = if terminal && tty {
            self.forward_window_size(&created.id).await;
            super::ns_sys::RawMode::enable(std::io::stdin().as_fd()).ok()
        } else {
            None
        };
        let feeder = match io {
            Io::Capture { stdin } if feed_stdin => {
                let data = stdin.clone();
                Some(tokio::spawn(async move {
                    let _ = input.write_all(&data).await;
                    let _ = input.shutdown().await;
                }))
            }
            Io::Terminal => Some(tokio::spawn(async move {
                let mut rx = stdin_reader();
                while let Some(chunk) = rx.recv().await {
                    if input.write_all(&chunk).await.is_err() {
                        return;
                    }
                    let _ = input.flush().await;
                }
                let _ = input.shutdown().await;
            })),
            Io::Capture { .. } => None,
        };
        let resizer = (terminal && tty).then(|| {
            let ctl = self.clone();
            let exec_id = created.id.clone();
            tokio::spawn(async move { ctl.resize_loop(&exec_id).await })
        });

        let mut out = ExecOutcome::default();
        while let Some(item) = output.next().await {
            let item = item.map_err(|e| docker_err(&what, e))?;
            match (item, terminal) {
                (LogOutput::StdOut { message } | LogOutput::Console { message }, false) => {
                    out.stdout.extend_from_slice(&message)
                }
                (LogOutput::StdErr { message }, false) => out.stderr.extend_from_slice(&message),
                (LogOutput::StdOut { message } | LogOutput::Console { message }, true) => {
                    let mut o = std::io::stdout().lock();
                    let _ = o.write_all(&message).and_then(|_| o.flush());
                }
                (LogOutput::StdErr { message }, true) => {
                    let mut e = std::io::stderr().lock();
                    let _ = e.write_all(&message).and_then(|_| e.flush());
                }
                (LogOutput::StdIn { .. }, _) => {}
            }
        }
        if let Some(f) = feeder {
            f.abort();
        }
        if let Some(r) = resizer {
            r.abort();
        }
        out.exit_code = self.exec_exit_code(&created.id).await?;
        Ok(out)
    }

    /// Waits (briefly) for Docker to mark the exec finished and returns its exit code.
    async fn exec_exit_code(&self, exec_id: &str) -> Result<i64> {
        for _ in 0..100 {
            let info = self
                .docker
                .inspect_exec(exec_id)
                .await
                .map_err(|e| docker_err("inspecting exec", e))?;
            if info.running != Some(true) {
                return Ok(info.exit_code.unwrap_or(-1));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(Error::Container(
            "exec output ended but the process still runs".into(),
        ))
    }

    async fn forward_window_size(&self, exec_id: &str) {
        if let Some((rows, cols)) = super::ns_sys::window_size(std::io::stdout().as_fd()) {
            let opts = ResizeExecOptions {
                height: rows,
                width: cols,
            };
            if let Err(e) = self.docker.resize_exec(exec_id, opts).await {
                tracing::debug!("resizing the exec TTY: {e}");
            }
        }
    }

    /// Forwards SIGWINCH as TTY resizes until aborted.
    async fn resize_loop(&self, exec_id: &str) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            self.forward_window_size(exec_id).await;
        }
    }
}

/// Reads the process's stdin on a detached thread (so a blocked read never holds up exit).
fn stdin_reader() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let spawned = std::thread::Builder::new()
        .name("wsfs-stdin".into())
        .spawn(move || {
            use std::io::Read;
            let mut stdin = std::io::stdin();
            let mut buf = vec![0u8; 8192];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot read stdin: {e}");
    }
    rx
}
