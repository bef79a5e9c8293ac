//! [`tree`]: what a real directory holds, to compare before and after.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Sorted (path, content) listing of the real directory tree under `root`: a directory's
/// content is `<dir>`, a symlink's is `-> ` and its target.
pub fn tree(root: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            let mut v = b"-> ".to_vec();
            v.extend_from_slice(std::fs::read_link(&p).unwrap().as_os_str().as_bytes());
            out.push((rel, v));
        } else if ft.is_dir() {
            out.push((rel, b"<dir>".to_vec()));
            walk(root, &p, out);
        } else {
            out.push((rel, std::fs::read(&p).unwrap()));
        }
    }
}
