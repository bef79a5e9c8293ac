//! Tests of the FUSE adapter. The mount tests need root and /dev/fuse; elsewhere they print a
//! SKIP line and pass; under CI they fail (`tests/prereq`).

use std::ffi::CString;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wsfs::testing::{tree, TestWorkspace};

use super::adapter::{expected_errno, request_span, RateLimit};
use super::passthrough::IoModes;
use super::stale::prepare_mountpoint;
use super::stale::{mounts, parse_mountinfo};
use super::{mount, MountHandle};

// ----- pure unit tests (no mount) -----

#[test]
fn unexpected_errnos_warn_once_per_kind_per_interval_with_a_count() {
    let limit = RateLimit::new(Duration::from_secs(10));
    let t0 = Instant::now();
    assert_eq!(limit.admit("write", libc::EIO, t0), Some(0));
    for i in 1..=5 {
        assert_eq!(
            limit.admit("write", libc::EIO, t0 + Duration::from_secs(i)),
            None
        );
    }
    // Another op or another errno is another kind, with its own window.
    assert_eq!(limit.admit("read", libc::EIO, t0), Some(0));
    assert_eq!(limit.admit("write", libc::ENOSPC, t0), Some(0));
    // After the interval the next one is logged with how many were held back.
    assert_eq!(
        limit.admit("write", libc::EIO, t0 + Duration::from_secs(10)),
        Some(5)
    );
    assert_eq!(
        limit.admit("write", libc::EIO, t0 + Duration::from_secs(11)),
        None
    );
    assert_eq!(
        limit.admit("write", libc::EIO, t0 + Duration::from_secs(25)),
        Some(1)
    );
}

/// Counts this thread's allocations (for the span cost test); otherwise the system allocator.
struct CountingAlloc;

thread_local! {
    static ALLOCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialised thread-local without destructor, so touching it never allocates.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: CountingAlloc = CountingAlloc;

fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(|c| c.get());
    f();
    ALLOCS.with(|c| c.get()) - before
}

#[test]
fn request_spans_cost_no_allocation_unless_debug_is_on() {
    let info = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(info, || {
        // Warm the callsite's interest cache first.
        assert!(request_span("lookup", 1, 1, 1).is_disabled());
        let n = allocations(|| {
            for i in 0..1000 {
                let _s = request_span("lookup", i, i, 7);
            }
        });
        assert_eq!(n, 0, "allocations for 1000 disabled request spans");
    });
    let debug = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(debug, || {
        assert!(!request_span("lookup", 1, 1, 1).is_disabled());
        // The counter sees the subscriber's work once spans are on.
        let n = allocations(|| {
            for i in 0..10 {
                let _s = request_span("lookup", i, i, 7);
            }
        });
        assert!(n > 0, "enabled spans are recorded by the subscriber");
    });
}

#[test]
fn ordinary_answers_are_expected_and_failures_are_not() {
    for e in [
        libc::ENOENT,
        libc::EEXIST,
        libc::ENOTEMPTY,
        libc::ENODATA,
        libc::ERANGE,
        libc::EAGAIN,
        libc::EINTR,
    ] {
        assert!(expected_errno(e), "{e}");
    }
    for e in [
        libc::EIO,
        libc::ENOSPC,
        libc::EBADF,
        libc::EMFILE,
        libc::ENOMEM,
    ] {
        assert!(!expected_errno(e), "{e}");
    }
}

#[test]
fn mount_handle_can_be_shared() {
    fn shareable<T: Send + Sync>() {}
    shareable::<MountHandle>();
}

#[test]
fn mountinfo_lines_parse() {
    let text = "\
36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - ext4 /dev/root rw
600 30 0:77 / /tmp/x/mnt rw,nosuid,nodev,noatime - fuse wsfs rw,user_id=0,group_id=0
601 30 0:78 / /tmp/y rw shared:9 - fuse.wsfs wsfs rw
garbage line
";
    let m = parse_mountinfo(text);
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].mount_point, PathBuf::from("/mnt/a b"));
    assert_eq!(m[0].fstype, "ext4");
    assert!(!m[0].is_wsfs());
    assert_eq!(m[1].mount_point, PathBuf::from("/tmp/x/mnt"));
    assert_eq!(m[1].dev, libc::makedev(0, 77));
    assert_eq!(m[1].root, PathBuf::from("/"));
    assert_eq!(m[1].options, "rw,nosuid,nodev,noatime");
    assert!(m[1].is_wsfs());
    assert!(m[2].is_wsfs());
}

