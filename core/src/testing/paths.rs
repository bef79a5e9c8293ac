//! Drive the inode-based overlay API by path, as the kernel would: every helper resolves the
//! path by successive lookups from the root. Paths are bytes relative to the root (`""` is the
//! root itself); the helpers panic where a test would only unwrap, and return the core's
//! [`Result`] where tests look at the error.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::overlay::{Attr, Ino, Opened, Overlay, Req, ROOT_INO};
use crate::{RelPath, Result};

/// The caller of every request the helpers make: root.
pub const REQ: Req = Req {
    uid: 0,
    gid: 0,
    pid: 1,
};

/// `p` as a [`RelPath`]; panics if it is not one.
pub fn p(p: impl AsRef<[u8]>) -> RelPath {
    RelPath::new(p).unwrap()
}

/// Resolves `path` to its node by successive lookups.
pub fn ino(ov: &Overlay, path: impl AsRef<[u8]>) -> Result<Ino> {
    let mut cur = ROOT_INO;
    for c in p(path).components() {
        cur = ov.lookup(cur, c)?.ino;
    }
    Ok(cur)
}

/// The node of `path`'s parent directory and `path`'s last name.
pub fn parent_and_name(ov: &Overlay, path: impl AsRef<[u8]>) -> (Ino, Vec<u8>) {
    let r = p(path);
    let (parent, name) = r.split_last().unwrap();
    (
        ino(ov, parent.as_bytes()).unwrap(),
        name.as_bytes().to_vec(),
    )
}

/// The attributes of `path`.
pub fn stat(ov: &Overlay, path: impl AsRef<[u8]>) -> Result<Attr> {
    let i = ino(ov, path)?;
    ov.getattr(i, None)
}

/// Creates the new file `path` (mode 0644, no umask) with open `flags` and leaves it open.
pub fn create_open(ov: &Overlay, path: impl AsRef<[u8]>, flags: i32) -> (Ino, Opened) {
    let (parent, name) = parent_and_name(ov, path);
    let (attr, opened) = ov
        .create(&REQ, parent, OsStr::from_bytes(&name), 0o644, 0, flags)
        .unwrap();
    (attr.ino, opened)
}

/// Creates the new file `path`, writes `data`, closes it; returns its node.
pub fn create(ov: &Overlay, path: impl AsRef<[u8]>, data: &[u8]) -> Ino {
    let (ino, opened) = create_open(ov, path, libc::O_WRONLY);
    ov.write(opened.fh, 0, data).unwrap();
    ov.release(opened.fh).unwrap();
    ino
}

/// Writes `data` as the whole content of `path` (`O_TRUNC`), creating it (0644 under umask
/// 022) if it does not exist.
pub fn write(ov: &Overlay, path: impl AsRef<[u8]>, data: &[u8]) {
    let (parent, name) = parent_and_name(ov, path);
    let flags = libc::O_WRONLY | libc::O_TRUNC;
    let fh = match ov.lookup(parent, OsStr::from_bytes(&name)) {
        Ok(a) => ov.open(&REQ, a.ino, flags).unwrap().fh,
        Err(_) => {
            ov.create(&REQ, parent, OsStr::from_bytes(&name), 0o644, 0o022, flags)
                .unwrap()
                .1
                .fh
        }
    };
    if !data.is_empty() {
        assert_eq!(ov.write(fh, 0, data).unwrap() as usize, data.len());
    }
    ov.release(fh).unwrap();
}

/// Appends `data` to the existing file `path` (`O_APPEND`).
pub fn append(ov: &Overlay, path: impl AsRef<[u8]>, data: &[u8]) {
    let i = ino(ov, path).unwrap();
    let fh = ov
        .open(&REQ, i, libc::O_WRONLY | libc::O_APPEND)
        .unwrap()
        .fh;
    ov.write(fh, 0, data).unwrap();
    ov.release(fh).unwrap();
}

/// The whole content of `path`, read through an open handle.
pub fn read(ov: &Overlay, path: impl AsRef<[u8]>) -> Result<Vec<u8>> {
    let i = ino(ov, path)?;
    let fh = ov.open(&REQ, i, libc::O_RDONLY)?.fh;
    let mut out = Vec::new();
    loop {
        let chunk = ov.read(fh, out.len() as u64, 1 << 16)?;
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    ov.release(fh)?;
    Ok(out)
}

/// Makes the directory `path` (0755 under umask 022).
pub fn mkdir(ov: &Overlay, path: impl AsRef<[u8]>) -> Result<Attr> {
    let (parent, name) = parent_and_name(ov, path);
    ov.mkdir(&REQ, parent, OsStr::from_bytes(&name), 0o755, 0o022)
}

/// Removes the file `path`.
pub fn unlink(ov: &Overlay, path: impl AsRef<[u8]>) -> Result<()> {
    let (parent, name) = parent_and_name(ov, path);
    ov.unlink(parent, OsStr::from_bytes(&name))
}

/// Removes the directory `path`.
pub fn rmdir(ov: &Overlay, path: impl AsRef<[u8]>) -> Result<()> {
    let (parent, name) = parent_and_name(ov, path);
    ov.rmdir(parent, OsStr::from_bytes(&name))
}

/// Renames `a` to `b` with `renameat2` `flags`.
pub fn rename(ov: &Overlay, a: impl AsRef<[u8]>, b: impl AsRef<[u8]>, flags: u32) -> Result<()> {
    let (pa, na) = parent_and_name(ov, a);
    let (pb, nb) = parent_and_name(ov, b);
    ov.rename(
        pa,
        OsStr::from_bytes(&na),
        pb,
        OsStr::from_bytes(&nb),
        flags,
    )
}

/// Makes the symlink `path` pointing to `target`.
pub fn symlink(ov: &Overlay, path: impl AsRef<[u8]>, target: &[u8]) -> Result<Attr> {
    let (parent, name) = parent_and_name(ov, path);
    ov.symlink(
        &REQ,
        parent,
        OsStr::from_bytes(&name),
        OsStr::from_bytes(target),
    )
}

/// Sorted names of the merged directory `path` (no `.` and `..`).
pub fn list(ov: &Overlay, path: impl AsRef<[u8]>) -> Vec<Vec<u8>> {
    let i = ino(ov, path).unwrap();
    let fh = ov.opendir(i).unwrap();
    let mut names = Vec::new();
    ov.readdir(i, fh, 0, &mut |e| {
        if e.name != "." && e.name != ".." {
            names.push(e.name.as_bytes().to_vec());
        }
        true
    })
    .unwrap();
    ov.releasedir(fh);
    names.sort();
    names
}
