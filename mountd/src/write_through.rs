//! The write-through flusher: a thread that, a few times a second, commits every workspace's
//! pending write-through changes (shared state such as a tool's history) to the host
//! ([`wsfs::workspace::Workspace::flush_write_through`]). A round costs one atomic load per
//! workspace while nothing is pending, and a look at the journal's sequence number when
//! something waits but nothing was recorded since the last round.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{debug, warn};

use crate::registry::Registry;

/// How often the flusher looks for write-through changes.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// The running flusher; dropping it stops the thread after one last round.
pub struct Flusher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts flushing `registry`'s workspaces every [`INTERVAL`].
    pub fn start(registry: Arc<Registry>) -> std::io::Result<Flusher> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("write-through".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    flush_all(&registry);
                    std::thread::sleep(INTERVAL);
                }
                // What was recorded during the last sleep still goes.
                flush_all(&registry);
            })?;
        Ok(Flusher {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One round over every open workspace.
fn flush_all(registry: &Registry) {
    for ws in registry.workspaces() {
        match ws.flush_write_through() {
            Ok(None) => {}
            Ok(Some(report)) => {
                if !report.applied.is_empty() {
                    debug!(
                        workspace = ws.name(),
                        paths = report.applied.len(),
                        "written through"
                    );
                }
                for c in &report.conflicts {
                    warn!(workspace = ws.name(), path = %c.path, reason = %c.reason,
                        "write-through change held back: {}", c.hint);
                }
            }
            Err(e) => warn!(workspace = ws.name(), "write-through flush failed: {e}"),
        }
    }
}
