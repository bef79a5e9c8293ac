//! `wsfs commit --merge`: a 3-way merge (base, host, workspace) of each text file the host
//! changed since the workspace based its change on it.
//!
//! [`merge3`] is the merge itself, on bytes (`diffy`, line based, no conflict markers ever
//! written). [`prepare`] finds the conflicts a merge can resolve: the base's bytes are needed,
//! and wsfs keeps only their hash, so they are looked up in the project's git repository
//! (HEAD's or the index's blob at that path, accepted only when its blake3 is the base's);
//! a file whose base cannot be found, a binary file, or hunks that overlap stay conflicts,
//! saying why. A clean merge is written into the workspace's file first (the workspace shows
//! what the host gets, as `git merge` updates the work tree), and the commit then applies
//! that file like any other change, with the same crash safety, checking that the host still
//! holds exactly the content the merge was made against.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::Path;

use crate::api::{CommitRequest, Conflict};
use crate::error::{IoContext, Result};
use crate::gitexport::git::Git;
use crate::hash::ContentHash;
use crate::journal::record::EntryState;
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::sys;

/// What [`merge3`] made of three versions of a file.
#[derive(Debug, PartialEq, Eq)]
pub enum Merged {
    /// The changes do not overlap: the merged content.
    Clean(Vec<u8>),
    /// Both sides changed the same lines (or adjacent ones).
    Overlap,
    /// One version holds a NUL byte: not text, not merged.
    Binary,
}

/// Merges `ours` (the workspace's change) and `host` (the host's), both made from `base`.
pub fn merge3(base: &[u8], host: &[u8], ours: &[u8]) -> Merged {
    if [base, host, ours].iter().any(|b| b.contains(&0)) {
        return Merged::Binary;
    }
    match diffy::merge_bytes(base, ours, host) {
        Ok(m) => Merged::Clean(m),
        Err(_) => Merged::Overlap,
    }
}

/// The outcome of [`prepare`].
#[derive(Default)]
pub(crate) struct Prepared {
    /// Paths whose merge was written into the workspace, with the host content hash it was
    /// made against: the commit applies them while the host still holds that content.
    pub merged: HashMap<RelPath, ContentHash>,
    /// Conflicts a merge was tried on and could not resolve: (reason, hint) to report.
    pub unresolved: HashMap<RelPath, (String, String)>,
}

/// Merges every `host_changed` conflict among `conflicts` that can be merged (see the module
/// doc), writing each clean merge into the workspace (not in a dry run).
pub(crate) fn prepare(
    ov: &Overlay,
    project: &Path,
    req: &CommitRequest,
    conflicts: &[Conflict],
) -> Result<Prepared> {
    let mut out = Prepared::default();
    let mut git = None;
    for c in conflicts.iter().filter(|c| c.reason == "host_changed") {
        let mut refuse = |reason: &str, hint: String| {
            out.unresolved
                .insert(c.path.clone(), (reason.to_string(), hint));
        };
        let (Some(base), Some(host), Some(_)) = (c.base_hash, c.host_hash, c.overlay_hash) else {
            refuse(
                "host_changed",
                format!(
                    "{} changed on the host; --merge merges regular files only (here: base {}, host {}, workspace {}). Compare with `wsfs diff`, then commit with --force (the host version is backed up) or discard",
                    c.path,
                    c.base.kind_word(),
                    c.host.kind_word(),
                    c.overlay.kind_word()
                ),
            );
            continue;
        };
        let git = git.get_or_insert_with(|| Git::new(project).ok());
        let Some(base_bytes) = git.as_ref().and_then(|g| base_from_git(g, &c.path, &base)) else {
            refuse("no_base", format!(
                "{} changed on the host; --merge needs the content the workspace started from, which wsfs keeps only as a hash, and the project's git repository has no matching version of it (neither HEAD's nor the index's). Compare with `wsfs diff`, then commit with --force (the host version is backed up) or discard", c.path));
            continue;
        };
        let host_bytes = read_at(ov.lower_root().as_fd(), &c.path)?;
        let ours_bytes = read_at(ov.upper_root().as_fd(), &c.path)?;
        if ContentHash::of(&host_bytes) != host
            || Some(ContentHash::of(&ours_bytes)) != c.overlay_hash
        {
            refuse(
                "busy",
                format!(
                    "{} changed while it was being merged; run the commit again",
                    c.path
                ),
            );
            continue;
        }
        match merge3(&base_bytes, &host_bytes, &ours_bytes) {
            Merged::Clean(m) => {
                // A dry run only says it would merge.
                if req.dry_run || ov.replace_merged(&c.path, &m, &c.overlay)? {
                    out.merged.insert(c.path.clone(), host);
                } else {
                    refuse("busy", format!(
                        "{} is open for writing in the workspace or changed while it was being merged; run the commit again once it is closed", c.path));
                }
            }
            Merged::Overlap => refuse("merge_conflict", format!(
                "{} changed on the host and in the workspace at the same lines; merge by hand (`wsfs diff` shows the workspace's side), or commit with --force (the host version is backed up) or discard", c.path)),
            Merged::Binary => refuse("host_changed", format!(
                "{} changed on the host and is not text, so it cannot be merged; compare the versions, then commit with --force (the host version is backed up) or discard", c.path)),
        }
    }
    Ok(out)
}

