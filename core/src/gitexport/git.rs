//! Running git plumbing on the host repository: as the project directory's owner (so objects
//! and refs it writes belong to the repository's user, and git's ownership check passes),
//! with a clean environment (that user's `HOME`, `PATH`, `LC_ALL=C`; nothing of mountd's
//! `GIT_*`), no fsmonitor, literal pathspecs, and content fed by stdin only.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// A git command runner bound to one work tree.
pub(crate) struct Git {
    work: PathBuf,
    /// `(uid, gid)` to run as, when mountd runs as root for another user's project.
    user: Option<(u32, u32)>,
    home: Option<PathBuf>,
    index: Option<PathBuf>,
}

/// What one git command printed, and whether it succeeded.
pub(crate) struct Ran {
    pub ok: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Ran {
    /// Stdout as one trimmed line.
    pub fn line(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_string()
    }
}

impl Git {
    /// A runner for the work tree `project`, as the owner of that directory.
    pub fn new(project: &Path) -> Result<Git> {
        let meta = std::fs::metadata(project)
            .map_err(|e| Error::GitFailed(format!("{}: {e}", project.display())))?;
        let me = crate::sys::geteuid();
        let user = (me == 0 && meta.uid() != 0).then_some((meta.uid(), meta.gid()));
        Ok(Git {
            work: project.to_path_buf(),
            home: crate::sys::home_of(user.map_or(me, |u| u.0)),
            user,
            index: None,
        })
    }

    /// Later commands use the index file `index` (`GIT_INDEX_FILE`) instead of the repository's.
    pub fn with_index(&mut self, index: PathBuf) {
        self.index = Some(index);
    }

    /// Runs `git ARGS` with `input` on stdin; a failure to start git is an error, a non-zero
    /// exit is reported in [`Ran::ok`].
    pub fn try_run<S: AsRef<OsStr>>(&self, args: &[S], input: Option<&[u8]>) -> Result<Ran> {
        let mut cmd = Command::new("git");
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
            )
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .current_dir(&self.work)
            .args(["-c", "core.fsmonitor=false", "--literal-pathspecs"])
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(home) = &self.home {
            cmd.env("HOME", home);
        }
        if let Some(index) = &self.index {
            cmd.env("GIT_INDEX_FILE", index);
        }
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        let what = || {
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut child = cmd.spawn().map_err(|e| {
            Error::GitFailed(format!(
                "cannot run git {} in {}: {e} (is git installed?)",
                what(),
                self.work.display()
            ))
        })?;
        let writer = match (input, child.stdin.take()) {
            (Some(data), Some(mut stdin)) => {
                let data = data.to_vec();
                // A writer thread, so a large input cannot deadlock against git's output.
                Some(std::thread::spawn(move || stdin.write_all(&data)))
            }
            _ => None,
        };
        let out = child
            .wait_with_output()
            .map_err(|e| Error::GitFailed(format!("git {}: {e}", what())))?;
        if let Some(w) = writer {
            // A write error (git exited early) shows in git's own status and stderr.
            let _ = w.join();
        }
        Ok(Ran {
            ok: out.status.success(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// Runs `git ARGS`; a non-zero exit is [`Error::GitFailed`] with git's stderr.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S], input: Option<&[u8]>) -> Result<Ran> {
        let ran = self.try_run(args, input)?;
        if !ran.ok {
            let what: Vec<_> = args
                .iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect();
            return Err(Error::GitFailed(format!(
                "git {} failed in {}: {}",
                what.join(" "),
                self.work.display(),
                ran.stderr
            )));
        }
        Ok(ran)
    }
}
