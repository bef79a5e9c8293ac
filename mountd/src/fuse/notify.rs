//! Kernel cache invalidation from a dedicated thread.
//!
//! The kernel handles `FUSE_NOTIFY_INVAL_ENTRY` synchronously inside the `writev` on /dev/fuse,
//! takes the parent directory's inode lock and may need a `FORGET` to be read by the daemon.
//! Sent from a request handler that can deadlock, so the overlay's [`Invalidator`] only queues
//! messages and this thread, which owns the [`Notifier`], sends them.

use std::ffi::{OsStr, OsString};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use fuser::{INodeNo, Notifier};
use tracing::{debug, warn};
use wsfs::overlay::{Ino, Invalidator};

enum Msg {
    Entry(Ino, OsString),
    Inode(Ino),
    /// Answered once every message queued before it was sent.
    Flush(Sender<()>),
    Stop,
}

/// Longest a flush waits for the notification thread. The kernel handles an invalidation
/// under the directory's inode lock, so a request stuck in the daemon could hold it up.
const FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// The overlay's invalidator: queues requests for the notification thread.
pub(super) struct QueueInvalidator {
    tx: Sender<Msg>,
}

impl Invalidator for QueueInvalidator {
    fn inval_entry(&self, parent: Ino, name: &OsStr) {
        // A closed queue means the mount is gone: nothing left to invalidate.
        let _ = self.tx.send(Msg::Entry(parent, name.to_owned()));
    }

    fn inval_inode(&self, ino: Ino) {
        let _ = self.tx.send(Msg::Inode(ino));
    }

    fn flush(&self) {
        let (done_tx, done_rx) = channel();
        if self.tx.send(Msg::Flush(done_tx)).is_err() {
            return;
        }
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(FLUSH_LIMIT) {
            warn!("kernel cache invalidations still queued after {FLUSH_LIMIT:?}");
        }
    }
}

/// The running notification thread.
pub(super) struct NotifyThread {
    tx: Sender<Msg>,
    join: Option<JoinHandle<()>>,
}

impl NotifyThread {
    /// Starts the thread; returns it and the invalidator to register with the overlay.
    pub(super) fn start(notifier: Notifier) -> std::io::Result<(NotifyThread, QueueInvalidator)> {
        let (tx, rx) = channel();
        let join = std::thread::Builder::new()
            .name("wsfs-notify".into())
            .spawn(move || run(notifier, rx))?;
        let inval = QueueInvalidator { tx: tx.clone() };
        Ok((
            NotifyThread {
                tx,
                join: Some(join),
            },
            inval,
        ))
    }

    /// Stops the thread after the messages already queued, and joins it.
    pub(super) fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for NotifyThread {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn run(notifier: Notifier, rx: Receiver<Msg>) {
    while let Ok(msg) = rx.recv() {
        let res = match &msg {
            Msg::Entry(parent, name) => notifier.inval_entry(INodeNo(*parent), name),
            // Offset 0, length 0: attributes and every cached page.
            Msg::Inode(ino) => notifier.inval_inode(INodeNo(*ino), 0, 0),
            Msg::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Msg::Stop => break,
        };
        if let Err(e) = res {
            match msg {
                Msg::Entry(parent, name) => {
                    debug!(parent, ?name, error = %e, "inval_entry failed")
                }
                Msg::Inode(ino) => debug!(ino, error = %e, "inval_inode failed"),
                Msg::Flush(_) | Msg::Stop => {}
            }
        }
    }
}
