//! Hide / scratch / protected rules. (Being written: see docs/CONTRACT.md.)

/// Placeholder until the policy lands.
pub struct Policy;
