//! The core against real directories, without FUSE: merged view, copy-up, journal, status,
//! commit (incl. conflicts, renames, protected and unsafe paths), discard and restart.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use wsfs_core::api::{ChangeKind, CommitRequest};
use wsfs_core::journal::record::EntryState;
use wsfs_core::testing::*;

fn commit_all(f: &TestWorkspace) -> wsfs_core::api::CommitReport {
    f.ws()
        .commit(&CommitRequest::default(), &|_, _| {})
        .unwrap()
}

#[test]
fn lower_files_read_through_with_host_identity() {
    let f = TestWorkspace::new(&[("src/main.rs", "fn main() {}\n")]);
    assert_eq!(read(f.ov(), b"src/main.rs").unwrap(), b"fn main() {}\n");
    let a = stat(f.ov(), b"src/main.rs").unwrap();
    let m = std::fs::metadata(f.host("src/main.rs")).unwrap();
    assert_eq!(a.ino, m.ino(), "untouched lower files keep their st_ino");
    assert_eq!(a.size, m.len());
    assert_eq!(list(f.ov(), b""), vec![b"src".to_vec()]);
    assert!(f.ws().status().unwrap().is_empty());
}

#[test]
fn writes_land_in_the_overlay_until_commit() {
    let f = TestWorkspace::new(&[("a.txt", "old\n")]);
    let before = stat(f.ov(), b"a.txt").unwrap().ino;
    write(f.ov(), b"a.txt", b"new\n");
    write(f.ov(), b"b.txt", b"fresh\n");
    assert_eq!(
        stat(f.ov(), b"a.txt").unwrap().ino,
        before,
        "copy-up keeps the inode number"
    );
    assert_eq!(read(f.ov(), b"a.txt").unwrap(), b"new\n");
    assert_eq!(
        f.host_read("a.txt").unwrap(),
        b"old\n",
        "host untouched before commit"
    );
    assert!(f.host_read("b.txt").is_none());
    let st = f.ws().status().unwrap();
    let kinds: Vec<_> = st.iter().map(|c| (c.path.display(), c.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            ("a.txt".into(), ChangeKind::Modified),
            ("b.txt".into(), ChangeKind::Added)
        ]
    );
    let report = commit_all(&f);
    assert!(report.conflicts.is_empty());
    assert_eq!(f.host_read("a.txt").unwrap(), b"new\n");
    assert_eq!(f.host_read("b.txt").unwrap(), b"fresh\n");
    assert!(
        f.ws().status().unwrap().is_empty(),
        "committed changes leave the overlay"
    );
    assert_eq!(read(f.ov(), b"a.txt").unwrap(), b"new\n");
    // New files belong to the project's owner, not to the daemon.
    let owner = std::fs::metadata(f.project()).unwrap().uid();
    assert_eq!(std::fs::metadata(f.host("b.txt")).unwrap().uid(), owner);
}

#[test]
fn host_edit_after_base_is_a_conflict_and_nothing_is_applied() {
    let f = TestWorkspace::new(&[("a.txt", "v1\n"), ("b.txt", "b\n")]);
    write(f.ov(), b"a.txt", b"overlay\n");
    write(f.ov(), b"c.txt", b"new\n");
    std::fs::write(f.host("a.txt"), "host edit\n").unwrap();
    let r = commit_all(&f);
    assert_eq!(r.conflicts.len(), 1);
    assert_eq!(r.conflicts[0].path.display(), "a.txt");
    assert_eq!(r.conflicts[0].reason, "host_changed");
    assert_eq!(f.host_read("a.txt").unwrap(), b"host edit\n");
    assert!(
        f.host_read("c.txt").is_none(),
        "a refused commit applies nothing"
    );
    // Forced: applied, the host version saved.
    let r = f
        .ws()
        .commit(
            &CommitRequest {
                force: true,
                ..Default::default()
            },
            &|_, _| {},
        )
        .unwrap();
    assert!(r.conflicts.is_empty());
    assert_eq!(f.host_read("a.txt").unwrap(), b"overlay\n");
    let backup = r.backup_dir.expect("backup dir").join("a.txt");
    assert_eq!(std::fs::read(backup).unwrap(), b"host edit\n");
}

