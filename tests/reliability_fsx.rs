//! Data integrity under a random read/write/mmap/truncate/fallocate/punch-hole/copy_file_range
//! workload (issue 6): runs `fsx` (the `fsx` crate, `cargo install fsx`) against a file on a
//! real wsfs mount. fsx keeps its own model of the file and stops at the first byte that
//! differs, so a pass means zero mismatches. Afterwards `wsfs verify` must pass (the journal
//! recorded the file's final content) and the host project must be unchanged.
//!
//! Quick mode: 5,000 operations (`WSFS_FSX_OPS`, seed `WSFS_FSX_SEED`). Without fsx the test
//! prints a SKIP line and passes, except under `CI`, where it fails. The long runs (1,000,000
//! operations) and the comparison with ext4 and fuse-overlayfs are in docs/reliability.md.

mod live;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use live::{can_mount, Live};

/// The fsx configuration (same as ../shared/fstests/fsx.toml: every operation Linux supports).
const CONFIG: &str = r#"
flen = 8388608
nomsyncafterwrite = false
nosizechecks = false
blockmode = false
[opsize]
max = 1048576
min = 0
align = 1
[weights]
close_open = 1
read = 10
write = 10
mapread = 10
mapwrite = 10
invalidate = 1
truncate = 2
fsync = 1
fdatasync = 1
posix_fallocate = 1
punch_hole = 1
sendfile = 1
posix_fadvise = 1
copy_file_range = 1
"#;

fn find_fsx() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FSX") {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("fsx"))
        .find(|p| p.is_file())
}

#[test]
fn fsx_finds_no_mismatch_on_a_wsfs_mount() {
    if !can_mount("fsx_finds_no_mismatch_on_a_wsfs_mount") {
        return;
    }
    let Some(fsx) = find_fsx() else {
        let why =
            "SKIP fsx_finds_no_mismatch_on_a_wsfs_mount: fsx is not installed (cargo install fsx)";
        if std::env::var_os("CI").is_some() {
            panic!("{why}, and CI must run it");
        }
        eprintln!("{why}");
        return;
    };
    let ops: u64 = std::env::var("WSFS_FSX_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let seed: u64 = std::env::var("WSFS_FSX_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let live = Live::new(&[("keep", "host file\n")]);
    let before = Live::snapshot(&live.project);
    let mp = live.mount();
    let cfg = live.root.path().join("fsx.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let artifacts = live.root.path().join("fsx-artifacts");
    std::fs::create_dir(&artifacts).unwrap();
    let started = Instant::now();
    let out = Command::new(&fsx)
        .arg("-f")
        .arg(&cfg)
        .args(["-N", &ops.to_string(), "-S", &seed.to_string()])
        .arg("-P")
        .arg(&artifacts)
        .arg("fsx.dat")
        .current_dir(&mp)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("All operations completed A-OK"),
        "fsx found a mismatch or failed (seed {seed}, {ops} ops): {}\n{text}\nmountd log:\n{}",
        out.status,
        live.log()
    );
    eprintln!(
        "FIGURES fsx on wsfs: {ops} operations, seed {seed}, 0 mismatches, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let v = live.json(["verify", "w"]);
    assert_eq!(v["chain_ok"], true, "{v}");
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v}");
    let status = live.json(["status", "w"]);
    assert_eq!(status[0]["path"], "fsx.dat", "{status}");
    assert_eq!(
        status[0]["current"]["size"].as_u64().unwrap(),
        std::fs::metadata(mp.join("fsx.dat")).unwrap().len()
    );
    assert_eq!(Live::snapshot(&live.project), before, "host changed");
}
