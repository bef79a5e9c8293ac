//! Unified diffs of pending changes (text), with binary detection and git's rename pairing.
//!
//! Renames are paired the way `git diff -M` pairs them: a rename the overlay recorded, or a
//! deleted file and an added file (of the same type, neither empty) with identical content, or (when there are at most
//! [`RENAME_LIMIT`]² deleted×added pairs) with a similarity of at least 50%, scored like git's
//! `diffcore-delta` (bytes in common line chunks over the larger size). Directories carry no
//! lines and are not files.

use std::collections::HashMap;

use crate::api::{Change, ChangeKind, FileDiff};
use crate::journal::record::EntryState;

/// Like git's default `diff.renameLimit`: beyond this many sources × destinations (squared),
/// only exact renames are detected.
pub const RENAME_LIMIT: usize = 1000;

/// Git's similarity scale and the default `-M` threshold (50%).
pub(crate) const MAX_SCORE: u64 = 60_000;
const MIN_SCORE: u64 = MAX_SCORE / 2;

fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(8192)].contains(&0) || std::str::from_utf8(data).is_err()
}

/// One pending change with the contents of both sides (`None`: not a regular file/symlink).
pub struct Side {
    pub(crate) change: Change,
    pub(crate) old: Option<Vec<u8>>,
    pub(crate) new: Option<Vec<u8>>,
}

impl Side {
    /// A change with its old (host) and new (overlay) contents.
    pub fn pair(change: Change, old: Option<Vec<u8>>, new: Option<Vec<u8>>) -> Side {
        Side { change, old, new }
    }

    fn deleted_file(&self) -> bool {
        self.change.kind == ChangeKind::Deleted && self.change.from.is_none() && self.old.is_some()
    }

    fn added_file(&self) -> bool {
        self.change.kind == ChangeKind::Added && self.new.is_some()
    }
}

/// Diffs of `sides` (sorted by path) with renames paired: a paired source's deletion is folded
/// into its rename, and a recorded rename below 50% similarity is shown as git shows it, a
/// deletion and an addition.
pub fn pair_renames(sides: Vec<Side>) -> Vec<FileDiff> {
    pair(sides)
        .into_iter()
        .map(|s| file_diff(s.change, s.old, s.new))
        .collect()
}

/// [`pair_renames`] without the diffs: the sides with renames paired (a paired source's
/// deletion folded into its rename: `change.from` and `change.base` and `old` taken from it).
pub(crate) fn pair(sides: Vec<Side>) -> Vec<Side> {
    let mut sides: Vec<Option<Side>> = sides.into_iter().map(Some).collect();
    let index: HashMap<_, _> = sides
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_ref().map(|s| s.change.path.clone()), i))
        .collect();
    // Recorded renames: fold in the source's deletion, or split when too dissimilar (or when
    // the source is still there: git shows an addition then).
    for i in 0..sides.len() {
        let Some(from) = sides[i].as_ref().and_then(|s| s.change.from.clone()) else {
            continue;
        };
        let src = index.get(&Some(from.clone())).copied();
        let src_deleted = src.is_some_and(|j| {
            sides[j]
                .as_ref()
                .is_some_and(|s| s.change.kind == ChangeKind::Deleted)
        });
        let s = sides[i].as_mut().expect("present");
        let score = similarity(s.old.as_deref(), s.new.as_deref());
        if src_deleted && score >= MIN_SCORE {
            if let Some(j) = src {
                sides[j] = None;
            }
            continue;
        }
        // Git sees an addition here (and a deletion, if the source is gone).
        s.change.kind = ChangeKind::Added;
        s.change.from = None;
        s.change.base = EntryState::Absent;
        s.old = None;
    }
    // Exact, then similar, pairs among the deleted and added files.
    let deleted: Vec<usize> = (0..sides.len())
        .filter(|&i| sides[i].as_ref().is_some_and(Side::deleted_file))
        .collect();
    let added: Vec<usize> = (0..sides.len())
        .filter(|&i| sides[i].as_ref().is_some_and(Side::added_file))
        .collect();
    let mut pairs: Vec<(u64, bool, usize, usize)> = Vec::new(); // (score, same name, dst, src)
    let content = |i: usize, old: bool| {
        let s = sides[i].as_ref().expect("present");
        if old {
            s.old.as_deref()
        } else {
            s.new.as_deref()
        }
    };
    let mut used_src = vec![false; sides.len()];
    let mut used_dst = vec![false; sides.len()];
    let same_type = |s: usize, d: usize| {
        let (src, dst) = (sides[s].as_ref(), sides[d].as_ref());
        let (src, dst) = (&src.expect("present").change, &dst.expect("present").change);
        std::mem::discriminant(&src.base) == std::mem::discriminant(&dst.current)
    };
    for &d in &added {
        for &s in &deleted {
            // Like git, an empty file is nobody's rename source.
            let same = content(s, true) == content(d, false);
            let empty = content(s, true).is_none_or(<[u8]>::is_empty);
            if !used_src[s] && same_type(s, d) && same && !empty {
                used_src[s] = true;
                used_dst[d] = true;
                pairs.push((MAX_SCORE, true, d, s));
                break;
            }
        }
    }
    if deleted.len() * added.len() <= RENAME_LIMIT * RENAME_LIMIT {
        let mut cands = Vec::new();
        for &d in added.iter().filter(|&&d| !used_dst[d]) {
            for &s in deleted.iter().filter(|&&s| !used_src[s]) {
                let both_files = [(s, true), (d, false)].iter().all(|&(i, old)| {
                    let c = &sides[i].as_ref().expect("present").change;
                    let st = if old { &c.base } else { &c.current };
                    matches!(st, EntryState::File { .. })
                });
                let empty = [content(s, true), content(d, false)]
                    .iter()
                    .any(|c| c.is_none_or(<[u8]>::is_empty));
                if !both_files || empty {
                    continue;
                }
                let score = similarity(content(s, true), content(d, false));
                if score >= MIN_SCORE {
                    let name = |i: usize| {
                        sides[i]
                            .as_ref()
                            .expect("present")
                            .change
                            .path
                            .as_bytes()
                            .rsplit(|&b| b == b'/')
                            .next()
                            .map(<[u8]>::to_vec)
                    };
                    cands.push((score, name(s) == name(d), d, s));
                }
            }
        }
        cands.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        for c in cands {
            if !used_src[c.3] && !used_dst[c.2] {
                used_src[c.3] = true;
                used_dst[c.2] = true;
                pairs.push(c);
            }
        }
    }
    for (_, _, d, s) in pairs {
        let src = sides[s].take().expect("present");
        let dst = sides[d].as_mut().expect("present");
        dst.change.kind = ChangeKind::Renamed;
        dst.change.from = Some(src.change.path);
        dst.change.base = src.change.base;
        dst.old = src.old;
    }
    sides.into_iter().flatten().collect()
}