#[test]
fn deletes_and_whiteouts() {
    let f = TestWorkspace::new(&[("d/x", "x"), ("d/y", "y"), ("keep", "k")]);
    unlink(f.ov(), b"d/x").unwrap();
    assert_eq!(list(f.ov(), b"d"), vec![b"y".to_vec()]);
    assert!(stat(f.ov(), b"d/x").unwrap_err().is_errno(libc::ENOENT));
    assert!(rmdir(f.ov(), b"d").unwrap_err().is_errno(libc::ENOTEMPTY));
    unlink(f.ov(), b"d/y").unwrap();
    rmdir(f.ov(), b"d").unwrap();
    assert_eq!(list(f.ov(), b""), vec![b"keep".to_vec()]);
    // A directory made where the host had one is opaque: old children stay hidden.
    mkdir(f.ov(), b"d").unwrap();
    assert!(list(f.ov(), b"d").is_empty());
    assert!(f.host("d/x").exists());
    rmdir(f.ov(), b"d").unwrap();
    commit_all(&f);
    assert!(!f.host("d").exists());
    assert!(f.host("keep").exists());
}

#[test]
fn renames_are_committed_as_renames() {
    let f = TestWorkspace::new(&[
        ("a.txt", "content\n"),
        ("dir/one", "1"),
        ("dir/sub/two", "2"),
    ]);
    let host_ino = std::fs::metadata(f.host("a.txt")).unwrap().ino();
    rename(f.ov(), b"a.txt", b"b.txt", 0).unwrap();
    rename(f.ov(), b"dir", b"moved", 0).unwrap();
    assert_eq!(read(f.ov(), b"moved/sub/two").unwrap(), b"2");
    assert!(stat(f.ov(), b"dir").is_err());
    let st = f.ws().status().unwrap();
    let b = st.iter().find(|c| c.path.display() == "b.txt").unwrap();
    assert_eq!(b.kind, ChangeKind::Renamed);
    assert_eq!(b.from.as_ref().unwrap().display(), "a.txt");
    let r = commit_all(&f);
    assert!(r.conflicts.is_empty(), "{:?}", r.conflicts);
    assert_eq!(
        std::fs::metadata(f.host("b.txt")).unwrap().ino(),
        host_ino,
        "applied as a rename"
    );
    assert!(!f.host("a.txt").exists());
    assert_eq!(std::fs::read(f.host("moved/sub/two")).unwrap(), b"2");
    assert!(!f.host("dir").exists());
    assert!(f.ws().status().unwrap().is_empty());
}

#[test]
fn rename_flags() {
    let f = TestWorkspace::new(&[("a", "A"), ("b", "B")]);
    assert!(rename(f.ov(), b"a", b"b", 1)
        .unwrap_err()
        .is_errno(libc::EEXIST));
    rename(f.ov(), b"a", b"b", 2).unwrap();
    assert_eq!(read(f.ov(), b"a").unwrap(), b"B");
    assert_eq!(read(f.ov(), b"b").unwrap(), b"A");
    commit_all(&f);
    assert_eq!(f.host_read("a").unwrap(), b"B");
    assert_eq!(f.host_read("b").unwrap(), b"A");
}

#[test]
fn discard_restores_the_host_view() {
    let f = TestWorkspace::new(&[("a", "A"), ("d/e", "E")]);
    write(f.ov(), b"a", b"changed");
    write(f.ov(), b"new", b"n");
    unlink(f.ov(), b"d/e").unwrap();
    let r = f.ws().discard(&[]).unwrap();
    assert_eq!(r.discarded.len(), 3);
    assert_eq!(read(f.ov(), b"a").unwrap(), b"A");
    assert_eq!(read(f.ov(), b"d/e").unwrap(), b"E");
    assert!(stat(f.ov(), b"new").is_err());
    assert!(f.ws().status().unwrap().is_empty());
}

#[test]
fn state_survives_a_restart() {
    let mut f = TestWorkspace::new(&[("a", "A"), ("gone", "G")]);
    write(f.ov(), b"a", b"changed");
    unlink(f.ov(), b"gone").unwrap();
    mkdir(f.ov(), b"newdir").unwrap();
    symlink(f.ov(), b"newdir/link", b"../a").unwrap();
    let before = f.ws().status().unwrap();
    f.reopen();
    assert_eq!(f.ws().status().unwrap(), before);
    assert!(stat(f.ov(), b"gone").is_err(), "whiteouts survive restarts");
    let v = f.ws().verify().unwrap();
    assert!(v.chain_ok && v.problems.is_empty(), "{v:?}");
    assert!(v.records > 0);
    commit_all(&f);
    assert_eq!(
        std::fs::read_link(f.host("newdir/link"))
            .unwrap()
            .as_os_str(),
        "../a"
    );
}

