//! The event stream (`GET /v1/events`, Server-Sent Events): every journal record of every
//! workspace as it is appended, so clients (the CLI, a UI) follow changes and commits without
//! polling.
//!
//! Each workspace's journal calls the closure [`Events::follow`] installs under its append
//! lock (see `Journal::on_append`); that is one atomic load while nobody listens, and a clone of the
//! record into a bounded broadcast channel when someone does (never blocking: a client that
//! falls [`CAPACITY`] events behind gets an `Event::Lagged` note instead of the missed ones).
//!
//! [`Events::close`] (at shutdown) ends every open stream, and the browser terminals (they
//! wait on [`Events::closed`]), so the daemon's graceful stop does not wait for a browser tab.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast;
use wsfs::api::Event;
use wsfs::journal::record::Record;
use wsfs::workspace::Workspace;

/// Events kept for a slow client before it lags.
pub const CAPACITY: usize = 4096;

/// The daemon's event channel.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Arc<Event>>,
    /// Open streams; read per record without a lock (the channel's own count takes one).
    listeners: Arc<AtomicUsize>,
    /// Set once the daemon stops.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(CAPACITY).0,
            listeners: Arc::default(),
            closing: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

/// Counts one open stream while it lives.
struct Listening(Arc<AtomicUsize>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Events {
    /// Publishes every record `ws`'s journal appends from now on.
    pub fn follow(&self, ws: &Workspace) {
        let tx = self.tx.clone();
        let listeners = self.listeners.clone();
        let name = ws.name().to_string();
        ws.overlay().journal().on_append(move |r: &Record| {
            if listeners.load(Ordering::Relaxed) > 0 {
                let _ = tx.send(Arc::new(Event::Record {
                    workspace: name.clone(),
                    record: Box::new(r.clone()),
                }));
            }
        });
    }

    /// Ends every stream and terminal: the daemon is stopping.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Events::close`] was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }

    /// The SSE stream of one new subscriber.
    pub fn stream(&self) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
        let rx = self.tx.subscribe();
        self.listeners.fetch_add(1, Ordering::Relaxed);
        let guard = Listening(self.listeners.clone());
        let closing = self.closing.subscribe();
        let events = stream::unfold(
            (rx, guard, closing),
            |(mut rx, guard, mut closing)| async move {
                let received = tokio::select! {
                    r = rx.recv() => r,
                    _ = closing.wait_for(|c| *c) => return None,
                };
                let event = match received {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        Arc::new(Event::Lagged { missed })
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                let data = serde_json::to_string(&*event).unwrap_or_default();
                Some((Ok(SseEvent::default().data(data)), (rx, guard, closing)))
            },
        );
        Sse::new(events).keep_alive(KeepAlive::default())
    }
}
