//! Content hashes (blake3) with hex display and serde.

use std::fmt;
use std::io;
use std::os::fd::BorrowedFd;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::sys;

/// A blake3 digest of file content (or of a journal record).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hash of a byte slice.
    pub fn of(bytes: &[u8]) -> Self {
        ContentHash(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from(self.0).to_hex().to_string()
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        blake3::Hash::from_hex(s)
            .ok()
            .map(|h| ContentHash(*h.as_bytes()))
    }

    /// First 12 hex digits, for humans.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.short())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for ContentHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ContentHash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("bad blake3 hex"))
    }
}

/// Hashes a whole file given an fd opened for reading (uses `pread`, so the fd offset is kept)
/// and returns the number of bytes hashed with the hash: the size that
/// belongs to this content even if a writer changes the file's length meanwhile.
pub(crate) fn hash_fd_len(fd: BorrowedFd<'_>) -> io::Result<(ContentHash, u64)> {
    let size = sys::fstat(fd)?.st_size.max(0) as u64;
    // A buffer sized to the file (small files are the common case), at most 1 MiB.
    let cap = size.clamp(4096, 1024 * 1024) as usize;
    let mut buf = vec![0u8; cap];
    let mut hasher = blake3::Hasher::new();
    let mut off = 0u64;
    loop {
        let n = sys::pread(fd, &mut buf, off)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        off += n as u64;
    }
    Ok((ContentHash(*hasher.finalize().as_bytes()), off))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_file_hash() {
        let h = ContentHash::of(b"hello");
        assert_eq!(ContentHash::from_hex(&h.to_hex()), Some(h));
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), b"hello").unwrap();
        let f = std::fs::File::open(t.path()).unwrap();
        use std::os::fd::AsFd;
        assert_eq!(hash_fd_len(f.as_fd()).unwrap().0, h);
    }

    /// The length returned is the number of bytes hashed, across buffer refills (a file
    /// larger than the 1 MiB buffer) and for an empty file.
    #[test]
    fn hash_fd_len_reports_the_bytes_hashed() {
        use std::os::fd::AsFd;
        for len in [0usize, 5, 3 * 1024 * 1024 + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let t = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(t.path(), &data).unwrap();
            let f = std::fs::File::open(t.path()).unwrap();
            let got = hash_fd_len(f.as_fd()).unwrap();
            assert_eq!(got, (ContentHash::of(&data), len as u64), "length {len}");
        }
    }
}