#[test]
fn names_are_bytes() {
    let f = TestWorkspace::new(&[]);
    let odd: &[&[u8]] = &[b"caf\xe9", b"line\nbreak", b"-leading-dash", &[b'n'; 255]];
    for name in odd {
        write(f.ov(), name, b"x");
    }
    let long = std::ffi::OsStr::from_bytes(&[b'n'; 256]);
    let err = f.ov().mkdir(&REQ, 1, long, 0o755, 0).unwrap_err();
    assert!(err.is_errno(libc::ENAMETOOLONG));
    let st = f.ws().status().unwrap();
    assert_eq!(st.len(), odd.len());
    let json = serde_json::to_string(&st).unwrap();
    let back: Vec<wsfs_core::api::Change> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, st);
    commit_all(&f);
    for name in odd {
        let p = f.host(std::ffi::OsStr::from_bytes(name));
        assert_eq!(std::fs::read(p).unwrap(), b"x");
    }
}

#[test]
fn empty_and_sparse_files() {
    let f = TestWorkspace::new(&[]);
    write(f.ov(), b"empty", b"");
    let (parent, _) = parent_and_name(f.ov(), b"sparse");
    let (_, o) = f
        .ov()
        .create(
            &REQ,
            parent,
            std::ffi::OsStr::new("sparse"),
            0o644,
            0,
            libc::O_RDWR,
        )
        .unwrap();
    f.ov().write(o.fh, (2u64 << 30) - 1, b"z").unwrap();
    f.ov().release(o.fh).unwrap();
    assert_eq!(stat(f.ov(), b"sparse").unwrap().size, 2 << 30);
    commit_all(&f);
    assert_eq!(std::fs::metadata(f.host("empty")).unwrap().len(), 0);
    let m = std::fs::metadata(f.host("sparse")).unwrap();
    assert_eq!(m.len(), 2 << 30);
    assert!(
        m.blocks() < 1024,
        "sparse file stays sparse ({} blocks)",
        m.blocks()
    );
}

/// A host secret (a path a hide rule matches) keeps its directory entry and metadata in the
/// workspace, so git sees it unchanged, but cannot be read, changed, moved or removed; a secret
/// the workspace creates itself is readable there and never committed (issue 14).
#[test]
fn host_secrets_are_masked_and_workspace_secrets_are_never_committed() {
    let f = TestWorkspace::new(&[(".env", "SECRET=1"), ("keys/id_rsa", "k"), ("ok", "o")]);
    let ov = f.ov();
    let os = std::ffi::OsStr::new;
    let host = std::fs::metadata(f.host(".env")).unwrap();
    let a = stat(ov, b".env").expect("a host secret is listed");
    assert_eq!(
        (a.ino, a.size),
        (host.ino(), host.len()),
        "same identity as on the host"
    );
    assert!(list(ov, b"").contains(&b".env".to_vec()));
    let eacces = |r: wsfs_core::Result<()>| assert!(r.unwrap_err().is_errno(libc::EACCES));
    eacces(read(ov, b".env").map(drop));
    let i = ino(ov, b".env").unwrap();
    eacces(ov.open(&REQ, i, libc::O_WRONLY).map(drop));
    eacces(
        ov.create(
            &REQ,
            1,
            os(".env"),
            0o644,
            0,
            libc::O_WRONLY | libc::O_TRUNC,
        )
        .map(drop),
    );
    assert!(ov
        .create(&REQ, 1, os(".env"), 0o644, 0, libc::O_WRONLY | libc::O_EXCL)
        .unwrap_err()
        .is_errno(libc::EEXIST));
    eacces(unlink(ov, b".env"));
    eacces(rename(ov, b".env", b"leaked", 0));
    eacces(rename(ov, b"ok", b".env", 0));
    let touch = wsfs_core::overlay::SetAttr {
        mtime: Some(wsfs_core::overlay::SetTime::Now),
        ..Default::default()
    };
    eacces(ov.setattr(&REQ, i, &touch).map(drop));
    eacces(ov.getxattr(i, os("user.x")).map(drop));
    // A directory holding only secrets is not empty: rmdir must not delete them.
    assert!(rmdir(ov, b"keys").unwrap_err().is_errno(libc::ENOTEMPTY));
    // The workspace's own secret (`.env.*` is hidden; the host has no `.env.local`).
    write(ov, b".env.local", b"LOCAL=1");
    assert_eq!(read(ov, b".env.local").unwrap(), b"LOCAL=1");
    let status = f.ws().status().unwrap();
    assert_eq!(status.len(), 1, "{status:?}");
    assert!(status[0].secret, "{status:?}");
    let r = commit_all(&f);
    assert!(r.applied.is_empty(), "{r:?}");
    assert_eq!(r.secrets, vec![p(b".env.local")]);
    assert_eq!(f.host_read(".env.local"), None, "never committed");
    assert_eq!(f.host_read(".env").unwrap(), b"SECRET=1");
    assert!(f.ws().status().unwrap()[0].secret, "still pending");
    assert!(f.ws().verify().unwrap().problems.is_empty());
}

