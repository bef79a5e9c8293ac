//! Tar archives for the Docker API (the `tar` crate does the format): files uploaded into a
//! container with their mode and owner, and one file read out of a container archive.

use std::path::Path;

/// Builds an uncompressed tar archive in memory.
pub struct TarBuilder {
    inner: tar::Builder<Vec<u8>>,
    entries: usize,
}

/// Owner, mode and time of an entry.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    /// Permission bits (and setuid/setgid/sticky).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Modification time (Unix seconds).
    pub mtime: u64,
}

impl Default for TarBuilder {
    fn default() -> TarBuilder {
        TarBuilder::new()
    }
}

impl TarBuilder {
    /// An empty archive.
    pub fn new() -> TarBuilder {
        TarBuilder {
            inner: tar::Builder::new(Vec::new()),
            entries: 0,
        }
    }

    fn header(kind: tar::EntryType, size: u64, meta: Meta) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(meta.mode & 0o7777);
        h.set_uid(u64::from(meta.uid));
        h.set_gid(u64::from(meta.gid));
        h.set_mtime(meta.mtime);
        h
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, data: &[u8], meta: Meta) -> std::io::Result<()> {
        let mut h = Self::header(tar::EntryType::Regular, data.len() as u64, meta);
        self.inner.append_data(&mut h, path, data)?;
        self.entries += 1;
        Ok(())
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str, meta: Meta) -> std::io::Result<()> {
        let mut h = Self::header(tar::EntryType::Directory, 0, meta);
        self.inner.append_data(&mut h, path, std::io::empty())?;
        self.entries += 1;
        Ok(())
    }

    /// Adds a symbolic link to `target` (any bytes).
    pub fn symlink(&mut self, path: &str, target: &Path, meta: Meta) -> std::io::Result<()> {
        let mut h = Self::header(tar::EntryType::Symlink, 0, meta);
        self.inner.append_link(&mut h, path, target)?;
        self.entries += 1;
        Ok(())
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The finished archive.
    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        self.inner.into_inner()
    }
}

/// One entry read back from an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path as stored.
    pub name: String,
    /// Regular file (as opposed to a directory, link or other kind).
    pub is_file: bool,
    /// Content (files only).
    pub data: Vec<u8>,
}

/// Reads the entries of an uncompressed tar archive.
pub(crate) fn read_entries(archive: &[u8]) -> std::io::Result<Vec<Entry>> {
    use std::io::Read;
    let mut out = Vec::new();
    for e in tar::Archive::new(archive).entries()? {
        let mut e = e?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let is_file = e.header().entry_type().is_file();
        let mut data = Vec::new();
        if is_file {
            e.read_to_end(&mut data)?;
        }
        out.push(Entry {
            name,
            is_file,
            data,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_long_names_and_owners() {
        let m = Meta {
            mode: 0o600,
            uid: 4242,
            gid: 4242,
            mtime: 1,
        };
        let mut b = TarBuilder::new();
        assert!(b.is_empty());
        b.dir("home/a/.ssh", m).unwrap();
        b.file("home/a/.ssh/key", b"secret", m).unwrap();
        let long = format!("d/{}", "x".repeat(150));
        b.file(&long, b"y", m).unwrap();
        b.symlink("l", Path::new(&"t".repeat(120)), m).unwrap();
        assert!(!b.is_empty());
        let t = b.finish().unwrap();
        let e = read_entries(&t).unwrap();
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].name.trim_end_matches('/'), "home/a/.ssh");
        assert!(!e[0].is_file);
        assert_eq!(e[1].data, b"secret");
        assert_eq!(e[2].name, long);
        assert!(!e[3].is_file);
        // Owner and mode survive (what the container sees for an uploaded key).
        let mut a = tar::Archive::new(&t[..]);
        let key = a.entries().unwrap().nth(1).unwrap().unwrap();
        assert_eq!(key.header().uid().unwrap(), 4242);
        assert_eq!(key.header().mode().unwrap(), 0o600);
    }
}
