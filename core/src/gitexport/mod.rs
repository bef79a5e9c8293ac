//! `wsfs export --branch`: the pending changes as one git commit on a branch of the host
//! repository, parented on HEAD, written with plumbing only (the blobs by one `fast-import`
//! from stdin, a temporary index via `GIT_INDEX_FILE`, `read-tree`, `update-index --index-info`,
//! `write-tree`, `commit-tree`, `update-ref` with the expected old value). The host's work
//! tree, index, HEAD and current branch are never touched; blob content comes from the
//! workspace's view by stdin, never read by git from a path.
//!
//! Refused (nothing written but unreferenced objects) when the project is not a git work tree,
//! the repository is not sha1, the branch name is invalid, the branch is checked out, the
//! branch exists without `force`, or the host's files differ from HEAD at a path the export
//! changes (the branch would silently carry those uncommitted host edits too).

pub(crate) mod git;

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use git::Git;

use crate::api::{ExportReport, ExportRequest};
use crate::error::{Error, Result};
use crate::gitpatch::{GitFile, GitSide, NULL_ID};

/// Writes `files` as one commit on `req.branch` of the repository holding `project`.
pub(crate) fn export(
    project: &Path,
    workspace: &str,
    files: &[GitFile],
    req: &ExportRequest,
) -> Result<ExportReport> {
    let refuse = |m: String| Err(Error::GitRefused(m));
    if files.is_empty() {
        return refuse(format!(
            "workspace {workspace}: nothing to export (no pending change git can hold at the \
             selected paths); see `wsfs status`"
        ));
    }
    let mut git = Git::new(project)?;
    let top = git.try_run(&["rev-parse", "--show-prefix"], None)?;
    if !top.ok {
        return refuse(format!(
            "{}: not a git repository ({}); `wsfs export --branch` writes a commit into the \
             project's repository. Use `wsfs diff --git > changes.patch` for a patch instead",
            project.display(),
            top.stderr
        ));
    }
    let prefix = top
        .stdout
        .strip_suffix(b"\n")
        .unwrap_or(&top.stdout)
        .to_vec();
    let format = git
        .run(&["rev-parse", "--show-object-format"], None)?
        .line();
    if format != "sha1" {
        return refuse(format!(
            "{}: the repository uses {format} object ids; export supports sha1 repositories only",
            project.display()
        ));
    }
    let branch = &req.branch;
    let refname = format!("refs/heads/{branch}");
    if branch.starts_with('-')
        || !git
            .try_run(&["check-ref-format", refname.as_str()], None)?
            .ok
    {
        return refuse(format!(
            "{branch:?} is not a valid branch name (see `git check-ref-format`)"
        ));
    }
    let current = git.try_run(&["symbolic-ref", "-q", "HEAD"], None)?;
    if current.ok && current.line() == refname {
        return refuse(format!(
            "branch {branch} is checked out in {}: export never moves the current branch \
             (that would change what the work tree's index and files mean). Choose another \
             name, and merge it from there",
            project.display()
        ));
    }
    let verify = |spec: &str| -> Result<Option<String>> {
        let r = git.try_run(&["rev-parse", "-q", "--verify", spec], None)?;
        Ok(r.ok.then(|| r.line()))
    };
    let replaced = verify(&format!("{refname}^{{commit}}"))?;
    if replaced.is_some() && !req.force {
        return refuse(format!(
            "branch {branch} exists (at {}); pass --force to replace it, or choose another name",
            replaced.as_deref().unwrap_or_default()
        ));
    }
    let parent = verify("HEAD^{commit}")?;

    let full = |p: &GitSide| -> Vec<u8> { [prefix.as_slice(), p.path.as_bytes()].concat() };
    let head = match &parent {
        Some(_) => head_entries(&git)?,
        None => HashMap::new(),
    };
    check_base(files, &head, &full)?;

    // Blobs (one `git fast-import` for all of them: raw bytes, no filters; `write-tree`
    // below checks every id it is given exists), then the tree on a temporary index.
    let mut info = Vec::new();
    let mut adds = Vec::new();
    let mut blobs = Vec::new();
    for f in files {
        if let Some(o) = &f.old {
            if f.new.as_ref().is_none_or(|n| n.path != o.path) {
                info.extend_from_slice(format!("0 {NULL_ID}\t").as_bytes());
                info.extend_from_slice(&full(o));
                info.push(0);
            }
        }
        if let Some(n) = &f.new {
            blobs.extend_from_slice(format!("blob\ndata {}\n", n.data.len()).as_bytes());
            blobs.extend_from_slice(&n.data);
            blobs.push(b'\n');
            adds.extend_from_slice(format!("{:o} {}\t", n.mode, n.id()).as_bytes());
            adds.extend_from_slice(&full(n));
            adds.push(0);
        }
    }
    if !blobs.is_empty() {
        git.run(&["fast-import", "--quiet"], Some(&blobs))?;
    }
    info.extend(adds);
    let git_dir = PathBuf::from(OsString::from_vec(
        git.run(&["rev-parse", "--absolute-git-dir"], None)?
            .line()
            .into_bytes(),
    ));
    let index = TempIndex(git_dir.join(format!(
        "wsfs-export-{}-{}.index",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )));
    git.with_index(index.0.clone());
    match &parent {
        Some(p) => git.run(&["read-tree", p.as_str()], None)?,
        None => git.run(&["read-tree", "--empty"], None)?,
    };
    git.run(&["update-index", "-z", "--index-info"], Some(&info))?;
    let tree = git.run(&["write-tree"], None)?.line();

    let mut message = req
        .message
        .clone()
        .unwrap_or_else(|| format!("Changes from wsfs workspace {workspace}"));
    if !message.ends_with('\n') {
        message.push('\n');
    }
    let mut args = vec!["commit-tree".to_string(), tree.clone()];
    if let Some(p) = &parent {
        args.extend(["-p".into(), p.clone()]);
    }
    args.extend(["--no-gpg-sign".into(), "-F".into(), "-".into()]);
    let made = git.try_run(&args, Some(message.as_bytes()))?;
    if !made.ok {
        return Err(if made.stderr.contains("tell me who you are") {
            Error::GitRefused(format!(
                "git needs an author for the commit: set it in the repository (git -C {} config \
                 user.name NAME; git config user.email EMAIL) or in the project owner's \
                 ~/.gitconfig, which export reads as that user ({})",
                project.display(),
                made.stderr
            ))
        } else {
            Error::GitFailed(format!("git commit-tree failed: {}", made.stderr))
        });
    }
    let commit = made.line();
    let old = replaced.clone().unwrap_or_else(|| NULL_ID.to_string());
    let reflog = format!("wsfs export: workspace {workspace}");
    git.run(
        &[
            "update-ref",
            "-m",
            reflog.as_str(),
            refname.as_str(),
            commit.as_str(),
            old.as_str(),
        ],
        None,
    )?;
    Ok(ExportReport {
        branch: branch.clone(),
        commit,
        parent,
        tree,
        replaced,
        paths: files.iter().map(|f| f.path().clone()).collect(),
        left_out: Vec::new(),
    })
}

