//! The settler of a no-open mount: hashes written files once their writes go idle.
//!
//! Without OPEN and RELEASE the daemon never sees a last close, so the "hash at the last
//! writer's close" rule of the open mode has no trigger. This thread records the content hash
//! of every file whose last write is older than [`IDLE`]; status, diff, verify, commit and
//! discard settle whatever is left before they read the journal.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::warn;
use wsfs::overlay::Overlay;

/// A file is hashed once it has not been written for this long.
pub(super) const IDLE: Duration = Duration::from_secs(1);

/// How often the thread looks for idle files.
const TICK: Duration = Duration::from_millis(500);

/// The running settler thread; [`Settler::stop`] ends it.
pub(super) struct Settler {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Settler {
    pub(super) fn start(overlay: Arc<Overlay>) -> std::io::Result<Settler> {
        let (stop, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("wsfs-settle".into())
            .spawn(move || loop {
                match rx.recv_timeout(TICK) {
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(e) = overlay.settle_written(Some(IDLE)) {
                            warn!(error = %e, "settling written files");
                        }
                    }
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            })?;
        Ok(Settler { stop, thread })
    }

    /// Ends the thread (what is still unsettled is settled by the unmount's `sync_all`).
    pub(super) fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}
