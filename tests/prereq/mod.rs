//! The one rule for tests that need something from the machine (root, `/dev/fuse`, a Docker
//! daemon, an installed tool): outside CI such a test prints a loud `SKIP` line and returns;
//! under CI (`CI` set, as `.ci/run` does) a missing prerequisite fails the test, so nothing
//! passes there without running. Included by every test binary that has such a test
//! (`mod prereq;` in `tests/`, `#[path]` from `mountd`'s unit tests).

use std::io::Write;

/// True when `present`; otherwise fails under CI, or prints `SKIP test: needs …` and returns
/// false so the test can return.
pub fn require(test: &str, needs: &str, present: bool) -> bool {
    if present {
        return true;
    }
    let why = format!("SKIP {test}: needs {needs}");
    if std::env::var_os("CI").is_some() {
        panic!("{why}, and CI must run it");
    }
    // Straight to fd 2: the test harness does not capture it.
    let _ = writeln!(std::io::stderr(), "{why}");
    false
}

/// Root and `/dev/fuse`, for tests that mount.
#[allow(
    dead_code,
    reason = "not every test binary that includes this module mounts"
)]
pub fn can_mount(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let fuse = std::path::Path::new("/dev/fuse").exists();
    require(
        test,
        &format!("root and /dev/fuse (root={root}, /dev/fuse={fuse})"),
        root && fuse,
    )
}
