//! Commit and discard engine. (Being written.)
