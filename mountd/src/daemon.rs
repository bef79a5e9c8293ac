//! Daemon life cycle: lock the state dir, recover workspaces, bind the socket, serve until
//! SIGTERM/SIGINT, then flush and unmount.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};
use wsfs::api::{DaemonInfo, OpenMode, API_VERSION};
use wsfs::state::StateRoot;

use crate::registry::Registry;
use crate::server::{self, Shared};

/// Runs the daemon until a termination signal; returns after a clean shutdown. Mounts serve
/// `open(2)` in `open_mode` unless a request or the workspace says otherwise. With `listen`,
/// the control API is also served over TCP there (token required, [`crate::remote`]).
pub fn run(
    state: StateRoot,
    socket: PathBuf,
    listen: Option<std::net::SocketAddr>,
    open_mode: OpenMode,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(state.path())
        .with_context(|| format!("creating state dir {}", state.path().display()))?;
    // Traversable (not listable) by others, so default mountpoints under mnt/ are usable by
    // container users; each workspace dir below is 0700.
    let _ = std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o711));
    let _lock = lock_state(state.path())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(state, socket, listen, open_mode))
}

async fn serve(
    state: StateRoot,
    socket: PathBuf,
    listen: Option<std::net::SocketAddr>,
    open_mode: OpenMode,
) -> anyhow::Result<()> {
    let registry = Arc::new(Registry::new(state.clone(), open_mode));
    let listener = bind(&socket).await?;
    let tcp = match listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr} (--listen)"))?,
        ),
        None => None,
    };
    let tokens = Arc::new(
        crate::remote::Tokens::load_or_create(state.path())
            .context("reading or making the remote API token in the state directory")?,
    );
    let r = registry.clone();
    let problems = tokio::task::spawn_blocking(move || r.recover_all()).await?;
    for p in &problems {
        warn!(problem = %p, "recovery");
    }
    let shared = Arc::new(Shared {
        registry: registry.clone(),
        info: DaemonInfo {
            api: API_VERSION,
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            state_dir: state.path().to_owned(),
            socket: socket.clone(),
            problems,
        },
        owner_uid: wsfs::sys::geteuid(),
        tokens,
    });
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let events = registry.events.clone();
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: shutting down"),
            _ = int.recv() => info!("SIGINT: shutting down"),
        }
        // Open event streams and terminals would hold the graceful stop up.
        events.close();
        let _ = stop_tx.send(true);
    };
    let tcp_task = tcp.map(|listener| {
        let addr = listener.local_addr().ok();
        if let Some(addr) = addr {
            crate::remote::warn_if_exposed(addr);
            info!(%addr, "remote API listening (token required)");
        }
        let mut stop = stop_rx.clone();
        tokio::spawn(server::serve_tcp(listener, shared.clone(), async move {
            let _ = stop.wait_for(|s| *s).await;
        }))
    });
    let flusher = crate::write_through::Flusher::start(registry.clone())
        .context("starting the write-through thread")?;
    info!(socket = %socket.display(), state = %state.path().display(), "mountd ready");
    server::serve(listener, shared, shutdown)
        .await
        .context("serving the control socket")?;
    if let Some(t) = tcp_task {
        t.await?.context("serving the remote API")?;
    }
    // The last round runs before the mounts go.
    tokio::task::spawn_blocking(move || drop(flusher)).await?;
    tokio::task::spawn_blocking(move || registry.shutdown()).await?;
    let _ = std::fs::remove_file(&socket);
    info!("stopped cleanly");
    Ok(())
}

/// One daemon per state dir: an exclusive flock on `<state>/mountd.lock`.
fn lock_state(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("mountd.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if wsfs::sys::try_lock_exclusive(std::os::fd::AsFd::as_fd(&file)).is_err() {
        bail!(
            "another mountd already serves the state directory {}; stop it first, or pass another --state-dir",
            dir.display()
        );
    }
    Ok(file)
}

/// Binds the control socket (mode 0600, parent 0700), replacing a stale socket file.
async fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating socket dir {}", dir.display()))?;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    if socket.exists() {
        if tokio::net::UnixStream::connect(socket).await.is_ok() {
            bail!(
                "another mountd already listens on {}; stop it first, or pass another --socket",
                socket.display()
            );
        }
        std::fs::remove_file(socket)
            .with_context(|| format!("removing stale socket {}", socket.display()))?;
    }
    // Under the usual umask the new socket is not writable (so not connectable) by others
    // even before the chmod below.
    let listener =
        UnixListener::bind(socket).with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 0600 {}", socket.display()))?;
    Ok(listener)
}
