//! Journal unit tests: round trip, torn tails, corruption, concurrency, rollback, truncation.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use proptest::prelude::*;

use super::codec::{self, LineError};
use super::*;

fn file_draft(path: &[u8], size: u64) -> Draft {
    Draft::new(
        Op::Write,
        RelPath::new(path).unwrap(),
        Some(EntryState::Absent),
        EntryState::File {
            hash: Some(ContentHash::of(path)),
            mode: 0o644,
            size,
        },
    )
}

fn sample_drafts() -> Vec<Draft> {
    vec![
        file_draft(b"caf\xe9", 3),
        Draft::new(
            Op::Symlink,
            RelPath::new("dir/link").unwrap(),
            Some(EntryState::Absent),
            EntryState::Symlink {
                target: b"../t\xffarget".to_vec(),
            },
        ),
        Draft::new(
            Op::Symlink,
            RelPath::new("utf8-link").unwrap(),
            None,
            EntryState::Symlink {
                target: "caf\u{e9}/x y\n\"q\"".as_bytes().to_vec(),
            },
        ),
        Draft {
            op: Op::Rename,
            path: RelPath::new(b"a/\x80old").unwrap(),
            base: None,
            new: EntryState::Absent,
            to: Some(Target {
                path: RelPath::new("b/new").unwrap(),
                base: Some(EntryState::Dir { mode: 0o755 }),
                new: EntryState::File {
                    hash: None,
                    mode: 0o600,
                    size: 0,
                },
            }),
            by: Some(Writer {
                pid: 4242,
                comm: "caf\u{e9} \"x\"".into(),
                container: Some("ab".repeat(32)),
            }),
        },
        Draft::control(Op::CommitBegin {
            id: "c1".into(),
            paths: vec![
                RelPath::new(b"caf\xe9").unwrap(),
                RelPath::new("x").unwrap(),
            ],
            prior: vec![
                EntryState::Absent,
                EntryState::Symlink {
                    target: b"t".to_vec(),
                },
            ],
        }),
        Draft::control(Op::CommitEnd { id: "c1".into() }),
    ]
}

/// A journal at `dir/j` holding `n` Write records; returns its path and the records.
fn journal_with(dir: &Path, n: usize) -> (PathBuf, Vec<Record>) {
    let path = dir.join("j");
    let (j, _) = Journal::open(&path).unwrap();
    let recs = (0..n)
        .map(|i| {
            j.append(file_draft(format!("f{i}").as_bytes(), i as u64))
                .unwrap()
        })
        .collect();
    (path, recs)
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Byte offsets just after each `\n`.
fn line_ends(data: &[u8]) -> Vec<usize> {
    data.iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .map(|(i, _)| i + 1)
        .collect()
}

fn assert_corrupt(res: Result<(Journal, Replay)>, needle: &str) {
    match res {
        Err(Error::JournalCorrupt { reason, .. }) => {
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
        }
        Err(e) => panic!("expected JournalCorrupt, got {e}"),
        Ok(_) => panic!("expected JournalCorrupt, got a journal"),
    }
}

/// Re-encodes line `idx` (0-based) of the file after `edit` changed its record, with a valid
/// hash, so that only the chain or seq is wrong.
fn rewrite_line(path: &Path, idx: usize, edit: impl Fn(&mut Record)) {
    let data = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    for (i, line) in data.split_inclusive(|&b| b == b'\n').enumerate() {
        if i == idx {
            let (mut rec, _) = codec::decode_line(&line[..line.len() - 1]).unwrap();
            edit(&mut rec);
            let mut buf = Vec::new();
            codec::encode_line(&rec, &mut buf).unwrap();
            out.extend_from_slice(&buf);
        } else {
            out.extend_from_slice(line);
        }
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn round_trip_with_non_utf8_paths_and_symlink_targets() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("j");
    let (j, r) = Journal::open(&path).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.cut_bytes, 0);
    assert_eq!(j.last_seq(), 0);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let mut written = Vec::new();
    for d in sample_drafts() {
        let rec = j.append(d.clone()).unwrap();
        assert_eq!(rec.draft, d);
        assert!(rec.time_ns > 0);
        written.push(rec);
    }
    assert_eq!(j.last_seq(), written.len() as u64);
    assert_eq!(written[0].prev, ContentHash::default());
    assert_eq!(
        written.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=written.len() as u64).collect::<Vec<_>>()
    );
    // One line per record; the non-UTF-8 name is base64, never raw bytes.
    let data = std::fs::read(&path).unwrap();
    assert_eq!(line_ends(&data).len(), written.len());
    assert!(std::str::from_utf8(&data).is_ok());
    assert!(data.windows(4).any(|w| w == b"b64\""));
    drop(j);

    assert_eq!(Journal::read(&path).unwrap(), written);
    let (j, r) = Journal::open(&path).unwrap();
    assert_eq!(r.records, written);
    assert_eq!(r.cut_bytes, 0);
    assert_eq!(j.last_seq(), written.len() as u64);
    let next = j.append_durable(file_draft(b"next", 1)).unwrap();
    assert_eq!(next.seq, written.len() as u64 + 1);
    let rep = Journal::verify_chain(&path).unwrap();
    assert_eq!(
        rep,
        ChainReport {
            records: written.len() as u64 + 1,
            ok: true,
            problem: None,
            tail_cut_possible: false,
        }
    );
}

