//! The hashed change journal. (Being written: see docs/CONTRACT.md.)

pub mod record;
