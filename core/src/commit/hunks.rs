//! Hunk selection (`wsfs commit -p`, [`CommitRequest::hunks`]): the hunks of a text file's
//! diff, each with an id and a hash, and the file with only the chosen hunks applied.
//!
//! The hunks are those of the unified diff `wsfs diff` shows (3 lines of context). A partial
//! file is committed as host content = the host's file with the chosen hunks applied, only
//! while the host still holds the workspace's base (otherwise it is a conflict like any
//! other); the workspace keeps its whole version, pending, rebased on what was committed, so
//! its diff then shows exactly the hunks left.
//!
//! Crash safety: the partial content is written like any commit's (temporary file, sync,
//! rename) from a private copy, but a partial file is not among the paths its `commit_begin`
//! lists, so a commit interrupted by a crash is never rolled forward with the workspace's
//! whole file. If the crash came between its rename and its record, the host has the partial
//! content and the next commit of that file reports it as changed on the host.

use std::collections::{HashMap, HashSet};
use std::io::{Seek, Write};
use std::ops::Range;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use crate::api::{ChangeKind, CommitRequest, Hunk};
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::journal::record::EntryState;
use crate::overlay::Overlay;
use crate::relpath::RelPath;

/// A hunk with the line ranges it covers on each side.
pub(crate) struct Span {
    pub hunk: Hunk,
    old: Range<usize>,
    new: Range<usize>,
}

/// The hunks of the diff from `old` to `new` (text).
pub(crate) fn hunks(old: &str, new: &str) -> Vec<Span> {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut unified = diff.unified_diff();
    unified.context_radius(3);
    unified
        .iter_hunks()
        .enumerate()
        .map(|(i, h)| {
            let ops = h.ops();
            let (first, last) = (ops.first(), ops.last());
            let old =
                first.map_or(0, |o| o.old_range().start)..last.map_or(0, |o| o.old_range().end);
            let new =
                first.map_or(0, |o| o.new_range().start)..last.map_or(0, |o| o.new_range().end);
            let text = h.to_string();
            Span {
                hunk: Hunk {
                    id: i as u32,
                    hash: ContentHash::of(text.as_bytes()),
                    text,
                },
                old,
                new,
            }
        })
        .collect()
}

/// `old` with the hunks `chosen` (ids) of its diff to `new` applied.
pub(crate) fn apply(old: &str, new: &str, chosen: &HashSet<u32>) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let (olds, news) = (diff.old_slices(), diff.new_slices());
    let mut out = String::with_capacity(old.len().max(new.len()));
    let mut at = 0;
    for s in hunks(old, new) {
        out.extend(olds[at..s.old.start].iter().copied());
        if chosen.contains(&s.hunk.id) {
            out.extend(news[s.new.clone()].iter().copied());
        } else {
            out.extend(olds[s.old.clone()].iter().copied());
        }
        at = s.old.end;
    }
    out.extend(olds[at..].iter().copied());
    out
}

/// A file's partial content, ready for the commit engine.
pub(crate) struct Partial {
    /// The state the host gets (the base's mode, the partial content's hash and size).
    pub state: EntryState,
    /// A private, unlinked copy of the content to write from.
    pub src: Arc<OwnedFd>,
}