/// `path → (mode, id)` of every blob and link in HEAD's tree (`git ls-tree -r -z`).
fn head_entries(git: &Git) -> Result<HashMap<Vec<u8>, (u32, String)>> {
    let out = git.run(&["ls-tree", "-r", "-z", "--full-tree", "HEAD"], None)?;
    let mut map = HashMap::new();
    for rec in out.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let Some(tab) = rec.iter().position(|&b| b == b'\t') else {
            continue;
        };
        let meta = String::from_utf8_lossy(&rec[..tab]);
        let mut it = meta.split(' ');
        let (Some(mode), Some(_kind), Some(id)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let mode = u32::from_str_radix(mode, 8).unwrap_or(0);
        map.insert(rec[tab + 1..].to_vec(), (mode, id.to_string()));
    }
    Ok(map)
}

/// Refuses when HEAD differs from the host's files (the old sides) at a path the export
/// changes, or has an entry where the export adds one.
fn check_base(
    files: &[GitFile],
    head: &HashMap<Vec<u8>, (u32, String)>,
    full: &dyn Fn(&GitSide) -> Vec<u8>,
) -> Result<()> {
    let describe = |e: Option<&(u32, String)>| match e {
        None => "nothing".to_string(),
        Some((mode, id)) => format!("{mode:o} {}", &id[..id.len().min(12)]),
    };
    let removed: std::collections::HashSet<Vec<u8>> = files
        .iter()
        .filter_map(|f| f.old.as_ref())
        .map(full)
        .collect();
    let mut drift = Vec::new();
    for f in files {
        if let Some(o) = &f.old {
            let at_head = head.get(&full(o));
            if at_head != Some(&(o.mode, o.id())) {
                drift.push(format!(
                    "  {}: HEAD has {}, the host's file is {:o} {}",
                    o.path,
                    describe(at_head),
                    o.mode,
                    &o.id()[..12]
                ));
            }
        }
        if let Some(n) = &f.new {
            let at_head = head.get(&full(n));
            if !removed.contains(&full(n)) && at_head.is_some() {
                drift.push(format!(
                    "  {}: HEAD has {}, the host has nothing there",
                    n.path,
                    describe(at_head)
                ));
            }
        }
    }
    if drift.is_empty() {
        return Ok(());
    }
    Err(Error::GitRefused(format!(
        "export refused: the host's files differ from HEAD at {} path(s) the export changes, so \
         the branch would also carry those uncommitted host edits:\n{}\nCommit or stash them in \
         the host repository first, or export the other paths only (wsfs export --branch NAME \
         PATH…)",
        drift.len(),
        drift.join("\n")
    )))
}

/// The temporary index file, removed (with a stale lock) when the export ends.
struct TempIndex(PathBuf);

impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let mut lock = self.0.clone().into_os_string();
        lock.push(".lock");
        let _ = std::fs::remove_file(PathBuf::from(lock));
    }
}