#[test]
fn protected_and_unsafe_paths_are_refused() {
    let f = TestWorkspace::new(&[(".git/config", "[core]\n"), ("inside", "i")]);
    write(f.ov(), b".git/config", b"[core]\nhooksPath=/tmp/evil\n");
    symlink(f.ov(), b"escape", b"../../etc/passwd").unwrap();
    symlink(f.ov(), b"abs", b"/etc/shadow").unwrap();
    symlink(f.ov(), b"fine", b"inside").unwrap();
    let r = commit_all(&f);
    let mut refused: Vec<_> = r
        .conflicts
        .iter()
        .map(|c| (c.path.display(), c.reason.clone()))
        .collect();
    refused.sort();
    assert_eq!(
        refused,
        vec![
            (".git/config".into(), "protected".into()),
            ("abs".into(), "unsafe_path".into()),
            ("escape".into(), "unsafe_path".into()),
        ]
    );
    assert_eq!(f.host_read(".git/config").unwrap(), b"[core]\n");
    assert!(!f.host("fine").exists());
    let r = f
        .ws()
        .commit(
            &CommitRequest {
                paths: vec![p(b".git/config"), p(b"fine")],
                allow_protected: true,
                ..Default::default()
            },
            &|_, _| {},
        )
        .unwrap();
    assert!(r.conflicts.is_empty());
    assert!(std::fs::read_to_string(f.host(".git/config"))
        .unwrap()
        .contains("hooksPath"));
}

#[test]
fn host_parent_swapped_for_a_symlink_is_refused() {
    let f = TestWorkspace::new(&[("sub/file", "s")]);
    write(f.ov(), b"sub/file", b"overlay");
    let outside = tempfile::tempdir().unwrap();
    std::fs::rename(f.host("sub"), f.host("sub.orig")).unwrap();
    std::os::unix::fs::symlink(outside.path(), f.host("sub")).unwrap();
    let r = f
        .ws()
        .commit(
            &CommitRequest {
                force: true,
                ..Default::default()
            },
            &|_, _| {},
        )
        .unwrap();
    assert_eq!(r.conflicts.len(), 1);
    assert_eq!(r.conflicts[0].reason, "unsafe_path");
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "nothing written outside"
    );
}

/// `mknod` of a character device (`/dev/null`'s 1:3) in the overlay: `(major << 8) | minor`,
/// the encoding FUSE hands over for small numbers.
fn mknod_null(
    ov: &wsfs_core::overlay::Overlay,
    name: &str,
) -> wsfs_core::Result<wsfs_core::overlay::Attr> {
    ov.mknod(
        &REQ,
        1,
        std::ffi::OsStr::new(name),
        libc::S_IFCHR | 0o666,
        0,
        (1 << 8) | 3,
    )
}

