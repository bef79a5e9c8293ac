//! Pending changes: the change set compared with the upper layer (never a walk of the project).

use std::os::fd::AsFd;

use crate::api::{Change, ChangeKind};
use crate::error::{IoContext, Result};
use crate::journal::record::EntryState;
use crate::overlay::Overlay;
use crate::policy::Noise;
use crate::relpath::RelPath;
use crate::sys;

/// True when two states describe the same content: [`EntryState::same_state`].
pub fn same_state(a: &EntryState, b: &EntryState) -> bool {
    a.same_state(b)
}

/// True when `recorded` is a file state whose hash was never settled and `committed` is the
/// same file with its hash: [`EntryState::settled_by`].
pub fn settled_by(recorded: &EntryState, committed: &EntryState) -> bool {
    recorded.settled_by(committed)
}

/// The kind of change from `base` to `current` (`from`: a rename's origin), or `None`.
pub(crate) fn classify(
    base: &EntryState,
    current: &EntryState,
    from: &Option<RelPath>,
) -> Option<ChangeKind> {
    if same_state(base, current) && from.is_none() {
        return None;
    }
    Some(match (base, current) {
        (EntryState::Absent, EntryState::Absent) => return None,
        (_, EntryState::Absent) => ChangeKind::Deleted,
        _ if from.is_some() => ChangeKind::Renamed,
        (EntryState::Absent, _) => ChangeKind::Added,
        (b, c) if std::mem::discriminant(b) != std::mem::discriminant(c) => ChangeKind::TypeChanged,
        _ => ChangeKind::Modified,
    })
}

/// Every pending change, sorted by path.
pub fn pending(ov: &Overlay) -> Result<Vec<Change>> {
    pending_where(ov, |_| true)
}

/// The pending changes whose review class `keep` accepts, sorted by path. Changes of other
/// classes are skipped before any I/O, so hidden scratch costs nothing here.
pub fn pending_where(ov: &Overlay, keep: impl Fn(Noise) -> bool) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    let mut out_opaque = Vec::new();
    let policy = ov.policy();
    let mut push = |path: RelPath, base: EntryState, current: EntryState, from: Option<RelPath>| {
        if let Some(kind) = classify(&base, &current, &from) {
            let is_dir = current.is_dir() || base.is_dir();
            let noise = policy.noise(&path, is_dir);
            if keep(noise) {
                out.push(Change {
                    scratch: noise == Noise::Scratch,
                    git_churn: noise == Noise::GitChurn,
                    write_through: noise == Noise::WriteThrough,
                    protected: policy.is_protected(&path),
                    secret: policy.is_hidden(&path, is_dir),
                    path,
                    kind,
                    from,
                    base,
                    current,
                });
            }
        }
    };
    for (path, change) in ov.changes().snapshot_where(&keep) {
        let current = ov.upper_state(&path, false)?;
        let owns_subtree = current.is_dir() && (change.opaque || !change.base.is_dir());
        if change.opaque && same_state(&change.base, &current) {
            // Replaced in place (removed, then made again): the directory itself must go
            // through commit so that its opaque mark is cleared with it.
            out_opaque.push(path.clone());
        }
        push(
            path.clone(),
            change.base.clone(),
            current,
            change.origin.clone(),
        );
        if owns_subtree {
            // Entries inside a directory the overlay created (or replaced) that were never
            // touched one by one (e.g. moved in with their directory).
            let mut stack = vec![path];
            while let Some(dir) = stack.pop() {
                let fd = match sys::walk_dirs(ov.upper_root().as_fd(), &dir) {
                    Ok(fd) => fd,
                    Err(e) if sys::is_absent(&e) => continue,
                    Err(e) => return Err(crate::Error::io("walk", &dir, e)),
                };
                for e in sys::read_dir(fd.as_fd()).ctx("readdir", &dir)? {
                    let child = dir.join(&e.name)?;
                    let st = sys::lstatat(fd.as_fd(), &e.name).ctx("lstat", &child)?;
                    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                        stack.push(child.clone());
                    }
                    if ov.changes().contains(&child) {
                        continue;
                    }
                    let current = ov.upper_state(&child, false)?;
                    let base = ov.lower_state(&child)?;
                    push(child, base, current, None);
                }
            }
        }
    }
    for path in out_opaque {
        if let Some(c) = ov.changes().get(&path) {
            out.push(Change {
                scratch: c.noise == Noise::Scratch,
                git_churn: c.noise == Noise::GitChurn,
                write_through: c.noise == Noise::WriteThrough,
                protected: policy.is_protected(&path),
                secret: policy.is_hidden(&path, true),
                path,
                kind: ChangeKind::Modified,
                from: None,
                base: c.base,
                current: c.current,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    Ok(out)
}
