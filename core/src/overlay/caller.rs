//! Attribution: which process a change came from.
//!
//! The FUSE adapter enters a [`Scope`] with the request's pid (the calling thread's id) for
//! the length of each request: one thread-local store, nothing else on the hot path. Only
//! when a record is appended (or a writable file is opened or closed, whose content record
//! comes later, at the asynchronous RELEASE) is the pid resolved into a [`Writer`]: thread
//! group id, name and container id.
//!
//! Resolutions are cached per thread id, daemon-wide, in at most [`CAPACITY`] entries. Each
//! entry keeps `/proc/TID/comm` open: a process's name is read fresh through it at every use
//! (one `pread`, so a name set by `exec` or `prctl` shows at once), and once that process is
//! gone the read fails with `ESRCH`, so a reused pid is never taken for the old process. The
//! thread group id and the container id (from `/proc/TID/cgroup`) are read once, on a miss.

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Mutex, OnceLock};

use crate::journal::record::Writer;

/// Cached resolutions at most (each holds one fd).
pub const CAPACITY: usize = 128;

thread_local! {
    /// Pid of the FUSE request this thread serves (0: none).
    static CURRENT: Cell<u32> = const { Cell::new(0) };
}

/// While alive, records made on this thread are attributed to `pid` (see [`Scope::enter`]).
#[must_use = "the scope ends when dropped"]
pub struct Scope {
    prev: u32,
}

impl Scope {
    /// Attributes what this thread records until the scope drops to the process `pid` (the
    /// FUSE request's pid; 0 = the kernel itself, no process).
    pub fn enter(pid: u32) -> Scope {
        Scope {
            prev: CURRENT.replace(pid),
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.set(self.prev);
    }
}

/// The pid of the request this thread serves, 0 when none.
pub fn current_pid() -> u32 {
    CURRENT.get()
}

/// The writer of the request this thread serves, `None` outside a request.
pub fn current() -> Option<Writer> {
    writer_of(current_pid())
}

/// One cached resolution.
struct Entry {
    /// `/proc/TID/comm`, open: fresh names, and `ESRCH` once the thread is gone.
    comm: File,
    /// Thread group id (the process id).
    pid: u32,
    container: Option<String>,
}

fn cache() -> &'static Mutex<HashMap<u32, Entry>> {
    static CACHE: OnceLock<Mutex<HashMap<u32, Entry>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The process behind thread id `tid` (a FUSE request's pid), `None` for 0 or a thread that
/// is gone.
pub fn writer_of(tid: u32) -> Option<Writer> {
    if tid == 0 {
        return None;
    }
    let mut map = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = map.get(&tid) {
        match read_comm(&e.comm) {
            Some(comm) => {
                return Some(Writer {
                    pid: e.pid,
                    comm,
                    container: e.container.clone(),
                })
            }
            None => {
                map.remove(&tid);
            }
        }
    }
    drop(map);
    let (entry, comm) = resolve(tid)?;
    let writer = Writer {
        pid: entry.pid,
        comm,
        container: entry.container.clone(),
    };
    let mut map = cache().lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= CAPACITY {
        // Drop the entries of threads that are gone; if all are alive, start over.
        map.retain(|_, e| read_comm(&e.comm).is_some());
        if map.len() >= CAPACITY {
            map.clear();
        }
    }
    map.insert(tid, entry);
    Some(writer)
}

/// Reads a thread's name through its open `comm` file; `None` once the thread is gone.
fn read_comm(f: &File) -> Option<String> {
    let mut buf = [0u8; 64];
    let n = f.read_at(&mut buf, 0).ok()?;
    let name = buf[..n].strip_suffix(b"\n").unwrap_or(&buf[..n]);
    Some(String::from_utf8_lossy(name).into_owned())
}

/// Resolves `tid` from `/proc`: its `comm` opened first, so the reads after it are proved to
/// be of the same thread by reading `comm` again at the end.
fn resolve(tid: u32) -> Option<(Entry, String)> {
    let dir = format!("/proc/{tid}");
    let comm = File::open(format!("{dir}/comm")).ok()?;
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let pid = status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(tid);
    let container = std::fs::read_to_string(format!("{dir}/cgroup"))
        .ok()
        .and_then(|c| container_id(&c));
    let name = read_comm(&comm)?;
    Some((
        Entry {
            comm,
            pid,
            container,
        },
        name,
    ))
}

/// The Docker container id in a `/proc/PID/cgroup` text: a path segment
/// `docker-<64 hex>.scope` (systemd cgroup driver) or `docker/<64 hex>` (cgroupfs driver);
/// the innermost when containers nest.
pub fn container_id(cgroup: &str) -> Option<String> {
    let mut found = None;
    for line in cgroup.lines() {
        let Some(path) = line.splitn(3, ':').nth(2) else {
            continue;
        };
        let mut prev = "";
        for seg in path.split('/') {
            let id = match seg.strip_prefix("docker-") {
                Some(rest) => rest.strip_suffix(".scope"),
                None => (prev == "docker").then_some(seg),
            };
            if let Some(id) = id.filter(|id| is_hex64(id)) {
                found = Some(id.to_string());
            }
            prev = seg;
        }
    }
    found
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c3b2a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b";

    #[test]
    fn container_ids_of_both_cgroup_drivers() {
        assert_eq!(
            container_id(&format!("0::/system.slice/docker-{ID}.scope\n")).as_deref(),
            Some(ID)
        );
        assert_eq!(
            container_id(&format!("0::/docker/{ID}\n")).as_deref(),
            Some(ID)
        );
        // cgroup v1: one line per hierarchy.
        assert_eq!(
            container_id(&format!(
                "12:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n"
            ))
            .as_deref(),
            Some(ID)
        );
        assert_eq!(
            container_id("0::/user.slice/user-0.slice/session-1.scope\n"),
            None
        );
        assert_eq!(container_id("0::/docker/abc\n"), None);
        assert_eq!(container_id(&format!("0::/docker-{ID}\n")), None);
    }

    #[test]
    fn own_thread_resolves_and_gone_ones_do_not() {
        let me = std::process::id();
        // "PID/task/TID"
        let link = std::fs::read_link("/proc/thread-self").unwrap();
        let tid: u32 = link.file_name().unwrap().to_str().unwrap().parse().unwrap();
        let w = writer_of(tid).expect("this thread resolves");
        assert_eq!(w.pid, me);
        let comm = std::fs::read_to_string(format!("/proc/{tid}/comm")).unwrap();
        assert_eq!(w.comm, comm.trim_end());
        let _scope = Scope::enter(tid);
        assert_eq!(current().map(|w| w.pid), Some(me));
        assert_eq!(writer_of(0), None);
        // A child that exited and was reaped is gone, cached or not.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(writer_of(pid), None);
    }

    #[test]
    fn a_cached_writer_is_dropped_when_its_process_goes() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        // Until the child has exec'd it carries this thread's name; the cached entry reads
        // the name fresh, so it shows `sleep` from then on.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let w = writer_of(pid).expect("a live child resolves");
            assert_eq!(w.pid, pid);
            if w.comm == "sleep" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "still {:?}", w.comm);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(writer_of(pid), None, "a dead pid answers from the cache");
    }
}