#[test]
fn device_nodes_live_in_the_overlay_and_are_never_committed() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP device_nodes_live_in_the_overlay_and_are_never_committed: needs root");
        return;
    }
    let mut f = TestWorkspace::new(&[("a.txt", "a\n")]);
    let a = mknod_null(f.ov(), "null").unwrap();
    assert_eq!(a.kind, wsfs_core::overlay::Kind::CharDevice);
    assert_eq!(a.rdev, (1 << 8) | 3);
    // Never opened by the overlay (through FUSE, the kernel refuses first: nodev).
    for flags in [libc::O_RDONLY, libc::O_WRONLY] {
        let e = f.ov().open(&REQ, a.ino, flags).err().unwrap();
        assert!(e.is_errno(libc::EACCES), "{e}");
    }
    f.ov()
        .mknod(
            &REQ,
            1,
            std::ffi::OsStr::new("fifo"),
            libc::S_IFIFO | 0o600,
            0,
            0,
        )
        .unwrap();
    write(f.ov(), b"a.txt", b"changed\n");
    // Status lists it as a change, with its number; the journal keeps it across a restart.
    let st = f.ws().status().unwrap();
    let dev = st.iter().find(|c| c.path.display() == "null").unwrap();
    assert_eq!(dev.kind, ChangeKind::Added);
    assert!(dev.current.is_device());
    assert_eq!(
        dev.current.device_label().as_deref(),
        Some("char device 1:3")
    );
    f.reopen();
    assert_eq!(
        f.ws().status().unwrap(),
        st,
        "the device number survives a restart"
    );
    let v = f.ws().verify().unwrap();
    assert!(v.chain_ok && v.problems.is_empty(), "{v:?}");
    // Commit refuses it whatever the flags, and then applies nothing at all.
    for (allow_protected, force) in [(false, false), (true, true)] {
        let r = f
            .ws()
            .commit(
                &CommitRequest {
                    allow_protected,
                    force,
                    ..Default::default()
                },
                &|_, _| {},
            )
            .unwrap();
        let refused: Vec<_> = r
            .conflicts
            .iter()
            .map(|c| (c.path.display(), c.reason.as_str()))
            .collect();
        assert_eq!(refused, vec![("null".to_string(), "device")], "{r:?}");
        assert!(r.conflicts[0].hint.contains("never committed"), "{r:?}");
        assert!(r.applied.is_empty());
    }
    // Named by path, too.
    let r = f
        .ws()
        .commit(
            &CommitRequest {
                paths: vec![p(b"null")],
                allow_protected: true,
                ..Default::default()
            },
            &|_, _| {},
        )
        .unwrap();
    assert_eq!(r.conflicts.len(), 1);
    assert!(std::fs::symlink_metadata(f.host("null")).is_err());
    assert_eq!(f.host_read("a.txt").unwrap(), b"a\n", "host untouched");
    // The other paths commit by name; the device stays pending until discarded.
    let r = f
        .ws()
        .commit(
            &CommitRequest {
                paths: vec![p(b"a.txt"), p(b"fifo")],
                ..Default::default()
            },
            &|_, _| {},
        )
        .unwrap();
    assert!(r.conflicts.is_empty(), "{r:?}");
    assert_eq!(f.host_read("a.txt").unwrap(), b"changed\n");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(f.host("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let left: Vec<_> = f
        .ws()
        .status()
        .unwrap()
        .iter()
        .map(|c| c.path.display())
        .collect();
    assert_eq!(left, vec!["null".to_string()]);
    let d = f.ws().discard(&[]).unwrap();
    assert_eq!(d.discarded, vec![p(b"null")]);
    assert!(f.ws().status().unwrap().is_empty());
    assert!(
        stat(f.ov(), b"null").is_err(),
        "discard removes it from the view"
    );
    assert!(std::fs::symlink_metadata(f.host("null")).is_err());
    // Made again after a discard, renamed into a new directory: still refused there.
    mknod_null(f.ov(), "null").unwrap();
    mkdir(f.ov(), b"d").unwrap();
    rename(f.ov(), b"null", b"d/null", 0).unwrap();
    let r = commit_all(&f);
    let refused: Vec<_> = r.conflicts.iter().map(|c| c.path.display()).collect();
    assert_eq!(refused, vec!["d/null".to_string()], "{r:?}");
    assert!(!f.host("d").exists(), "nothing applied");
    f.ws().discard(&[]).unwrap();
    assert!(f.ws().status().unwrap().is_empty());
}

#[test]
fn setuid_bits_are_not_committed_unless_asked() {
    let f = TestWorkspace::new(&[("tool", "#!/bin/sh\n")]);
    let i = ino(f.ov(), b"tool").unwrap();
    f.ov()
        .setattr(
            &REQ,
            i,
            &wsfs_core::overlay::SetAttr {
                mode: Some(0o4755),
                ..Default::default()
            },
        )
        .unwrap();
    commit_all(&f);
    assert_eq!(
        std::fs::metadata(f.host("tool")).unwrap().mode() & 0o7777,
        0o755
    );
}

#[test]
fn a_read_handle_sees_content_written_after_copy_up() {
    let f = TestWorkspace::new(&[("f", "old")]);
    let i = ino(f.ov(), b"f").unwrap();
    let rfh = f.ov().open(&REQ, i, libc::O_RDONLY).unwrap().fh;
    append(f.ov(), b"f", b"+new");
    assert_eq!(f.ov().read(rfh, 0, 100).unwrap(), b"old+new");
    f.ov().release(rfh).unwrap();
}

#[test]
fn created_entries_get_exactly_the_requested_mode() {
    // The daemon's umask must not mask a second time (the kernel already applied the caller's).
    let f = TestWorkspace::new(&[]);
    let old = unsafe_umask(0o077);
    let d = f
        .ov()
        .mkdir(&REQ, 1, std::ffi::OsStr::new("d"), 0o777, 0)
        .unwrap();
    let (a, o) = f
        .ov()
        .create(&REQ, 1, std::ffi::OsStr::new("f"), 0o666, 0, libc::O_WRONLY)
        .unwrap();
    f.ov().release(o.fh).unwrap();
    unsafe_umask(old);
    assert_eq!(d.perm, 0o777);
    assert_eq!(a.perm & 0o777, 0o666);
    assert_eq!(stat(f.ov(), b"f").unwrap().perm, 0o666);
}

fn unsafe_umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask has no memory-safety preconditions.
    unsafe { libc::umask(mask) }
}

