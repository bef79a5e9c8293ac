//! pjdfstest (the POSIX filesystem conformance suite, `cargo install pjdfstest`) against a live
//! wsfs mount served by a real `mountd`. No case may fail (device nodes included: they are made
//! in the overlay, the mount is `nodev`, and commit refuses them), and at least
//! [`MIN_PASSED`] must pass: every case ext4 passes on the CI machine but the one no FUSE
//! filesystem can run. Needs root, /dev/fuse and the `pjdfstest` binary; skipped with a
//! message elsewhere, and failing under `CI` instead.

mod live;
mod prereq;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use live::{can_mount, Live};

/// Cases that pass on this suite's configuration (pjdfstest 0.2.2, tests/pjdfstest.toml). ext4
/// on the CI machine passes 383 of 398 (15 skipped: `erofs_*` and `exdev_*` need a second,
/// read-only or other filesystem). On any FUSE mount pjdfstest also skips
/// `link::link_count_max`: glibc's `pathconf(_PC_LINK_MAX)` knows limits only by `statfs`
/// type and answers 127 ("unknown") for FUSE, which that case takes as a reason to skip.
const MIN_PASSED: usize = 382;

fn pjdfstest_bin() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let candidates = [
        std::env::var_os("PJDFSTEST").map(PathBuf::from),
        home.map(|h| h.join(".cargo/bin/pjdfstest")),
        Some(PathBuf::from("/usr/local/bin/pjdfstest")),
    ];
    candidates.into_iter().flatten().find(|p| p.exists())
}

#[test]
fn pjdfstest_passes_every_case() {
    if !can_mount("pjdfstest_passes_every_case") {
        return;
    }
    let Some(bin) = pjdfstest_bin() else {
        prereq::require(
            "pjdfstest_passes_except_documented_cases",
            "pjdfstest (cargo install pjdfstest)",
            false,
        );
        return;
    };
    let live = Live::new(&[]);
    // pjdfstest switches to other users: they must be able to reach the mount.
    std::fs::set_permissions(live.root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mp = live.mount();
    let dir = mp.join("pjd");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let run = |cases: &[String]| {
        let out = Command::new(&bin)
            .arg("-c")
            .arg(manifest.join("tests/pjdfstest.toml"))
            .arg("-p")
            .arg(&dir)
            .args(cases)
            .current_dir(&dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let text = run(&[]);
    let (mut ok, mut skipped, mut failed) = (0, 0, Vec::new());
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(result), None) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        if !name.contains("::") {
            continue;
        }
        match result {
            "ok" => ok += 1,
            "skipped" => skipped += 1,
            "FAILED" => failed.push(name.to_string()),
            _ => {}
        }
    }
    eprintln!(
        "pjdfstest on wsfs: {ok} ok, {} failed, {skipped} skipped",
        failed.len()
    );
    // A few cases race their own helper processes (e.g. open::etxtbsy execs a binary and
    // expects it to be running); on a loaded machine they can fail on ext4 too. A failure is
    // rerun alone twice and counts only if it fails every time; a pass on rerun is reported
    // loudly as flaky (and counted as passed).
    failed.retain(|case| {
        let reruns: Vec<bool> = (0..2)
            .map(|_| {
                run(std::slice::from_ref(case)).lines().any(|l| {
                    l.starts_with(case.as_str()) && l.split_whitespace().nth(1) == Some("ok")
                })
            })
            .collect();
        if reruns.iter().any(|&passed| passed) {
            eprintln!("FLAKY pjdfstest case {case}: failed in the full run, passed on rerun");
            ok += 1;
            false
        } else {
            true
        }
    });
    assert!(
        failed.is_empty(),
        "pjdfstest failures: {failed:#?}\n(full output above the summary)\n{}",
        text.lines()
            .filter(|l| failed.iter().any(|u| l.starts_with(u.as_str())))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        ok >= MIN_PASSED,
        "pjdfstest passed {ok} cases, fewer than {MIN_PASSED} (a case skipped that ran before?):\n{text}"
    );
}