#[test]
fn watcher_masks_are_the_raw_inotify_masks() {
    // The switch to the `inotify` crate kept the masks the raw `inotify_add_watch` calls used.
    let change = libc::IN_MODIFY
        | libc::IN_CLOSE_WRITE
        | libc::IN_CREATE
        | libc::IN_DELETE
        | libc::IN_MOVED_FROM
        | libc::IN_MOVED_TO
        | libc::IN_ATTRIB;
    assert_eq!(super::watch::CHANGE_MASK.bits(), change);
    assert_eq!(
        super::watch::WATCH_MASK.bits(),
        change | libc::IN_ONLYDIR | libc::IN_EXCL_UNLINK
    );
}

#[test]
fn io_modes_fall_back_to_cached() {
    let io = IoModes::default();
    let fail = || Err(std::io::Error::from_raw_os_error(libc::EPERM));
    assert!(io.open(7, 1, true, fail).is_none());
    assert!(io.open(7, 2, false, fail).is_none());
    assert_eq!(io.open_inodes(), 1);
    assert_eq!(io.any_handle(7), Some(1));
    io.release(7, 1);
    assert_eq!(io.open_inodes(), 1);
    assert_eq!(io.any_handle(7), Some(2));
    io.release(7, 2);
    assert_eq!(io.open_inodes(), 0);
    assert_eq!(io.any_handle(7), None);
    io.release(7, 2); // unknown handle: ignored
}

// ----- mount tests -----

fn can_mount(test: &str) -> bool {
    // `WSFS_TEST_LOG=mountd=debug` shows the adapter's logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WSFS_TEST_LOG"))
        .with_test_writer()
        .try_init();
    prereq::can_mount(test)
}

/// The skip-or-fail rule every test binary shares (fails under CI).
#[path = "../../../tests/prereq/mod.rs"]
mod prereq;

/// The core's test workspace served by a real FUSE mount; derefs to the workspace fixture.
struct Env {
    // Field order = drop order: unmount before the directories go.
    handle: Option<MountHandle>,
    mnt: PathBuf,
    fx: TestWorkspace,
    _mnt_parent: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        // Unmount, then give the sealed mountpoint back so the temp dir can go.
        drop(self.handle.take());
        super::release_placeholder(&self.mnt);
    }
}

impl Deref for Env {
    type Target = TestWorkspace;

    fn deref(&self) -> &TestWorkspace {
        &self.fx
    }
}

/// The open mode these tests mount with: `WSFS_OPEN_MODE` (as mountd reads it), else `open`.
fn test_open_mode() -> wsfs::api::OpenMode {
    std::env::var("WSFS_OPEN_MODE")
        .ok()
        .map(|m| m.parse().expect("WSFS_OPEN_MODE is `open` or `no-open`"))
        .unwrap_or_default()
}

impl Env {
    fn new(files: &[(&str, &str)]) -> Env {
        let fx = TestWorkspace::new(files);
        let mnt_parent = tempfile::tempdir().unwrap();
        let mnt = mnt_parent.path().join("mnt");
        let handle = mount(fx.ov().clone(), fx.project(), &mnt, test_open_mode()).unwrap();
        Env {
            mnt: handle.mountpoint().to_path_buf(),
            handle: Some(handle),
            fx,
            _mnt_parent: mnt_parent,
        }
    }

    fn m(&self, p: &str) -> PathBuf {
        self.mnt.join(p)
    }

    fn unmount(&mut self) {
        self.handle.take().unwrap().unmount().unwrap();
        assert!(!is_mounted(&self.mnt), "still listed in mountinfo");
    }
}

