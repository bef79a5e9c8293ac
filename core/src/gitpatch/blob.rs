//! Git object ids of blobs (sha1 of `blob <len>\0` + content).

/// The id git gives a blob of `data` (40 hex digits, sha1 object format).
pub(crate) fn blob_id(data: &[u8]) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(format!("blob {}\0", data.len()).as_bytes());
    h.update(data);
    h.digest().to_string()
}

/// The all-zero id git writes for a missing side.
pub(crate) const NULL_ID: &str = "0000000000000000000000000000000000000000";

#[cfg(test)]
mod tests {
    use super::blob_id;

    #[test]
    fn ids_of_known_blobs() {
        assert_eq!(blob_id(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
        assert_eq!(
            blob_id(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }
}
