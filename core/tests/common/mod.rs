//! Test fixture: a host project + state dir + an open workspace, and path-based helpers that
//! drive the inode-based overlay API the way the kernel would.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wsfs_core::overlay::{Attr, Ino, Overlay, Req, ROOT_INO};
use wsfs_core::state::StateRoot;
use wsfs_core::workspace::Workspace;
use wsfs_core::RelPath;

pub struct Fixture {
    pub project: tempfile::TempDir,
    pub state: tempfile::TempDir,
    pub ws: Option<Arc<Workspace>>,
}

pub const REQ: Req = Req {
    uid: 0,
    gid: 0,
    pid: 1,
};

impl Fixture {
    /// A project with `files` (path, content) and a fresh workspace "t".
    pub fn new(files: &[(&str, &str)]) -> Fixture {
        let project = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let full = project.path().join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, c).unwrap();
        }
        let state = tempfile::tempdir().unwrap();
        let ws = Workspace::create(&StateRoot::new(state.path()), "t", project.path()).unwrap();
        Fixture {
            project,
            state,
            ws: Some(ws),
        }
    }

    pub fn ws(&self) -> &Arc<Workspace> {
        self.ws.as_ref().unwrap()
    }

    pub fn ov(&self) -> &Arc<Overlay> {
        self.ws().overlay()
    }

    /// Closes and reopens the workspace (what a daemon restart does).
    pub fn reopen(&mut self) {
        self.ws = None;
        self.ws = Some(Workspace::open(&StateRoot::new(self.state.path()), "t").unwrap());
    }

    pub fn host(&self, p: &str) -> PathBuf {
        self.project.path().join(p)
    }

    pub fn host_read(&self, p: &str) -> Option<Vec<u8>> {
        std::fs::read(self.host(p)).ok()
    }
}

pub fn rel(p: &[u8]) -> RelPath {
    RelPath::new(p).unwrap()
}

/// Resolves a path to an inode by successive lookups.
pub fn ino(ov: &Overlay, p: &[u8]) -> wsfs_core::Result<Ino> {
    let mut cur = ROOT_INO;
    for c in rel(p).components() {
        cur = ov.lookup(cur, c)?.ino;
    }
    Ok(cur)
}

pub fn parent_and_name(ov: &Overlay, p: &[u8]) -> (Ino, Vec<u8>) {
    let r = rel(p);
    let (parent, name) = r.split_last().unwrap();
    (
        ino(ov, parent.as_bytes()).unwrap(),
        name.as_bytes().to_vec(),
    )
}

pub fn stat(ov: &Overlay, p: &[u8]) -> wsfs_core::Result<Attr> {
    let i = ino(ov, p)?;
    ov.getattr(i, None)
}

pub fn write(ov: &Overlay, p: &[u8], data: &[u8]) {
    let (parent, name) = parent_and_name(ov, p);
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

pub fn append(ov: &Overlay, p: &[u8], data: &[u8]) {
    let i = ino(ov, p).unwrap();
    let fh = ov
        .open(&REQ, i, libc::O_WRONLY | libc::O_APPEND)
        .unwrap()
        .fh;
    ov.write(fh, 0, data).unwrap();
    ov.release(fh).unwrap();
}

pub fn read(ov: &Overlay, p: &[u8]) -> wsfs_core::Result<Vec<u8>> {
    let i = ino(ov, p)?;
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

pub fn mkdir(ov: &Overlay, p: &[u8]) -> wsfs_core::Result<Attr> {
    let (parent, name) = parent_and_name(ov, p);
    ov.mkdir(&REQ, parent, OsStr::from_bytes(&name), 0o755, 0o022)
}

pub fn unlink(ov: &Overlay, p: &[u8]) -> wsfs_core::Result<()> {
    let (parent, name) = parent_and_name(ov, p);
    ov.unlink(parent, OsStr::from_bytes(&name))
}

pub fn rmdir(ov: &Overlay, p: &[u8]) -> wsfs_core::Result<()> {
    let (parent, name) = parent_and_name(ov, p);
    ov.rmdir(parent, OsStr::from_bytes(&name))
}

pub fn rename(ov: &Overlay, a: &[u8], b: &[u8], flags: u32) -> wsfs_core::Result<()> {
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

pub fn symlink(ov: &Overlay, p: &[u8], target: &[u8]) -> wsfs_core::Result<Attr> {
    let (parent, name) = parent_and_name(ov, p);
    ov.symlink(
        &REQ,
        parent,
        OsStr::from_bytes(&name),
        OsStr::from_bytes(target),
    )
}

/// Sorted names of a merged directory (no . and ..).
pub fn list(ov: &Overlay, p: &[u8]) -> Vec<Vec<u8>> {
    let i = ino(ov, p).unwrap();
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

/// Sorted (path, content-or-symlink-marker) listing of a real directory tree.
pub fn tree(root: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let relp = p
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                let mut v = b"-> ".to_vec();
                v.extend_from_slice(std::fs::read_link(&p).unwrap().as_os_str().as_bytes());
                out.push((relp, v));
            } else if ft.is_dir() {
                out.push((relp, b"<dir>".to_vec()));
                walk(root, &p, out);
            } else {
                out.push((relp, std::fs::read(&p).unwrap()));
            }
        }
    }
    walk(root, root, &mut out);
    out.sort();
    out
}
