//! `wsfs diff A..B`: what changed between two points of a workspace's history.
//!
//! A point is a checkpoint, `@` (the view now) or `base` (the host state the workspace started
//! from: the base states the journal recorded). A point knows the exact state of the paths it
//! lists; any other path was as the host had it, which is the base the other point recorded
//! (for `@`: the host now). Content comes from the store (checkpoints), the upper layer or the
//! host (`@`), and the host for `base` while the host still holds that exact content; otherwise
//! the base content is not kept (only its hash), and the diff says so.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::AsFd;

use super::Checkpoint;
use crate::api::{self, FileDiff};
use crate::error::Result;
use crate::hash::ContentHash;
use crate::journal::record::{EntryState, Record};
use crate::overlay::Overlay;
use crate::policy::Noise;
use crate::relpath::RelPath;
use crate::store::ContentStore;

/// Largest content read for a diff (bigger files are shown as binary).
const CAP: u64 = 8 << 20;

/// One end of a range.
pub(crate) enum Point {
    /// The view now.
    Now,
    /// The host state the workspace started from.
    Base,
    /// A checkpoint.
    At(Checkpoint),
}

impl Point {
    /// `@`, `base` or a checkpoint id.
    pub(crate) fn parse(records: &[Record], word: &str) -> Result<Point> {
        Ok(match word {
            "@" | "now" => Point::Now,
            "base" => Point::Base,
            id => Point::At(super::find(records, id)?),
        })
    }
}

/// Where a side's content is.
enum Source {
    Store,
    Upper,
    Host,
    /// The base: the host's content while it still has this state.
    HostIfSame,
}

/// The states a point knows: path → (state, base).
fn known(ov: &Overlay, point: &Point) -> Result<HashMap<RelPath, (EntryState, EntryState)>> {
    Ok(match point {
        Point::Base => HashMap::new(),
        Point::At(cp) => cp
            .entries
            .iter()
            .map(|e| (e.path.clone(), (e.state.clone(), e.base.clone())))
            .collect(),
        Point::Now => crate::commit::status::pending(ov)?
            .into_iter()
            .map(|c| (c.path, (c.current, c.base)))
            .collect(),
    })
}

/// Diffs from `from` to `to` of the paths at or below `paths` (all when empty) that `show`
/// keeps, sorted by path.
pub(crate) fn diff(
    ov: &Overlay,
    store: &ContentStore,
    from: &Point,
    to: &Point,
    paths: &[RelPath],
    show: api::Show,
) -> Result<Vec<FileDiff>> {
    let a = known(ov, from)?;
    let b = known(ov, to)?;
    let mut all: BTreeMap<&RelPath, ()> = BTreeMap::new();
    for p in a.keys().chain(b.keys()) {
        if paths.is_empty() || paths.iter().any(|s| p.starts_with(s)) {
            all.insert(p, ());
        }
    }
    let mut out = Vec::new();
    for p in all.into_keys() {
        let base = a.get(p).or_else(|| b.get(p)).map(|(_, base)| base.clone());
        let base = base.unwrap_or(EntryState::Absent);
        let (old, old_src) = side(ov, from, &a, p, &base)?;
        let (new, new_src) = side(ov, to, &b, p, &base)?;
        let Some(kind) = crate::commit::status::classify(&old, &new, &None) else {
            continue;
        };
        let is_dir = old.is_dir() || new.is_dir();
        let policy = ov.policy();
        let noise = policy.noise(p, is_dir);
        if !show.keeps(noise) {
            continue;
        }
        let change = api::Change {
            path: p.clone(),
            kind,
            from: None,
            scratch: noise == Noise::Scratch,
            git_churn: noise == Noise::GitChurn,
            write_through: noise == Noise::WriteThrough,
            protected: policy.is_protected(p),
            secret: policy.is_hidden(p, is_dir),
            base: old.clone(),
            current: new.clone(),
        };
        let old_bytes = content(ov, store, p, &old, old_src);
        let new_bytes = content(ov, store, p, &new, new_src);
        out.push(match (old_bytes, new_bytes) {
            (Ok(o), Ok(n)) => crate::diff::file_diff(change, o, n),
            (o, n) => not_kept(change, [o.err(), n.err()]),
        });
    }
    Ok(out)
}

/// The state of `p` at `point`, and where its content is.
fn side(
    ov: &Overlay,
    point: &Point,
    known: &HashMap<RelPath, (EntryState, EntryState)>,
    p: &RelPath,
    base: &EntryState,
) -> Result<(EntryState, Source)> {
    if let Some((state, _)) = known.get(p) {
        let src = match point {
            Point::At(_) => Source::Store,
            _ => Source::Upper,
        };
        return Ok((state.clone(), src));
    }
    match point {
        Point::Now => match ov.node_at(p) {
            Ok(_) => Ok((ov.lower_state(p)?, Source::Host)),
            Err(crate::Error::NotFound(_) | crate::Error::NotADirectory(_)) => {
                Ok((EntryState::Absent, Source::Host))
            }
            Err(e) => Err(e),
        },
        _ => Ok((base.clone(), Source::HostIfSame)),
    }
}

/// The bytes a diff shows for `state` (`None`: no content, e.g. a directory), or the hash of a
/// base content that is not kept.
fn content(
    ov: &Overlay,
    store: &ContentStore,
    p: &RelPath,
    state: &EntryState,
    src: Source,
) -> std::result::Result<Option<Vec<u8>>, ContentHash> {
    let EntryState::File { hash, size, .. } = state else {
        return Ok(crate::workspace::read_side(
            ov.lower_root().as_fd(),
            p,
            state,
        ));
    };
    if *size > CAP {
        return Ok(Some(vec![0]));
    }
    let hash = hash.unwrap_or_default();
    match src {
        Source::Store => store.read(&hash).map(Some).map_err(|_| hash),
        Source::Upper => Ok(crate::workspace::read_side(
            ov.upper_root().as_fd(),
            p,
            state,
        )),
        Source::Host => Ok(crate::workspace::read_side(
            ov.lower_root().as_fd(),
            p,
            state,
        )),
        Source::HostIfSame => match ov.lower_state(p) {
            Ok(now) if now.same_content(state) => Ok(crate::workspace::read_side(
                ov.lower_root().as_fd(),
                p,
                state,
            )),
            _ if store.contains(&hash) => store.read(&hash).map(Some).map_err(|_| hash),
            _ => Err(hash),
        },
    }
}

/// A diff whose content is not available on one side: the note names the hash.
fn not_kept(change: api::Change, missing: [Option<ContentHash>; 2]) -> FileDiff {
    let mut unified = String::new();
    for (side, h) in ["a", "b"].iter().zip(missing) {
        if let Some(h) = h {
            unified.push_str(&format!(
                "# {side}/{}: content not kept (only its hash, blake3 {}); the host has changed it since\n",
                change.path.display(),
                h.short()
            ));
        }
    }
    FileDiff {
        change,
        unified,
        binary: false,
        added_lines: 0,
        removed_lines: 0,
        similarity: None,
        same_content: false,
        hunks: Vec::new(),
    }
}
