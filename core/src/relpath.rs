//! Workspace-relative paths as bytes.
//!
//! Linux names need not be UTF-8, so a [`RelPath`] is a byte string of `/`-separated components,
//! each a valid single name (not empty, not `.`/`..`, no NUL, at most 255 bytes). The root of the
//! project is the empty path. Paths are never joined onto a host directory as strings: callers walk
//! them one component at a time with `openat(O_NOFOLLOW)` (see [`crate::sys`]).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest single name Linux accepts.
pub const NAME_MAX: usize = 255;

/// Checks that `name` is one valid path component.
pub fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty()
        || name == b"."
        || name == b".."
        || name.len() > NAME_MAX
        || name.iter().any(|&b| b == b'/' || b == 0)
    {
        return Err(Error::InvalidName(name.to_vec()));
    }
    Ok(())
}

/// Why a request's path was refused by [`RelPath::selection`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// The path names the project root, which would select everything.
    #[error(
        "path {0:?} names the project root; to act on every path send no paths \
         (`{{}}` or `{{\"paths\": []}}`)"
    )]
    Root(String),
    /// An absolute path.
    #[error("absolute path {0:?}: paths are relative to the project root (`src/main.rs`)")]
    Absolute(String),
    /// Not a valid relative path (a `..` component, a NUL byte, a name that is too long).
    #[error("path {path:?}: {reason}")]
    Invalid {
        /// The path as sent, escaped for display.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A validated relative path; empty means the project root.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(Vec<u8>);

impl RelPath {
    /// The project root.
    pub fn root() -> Self {
        RelPath(Vec::new())
    }

    /// Parses `bytes` ("a/b/c"; leading/trailing/duplicate slashes and "." components are
    /// tolerated and dropped; ".." is refused).
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Self> {
        let mut out = RelPath::root();
        for comp in bytes.as_ref().split(|&b| b == b'/') {
            if comp.is_empty() || comp == b"." {
                continue;
            }
            check_name(comp)?;
            out = out.join_unchecked(comp);
        }
        Ok(out)
    }

    /// Parses a path that a request names to select part of the workspace (commit, discard,
    /// diff). Like [`RelPath::new`], except that a path naming the project root (`""`, `"."`,
    /// `"/"`, `"./"`, `"//"`) is refused, because "everything" must be asked for by sending
    /// no paths, and so is an absolute path (`/etc/passwd` is not read as `etc/passwd`).
    pub fn selection(bytes: impl AsRef<[u8]>) -> Result<Self, SelectionError> {
        let bytes = bytes.as_ref();
        let parsed = RelPath::new(bytes);
        if parsed.as_ref().is_ok_and(RelPath::is_root) {
            return Err(SelectionError::Root(escape_bytes(bytes)));
        }
        if bytes.starts_with(b"/") {
            return Err(SelectionError::Absolute(escape_bytes(bytes)));
        }
        parsed.map_err(|e| SelectionError::Invalid {
            path: escape_bytes(bytes),
            reason: e.to_string(),
        })
    }

    /// Builds from an OS path (relative).
    pub fn from_os(path: &OsStr) -> Result<Self> {
        Self::new(path.as_bytes())
    }

    /// Raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// As an `OsStr` (for display or for relative use; never join onto a host path to open it).
    pub fn as_os_str(&self) -> &OsStr {
        OsStr::from_bytes(&self.0)
    }

    /// True for the project root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// `self/name`, validating `name`.
    pub fn join(&self, name: &OsStr) -> Result<Self> {
        check_name(name.as_bytes())?;
        Ok(self.join_unchecked(name.as_bytes()))
    }

    fn join_unchecked(&self, name: &[u8]) -> Self {
        let mut v = Vec::with_capacity(self.0.len() + 1 + name.len());
        v.extend_from_slice(&self.0);
        if !v.is_empty() {
            v.push(b'/');
        }
        v.extend_from_slice(name);
        RelPath(v)
    }

    /// The components, root first.
    pub fn components(&self) -> impl Iterator<Item = &OsStr> {
        self.0
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .map(OsStr::from_bytes)
    }

    /// Number of components.
    pub fn depth(&self) -> usize {
        self.components().count()
    }

    /// Parent path and last component; `None` for the root.
    pub fn split_last(&self) -> Option<(RelPath, &OsStr)> {
        if self.0.is_empty() {
            return None;
        }
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => Some((
                RelPath(self.0[..i].to_vec()),
                OsStr::from_bytes(&self.0[i + 1..]),
            )),
            None => Some((RelPath::root(), OsStr::from_bytes(&self.0))),
        }
    }

    /// The parent path (the root for a top-level path); `None` for the root.
    pub fn parent(&self) -> Option<RelPath> {
        self.split_last().map(|(parent, _)| parent)
    }

    /// The proper ancestors, nearest first, ending with the root (none for the root itself).
    pub fn ancestors(&self) -> impl Iterator<Item = RelPath> {
        std::iter::successors(self.parent(), RelPath::parent)
    }

    /// The last component (empty for root).
    pub fn file_name(&self) -> &OsStr {
        self.split_last().map(|(_, n)| n).unwrap_or(OsStr::new(""))
    }

    /// True if `self` equals `ancestor` or lies below it.
    pub fn starts_with(&self, ancestor: &RelPath) -> bool {
        ancestor.0.is_empty()
            || (self.0.starts_with(&ancestor.0)
                && (self.0.len() == ancestor.0.len() || self.0[ancestor.0.len()] == b'/'))
    }

    /// Replaces the prefix `from` with `to` (caller checked `starts_with(from)`).
    pub fn rebase(&self, from: &RelPath, to: &RelPath) -> RelPath {
        if from.0.is_empty() {
            let rest = self.0.clone();
            return RelPath(rest).prefixed(to);
        }
        let rest = &self.0[from.0.len()..];
        let rest = rest.strip_prefix(b"/").unwrap_or(rest);
        RelPath(rest.to_vec()).prefixed(to)
    }

    fn prefixed(self, prefix: &RelPath) -> RelPath {
        if self.0.is_empty() {
            return prefix.clone();
        }
        if prefix.0.is_empty() {
            return self;
        }
        prefix.join_unchecked(&self.0)
    }

    /// Human display: non-UTF-8 bytes and control characters escaped as `\xNN`.
    pub fn display(&self) -> String {
        escape_bytes(&self.0)
    }

    /// Into an owned `OsString`.
    pub fn into_os_string(self) -> OsString {
        OsString::from_vec(self.0)
    }
}

