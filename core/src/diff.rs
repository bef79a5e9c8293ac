//! Unified diffs of pending changes (text), with binary detection.

use crate::api::{Change, FileDiff};

fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(8192)].contains(&0) || std::str::from_utf8(data).is_err()
}

/// Builds the diff of one change from its old (host) and new (overlay) contents.
pub fn file_diff(change: Change, old: Option<Vec<u8>>, new: Option<Vec<u8>>) -> FileDiff {
    let old = old.unwrap_or_default();
    let new = new.unwrap_or_default();
    if is_binary(&old) || is_binary(&new) {
        return FileDiff {
            change,
            unified: String::new(),
            binary: true,
            added_lines: 0,
            removed_lines: 0,
        };
    }
    let (a, b) = (String::from_utf8_lossy(&old), String::from_utf8_lossy(&new));
    let diff = similar::TextDiff::from_lines(a.as_ref(), b.as_ref());
    let mut added = 0;
    let mut removed = 0;
    for op in diff.iter_all_changes() {
        match op.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let from = change.from.as_ref().unwrap_or(&change.path).display();
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("a/{from}"),
            &format!("b/{}", change.path.display()),
        )
        .to_string();
    FileDiff {
        change,
        unified,
        binary: false,
        added_lines: added,
        removed_lines: removed,
    }
}