fn is_mounted(mp: &Path) -> bool {
    mounts().unwrap().iter().any(|m| m.mount_point == mp)
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn smoke_basic_operations() {
    if !can_mount("smoke_basic_operations") {
        return;
    }
    let mut env = Env::new(&[
        ("README.md", "hello\n"),
        ("src/lib.rs", "pub fn f() {}\n"),
        ("src/old.rs", "old\n"),
        ("doomed.txt", "bye\n"),
    ]);
    let before = tree(env.project());

    // Read a lower file.
    assert_eq!(fs::read_to_string(env.m("README.md")).unwrap(), "hello\n");
    assert_eq!(fs::metadata(env.m("src/lib.rs")).unwrap().len(), 14);
    // Write a new file, then read it back.
    fs::write(env.m("new.txt"), "fresh").unwrap();
    assert_eq!(fs::read_to_string(env.m("new.txt")).unwrap(), "fresh");
    assert_eq!(fs::metadata(env.m("new.txt")).unwrap().len(), 5);
    // Modify a lower file (copy-up), append through O_APPEND.
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(env.m("README.md"))
        .unwrap();
    f.write_all(b"more\n").unwrap();
    drop(f);
    assert_eq!(
        fs::read_to_string(env.m("README.md")).unwrap(),
        "hello\nmore\n"
    );
    // mkdir, rename (file and into the new dir), unlink, symlink.
    fs::create_dir(env.m("dir")).unwrap();
    fs::rename(env.m("src/old.rs"), env.m("dir/moved.rs")).unwrap();
    assert_eq!(fs::read_to_string(env.m("dir/moved.rs")).unwrap(), "old\n");
    assert!(!env.m("src/old.rs").exists());
    fs::remove_file(env.m("doomed.txt")).unwrap();
    assert!(!env.m("doomed.txt").exists());
    std::os::unix::fs::symlink("README.md", env.m("link")).unwrap();
    assert_eq!(
        fs::read_link(env.m("link")).unwrap(),
        PathBuf::from("README.md")
    );
    assert_eq!(fs::read_to_string(env.m("link")).unwrap(), "hello\nmore\n");
    // readdir of the merged root.
    let mut names: Vec<String> = fs::read_dir(&env.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["README.md", "dir", "link", "new.txt", "src"]);
    let mut src: Vec<String> = fs::read_dir(env.m("src"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    src.sort();
    assert_eq!(src, ["lib.rs"]);
    // Truncate through O_TRUNC, seek and read.
    fs::write(env.m("src/lib.rs"), "x").unwrap();
    let mut f = fs::File::open(env.m("src/lib.rs")).unwrap();
    let mut s = String::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "x");
    // rmdir of an emptied directory, errors surface as errnos.
    fs::create_dir(env.m("empty")).unwrap();
    fs::remove_dir(env.m("empty")).unwrap();
    let e = fs::remove_dir(env.m("dir")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTEMPTY));
    let e = fs::read(env.m("nope")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    // statfs answers.
    let st = fs::metadata(&env.mnt).unwrap();
    assert!(st.is_dir());

    // The host never changed; the workspace journaled the changes.
    assert_eq!(tree(env.project()), before);
    let changes = env.ws().status().unwrap();
    assert!(
        changes.iter().any(|c| c.path.as_bytes() == b"new.txt"),
        "{changes:?}"
    );
    env.unmount();
    assert_eq!(tree(env.project()), before);
}

#[test]
fn reader_open_while_lower_file_is_copied_up() {
    if !can_mount("reader_open_while_lower_file_is_copied_up") {
        return;
    }
    let mut env = Env::new(&[("f.txt", "abc")]);
    // A reader holds the lower file open (cached mode) while a writer copies it up.
    let mut reader = fs::File::open(env.m("f.txt")).unwrap();
    let mut w = fs::OpenOptions::new()
        .append(true)
        .open(env.m("f.txt"))
        .unwrap();
    w.write_all(b"def").unwrap();
    drop(w);
    assert_eq!(fs::read_to_string(env.m("f.txt")).unwrap(), "abcdef");
    let mut s = String::new();
    reader.read_to_string(&mut s).unwrap();
    assert_eq!(s, "abcdef");
    drop(reader);
    // All closed: the upper file may now open in passthrough mode.
    let mut rw = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(env.m("f.txt"))
        .unwrap();
    rw.seek(SeekFrom::Start(6)).unwrap();
    rw.write_all(b"ghi").unwrap();
    let mut s = String::new();
    rw.seek(SeekFrom::Start(0)).unwrap();
    rw.read_to_string(&mut s).unwrap();
    assert_eq!(s, "abcdefghi");
    // A second handle of a passthrough inode reuses its backing file (opened write-only).
    let mut w = fs::OpenOptions::new()
        .append(true)
        .open(env.m("f.txt"))
        .unwrap();
    assert_eq!(fs::read_to_string(env.m("f.txt")).unwrap(), "abcdefghi");
    w.write_all(b"!").unwrap();
    drop(w);
    drop(rw);
    assert_eq!(fs::read_to_string(env.m("f.txt")).unwrap(), "abcdefghi!");
    assert_eq!(fs::metadata(env.m("f.txt")).unwrap().len(), 10);
    assert_eq!(fs::read_to_string(env.host("f.txt")).unwrap(), "abc");
    env.unmount();
}

#[test]
fn unlinked_open_file_keeps_working() {
    if !can_mount("unlinked_open_file_keeps_working") {
        return;
    }
    let mut env = Env::new(&[("lower.txt", "low")]);
    for name in ["created.txt", "lower.txt"] {
        let mut f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(env.m(name))
            .unwrap();
        fs::remove_file(env.m(name)).unwrap();
        assert_eq!(f.metadata().unwrap().nlink(), 0, "{name}");
        f.write_all(b"Hello").unwrap();
        let mut s = String::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_string(&mut s).unwrap();
        assert!(s.starts_with("Hello"), "{name}: {s}");
    }
    assert_eq!(fs::read_to_string(env.host("lower.txt")).unwrap(), "low");
    env.unmount();
}

#[test]
fn host_changes_reach_the_mount() {
    if !can_mount("host_changes_reach_the_mount") {
        return;
    }
    let mut env = Env::new(&[("a.txt", "one"), ("d/b.txt", "two")]);
    // Prime the caches: content, attributes, a negative entry, a directory listing.
    assert_eq!(fs::read_to_string(env.m("a.txt")).unwrap(), "one");
    assert!(fs::metadata(env.m("later.txt")).is_err());
    assert_eq!(fs::read_dir(env.m("d")).unwrap().count(), 1);
    // Give the watcher time to finish its initial scan.
    std::thread::sleep(Duration::from_millis(200));

    fs::write(env.host("a.txt"), "ONE!").unwrap();
    wait_for("modified content", || {
        fs::read_to_string(env.m("a.txt")).ok().as_deref() == Some("ONE!")
    });
    // Same size, new content: only the watcher's invalidation can reveal it.
    fs::write(env.host("a.txt"), "TWO!").unwrap();
    wait_for("rewritten content", || {
        fs::read_to_string(env.m("a.txt")).ok().as_deref() == Some("TWO!")
    });
    fs::write(env.host("later.txt"), "new").unwrap();
    wait_for("created file", || {
        fs::read_to_string(env.m("later.txt")).ok().as_deref() == Some("new")
    });
    // A new directory and a file created in it right away.
    fs::create_dir(env.host("e")).unwrap();
    fs::write(env.host("e/c.txt"), "three").unwrap();
    wait_for("file in new dir", || {
        fs::read_to_string(env.m("e/c.txt")).ok().as_deref() == Some("three")
    });
    fs::write(env.host("e/c2.txt"), "four").unwrap();
    wait_for("second file in new dir", || {
        fs::read_dir(env.m("e")).map(|d| d.count()).ok() == Some(2)
    });
    // A directory renamed on the host, then changed under its new name.
    fs::rename(env.host("e"), env.host("e2")).unwrap();
    wait_for("renamed dir", || {
        !env.m("e").exists() && env.m("e2/c.txt").exists()
    });
    fs::write(env.host("e2/c.txt"), "THREE").unwrap();
    wait_for("file in renamed dir", || {
        fs::read_to_string(env.m("e2/c.txt")).ok().as_deref() == Some("THREE")
    });
    fs::remove_file(env.host("d/b.txt")).unwrap();
    wait_for("deleted file", || !env.m("d/b.txt").exists());
    // A file the workspace changed is not affected by the host.
    fs::write(env.m("a.txt"), "mine").unwrap();
    fs::write(env.host("a.txt"), "theirs").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fs::read_to_string(env.m("a.txt")).unwrap(), "mine");
    env.unmount();
}

/// Once the watcher covers the project, `opendir` is refused and the kernel reads directories
/// without handles, keeping their listings: a directory of a few thousand entries (several
/// `readdir` calls) lists whole, follows changes from either side, and can be removed.
#[test]
fn large_directory_is_read_without_opendir() {
    if !can_mount("large_directory_is_read_without_opendir") {
        return;
    }
    let names: Vec<String> = (0..3000).map(|i| format!("big/file-{i:05}")).collect();
    let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
    let mut env = Env::new(&files);
    wait_for("the watcher's initial scan", || {
        env.handle.as_ref().unwrap().covers_host()
    });
    let count = || fs::read_dir(env.m("big")).unwrap().count();
    assert_eq!(count(), 3000);
    for i in 0..500 {
        fs::write(env.m(&format!("big/new-{i}")), "y").unwrap();
    }
    assert_eq!(count(), 3500);
    assert_eq!(count(), 3500, "second (cached) listing differs");
    fs::write(env.host("big/from-host"), "h").unwrap();
    wait_for("the host's new file in the listing", || count() == 3501);
    fs::remove_dir_all(env.m("big")).unwrap();
    assert!(!env.m("big").exists());
    assert!(
        env.host("big/file-00000").exists(),
        "the host project changed"
    );
    env.unmount();
}

#[test]
fn xattrs_roundtrip() {
    if !can_mount("xattrs_roundtrip") {
        return;
    }
    let mut env = Env::new(&[("x.txt", "x")]);
    let path = CString::new(env.m("x.txt").as_os_str().as_bytes()).unwrap();
    let name = c"user.wsfs-test";
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let rc = unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), b"val".as_ptr().cast(), 3, 0) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    // SAFETY: size query with a NULL buffer of length 0.
    let n = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    assert_eq!(n, 3);
    let mut small = [0u8; 2];
    // SAFETY: `small` is writable for its length.
    let n = unsafe {
        libc::lgetxattr(
            path.as_ptr(),
            name.as_ptr(),
            small.as_mut_ptr().cast(),
            small.len(),
        )
    };
    assert_eq!(n, -1);
    assert_eq!(
        std::io::Error::last_os_error().raw_os_error(),
        Some(libc::ERANGE)
    );
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(n > 0);
    let names: Vec<&[u8]> = buf[..n as usize]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .collect();
    assert!(names.contains(&&b"user.wsfs-test"[..]), "{names:?}");
    env.unmount();
}

