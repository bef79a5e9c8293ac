//! The hashed change journal: append-only, hash-chained, crash-safe.
//!
//! Format: JSON lines. Each line is `<payload> <hex blake3(payload)>\n`, the payload being a
//! serialized [`Record`] whose `prev` is the hash of the previous line's payload (zeros for the
//! first). [`Journal::open`] replays it: a torn tail (an incomplete last line, or a last line
//! that fails its hash) is cut; damage anywhere else is [`Error::JournalCorrupt`].
//!
//! Durability: `append` is one `write(2)` on an `O_APPEND` fd, so a record is in the kernel
//! before the operation is acknowledged and survives a kill -9 of the daemon; `sync` (on a
//! container fsync, a commit, a discard) makes it survive power loss too.

pub mod record;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::relpath::RelPath;
use crate::sys;
pub use record::{Draft, EntryState, Op, Record, Target};

struct Tail {
    file: File,
    seq: u64,
    hash: ContentHash,
    len: u64,
    buf: Vec<u8>,
}

/// One workspace's journal.
pub struct Journal {
    path: PathBuf,
    tail: Mutex<Tail>,
}

/// What replay found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Every valid record, in order.
    pub records: Vec<Record>,
    /// Bytes cut from a torn tail.
    pub cut_bytes: u64,
}

/// Result of a chain walk.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Valid records before any problem.
    pub records: u64,
    /// No problem found.
    pub ok: bool,
    /// The first problem, naming its line.
    pub problem: Option<String>,
    /// The problem is only a torn tail (cut on the next open).
    pub tail_cut_possible: bool,
}

/// Parses the journal bytes: valid records, the byte length they span, and the first problem.
struct Parsed {
    records: Vec<Record>,
    good_len: u64,
    problem: Option<(usize, String)>,
    problem_is_tail: bool,
}

fn parse_line(line: &[u8]) -> std::result::Result<(Record, ContentHash), String> {
    if line.len() < 66 || line[line.len() - 65] != b' ' {
        return Err("malformed line".into());
    }
    let (payload, hex) = line.split_at(line.len() - 65);
    let hex = std::str::from_utf8(&hex[1..]).map_err(|_| "bad hash text")?;
    let want = ContentHash::from_hex(hex).ok_or("bad hash text")?;
    if ContentHash::of(payload) != want {
        return Err("hash mismatch".into());
    }
    let rec: Record = serde_json::from_slice(payload).map_err(|e| format!("bad record: {e}"))?;
    Ok((rec, want))
}

fn parse(data: &[u8]) -> Parsed {
    let mut out = Parsed {
        records: Vec::new(),
        good_len: 0,
        problem: None,
        problem_is_tail: false,
    };
    let mut prev = ContentHash::default();
    let mut pos = 0usize;
    let mut lineno = 0usize;
    while pos < data.len() {
        lineno += 1;
        let Some(nl) = data[pos..].iter().position(|&b| b == b'\n') else {
            out.problem = Some((lineno, "incomplete last line".into()));
            out.problem_is_tail = true;
            return out;
        };
        let line = &data[pos..pos + nl];
        let is_last = pos + nl + 1 == data.len();
        let problem = match parse_line(line) {
            Ok((rec, hash)) => {
                if rec.prev != prev {
                    Some("chain broken: prev does not match the previous record".to_string())
                } else if rec.seq != out.records.len() as u64 + 1 {
                    Some(format!(
                        "sequence gap: expected {}, found {}",
                        out.records.len() + 1,
                        rec.seq
                    ))
                } else {
                    prev = hash;
                    out.records.push(rec);
                    None
                }
            }
            Err(e) => Some(e),
        };
        if let Some(p) = problem {
            out.problem = Some((lineno, p));
            out.problem_is_tail = is_last;
            return out;
        }
        pos += nl + 1;
        out.good_len = pos as u64;
    }
    out
}

