//! Results and the markdown report: median seconds per cell and the ratio to native.

use std::fmt::Write as _;

use crate::systems::SystemKind;
use crate::util::median;

/// What one cell (row × system) came to.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Timed runs, in seconds.
    Samples(Vec<f64>),
    /// The row has no meaning for this system (e.g. commit on kernel overlayfs).
    NotApplicable,
    /// The system was not run (reason).
    Skipped,
    /// The cell failed (error).
    Failed(String),
}

/// All cells, in the order they were measured.
#[derive(Default)]
pub struct Results {
    rows: Vec<String>,
    cells: Vec<(String, SystemKind, Outcome)>,
    /// mountd peak RSS (KiB) per workload name.
    pub rss: Vec<(String, u64)>,
}

impl Results {
    /// Records one cell.
    pub fn add(&mut self, row: &str, sys: SystemKind, outcome: Outcome) {
        if !self.rows.iter().any(|r| r == row) {
            self.rows.push(row.to_string());
        }
        self.cells.push((row.to_string(), sys, outcome));
    }

    fn get(&self, row: &str, sys: SystemKind) -> Option<&Outcome> {
        self.cells
            .iter()
            .find(|(r, s, _)| r == row && *s == sys)
            .map(|(_, _, o)| o)
    }

    /// The median of a cell, if it has samples.
    pub fn median(&self, row: &str, sys: SystemKind) -> Option<f64> {
        match self.get(row, sys)? {
            Outcome::Samples(v) if !v.is_empty() => Some(median(v)),
            _ => None,
        }
    }

    /// The markdown table: one row per measured row, one column per system.
    pub fn table(&self, systems: &[SystemKind]) -> String {
        let mut s = String::from("| workload |");
        for k in systems {
            let _ = write!(s, " {} |", k.name());
        }
        s.push_str("\n|---|");
        for _ in systems {
            s.push_str("---|");
        }
        s.push('\n');
        for row in &self.rows {
            let _ = write!(s, "| {row} |");
            let native = self.median(row, SystemKind::Native);
            for &k in systems {
                let _ = write!(s, " {} |", self.cell_text(row, k, native));
            }
            s.push('\n');
        }
        s
    }

    /// One cell of the table: `median (ratio×)`, `n/a`, `skipped` or `failed`.
    fn cell_text(&self, row: &str, sys: SystemKind, native: Option<f64>) -> String {
        match self.get(row, sys) {
            None => "–".into(),
            Some(Outcome::NotApplicable) => "n/a".into(),
            Some(Outcome::Skipped) => "skipped".into(),
            Some(Outcome::Failed(_)) => "**failed**".into(),
            Some(Outcome::Samples(v)) if v.is_empty() => "–".into(),
            Some(Outcome::Samples(v)) => {
                let m = median(v);
                match native {
                    Some(n) if sys != SystemKind::Native && n > 0.0 => {
                        format!("{} ({})", fmt_secs(m), fmt_ratio(m / n))
                    }
                    _ => fmt_secs(m),
                }
            }
        }
    }

    /// Failures and skips with their reasons, and every sample, for the report's appendix.
    pub fn details(&self) -> String {
        let mut s = String::new();
        for (row, sys, o) in &self.cells {
            match o {
                Outcome::Failed(e) => {
                    let _ = writeln!(s, "- FAILED {row} on {}: {e}", sys.name());
                }
                Outcome::Samples(v) => {
                    let list: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
                    let _ = writeln!(s, "- {row} on {}: [{}] s", sys.name(), list.join(", "));
                }
                Outcome::NotApplicable | Outcome::Skipped => {}
            }
        }
        s
    }
}

/// Seconds, in ms below one second.
pub fn fmt_secs(x: f64) -> String {
    if x < 0.01 {
        format!("{:.2} ms", x * 1e3)
    } else if x < 1.0 {
        format!("{:.0} ms", x * 1e3)
    } else {
        format!("{x:.2} s")
    }
}

/// A ratio to native: `1.23×`, or `1/450×` when far below one.
pub fn fmt_ratio(r: f64) -> String {
    if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("1/{:.0}×", 1.0 / r)
    }
}
