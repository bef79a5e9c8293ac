//! Data integrity under a random read/write/mmap/truncate/fallocate/punch-hole/copy_file_range
//! workload (issue 6): runs `fsx` (the `fsx` crate, `cargo install fsx`) against a file on a
//! real wsfs mount. fsx keeps its own model of the file and stops at the first byte that
//! differs, so a pass means zero mismatches. Afterwards `wsfs verify` must pass (the journal
//! recorded the file's final content) and the host project must be unchanged.
//!
//! Quick mode (CI): one fsx process, 5,000 operations. Long mode: `WSFS_FSX_OPS` operations in
//! total, split over `WSFS_FSX_JOBS` fsx processes running at once, each on its own file with
//! seed `WSFS_FSX_SEED + i`. With `WSFS_FSX_COMPARE=1` the same runs (same seeds) are made on
//! the native disk and on a fuse-overlayfs mount in the same test, for the figures in
//! docs/reliability.md. Without fsx the test prints a SKIP line and passes, except under `CI`,
//! where it fails.

mod live;
mod prereq;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one fsx campaign is: processes, operations each, first seed.
struct Campaign {
    fsx: PathBuf,
    config: PathBuf,
    jobs: u64,
    ops_per_job: u64,
    seed: u64,
}

impl Campaign {
    /// Runs `jobs` fsx processes at once in `dir` (files `fsx-<i>.dat`, artifacts under
    /// `artifacts`) and returns the wall time. Panics with fsx's output (and `context`) on
    /// any mismatch or failure.
    fn run(&self, dir: &Path, artifacts: &Path, context: &dyn Fn() -> String) -> Duration {
        std::fs::create_dir_all(artifacts).unwrap();
        let started = Instant::now();
        let children: Vec<_> = (0..self.jobs)
            .map(|i| {
                let seed = self.seed + i;
                let child = Command::new(&self.fsx)
                    .arg("-f")
                    .arg(&self.config)
                    .args(["-N", &self.ops_per_job.to_string(), "-S", &seed.to_string()])
                    .arg("-P")
                    .arg(artifacts)
                    .arg(format!("fsx-{i}.dat"))
                    .current_dir(dir)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (seed, child)
            })
            .collect();
        for (seed, child) in children {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && text.contains("All operations completed A-OK"),
                "fsx in {} found a mismatch or failed (seed {seed}, {} ops): {}\n{text}\n{}",
                dir.display(),
                self.ops_per_job,
                out.status,
                context()
            );
        }
        started.elapsed()
    }

    fn total_ops(&self) -> u64 {
        self.jobs * self.ops_per_job
    }
}

#[test]
fn fsx_finds_no_mismatch_on_a_wsfs_mount() {
    if !can_mount("fsx_finds_no_mismatch_on_a_wsfs_mount") {
        return;
    }
    let Some(fsx) = find_fsx() else {
        prereq::require(
            "fsx_finds_no_mismatch_on_a_wsfs_mount",
            "fsx (cargo install fsx)",
            false,
        );
        return;
    };
    let jobs = env_u64("WSFS_FSX_JOBS", 1).max(1);
    let live = Live::new(&[("keep", "host file\n")]);
    let campaign = Campaign {
        fsx,
        config: live.root.path().join("fsx.toml"),
        jobs,
        ops_per_job: env_u64("WSFS_FSX_OPS", 5_000).div_ceil(jobs),
        seed: env_u64("WSFS_FSX_SEED", 1),
    };
    std::fs::write(&campaign.config, CONFIG).unwrap();
    let before = Live::snapshot(&live.project);
    let mp = live.mount();
    let artifacts = live.root.path().join("fsx-artifacts");
    let wsfs_time = campaign.run(&mp, &artifacts.join("wsfs"), &|| {
        format!("mountd log:\n{}", live.log())
    });
    eprintln!(
        "FIGURES fsx on wsfs: {} operations ({} processes × {}), seeds {}.., 0 mismatches, {:.1} s",
        campaign.total_ops(),
        jobs,
        campaign.ops_per_job,
        campaign.seed,
        wsfs_time.as_secs_f64()
    );

    let v = live.json(["verify", "w"]);
    assert_eq!(v["chain_ok"], true, "{v}");
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v}");
    let status = live.json(["status", "w"]);
    let entries = status.as_array().unwrap();
    assert_eq!(
        entries.len() as u64,
        jobs,
        "one change per fsx file: {status}"
    );
    for entry in entries {
        let path = entry["path"].as_str().unwrap();
        assert!(path.starts_with("fsx-"), "{status}");
        assert_eq!(
            entry["current"]["size"].as_u64().unwrap(),
            std::fs::metadata(mp.join(path)).unwrap().len(),
            "{path}"
        );
    }
    assert_eq!(Live::snapshot(&live.project), before, "host changed");

    if std::env::var_os("WSFS_FSX_COMPARE").is_some() {
        compare_with_peers(&campaign, live.root.path(), wsfs_time);
    }
}

/// The same campaign on the native disk and on fuse-overlayfs, with the time ratios.
fn compare_with_peers(campaign: &Campaign, scratch: &Path, wsfs_time: Duration) {
    let native = scratch.join("native");
    std::fs::create_dir(&native).unwrap();
    let native_time = campaign.run(&native, &scratch.join("fsx-artifacts/native"), &String::new);
    let report = |name: &str, t: Duration| {
        eprintln!(
            "FIGURES fsx on {name}: {} operations, 0 mismatches, {:.1} s ({:.2}× native)",
            campaign.total_ops(),
            t.as_secs_f64(),
            t.as_secs_f64() / native_time.as_secs_f64()
        );
    };
    report("native", native_time);
    report("wsfs", wsfs_time);

    let dirs = ["lower", "upper", "work", "fovl"].map(|d| scratch.join(d));
    for d in &dirs {
        std::fs::create_dir(d).unwrap();
    }
    let mounted = Command::new("fuse-overlayfs")
        .arg("-o")
        .arg(format!(
            "lowerdir={},upperdir={},workdir={}",
            dirs[0].display(),
            dirs[1].display(),
            dirs[2].display()
        ))
        .arg(&dirs[3])
        .status();
    if !matches!(mounted, Ok(s) if s.success()) {
        eprintln!("fuse-overlayfs could not mount ({mounted:?}): no figure for it");
        return;
    }
    let fovl_time = campaign.run(&dirs[3], &scratch.join("fsx-artifacts/fovl"), &String::new);
    let _ = Command::new("fusermount3").arg("-u").arg(&dirs[3]).status();
    report("fuse-overlayfs", fovl_time);
}
