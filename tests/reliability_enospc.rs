//! Disk full (issue 6): the daemon's state directory (journal and upper layer) lives on an
//! 8 MiB tmpfs. Proves that when it fills up, writes through the mount fail with ENOSPC (not
//! EIO, not a hang), the daemon stays up and keeps answering, the journal chain still verifies
//! and every upper file still matches its recorded hash, nothing stored before is lost (also
//! across a restart), and the workspace works again (write, status, commit) once space is
//! freed. Issue 12: every operation on a full disk is all or nothing (no half-applied change
//! the journal misses), a restart on a full disk opens the workspace, and the bare mountpoint
//! refuses writes. Needs root (tmpfs mount) and /dev/fuse. tmpfs reproduces the half-applied
//! operations: a rename or chmod needs no blocks there, the journal's next page does.

mod live;
mod prereq;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use live::{can_mount, Live};

/// A tmpfs mounted for the test's lifetime (lazily unmounted on drop).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount -t tmpfs failed");
        Tmpfs { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// Writes `n` bytes to `path` until done or an error; returns the error if any.
fn fill(path: &Path, n: usize) -> Option<std::io::Error> {
    let mut f = match std::fs::File::create(path) {
        Ok(f) => f,
        Err(e) => return Some(e),
    };
    let chunk = vec![0xA5u8; 256 * 1024];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        if let Err(e) = f.write_all(&chunk[..k]) {
            return Some(e);
        }
        left -= k;
    }
    f.sync_all().err()
}

