//! The commit's worker pool (temporary files, renames and directory fsyncs run in parallel)
//! and its phase timer.

use std::time::Instant;

use crate::error::Result;

/// Threads that write, fsync and rename a commit's files: the work waits on the disk, and
/// concurrent fsyncs share the filesystem's journal commits.
const WORKERS: usize = 8;

/// Runs `f` on every item, spread over up to [`WORKERS`] threads, and returns the results in
/// the items' order. Each thread stops at its first error; the first error is returned.
pub(crate) fn on_workers<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let per = items.len().div_ceil(WORKERS).max(1);
    let f = &f;
    let chunks: Vec<Result<Vec<R>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Result<Vec<R>>>()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("commit worker"))
            .collect()
    });
    let mut out = Vec::with_capacity(items.len());
    for c in chunks {
        out.extend(c?);
    }
    Ok(out)
}

/// Logs (at debug level) how long each phase of a commit took.
pub(super) struct PhaseTimer {
    last: Instant,
}

impl PhaseTimer {
    pub(super) fn start() -> PhaseTimer {
        PhaseTimer {
            last: Instant::now(),
        }
    }

    /// Logs the time since the previous lap (or the start) as `phase` of commit `id`.
    pub(super) fn lap(&mut self, id: &str, phase: &str) {
        let now = Instant::now();
        let ms = (now - self.last).as_secs_f64() * 1e3;
        tracing::debug!(commit = %id, phase, ms, "commit phase");
        self.last = now;
    }
}
