//! What every command shares about its result: how it ended, and JSON on stdout.

use std::io::Write;

use serde::Serialize;

/// How a command ended (errors are returned as `Err`).
pub enum Outcome {
    /// Success.
    Ok,
    /// A commit was refused (conflicts or protected paths).
    Refused,
    /// The command ran but found problems it reported (e.g. `verify`).
    Failed,
    /// A command run in the workspace ended with this exit code.
    Exit(i64),
}

/// Writes `value` to `out` as pretty JSON and a newline.
pub fn print_json(out: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
