//! `wsfs run` without Docker: run a command on the host in a private mount namespace where the
//! project's absolute path shows the workspace mountpoint.
//!
//! The child unshares its mount namespace, makes `/` recursively private, bind-mounts the
//! mountpoint over the project path, drops to the target user and executes the command. The
//! parent waits; the rest of the host never sees the bind mount. As root (the usual case, also
//! under sudo) the command runs as the requested uid/gid; as a non-root caller an unprivileged
//! user namespace maps the caller's own uid and gid, so the command still runs as the caller.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::ns_sys::{spawn_in_namespace, NsSetup};
use crate::config::HostUser;
use crate::{Error, Result};

/// What to run and where.
#[derive(Clone, Debug)]
pub struct RunPlan {
    /// Absolute host project directory (the path the command sees the workspace at).
    pub project: PathBuf,
    /// The workspace's mountpoint (what the project path shows).
    pub mountpoint: PathBuf,
    /// Command and arguments (looked up in `PATH`).
    pub command: Vec<OsString>,
    /// The caller's working directory: when it is inside `project` the command starts in the
    /// same subdirectory, else in `project`.
    pub cwd: Option<PathBuf>,
    /// Uid to run as.
    pub uid: u32,
    /// Gid to run as.
    pub gid: u32,
    /// Supplementary groups (used when running as root).
    pub groups: Vec<u32>,
}

impl RunPlan {
    /// A plan for the invoking user (`SUDO_UID`/`SUDO_GID` under sudo), with the current
    /// directory as `cwd` and the user's groups from `/etc/group`.
    pub fn new(project: &Path, mountpoint: &Path, command: Vec<OsString>) -> RunPlan {
        let user = HostUser::detect();
        RunPlan {
            project: project.to_path_buf(),
            mountpoint: mountpoint.to_path_buf(),
            command,
            cwd: std::env::current_dir().ok(),
            uid: user.uid,
            gid: user.gid,
            groups: host_groups(&user.name, user.gid),
        }
    }

    /// The directory the command starts in (an absolute path under `project`).
    pub(crate) fn start_dir(&self) -> PathBuf {
        match &self.cwd {
            Some(c) if c.starts_with(&self.project) => c.clone(),
            _ => self.project.clone(),
        }
    }
}

/// The user's supplementary groups from `/etc/group` (always including `gid`).
fn host_groups(name: &str, gid: u32) -> Vec<u32> {
    let mut out = vec![gid];
    let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
            if let Ok(g) = f[2].parse::<u32>() {
                if !out.contains(&g) {
                    out.push(g);
                }
            }
        }
    }
    out
}

fn cstring(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::Workspace(format!("{}: path contains a NUL byte", p.display())))
}

fn check_dir(what: &str, p: &Path) -> Result<()> {
    if !p.is_absolute() {
        return Err(Error::Workspace(format!(
            "{what} {} is not an absolute path",
            p.display()
        )));
    }
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::Workspace(format!(
            "{what} {} is not a directory",
            p.display()
        ))),
        Err(e) => Err(Error::Workspace(format!("{what} {}: {e}", p.display()))),
    }
}

/// Runs the plan and returns the command's exit code (128 + signal when it was killed).
pub fn run_in_namespace(plan: &RunPlan) -> Result<i32> {
    check_dir("project", &plan.project)?;
    check_dir("mountpoint", &plan.mountpoint)?;
    let Some((prog, args)) = plan.command.split_first() else {
        return Err(Error::Workspace("wsfs run: no command given".into()));
    };
    let root = crate::sys::geteuid() == 0;
    let user_ns = if root {
        None
    } else {
        let (euid, egid) = (crate::sys::geteuid(), crate::sys::getegid());
        if plan.uid != euid || plan.gid != egid {
            return Err(Error::Workspace(format!(
                "wsfs run: running as uid {}:{} needs root (you are {euid}:{egid}); use sudo",
                plan.uid, plan.gid
            )));
        }
        let map = |id: u32| {
            CString::new(format!("{id} {id} 1")).map_err(|e| Error::Workspace(e.to_string()))
        };
        Some((map(euid)?, map(egid)?))
    };
    let start = plan.start_dir();
    let setup = NsSetup {
        source: cstring(&plan.mountpoint)?,
        target: cstring(&plan.project)?,
        cwd: cstring(&start)?,
        uid: plan.uid,
        gid: plan.gid,
        groups: plan.groups.clone(),
        user_ns,
    };
    let mut cmd = Command::new(prog);
    cmd.args(args).env("PWD", &start);
    tracing::debug!(project = %plan.project.display(), mountpoint = %plan.mountpoint.display(),
        uid = plan.uid, gid = plan.gid, "wsfs run: spawning in a private mount namespace");
    let mut child = spawn_in_namespace(&mut cmd, setup).map_err(|e| {
        let hint = if e.raw_os_error() == Some(libc::EPERM) {
            " (mount namespaces need root, or unprivileged user namespaces enabled)"
        } else {
            ""
        };
        Error::Workspace(format!(
            "wsfs run: cannot start {:?} with {} shown at {}: {e}{hint}",
            prog,
            plan.mountpoint.display(),
            plan.project.display()
        ))
    })?;
    let status = child
        .wait()
        .map_err(|e| Error::Workspace(format!("wsfs run: waiting for {prog:?}: {e}")))?;
    Ok(exit_code(status))
}

/// Exit code of a finished process: its code, or 128 + the signal that killed it.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
