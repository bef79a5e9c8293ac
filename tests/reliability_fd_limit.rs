//! mountd under a low fd limit (issue 12, defect 0): with both the soft and the hard
//! `RLIMIT_NOFILE` at 256, a project of 5,000 directories walks complete through the mount
//! (every path `find` sees natively, and nothing else), and `git status` inside the mount is
//! clean. Before the fd budget, every directory seen kept an fd open and an `EMFILE` made a
//! directory look absent: the walk came back short, without an error.

mod live;
mod prereq;

use std::path::Path;
use std::process::Command;

use live::{can_mount, Live};

const NOFILE: u64 = 256;
const TOP: usize = 50;
const SUB: usize = 100; // TOP * SUB = 5,000 directories below the top level

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        // No background gc: it would change the host tree while the test compares it.
        .args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Sorted relative paths under `dir`, as `find` lists them (errors fail the test).
fn find(dir: &Path) -> Vec<String> {
    let out = Command::new("find")
        .arg(dir)
        .args(["-mindepth", "1", "-printf", "%P\\n"])
        .output()
        .expect("running find");
    assert!(
        out.status.success(),
        "find {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut paths: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    paths.sort();
    paths
}

#[test]
fn five_thousand_directories_walk_complete_under_an_fd_limit_of_256() {
    if !can_mount("five_thousand_directories_walk_complete_under_an_fd_limit_of_256") {
        return;
    }
    let mut live = Live::new(&[]);
    live.stop();
    for t in 0..TOP {
        for s in 0..SUB {
            let d = live.project.join(format!("t{t:02}/s{s:03}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("f.txt"), format!("{t} {s}\n")).unwrap();
        }
    }
    git(&live.project, &["init", "-q"]);
    git(&live.project, &["add", "-A"]);
    git(&live.project, &["commit", "-q", "-m", "tree"]);
    let native = find(&live.project);
    let dirs = native
        .iter()
        .filter(|p| live.project.join(p).is_dir())
        .count();
    assert!(dirs >= TOP * SUB, "{dirs} directories natively");

    live.start_with_nofile(NOFILE);
    let log = live.log();
    assert!(
        log.contains(&format!(
            "soft={NOFILE} hard={NOFILE} dir_fd_budget={}",
            NOFILE / 2
        )),
        "mountd runs with the low limit:\n{log}"
    );
    let mnt = live.mount();
    for pass in ["cold", "warm"] {
        let seen = find(&mnt);
        if seen != native {
            let missing: Vec<_> = native
                .iter()
                .filter(|p| !seen.contains(p))
                .take(5)
                .collect();
            let extra: Vec<_> = seen
                .iter()
                .filter(|p| !native.contains(p))
                .take(5)
                .collect();
            panic!(
                "{pass} walk: {} paths through the mount, {} native; missing: {missing:?}, \
                 extra: {extra:?}\n{}",
                seen.len(),
                native.len(),
                live.log()
            );
        }
    }
    let status = git(&mnt, &["status", "--porcelain"]);
    assert!(
        status.stdout.is_empty(),
        "git status in the mount: {}",
        String::from_utf8_lossy(&status.stdout)
    );
    git(&mnt, &["fsck", "--no-progress", "--connectivity-only"]);
}