fn verify_clean(live: &Live, ctx: &str) {
    let out = live.wsfs(["--json", "verify", "w"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{ctx}: verify: {e}: {out:?}\n{}", live.log()));
    assert_eq!(v["chain_ok"], true, "{ctx}: {v}");
    assert!(
        v["problems"].as_array().unwrap().is_empty(),
        "{ctx}: verify problems: {v}"
    );
}

#[test]
fn disk_full_gives_enospc_and_loses_nothing() {
    if !can_mount("disk_full_gives_enospc_and_loses_nothing") {
        return;
    }
    let fs = Tmpfs::new("8m");
    let state: PathBuf = fs.path().join("state");
    // Ballast on the same filesystem: what an administrator frees later.
    std::fs::write(fs.path().join("ballast"), vec![1u8; 1 << 20]).unwrap();
    let mut live = Live::new_with_state(&[("host.txt", "host\n")], state);
    let before_host = Live::snapshot(&live.project);
    let mp = live.mount();

    // Stored before the disk fills: several files, fsynced.
    let mut stored = Vec::new();
    for i in 0..20 {
        let p = mp.join(format!("kept{i}"));
        let data = format!("kept {i}\n").repeat(100 * (i + 1));
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(data.as_bytes()).unwrap();
        f.sync_all().unwrap();
        stored.push((p, data));
    }
    std::fs::write(mp.join("host.txt"), "changed before full\n").unwrap();

    // Fill the disk with one big file: the write fails with ENOSPC.
    let err = fill(&mp.join("big"), 64 << 20).expect("64 MiB fitted in an 8 MiB tmpfs?");
    assert_eq!(errno(&err), libc::ENOSPC, "big write failed with {err}");
    // Small writes and creates fail with ENOSPC too, none hangs or kills the daemon.
    let mut enospc = 0;
    for i in 0..50 {
        match fill(&mp.join(format!("small{i}")), 8192) {
            None => {}
            Some(e) => {
                assert_eq!(errno(&e), libc::ENOSPC, "small{i}: {e}");
                enospc += 1;
            }
        }
    }
    assert!(enospc > 0, "no small write hit ENOSPC on a full disk");
    match std::fs::create_dir(mp.join("newdir")) {
        Ok(()) => {}
        Err(e) => assert_eq!(errno(&e), libc::ENOSPC, "mkdir: {e}"),
    }
    assert!(
        live.daemon_alive(),
        "mountd died on ENOSPC:\n{}",
        live.log()
    );
    live.ok(["list"]);

    // Nothing stored is lost; the journal is consistent while full.
    for (p, data) in &stored {
        assert_eq!(&std::fs::read_to_string(p).unwrap(), data, "{p:?}");
    }
    assert_eq!(
        std::fs::read_to_string(mp.join("host.txt")).unwrap(),
        "changed before full\n"
    );
    // While full, the chain verifies; a file whose write failed may have content the journal
    // could not record (its close record did not fit): only those may be reported.
    let out = live.wsfs(["--json", "verify", "w"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["chain_ok"], true, "while full: {v}");
    for p in v["problems"].as_array().unwrap() {
        let p = p.as_str().unwrap();
        assert!(
            p.starts_with("big:") || p.starts_with("small"),
            "while full: problem with a file stored before: {p}"
        );
    }
    live.ok(["status", "w"]);

    // Freeing space from inside the workspace: removing the big file must be possible even
    // though every change appends to the journal.
    std::fs::remove_file(mp.join("big"))
        .unwrap_or_else(|e| panic!("cannot rm the big file on a full disk: {e}"));
    for i in 0..50 {
        let _ = std::fs::remove_file(mp.join(format!("small{i}")));
    }
    // And the administrator frees some more.
    std::fs::remove_file(fs.path().join("ballast")).unwrap();

    // The workspace works again.
    let p = mp.join("after.txt");
    let mut f = std::fs::File::create(&p).unwrap();
    f.write_all(&vec![b'z'; 1 << 20]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    verify_clean(&live, "after freeing space");
    let status = live.ok(["status", "w"]);
    assert!(status.contains("A  after.txt"), "{status}");
    assert!(status.contains("M  host.txt"), "{status}");
    assert_eq!(
        Live::snapshot(&live.project),
        before_host,
        "host changed without a commit"
    );

    // Across a restart too.
    assert!(live.stop().success(), "{}", live.log());
    live.start();
    for (p, data) in &stored {
        assert_eq!(
            &std::fs::read_to_string(p).unwrap(),
            data,
            "{p:?} after restart"
        );
    }
    verify_clean(&live, "after restart");
    live.ok(["commit", "w"]);
    assert_eq!(
        std::fs::read(live.project.join("after.txt")).unwrap().len(),
        1 << 20
    );
    assert_eq!(
        std::fs::read_to_string(live.project.join("kept3")).unwrap(),
        stored[3].1
    );
    assert_eq!(live.ok(["status", "w"]), "");
}

/// The journal itself cannot take another record (the upper layer has room, the journal's
/// filesystem has none): every operation fails cleanly with ENOSPC and leaves no partial line.
#[test]
fn journal_append_failure_leaves_chain_intact() {
    if !can_mount("journal_append_failure_leaves_chain_intact") {
        return;
    }
    let fs = Tmpfs::new("4m");
    let state: PathBuf = fs.path().join("state");
    // Freed later: enough for the discard record (it lists every path) and the journal's
    // space reserve to refill, which operations other than deletes need first.
    std::fs::write(fs.path().join("ballast"), vec![1u8; 1 << 20]).unwrap();
    let mut live = Live::new_with_state(&[("a", "a\n")], state);
    let mp = live.mount();
    // Many metadata operations: each is one journal record and almost no data.
    let mut failed = None;
    for i in 0..200_000 {
        if let Err(e) = std::fs::create_dir(mp.join(format!("d{i:06}-{}", "x".repeat(150)))) {
            failed = Some((i, e));
            break;
        }
    }
    let (n, e) = failed.expect("4 MiB never filled with mkdir records");
    assert_eq!(errno(&e), libc::ENOSPC, "mkdir #{n}: {e}");
    // A failed mkdir leaves nothing behind.
    let failed_name = mp.join(format!("d{n:06}-{}", "x".repeat(150)));
    assert!(
        !failed_name.exists(),
        "mkdir failed with ENOSPC but the directory exists"
    );
    assert!(live.daemon_alive(), "{}", live.log());
    verify_clean(&live, "journal full");
    // Restart on a full disk: the journal opens (no torn tail to cut, nothing lost).
    assert!(live.stop().success(), "{}", live.log());
    live.start();
    verify_clean(&live, "journal full, after restart");
    let status = live.json(["status", "w"]);
    assert_eq!(
        status.as_array().unwrap().len(),
        n,
        "mkdirs before the failure"
    );
    // Discarding needs a journal record too: on a full disk it fails cleanly, and works once
    // space is freed.
    let out = live.wsfs(["discard", "w"]);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("No space left on device"), "{err}");
        assert!(live.daemon_alive(), "{}", live.log());
        verify_clean(&live, "after the failed discard");
        std::fs::remove_file(fs.path().join("ballast")).unwrap();
        live.ok(["discard", "w"]);
    }
    assert_eq!(live.ok(["status", "w"]), "");
    // Discarded directories free no blocks: new changes (other than deletes) wait for space.
    // Once it returns, the workspace takes them again.
    let _ = std::fs::remove_file(fs.path().join("ballast"));
    std::fs::write(mp.join("after"), "ok").unwrap();
    verify_clean(&live, "after discard");
}

// ---- issue 12, defects 7 and 8: no half-applied operation, opening needs no space ----

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// What the mount shows at a path: kind, permission bits, size, content (files).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    kind: &'static str,
    mode: u32,
    size: u64,
    xattr: Option<Vec<u8>>,
}

fn seen(p: &Path) -> Option<Seen> {
    let m = std::fs::symlink_metadata(p).ok()?;
    let kind = if m.is_dir() {
        "dir"
    } else if m.file_type().is_symlink() {
        "symlink"
    } else {
        "file"
    };
    Some(Seen {
        kind,
        mode: m.mode() & 0o7777,
        size: if m.is_file() { m.len() } else { 0 },
        xattr: get_xattr(p, "user.k"),
    })
}

fn get_xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and buffer.
    let r = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| {
        buf.truncate(r as usize);
        buf
    })
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: valid C strings and buffer.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The operations the issue lists, each on its own target `i` (a file the workspace created,
/// `t/<op><i>`, or a new name `t/<op><i>.new`). Returns the paths it may change.
fn op_paths(mp: &Path, op: &str, i: usize) -> Vec<PathBuf> {
    let t = mp.join("t");
    vec![t.join(format!("{op}{i}")), t.join(format!("{op}{i}.new"))]
}

fn run_op(mp: &Path, op: &str, i: usize) -> std::io::Result<()> {
    let [a, b]: [PathBuf; 2] = op_paths(mp, op, i).try_into().unwrap();
    match op {
        "rename" => std::fs::rename(&a, &b),
        "chmod" => std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o600)),
        "truncate" => std::fs::OpenOptions::new()
            .write(true)
            .open(&a)
            .and_then(|f| f.set_len(10)),
        "create" => std::fs::File::create(&b).map(drop),
        "mkdir" => std::fs::create_dir(&b),
        "symlink" => std::os::unix::fs::symlink("target-of-the-link", &b),
        "link" => std::fs::hard_link(&a, &b),
        "unlink" => std::fs::remove_file(&a),
        "setxattr" => set_xattr(&a, "user.k", b"value"),
        _ => unreachable!(),
    }
}

