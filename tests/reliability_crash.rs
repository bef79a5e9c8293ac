//! Crash harness (issue 6): a seeded random workload (create, write, append, truncate, fsync,
//! rename, unlink, mkdir, rmdir) runs through a real FUSE mount while `mountd` is killed with
//! SIGKILL at a random moment; the daemon is restarted and the harness checks:
//!
//! - **fsynced data survives**: a path whose last change was made durable (file `fsync` then
//!   `fsync` of its parent directory, and of the root for a file in a subdirectory) before the
//!   kill has exactly that state;
//! - **no tearing beyond POSIX**: a path changed after its last fsync is in one of the states
//!   it passed through since then, or (for the data of a file) a byte-wise mix of two
//!   consecutive such states, as POSIX allows for unsynced writes (the rule is in
//!   docs/reliability.md);
//! - **acknowledged is kept** (stronger, what `docs/journal.md` promises for a kill -9, which
//!   is not a power loss): every operation that returned before the kill is kept; only the one
//!   operation in flight may be lost or half done;
//! - `wsfs verify` passes (hash chain, upper files match their recorded hashes);
//! - `wsfs status --json` matches the upper layer seen through the mount (every file that
//!   differs from the host is in status with the content hash the mount shows, and nothing
//!   else is);
//! - the host project is byte-for-byte unchanged.
//!
//! And the same during commit: a random workload, then a commit aborted at a random step
//! (`WSFS_FAULT_COMMIT`): every host file is entirely old or entirely new, the commit is
//! completed on restart, and a second commit is a no-op.
//!
//! Quick mode (CI): 10 kill iterations and 6 commit crashes. Long mode:
//! `WSFS_CRASH_ITERS=200 WSFS_COMMIT_CRASH_ITERS=100`. Seed: `WSFS_CRASH_SEED` (printed).

mod live;
mod prereq;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use live::{can_mount, Live};

/// A small, seedable PRNG (xorshift64*), so a failing run can be replayed from its seed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    let s = std::env::var("WSFS_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("seed: WSFS_CRASH_SEED={s}");
    s
}

/// The state of one path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum St {
    Absent,
    Dir,
    File(Vec<u8>),
}

/// Per path: the states since its last durable point (`hist[0]` is durable), and how many of
/// them were acknowledged (the operation that produced them returned).
#[derive(Clone, Debug)]
struct PathModel {
    hist: Vec<St>,
    acked: usize,
}

/// The model of the workspace as the workload sees it.
#[derive(Clone, Debug, Default)]
struct Model {
    paths: BTreeMap<String, PathModel>,
}

const DIRS: &[&str] = &["d0", "d1"];
const NAMES: &[&str] = &["f0", "f1", "f2", "f3", "f4"];

fn all_paths() -> Vec<String> {
    let mut v: Vec<String> = NAMES.iter().map(|s| s.to_string()).collect();
    for d in DIRS {
        v.push(d.to_string());
        for n in NAMES.iter().take(3) {
            v.push(format!("{d}/{n}"));
        }
    }
    v
}

fn parent(p: &str) -> Option<&str> {
    p.rsplit_once('/').map(|(d, _)| d)
}

impl Model {
    fn from_disk(mp: &Path) -> Model {
        let mut m = Model::default();
        for p in all_paths() {
            let st = read_state(&mp.join(&p));
            m.paths.insert(
                p,
                PathModel {
                    hist: vec![st],
                    acked: 1,
                },
            );
        }
        m
    }
    fn cur(&self, p: &str) -> &St {
        self.paths[p].hist.last().unwrap()
    }
    /// Records that an operation is about to set `p` to `st` (before it runs).
    fn will_set(&mut self, p: &str, st: St) {
        self.paths.get_mut(p).unwrap().hist.push(st);
    }
    /// The operation that set `p` returned.
    fn acked(&mut self, p: &str) {
        let pm = self.paths.get_mut(p).unwrap();
        pm.acked = pm.hist.len();
    }
    /// `p` (and its parent directories) were fsynced.
    fn durable(&mut self, p: &str) {
        let mut cur = Some(p);
        while let Some(q) = cur {
            let pm = self.paths.get_mut(q).unwrap();
            let last = pm.hist.last().unwrap().clone();
            pm.hist = vec![last];
            pm.acked = 1;
            cur = parent(q);
        }
    }
}

