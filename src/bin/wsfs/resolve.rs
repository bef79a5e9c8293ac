//! Which workspace and which paths a command means: names inferred from the current
//! directory, path arguments turned into workspace-relative byte paths.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use wsfs::api::WorkspaceInfo;
use wsfs::relpath::RelPath;

/// The workspace whose project directory or mountpoint contains `dir` (the deepest one).
fn containing<'a>(list: &'a [WorkspaceInfo], dir: &Path) -> Option<(&'a WorkspaceInfo, PathBuf)> {
    candidates(list, dir).map(|(all, root)| (all[0], root))
}

/// Every workspace whose project directory or mountpoint is the deepest root containing
/// `dir`, with that root. A mountpoint belongs to one workspace; a project directory may be
/// the project of several, and then the current directory does not say which is meant.
fn candidates<'a>(
    list: &'a [WorkspaceInfo],
    dir: &Path,
) -> Option<(Vec<&'a WorkspaceInfo>, PathBuf)> {
    let mut best: Option<(Vec<&WorkspaceInfo>, PathBuf)> = None;
    for ws in list {
        let roots = std::iter::once(&ws.project).chain(ws.mountpoint.as_ref());
        for root in roots {
            if root.as_os_str().is_empty() || !dir.starts_with(root) {
                continue;
            }
            match &mut best {
                Some((all, r)) if r == root => {
                    if !all.iter().any(|w| w.name == ws.name) {
                        all.push(ws);
                    }
                }
                Some((_, r)) if r.as_os_str().len() >= root.as_os_str().len() => {}
                _ => best = Some((vec![ws], root.clone())),
            }
        }
    }
    best
}

/// A command line that does not say which workspace it means: exit 2, like other usage
/// errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The error for a directory that is the project of several workspaces.
fn ambiguous(dir: &Path, root: &Path, all: &[&WorkspaceInfo]) -> UsageError {
    let names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
    let here = if dir == root {
        format!("{} is the project", dir.display())
    } else {
        format!(
            "{} is inside {}, the project",
            dir.display(),
            root.display()
        )
    };
    UsageError(format!(
        "which workspace? {here} of {} workspaces: {}; choose one with `-w NAME` \
         (e.g. `-w {}`), or run the command inside that workspace's mountpoint",
        names.len(),
        names.join(", "),
        names[0]
    ))
}

fn cwd() -> anyhow::Result<PathBuf> {
    std::env::current_dir().context("reading the current directory")
}

/// The workspace named `name`, or the one the current directory is in.
pub fn workspace(list: &[WorkspaceInfo], name: Option<&str>) -> anyhow::Result<WorkspaceInfo> {
    if let Some(name) = name {
        return list
            .iter()
            .find(|w| w.name == name)
            .cloned()
            .with_context(|| format!("no workspace named {name:?}; see `wsfs list`"));
    }
    let dir = cwd()?;
    match candidates(list, &dir) {
        Some((all, root)) if all.len() > 1 => Err(ambiguous(&dir, &root, &all).into()),
        Some((all, _)) => Ok(all[0].clone()),
        None => bail!(
            "{} is not inside a workspace's project or mountpoint; pass a workspace name (see `wsfs list`)",
            dir.display()
        ),
    }
}

/// Splits `[NAME] [PATH...]`: the first argument is the name when a workspace has that name.
pub fn split_target(
    list: &[WorkspaceInfo],
    flag: Option<&str>,
    args: &[OsString],
) -> anyhow::Result<(WorkspaceInfo, Vec<OsString>)> {
    if let Some(name) = flag {
        return Ok((workspace(list, Some(name))?, args.to_vec()));
    }
    if let Some(first) = args.first().and_then(|a| a.to_str()) {
        if list.iter().any(|w| w.name == first) {
            return Ok((workspace(list, Some(first))?, args[1..].to_vec()));
        }
    }
    Ok((workspace(list, None)?, args.to_vec()))
}

/// Turns path arguments into workspace-relative paths: absolute ones must lie in the project
/// or the mountpoint; relative ones are taken from the current directory when it is inside
/// the workspace, else from the project root. An argument naming the workspace root (`.` at
/// the project root) selects everything: the result is then empty, which is how the API is
/// asked for every path (it refuses a path naming the root).
pub fn paths(ws: &WorkspaceInfo, args: &[OsString]) -> anyhow::Result<Vec<RelPath>> {
    let paths = relative_paths(ws, args)?;
    Ok(everything_if_root(paths))
}

