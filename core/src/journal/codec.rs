//! The on-disk encoding of journal lines, and the scan that validates a whole journal.
//!
//! A line is `<payload> <hash>\n`: `<payload>` is `serde_json::to_string(&Record)` (compact JSON,
//! so it never holds a raw newline), then one space, then the 64 lowercase hex digits of
//! blake3(payload bytes), then `\n`. A record's `prev` is the hash of the previous line's
//! payload (all zeros for the first line) and its `seq` is the previous seq + 1 (1 for the
//! first), so the lines form a hash chain.

use std::fmt;

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::journal::record::Record;

/// Length of the hash field: 64 hex digits of a blake3 digest.
pub const HASH_HEX_LEN: usize = 64;

/// Bytes a line has after its payload: one space and the hash (the newline excluded).
const SUFFIX_LEN: usize = 1 + HASH_HEX_LEN;

/// Why a single line (without its `\n`) could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// The line does not end in ` <64 lowercase hex>`: cut short, or not a journal line.
    Malformed,
    /// The hash field does not match the payload.
    HashMismatch,
    /// The hash matches, so the line was written whole, but its payload is not a record this
    /// version understands (written by a newer wsfs, or a bug).
    Undecodable(String),
}

impl LineError {
    /// True when the damage is what an interrupted append leaves (a partial or garbled line).
    /// A line whose hash matches was written whole, so it never counts as torn.
    pub fn may_be_torn(&self) -> bool {
        !matches!(self, LineError::Undecodable(_))
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Malformed => f.write_str("malformed line (no ` <64 hex hash>` at its end)"),
            LineError::HashMismatch => f.write_str("hash does not match the payload"),
            LineError::Undecodable(e) => write!(
                f,
                "hash is valid but the record is not understood (written by a newer wsfs?): {e}"
            ),
        }
    }
}

/// Encodes `record` as one full line (newline included) into `buf`, which is cleared first.
/// Returns the hash of the payload: the `prev` of the next record.
pub fn encode_line(record: &Record, buf: &mut Vec<u8>) -> Result<ContentHash> {
    buf.clear();
    serde_json::to_writer(&mut *buf, record).map_err(|e| Error::Encoding(e.to_string()))?;
    let hash = blake3::hash(buf);
    buf.push(b' ');
    buf.extend_from_slice(hash.to_hex().as_bytes());
    buf.push(b'\n');
    Ok(ContentHash(*hash.as_bytes()))
}

/// Decodes one line given without its trailing `\n`: the record and the hash of its payload.
pub fn decode_line(line: &[u8]) -> std::result::Result<(Record, ContentHash), LineError> {
    if line.len() <= SUFFIX_LEN || line[line.len() - SUFFIX_LEN] != b' ' {
        return Err(LineError::Malformed);
    }
    let (payload, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    let stored = &suffix[1..];
    if !stored
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return Err(LineError::Malformed);
    }
    let hash = blake3::hash(payload);
    if hash.to_hex().as_bytes() != stored {
        return Err(LineError::HashMismatch);
    }
    let record: Record =
        serde_json::from_slice(payload).map_err(|e| LineError::Undecodable(e.to_string()))?;
    Ok((record, ContentHash(*hash.as_bytes())))
}

/// The first problem a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong, for humans.
    pub what: String,
    /// Only a torn tail: the last line, damaged the way an interrupted append damages it.
    pub torn_tail: bool,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.what)
    }
}

/// Everything a scan of a journal's bytes found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// The valid records before the first problem, in order.
    pub records: Vec<Record>,
    /// Bytes spanned by those records (where a torn tail is cut).
    pub good_len: u64,
    /// Hash of the last valid record's payload (zeros when there is none).
    pub last_hash: ContentHash,
    /// The first problem, if any; the scan stops there.
    pub problem: Option<Problem>,
}

/// Journals at least this big are scanned on several threads, in line-aligned chunks.
const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// Validates a whole journal: every line's hash, the chain of `prev` hashes and the seqs.
pub(crate) fn scan(data: &[u8]) -> Scan {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    scan_with(data, threads, PARALLEL_MIN_BYTES)
}

/// What the scan of one chunk found. Its first record's `prev` and `seq` are checked against
/// the previous chunk when the chunks are joined; every other line is checked here.
struct Chunk {
    /// Valid records before the chunk's first problem.
    records: Vec<Record>,
    /// Hash of the last of them.
    last_hash: ContentHash,
    /// Offset just after the last of them.
    good_end: usize,
    /// Lines before the chunk's first problem (or all its lines).
    good_lines: u64,
    /// The first problem: what, and whether it is only a torn tail.
    problem: Option<(String, bool)>,
}

