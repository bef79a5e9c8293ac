//! `mountd` binary: parses options, sets up logging, runs the daemon.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::path::PathBuf;

use clap::Parser;
use wsfs::state::{default_socket, StateRoot};

/// wsfs daemon: serves each workspace as a FUSE mount and answers `wsfs` on a Unix socket.
///
/// Runs in the foreground and logs to stderr (`RUST_LOG=debug` for more). SIGTERM or SIGINT
/// flush every journal, unmount cleanly and exit 0; on the next start every workspace is
/// recovered and those that were mounted are mounted again.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// State directory (workspaces, journals, upper layers).
    /// Default: /var/lib/wsfs as root, else $XDG_DATA_HOME/wsfs.
    #[arg(long, env = "WSFS_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Control socket. Default: /run/wsfs/mountd.sock as root, else
    /// $XDG_RUNTIME_DIR/wsfs/mountd.sock.
    #[arg(long, env = "WSFS_SOCKET")]
    socket: Option<PathBuf>,
    /// Also serve the control API over TCP at ADDR[:PORT] (port 7391 when omitted) for
    /// `wsfs --remote`. Every request needs the token (`wsfs token show`). Off by default.
    #[arg(long, value_name = "ADDR[:PORT]", value_parser = mountd::remote::parse_listen)]
    listen: Option<std::net::SocketAddr>,
    /// How mounts serve open(2) unless `wsfs mount --open-mode` or the workspace's last mount
    /// says otherwise: `open` or `no-open` (see docs/benchmarks.md).
    #[arg(
        long,
        env = "WSFS_OPEN_MODE",
        default_value = "open",
        value_name = "MODE"
    )]
    open_mode: wsfs::api::OpenMode,
}

fn main() -> std::process::ExitCode {
    mountd::memory::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    raise_fd_limit();
    let args = Args::parse();
    let state = match args.state_dir {
        Some(d) => StateRoot::new(d),
        None => StateRoot::default_location(),
    };
    let socket = args.socket.unwrap_or_else(|| default_socket(&state));
    match mountd::daemon::run(state, socket, args.listen, args.open_mode) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mountd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Raises the soft fd limit to the hard one (an autostarted daemon inherits a login shell's
/// 1,024) and logs what is in force, with the share kept for cached directory fds.
fn raise_fd_limit() {
    match wsfs::sys::raise_nofile_limit() {
        Ok((soft, hard)) => tracing::info!(
            soft,
            hard,
            dir_fd_budget = wsfs::overlay::dir_fd_budget(),
            "fd limit"
        ),
        Err(e) => {
            let (soft, hard) = wsfs::sys::nofile_limit();
            tracing::warn!(
                soft,
                hard,
                dir_fd_budget = wsfs::overlay::dir_fd_budget(),
                "cannot raise the fd limit: {e}"
            )
        }
    }
}