fn read_state(p: &Path) -> St {
    match std::fs::symlink_metadata(p) {
        Err(_) => St::Absent,
        Ok(m) if m.is_dir() => St::Dir,
        Ok(_) => St::File(std::fs::read(p).unwrap_or_default()),
    }
}

fn content(rng: &mut Rng, tag: u64) -> Vec<u8> {
    // Sizes from empty to several pages, so page-granular tearing would show.
    let len = *rng.pick(&[0usize, 1, 100, 4096, 5000, 20_000, 70_000]);
    let mut v = Vec::with_capacity(len);
    let mut x = tag;
    while v.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// One workload step through the mount. Updates the model before (possible states) and after
/// (acknowledged) the syscalls. Returns false when the mount is gone (the daemon was killed).
fn step(rng: &mut Rng, mp: &Path, model: &Mutex<Model>, n: u64) -> bool {
    let paths = all_paths();
    let p = rng.pick(&paths).clone();
    let full = mp.join(&p);
    let is_dir_slot = DIRS.contains(&p.as_str());
    let parent_ok = |m: &Model| parent(&p).is_none_or(|d| *m.cur(d) == St::Dir);
    let mut m = model.lock().unwrap();
    if !parent_ok(&m) {
        // Make the parent directory first.
        let d = parent(&p).unwrap().to_string();
        if *m.cur(&d) != St::Absent {
            return true;
        }
        m.will_set(&d, St::Dir);
        drop(m);
        if std::fs::create_dir(mp.join(&d)).is_err() {
            return false;
        }
        model.lock().unwrap().acked(&d);
        return true;
    }
    let cur = m.cur(&p).clone();
    if is_dir_slot {
        match cur {
            St::Absent => {
                m.will_set(&p, St::Dir);
                drop(m);
                if std::fs::create_dir(&full).is_err() {
                    return false;
                }
            }
            St::Dir => {
                let empty = paths
                    .iter()
                    .filter(|q| parent(q) == Some(p.as_str()))
                    .all(|q| *m.cur(q) == St::Absent);
                if empty && rng.below(3) == 0 {
                    m.will_set(&p, St::Absent);
                    drop(m);
                    if std::fs::remove_dir(&full).is_err() {
                        return false;
                    }
                } else {
                    // fsync of the directory: its entries' names become durable.
                    drop(m);
                    let r = std::fs::File::open(&full).and_then(|f| f.sync_all());
                    if r.is_err() {
                        return false;
                    }
                    return true;
                }
            }
            St::File(_) => unreachable!(),
        }
        model.lock().unwrap().acked(&p);
        return true;
    }
    let op = rng.below(100);
    let res: std::io::Result<()> = match (&cur, op) {
        // fsync (file, parent dir, root): the durable point.
        (St::File(_), 0..=19) => {
            drop(m);
            let r: std::io::Result<()> = (|| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&full)?
                    .sync_all()?;
                let mut d = Some(p.as_str());
                while let Some(q) = d {
                    let dir = match parent(q) {
                        Some(pd) => mp.join(pd),
                        None => mp.to_path_buf(),
                    };
                    std::fs::File::open(dir)?.sync_all()?;
                    d = parent(q);
                }
                Ok(())
            })();
            if r.is_err() {
                return false;
            }
            model.lock().unwrap().durable(&p);
            return true;
        }
        // Overwrite the whole file (create, truncate, write in chunks).
        (_, 20..=44) => {
            let data = content(rng, n);
            m.will_set(&p, St::File(Vec::new()));
            m.will_set(&p, St::File(data.clone()));
            drop(m);
            (|| {
                let mut f = std::fs::File::create(&full)?;
                for chunk in data.chunks(8192) {
                    f.write_all(chunk)?;
                }
                Ok(())
            })()
        }
        // Append.
        (St::File(old), 45..=54) => {
            let data = content(rng, n);
            let new = [old.as_slice(), &data].concat();
            m.will_set(&p, St::File(new));
            drop(m);
            (|| {
                let mut f = std::fs::OpenOptions::new().append(true).open(&full)?;
                f.write_all(&data)
            })()
        }
        // pwrite in the middle.
        (St::File(old), 55..=64) => {
            let data = content(rng, n);
            let off = rng.below(old.len() as u64 + 1) as usize;
            let mut new = old.clone();
            if new.len() < off + data.len() {
                new.resize(off + data.len(), 0);
            }
            new[off..off + data.len()].copy_from_slice(&data);
            m.will_set(&p, St::File(new));
            drop(m);
            (|| {
                let f = std::fs::OpenOptions::new().write(true).open(&full)?;
                f.write_all_at(&data, off as u64)
            })()
        }
        // Truncate (shrink or extend).
        (St::File(old), 65..=72) => {
            let len = rng.below(old.len() as u64 * 2 + 10) as usize;
            let mut new = old.clone();
            new.resize(len, 0);
            m.will_set(&p, St::File(new));
            drop(m);
            (|| {
                let f = std::fs::OpenOptions::new().write(true).open(&full)?;
                f.set_len(len as u64)
            })()
        }
        // Unlink.
        (St::File(_), 73..=82) => {
            m.will_set(&p, St::Absent);
            drop(m);
            std::fs::remove_file(&full)
        }
        // Rename over another file slot (replacing it, or into a new name).
        (St::File(data), 83..=99) => {
            let file_slots: Vec<String> = paths
                .iter()
                .filter(|q| !DIRS.contains(&q.as_str()) && **q != p)
                .filter(|q| parent(q).is_none_or(|d| *m.cur(d) == St::Dir))
                .cloned()
                .collect();
            if file_slots.is_empty() {
                return true;
            }
            let to = rng.pick(&file_slots).clone();
            m.will_set(&p, St::Absent);
            m.will_set(&to, St::File(data.clone()));
            drop(m);
            let r = std::fs::rename(&full, mp.join(&to));
            if r.is_err() {
                return false;
            }
            let mut m = model.lock().unwrap();
            m.acked(&p);
            m.acked(&to);
            return true;
        }
        // Create an empty file.
        (St::Absent, _) => {
            m.will_set(&p, St::File(Vec::new()));
            drop(m);
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(&full)
                .map(|_| ())
        }
        _ => return true,
    };
    if res.is_err() {
        return false;
    }
    model.lock().unwrap().acked(&p);
    true
}

