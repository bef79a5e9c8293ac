//! Disk full (issue 6): the daemon's state directory (journal and upper layer) lives on an
//! 8 MiB tmpfs. Proves that when it fills up, writes through the mount fail with ENOSPC (not
//! EIO, not a hang), the daemon stays up and keeps answering, the journal chain still verifies
//! and every upper file still matches its recorded hash, nothing stored before is lost (also
//! across a restart), and the workspace works again (write, status, commit) once space is
//! freed. Needs root (tmpfs mount) and /dev/fuse.

mod live;

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
    std::fs::write(fs.path().join("ballast"), vec![1u8; 256 << 10]).unwrap();
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
    std::fs::write(mp.join("after"), "ok").unwrap();
    verify_clean(&live, "after discard");
}