/// Escapes bytes for human output: valid UTF-8 printable text stays, everything else is `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.display())
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str(".")
        } else {
            f.write_str(&self.display())
        }
    }
}

/// Serialized as a byte array wrapper: a UTF-8 string when the path is valid UTF-8, else
/// `{"b64": "..."}` so any name round-trips through JSON losslessly.
impl Serialize for RelPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        crate::bytes_serde::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for RelPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let bytes = crate::bytes_serde::deserialize(d)?;
        RelPath::new(&bytes).map_err(serde::de::Error::custom)
    }
}

/// Serde `deserialize_with` for the `paths` of a request: each path through
/// [`RelPath::selection`] (root and absolute paths refused).
pub fn deserialize_selection<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<RelPath>, D::Error> {
    struct Selected(RelPath);
    impl<'de> Deserialize<'de> for Selected {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
            let bytes = crate::bytes_serde::deserialize(d)?;
            RelPath::selection(bytes)
                .map(Selected)
                .map_err(serde::de::Error::custom)
        }
    }
    let paths = Vec::<Selected>::deserialize(d)?;
    Ok(paths.into_iter().map(|s| s.0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let p = RelPath::new("a//b/./c/").unwrap();
        assert_eq!(p.as_bytes(), b"a/b/c");
        assert_eq!(p.depth(), 3);
        assert!(RelPath::new("a/../b").is_err());
        assert!(RelPath::new("").unwrap().is_root());
    }

    #[test]
    fn split_and_rebase() {
        let p = RelPath::new("a/b/c").unwrap();
        let (parent, name) = p.split_last().unwrap();
        assert_eq!(parent.as_bytes(), b"a/b");
        assert_eq!(name, "c");
        let from = RelPath::new("a").unwrap();
        let to = RelPath::new("x/y").unwrap();
        assert!(p.starts_with(&from));
        assert!(!RelPath::new("ab/c").unwrap().starts_with(&from));
        assert_eq!(p.rebase(&from, &to).as_bytes(), b"x/y/b/c");
        assert_eq!(from.rebase(&from, &to).as_bytes(), b"x/y");
    }

    #[test]
    fn selection_refuses_root_and_absolute_paths() {
        for root in ["", ".", "/", "./", "//", "./.", "/./", "."] {
            assert_eq!(
                RelPath::selection(root),
                Err(SelectionError::Root(root.to_string())),
                "{root:?}"
            );
        }
        for abs in ["/etc/passwd", "/a", "//a/b", "/./a"] {
            assert_eq!(
                RelPath::selection(abs),
                Err(SelectionError::Absolute(abs.to_string())),
                "{abs:?}"
            );
        }
        assert!(matches!(
            RelPath::selection("a/../b"),
            Err(SelectionError::Invalid { .. })
        ));
        assert!(matches!(
            RelPath::selection(b"a\0b"),
            Err(SelectionError::Invalid { .. })
        ));
        assert_eq!(RelPath::selection("./src/").unwrap().as_bytes(), b"src");
        assert_eq!(RelPath::selection(b"d\xff").unwrap().as_bytes(), b"d\xff");
        let msg = RelPath::selection(".").unwrap_err().to_string();
        assert!(msg.contains("project root") && msg.contains("{}"), "{msg}");
    }

    #[test]
    fn selection_in_json() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Req {
            #[serde(default, deserialize_with = "deserialize_selection")]
            paths: Vec<RelPath>,
        }
        let parse = |json: &str| serde_json::from_str::<Req>(json).map(|r| r.paths);
        assert!(parse("{}").unwrap().is_empty());
        assert!(parse(r#"{"paths":[]}"#).unwrap().is_empty());
        assert_eq!(parse(r#"{"paths":["a/b"]}"#).unwrap()[0].as_bytes(), b"a/b");
        assert_eq!(
            parse(r#"{"paths":[{"b64":"/w=="}]}"#).unwrap()[0].as_bytes(),
            b"\xff"
        );
        for bad in [
            r#"{"paths":[""]}"#,
            r#"{"paths":["."]}"#,
            r#"{"paths":["/"]}"#,
            r#"{"paths":["./"]}"#,
            r#"{"paths":["//"]}"#,
            r#"{"paths":["a", "."]}"#,
            r#"{"paths":[{"b64":""}]}"#,
            r#"{"paths":[{"b64":"Lg=="}]}"#,
            r#"{"paths":[{"b64":"Lw=="}]}"#,
            r#"{"paths":["/etc/passwd"]}"#,
            r#"{"paths":[{"b64":"L2V0Yy9wYXNzd2Q="}]}"#,
            r#"{"paths":[{"b64":"YQ==","x":1}]}"#,
            r#"{"paths":[{"b64":"YQ==","paths":[]}]}"#,
            r#"{"paths":["../x"]}"#,
            r#"{"paths":[null]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
        // Paths read back from the journal or a report may still be the root.
        let root: RelPath = serde_json::from_str(r#""""#).unwrap();
        assert!(root.is_root());
    }

    #[test]
    fn parent_and_ancestors() {
        let p = RelPath::new("a/b/c").unwrap();
        assert_eq!(p.parent(), Some(RelPath::new("a/b").unwrap()));
        assert_eq!(RelPath::new("a").unwrap().parent(), Some(RelPath::root()));
        assert_eq!(RelPath::root().parent(), None);
        let up: Vec<RelPath> = p.ancestors().collect();
        let want: Vec<RelPath> = ["a/b", "a", ""]
            .iter()
            .map(|s| RelPath::new(s).unwrap())
            .collect();
        assert_eq!(up, want);
        assert_eq!(
            RelPath::new("a").unwrap().ancestors().collect::<Vec<_>>(),
            vec![RelPath::root()]
        );
        assert_eq!(RelPath::root().ancestors().count(), 0);
    }

    #[test]
    fn names_are_bytes() {
        let name = OsStr::from_bytes(b"caf\xe9\nx");
        let p = RelPath::root().join(name).unwrap();
        assert_eq!(p.display(), "caf\\xe9\\x0ax");
        let json = serde_json::to_string(&p).unwrap();
        let back: RelPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert!(RelPath::root()
            .join(OsStr::from_bytes(&[b'a'; 256]))
            .is_err());
        assert!(RelPath::root()
            .join(OsStr::from_bytes(&[b'a'; 255]))
            .is_ok());
    }
}