#[test]
fn unmount_of_a_busy_mount_ends_the_session() {
    if !can_mount("unmount_of_a_busy_mount_ends_the_session") {
        return;
    }
    let mut env = Env::new(&[("f", "busy")]);
    let mut held = fs::File::open(env.m("f")).unwrap();
    let started = Instant::now();
    env.unmount();
    assert!(started.elapsed() < Duration::from_secs(10));
    // The connection was aborted: the open file is dead, not hanging.
    let mut s = String::new();
    assert!(held.read_to_string(&mut s).is_err());
}

#[test]
fn remount_after_unmount_and_prepare_twice() {
    if !can_mount("remount_after_unmount_and_prepare_twice") {
        return;
    }
    let mut env = Env::new(&[("f", "1")]);
    assert!(
        prepare_mountpoint(&env.mnt).is_err(),
        "a live mount must not be touched"
    );
    fs::write(env.m("g"), "2").unwrap();
    env.unmount();
    prepare_mountpoint(&env.mnt).unwrap();
    let h = mount(env.ov().clone(), env.project(), &env.mnt, test_open_mode()).unwrap();
    assert_eq!(fs::read_to_string(env.m("g")).unwrap(), "2");
    h.unmount().unwrap();
}

/// A dead daemon's mount: mounted on a /dev/fuse fd that is then closed.
fn make_stale_mount(mp: &Path) {
    let dev = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/fuse")
        .unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&dev);
    let data = CString::new(format!(
        "fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other"
    ))
    .unwrap();
    let target = CString::new(mp.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            c"wsfs".as_ptr(),
            target.as_ptr(),
            c"fuse".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    drop(dev); // the "daemon" dies
}

