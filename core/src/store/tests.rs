use std::collections::HashSet;
use std::io::Write;
use std::os::fd::AsFd;

use super::*;

fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ContentStore::open(&dir.path().join("store")).unwrap();
    (dir, s)
}

fn file_with(dir: &Path, name: &str, bytes: &[u8]) -> File {
    let p = dir.join(name);
    File::create(&p).unwrap().write_all(bytes).unwrap();
    File::open(&p).unwrap()
}

#[test]
fn put_fd_stores_the_content_under_its_hash_and_reads_it_back() {
    let (dir, s) = store();
    let f = file_with(dir.path(), "a", b"hello store");
    let (h, size) = s.put_fd(f.as_fd(), None).unwrap();
    assert_eq!(h, ContentHash::of(b"hello store"));
    assert_eq!(size, 11);
    assert!(s.contains(&h));
    assert_eq!(s.read(&h).unwrap(), b"hello store");
    // The object is read-only, and its name is its hash.
    let path = s.object_path(&h);
    assert!(path.ends_with(&h.to_hex()[2..]));
    let mode = std::fs::metadata(&path).unwrap().permissions();
    assert!(mode.readonly());
}

#[test]
fn equal_content_is_stored_once() {
    let (dir, s) = store();
    let a = file_with(dir.path(), "a", b"same");
    let b = file_with(dir.path(), "b", b"same");
    let (ha, _) = s.put_fd(a.as_fd(), None).unwrap();
    let (hb, _) = s.put_fd(b.as_fd(), None).unwrap();
    assert_eq!(ha, hb);
    assert_eq!(s.put_bytes(b"same").unwrap(), ha);
    assert_eq!(s.list().unwrap().len(), 1);
    // Nothing is left in tmp/.
    assert_eq!(std::fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn an_expected_hash_that_does_not_match_the_copy_is_refused_and_nothing_is_kept() {
    let (dir, s) = store();
    let f = file_with(dir.path(), "a", b"actual");
    let wrong = ContentHash::of(b"expected");
    match s.put_fd(f.as_fd(), Some(wrong)) {
        Err(StoreError::Changed { expected, found }) => {
            assert_eq!(expected, wrong);
            assert_eq!(found, ContentHash::of(b"actual"));
        }
        other => panic!("{other:?}"),
    }
    assert!(s.list().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn empty_and_sparse_files_round_trip() {
    let (dir, s) = store();
    let empty = file_with(dir.path(), "e", b"");
    let (h, size) = s.put_fd(empty.as_fd(), None).unwrap();
    assert_eq!((h, size), (ContentHash::of(b""), 0));
    let p = dir.path().join("sparse");
    let f = File::create(&p).unwrap();
    f.set_len(3 << 20).unwrap();
    sys::pwrite(f.as_fd(), b"tail", (3 << 20) - 4).unwrap();
    let (h, size) = s.put_fd(File::open(&p).unwrap().as_fd(), None).unwrap();
    assert_eq!(size, 3 << 20);
    assert_eq!(s.read(&h).unwrap(), std::fs::read(&p).unwrap());
}

#[test]
fn a_missing_object_is_a_clear_error() {
    let (_dir, s) = store();
    let h = ContentHash::of(b"never stored");
    let e = s.read(&h).unwrap_err();
    assert!(matches!(e, StoreError::Missing(x) if x == h), "{e}");
    assert!(e.to_string().contains(&h.to_hex()), "{e}");
}

#[test]
fn verify_finds_missing_and_corrupt_objects() {
    let (_dir, s) = store();
    let good = s.put_bytes(b"good").unwrap();
    let bad = s.put_bytes(b"will be damaged").unwrap();
    let path = s.object_path(&bad);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).unwrap();
    std::fs::write(&path, b"damaged").unwrap();
    let absent = ContentHash::of(b"absent");
    let referenced: HashSet<_> = [good, bad, absent].into_iter().collect();
    let r = s.verify(&referenced).unwrap();
    assert_eq!(r.objects, 2);
    assert_eq!(r.missing, vec![absent]);
    assert_eq!(r.corrupt, vec![bad]);
}

#[test]
fn gc_keeps_what_it_is_given_and_reports_bytes_freed() {
    let (_dir, s) = store();
    let keep = s.put_bytes(b"keep me").unwrap();
    let drop1 = s.put_bytes(b"drop").unwrap();
    let drop2 = s.put_bytes(b"drop too").unwrap();
    let r = s.gc(&[keep].into_iter().collect()).unwrap();
    assert_eq!(r.removed, 2);
    assert_eq!(r.bytes_freed, 4 + 8);
    assert_eq!(r.kept, 1);
    assert!(s.contains(&keep));
    assert!(!s.contains(&drop1) && !s.contains(&drop2));
}

#[test]
fn open_drops_temporary_files_a_crash_left() {
    let (dir, s) = store();
    std::fs::write(s.root().join("tmp").join("123-0"), b"torn").unwrap();
    drop(s);
    let s = ContentStore::open(&dir.path().join("store")).unwrap();
    assert_eq!(std::fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);
}