#[test]
fn user_xattrs_are_kept_and_acls_are_unsupported() {
    let f = TestWorkspace::new(&[("x", "1")]);
    let i = ino(f.ov(), b"x").unwrap();
    f.ov()
        .setxattr(i, std::ffi::OsStr::new("user.k"), b"v", 0)
        .unwrap();
    assert_eq!(
        f.ov().getxattr(i, std::ffi::OsStr::new("user.k")).unwrap(),
        b"v"
    );
    assert!(f.host_read("x").is_some(), "host file untouched");
    let acl = f
        .ov()
        .setxattr(
            i,
            std::ffi::OsStr::new("system.posix_acl_access"),
            b"\x02",
            0,
        )
        .unwrap_err();
    assert!(acl.is_errno(libc::EOPNOTSUPP));
    let other = f
        .ov()
        .setxattr(i, std::ffi::OsStr::new("trusted.x"), b"v", 0)
        .unwrap_err();
    assert!(other.is_errno(libc::EPERM));
}

#[test]
fn renaming_over_a_hard_linked_file_keeps_its_other_name() {
    let f = TestWorkspace::new(&[]);
    write(f.ov(), b"src", b"source");
    write(f.ov(), b"dst", b"old");
    let (dir, _) = parent_and_name(f.ov(), b"dlink");
    let old = ino(f.ov(), b"dst").unwrap();
    f.ov()
        .link(old, dir, std::ffi::OsStr::from_bytes(b"dlink"))
        .unwrap();
    rename(f.ov(), b"src", b"dst", 0).unwrap();
    // The kernel keeps using the inode number it knows for dlink, without a new lookup.
    let attr = f.ov().getattr(old, None).unwrap();
    assert_eq!((attr.nlink, attr.size), (1, 3));
    assert_eq!(read(f.ov(), b"dst").unwrap(), b"source");
    assert_eq!(read(f.ov(), b"dlink").unwrap(), b"old");
    assert_eq!(ino(f.ov(), b"dlink").unwrap(), old);
    // Two names of one file: rename does nothing (POSIX).
    f.ov()
        .link(
            ino(f.ov(), b"dst").unwrap(),
            dir,
            std::ffi::OsStr::from_bytes(b"again"),
        )
        .unwrap();
    rename(f.ov(), b"dst", b"again", 0).unwrap();
    assert_eq!(read(f.ov(), b"dst").unwrap(), b"source");
    assert_eq!(read(f.ov(), b"again").unwrap(), b"source");
}

#[test]
fn a_write_through_one_hard_link_is_recorded_under_every_name() {
    let f = TestWorkspace::new(&[]);
    write(f.ov(), b"a", b"old1");
    let (dir, _) = parent_and_name(f.ov(), b"b");
    let a = ino(f.ov(), b"a").unwrap();
    f.ov()
        .link(a, dir, std::ffi::OsStr::from_bytes(b"b"))
        .unwrap();
    // Same size, new content: the other name's recorded hash must follow.
    write(f.ov(), b"a", b"new1");
    assert_eq!(read(f.ov(), b"b").unwrap(), b"new1");
    let v = f.ws().verify().unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    // A close that arrives after the rename and the unlink of its names (FUSE RELEASE is
    // asynchronous) records under the surviving name, and resurrects nothing.
    let fh = f.ov().open(&REQ, a, libc::O_WRONLY).unwrap().fh;
    f.ov().write(fh, 0, b"new2").unwrap();
    rename(f.ov(), b"b", b"c", 0).unwrap();
    unlink(f.ov(), b"a").unwrap();
    f.ov().release(fh).unwrap();
    let v = f.ws().verify().unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    let paths: Vec<_> = f
        .ws()
        .status()
        .unwrap()
        .iter()
        .map(|c| c.path.display())
        .collect();
    assert_eq!(paths, vec!["c".to_string()]);
    assert_eq!(read(f.ov(), b"c").unwrap(), b"new2");
}