/// The base's bytes from the project's git repository: HEAD's blob at `path`, else the
/// index's, when its blake3 is `base` (a filter, such as line-ending conversion, makes the
/// blob differ from the file: then none matches).
fn base_from_git(git: &Git, path: &RelPath, base: &ContentHash) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    for rev in ["HEAD:./", ":0:./"] {
        let spec =
            std::ffi::OsStr::from_bytes(&[rev.as_bytes(), path.as_bytes()].concat()).to_os_string();
        let args = [std::ffi::OsString::from("cat-file"), "blob".into(), spec];
        match git.try_run(&args, None) {
            Ok(r) if r.ok && ContentHash::of(&r.stdout) == *base => return Some(r.stdout),
            _ => {}
        }
    }
    None
}

/// The regular file at `path` below `root`, walked with `O_NOFOLLOW`.
pub(super) fn read_at(root: std::os::fd::BorrowedFd<'_>, path: &RelPath) -> Result<Vec<u8>> {
    use std::io::Read;
    let (parent, name) = path
        .split_last()
        .ok_or_else(|| crate::error::Error::not_found(path))?;
    let dir = sys::walk_dirs(root, &parent).ctx("open", path)?;
    let fd = sys::openat(dir.as_fd(), name, libc::O_RDONLY, 0).ctx("open", path)?;
    let mut data = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut data)
        .ctx("read", path)?;
    Ok(data)
}

/// True when `state` is the host content a merge of `path` was made against.
pub(crate) fn merged_against(
    merged: Option<&HashMap<RelPath, ContentHash>>,
    path: &RelPath,
    state: &EntryState,
) -> bool {
    let Some(want) = merged.and_then(|m| m.get(path)) else {
        return false;
    };
    matches!(state, EntryState::File { hash: Some(h), .. } if h == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apart_merge_and_the_same_lines_do_not() {
        let base = b"one\ntwo\nthree\nfour\nfive\n";
        let host = b"ONE\ntwo\nthree\nfour\nfive\n";
        let ours = b"one\ntwo\nthree\nfour\nFIVE\n";
        assert_eq!(
            merge3(base, host, ours),
            Merged::Clean(b"ONE\ntwo\nthree\nfour\nFIVE\n".to_vec())
        );
        let ours_same_line = b"1\ntwo\nthree\nfour\nfive\n";
        assert_eq!(merge3(base, host, ours_same_line), Merged::Overlap);
        // Both made the same change: taken once.
        assert_eq!(merge3(base, host, host), Merged::Clean(host.to_vec()));
        assert_eq!(merge3(b"a\0", b"b\0", b"c\0"), Merged::Binary);
        // Non-UTF-8 text merges byte for byte.
        let base = b"caf\xe9\nx\ny\nz\n";
        let host = b"caf\xe9\nx\ny\nZ\n";
        let ours = b"CAF\xe9\nx\ny\nz\n";
        assert_eq!(
            merge3(base, host, ours),
            Merged::Clean(b"CAF\xe9\nx\ny\nZ\n".to_vec())
        );
    }
}
