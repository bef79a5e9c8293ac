//! Recovery: finishing a commit that a crash interrupted (roll-forward).

use std::collections::{BTreeSet, HashSet};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{commit_in, host, Versions};
use crate::api::CommitRequest;
use crate::error::Result;
use crate::journal::record::{Draft, Op, Record};
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::store::ContentStore;
use crate::sys;

/// Finishes a commit interrupted by a crash: removes its temporary files and applies the paths
/// it had not applied yet (skipping those the host already has), then closes it. A commit
/// that kept its versions (`store`) is continued under its own id: its `commit_begin` holds
/// the host's states from before it began, which an undo needs (a path the host already
/// has in its new state must not count as having been so before).
pub fn roll_forward(
    ov: &Overlay,
    backups_root: &Path,
    store: Option<&ContentStore>,
    records: &[Record],
) -> Result<Option<String>> {
    let mut open: Option<(String, Vec<RelPath>, bool)> = None;
    let mut applied: HashSet<RelPath> = HashSet::new();
    for r in records {
        match &r.draft.op {
            Op::CommitBegin { id, paths, prior } => {
                open = Some((id.clone(), paths.clone(), !prior.is_empty()));
                applied.clear();
            }
            Op::CommitApplied { .. } => {
                applied.insert(r.draft.path.clone());
            }
            Op::CommitEnd { id } if open.as_ref().is_some_and(|(o, _, _)| o == id) => open = None,
            _ => {}
        }
    }
    let Some((id, paths, kept)) = open else {
        return Ok(None);
    };
    tracing::warn!(commit = %id, "rolling an interrupted commit forward");
    let tmp_prefix = format!("{}{id}-", host::TMP_PREFIX);
    let parents: BTreeSet<RelPath> = paths
        .iter()
        .map(|p| p.parent().unwrap_or_default())
        .collect();
    for d in parents {
        if let Ok(fd) = sys::walk_dirs(ov.lower_root().as_fd(), &d) {
            for e in sys::read_dir(fd.as_fd()).unwrap_or_default() {
                if e.name.as_bytes().starts_with(tmp_prefix.as_bytes()) {
                    let _ = sys::unlinkat(fd.as_fd(), &e.name, false);
                }
            }
        }
    }
    let remaining: Vec<RelPath> = paths.into_iter().filter(|p| !applied.contains(p)).collect();
    if !remaining.is_empty() {
        let req = CommitRequest {
            paths: remaining,
            allow_protected: true,
            include_scratch: true,
            ..Default::default()
        };
        // A commit that kept no versions is finished as a commit of its own, as before.
        let versions = Versions {
            store,
            resume: kept.then_some(id.as_str()),
        };
        let report = commit_in(
            ov,
            backups_root,
            &req,
            Default::default(),
            versions,
            &|_, _| {},
        )?;
        for c in &report.conflicts {
            tracing::warn!(path = %c.path, reason = %c.reason, "interrupted commit: path left in the workspace");
        }
    }
    ov.record_durable(Draft::control(Op::CommitEnd { id: id.clone() }))?;
    Ok(Some(id))
}