/// `paths`, or nothing (everything) when one of them is the root.
fn everything_if_root(paths: Vec<RelPath>) -> Vec<RelPath> {
    if paths.iter().any(RelPath::is_root) {
        Vec::new()
    } else {
        paths
    }
}

fn relative_paths(ws: &WorkspaceInfo, args: &[OsString]) -> anyhow::Result<Vec<RelPath>> {
    let dir = cwd()?;
    let here = containing(std::slice::from_ref(ws), &dir)
        .map(|(_, root)| dir.strip_prefix(&root).map(Path::to_owned))
        .transpose()?;
    args.iter()
        .map(|arg| {
            let arg = Path::new(arg);
            let rel = if arg.is_absolute() {
                let roots = std::iter::once(&ws.project).chain(ws.mountpoint.as_ref());
                roots
                    .filter_map(|r| arg.strip_prefix(r).ok())
                    .next()
                    .map(Path::to_owned)
                    .with_context(|| {
                        format!(
                            "{} is outside workspace {:?} (project {})",
                            arg.display(),
                            ws.name,
                            ws.project.display()
                        )
                    })?
            } else {
                here.clone().unwrap_or_default().join(arg)
            };
            normalize(&rel).with_context(|| format!("path {}", arg.display()))
        })
        .collect()
}

/// Lexical normalisation inside the workspace root: `.` dropped, `..` pops, never above root.
fn normalize(p: &Path) -> anyhow::Result<RelPath> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n.as_bytes()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    bail!("leads above the workspace root");
                }
            }
            Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(RelPath::new(parts.join(&b'/'))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, project: &str, mp: Option<&str>) -> WorkspaceInfo {
        WorkspaceInfo {
            name: name.into(),
            project: project.into(),
            mountpoint: mp.map(Into::into),
            ..WorkspaceInfo::default()
        }
    }

    #[test]
    fn deepest_root_wins() {
        let list = [
            info("outer", "/p", None),
            info("inner", "/p/sub", Some("/m/inner")),
        ];
        assert_eq!(
            containing(&list, Path::new("/p/sub/x")).unwrap().0.name,
            "inner"
        );
        assert_eq!(
            containing(&list, Path::new("/p/other")).unwrap().0.name,
            "outer"
        );
        assert_eq!(
            containing(&list, Path::new("/m/inner/a")).unwrap().0.name,
            "inner"
        );
        assert!(containing(&list, Path::new("/elsewhere")).is_none());
        assert!(containing(&list, Path::new("/pp")).is_none());
    }

    #[test]
    fn a_shared_project_is_ambiguous_but_a_mountpoint_is_not() {
        let list = [
            info("one", "/p", Some("/m/one")),
            info("two", "/p", Some("/m/two")),
            info("sub", "/p/sub", None),
        ];
        let names = |dir: &str| {
            let (all, _) = candidates(&list, Path::new(dir)).unwrap();
            all.iter().map(|w| w.name.clone()).collect::<Vec<_>>()
        };
        assert_eq!(names("/p"), ["one", "two"]);
        assert_eq!(names("/p/src"), ["one", "two"]);
        assert_eq!(names("/m/two/src"), ["two"]);
        assert_eq!(names("/p/sub/x"), ["sub"]);
        let (all, root) = candidates(&list, Path::new("/p/src")).unwrap();
        let msg = ambiguous(Path::new("/p/src"), &root, &all).to_string();
        assert!(msg.contains("one, two") && msg.contains("-w NAME"), "{msg}");
    }

    #[test]
    fn the_root_selects_everything() {
        let rp = |s: &str| RelPath::new(s).unwrap();
        assert_eq!(
            everything_if_root(vec![rp("a"), rp("b")]),
            vec![rp("a"), rp("b")]
        );
        assert!(everything_if_root(vec![rp("a"), RelPath::root()]).is_empty());
        assert!(everything_if_root(Vec::new()).is_empty());
    }

    #[test]
    fn normalize_stays_inside() {
        assert_eq!(
            normalize(Path::new("a/./b/../c")).unwrap().as_bytes(),
            b"a/c"
        );
        assert!(normalize(Path::new("../x")).is_err());
    }
}
