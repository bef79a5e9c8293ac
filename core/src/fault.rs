//! Fault injection for crash tests: with `WSFS_FAULT_COMMIT=N` set, the process aborts at the
//! N-th commit step (1-based), as if killed there. Costs one atomic increment per step otherwise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
static STEPS: AtomicU64 = AtomicU64::new(0);

/// Marks one commit step; aborts the process if it is the configured one.
pub fn commit_step(what: &str) {
    let limit = LIMIT.get_or_init(|| {
        std::env::var("WSFS_FAULT_COMMIT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(limit) = limit {
        let n = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
        if n == *limit {
            eprintln!("wsfs fault injection: aborting at commit step {n} ({what})");
            std::process::abort();
        }
    }
}