/// Under load, an unlinked file's inode number is at once reused for a file another request
/// creates. The unlink must mark its own node gone, not the node the id map names for that
/// number by then (the new file's): the kernel holds the new file's id, and every request for
/// it would answer `ENOENT` from then on (issue 12: "existing files answer ENOENT under load").
/// The create runs inside the unlink's window, after its upper entry is removed.
#[test]
fn an_unlink_never_marks_the_file_that_reuses_its_inode_number_gone() {
    let f = TestWorkspace::new(&[("d/keep", "x")]);
    let ov = f.ov().clone();
    let d = ino(&ov, b"d").unwrap();
    let os = std::ffi::OsStr::new;
    let upper_ino = |name: &str| {
        let p = f.upper("d").join(name);
        std::fs::metadata(p).unwrap().ino()
    };
    // ext4 and tmpfs give a freed inode number to the next file created, but other tests
    // create files in parallel: try until the new file got the unlinked one's number.
    let mut provoked = 0;
    for n in 0..200 {
        let (tmp, new_name, slot) = (format!("tmp{n}"), format!("new{n}"), format!("slot{n}"));
        // Each `Opened` is dropped at once: it holds the file open (for passthrough), and an
        // inode number is free for reuse only once nothing holds the file.
        let fh = ov
            .create(&REQ, d, os(&tmp), 0o644, 0, libc::O_WRONLY)
            .unwrap()
            .1
            .fh;
        ov.release(fh).unwrap();
        let tmp_ino = upper_ino(&tmp);
        let created = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (ov2, created2, new2) = (ov.clone(), created.clone(), new_name.clone());
        wsfs_core::fault::run_at(wsfs_core::fault::Point::UnlinkAfterRemove, move || {
            let (a, o) = ov2
                .create(&REQ, d, os(&new2), 0o644, 0, libc::O_WRONLY)
                .unwrap();
            ov2.release(o.fh).unwrap();
            *created2.lock().unwrap() = Some(a.ino);
        });
        ov.unlink(d, os(&tmp)).unwrap();
        let new = created
            .lock()
            .unwrap()
            .expect("the hook ran inside the unlink");
        if upper_ino(&new_name) != tmp_ino {
            continue;
        }
        provoked += 1;
        // The id the create answered is still the file's id, under its name and after a
        // rename (an atomic save's next step).
        ov.getattr(new, None).expect("the new file's id answers");
        assert_eq!(ov.lookup(d, os(&new_name)).unwrap().ino, new);
        ov.rename(d, os(&new_name), d, os(&slot), 0).unwrap();
        ov.getattr(new, None)
            .expect("the new file's id answers after a rename");
        assert_eq!(ov.lookup(d, os(&slot)).unwrap().ino, new);
        if provoked == 5 {
            break;
        }
    }
    assert!(
        provoked > 0,
        "no create reused an unlinked file's inode number"
    );
    assert!(f.ws().verify().unwrap().problems.is_empty());
}

/// The journal's file, and its lines (each with its `\n`).
fn journal_lines(f: &TestWorkspace) -> (std::path::PathBuf, Vec<Vec<u8>>) {
    let path = f.ws().state_dir().join("journal");
    let data = std::fs::read(&path).unwrap();
    let lines = data
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    (path, lines)
}

