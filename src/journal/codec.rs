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

/// Journals at least this big are decoded on several threads (the chain check stays serial).
const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// Validates a whole journal: every line's hash, the chain of `prev` hashes and the seqs.
pub(crate) fn scan(data: &[u8]) -> Scan {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    scan_with(data, threads, PARALLEL_MIN_BYTES)
}

/// One line as decoded by [`decode_lines`].
struct Decoded {
    /// Offset of its first byte.
    start: usize,
    /// Offset just after its `\n` (the end of the data when it has none).
    end: usize,
    /// `None` when the line has no `\n` (it runs to the end of the data).
    result: Option<std::result::Result<(Record, ContentHash), LineError>>,
}

/// Decodes the lines of `data[range]` (which starts at a line start) until the first one that
/// fails: nothing after a problem is needed.
fn decode_lines(data: &[u8], range: std::ops::Range<usize>) -> Vec<Decoded> {
    let mut out = Vec::new();
    let mut pos = range.start;
    while pos < range.end {
        let Some(nl) = data[pos..range.end].iter().position(|&b| b == b'\n') else {
            out.push(Decoded {
                start: pos,
                end: range.end,
                result: None,
            });
            break;
        };
        let result = decode_line(&data[pos..pos + nl]);
        let failed = result.is_err();
        out.push(Decoded {
            start: pos,
            end: pos + nl + 1,
            result: Some(result),
        });
        pos += nl + 1;
        if failed {
            break;
        }
    }
    out
}

/// Splits `data` at line boundaries into at most `threads` ranges of at least `min_chunk`
/// bytes each.
fn chunks(data: &[u8], threads: usize, min_chunk: usize) -> Vec<std::ops::Range<usize>> {
    let size = (data.len() / threads.max(1)).max(min_chunk).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let guess = start + size;
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
    let decoded: Vec<Vec<Decoded>> = if ranges.len() <= 1 {
        vec![decode_lines(data, 0..data.len())]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = ranges[1..]
                .iter()
                .map(|r| {
                    let r = r.clone();
                    s.spawn(move || decode_lines(data, r))
                })
                .collect();
            let mut all = vec![decode_lines(data, ranges[0].clone())];
            all.extend(
                handles
                    .into_iter()
                    .map(|h| h.join().expect("journal decode thread panicked")),
            );
            all
        })
    };

    let mut out = Scan::default();
    out.records.reserve(decoded.iter().map(Vec::len).sum());
    for (line_no, Decoded { start, end, result }) in (1u64..).zip(decoded.into_iter().flatten()) {
        let Some(result) = result else {
            out.problem = Some(Problem {
                line: line_no,
                what: format!("incomplete last line ({} bytes, no newline)", end - start),
                torn_tail: true,
            });
            break;
        };
        let is_last = end == data.len();
        let problem = match result {
            Err(e) if is_last && e.may_be_torn() => Some((e.to_string(), true)),
            Err(e) if is_last => Some((e.to_string(), false)),
            Err(e) => Some((format!("{e}; more lines follow it"), false)),
            Ok((record, hash)) => {
                let want_seq = out.records.len() as u64 + 1;
                if record.prev != out.last_hash {
                    Some((
                        format!(
                            "chain broken: prev is {} but the previous line's hash is {}",
                            record.prev.short(),
                            out.last_hash.short()
                        ),
                        false,
                    ))
                } else if record.seq != want_seq {
                    Some((
                        format!("seq {} where {want_seq} was expected", record.seq),
                        false,
                    ))
                } else {
                    out.records.push(record);
                    out.last_hash = hash;
                    None
                }
            }
        };
        if let Some((what, torn_tail)) = problem {
            out.problem = Some(Problem {
                line: line_no,
                what,
                torn_tail,
            });
            break;
        }
        out.good_len = end as u64;
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
