//! Deterministic tests of overlay internals that the FUSE-level suites only hit by chance.

use std::ffi::OsStr;
use std::sync::Arc;

use super::{Ino, Overlay, Req, ROOT_INO};
use crate::relpath::RelPath;
use crate::state::StateRoot;
use crate::workspace::Workspace;

/// A project with `files` and an open workspace on it.
pub(crate) struct Fx {
    _project: tempfile::TempDir,
    _state: tempfile::TempDir,
    pub ws: Arc<Workspace>,
}

impl Fx {
    pub fn new(files: &[(&str, &str)]) -> Fx {
        let project = tempfile::tempdir().unwrap();
        for (p, c) in files {
            std::fs::write(project.path().join(p), c).unwrap();
        }
        let state = tempfile::tempdir().unwrap();
        let ws = Workspace::create(&StateRoot::new(state.path()), "t", project.path()).unwrap();
        Fx {
            _project: project,
            _state: state,
            ws,
        }
    }

    pub fn ov(&self) -> &Arc<Overlay> {
        self.ws.overlay()
    }

    pub fn host(&self, name: &str) -> std::path::PathBuf {
        self._project.path().join(name)
    }

    pub fn upper(&self, name: &str) -> std::path::PathBuf {
        self.ws.state_dir().join("upper").join(name)
    }
}

pub(crate) fn p(s: &str) -> RelPath {
    RelPath::new(s).unwrap()
}

/// Creates `name` (mode 0644) in the root with open `flags` and leaves it open.
pub(crate) fn create_open(ov: &Overlay, name: &str, flags: i32) -> (Ino, super::Opened) {
    let (attr, opened) = ov
        .create(&Req::root(), ROOT_INO, OsStr::new(name), 0o644, 0, flags)
        .unwrap();
    (attr.ino, opened)
}

/// Creates `name` in the root, writes `data`, closes it; returns its node id.
pub(crate) fn create(ov: &Overlay, name: &str, data: &[u8]) -> Ino {
    let (ino, opened) = create_open(ov, name, libc::O_WRONLY);
    ov.write(opened.fh, 0, data).unwrap();
    ov.release(opened.fh).unwrap();
    ino
}

/// The upper inode number of `a` is reused for a new file `b` after `a`'s upper entry went
/// away behind the kernel's back (as a commit does). Simulated deterministically by moving
/// `upper/a` to `upper/b` directly: `b` then has `a`'s inode number. The new entry must get
/// its own node, and its writes must be journaled under `b`, never under `a`.
#[test]
fn reused_upper_inode_number_gets_a_new_node() {
    let fx = Fx::new(&[]);
    let ov = fx.ov();
    let a = create(ov, "a", b"committed a\n");
    std::fs::rename(fx.upper("a"), fx.upper("b")).unwrap();
    let b = ov.lookup(ROOT_INO, OsStr::new("b")).unwrap().ino;
    assert_ne!(a, b, "the new file was attached to a's node");
    let opened = ov.open(&Req::root(), b, libc::O_WRONLY).unwrap();
    ov.write(opened.fh, 0, b"new b!").unwrap();
    ov.release(opened.fh).unwrap();
    let last = ov.journal().last_seq();
    let rec = crate::journal::Journal::read(&fx.ws.state_dir().join("journal"))
        .unwrap()
        .into_iter()
        .find(|r| r.seq == last)
        .unwrap();
    assert_eq!(
        rec.draft.path,
        p("b"),
        "b's close journaled under another path"
    );
}

/// A real hard link still maps to the node of its first name.
#[test]
fn hard_link_keeps_its_node() {
    let fx = Fx::new(&[]);
    let ov = fx.ov();
    let a = create(ov, "a", b"x");
    std::fs::hard_link(fx.upper("a"), fx.upper("b")).unwrap();
    assert_eq!(ov.lookup(ROOT_INO, OsStr::new("b")).unwrap().ino, a);
}
