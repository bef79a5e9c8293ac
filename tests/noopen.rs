//! The no-open mode (issue 15) through a real mount: `wsfs mount --open-mode no-open`, where
//! the kernel opens files without asking mountd. Every way of changing a file without a write
//! open reaching the daemon copies it up at that change, the host stays untouched until
//! commit, written content is hashed without a last close (when writes go idle, or before
//! status/verify/commit), and an open file outlives its last name.

mod live;
mod prereq;

use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use live::{can_mount, eventually, Live};

/// Mounts the project as workspace `w` in no-open mode; returns the mountpoint.
fn mount_no_open(live: &Live) -> PathBuf {
    let mp = live.root.path().join("mnt");
    let out = live.ok([
        OsStr::new("mount"),
        live.project.as_os_str(),
        OsStr::new("--name"),
        OsStr::new("w"),
        OsStr::new("--mountpoint"),
        mp.as_os_str(),
        OsStr::new("--open-mode"),
        OsStr::new("no-open"),
    ]);
    assert_eq!(out.trim(), mp.to_str().unwrap());
    mp
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn check(rc: libc::c_int, what: &str, p: &Path) {
    assert_eq!(
        rc,
        0,
        "{what} {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// Writes `data` at the start of `p` through a shared writable mapping.
fn mmap_write(p: &Path, data: &[u8]) {
    let f = OpenOptions::new().read(true).write(true).open(p).unwrap();
    let len = f.metadata().unwrap().len() as usize;
    assert!(len >= data.len());
    // SAFETY: a fresh shared mapping of `len` bytes of an fd open for reading and writing;
    // `data` fits in it; it is synced and unmapped before the fd is closed.
    unsafe {
        let m = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(m, libc::MAP_FAILED, "mmap {}", p.display());
        std::ptr::copy_nonoverlapping(data.as_ptr(), m.cast::<u8>(), data.len());
        check(libc::msync(m, len, libc::MS_SYNC), "msync", p);
        check(libc::munmap(m, len), "munmap", p);
    }
}

fn verify_clean(live: &Live) {
    let v = live.json(["verify", "w"]);
    assert_eq!(v["problems"], serde_json::json!([]), "verify: {v}");
}

/// Status as `path -> kind letter`-like pairs (the JSON `kind` of each change).
fn status(live: &Live) -> Vec<(String, String)> {
    let s = live.json(["status", "w", "--all"]);
    s.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn no_open_mode_copies_up_at_the_first_change_of_each_kind() {
    if !can_mount("no_open_mode_copies_up_at_the_first_change_of_each_kind") {
        return;
    }
    let names = [
        "truncate",
        "fallocate",
        "mmap",
        "utimes",
        "chmod",
        "xattr",
        "otrunc",
        "append",
        "cfr",
        "untouched",
    ];
    let files: Vec<(String, String)> = names
        .iter()
        .map(|n| (format!("{n}.txt"), format!("host content of {n}\n")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let mut live = Live::new(&refs);
    let mp = mount_no_open(&live);
    let m = |n: &str| mp.join(format!("{n}.txt"));
    // Warm the page cache of every file first: a copy-up must not serve stale pages after.
    for n in names {
        assert_eq!(
            fs::read_to_string(m(n)).unwrap(),
            format!("host content of {n}\n")
        );
    }

    // truncate(2) by path, and fallocate through an fd opened for writing.
    check(
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::truncate(cpath(&m("truncate")).as_ptr(), 4) },
        "truncate",
        &m("truncate"),
    );
    let f = OpenOptions::new().write(true).open(m("fallocate")).unwrap();
    // SAFETY: a valid fd; mode 0 extends the file to 4096 bytes.
    check(
        unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, 4096) },
        "fallocate",
        &m("fallocate"),
    );
    drop(f);
    mmap_write(&m("mmap"), b"MMAP");
    // SAFETY: a valid NUL-terminated path; null times mean "now".
    check(
        unsafe { libc::utime(cpath(&m("utimes")).as_ptr(), std::ptr::null()) },
        "utime",
        &m("utimes"),
    );
    fs::set_permissions(m("chmod"), fs::Permissions::from_mode(0o600)).unwrap();
    let name = CString::new("user.wsfs-test").unwrap();
    // SAFETY: valid NUL-terminated strings and a 1-byte value.
    check(
        unsafe {
            libc::setxattr(
                cpath(&m("xattr")).as_ptr(),
                name.as_ptr(),
                b"v".as_ptr().cast(),
                1,
                0,
            )
        },
        "setxattr",
        &m("xattr"),
    );
    // open(O_TRUNC) truncates (no atomic O_TRUNC in this mode: a SETATTR reaches the daemon).
    fs::write(m("otrunc"), "new\n").unwrap();
    OpenOptions::new()
        .append(true)
        .open(m("append"))
        .unwrap()
        .write_all(b"appended\n")
        .unwrap();
    {
        let src = File::open(m("untouched")).unwrap();
        let dst = OpenOptions::new().write(true).open(m("cfr")).unwrap();
        let mut off_in: i64 = 16;
        let mut off_out: i64 = 0;
        // SAFETY: valid fds and offsets; copies "unto" over the first 4 bytes.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                4,
                0,
            )
        };
        assert_eq!(n, 4, "copy_file_range: {}", std::io::Error::last_os_error());
    }

    // What the mount shows.
    let read = |n: &str| fs::read(m(n)).unwrap();
    assert_eq!(read("truncate"), b"host");
    assert_eq!(read("fallocate").len(), 4096);
    assert!(read("fallocate").starts_with(b"host content of fallocate\n"));
    assert_eq!(read("mmap"), b"MMAP content of mmap\n");
    assert_eq!(read("otrunc"), b"new\n");
    assert_eq!(read("append"), b"host content of append\nappended\n");
    assert_eq!(read("cfr"), b"unto content of cfr\n");
    assert_eq!(
        fs::metadata(m("chmod")).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The host is untouched; every changed file, and only those, is in the upper layer.
    for n in names {
        assert_eq!(
            fs::read_to_string(live.project.join(format!("{n}.txt"))).unwrap(),
            format!("host content of {n}\n"),
            "host {n} changed before commit"
        );
    }
    let upper: Vec<PathBuf> = names[..names.len() - 1]
        .iter()
        .map(|n| PathBuf::from(format!("{n}.txt")))
        .collect();
    let mut want = upper.clone();
    want.sort();
    assert_eq!(live.upper_files(), want);

    // The journal is exact without any close reaching the daemon: status settles first.
    let st = status(&live);
    for n in [
        "truncate",
        "fallocate",
        "mmap",
        "chmod",
        "otrunc",
        "append",
        "cfr",
    ] {
        assert!(
            st.contains(&(format!("{n}.txt"), "modified".to_string())),
            "{n} not modified in {st:?}"
        );
    }
    verify_clean(&live);

    // The mode is reported, kept across a daemon restart, and commit applies the content.
    let list = live.json(["list"]);
    assert_eq!(list[0]["open_mode"], "no-open", "{list}");
    assert!(live.stop().success());
    live.start();
    let list = live.json(["list"]);
    assert_eq!(list[0]["open_mode"], "no-open", "{list}");
    verify_clean(&live);
    live.ok(["commit", "w"]);
    assert_eq!(fs::read(live.project.join("otrunc.txt")).unwrap(), b"new\n");
    assert_eq!(
        fs::read(live.project.join("mmap.txt")).unwrap(),
        b"MMAP content of mmap\n"
    );
    assert_eq!(
        fs::read(live.project.join("cfr.txt")).unwrap(),
        b"unto content of cfr\n"
    );
    assert_eq!(status(&live), Vec::new());
    verify_clean(&live);
}

/// A file written and left alone is hashed by the settler thread, with no status, verify or
/// close to trigger it: the journal's last record of it carries the content's hash.
#[test]
fn no_open_mode_hashes_files_whose_writes_went_idle() {
    if !can_mount("no_open_mode_hashes_files_whose_writes_went_idle") {
        return;
    }
    let live = Live::new(&[("a.txt", "host\n")]);
    let mp = mount_no_open(&live);
    fs::write(mp.join("a.txt"), "changed in the workspace\n").unwrap();
    let want = blake3::hash(b"changed in the workspace\n")
        .to_hex()
        .to_string();
    let journal = live.state.join("workspaces/w/journal");
    let hashed = eventually(Duration::from_secs(10), || {
        fs::read_to_string(&journal)
            .unwrap()
            .lines()
            .rev()
            .find(|l| l.contains("\"a.txt\""))
            .is_some_and(|l| l.contains(&want))
    });
    assert!(
        hashed.is_some(),
        "no record of a.txt with its new hash {want}:\n{}",
        fs::read_to_string(&journal).unwrap()
    );
    verify_clean(&live);
}

/// An open file outlives its last name: written, read and stat'ed through the fd after the
/// unlink, though the kernel never told the daemon it was open. Nothing of it stays pending.
#[test]
fn no_open_mode_keeps_an_unlinked_open_file() {
    if !can_mount("no_open_mode_keeps_an_unlinked_open_file") {
        return;
    }
    let live = Live::new(&[("keep.txt", "host\n")]);
    let mp = mount_no_open(&live);
    let p = mp.join("scratch.bin");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&p)
        .unwrap();
    f.write_all(b"before unlink\n").unwrap();
    fs::remove_file(&p).unwrap();
    f.write_all(b"after unlink\n").unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut back = String::new();
    f.read_to_string(&mut back).unwrap();
    assert_eq!(back, "before unlink\nafter unlink\n");
    assert_eq!(f.metadata().unwrap().len(), back.len() as u64);
    drop(f);
    assert!(!p.exists());

    // A host file: read through the kept host file, written in a private copy.
    let k = mp.join("keep.txt");
    let mut f = OpenOptions::new().read(true).write(true).open(&k).unwrap();
    fs::remove_file(&k).unwrap();
    assert_eq!(f.metadata().unwrap().nlink(), 0);
    let mut back = String::new();
    f.read_to_string(&mut back).unwrap();
    assert_eq!(
        back,
        "host
"
    );
    f.write_all(
        b"more
",
    )
    .unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    back.clear();
    f.read_to_string(&mut back).unwrap();
    assert_eq!(
        back,
        "host
more
"
    );
    drop(f);
    assert_eq!(
        fs::read_to_string(live.project.join("keep.txt")).unwrap(),
        "host
"
    );
    assert_eq!(status(&live), vec![("keep.txt".into(), "deleted".into())]);
    verify_clean(&live);
}