#[test]
fn stale_mount_is_detached() {
    if !can_mount("stale_mount_is_detached") {
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let mp = parent.path().canonicalize().unwrap().join("mnt");
    fs::create_dir(&mp).unwrap();
    make_stale_mount(&mp);
    assert!(is_mounted(&mp));
    assert_eq!(
        fs::metadata(&mp).unwrap_err().raw_os_error(),
        Some(libc::ENOTCONN)
    );
    prepare_mountpoint(&mp).unwrap();
    assert!(!is_mounted(&mp));
    assert!(fs::metadata(&mp).unwrap().is_dir());
    // And a missing mountpoint is created.
    let fresh = parent.path().join("a/b/mnt");
    prepare_mountpoint(&fresh).unwrap();
    assert!(fresh.is_dir());
    assert_eq!(fs::metadata(&fresh).unwrap().nlink(), 2);
}

#[test]
fn mountpoint_inside_the_project_is_not_watched() {
    if !can_mount("mountpoint_inside_the_project_is_not_watched") {
        return;
    }
    let fx = TestWorkspace::new(&[("a", "1")]);
    let mp = fx.host("mnt");
    let h = mount(fx.ov().clone(), fx.project(), &mp, test_open_mode()).unwrap();
    assert_eq!(fs::read_to_string(mp.join("a")).unwrap(), "1");
    std::thread::sleep(Duration::from_millis(200));
    fs::write(fx.host("a"), "2").unwrap();
    wait_for("host change", || {
        fs::read_to_string(mp.join("a")).ok().as_deref() == Some("2")
    });
    h.unmount().unwrap();
    super::release_placeholder(&mp);
}