/// Scans the lines of `data[range]` (which starts at a line start) up to the first problem.
fn scan_chunk(data: &[u8], range: std::ops::Range<usize>) -> Chunk {
    let lines = data[range.clone()].iter().filter(|&&b| b == b'\n').count();
    let mut out = Chunk {
        records: Vec::with_capacity(lines),
        last_hash: ContentHash::default(),
        good_end: range.start,
        good_lines: 0,
        problem: None,
    };
    let mut pos = range.start;
    while pos < range.end {
        let Some(nl) = data[pos..range.end].iter().position(|&b| b == b'\n') else {
            let what = format!(
                "incomplete last line ({} bytes, no newline)",
                range.end - pos
            );
            out.problem = Some((what, true));
            break;
        };
        let end = pos + nl + 1;
        let is_last = end == data.len();
        let (record, hash) = match decode_line(&data[pos..end - 1]) {
            Ok(ok) => ok,
            Err(e) if is_last => {
                out.problem = Some((e.to_string(), e.may_be_torn()));
                break;
            }
            Err(e) => {
                out.problem = Some((format!("{e}; more lines follow it"), false));
                break;
            }
        };
        if let Some(prev) = out.records.last() {
            if let Some(what) = link_problem(&record, &out.last_hash, prev.seq) {
                out.problem = Some((what, false));
                break;
            }
        }
        out.records.push(record);
        out.last_hash = hash;
        out.good_end = end;
        out.good_lines += 1;
        pos = end;
    }
    out
}

/// Validates the lines of `data[start..]` (`start` is a line start) as the continuation of a
/// chain whose last record has seq `prev_seq` and payload hash `prev_hash`. Returns the seq
/// and hash of the last line, or the first problem (its line counted from `start`).
pub(crate) fn scan_continuation(
    data: &[u8],
    start: usize,
    prev_seq: u64,
    prev_hash: ContentHash,
) -> std::result::Result<(u64, ContentHash), Problem> {
    let chunk = scan_chunk(data, start..data.len());
    if let Some(first) = chunk.records.first() {
        if let Some(what) = link_problem(first, &prev_hash, prev_seq) {
            return Err(Problem {
                line: 1,
                what,
                torn_tail: false,
            });
        }
    }
    if let Some((what, torn_tail)) = chunk.problem {
        return Err(Problem {
            line: chunk.good_lines + 1,
            what,
            torn_tail,
        });
    }
    Ok(match chunk.records.last() {
        Some(r) => (r.seq, chunk.last_hash),
        None => (prev_seq, prev_hash),
    })
}

/// Checks that `record` follows the record whose payload hash is `prev_hash` and seq `prev_seq`.
fn link_problem(record: &Record, prev_hash: &ContentHash, prev_seq: u64) -> Option<String> {
    if record.prev != *prev_hash {
        Some(format!(
            "chain broken: prev is {} but the previous line's hash is {}",
            record.prev.short(),
            prev_hash.short()
        ))
    } else if record.seq != prev_seq + 1 {
        Some(format!(
            "seq {} where {} was expected",
            record.seq,
            prev_seq + 1
        ))
    } else {
        None
    }
}

/// Splits `data` at line boundaries into at most `threads` ranges of at least `min_chunk`
/// bytes each.
fn chunks(data: &[u8], threads: usize, min_chunk: usize) -> Vec<std::ops::Range<usize>> {
    let size = (data.len() / threads.max(1)).max(min_chunk).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let guess = start.saturating_add(size);
        let end = if guess >= data.len() {
            data.len()
        } else {
            data[guess - 1..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |i| guess + i)
        };
        out.push(start..end);
        start = end;
    }
    out
}

/// [`scan`] with explicit parallelism (the tests force several chunks on small inputs).
fn scan_with(data: &[u8], threads: usize, min_chunk: usize) -> Scan {
    let ranges = chunks(data, threads, min_chunk);
    let scanned: Vec<Chunk> = if ranges.len() <= 1 {
        vec![scan_chunk(data, 0..data.len())]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = ranges[1..]
                .iter()
                .map(|r| {
                    let r = r.clone();
                    s.spawn(move || scan_chunk(data, r))
                })
                .collect();
            let mut all = vec![scan_chunk(data, ranges[0].clone())];
            all.extend(
                handles
                    .into_iter()
                    .map(|h| h.join().expect("journal scan thread panicked")),
            );
            all
        })
    };

    // Join the chunks: check each chunk's first record against the previous chunk's last.
    let mut out = Scan::default();
    let mut lines_before = 0u64;
    for mut chunk in scanned {
        if let Some(first) = chunk.records.first() {
            let prev_seq = out.records.len() as u64;
            if let Some(what) = link_problem(first, &out.last_hash, prev_seq) {
                out.problem = Some(Problem {
                    line: lines_before + 1,
                    what,
                    torn_tail: false,
                });
                break;
            }
            out.last_hash = chunk.last_hash;
            out.good_len = chunk.good_end as u64;
            if out.records.is_empty() {
                out.records = chunk.records;
            } else {
                out.records.append(&mut chunk.records);
            }
        }
        lines_before += chunk.good_lines;
        if let Some((what, torn_tail)) = chunk.problem {
            out.problem = Some(Problem {
                line: lines_before + 1,
                what,
                torn_tail,
            });
            break;
        }
    }
    out
}

/// Test access to [`scan_with`]; also returns how many chunks the data was split into.
#[cfg(test)]
pub(crate) fn scan_in_chunks(data: &[u8], threads: usize, min_chunk: usize) -> (Scan, usize) {
    (
        scan_with(data, threads, min_chunk),
        chunks(data, threads, min_chunk).len(),
    )
}