fn jerr(path: &Path, reason: impl Into<String>) -> Error {
    Error::JournalCorrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn ioerr(path: &Path, e: std::io::Error) -> Error {
    Error::io(
        "journal",
        &RelPath::new(path.as_os_str().as_encoded_bytes()).unwrap_or_default(),
        e,
    )
}

impl Journal {
    /// Opens (creating if missing) and replays; a torn tail is cut.
    pub fn open(path: &Path) -> Result<(Journal, Replay)> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| ioerr(path, e))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(|e| ioerr(path, e))?;
        let parsed = parse(&data);
        let mut cut = 0;
        if let Some((line, problem)) = &parsed.problem {
            if !parsed.problem_is_tail {
                return Err(jerr(path, format!("line {line}: {problem}")));
            }
            cut = data.len() as u64 - parsed.good_len;
            tracing::warn!(path = %path.display(), line, problem, cut, "cutting a torn journal tail");
            file.set_len(parsed.good_len).map_err(|e| ioerr(path, e))?;
            file.sync_all().map_err(|e| ioerr(path, e))?;
        }
        let (seq, hash) = match parsed.records.last() {
            Some(last) => {
                let payload =
                    serde_json::to_vec(last).map_err(|e| Error::Encoding(e.to_string()))?;
                (last.seq, ContentHash::of(&payload))
            }
            None => (0, ContentHash::default()),
        };
        // Re-hash the last payload as written (serde output is canonical for our types; fall
        // back to the stored hash if it ever differs).
        let hash = if parsed.records.is_empty() {
            hash
        } else {
            let end = parsed.good_len as usize;
            let line = &data[..end - 1];
            let start = line
                .iter()
                .rposition(|&b| b == b'\n')
                .map(|i| i + 1)
                .unwrap_or(0);
            parse_line(&line[start..]).map(|(_, h)| h).unwrap_or(hash)
        };
        let journal = Journal {
            path: path.to_path_buf(),
            tail: Mutex::new(Tail {
                file,
                seq,
                hash,
                len: parsed.good_len,
                buf: Vec::with_capacity(512),
            }),
        };
        Ok((
            journal,
            Replay {
                records: parsed.records,
                cut_bytes: cut,
            },
        ))
    }

    /// Appends one record (one write(2), no fsync).
    pub fn append(&self, draft: Draft) -> Result<Record> {
        let mut t = self.tail.lock().unwrap();
        let time_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let rec = Record {
            seq: t.seq + 1,
            time_ns,
            prev: t.hash,
            draft,
        };
        let mut buf = std::mem::take(&mut t.buf);
        buf.clear();
        serde_json::to_writer(&mut buf, &rec).map_err(|e| Error::Encoding(e.to_string()))?;
        let hash = ContentHash::of(&buf);
        buf.push(b' ');
        buf.extend_from_slice(hash.to_hex().as_bytes());
        buf.push(b'\n');
        let res = t.file.write_all(&buf);
        if let Err(e) = res {
            // Never leave a partial line behind (e.g. ENOSPC mid-write).
            let len = t.len;
            let _ = t.file.set_len(len);
            t.buf = buf;
            return Err(ioerr(&self.path, e));
        }
        t.len += buf.len() as u64;
        t.seq = rec.seq;
        t.hash = hash;
        t.buf = buf;
        Ok(rec)
    }

    /// fdatasync of the journal file.
    pub fn sync(&self) -> Result<()> {
        let t = self.tail.lock().unwrap();
        sys::fsync(t.file.as_fd(), true).map_err(|e| ioerr(&self.path, e))
    }

    /// Appends then syncs.
    pub fn append_durable(&self, draft: Draft) -> Result<Record> {
        let r = self.append(draft)?;
        self.sync()?;
        Ok(r)
    }

    /// Last sequence number appended (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.tail.lock().unwrap().seq
    }

    /// Reads every valid record without modifying the file (a torn tail is skipped).
    pub fn read(path: &Path) -> Result<Vec<Record>> {
        let data = std::fs::read(path).map_err(|e| ioerr(path, e))?;
        let parsed = parse(&data);
        match parsed.problem {
            Some((line, p)) if !parsed.problem_is_tail => {
                Err(jerr(path, format!("line {line}: {p}")))
            }
            _ => Ok(parsed.records),
        }
    }

    /// Walks the chain and reports the first problem.
    pub fn verify_chain(path: &Path) -> Result<ChainReport> {
        let data = std::fs::read(path).map_err(|e| ioerr(path, e))?;
        let parsed = parse(&data);
        Ok(ChainReport {
            records: parsed.records.len() as u64,
            ok: parsed.problem.is_none(),
            tail_cut_possible: parsed.problem.is_some() && parsed.problem_is_tail,
            problem: parsed.problem.map(|(l, p)| format!("line {l}: {p}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(p: &[u8]) -> Draft {
        Draft::new(
            Op::Create,
            RelPath::new(p).unwrap(),
            Some(EntryState::Absent),
            EntryState::File {
                hash: None,
                mode: 0o644,
                size: 0,
            },
        )
    }

    #[test]
    fn append_replay_and_torn_tail() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("j");
        let (j, r) = Journal::open(&path).unwrap();
        assert!(r.records.is_empty());
        for i in 0..10u8 {
            j.append(draft(&[b'f', b'\xe9', b'0' + i])).unwrap();
        }
        drop(j);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 7).unwrap();
        let (j, r) = Journal::open(&path).unwrap();
        assert_eq!(r.records.len(), 9);
        assert!(r.cut_bytes > 0);
        let next = j.append(draft(b"after")).unwrap();
        assert_eq!(next.seq, 10);
        drop(j);
        let (_, r) = Journal::open(&path).unwrap();
        assert_eq!(r.records.len(), 10);
        assert!(Journal::verify_chain(&path).unwrap().ok);
    }

    #[test]
    fn damage_before_the_tail_is_corruption() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("j");
        let (j, _) = Journal::open(&path).unwrap();
        for _ in 0..3 {
            j.append(draft(b"x")).unwrap();
        }
        drop(j);
        let mut data = std::fs::read(&path).unwrap();
        let i = data.iter().position(|&b| b == b'x').unwrap();
        data[i] = b'y';
        std::fs::write(&path, &data).unwrap();
        assert!(matches!(
            Journal::open(&path),
            Err(Error::JournalCorrupt { .. })
        ));
        let rep = Journal::verify_chain(&path).unwrap();
        assert!(!rep.ok && !rep.tail_cut_possible);
        assert!(rep.problem.unwrap().contains("line 1"));
    }

    #[test]
    fn concurrent_appends_form_one_chain() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("j");
        let (j, _) = Journal::open(&path).unwrap();
        let j = std::sync::Arc::new(j);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let j = j.clone();
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        j.append(draft(b"c")).unwrap();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let recs = Journal::read(&path).unwrap();
        assert_eq!(recs.len(), 1000);
        assert!(recs.iter().enumerate().all(|(i, r)| r.seq == i as u64 + 1));
    }
}
