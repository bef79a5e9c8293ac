//! Host watcher setup cost: inotify (one watch per directory, what `fuse/watch.rs` does) against
//! fanotify (one `FAN_MARK_FILESYSTEM` mark), on a synthetic tree shaped like the Linux source
//! tree (≈ 78k files in ≈ 5k directories). Results and the reasoning are in docs/benchmarks.md,
//! "Host watcher: inotify vs fanotify".
//!
//! ```sh
//! cargo run --release -p mountd --example watch_setup -- [TREE] [--cold]
//! ```
//! `TREE` defaults to `/tmp/wsfs-watch-tree` and is generated when missing. `--cold` drops the
//! page/dentry/inode caches (root only) before each measurement. fanotify filesystem marks need
//! `CAP_SYS_ADMIN`; the example also probes them as `nobody` (when run as root) to show what an
//! unprivileged daemon gets.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use inotify::{Inotify, WatchMask};

/// Same mask as the watcher's.
const WATCH_MASK: WatchMask = WatchMask::MODIFY
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::ONLYDIR)
    .union(WatchMask::EXCL_UNLINK);

/// The fanotify equivalent (directory-entry events need `FAN_REPORT_DFID_NAME`).
const FAN_MASK: u64 = libc::FAN_MODIFY
    | libc::FAN_CLOSE_WRITE
    | libc::FAN_CREATE
    | libc::FAN_DELETE
    | libc::FAN_MOVED_FROM
    | libc::FAN_MOVED_TO
    | libc::FAN_ATTRIB
    | libc::FAN_ONDIR;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cold = args.iter().any(|a| a == "--cold");
    let tree = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/wsfs-watch-tree"));
    if !tree.exists() {
        let t = Instant::now();
        let (dirs, files) = generate(&tree)?;
        println!(
            "generated {}: {dirs} directories, {files} files in {:.1} s",
            tree.display(),
            t.elapsed().as_secs_f64()
        );
    }
    let (dirs, files) = count(&tree)?;
    println!("tree {}: {dirs} directories, {files} files", tree.display());

    for run in 0..2 {
        if cold {
            drop_caches();
        }
        inotify_setup(&tree, run)?;
    }
    for run in 0..2 {
        if cold {
            drop_caches();
        }
        fanotify_setup(&tree, run);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        unprivileged_probe(&tree);
    }
    Ok(())
}

/// 18 top directories × 16 × 16 (4,914 directories plus the root), 16 files of 0–2 KiB each.
fn generate(root: &Path) -> io::Result<(usize, usize)> {
    let (mut dirs, mut files) = (1, 0);
    let fill = |dir: &Path, files: &mut usize| -> io::Result<()> {
        for f in 0..16 {
            let len = (*files * 131) % 2048;
            fs::write(dir.join(format!("file{f}.c")), vec![b'x'; len])?;
            *files += 1;
        }
        Ok(())
    };
    fs::create_dir_all(root)?;
    fill(root, &mut files)?;
    for a in 0..18 {
        let da = root.join(format!("dir{a}"));
        fs::create_dir(&da)?;
        dirs += 1;
        fill(&da, &mut files)?;
        for b in 0..16 {
            let db = da.join(format!("sub{b}"));
            fs::create_dir(&db)?;
            dirs += 1;
            fill(&db, &mut files)?;
            for c in 0..16 {
                let dc = db.join(format!("leaf{c}"));
                fs::create_dir(&dc)?;
                dirs += 1;
                fill(&dc, &mut files)?;
            }
        }
    }
    Ok((dirs, files))
}

fn count(root: &Path) -> io::Result<(usize, usize)> {
    let (mut dirs, mut files) = (0, 0);
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        dirs += 1;
        for e in fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                files += 1;
            }
        }
    }
    Ok((dirs, files))
}

fn drop_caches() {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    if fs::write("/proc/sys/vm/drop_caches", "3").is_err() {
        eprintln!("--cold: cannot drop caches (not root?)");
    }
}