/// Git's similarity score of `new` against `old` (0..=[`MAX_SCORE`]): the bytes of line
/// chunks (at most 64 bytes each) the two have in common, over the larger size; sizes that
/// differ by more than half the smaller one score 0 without a look.
pub(crate) fn similarity(old: Option<&[u8]>, new: Option<&[u8]>) -> u64 {
    let (Some(a), Some(b)) = (old, new) else {
        return 0;
    };
    if a == b {
        return MAX_SCORE;
    }
    let (max, min) = (a.len().max(b.len()) as u64, a.len().min(b.len()) as u64);
    if max == 0 || min * (MAX_SCORE - MIN_SCORE) < (max - min) * MAX_SCORE {
        return 0;
    }
    let (ca, cb) = (chunks(a), chunks(b));
    let copied: u64 = ca
        .iter()
        .map(|(h, n)| (*n).min(cb.get(h).copied().unwrap_or(0)))
        .sum();
    copied * MAX_SCORE / max
}

/// Byte count per chunk hash, chunks ending at a newline or after 64 bytes (as git's
/// `hash_chars`; a CR before LF in text is left out).
fn chunks(data: &[u8]) -> HashMap<u32, u64> {
    const HASHBASE: u32 = 107_927;
    let text = !data[..data.len().min(8000)].contains(&0);
    let mut out = HashMap::new();
    let (mut a1, mut a2, mut n) = (0u32, 0u32, 0u64);
    for (i, &c) in data.iter().enumerate() {
        if text && c == b'\r' && data.get(i + 1) == Some(&b'\n') {
            continue;
        }
        let old1 = a1;
        a1 = (a1 << 7) ^ (a2 >> 25);
        a2 = (a2 << 7) ^ (old1 >> 25);
        a1 = a1.wrapping_add(c as u32);
        n += 1;
        if n < 64 && c != b'\n' {
            continue;
        }
        let h = a1.wrapping_add(a2.wrapping_mul(0x61)) % HASHBASE;
        *out.entry(h).or_insert(0) += n;
        (a1, a2, n) = (0, 0, 0);
    }
    if n > 0 {
        let h = a1.wrapping_add(a2.wrapping_mul(0x61)) % HASHBASE;
        *out.entry(h).or_insert(0) += n;
    }
    out
}

