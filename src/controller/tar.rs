//! A minimal tar (ustar + GNU long names) writer and reader: enough to upload files into a
//! container with their mode and owner, and to read one file out of a container archive.

const BLOCK: usize = 512;

/// Builds a tar archive in memory.
#[derive(Default)]
pub struct TarBuilder {
    buf: Vec<u8>,
}

/// Owner and mode of an entry.
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

fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let s = format!("{value:0width$o}");
    let s = s.as_bytes();
    let s = &s[s.len().saturating_sub(width)..];
    field[..s.len()].copy_from_slice(s);
    field[width] = 0;
}

impl TarBuilder {
    /// An empty archive.
    pub fn new() -> TarBuilder {
        TarBuilder::default()
    }

    fn header(&mut self, name: &[u8], kind: u8, size: u64, link: &[u8], meta: Meta) {
        if name.len() > 100 {
            let mut long = name.to_vec();
            long.push(0);
            self.raw_entry(b"././@LongLink", b'L', &long, b"", meta);
        }
        if link.len() > 100 {
            let mut long = link.to_vec();
            long.push(0);
            self.raw_entry(b"././@LongLink", b'K', &long, b"", meta);
        }
        let mut h = [0u8; BLOCK];
        let n = name.len().min(100);
        h[..n].copy_from_slice(&name[..n]);
        octal(&mut h[100..108], u64::from(meta.mode & 0o7777));
        octal(&mut h[108..116], u64::from(meta.uid));
        octal(&mut h[116..124], u64::from(meta.gid));
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], meta.mtime);
        h[156] = kind;
        let l = link.len().min(100);
        h[157..157 + l].copy_from_slice(&link[..l]);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        octal(&mut h[148..155], sum);
        h[155] = b' ';
        self.buf.extend_from_slice(&h);
    }

    fn raw_entry(&mut self, name: &[u8], kind: u8, data: &[u8], link: &[u8], meta: Meta) {
        self.header(name, kind, data.len() as u64, link, meta);
        self.buf.extend_from_slice(data);
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, data: &[u8], meta: Meta) {
        self.raw_entry(path.as_bytes(), b'0', data, b"", meta);
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: &str, meta: Meta) {
        let mut p = path.trim_end_matches('/').to_string();
        p.push('/');
        self.raw_entry(p.as_bytes(), b'5', b"", b"", meta);
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, path: &str, target: &[u8], meta: Meta) {
        self.raw_entry(path.as_bytes(), b'2', b"", target, meta);
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The archive with its two end-of-archive blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
        self.buf
    }
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let s: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// One entry read back from an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path as stored.
    pub name: String,
    /// Type flag (`b'0'` file, `b'5'` dir, `b'2'` symlink...).
    pub kind: u8,
    /// Content (files only).
    pub data: Vec<u8>,
}

/// Reads the entries of an uncompressed tar archive (GNU long names understood).
pub fn read_entries(mut tar: &[u8]) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    let mut long_name: Option<String> = None;
    while tar.len() >= BLOCK {
        let h = &tar[..BLOCK];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let size = parse_octal(&h[124..136]).ok_or("bad size field in tar header")? as usize;
        let padded = size.div_ceil(BLOCK) * BLOCK;
        if tar.len() < BLOCK + padded {
            return Err("truncated tar archive".into());
        }
        let data = &tar[BLOCK..BLOCK + size];
        let kind = h[156];
        let field = |r: std::ops::Range<usize>| {
            let f = &h[r];
            let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
            String::from_utf8_lossy(&f[..end]).into_owned()
        };
        match kind {
            b'L' => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                long_name = Some(String::from_utf8_lossy(&data[..end]).into_owned());
            }
            b'x' | b'g' | b'K' => {}
            _ => {
                let name = long_name.take().unwrap_or_else(|| {
                    let prefix = field(345..500);
                    let name = field(0..100);
                    if prefix.is_empty() {
                        name
                    } else {
                        format!("{prefix}/{name}")
                    }
                });
                out.push(Entry {
                    name,
                    kind,
                    data: data.to_vec(),
                });
            }
        }
        tar = &tar[BLOCK + padded..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Meta {
            mode: 0o600,
            uid: 4242,
            gid: 4242,
            mtime: 1,
        };
        let mut b = TarBuilder::new();
        b.dir("home/a/.ssh", m);
        b.file("home/a/.ssh/key", b"secret", m);
        let long = format!("d/{}", "x".repeat(150));
        b.file(&long, b"y", m);
        b.symlink("l", b"target", m);
        let t = b.finish();
        let e = read_entries(&t).unwrap();
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].name, "home/a/.ssh/");
        assert_eq!(e[1].data, b"secret");
        assert_eq!(e[2].name, long);
        assert_eq!(e[3].kind, b'2');
    }
}
