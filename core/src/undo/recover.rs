//! Finishing an undo a crash interrupted (roll-forward on the next open).

use std::collections::{BTreeSet, HashSet};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{apply, history, into_overlay, Item};
use crate::error::Result;
use crate::journal::record::{Draft, Op, Record};
use crate::overlay::Overlay;
use crate::relpath::RelPath;
use crate::store::ContentStore;
use crate::sys;

/// Completes an undo begun but not ended: removes its temporary files, brings the paths without
/// an `undo_applied` record back into the overlay, puts the host back where it is not yet
/// (skipping paths already in their old state), and writes `undo_end`. Returns its id.
pub fn roll_forward(
    ov: &Overlay,
    store: &ContentStore,
    backups_root: &Path,
    records: &[Record],
) -> Result<Option<String>> {
    let mut open: Option<(String, String, Vec<RelPath>)> = None;
    let mut applied: HashSet<RelPath> = HashSet::new();
    for r in records {
        match &r.draft.op {
            Op::UndoBegin { id, commit, paths } => {
                open = Some((id.clone(), commit.clone(), paths.clone()));
                applied.clear();
            }
            Op::UndoApplied { id } if open.as_ref().is_some_and(|(o, _, _)| o == id) => {
                applied.insert(r.draft.path.clone());
            }
            Op::UndoEnd { id } if open.as_ref().is_some_and(|(o, _, _)| o == id) => open = None,
            _ => {}
        }
    }
    let Some((id, commit, paths)) = open else {
        return Ok(None);
    };
    tracing::warn!(undo = %id, commit = %commit, "rolling an interrupted undo forward");
    let wanted: HashSet<&RelPath> = paths.iter().collect();
    let items: Vec<Item> = super::sorted(
        history::commits(records)
            .into_iter()
            .find(|c| c.id == commit)
            .map(|c| c.paths)
            .unwrap_or_default()
            .into_iter()
            .filter(|(p, _, _)| wanted.contains(p))
            .filter_map(|(path, before, after)| {
                Some(Item {
                    path,
                    before: before?,
                    after,
                })
            })
            .collect(),
    );
    let prefix = format!("{}{id}-", apply::TMP_PREFIX);
    let parents: BTreeSet<RelPath> = items
        .iter()
        .map(|i| i.path.parent().unwrap_or_default())
        .collect();
    for d in parents {
        if let Ok(fd) = sys::walk_dirs(ov.lower_root().as_fd(), &d) {
            for e in sys::read_dir(fd.as_fd()).unwrap_or_default() {
                if e.name.as_bytes().starts_with(prefix.as_bytes()) {
                    let _ = sys::unlinkat(fd.as_fd(), &e.name, false);
                }
            }
        }
    }
    into_overlay(ov, store, &id, &items, &applied)?;
    apply::to_host(ov, store, &id, &items, false, &backups_root.join(&id))?;
    ov.record_durable(Draft::control(Op::UndoEnd { id: id.clone() }))?;
    Ok(Some(id))
}