fn assert_journal_refused(e: &wsfs_core::Error, needle: &str) {
    assert!(
        matches!(e, wsfs_core::Error::JournalCorrupt { .. }),
        "expected JournalCorrupt, got {e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("Run `wsfs verify`"), "{msg}");
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
}

/// A journal replaced on disk while the workspace is open (another file renamed over it, even
/// one with the very same bytes; or the file deleted) is caught before commit: the commit is
/// refused, names the swap and says to run `wsfs verify`, and the host is untouched; `verify`
/// reports it.
#[test]
fn a_journal_replaced_under_an_open_workspace_blocks_commit() {
    let f = TestWorkspace::new(&[("a", "A")]);
    write(f.ov(), b"a", b"changed");
    write(f.ov(), b"b", b"new");
    let (path, _) = journal_lines(&f);
    let copy = path.with_file_name("journal.swap");

    // Same bytes, another inode.
    std::fs::copy(&path, &copy).unwrap();
    std::fs::rename(&copy, &path).unwrap();
    let e = f
        .ws()
        .commit(&CommitRequest::default(), &|_, _| {})
        .unwrap_err();
    assert_journal_refused(&e, "replaced on disk while the workspace was open");
    assert_eq!(f.host_read("a").unwrap(), b"A");
    assert!(f.host_read("b").is_none());
    let v = f.ws().verify().unwrap();
    assert!(
        v.problems.iter().any(|p| p.contains("replaced on disk")),
        "{v:?}"
    );

    // Deleted outright.
    std::fs::remove_file(&path).unwrap();
    let e = f
        .ws()
        .commit(&CommitRequest::default(), &|_, _| {})
        .unwrap_err();
    assert_journal_refused(&e, "the file is gone");
    assert_eq!(f.host_read("a").unwrap(), b"A");
}

/// After a restart, a journal whose chain is broken (a record dropped from the middle, or
/// from just before the last line, so the last line's `prev` no longer matches) is refused
/// with the same message, not replayed.
#[test]
fn a_broken_chain_is_refused_at_open() {
    for drop_from_end in [3usize, 2] {
        let mut f = TestWorkspace::new(&[("a", "A")]);
        for i in 0..4 {
            write(f.ov(), format!("f{i}").as_bytes(), b"x");
        }
        let (path, mut lines) = journal_lines(&f);
        assert!(lines.len() >= 4, "{} lines", lines.len());
        f.close();
        lines.remove(lines.len() - drop_from_end);
        std::fs::write(&path, lines.concat()).unwrap();
        let e = match wsfs_core::workspace::Workspace::open(
            &wsfs_core::state::StateRoot::new(f.state()),
            "t",
        ) {
            Ok(_) => panic!("a journal with a broken chain was replayed"),
            Err(e) => e,
        };
        assert_journal_refused(&e, "chain broken");
        assert_eq!(f.host_read("a").unwrap(), b"A");
    }
}

/// A last close hashes the file outside any lock (RELEASE is asynchronous); when another
/// writer opens, writes and closes the file meanwhile and records the newer content, the
/// stale hash must not be recorded after it (found by the exactness suite's long mode:
/// `verify` reported a hard link's upper content differing from the journal's hash).
#[test]
fn a_stale_hash_from_a_slow_last_close_is_never_recorded_over_a_newer_one() {
    let f = TestWorkspace::new(&[]);
    let ov = f.ov().clone();
    let os = std::ffi::OsStr::new;
    let (a, o) = ov
        .create(&REQ, 1, os("f"), 0o644, 0, libc::O_WRONLY)
        .unwrap();
    ov.write(o.fh, 0, b"first").unwrap();
    let ov2 = ov.clone();
    wsfs_core::fault::run_at(wsfs_core::fault::Point::ReleaseAfterHash, move || {
        // The next writer, while the first close's hash of "first" waits to be recorded.
        let fh = ov2
            .open(&REQ, a.ino, libc::O_WRONLY | libc::O_TRUNC)
            .unwrap()
            .fh;
        ov2.write(fh, 0, b"second").unwrap();
        ov2.release(fh).unwrap();
    });
    ov.release(o.fh).unwrap();
    assert_eq!(read(&ov, b"f").unwrap(), b"second");
    let last = f.ws().log().unwrap().into_iter().last().unwrap();
    match last.draft.new {
        wsfs_core::journal::record::EntryState::File { hash, .. } => assert_eq!(
            hash,
            Some(wsfs_core::hash::ContentHash::of(b"second")),
            "the journal's last word is the newer content"
        ),
        other => panic!("last record: {other:?}"),
    }
    let report = f.ws().verify().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// No-open mode (issue 15) without FUSE: writes by inode copy the file up at the first write,
/// leave the content unsettled (the journal has no hash for it yet, and commit would call it
/// busy), and `status` settles it first: the recorded hash is the content's, `verify` is clean
/// and commit applies it. A file unlinked while the kernel may hold it open stays readable
/// and writable by inode.
#[test]
fn writes_by_inode_copy_up_and_settle_before_status() {
    let f = TestWorkspace::new(&[("a.txt", "old\n"), ("gone.txt", "x\n")]);
    let ov = f.ov();
    ov.set_handleless(true);
    let a = ino(ov, b"a.txt").unwrap();
    assert_eq!(ov.read_ino(a, 0, 100).unwrap(), b"old\n");
    assert_eq!(ov.write_ino(a, 0, b"NEW", false).unwrap(), 3);
    assert_eq!(ov.write_ino(a, 0, b"+tail\n", true).unwrap(), 6);
    assert_eq!(ov.read_ino(a, 0, 100).unwrap(), b"NEW\n+tail\n");
    assert_eq!(f.host_read("a.txt").unwrap(), b"old\n");
    let recorded = ov.changes().get(&p(b"a.txt")).unwrap().current;
    assert!(
        matches!(recorded, EntryState::File { hash: None, .. }),
        "unsettled until something needs it: {recorded:?}"
    );
    let st = f.ws().status().unwrap();
    assert_eq!(st.len(), 1);
    let want = wsfs_core::hash::ContentHash::of(b"NEW\n+tail\n");
    assert!(
        matches!(&st[0].current, EntryState::File { hash: Some(h), size: 10, .. } if *h == want),
        "{:?}",
        st[0].current
    );
    assert!(f.ws().verify().unwrap().problems.is_empty());

    // An upper file unlinked while (possibly) open: I/O by inode still reaches it.
    write(ov, b"gone.txt", b"upper\n");
    let g = ino(ov, b"gone.txt").unwrap();
    let (dir, name) = parent_and_name(ov, b"gone.txt");
    ov.unlink(dir, std::ffi::OsStr::from_bytes(&name)).unwrap();
    ov.write_ino(g, 6, b"more\n", false).unwrap();
    assert_eq!(ov.read_ino(g, 0, 100).unwrap(), b"upper\nmore\n");
    assert_eq!(ov.getattr(g, None).unwrap().size, 11);

    let report = commit_all(&f);
    assert!(report.conflicts.is_empty());
    assert_eq!(f.host_read("a.txt").unwrap(), b"NEW\n+tail\n");
    assert!(f.host_read("gone.txt").is_none());
    assert!(f.ws().status().unwrap().is_empty());
}
