//! The hashed change journal. (Being written: see docs/CONTRACT.md.)

pub mod record;

/// Placeholder until the journal lands.
pub struct Journal;
