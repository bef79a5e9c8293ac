//! `wsfs commit -p`: choosing hunks on a terminal, like `git add -p`.

use std::io::{BufRead, Write};

use wsfs::api::{ChangeKind, FileDiff, HunkRef, HunkSelection};
use wsfs::relpath::RelPath;

/// What was chosen: whole changes (paths) and hunks of modified text files.
#[derive(Debug, Default)]
pub struct Chosen {
    pub paths: Vec<RelPath>,
    pub hunks: Vec<HunkSelection>,
}

impl Chosen {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.hunks.is_empty()
    }
}

const HELP: &str = "y - commit this hunk\n\
n - do not commit this hunk\n\
q - quit; do not commit this hunk or any of the remaining ones\n\
a - commit this hunk and all later hunks in the file\n\
d - do not commit this hunk or any of the later hunks in the file\n\
? - print help\n";

/// Offers each hunk of `diffs` (and each change without hunks as a whole) on `out`, reading
/// one answer a line from `input`. End of input is `q`.
pub fn choose(
    diffs: &[FileDiff],
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> std::io::Result<Chosen> {
    let mut chosen = Chosen::default();
    'files: for d in diffs {
        let c = &d.change;
        let path = &c.path;
        let hunkable = c.kind == ChangeKind::Modified && !d.hunks.is_empty();
        if !hunkable {
            let what = match c.kind {
                ChangeKind::Added => "addition",
                ChangeKind::Deleted => "deletion",
                ChangeKind::Renamed => "rename",
                ChangeKind::TypeChanged => "type change",
                ChangeKind::Modified => "change",
            };
            write!(out, "{}", d.unified)?;
            match ask(&format!("Commit {what} of {path} [y,n,q,?]? "), input, out)? {
                'y' | 'a' => chosen.paths.push(path.clone()),
                'q' => break 'files,
                _ => {}
            }
            continue;
        }
        let header: String = d
            .unified
            .lines()
            .take(2)
            .map(|l| format!("{l}\n"))
            .collect();
        write!(out, "{header}")?;
        let mut refs = Vec::new();
        let n = d.hunks.len();
        let mut all = false;
        for (i, h) in d.hunks.iter().enumerate() {
            let take = |refs: &mut Vec<HunkRef>| {
                refs.push(HunkRef {
                    id: h.id,
                    hash: h.hash,
                })
            };
            if all {
                take(&mut refs);
                continue;
            }
            write!(out, "{}", h.text)?;
            let answer = loop {
                let a = ask(
                    &format!("({}/{n}) Commit this hunk of {path} [y,n,q,a,d,?]? ", i + 1),
                    input,
                    out,
                )?;
                if a == '?' {
                    write!(out, "{HELP}")?;
                    continue;
                }
                break a;
            };
            match answer {
                'y' => take(&mut refs),
                'a' => {
                    take(&mut refs);
                    all = true;
                }
                'd' => break,
                'q' => {
                    push(&mut chosen, path, refs);
                    break 'files;
                }
                _ => {}
            }
        }
        push(&mut chosen, path, refs);
    }
    Ok(chosen)
}

fn push(chosen: &mut Chosen, path: &RelPath, hunks: Vec<HunkRef>) {
    if !hunks.is_empty() {
        chosen.hunks.push(HunkSelection {
            path: path.clone(),
            hunks,
        });
    }
}

/// Prints `prompt` and reads an answer: its first letter, lowercased; `q` at end of input;
/// anything unknown asks again.
fn ask(prompt: &str, input: &mut impl BufRead, out: &mut impl Write) -> std::io::Result<char> {
    loop {
        write!(out, "{prompt}")?;
        out.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            writeln!(out)?;
            return Ok('q');
        }
        match line.trim().chars().next().map(|c| c.to_ascii_lowercase()) {
            Some(c @ ('y' | 'n' | 'q' | 'a' | 'd' | '?')) => return Ok(c),
            _ => writeln!(out, "answer y, n, q, a, d or ? (help)")?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wsfs::api::{Change, Hunk};
    use wsfs::journal::record::EntryState;
    use wsfs_core::hash::ContentHash;

    fn diff(path: &str, kind: ChangeKind, hunks: usize) -> FileDiff {
        let file = EntryState::File {
            hash: None,
            mode: 0o644,
            size: 0,
        };
        FileDiff {
            change: Change {
                path: RelPath::new(path).unwrap(),
                kind,
                from: None,
                base: file.clone(),
                current: file,
                scratch: false,
                protected: false,
                git_churn: false,
                secret: false,
                write_through: false,
            },
            unified: format!("--- a/{path}\n+++ b/{path}\n"),
            binary: false,
            added_lines: 0,
            removed_lines: 0,
            similarity: None,
            same_content: false,
            hunks: (0..hunks as u32)
                .map(|id| Hunk {
                    id,
                    hash: ContentHash::of(&[id as u8]),
                    text: format!("@@ hunk {id} @@\n"),
                })
                .collect(),
        }
    }

    fn ids(c: &Chosen) -> Vec<(String, Vec<u32>)> {
        c.hunks
            .iter()
            .map(|s| (s.path.to_string(), s.hunks.iter().map(|h| h.id).collect()))
            .collect()
    }

    #[test]
    fn answers_choose_like_git_add_p() {
        let diffs = [
            diff("a", ChangeKind::Modified, 3),
            diff("b", ChangeKind::Modified, 3),
            diff("c", ChangeKind::Added, 0),
            diff("d", ChangeKind::Modified, 2),
        ];
        let mut out = Vec::new();
        // a: y, n, y; b: a (all from the first); c: y; d: n, then ? and d.
        let c = choose(&diffs, &mut &b"y\nn\nyes\nx\na\ny\nn\n?\nd\n"[..], &mut out).unwrap();
        assert_eq!(
            ids(&c),
            [("a".into(), vec![0, 2]), ("b".into(), vec![0, 1, 2])]
        );
        assert_eq!(c.paths, [RelPath::new("c").unwrap()]);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("(1/3) Commit this hunk of a [y,n,q,a,d,?]? "),
            "{text}"
        );
        assert!(text.contains("answer y, n, q, a, d or ?"), "{text}");
        assert!(text.contains("q - quit"), "{text}");
        // q keeps what was chosen so far; end of input is q.
        let c = choose(&diffs, &mut &b"y\nq\n"[..], &mut Vec::new()).unwrap();
        assert_eq!(ids(&c), [("a".into(), vec![0])]);
        let c = choose(&diffs, &mut &b"n\ny\n"[..], &mut Vec::new()).unwrap();
        assert_eq!(ids(&c), [("a".into(), vec![1])]);
    }
}