/// The allowed-state rule (see the file comment and docs/reliability.md).
fn allowed(hist: &[St], got: &St) -> bool {
    if hist.contains(got) {
        return true;
    }
    // Unsynced data: a byte-wise mix of two consecutive file states (page-granular tearing),
    // with a length between theirs.
    let St::File(g) = got else { return false };
    hist.windows(2).any(|w| match (&w[0], &w[1]) {
        (St::File(a), St::File(b)) => {
            let (lo, hi) = (a.len().min(b.len()), a.len().max(b.len()));
            g.len() >= lo
                && g.len() <= hi
                && g.iter().enumerate().all(|(i, x)| {
                    a.get(i).is_none_or(|y| y == x) || b.get(i).is_none_or(|y| y == x)
                })
        }
        _ => false,
    })
}

#[derive(Default)]
struct Figures {
    kills: u64,
    ops: u64,
    durable_checked: u64,
    unsynced_checked: u64,
    lost_acked: u64,
}

/// Checks every path after a restart; returns the number of acknowledged-but-lost states.
fn check_after_restart(mp: &Path, model: &Model, fig: &mut Figures, ctx: &str) {
    for (p, pm) in &model.paths {
        let got = read_state(&mp.join(p));
        if pm.hist.len() == 1 {
            fig.durable_checked += 1;
            assert_eq!(
                got,
                pm.hist[0],
                "{ctx}: {p} was fsynced before the kill and changed ({} bytes vs {} expected)",
                len_of(&got),
                len_of(&pm.hist[0])
            );
            continue;
        }
        fig.unsynced_checked += 1;
        assert!(
            allowed(&pm.hist, &got),
            "{ctx}: {p} is in a state it never passed through since its last fsync: {} bytes; history lengths {:?}",
            len_of(&got),
            pm.hist.iter().map(len_of).collect::<Vec<_>>()
        );
        // Stronger: everything acknowledged is kept; at most the operation in flight is lost.
        let acked = &pm.hist[pm.acked - 1];
        let in_flight = &pm.hist[pm.acked - 1..];
        if got != *acked && !in_flight.contains(&got) && !allowed(in_flight, &got) {
            fig.lost_acked += 1;
            eprintln!(
                "{ctx}: {p}: acknowledged state lost ({} bytes, acknowledged {} bytes)",
                len_of(&got),
                len_of(acked)
            );
        }
    }
}

fn len_of(s: &St) -> String {
    match s {
        St::Absent => "absent".into(),
        St::Dir => "dir".into(),
        St::File(v) => v.len().to_string(),
    }
}