const OPS: [&str; 9] = [
    "rename", "chmod", "truncate", "create", "mkdir", "symlink", "link", "unlink", "setxattr",
];

/// Runs `op` on target `i` and checks it either happened (reported success) or left its
/// paths exactly as they were (reported ENOSPC). Returns whether it succeeded.
fn op_is_all_or_nothing(mp: &Path, op: &str, i: usize) -> bool {
    let paths = op_paths(mp, op, i);
    let before: Vec<_> = paths.iter().map(|p| seen(p)).collect();
    match run_op(mp, op, i) {
        Ok(()) => {
            let after: Vec<_> = paths.iter().map(|p| seen(p)).collect();
            assert_ne!(before, after, "{op} {i} succeeded but changed nothing");
            true
        }
        Err(e) => {
            assert_eq!(errno(&e), libc::ENOSPC, "{op} {i}: {e}");
            let after: Vec<_> = paths.iter().map(|p| seen(p)).collect();
            assert_eq!(
                before, after,
                "{op} {i} failed with ENOSPC but changed the workspace"
            );
            // A name that failed to appear is not listed either.
            let listed: Vec<_> = std::fs::read_dir(mp.join("t"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            for (p, b) in paths.iter().zip(&before) {
                assert_eq!(
                    listed.contains(p),
                    b.is_some(),
                    "{op} {i}: listing of {p:?}"
                );
            }
            false
        }
    }
}

/// `wsfs status` says exactly what the mount shows: every path the view has differently
/// from the host is a change with that state, and every change is what the view shows.
fn assert_status_matches_view(live: &Live, mp: &Path, ctx: &str) {
    let status = live.json(["status", "w"]);
    let mut changes = BTreeMap::new();
    for c in status.as_array().unwrap() {
        changes.insert(
            c["path"].as_str().unwrap().to_string(),
            c["current"].clone(),
        );
    }
    for (path, cur) in &changes {
        let view = seen(&mp.join(path));
        let kind = cur["kind"].as_str().unwrap();
        match (kind, &view) {
            ("absent", None) => {}
            ("absent", Some(v)) => panic!("{ctx}: status says {path} absent, the mount has {v:?}"),
            (_, None) => panic!("{ctx}: status says {path} is a {kind}, the mount has nothing"),
            (k, Some(v)) => {
                assert_eq!(k, v.kind, "{ctx}: {path}: status {cur}, mount {v:?}");
                if k == "file" {
                    assert_eq!(
                        cur["mode"].as_u64().unwrap() as u32 & 0o7777,
                        v.mode,
                        "{ctx}: {path} mode"
                    );
                    assert_eq!(cur["size"].as_u64().unwrap(), v.size, "{ctx}: {path} size");
                }
            }
        }
    }
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(mp.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let key = r.to_str().unwrap().to_string();
            let view = seen(&mp.join(&r)).unwrap();
            if view.kind == "dir" {
                stack.push(r.clone());
            }
            if !changes.contains_key(&key) {
                let host = seen(&live.project.join(&r));
                let under_change = changes.keys().any(|c| key.starts_with(&format!("{c}/")));
                assert!(
                    under_change || host.as_ref().map(|h| (h.kind, h.mode, h.size)) == Some((view.kind, view.mode, view.size)),
                    "{ctx}: {key} differs from the host ({host:?} vs {view:?}) but status does not list it"
                );
            }
        }
    }
}

/// Defect 7: with the state disk full, each of the operations through the mount
/// either happens and is journaled, or fails with ENOSPC and changes nothing; `verify` is
/// clean and `status` matches the view after each kind of operation, without a restart.
#[test]
fn full_disk_operations_are_all_or_nothing() {
    if !can_mount("full_disk_operations_are_all_or_nothing") {
        return;
    }
    let fs = Tmpfs::new("8m");
    let state: PathBuf = fs.path().join("state");
    std::fs::write(fs.path().join("ballast"), vec![1u8; 1 << 20]).unwrap();
    let mut live = Live::new_with_state(&[("host.txt", "host\n")], state);
    let mp = live.mount();
    const TRIES: usize = 40;
    std::fs::create_dir(mp.join("t")).unwrap();
    for op in OPS {
        for i in 0..=TRIES {
            let a = &op_paths(&mp, op, i)[0];
            if !matches!(op, "create" | "mkdir" | "symlink") {
                std::fs::write(a, vec![b'x'; 5000]).unwrap();
                std::fs::set_permissions(a, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
    }
    verify_clean(&live, "before the disk filled");

    let err = fill(&mp.join("big"), 64 << 20).expect("64 MiB fitted in an 8 MiB tmpfs?");
    assert_eq!(errno(&err), libc::ENOSPC, "big write failed with {err}");
    for i in 0..50 {
        let _ = fill(&mp.join(format!("small{i}")), 4096);
    }
    // The disk is full. Each operation once more, then until one fails (at most TRIES):
    // whatever the outcome, all or nothing.
    let mut outcomes = BTreeMap::new();
    for op in OPS {
        let mut ok = 0;
        let mut failed = 0;
        for i in 0..TRIES {
            if op_is_all_or_nothing(&mp, op, i) {
                ok += 1;
            } else {
                failed += 1;
                break;
            }
        }
        outcomes.insert(op, (ok, failed));
        verify_clean(&live, &format!("full disk, after {op}"));
        assert_status_matches_view(&live, &mp, &format!("full disk, after {op}"));
    }
    // Use up the journal's room too (many small records), then every operation again: the
    // ones that free space still may work, the others fail cleanly.
    let mut n = 0;
    while std::fs::create_dir(mp.join(format!("t/fill{n:05}"))).is_ok() {
        n += 1;
        assert!(n < 100_000, "the journal never filled");
    }
    let mut when_journal_full = BTreeMap::new();
    for op in OPS {
        when_journal_full.insert(op, op_is_all_or_nothing(&mp, op, TRIES));
        verify_clean(&live, &format!("journal full, after {op}"));
        assert_status_matches_view(&live, &mp, &format!("journal full, after {op}"));
    }
    assert!(live.daemon_alive(), "{}", live.log());
    eprintln!(
        "on a full disk (ok, failed) per op: {outcomes:?}; {n} mkdirs used up the journal's \
         room; then succeeded: {when_journal_full:?}"
    );
    // The clean-failure path was taken: the first operation that frees nothing had no room
    // left. (Only the first is certain: whether the last mkdir stopped on the journal's room
    // or on the directory's own block depends on the tmpfs's state, and a rename that failed
    // cleanly may leave the next one-record operation its room; after the truncate, the blocks
    // it freed refill the reserve, so later ones may work. Every outcome was checked all or
    // nothing above.)
    assert!(!when_journal_full["rename"], "{when_journal_full:?}");

    // Space returns: the workspace works, and commits what status showed.
    std::fs::remove_file(mp.join("big")).unwrap();
    std::fs::remove_file(fs.path().join("ballast")).unwrap();
    std::fs::write(mp.join("after.txt"), "after\n").unwrap();
    verify_clean(&live, "after freeing space");
    assert_status_matches_view(&live, &mp, "after freeing space");
}

/// Defect 8: mountd restarted while the state disk is full (the journal's room used up, and
/// a file written after its last record, so recovery has something to record) still opens
/// the workspace: `list` shows it mounted, `status` answers; the recovery record is written
/// once space returns. And the bare mountpoint refuses writes whenever nothing is mounted.
#[test]
fn full_disk_at_start_still_opens_and_bare_mountpoint_refuses_writes() {
    if !can_mount("full_disk_at_start_still_opens_and_bare_mountpoint_refuses_writes") {
        return;
    }
    let fs = Tmpfs::new("4m");
    let state: PathBuf = fs.path().join("state");
    std::fs::write(fs.path().join("ballast"), vec![1u8; 256 << 10]).unwrap();
    let mut live = Live::new_with_state(&[("a", "a\n")], state);
    let mp = live.mount();
    std::fs::write(mp.join("open.txt"), vec![b'1'; 8192]).unwrap();
    std::fs::write(mp.join("kept.txt"), "kept\n").unwrap();
    // Fill the disk, then the journal's room.
    let _ = fill(&mp.join("big"), 64 << 20);
    for i in 0..50 {
        let _ = fill(&mp.join(format!("small{i}")), 4096);
    }
    let mut n = 0;
    while std::fs::create_dir(mp.join(format!("d{n:05}-{}", "x".repeat(100)))).is_ok() {
        n += 1;
        assert!(n < 100_000, "the journal never filled");
    }
    // Rewritten in place (no new blocks needed) and still open at the crash: the journal is
    // behind the upper layer, so the next open has a recovery record to write.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(mp.join("open.txt"))
        .unwrap();
    f.write_all(&[b'2'; 8192]).unwrap();
    f.sync_data().unwrap();
    live.kill9();
    drop(f);
    let _ = Command::new("umount").arg("-l").arg(&mp).status();

    // Nothing is mounted: the bare mountpoint refuses writes.
    let refused = std::fs::write(mp.join("stray.txt"), "lost\n");
    assert!(
        refused.is_err(),
        "a write into the unmounted mountpoint was accepted (it would be untracked)"
    );

    // Restart with the disk full: the workspace opens and is mounted again.
    live.start();
    let list = live.json(["list"]);
    let w = &list.as_array().unwrap()[0];
    assert_eq!(w["name"], "w", "{list}");
    assert!(
        w.get("problem").is_none_or(|p| p.is_null()),
        "workspace not opened: {list}\n{}",
        live.log()
    );
    assert_eq!(
        w["mountpoint"].as_str(),
        mp.to_str(),
        "not remounted: {list}\n{}",
        live.log()
    );
    live.ok(["status", "w"]);
    assert_eq!(
        std::fs::read(mp.join("open.txt")).unwrap(),
        vec![b'2'; 8192]
    );
    assert_eq!(
        std::fs::read_to_string(mp.join("kept.txt")).unwrap(),
        "kept\n"
    );

    // Space returns: the deferred recovery record is written, verify is clean, status right.
    std::fs::remove_file(fs.path().join("ballast")).unwrap();
    std::fs::remove_file(mp.join("big")).unwrap();
    verify_clean(&live, "after space returned");
    assert_status_matches_view(&live, &mp, "after space returned");

    // Unmounted on purpose: the bare mountpoint refuses writes too.
    live.ok(["unmount", "w"]);
    let refused = std::fs::write(mp.join("stray.txt"), "lost\n");
    assert!(
        refused.is_err(),
        "a write into the unmounted mountpoint was accepted"
    );
    live.ok([
        "mount",
        live.project.to_str().unwrap(),
        "--name",
        "w",
        "--mountpoint",
        mp.to_str().unwrap(),
    ]);
    assert!(!mp.join("stray.txt").exists());
}