#[test]
fn line_format_is_payload_space_hash_newline() {
    let t = tempfile::tempdir().unwrap();
    let (path, recs) = journal_with(t.path(), 2);
    let data = std::fs::read(&path).unwrap();
    let first = &data[..line_ends(&data)[0]];
    let text = std::str::from_utf8(first).unwrap();
    let (payload, hex) = text.trim_end_matches('\n').rsplit_once(' ').unwrap();
    assert_eq!(payload, serde_json::to_string(&recs[0]).unwrap());
    assert_eq!(hex, ContentHash::of(payload.as_bytes()).to_hex());
    assert_eq!(recs[1].prev, ContentHash::of(payload.as_bytes()));
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
}

#[test]
fn torn_tail_is_cut_and_appends_continue() {
    let t = tempfile::tempdir().unwrap();
    let (path, recs) = journal_with(t.path(), 10);
    let full = len(&path);
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(full - 7).unwrap();
    drop(f);
    let before = len(&path);

    // Reading never modifies the file.
    assert_eq!(Journal::read(&path).unwrap(), recs[..9]);
    let rep = Journal::verify_chain(&path).unwrap();
    assert!(!rep.ok && rep.tail_cut_possible && rep.records == 9);
    assert!(rep.problem.unwrap().starts_with("line 10: incomplete"));
    assert_eq!(len(&path), before);

    let (j, r) = Journal::open(&path).unwrap();
    assert_eq!(r.records, recs[..9]);
    let data = std::fs::read(&path).unwrap();
    assert_eq!(r.cut_bytes, before - data.len() as u64);
    assert!(r.cut_bytes > 0);
    assert!(len(&path) < before);
    assert_eq!(*data.last().unwrap(), b'\n');
    assert_eq!(j.last_seq(), 9);

    let next = j.append(file_draft(b"after", 1)).unwrap();
    assert_eq!(next.seq, 10);
    let last_payload = serde_json::to_vec(&recs[8]).unwrap();
    assert_eq!(next.prev, ContentHash::of(&last_payload));
    drop(j);
    let (_, r) = Journal::open(&path).unwrap();
    assert_eq!(r.records.len(), 10);
    assert_eq!(r.records[9], next);
    assert_eq!(r.cut_bytes, 0);
    assert!(Journal::verify_chain(&path).unwrap().ok);
}

#[test]
fn bad_hash_on_last_line_is_cut() {
    let t = tempfile::tempdir().unwrap();
    let (path, recs) = journal_with(t.path(), 3);
    let mut data = std::fs::read(&path).unwrap();
    let ends = line_ends(&data);
    data[ends[1] + 5] ^= 0x01; // inside the third payload
    std::fs::write(&path, &data).unwrap();
    let (j, r) = Journal::open(&path).unwrap();
    assert_eq!(r.records, recs[..2]);
    assert_eq!(r.cut_bytes, (ends[2] - ends[1]) as u64);
    assert_eq!(len(&path), ends[1] as u64);
    assert_eq!(j.append(file_draft(b"x", 0)).unwrap().seq, 3);
}

#[test]
fn corrupted_middle_line_is_corruption() {
    let t = tempfile::tempdir().unwrap();
    let (path, _) = journal_with(t.path(), 3);
    let mut data = std::fs::read(&path).unwrap();
    let ends = line_ends(&data);
    data[ends[0] + 5] ^= 0x01; // inside the second payload
    std::fs::write(&path, &data).unwrap();
    assert_corrupt(Journal::open(&path), "line 2: hash does not match");
    assert!(matches!(
        Journal::read(&path),
        Err(Error::JournalCorrupt { .. })
    ));
    let rep = Journal::verify_chain(&path).unwrap();
    assert!(!rep.ok && !rep.tail_cut_possible);
    assert_eq!(rep.records, 1);
    assert!(rep.problem.unwrap().starts_with("line 2:"));
    assert_eq!(std::fs::read(&path).unwrap(), data, "file left untouched");
}

