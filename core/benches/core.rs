//! Core micro-benchmarks (criterion): journal append, hashing, copy-up, status and commit of
//! 10,000 changed files. `cargo bench --bench core`; figures go to docs/benchmarks.md.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wsfs_core::api::CommitRequest;
use wsfs_core::journal::{Draft, EntryState, Journal, Op};
use wsfs_core::overlay::ROOT_INO;
use wsfs_core::testing::{TestWorkspace, REQ};
use wsfs_core::workspace::Workspace;
use wsfs_core::RelPath;

fn journal_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(&dir.path().join("j")).unwrap();
    let path = RelPath::new("src/components/widgets/button/render.rs").unwrap();
    let new = EntryState::File {
        hash: Some(wsfs_core::hash::ContentHash::of(b"x")),
        mode: 0o644,
        size: 4096,
    };
    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Elements(1));
    g.bench_function("append", |b| {
        b.iter(|| {
            j.append(Draft::new(Op::Write, path.clone(), None, new.clone()))
                .unwrap()
        })
    });
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let data = vec![7u8; 64 << 20];
    let mut g = c.benchmark_group("blake3");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("hash 64 MiB", |b| {
        b.iter(|| wsfs_core::hash::ContentHash::of(&data))
    });
    g.finish();
}

/// `files` files of `size` bytes, 1,000 a directory, and a workspace on them.
fn fixture(files: usize, size: usize) -> TestWorkspace {
    let body = "a".repeat(size);
    let names: Vec<String> = (0..files).map(|i| format!("d{}/f{i}", i / 1000)).collect();
    let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), body.as_str())).collect();
    TestWorkspace::new(&files)
}

fn modify_all(ws: &Workspace, files: usize) {
    let ov = ws.overlay();
    for i in 0..files {
        let d = ov
            .lookup(ROOT_INO, OsStr::new(&format!("d{}", i / 1000)))
            .unwrap()
            .ino;
        let f = ov.lookup(d, OsStr::new(&format!("f{i}"))).unwrap().ino;
        let o = ov.open(&REQ, f, libc::O_WRONLY).unwrap();
        ov.write(o.fh, 0, b"changed").unwrap();
        ov.release(o.fh).unwrap();
    }
}

fn copy_up(c: &mut Criterion) {
    let mut g = c.benchmark_group("copy_up");
    g.sample_size(10);
    for (label, size) in [("1 MiB", 1usize << 20), ("1 GiB", 1 << 30)] {
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(label), &size, |b, &size| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let fx = fixture(1, size);
                    let ov = fx.ov();
                    let d = ov.lookup(ROOT_INO, OsStr::new("d0")).unwrap().ino;
                    let f = ov.lookup(d, OsStr::new("f0")).unwrap().ino;
                    let t = Instant::now();
                    let o = ov.open(&REQ, f, libc::O_WRONLY).unwrap();
                    total += t.elapsed();
                    ov.release(o.fh).unwrap();
                }
                total
            })
        });
        if std::env::var_os("WSFS_BENCH_QUICK").is_some() {
            break;
        }
    }
    g.finish();
}

fn status_and_commit(c: &mut Criterion) {
    const N: usize = 10_000;
    let mut g = c.benchmark_group("10k changed 4 KiB files");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    let fx = fixture(N, 4096);
    let ws = fx.ws();
    modify_all(ws, N);
    g.bench_function("status", |b| {
        b.iter(|| assert_eq!(ws.status().unwrap().len(), N))
    });
    g.bench_function("commit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let fx = fixture(N, 4096);
                let ws = fx.ws();
                modify_all(ws, N);
                let t = Instant::now();
                let r = ws.commit(&CommitRequest::default(), &|_, _| {}).unwrap();
                total += t.elapsed();
                assert_eq!(r.applied.len(), N);
            }
            total
        })
    });
    g.finish();
}

/// Writes `data` into each of the fixture's `files` files.
fn write_all(ws: &Workspace, files: usize, data: &[u8]) {
    let ov = ws.overlay();
    for i in 0..files {
        let d = ov
            .lookup(ROOT_INO, OsStr::new(&format!("d{}", i / 1000)))
            .unwrap()
            .ino;
        let f = ov.lookup(d, OsStr::new(&format!("f{i}"))).unwrap().ino;
        let o = ov.open(&REQ, f, libc::O_WRONLY | libc::O_TRUNC).unwrap();
        ov.write(o.fh, 0, data).unwrap();
        ov.write(o.fh, data.len() as u64, format!("{i}").as_bytes())
            .unwrap();
        ov.release(o.fh).unwrap();
    }
}

/// A checkpoint of 1,000 changed 4 KiB files (each content new to the store), and a restore
/// of 1,000 changed files to a checkpoint (store on; each iteration on a fresh workspace).
fn checkpoints(c: &mut Criterion) {
    const N: usize = 1_000;
    let mut g = c.benchmark_group("1k changed 4 KiB files");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    let body = vec![b'c'; 4090];
    g.bench_function("checkpoint", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let fx = fixture(N, 4096);
                let ws = fx.ws();
                write_all(ws, N, &body);
                let t = Instant::now();
                let cp = ws.checkpoint("bench").unwrap();
                total += t.elapsed();
                assert_eq!(cp.paths, N as u64);
            }
            total
        })
    });
    g.bench_function("restore", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let fx = fixture(N, 4096);
                let ws = fx.ws();
                write_all(ws, N, &body);
                let cp = ws.checkpoint("bench").unwrap();
                write_all(ws, N, b"other");
                let t = Instant::now();
                let r = ws
                    .restore(&wsfs_core::api::RestoreRequest {
                        checkpoint: cp.id,
                        paths: vec![],
                    })
                    .unwrap();
                total += t.elapsed();
                assert_eq!(r.restored.len(), N);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    journal_append,
    hashing,
    copy_up,
    status_and_commit,
    checkpoints
);
criterion_main!(benches);
