//! Hide / scratch / protected rules. (Being written: see docs/CONTRACT.md.)