#[test]
fn two_bad_lines_at_the_end_are_corruption() {
    let t = tempfile::tempdir().unwrap();
    let (path, _) = journal_with(t.path(), 3);
    let mut data = std::fs::read(&path).unwrap();
    let ends = line_ends(&data);
    data[ends[0] + 5] ^= 0x01;
    data[ends[1] + 5] ^= 0x01;
    std::fs::write(&path, &data).unwrap();
    assert_corrupt(Journal::open(&path), "line 2:");
}

#[test]
fn broken_chain_is_corruption() {
    let t = tempfile::tempdir().unwrap();
    let (path, _) = journal_with(t.path(), 4);
    rewrite_line(&path, 2, |r| r.prev = ContentHash::of(b"elsewhere"));
    assert_corrupt(Journal::open(&path), "line 3: chain broken");
    let rep = Journal::verify_chain(&path).unwrap();
    assert!(!rep.ok && !rep.tail_cut_possible && rep.records == 2);
}

#[test]
fn broken_chain_on_last_line_is_corruption_not_a_torn_tail() {
    let t = tempfile::tempdir().unwrap();
    let (path, _) = journal_with(t.path(), 3);
    rewrite_line(&path, 2, |r| r.prev = ContentHash::default());
    let before = std::fs::read(&path).unwrap();
    assert_corrupt(Journal::open(&path), "line 3: chain broken");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn seq_gap_is_corruption() {
    let t = tempfile::tempdir().unwrap();
    let (path, _) = journal_with(t.path(), 3);
    rewrite_line(&path, 0, |r| r.seq = 2);
    assert_corrupt(Journal::open(&path), "line 1: seq 2 where 1 was expected");
}

#[test]
fn whole_line_with_unknown_record_is_corruption_even_at_the_tail() {
    let t = tempfile::tempdir().unwrap();
    let (path, _) = journal_with(t.path(), 2);
    let payload = br#"{"seq":3,"op":"from_the_future"}"#;
    let mut line = payload.to_vec();
    line.push(b' ');
    line.extend_from_slice(ContentHash::of(payload).to_hex().as_bytes());
    line.push(b'\n');
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&line).unwrap();
    assert_corrupt(Journal::open(&path), "line 3: hash is valid");
    assert!(!Journal::verify_chain(&path).unwrap().tail_cut_possible);
}

#[test]
fn decode_line_classifies_damage() {
    let mut buf = Vec::new();
    let rec = Record {
        seq: 1,
        time_ns: 5,
        prev: ContentHash::default(),
        draft: file_draft(b"a", 1),
    };
    let hash = codec::encode_line(&rec, &mut buf).unwrap();
    let line = &buf[..buf.len() - 1];
    assert_eq!(codec::decode_line(line).unwrap(), (rec, hash));
    assert_eq!(codec::decode_line(b""), Err(LineError::Malformed));
    assert_eq!(
        codec::decode_line(&line[..line.len() - 1]),
        Err(LineError::Malformed)
    );
    let mut upper = line.to_vec();
    let n = upper.len();
    upper[n - 64..].make_ascii_uppercase();
    assert_eq!(codec::decode_line(&upper), Err(LineError::Malformed));
    let mut flipped = line.to_vec();
    flipped[3] ^= 1;
    assert_eq!(codec::decode_line(&flipped), Err(LineError::HashMismatch));
}

#[test]
fn big_journals_are_decoded_in_chunks() {
    let (data, recs) = encoded(200);
    let (scan, chunks) = codec::scan_in_chunks(&data, 4, 1000);
    assert_eq!(chunks, 4);
    assert_eq!(scan.records, recs);
    assert_eq!(scan.good_len, data.len() as u64);
    assert!(scan.problem.is_none());
}

