//! Lossless serde for byte strings (file names, symlink targets).
//!
//! Valid UTF-8 is written as a plain JSON string; anything else as `{"b64": "<base64>"}`.
//! Readers accept both forms. This is the documented JSON encoding of names in the API.

use std::fmt;

use base64::Engine;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserializer, Serialize, Serializer};

#[derive(Serialize)]
#[serde(untagged)]
enum Repr<'a> {
    Text(&'a str),
    Bytes { b64: String },
}

/// Serializes bytes as text or `{"b64": ...}`.
pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Repr::Text(text).serialize(s),
        Err(_) => Repr::Bytes {
            b64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
        .serialize(s),
    }
}

/// Inverse of [`serialize`]. The object form must have exactly the one field `b64`: any other
/// field is refused, like unknown fields anywhere in the API.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_any(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a string or {"b64": "<base64>"}"#)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        Ok(v.as_bytes().to_vec())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Vec<u8>, E> {
        Ok(v.into_bytes())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<u8>, A::Error> {
        let mut b64: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "b64" {
                return Err(de::Error::unknown_field(&key, &["b64"]));
            }
            if b64.is_some() {
                return Err(de::Error::duplicate_field("b64"));
            }
            b64 = Some(map.next_value()?);
        }
        let b64 = b64.ok_or_else(|| de::Error::missing_field("b64"))?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(de::Error::custom)
    }
}

/// Same encoding for `Vec<u8>` fields via `#[serde(with = "crate::bytes_serde::vec")]`.
pub mod vec {
    pub use super::{deserialize, serialize};
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
    struct Name(#[serde(with = "super::vec")] Vec<u8>);

    fn parse(json: &str) -> Result<Vec<u8>, String> {
        serde_json::from_str::<Name>(json)
            .map(|n| n.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn both_forms_round_trip() {
        for bytes in [&b"plain"[..], b"caf\xe9", b""] {
            let json = serde_json::to_string(&Name(bytes.to_vec())).unwrap();
            assert_eq!(parse(&json).unwrap(), bytes, "{json}");
        }
        assert_eq!(parse(r#"{"b64":"Lg=="}"#).unwrap(), b".");
    }

    #[test]
    fn object_form_is_strict() {
        let err = parse(r#"{"b64":"YQ==","x":1}"#).unwrap_err();
        assert!(err.contains("unknown field `x`"), "{err}");
        let err = parse(r#"{"B64":"YQ=="}"#).unwrap_err();
        assert!(err.contains("unknown field `B64`"), "{err}");
        let err = parse(r#"{}"#).unwrap_err();
        assert!(err.contains("missing field `b64`"), "{err}");
        let err = parse(r#"{"b64":"YQ==","b64":"Yg=="}"#).unwrap_err();
        assert!(err.contains("duplicate field"), "{err}");
        assert!(parse(r#"{"b64":"!!"}"#).is_err());
        assert!(parse("42").is_err());
        assert!(parse("[97]").is_err());
    }
}
