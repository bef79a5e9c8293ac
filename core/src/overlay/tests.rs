//! Deterministic tests of overlay internals that the FUSE-level suites only hit by chance.

use std::ffi::OsStr;

use super::{Req, ROOT_INO};
use crate::testing::{create, p, TestWorkspace};

/// The upper inode number of `a` is reused for a new file `b` after `a`'s upper entry went
/// away behind the kernel's back (as a commit does). Simulated deterministically by moving
/// `upper/a` to `upper/b` directly: `b` then has `a`'s inode number. The new entry must get
/// its own node, and its writes must be journaled under `b`, never under `a`.
#[test]
fn reused_upper_inode_number_gets_a_new_node() {
    let fx = TestWorkspace::new(&[]);
    let ov = fx.ov();
    let a = create(ov, "a", b"committed a\n");
    std::fs::rename(fx.upper("a"), fx.upper("b")).unwrap();
    let b = ov.lookup(ROOT_INO, OsStr::new("b")).unwrap().ino;
    assert_ne!(a, b, "the new file was attached to a's node");
    let opened = ov.open(&Req::root(), b, libc::O_WRONLY).unwrap();
    ov.write(opened.fh, 0, b"new b!").unwrap();
    ov.release(opened.fh).unwrap();
    let last = ov.journal().last_seq();
    let rec = crate::journal::Journal::read(&fx.ws().state_dir().join("journal"))
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
    let fx = TestWorkspace::new(&[]);
    let ov = fx.ov();
    let a = create(ov, "a", b"x");
    std::fs::hard_link(fx.upper("a"), fx.upper("b")).unwrap();
    assert_eq!(ov.lookup(ROOT_INO, OsStr::new("b")).unwrap().ino, a);
}
