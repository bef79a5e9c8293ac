//! Journal benchmarks (criterion): append throughput of a typical `write` record with a 40-byte
//! path (one thread, and four threads sharing one journal; with and without attribution: the
//! writer resolved through the per-thread cache and carried in the record, as the overlay
//! appends a FUSE request's records), append + fdatasync, and replay of a 100,000-record
//! journal. `cargo bench --bench journal`; figures go to docs/journal.md.
//!
//! Files live under `CARGO_TARGET_TMPDIR` (the target directory's disk), not `/tmp`, so the
//! figures are those of a real filesystem.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wsfs_core::hash::ContentHash;
use wsfs_core::journal::{codec, Draft, EntryState, Journal, Op, Record};
use wsfs_core::overlay::caller;
use wsfs_core::RelPath;

/// A 40-byte path.
const PATH: &str = "src/components/widgets/buttons/render.rs";
const REPLAY_RECORDS: u64 = 100_000;

fn write_draft() -> Draft {
    assert_eq!(PATH.len(), 40);
    Draft::new(
        Op::Write,
        RelPath::new(PATH).unwrap(),
        None,
        EntryState::File {
            hash: Some(ContentHash::of(b"new content")),
            mode: 0o644,
            size: 4096,
        },
    )
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// This thread's id (what FUSE reports as a request's pid).
fn own_tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// Times `iters` appends split over `threads` threads, each sample on a fresh journal file (so
/// the file stays small and the figures do not depend on how many samples ran before).
/// `attributed`: each record carries its writer, looked up as the overlay looks it up.
fn timed_appends(iters: u64, threads: u64, attributed: bool) -> Duration {
    let dir = tmpdir();
    let (j, _) = Journal::open(&dir.path().join("journal")).unwrap();
    let j = Arc::new(j);
    let draft = write_draft();
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (j, draft) = (j.clone(), draft.clone());
            let n = iters / threads + u64::from(t < iters % threads);
            s.spawn(move || {
                let tid = own_tid();
                for _ in 0..n {
                    let mut d = draft.clone();
                    if attributed {
                        d.by = caller::writer_of(tid);
                    }
                    j.append(d).unwrap();
                }
            });
        }
    });
    start.elapsed()
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Elements(1));
    g.bench_function("append write 40B path", |b| {
        b.iter_custom(|iters| timed_appends(iters, 1, false))
    });
    g.bench_function("append write 40B path, attributed", |b| {
        b.iter_custom(|iters| timed_appends(iters, 1, true))
    });
    g.bench_function("append write 40B path, 4 threads", |b| {
        b.iter_custom(|iters| timed_appends(iters, 4, false))
    });
    g.bench_function("append write 40B path, 4 threads, attributed", |b| {
        b.iter_custom(|iters| timed_appends(iters, 4, true))
    });
    g.sample_size(20);
    g.bench_function("append_durable (append + fdatasync)", |b| {
        let dir = tmpdir();
        let (j, _) = Journal::open(&dir.path().join("journal")).unwrap();
        let draft = write_draft();
        b.iter(|| j.append_durable(draft.clone()).unwrap())
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    let record = Record {
        seq: 12_345,
        time_ns: 1_700_000_000_000_000_000,
        prev: ContentHash::of(b"previous payload"),
        draft: write_draft(),
    };
    let mut buf = Vec::new();
    codec::encode_line(&record, &mut buf).unwrap();
    let line = buf[..buf.len() - 1].to_vec();
    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode line", |b| {
        b.iter(|| codec::encode_line(&record, &mut buf).unwrap())
    });
    g.bench_function("decode line", |b| {
        b.iter(|| codec::decode_line(&line).unwrap())
    });
    g.finish();
}

fn build(path: &Path, n: u64) {
    let (j, _) = Journal::open(path).unwrap();
    let draft = write_draft();
    for _ in 0..n {
        j.append(draft.clone()).unwrap();
    }
    j.sync().unwrap();
}

fn replay(c: &mut Criterion) {
    let dir = tmpdir();
    let path = dir.path().join("journal");
    build(&path, REPLAY_RECORDS);
    let mut g = c.benchmark_group("journal");
    g.sample_size(20);
    g.throughput(Throughput::Elements(REPLAY_RECORDS));
    g.bench_function("replay 100k records (open)", |b| {
        b.iter(|| {
            let (_, r) = Journal::open(&path).unwrap();
            assert_eq!(r.records.len() as u64, REPLAY_RECORDS);
        })
    });
    g.bench_function("verify_chain 100k records", |b| {
        b.iter(|| assert!(Journal::verify_chain(&path).unwrap().ok))
    });
    g.finish();
}

criterion_group!(benches, append, codec, replay);
criterion_main!(benches);