/// `wsfs status --json` against the mount: every file that differs from the host is listed
/// with the content the mount shows; every listed file is as listed. Returns the mismatches.
fn status_problems(live: &Live, mp: &Path) -> Vec<String> {
    let status = live.json(["status", "w"]);
    let host = Live::snapshot(&live.project);
    let seen = Live::snapshot(mp);
    let mut out = Vec::new();
    let mut listed = BTreeSet::new();
    for c in status.as_array().unwrap() {
        let path = PathBuf::from(c["path"].as_str().unwrap());
        listed.insert(path.clone());
        if let Some(from) = c["from"].as_str() {
            listed.insert(PathBuf::from(from));
        }
        let cur = &c["current"];
        match cur["kind"].as_str().unwrap() {
            "file" => match seen.get(&path) {
                None => out.push(format!("status lists file {path:?}, the mount has none")),
                Some(data) => {
                    if cur["size"].as_u64() != Some(data.len() as u64)
                        || cur["hash"].as_str() != Some(blake3::hash(data).to_hex().as_str())
                    {
                        out.push(format!(
                            "{path:?}: status says {} bytes hash {}, the mount shows {} bytes hash {}",
                            cur["size"],
                            cur["hash"],
                            data.len(),
                            blake3::hash(data).to_hex()
                        ));
                    }
                }
            },
            "absent" => {
                if seen.contains_key(&path) {
                    out.push(format!("status says {path:?} deleted, the mount shows it"));
                }
            }
            "dir" => {
                if seen.get(&path).map(|v| &v[..]) != Some(&b"<dir>"[..]) {
                    out.push(format!(
                        "status says {path:?} is a directory, the mount does not"
                    ));
                }
            }
            other => out.push(format!("{path:?}: unexpected kind {other}")),
        }
    }
    let keys: BTreeSet<&PathBuf> = host.keys().chain(seen.keys()).collect();
    for k in keys {
        if host.get(k) != seen.get(k) {
            let is_dir = host.get(k).or(seen.get(k)).map(|v| &v[..]) == Some(&b"<dir>"[..]);
            // A directory that only holds listed changes need not be listed itself.
            if is_dir && (host.contains_key(k) == seen.contains_key(k)) {
                continue;
            }
            if !listed.contains(k) {
                out.push(format!("{k:?} differs from the host but is not in status"));
            }
        }
    }
    out
}

