//! mountd's memory stays flat when workspaces come and go (issue 5: peak RSS; a long-running
//! daemon serves many mounts in turn). Each cycle mounts a tree, stats every entry through the
//! mount and removes the workspace; the resident size after the last cycle must stay close to
//! the one after the first. With glibc's default allocator settings each new mount's FUSE
//! request buffers came out of per-thread arenas and stayed resident (see
//! `mountd/src/memory.rs`): ≈ 20 MB more per cycle here before that fix.

mod live;
mod prereq;

use std::ffi::OsStr;

use live::{can_mount, Live};

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn walk(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        n += 1;
        if meta.is_dir() {
            n += walk(&e.path());
        }
    }
    n
}

#[test]
fn resident_memory_stays_flat_across_mount_cycles() {
    if !can_mount("resident_memory_stays_flat_across_mount_cycles") {
        return;
    }
    let live = Live::new(&[]);
    for d in 0..20 {
        let dir = live.project.join(format!("d{d}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f}")), format!("{d}/{f}\n")).unwrap();
        }
    }
    let pid = live.daemon_pid().expect("daemon running");
    let mut after = Vec::new();
    for cycle in 0..4 {
        let name = format!("m{cycle}");
        let mp = live.mount_as(&live.project, &name);
        assert_eq!(walk(&mp), 20 * 101);
        live.ok([OsStr::new("remove"), OsStr::new(&name)]);
        after.push(resident_kib(pid));
    }
    let growth = after[3].saturating_sub(after[0]);
    eprintln!("FIGURES mountd resident after each mount cycle (KiB): {after:?}");
    assert!(
        growth < 8 * 1024,
        "mountd grew by {growth} KiB over three more mount cycles: {after:?} KiB"
    );
}