/// Reads each file `req.hunks` names, checks the selection against its diff now, and makes
/// its partial content (in an unlinked file in `scratch_dir`). A file whose chosen hunks are
/// all of its hunks is left out: it is committed whole (its path is added to the request's
/// paths by the caller). Errors name the path: a stale hash or unknown id, a file with no
/// such change or not text ([`Error::HunksRefused`], 409).
pub(crate) fn prepare(
    ov: &Overlay,
    req: &CommitRequest,
    scratch_dir: &Path,
) -> Result<(HashMap<RelPath, Partial>, Vec<RelPath>)> {
    let pending = super::status::pending(ov)?;
    let mut partial = HashMap::new();
    let mut whole = Vec::new();
    for sel in &req.hunks {
        let refuse = |why: &str| {
            Err(Error::HunksRefused(format!(
                "{}: {why}; run `wsfs diff {}` again and choose from what it shows",
                sel.path, sel.path
            )))
        };
        let Some(c) = pending.iter().find(|c| c.path == sel.path) else {
            return refuse("no pending change at this path");
        };
        let (EntryState::File { mode, .. }, EntryState::File { .. }) = (&c.base, &c.current) else {
            return refuse("hunks can be chosen in a modified regular file only");
        };
        if c.kind != ChangeKind::Modified {
            return refuse("hunks can be chosen in a modified regular file only");
        }
        let host = super::merge::read_at(std::os::fd::AsFd::as_fd(ov.lower_root()), &c.path)?;
        let ours = super::merge::read_at(std::os::fd::AsFd::as_fd(ov.upper_root()), &c.path)?;
        let (Ok(host), Ok(ours)) = (std::str::from_utf8(&host), std::str::from_utf8(&ours)) else {
            return refuse("not a text file (hunks are lines of UTF-8 text)");
        };
        let spans = hunks(host, ours);
        let mut chosen = HashSet::new();
        for r in &sel.hunks {
            match spans.iter().find(|s| s.hunk.id == r.id) {
                Some(s) if s.hunk.hash == r.hash => {
                    chosen.insert(r.id);
                }
                Some(_) => return refuse(&format!("hunk {} changed since it was shown", r.id)),
                None => {
                    return refuse(&format!(
                        "no hunk {} (the diff has {} now)",
                        r.id,
                        spans.len()
                    ))
                }
            }
        }
        if chosen.is_empty() {
            continue;
        }
        if chosen.len() == spans.len() {
            whole.push(c.path.clone());
            continue;
        }
        let content = apply(host, ours, &chosen);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE)
            .open(scratch_dir)
            .map_err(|e| Error::io("create", &c.path, e))?;
        f.write_all(content.as_bytes())
            .and_then(|()| f.rewind())
            .map_err(|e| Error::io("write", &c.path, e))?;
        partial.insert(
            c.path.clone(),
            Partial {
                state: EntryState::File {
                    hash: Some(ContentHash::of(content.as_bytes())),
                    mode: *mode,
                    size: content.len() as u64,
                },
                src: Arc::new(f.into()),
            },
        );
    }
    Ok((partial, whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize) -> String {
        (1..=n).map(|i| format!("l{i}\n")).collect()
    }

    #[test]
    fn chosen_hunks_apply_and_the_rest_stay_out() {
        let old = lines(30);
        let new = old
            .replace("l2\n", "l2 changed\n")
            .replace("l15\n", "")
            .replace("l28\n", "l28\nadded\n");
        let spans = hunks(&old, &new);
        assert_eq!(spans.len(), 3);
        assert!(
            spans[1].hunk.text.starts_with("@@ -12,7 +12,6 @@"),
            "{}",
            spans[1].hunk.text
        );
        let pick = |ids: &[u32]| apply(&old, &new, &ids.iter().copied().collect());
        assert_eq!(pick(&[]), old);
        assert_eq!(pick(&[0, 1, 2]), new);
        assert_eq!(pick(&[1]), old.replace("l15\n", ""));
        let first_and_last = pick(&[0, 2]);
        assert_eq!(first_and_last, new.replace("l14\nl16\n", "l14\nl15\nl16\n"));
        // What is left after committing hunk 1 is exactly hunks 0 and 2.
        let rest = hunks(&pick(&[1]), &new);
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].hunk.text, spans[0].hunk.text);
        // Hashes name the content: the same hunk text, the same hash.
        assert_ne!(spans[0].hunk.hash, spans[2].hunk.hash);
        // Text without a final newline.
        let (a, b) = ("x\ny", "x\nz");
        assert_eq!(apply(a, b, &[0].into_iter().collect()), b);
    }
}