#[test]
fn concurrent_appends_form_one_chain() {
    const THREADS: usize = 4;
    const EACH: usize = 500;
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("j");
    let (j, _) = Journal::open(&path).unwrap();
    let j = Arc::new(j);
    let handles: Vec<_> = (0..THREADS)
        .map(|th| {
            let j = j.clone();
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|i| {
                        let d = file_draft(format!("t{th}/f{i}").as_bytes(), i as u64);
                        let r = j.append(d).unwrap();
                        if i % 100 == 0 {
                            j.sync().unwrap();
                        }
                        r.seq
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    seqs.sort_unstable();
    let total = (THREADS * EACH) as u64;
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
    assert_eq!(j.last_seq(), total);
    let rep = Journal::verify_chain(&path).unwrap();
    assert!(rep.ok, "{rep:?}");
    assert_eq!(rep.records, total);
    let recs = Journal::read(&path).unwrap();
    for th in 0..THREADS {
        // Each thread's records appear in its own order.
        let mine: Vec<_> = recs
            .iter()
            .filter(|r| {
                r.draft
                    .path
                    .as_bytes()
                    .starts_with(format!("t{th}/").as_bytes())
            })
            .map(|r| r.draft.path.clone())
            .collect();
        let want: Vec<_> = (0..EACH)
            .map(|i| RelPath::new(format!("t{th}/f{i}")).unwrap())
            .collect();
        assert_eq!(mine, want);
    }
}

#[test]
fn failed_write_is_rolled_back() {
    let t = tempfile::tempdir().unwrap();
    let (path, recs) = journal_with(t.path(), 2);
    let (j, _) = Journal::open(&path).unwrap();
    let before = len(&path);
    j.inject_write_failure(30, false);
    let err = j.append(file_draft(b"nospace", 1)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert_eq!(err.errno(), libc::ENOSPC);
    assert_eq!(len(&path), before, "partial line cut");
    assert_eq!(j.last_seq(), 2);
    let next = j.append(file_draft(b"ok", 1)).unwrap();
    assert_eq!(next.seq, 3);
    drop(j);
    let (_, r) = Journal::open(&path).unwrap();
    assert_eq!(r.cut_bytes, 0);
    assert_eq!(r.records[..2], recs[..]);
    assert_eq!(r.records[2], next);
}

#[test]
fn failed_rollback_is_retried_before_the_next_append() {
    let t = tempfile::tempdir().unwrap();
    let (path, _) = journal_with(t.path(), 2);
    let (j, _) = Journal::open(&path).unwrap();
    let before = len(&path);
    j.inject_write_failure(40, true);
    assert_eq!(
        j.append(file_draft(b"nospace", 1)).unwrap_err().errno(),
        libc::ENOSPC
    );
    assert_eq!(len(&path), before + 40, "partial line still there");
    let next = j.append(file_draft(b"ok", 1)).unwrap();
    assert_eq!(next.seq, 3);
    drop(j);
    let (_, r) = Journal::open(&path).unwrap();
    assert_eq!(r.cut_bytes, 0);
    assert_eq!(r.records.len(), 3);
    assert!(Journal::verify_chain(&path).unwrap().ok);
}

#[test]
fn open_refuses_symlinks_and_read_needs_the_file() {
    let t = tempfile::tempdir().unwrap();
    let (path, _) = journal_with(t.path(), 1);
    let link = t.path().join("link");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert_eq!(Journal::open(&link).err().unwrap().errno(), libc::ELOOP);
    let missing = t.path().join("missing");
    assert_eq!(Journal::read(&missing).unwrap_err().errno(), libc::ENOENT);
    assert_eq!(
        Journal::verify_chain(&missing).unwrap_err().errno(),
        libc::ENOENT
    );
}

#[test]
fn empty_journal_reads_empty() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("j");
    drop(Journal::open(&path).unwrap());
    assert!(Journal::read(&path).unwrap().is_empty());
    let rep = Journal::verify_chain(&path).unwrap();
    assert!(rep.ok && rep.records == 0);
}

/// A journal of `n` records built in memory (the proptests do not need a file to build it).
fn encoded(n: usize) -> (Vec<u8>, Vec<Record>) {
    let drafts = sample_drafts();
    let mut data = Vec::new();
    let mut recs = Vec::new();
    let mut prev = ContentHash::default();
    let mut buf = Vec::new();
    for i in 0..n {
        let rec = Record {
            seq: i as u64 + 1,
            time_ns: 1_700_000_000_000_000_000 + i as i64,
            prev,
            draft: drafts[i % drafts.len()].clone(),
        };
        prev = codec::encode_line(&rec, &mut buf).unwrap();
        data.extend_from_slice(&buf);
        recs.push(rec);
    }
    (data, recs)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Decoding in parallel chunks finds exactly what one serial pass finds, damage included.
    #[test]
    fn chunked_scan_matches_serial_scan(
        n in 0usize..20,
        threads in 2usize..6,
        min_chunk in 1usize..400,
        cut in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        xor in 0u8..=255,
    ) {
        let (mut data, _) = encoded(n);
        data.truncate(cut.index(data.len() + 1));
        if !data.is_empty() {
            let i = at.index(data.len());
            data[i] ^= xor;
        }
        let (serial, one) = codec::scan_in_chunks(&data, 1, usize::MAX);
        let (chunked, _) = codec::scan_in_chunks(&data, threads, min_chunk);
        prop_assert!(one <= 1);
        prop_assert_eq!(&chunked.records, &serial.records);
        prop_assert_eq!(chunked.good_len, serial.good_len);
        prop_assert_eq!(chunked.last_hash, serial.last_hash);
        prop_assert_eq!(&chunked.problem, &serial.problem);
    }

    /// Cutting a valid journal anywhere reopens to exactly the records whose lines are whole.
    #[test]
    fn truncation_reopens_to_a_prefix(n in 1usize..12, cut in any::<prop::sample::Index>()) {
        let (data, recs) = encoded(n);
        let at = cut.index(data.len() + 1);
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("j");
        std::fs::write(&path, &data[..at]).unwrap();
        let (j, r) = Journal::open(&path).unwrap();
        let whole = line_ends(&data).into_iter().filter(|&e| e <= at).count();
        let good = line_ends(&data[..at]).last().copied().unwrap_or(0);
        prop_assert_eq!(&r.records[..], &recs[..whole]);
        prop_assert_eq!(r.cut_bytes, (at - good) as u64);
        prop_assert_eq!(len(&path), good as u64);
        prop_assert_eq!(j.last_seq(), whole as u64);
        let next = j.append(file_draft(b"more", 0)).unwrap();
        prop_assert_eq!(next.seq, whole as u64 + 1);
        drop(j);
        prop_assert!(Journal::verify_chain(&path).unwrap().ok);
    }

    /// Flipping any byte never yields a record that was not written: the journal either opens
    /// to a prefix of the original or is refused as corrupt.
    #[test]
    fn a_flipped_byte_never_invents_records(
        n in 1usize..8,
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let (mut data, recs) = encoded(n);
        let i = at.index(data.len());
        data[i] ^= xor;
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("j");
        std::fs::write(&path, &data).unwrap();
        match Journal::open(&path) {
            Ok((_, r)) => {
                prop_assert!(r.records.len() < n);
                prop_assert_eq!(&r.records[..], &recs[..r.records.len()]);
            }
            Err(e) => prop_assert!(matches!(e, Error::JournalCorrupt { .. }), "{}", e),
        }
    }
}

fn check_err(j: &Journal, needle: &str) {
    match j.check_unchanged() {
        Err(Error::JournalCorrupt { reason, .. }) => {
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
        }
        Err(e) => panic!("expected JournalCorrupt, got {e}"),
        Ok(()) => panic!("a journal changed behind our back passed the check"),
    }
}

/// The check before a commit: passes while only this journal appends (and moves its verified
/// point on), fails on any change behind its back — an edited early line, a foreign line
/// appended, a cut.
#[test]
fn check_unchanged_catches_changes_behind_our_back() {
    let t = tempfile::tempdir().unwrap();
    let (path, _) = journal_with(t.path(), 4);
    let (j, _) = Journal::open(&path).unwrap();
    j.check_unchanged().unwrap();
    j.append(file_draft(b"more", 1)).unwrap();
    j.check_unchanged().unwrap();
    j.append(file_draft(b"again", 2)).unwrap();
    j.check_unchanged().unwrap();

    // A flipped byte in line 2 (verified long ago).
    let clean = std::fs::read(&path).unwrap();
    let mut data = clean.clone();
    let second = line_ends(&data)[0];
    data[second + 30] ^= 1;
    std::fs::write(&path, &data).unwrap();
    check_err(&j, "line 2");
    std::fs::write(&path, &clean).unwrap();
    j.check_unchanged().unwrap();

    // A flipped byte in a line appended since the last check.
    j.append(file_draft(b"new", 3)).unwrap();
    let clean = std::fs::read(&path).unwrap();
    let mut data = clean.clone();
    let ends = line_ends(&data);
    data[ends[ends.len() - 2] + 30] ^= 1;
    std::fs::write(&path, &data).unwrap();
    check_err(&j, &format!("line {}", ends.len()));
    std::fs::write(&path, &clean).unwrap();

    // A line appended by someone else, and a cut.
    let mut grown = clean.clone();
    grown.extend_from_slice(&clean[..ends[0]]);
    std::fs::write(&path, &grown).unwrap();
    check_err(&j, "bytes");
    std::fs::write(&path, &clean[..ends[ends.len() - 2]]).unwrap();
    check_err(&j, "bytes");
    std::fs::write(&path, &clean).unwrap();
    j.check_unchanged().unwrap();
}

/// A small tmpfs for the reserve tests (root only; under CI a missing prerequisite fails).
struct SmallFs(tempfile::TempDir);

impl SmallFs {
    fn new(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "cannot mount a tmpfs (needs root)"
            );
            eprintln!("skipping: cannot mount a tmpfs (needs root)");
            return None;
        }
        Some(SmallFs(dir))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

/// Fills the filesystem holding `dir` until a write fails with ENOSPC.
fn fill_fs(dir: &Path) {
    let mut f = File::create(dir.join("filler")).unwrap();
    let chunk = vec![7u8; 4096];
    loop {
        if let Err(e) = f.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            return;
        }
    }
}

#[test]
fn reserve_holds_room_on_a_full_disk_and_claims_fail_cleanly() {
    let Some(fs) = SmallFs::new("2m") else {
        return;
    };
    let path = fs.0.path().join("journal");
    let (j, _) = Journal::open(&path).unwrap();
    fill_fs(fs.0.path());
    let bound = line_bound(16);
    // The disk is full, the reserve is not: claims and their appends succeed...
    let mut appended = 0;
    loop {
        match j.reserve(bound, false) {
            Ok(mut r) => {
                j.append_reserved(file_draft(b"claimed", 1), &mut r)
                    .unwrap();
                appended += 1;
            }
            Err(e) => {
                assert_eq!(e.errno(), libc::ENOSPC, "{e}");
                break;
            }
        }
        assert!(appended < 100_000, "the reserve never ran out");
    }
    assert!(
        appended > 100,
        "only {appended} records fitted in the reserve"
    );
    // ...until only the freeing margin is left, which deletes may still claim.
    let mut freeing = j.reserve(bound, true).expect("the freeing margin is there");
    // An append without a claim cannot take claimed room or the margin.
    let unclaimed = j.append(file_draft(b"unclaimed", 1)).unwrap_err();
    assert_eq!(unclaimed.errno(), libc::ENOSPC);
    j.append_reserved(file_draft(b"delete", 1), &mut freeing)
        .unwrap();
    drop(freeing);
    // Nothing partial was written: the whole chain replays.
    let n = j.last_seq();
    drop(j);
    let (_, replay) = Journal::open(&path).unwrap();
    assert_eq!(replay.records.len() as u64, n);
    assert_eq!(replay.cut_bytes, 0);
    // The reserve is invisible to readers: the file's size is exactly its records.
    let data = std::fs::read(&path).unwrap();
    assert_eq!(data.last(), Some(&b'\n'));
}

#[test]
fn special_states_keep_old_records_readable_and_record_device_numbers() {
    // A record written before `rdev` existed reads as 0; FIFOs and sockets still leave it out.
    let old: EntryState = serde_json::from_str(r#"{"kind":"special","mode":4516}"#).unwrap();
    let fifo = EntryState::Special {
        mode: libc::S_IFIFO | 0o644,
        rdev: 0,
    };
    assert_eq!(old, fifo);
    assert_eq!(
        serde_json::to_string(&fifo).unwrap(),
        r#"{"kind":"special","mode":4516}"#
    );
    assert!(!fifo.is_device() && fifo.device_label().is_none());
    let null = EntryState::Special {
        mode: libc::S_IFCHR | 0o666,
        rdev: libc::makedev(1, 3),
    };
    let json = serde_json::to_string(&null).unwrap();
    assert_eq!(json, r#"{"kind":"special","mode":8630,"rdev":259}"#);
    assert_eq!(serde_json::from_str::<EntryState>(&json).unwrap(), null);
    assert!(null.is_device());
    assert_eq!(null.device_label().as_deref(), Some("char device 1:3"));
    let disk = EntryState::Special {
        mode: libc::S_IFBLK | 0o660,
        rdev: libc::makedev(8, 0),
    };
    assert_eq!(disk.device_label().as_deref(), Some("block device 8:0"));
    // Same type, other number: another device, not the same content.
    assert!(!null.same_content(&EntryState::Special {
        mode: libc::S_IFCHR | 0o666,
        rdev: libc::makedev(1, 5),
    }));
}