/// Builds the diff of one change from its old (host) and new (overlay) contents.
pub fn file_diff(change: Change, old: Option<Vec<u8>>, new: Option<Vec<u8>>) -> FileDiff {
    let similarity = change
        .from
        .is_some()
        .then(|| (similarity(old.as_deref(), new.as_deref()) * 100 / MAX_SCORE) as u8);
    let old = old.unwrap_or_default();
    let new = new.unwrap_or_default();
    if is_binary(&old) || is_binary(&new) {
        return FileDiff {
            change,
            unified: String::new(),
            binary: true,
            added_lines: 0,
            removed_lines: 0,
            similarity,
            same_content: old == new,
            hunks: Vec::new(),
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
    let hunks = crate::commit::hunks::hunks(&a, &b)
        .into_iter()
        .map(|s| s.hunk)
        .collect();
    FileDiff {
        change,
        unified,
        binary: false,
        added_lines: added,
        removed_lines: removed,
        similarity,
        same_content: old == new,
        hunks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relpath::RelPath;

    fn file(data: &[u8]) -> EntryState {
        EntryState::File {
            hash: Some(crate::hash::ContentHash::of(data)),
            mode: 0o644,
            size: data.len() as u64,
        }
    }

    fn side(path: &str, kind: ChangeKind, old: Option<&[u8]>, new: Option<&[u8]>) -> Side {
        let st = |d: Option<&[u8]>| d.map_or(EntryState::Absent, file);
        Side::pair(
            Change {
                path: RelPath::new(path).unwrap(),
                kind,
                from: None,
                base: st(old),
                current: st(new),
                scratch: false,
                protected: false,
                git_churn: false,
                write_through: false,
                secret: false,
            },
            old.map(<[u8]>::to_vec),
            new.map(<[u8]>::to_vec),
        )
    }

    fn lines(n: std::ops::Range<u32>) -> Vec<u8> {
        n.map(|i| format!("line number {i}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn similarity_like_git() {
        let a = lines(0..100);
        assert_eq!(similarity(Some(&a), Some(&a)), MAX_SCORE);
        let mut b = lines(0..90);
        b.extend(lines(500..510));
        let s = similarity(Some(&a), Some(&b)) * 100 / MAX_SCORE;
        assert!((85..=95).contains(&s), "{s}");
        assert_eq!(similarity(Some(&a), Some(&lines(1000..1100))), 0);
        assert_eq!(similarity(Some(&a), Some(&lines(0..10))), 0); // size gate
        assert_eq!(similarity(None, Some(&a)), 0);
    }

    #[test]
    fn pairs_exact_then_similar_and_leaves_the_rest() {
        let a = lines(0..100);
        let mut a_edited = lines(0..95);
        a_edited.extend(b"new tail\n");
        let other = lines(2000..2050);
        let sides = vec![
            side("a.txt", ChangeKind::Deleted, Some(&a), None),
            side("b.txt", ChangeKind::Deleted, Some(&other), None),
            side("gone.txt", ChangeKind::Deleted, Some(b"bye\n"), None),
            side("new/b.txt", ChangeKind::Added, None, Some(&other)),
            side("z/a.txt", ChangeKind::Added, None, Some(&a_edited)),
            side("z/fresh.txt", ChangeKind::Added, None, Some(b"hello\n")),
        ];
        let out = pair_renames(sides);
        let got: Vec<_> = out
            .iter()
            .map(|d| {
                (
                    d.change.from.as_ref().map(|f| f.to_string()),
                    d.change.path.to_string(),
                    d.similarity,
                    d.added_lines,
                    d.removed_lines,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (None, "gone.txt".into(), None, 0, 1),
                (Some("b.txt".into()), "new/b.txt".into(), Some(100), 0, 0),
                (Some("a.txt".into()), "z/a.txt".into(), Some(94), 1, 5),
                (None, "z/fresh.txt".into(), None, 1, 0),
            ]
        );
    }

    #[test]
    fn empty_files_and_other_types_are_not_renames() {
        let mut link = side("link", ChangeKind::Added, None, Some(b"target"));
        link.change.current = EntryState::Symlink {
            target: b"target".to_vec(),
        };
        let out = pair_renames(vec![
            side("empty_old", ChangeKind::Deleted, Some(b""), None),
            side("empty_new", ChangeKind::Added, None, Some(b"")),
            link,
            side("was_file", ChangeKind::Deleted, Some(b"target"), None),
        ]);
        let kinds: Vec<_> = out.iter().map(|d| d.change.kind).collect();
        assert_eq!(
            kinds,
            vec![
                ChangeKind::Deleted,
                ChangeKind::Added,
                ChangeKind::Added,
                ChangeKind::Deleted
            ]
        );
    }

    #[test]
    fn recorded_rename_folds_its_deletion_or_splits_when_dissimilar() {
        let a = lines(0..40);
        let mut renamed = side("b", ChangeKind::Renamed, Some(&a), Some(&a));
        renamed.change.from = Some(RelPath::new("a").unwrap());
        let out = pair_renames(vec![
            side("a", ChangeKind::Deleted, Some(&a), None),
            renamed,
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].similarity, Some(100));

        let mut rewritten = side("b", ChangeKind::Renamed, Some(&a), Some(&lines(900..940)));
        rewritten.change.from = Some(RelPath::new("a").unwrap());
        let out = pair_renames(vec![
            side("a", ChangeKind::Deleted, Some(&a), None),
            rewritten,
        ]);
        let kinds: Vec<_> = out
            .iter()
            .map(|d| (d.change.kind, d.added_lines, d.removed_lines))
            .collect();
        assert_eq!(
            kinds,
            vec![(ChangeKind::Deleted, 0, 40), (ChangeKind::Added, 40, 0)]
        );
    }
}