/// `wsfs verify --json`: asserts the hash chain; returns the other problems (upper files that
/// do not match the journal).
fn verify_problems(live: &Live, ctx: &str) -> Vec<String> {
    let out = live.wsfs(["--json", "verify", "w"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{ctx}: verify output not JSON ({e}): {out:?}"));
    assert_eq!(v["chain_ok"], true, "{ctx}: journal chain broken: {v}");
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

fn host_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("f0", "host f0\n"),
        ("f1", "host f1\n"),
        ("d0/f0", "host d0/f0\n"),
        ("keep/untouched", "never touched\n"),
    ]
}

/// Runs `WSFS_CRASH_ITERS` kill iterations; with `strict`, journal/upper mismatches after a
/// restart (verify problems, status not matching the mount) fail the run, otherwise they are
/// counted and printed.
fn kill_loop(test: &str, strict: bool) {
    if !can_mount(test) {
        return;
    }
    let iters = env_u64("WSFS_CRASH_ITERS", 10);
    let per_daemon = 5;
    let seed = seed();
    let mut rng = Rng::new(seed);
    let mut fig = Figures::default();
    let mut mismatched_restarts = 0u64;
    let started = Instant::now();
    let mut done = 0;
    while done < iters {
        let mut live = Live::new(&host_files());
        let before = Live::snapshot(&live.project);
        let mp = live.mount();
        let mut model = Model::from_disk(&mp);
        for _ in 0..per_daemon.min(iters - done) {
            done += 1;
            let ctx = format!("seed {seed} iteration {done}");
            let shared = Arc::new(Mutex::new(model.clone()));
            let stop = Arc::new(AtomicBool::new(false));
            let (wm, wmp, wstop) = (shared.clone(), mp.clone(), stop.clone());
            let mut wrng = Rng::new(rng.next());
            let writer = std::thread::spawn(move || {
                let mut n = 0u64;
                while !wstop.load(Ordering::Relaxed) {
                    n += 1;
                    if !step(&mut wrng, &wmp, &wm, n) {
                        break;
                    }
                }
                n
            });
            std::thread::sleep(Duration::from_millis(20 + rng.below(400)));
            live.kill9();
            stop.store(true, Ordering::Relaxed);
            fig.ops += writer.join().unwrap();
            fig.kills += 1;
            model = shared.lock().unwrap().clone();
            live.start();
            check_after_restart(&mp, &model, &mut fig, &ctx);
            let mut problems = verify_problems(&live, &ctx);
            problems.extend(status_problems(&live, &mp));
            if !problems.is_empty() {
                mismatched_restarts += 1;
                eprintln!("{ctx}: journal/upper mismatch after restart: {problems:#?}");
                assert!(
                    !strict,
                    "{ctx}: journal and upper layer disagree after the kill: {problems:#?}"
                );
            }
            assert_eq!(
                Live::snapshot(&live.project),
                before,
                "{ctx}: host changed without a commit"
            );
            // Continue from what survived.
            model = Model::from_disk(&mp);
        }
    }
    eprintln!(
        "FIGURES crash: {} kills, {} ops, {} fsynced paths checked intact, {} unsynced paths checked, {} acknowledged states lost, {} restarts with journal/upper mismatches, {:.1} s",
        fig.kills,
        fig.ops,
        fig.durable_checked,
        fig.unsynced_checked,
        fig.lost_acked,
        mismatched_restarts,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        fig.lost_acked, 0,
        "acknowledged operations lost by a kill -9 (docs/journal.md promises none)"
    );
}

/// Data survives a SIGKILL: fsynced state intact, unsynced state within the POSIX rule,
/// acknowledged operations kept, the chain verifies, the host is unchanged.
#[test]
fn sigkill_during_random_workload_keeps_fsynced_data() {
    kill_loop("sigkill_during_random_workload_keeps_fsynced_data", false);
}

/// After a SIGKILL and restart, `wsfs verify` finds no problem and `wsfs status` matches the
/// mount: recovery re-records paths whose upper entry changed, was renamed or was removed after
/// their last journal record (docs/reliability.md).
#[test]
fn journal_matches_upper_after_sigkill() {
    kill_loop("journal_matches_upper_after_sigkill", true);
}

#[test]
fn sigkill_during_commit_of_random_workload_rolls_forward() {
    if !can_mount("sigkill_during_commit_of_random_workload_rolls_forward") {
        return;
    }
    let iters = env_u64("WSFS_COMMIT_CRASH_ITERS", 6);
    let seed = seed().wrapping_add(1);
    let mut rng = Rng::new(seed);
    let (mut crashed, mut completed) = (0, 0);
    let started = Instant::now();
    for it in 1..=iters {
        let ctx = format!("seed {seed} commit iteration {it}");
        let mut live = Live::new(&host_files());
        let before = Live::snapshot(&live.project);
        let mp = live.mount();
        let model = Mutex::new(Model::from_disk(&mp));
        let ops = 5 + rng.below(40);
        for n in 0..ops {
            assert!(step(&mut rng, &mp, &model, n), "{ctx}: workload failed");
        }
        let after = Live::snapshot(&mp);
        live.stop();
        let fault = 1 + rng.below(3 + ops);
        live.start_with(&[("WSFS_FAULT_COMMIT", &fault.to_string())]);
        let out = live.wsfs(["commit", "w"]);
        if out.status.success() {
            completed += 1;
        } else {
            crashed += 1;
            live.wait_dead();
            // Each host file entirely old or entirely new.
            let host = Live::snapshot(&live.project);
            for (p, data) in &host {
                // Commit's temporary files beside their targets (removed on restart: the
                // final comparison below checks that).
                if p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".wsfs-commit-")
                {
                    continue;
                }
                assert!(
                    before.get(p) == Some(data) || after.get(p) == Some(data),
                    "{ctx} (fault step {fault}): host {p:?} is neither old nor new ({} bytes)",
                    data.len()
                );
            }
            for p in before.keys().chain(after.keys()) {
                if !host.contains_key(p) {
                    assert!(
                        !before.contains_key(p) || !after.contains_key(p),
                        "{ctx} (fault step {fault}): {p:?} vanished from the host"
                    );
                }
            }
            live.start();
        }
        assert_eq!(
            Live::snapshot(&live.project),
            after,
            "{ctx} (fault step {fault}): host after the (completed) commit is not the workspace"
        );
        let again = live.json(["commit", "w"]);
        assert!(
            again["applied"].as_array().unwrap().is_empty(),
            "{ctx}: second commit not a no-op: {again}"
        );
        assert_eq!(live.ok(["status", "w"]), "", "{ctx}");
        let problems = verify_problems(&live, &ctx);
        assert!(problems.is_empty(), "{ctx}: {problems:?}");
        // A commit completed after a crash is one commit (continued under its own id) whose
        // prior states cover every path: undoing it gives back the host from before.
        let commits = live.json(["log", "w", "--commits"]);
        if !commits.as_array().unwrap().is_empty() {
            assert_eq!(commits.as_array().unwrap().len(), 1, "{ctx}: {commits}");
            // A daemon without the fault step (undo steps count too).
            live.stop();
            live.start();
            live.json(["undo", "-w", "w"]);
            assert_eq!(
                Live::snapshot(&live.project),
                before,
                "{ctx} (fault step {fault}): undo of the rolled-forward commit"
            );
        }
    }
    eprintln!(
        "FIGURES commit-crash: {iters} commits, {crashed} aborted mid-commit and rolled forward, {completed} finished before the fault step, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Undo under kill -9 (issue 16): a random workload is committed, then `wsfs undo` is aborted
/// at undo step 1, 2, 3, … in turn (`WSFS_FAULT_COMMIT` counts the undo's steps: its begin
/// record, each path back in the overlay, each host removal, each file put back) until an
/// undo runs to its end. After each abort every host file is entirely as before the commit or
/// entirely as after it; the restart completes the undo: the host equals the host before the
/// commit, the mount still shows the workspace's version, `verify` passes, and a second
/// undo is refused.
#[test]
fn sigkill_at_each_undo_step_leaves_files_old_or_new_and_rolls_forward() {
    if !can_mount("sigkill_at_each_undo_step_leaves_files_old_or_new_and_rolls_forward") {
        return;
    }
    let workloads = env_u64("WSFS_UNDO_CRASH_WORKLOADS", 2);
    let seed = seed().wrapping_add(2);
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let mut aborted = 0;
    for w in 1..=workloads {
        for fault in 1.. {
            let ctx = format!("seed {seed} workload {w} undo fault step {fault}");
            // The same workload for every fault step of this round.
            let mut wl_rng = rng.clone();
            let mut live = Live::new(&host_files());
            let before = Live::snapshot(&live.project);
            let mp = live.mount();
            let model = Mutex::new(Model::from_disk(&mp));
            let ops = 5 + wl_rng.below(30);
            for n in 0..ops {
                assert!(step(&mut wl_rng, &mp, &model, n), "{ctx}: workload failed");
            }
            let view = Live::snapshot(&mp);
            let commit = live.json(["commit", "w"]);
            if commit["id"].as_str().unwrap_or("").is_empty() {
                break; // the workload left nothing to commit
            }
            let after = Live::snapshot(&live.project);
            assert_eq!(after, view, "{ctx}: commit applied the view");
            live.stop();
            live.start_with(&[("WSFS_FAULT_COMMIT", &fault.to_string())]);
            let out = live.wsfs(["undo", "-w", "w"]);
            let finished = out.status.success();
            if !finished {
                aborted += 1;
                live.wait_dead();
                let host = Live::snapshot(&live.project);
                for (p, data) in &host {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    if name.starts_with(".wsfs-undo-") {
                        continue;
                    }
                    assert!(
                        before.get(p) == Some(data) || after.get(p) == Some(data),
                        "{ctx}: host {p:?} is neither old nor new ({} bytes)",
                        data.len()
                    );
                }
                live.start();
            }
            assert_eq!(
                Live::snapshot(&live.project),
                before,
                "{ctx}: host after the (completed) undo is not the host before the commit"
            );
            let mp = live.root.path().join("mnt");
            assert_eq!(
                Live::snapshot(&mp),
                view,
                "{ctx}: the workspace lost its version"
            );
            let problems = verify_problems(&live, &ctx);
            assert!(problems.is_empty(), "{ctx}: {problems:?}");
            let again = live.wsfs(["undo", "-w", "w"]);
            assert!(!again.status.success(), "{ctx}: undone twice");
            drop(live);
            if finished {
                break;
            }
        }
        rng = Rng::new(rng.next());
    }
    eprintln!(
        "FIGURES undo-crash: {workloads} workloads, {aborted} undos aborted at a step and rolled forward, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
