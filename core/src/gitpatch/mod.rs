//! Patches of pending changes that `git apply` accepts, in the form of
//! `git diff --binary --full-index -M`: content edits, new and deleted files, renames with
//! their similarity, mode changes, symlinks (mode 120000, the target as content), binary files
//! (`GIT binary patch`, `literal` blocks), empty files, and names quoted as git quotes them.
//!
//! A file is text when it has no NUL in its first 8000 bytes (git's test) and is valid UTF-8
//! (so the patch itself is UTF-8 and travels as a JSON string); anything else is binary.

mod binary;
mod blob;
mod collect;
mod hunks;
mod quote;

pub(crate) use blob::{blob_id, NULL_ID};
pub(crate) use collect::collect;

use crate::relpath::RelPath;

/// Git's mode of a regular file without, and with, the owner's execute bit.
pub(crate) const MODE_FILE: u32 = 0o100644;
/// Git's mode of an executable file.
pub(crate) const MODE_EXEC: u32 = 0o100755;
/// Git's mode of a symbolic link.
pub(crate) const MODE_LINK: u32 = 0o120000;

/// One side of a file pair: its path, git mode and content (a symlink's target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GitSide {
    pub path: RelPath,
    pub mode: u32,
    pub data: Vec<u8>,
}

impl GitSide {
    /// The git blob id of the content.
    pub fn id(&self) -> String {
        blob_id(&self.data)
    }
}

/// One `diff --git` section: a file added (`old` none), deleted (`new` none), changed, or
/// renamed (paths differ; `similarity` in percent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GitFile {
    pub old: Option<GitSide>,
    pub new: Option<GitSide>,
    pub similarity: Option<u8>,
}

impl GitFile {
    /// The path the section is about (the new one for renames).
    pub fn path(&self) -> &RelPath {
        match (&self.new, &self.old) {
            (Some(s), _) | (None, Some(s)) => &s.path,
            (None, None) => unreachable!("a section has at least one side"),
        }
    }
}

/// The whole patch.
pub(crate) fn render(files: &[GitFile]) -> String {
    let mut out = String::new();
    for f in files {
        section(&mut out, f);
    }
    out
}

fn section(out: &mut String, f: &GitFile) {
    let (a, b) = match (&f.old, &f.new) {
        (Some(o), Some(n)) => (&o.path, &n.path),
        (Some(o), None) => (&o.path, &o.path),
        (None, Some(n)) => (&n.path, &n.path),
        (None, None) => return,
    };
    let (a_name, b_name) = (
        quote::quoted("a/", a.as_bytes()),
        quote::quoted("b/", b.as_bytes()),
    );
    out.push_str(&format!("diff --git {a_name} {b_name}\n"));
    match (&f.old, &f.new) {
        (None, Some(n)) => out.push_str(&format!("new file mode {:o}\n", n.mode)),
        (Some(o), None) => out.push_str(&format!("deleted file mode {:o}\n", o.mode)),
        (Some(o), Some(n)) => {
            if o.mode != n.mode {
                out.push_str(&format!("old mode {:o}\nnew mode {:o}\n", o.mode, n.mode));
            }
            if o.path != n.path {
                out.push_str(&format!(
                    "similarity index {}%\nrename from {}\nrename to {}\n",
                    f.similarity.unwrap_or(100),
                    quote::quoted("", o.path.as_bytes()),
                    quote::quoted("", n.path.as_bytes())
                ));
            }
        }
        (None, None) => unreachable!(),
    }
    let old_data = f.old.as_ref().map_or(&[][..], |s| &s.data[..]);
    let new_data = f.new.as_ref().map_or(&[][..], |s| &s.data[..]);
    let ids = (
        f.old.as_ref().map_or(NULL_ID.to_string(), GitSide::id),
        f.new.as_ref().map_or(NULL_ID.to_string(), GitSide::id),
    );
    if ids.0 == ids.1 {
        return; // a pure rename or mode change: no content to carry
    }
    out.push_str(&format!("index {}..{}", ids.0, ids.1));
    match (&f.old, &f.new) {
        (Some(o), Some(n)) if o.mode == n.mode => out.push_str(&format!(" {:o}\n", o.mode)),
        _ => out.push('\n'),
    }
    match (text(old_data), text(new_data)) {
        (Some(old), Some(new)) => {
            let mut hunks = String::new();
            hunks::write_hunks(&mut hunks, old, new);
            if hunks.is_empty() {
                return; // an empty file added or deleted
            }
            let label = |side: &Option<GitSide>, name: &str| match side {
                None => "/dev/null".to_string(),
                // Git ends a name holding a space with a tab, so it reads unambiguously.
                Some(_) if name.contains(' ') => format!("{name}\t"),
                Some(_) => name.to_string(),
            };
            out.push_str(&format!("--- {}\n", label(&f.old, &a_name)));
            out.push_str(&format!("+++ {}\n", label(&f.new, &b_name)));
            out.push_str(&hunks);
        }
        _ => {
            out.push_str("GIT binary patch\n");
            binary::literal(out, new_data);
            binary::literal(out, old_data);
        }
    }
}

/// The content as text, or `None` when git's patch needs it in binary form.
fn text(data: &[u8]) -> Option<&str> {
    if data[..data.len().min(8000)].contains(&0) {
        return None;
    }
    std::str::from_utf8(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(path: &str, mode: u32, data: &[u8]) -> Option<GitSide> {
        Some(GitSide {
            path: RelPath::new(path).unwrap(),
            mode,
            data: data.to_vec(),
        })
    }

    #[test]
    fn headers_of_each_kind() {
        let e69 = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
        let files = [
            GitFile {
                old: None,
                new: side("empty", MODE_FILE, b""),
                similarity: None,
            },
            GitFile {
                old: side("run.sh", MODE_FILE, b"x\n"),
                new: side("run.sh", MODE_EXEC, b"x\n"),
                similarity: None,
            },
            GitFile {
                old: side("a b", MODE_FILE, b"1\n"),
                new: side("c", MODE_FILE, b"1\n"),
                similarity: Some(100),
            },
            GitFile {
                old: side("link", MODE_LINK, b"t"),
                new: None,
                similarity: None,
            },
        ];
        assert_eq!(
            render(&files),
            format!(
                "diff --git a/empty b/empty\nnew file mode 100644\nindex {NULL_ID}..{e69}\n\
                 diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n\
                 diff --git a/a b b/c\nsimilarity index 100%\nrename from a b\nrename to c\n\
                 diff --git a/link b/link\ndeleted file mode 120000\nindex {}..{NULL_ID}\n\
                 --- a/link\n+++ /dev/null\n@@ -1 +0,0 @@\n-t\n\\ No newline at end of file\n",
                blob_id(b"t")
            )
        );
    }

    #[test]
    fn binary_sides_carry_both_literals() {
        let f = GitFile {
            old: None,
            new: side("bin", MODE_FILE, b"\0\x01"),
            similarity: None,
        };
        let p = render(&[f]);
        assert!(p.contains("GIT binary patch\nliteral 2\n"), "{p}");
        assert!(p.ends_with("literal 0\nHcmV?d00001\n\n"), "{p}");
    }
}
