//! Lossless serde for byte strings (file names, symlink targets).
//!
//! Valid UTF-8 is written as a plain JSON string; anything else as `{"b64": "<base64>"}`.
//! Readers accept both forms. This is the documented JSON encoding of names in the API.

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Text(String),
    Bytes { b64: String },
}

/// Serializes bytes as text or `{"b64": ...}`.
pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Repr::Text(text.to_owned()).serialize(s),
        Err(_) => Repr::Bytes {
            b64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
        .serialize(s),
    }
}

/// Inverse of [`serialize`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    match Repr::deserialize(d)? {
        Repr::Text(t) => Ok(t.into_bytes()),
        Repr::Bytes { b64 } => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(serde::de::Error::custom),
    }
}

/// Same encoding for `Vec<u8>` fields via `#[serde(with = "crate::bytes_serde::vec")]`.
pub mod vec {
    pub use super::{deserialize, serialize};
}