/// `(name, kB)` of a `/proc/meminfo` line.
fn meminfo(key: &str) -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kb() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// What the watcher does per directory: open it, watch it through `/proc/self/fd/N`, list it,
/// recurse into subdirectories; the watch descriptors map to paths.
fn inotify_setup(root: &Path, run: usize) -> io::Result<()> {
    let (slab0, rss0) = (meminfo("SUnreclaim:"), rss_kb());
    let t = Instant::now();
    let ino = Inotify::init()?;
    let mut wds = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let dir = fs::File::open(&d)?;
        let proc_path = format!("/proc/self/fd/{}", dir.as_raw_fd());
        let wd = ino.watches().add(&proc_path, WATCH_MASK)?;
        wds.insert(wd, d.clone());
        for e in fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            }
        }
    }
    let elapsed = t.elapsed();
    let (slab1, rss1) = (meminfo("SUnreclaim:"), rss_kb());
    let fdinfo = fs::read_to_string(format!("/proc/self/fdinfo/{}", ino.as_raw_fd()))?;
    // The kernel sizes fs.inotify.max_user_watches so that watches use 1% of low memory at
    // INOTIFY_WATCH_COST bytes each (a mark plus two inodes: a watch pins its inode): solving
    // for the cost gives this kernel's per-watch figure.
    let max: u64 = fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    if run == 0 && max > 0 && max < 1_048_576 {
        let cost = meminfo("MemTotal:") * 1024 / 100 / max;
        println!(
            "inotify: max_user_watches {max} => ≈ {cost} bytes per watch (kernel estimate); × {} watches ≈ {:.1} MiB",
            wds.len(),
            (cost * wds.len() as u64) as f64 / 1048576.0
        );
    }
    let kernel_watches = fdinfo
        .lines()
        .filter(|l| l.starts_with("inotify wd:"))
        .count();
    println!(
        "inotify  run {run}: {} watches (fdinfo: {kernel_watches}) in {:.0} ms; \
         SUnreclaim {:+} kB, process RSS {:+} kB",
        wds.len(),
        elapsed.as_secs_f64() * 1000.0,
        slab1 as i64 - slab0 as i64,
        rss1 as i64 - rss0 as i64,
    );
    Ok(())
}

fn fanotify_init() -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; the result is checked.
    let fd = unsafe {
        libc::fanotify_init(
            libc::FAN_CLASS_NOTIF
                | libc::FAN_CLOEXEC
                | libc::FAN_NONBLOCK
                | libc::FAN_REPORT_DFID_NAME,
            (libc::O_RDONLY | libc::O_CLOEXEC) as u32,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fanotify_mark(fd: &OwnedFd, path: &Path, kind: libc::c_uint) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `fd` is a live fanotify descriptor and `c` a valid NUL-terminated string.
    let r = unsafe {
        libc::fanotify_mark(
            fd.as_raw_fd(),
            libc::FAN_MARK_ADD | kind,
            FAN_MASK,
            libc::AT_FDCWD,
            c.as_ptr(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn fanotify_setup(root: &Path, run: usize) {
    let (slab0, rss0) = (meminfo("SUnreclaim:"), rss_kb());
    let t = Instant::now();
    let res = fanotify_init()
        .and_then(|fd| fanotify_mark(&fd, root, libc::FAN_MARK_FILESYSTEM).map(|()| fd));
    let elapsed = t.elapsed();
    let (slab1, rss1) = (meminfo("SUnreclaim:"), rss_kb());
    match res {
        Ok(fd) => {
            let fdinfo = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
                .unwrap_or_default();
            let marks = fdinfo
                .lines()
                .filter(|l| l.starts_with("fanotify "))
                .count();
            // One event, to show the mark works: a file created in the tree.
            let probe = root.join(".watch_setup_probe");
            let _ = fs::write(&probe, b"x");
            let _ = fs::remove_file(&probe);
            let mut buf = [0u8; 4096];
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            println!(
                "fanotify run {run}: 1 filesystem mark (fdinfo: {marks} line(s)) in {:.3} ms; \
                 SUnreclaim {:+} kB, process RSS {:+} kB; probe event read: {n} bytes",
                elapsed.as_secs_f64() * 1000.0,
                slab1 as i64 - slab0 as i64,
                rss1 as i64 - rss0 as i64,
            );
        }
        Err(e) => println!("fanotify run {run}: failed: {e}"),
    }
}

/// As `nobody` in a child process: can fanotify be initialised, and can it mark the filesystem?
fn unprivileged_probe(root: &Path) {
    // SAFETY: the child only makes async-signal-safe-enough syscalls and prints, then exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: plain integer arguments.
        let ok = unsafe {
            libc::setgroups(0, std::ptr::null()) == 0
                && libc::setgid(65534) == 0
                && libc::setuid(65534) == 0
        };
        if !ok {
            println!("unprivileged probe: cannot become nobody");
            std::process::exit(1);
        }
        match fanotify_init() {
            Err(e) => println!("unprivileged (nobody): fanotify_init(FAN_REPORT_DFID_NAME): {e}"),
            Ok(fd) => {
                println!("unprivileged (nobody): fanotify_init(FAN_REPORT_DFID_NAME): ok");
                for (name, kind) in [
                    ("FAN_MARK_FILESYSTEM", libc::FAN_MARK_FILESYSTEM),
                    ("FAN_MARK_MOUNT", libc::FAN_MARK_MOUNT),
                    (
                        "FAN_MARK_INODE (the tree's root only)",
                        libc::FAN_MARK_INODE,
                    ),
                ] {
                    match fanotify_mark(&fd, root, kind) {
                        Ok(()) => println!("unprivileged (nobody): {name}: ok"),
                        Err(e) => println!("unprivileged (nobody): {name}: {e}"),
                    }
                }
            }
        }
        std::process::exit(0);
    }
    let mut status = 0;
    // SAFETY: `status` is a valid int to write to.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}
