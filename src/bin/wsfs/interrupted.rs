//! A commit whose daemon stopped mid-stream: say what that means and, when autostart is on,
//! start mountd (which completes the commit while it opens the workspace) and report what
//! recovery did.

use std::collections::HashSet;

use wsfs::client::{Autostart, Client, ClientError};
use wsfs::journal::record::{Op, Record};

use crate::output::Outcome;

/// Handles `err` (a [`ClientError::CommitInterrupted`]) for the commit of workspace `ws`
/// requested at `started_ns` (wall clock, ns since the epoch). The command fails (exit 1)
/// either way: its own report never arrived.
pub async fn commit(
    err: ClientError,
    client: &Client,
    ws: &str,
    started_ns: i64,
    autostart: Option<&Autostart>,
) -> anyhow::Result<Outcome> {
    eprintln!("wsfs: {err}");
    let Some(autostart) = autostart else {
        return Ok(Outcome::Failed);
    };
    eprintln!("wsfs: starting mountd to complete the commit");
    let client = restart(client, autostart).await?;
    for p in client.daemon().await?.problems {
        eprintln!("wsfs: recovery: {p}");
    }
    let records = client.log(ws).await?;
    eprintln!("wsfs: {}", recovery_summary(&records, started_ns));
    Ok(Outcome::Failed)
}

/// Connects to mountd, starting it when nothing answers. The old daemon may still be dying
/// (a core dump keeps its socket open, its state lock held), so failures are retried for a
/// while.
async fn restart(client: &Client, autostart: &Autostart) -> anyhow::Result<Client> {
    let deadline = std::time::Instant::now() + RESTART_LIMIT;
    loop {
        match Client::connect_or_start(client.socket(), Some(autostart)).await {
            Ok(c) => return Ok(c),
            Err(e) if std::time::Instant::now() >= deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}

/// How long a restart after an interrupted commit keeps trying.
const RESTART_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What happened to the commit begun at or after `started_ns`, from the journal.
fn recovery_summary(records: &[Record], started_ns: i64) -> String {
    let begin = records
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, r)| match &r.draft.op {
            Op::CommitBegin { id, paths, .. } if r.time_ns >= started_ns => {
                Some((i, id, paths.len()))
            }
            _ => None,
        });
    let Some((at, id, listed)) = begin else {
        return "mountd stopped before the commit began: nothing was applied; commit again".into();
    };
    // Recovery applies what was left as a commit of its own, nested before the original's end.
    let mut applied = HashSet::new();
    let mut ended = false;
    for r in &records[at + 1..] {
        match &r.draft.op {
            Op::CommitApplied { .. } => {
                applied.insert(&r.draft.path);
            }
            Op::CommitEnd { id: end } if end == id => {
                ended = true;
                break;
            }
            _ => {}
        }
    }
    if ended {
        format!(
            "mountd completed commit {id}: {} of {listed} path(s) applied; `wsfs status` shows anything left (a path the host changed meanwhile stays in the workspace)",
            applied.len().min(listed)
        )
    } else {
        format!(
            "commit {id} is still incomplete ({} of {listed} path(s) applied); see the mountd log",
            applied.len().min(listed)
        )
    }
}

/// Wall-clock time in ns since the epoch (the journal's `time_ns` clock).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
