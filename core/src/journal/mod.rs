//! The hashed change journal: append-only, hash-chained, crash-safe.
//!
//! Format (see [`codec`]): JSON lines. Each line is `<payload> <hex blake3(payload)>\n`, the
//! payload being a serialized [`Record`] whose `prev` is the hash of the previous line's payload
//! (zeros for the first) and whose `seq` is the previous seq + 1 (1 for the first).
//!
//! [`Journal::open`] replays it: a torn tail (an incomplete last line, or a last line that fails
//! its hash) is cut; damage anywhere else is [`Error::JournalCorrupt`].
//!
//! Durability: `append` is one `write(2)` on an `O_APPEND` fd, so a record is in the kernel
//! before the operation is acknowledged and survives a kill -9 of the daemon; `sync` (on a
//! container fsync, a commit, a discard) makes it survive power loss too.
//!
//! One [`Journal`] per file: the workspace lock guarantees a single writer.

pub mod blame;
pub mod codec;
pub mod record;
mod reserve;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::relpath::RelPath;
use crate::sys;
pub use record::{Draft, EntryState, Op, Record, Target, Writer};
pub use reserve::{line_bound, Reservation, FREEING_MARGIN, RESERVE_BYTES};

/// A reused encode buffer larger than this is dropped after use (a huge `commit_begin`).
const BUF_KEEP: usize = 1 << 20;

/// The append side, behind the mutex.
struct Tail {
    /// The journal, opened `O_APPEND`.
    file: File,
    /// Seq of the last record (0 when empty).
    seq: u64,
    /// Hash of the last record's payload (zeros when empty).
    hash: ContentHash,
    /// File length after the last good record.
    len: u64,
    /// A failed append may have left a partial line that could not be truncated yet.
    dirty: bool,
    /// Reused line buffer.
    buf: Vec<u8>,
    /// The space reserve preallocated past `len` (see [`reserve`]).
    pool: reserve::Pool,
    /// Test hook: the next write stops after this many bytes and fails with ENOSPC.
    #[cfg(test)]
    fail_write_after: Option<usize>,
    /// Test hook: the next rollback truncate fails with EIO.
    #[cfg(test)]
    fail_rollback: bool,
}

impl Tail {
    /// Writes the encoded line in `buf` with one `write(2)` (more only after a short write).
    fn write_line(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if let Some(n) = self.fail_write_after.take() {
            (&self.file).write_all(&self.buf[..n.min(self.buf.len())])?;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        (&self.file).write_all(&self.buf)
    }

    /// Cuts whatever a failed append left after the last good record.
    fn rollback(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_rollback) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        sys::ftruncate(self.file.as_fd(), self.len)?;
        self.dirty = false;
        self.pool.cut(self.len);
        Ok(())
    }
}

/// The part of the file known to be intact: checked by [`Journal::open`] or by the last
/// [`Journal::check_unchanged`].
struct Verified {
    /// Bytes from the start of the file.
    len: u64,
    /// blake3 state over exactly those bytes.
    digest: blake3::Hasher,
    /// Seq of the last record in them (0 when none).
    seq: u64,
    /// Payload hash of that record (zeros when none).
    hash: ContentHash,
}

/// One workspace's journal. `Send + Sync`: appends from many threads are serialized by a mutex.
pub struct Journal {
    /// Where the file is (for errors).
    path: PathBuf,
    /// Append state.
    tail: Mutex<Tail>,
    /// The verified prefix; also serialises [`Journal::check_unchanged`].
    verified: Mutex<Verified>,
    /// A second descriptor of the same file, so `sync` does not hold up appends.
    sync_file: File,
    /// Called with every appended record, in order ([`Journal::on_append`]).
    listener: std::sync::OnceLock<Listener>,
}

/// What [`Journal::on_append`] calls.
type Listener = Box<dyn Fn(&Record) + Send + Sync>;

/// What [`Journal::open`] found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Every valid record, in order.
    pub records: Vec<Record>,
    /// Bytes cut from a torn tail (0 when the journal was clean).
    pub cut_bytes: u64,
}

/// Result of [`Journal::verify_chain`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Valid records before any problem.
    pub records: u64,
    /// No problem found.
    pub ok: bool,
    /// The first problem, naming its line (`line N: ...`).
    pub problem: Option<String>,
    /// The problem is only a torn tail, which the next [`Journal::open`] cuts.
    pub tail_cut_possible: bool,
}

/// `Error::Io` for the journal file at `path`.
fn io_err(op: &'static str, path: &Path, e: io::Error) -> Error {
    let bytes = path.as_os_str().as_encoded_bytes();
    let rel = RelPath::new(bytes)
        .or_else(|_| RelPath::new(path.file_name().unwrap_or_default().as_encoded_bytes()))
        .unwrap_or_default();
    Error::io(op, &rel, e)
}

fn corrupt(path: &Path, reason: String) -> Error {
    Error::JournalCorrupt {
        path: path.to_path_buf(),
        reason,
    }
}

/// Opens `path` for reading (never following a final symlink) and reads it whole.
fn read_all(path: &Path) -> Result<Vec<u8>> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| io_err("journal open", path, e))?;
    let size = file.metadata().map_or(0, |m| m.len());
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut data)
        .map_err(|e| io_err("journal read", path, e))?;
    Ok(data)
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Journal {
    /// Opens (creating if missing, mode 0600) and replays: returns the journal positioned for
    /// appends and every valid record. A torn tail (an incomplete last line, or a last line
    /// failing its hash) is cut — the file is truncated to the last good line and fsynced — and
    /// reported in [`Replay::cut_bytes`]. Damage before the tail (a bad line followed by more
    /// lines, a broken chain, a seq gap, a whole line this version cannot decode) is
    /// [`Error::JournalCorrupt`] naming the line.
    pub fn open(path: &Path) -> Result<(Journal, Replay)> {
        let mut opts = OpenOptions::new();
        opts.read(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW);
        let (mut file, created) = match opts.clone().create_new(true).open(path) {
            Ok(f) => (f, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => (
                opts.open(path)
                    .map_err(|e| io_err("journal open", path, e))?,
                false,
            ),
            Err(e) => return Err(io_err("journal create", path, e)),
        };
        if created {
            // Make the new file's name durable too.
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_err("journal create", path, e))?;
        }
        let meta = file
            .metadata()
            .map_err(|e| io_err("journal open", path, e))?;
        if !meta.file_type().is_file() {
            return Err(corrupt(path, "not a regular file".into()));
        }
        let mut data = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut data)
            .map_err(|e| io_err("journal read", path, e))?;

        let scan = codec::scan(&data);
        let mut cut_bytes = 0;
        if let Some(problem) = &scan.problem {
            if !problem.torn_tail {
                return Err(corrupt(path, problem.to_string()));
            }
            cut_bytes = data.len() as u64 - scan.good_len;
            tracing::warn!(
                path = %path.display(),
                %problem,
                cut_bytes,
                "cutting a torn journal tail"
            );
            file.set_len(scan.good_len)
                .map_err(|e| io_err("journal truncate", path, e))?;
            file.sync_all()
                .map_err(|e| io_err("journal sync", path, e))?;
        }
        let sync_file = file
            .try_clone()
            .map_err(|e| io_err("journal open", path, e))?;
        let mut digest = blake3::Hasher::new();
        digest.update(&data[..scan.good_len as usize]);
        let verified = Verified {
            len: scan.good_len,
            digest,
            seq: scan.records.last().map_or(0, |r| r.seq),
            hash: scan.last_hash,
        };
        let pool = reserve::Pool::open(&file, scan.good_len);
        let journal = Journal {
            path: path.to_path_buf(),
            verified: Mutex::new(verified),
            tail: Mutex::new(Tail {
                file,
                seq: scan.records.last().map_or(0, |r| r.seq),
                hash: scan.last_hash,
                len: scan.good_len,
                dirty: false,
                buf: Vec::with_capacity(1024),
                pool,
                #[cfg(test)]
                fail_write_after: None,
                #[cfg(test)]
                fail_rollback: false,
            }),
            sync_file,
            listener: std::sync::OnceLock::new(),
        };
        Ok((
            journal,
            Replay {
                records: scan.records,
                cut_bytes,
            },
        ))
    }

    fn lock(&self) -> MutexGuard<'_, Tail> {
        // The tail is only updated after a write fully succeeded, so it is consistent even if
        // a thread panicked while holding the lock.
        self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Has `f` called with every record appended from now on, in order, under the append lock
    /// (so it must be quick and never block: a channel send). One listener per journal; false
    /// when one was already set.
    pub fn on_append(&self, f: impl Fn(&Record) + Send + Sync + 'static) -> bool {
        self.listener.set(Box::new(f)).is_ok()
    }

    /// Appends one record: assigns seq (last + 1), `time_ns` (now) and `prev` (hash of the
    /// previous payload), then makes one `write(2)` of the whole line on the `O_APPEND` fd; no
    /// fsync. Returns the full record. If the write fails (ENOSPC, EIO, ...) the file is cut back
    /// to its previous length, so it never keeps a partial line, and the error keeps its errno.
    ///
    /// It uses only reserve space no [`Reservation`] holds (see [`Journal::reserve`]): when
    /// the reserve cannot cover it, it fails with `ENOSPC` without writing.
    pub fn append(&self, draft: Draft) -> Result<Record> {
        self.append_with(draft, None)
    }

    /// Claims room for records totalling at most `bytes` (see [`line_bound`]) in the space
    /// reserve, before an operation changes anything: when even a grown reserve cannot hold
    /// them the claim fails with `ENOSPC`, and the operation must fail without changing
    /// anything. `frees`: the operation frees space (unlink, rmdir, truncate) and may use the
    /// last [`FREEING_MARGIN`] of the reserve. Dropping the reservation returns what its
    /// records did not use.
    pub fn reserve(&self, bytes: u64, frees: bool) -> Result<Reservation<'_>> {
        let mut t = self.lock();
        let len = t.len;
        let Tail { pool, file, .. } = &mut *t;
        if !pool.claim(file, len, bytes, frees) {
            return Err(io_err(
                "journal reserve",
                &self.path,
                io::Error::from_raw_os_error(libc::ENOSPC),
            ));
        }
        Ok(Reservation {
            journal: self,
            bytes,
        })
    }

    /// Appends one record in room claimed by `res` (what does not fit in the claim is taken
    /// as [`Journal::append`] takes it).
    pub(crate) fn append_reserved(
        &self,
        draft: Draft,
        res: &mut Reservation<'_>,
    ) -> Result<Record> {
        debug_assert!(
            std::ptr::eq(res.journal, self),
            "reservation of another journal"
        );
        self.append_with(draft, Some(res))
    }

    fn append_with(&self, draft: Draft, res: Option<&mut Reservation<'_>>) -> Result<Record> {
        let mut t = self.lock();
        if t.dirty {
            t.rollback()
                .map_err(|e| io_err("journal append", &self.path, e))?;
        }
        let record = Record {
            seq: t.seq + 1,
            time_ns: now_ns(),
            prev: t.hash,
            draft,
        };
        let mut buf = std::mem::take(&mut t.buf);
        let hash = codec::encode_line(&record, &mut buf);
        t.buf = buf;
        let hash = hash?;
        let line = t.buf.len() as u64;
        let covered = res.map_or(0, |r| {
            let used = r.bytes.min(line);
            r.bytes -= used;
            used
        });
        t.pool.release(covered);
        let len = t.len;
        let Tail { pool, file, .. } = &mut *t;
        if covered < line && !pool.admit_unclaimed(file, len, line - covered) {
            return Err(io_err(
                "journal append",
                &self.path,
                io::Error::from_raw_os_error(libc::ENOSPC),
            ));
        }
        if let Err(e) = t.write_line() {
            t.dirty = true;
            if let Err(re) = t.rollback() {
                tracing::error!(
                    path = %self.path.display(),
                    error = %re,
                    "cannot cut a failed journal append; retrying before the next append"
                );
            }
            return Err(io_err("journal append", &self.path, e));
        }
        t.len += t.buf.len() as u64;
        t.seq = record.seq;
        t.hash = hash;
        if let Some(listen) = self.listener.get() {
            // Under the tail lock, so listeners see records in order.
            listen(&record);
        }
        if t.buf.capacity() > BUF_KEEP {
            t.buf = Vec::with_capacity(1024);
        }
        Ok(record)
    }

    /// `fdatasync` of the journal file (called on a container fsync, a commit, a discard).
    /// Appends from other threads are not held up meanwhile.
    pub fn sync(&self) -> Result<()> {
        sys::fsync(self.sync_file.as_fd(), true).map_err(|e| io_err("journal sync", &self.path, e))
    }

    /// Appends then syncs.
    pub fn append_durable(&self, draft: Draft) -> Result<Record> {
        let record = self.append(draft)?;
        self.sync()?;
        Ok(record)
    }

    /// Seq of the last record appended (0 when empty).
    pub(crate) fn last_seq(&self) -> u64 {
        self.lock().seq
    }

    /// Checks that the file still holds exactly the chain this journal wrote: the prefix
    /// verified last time is byte-for-byte unchanged (one blake3 pass, no decoding), and the
    /// lines appended since then decode and chain on to it, ending at the last record this
    /// process appended. Cheap enough to run before every commit; the verified point then moves
    /// to the end. Anything else (a line edited, dropped or added behind wsfs' back while the
    /// workspace is open) is [`Error::JournalCorrupt`], naming the line where possible.
    /// The file at the journal's path must be the file this journal has open (see
    /// [`Journal::check_identity`]), checked first.
    pub fn check_unchanged(&self) -> Result<()> {
        let mut v = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        self.check_identity()?;
        let (len, seq, hash) = self.settled_tail()?;
        let data = self.read_prefix(len)?;
        let mut prefix = blake3::Hasher::new();
        prefix.update(&data[..v.len as usize]);
        if prefix.finalize() != v.digest.finalize() {
            return Err(self.changed_behind_our_back(&data, "a line wsfs had already verified"));
        }
        let lines_before = data[..v.len as usize]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        let (last_seq, last_hash) = codec::scan_continuation(&data, v.len as usize, v.seq, v.hash)
            .map_err(|p| {
                let line = lines_before + p.line;
                corrupt(
                    &self.path,
                    format!(
                        "changed behind wsfs' back while the workspace was open: line {line}: {}",
                        p.what
                    ),
                )
            })?;
        if (last_seq, last_hash) != (seq, hash) {
            return Err(self.changed_behind_our_back(&data, "its last record"));
        }
        let start = v.len as usize;
        v.digest.update(&data[start..]);
        v.len = len;
        v.seq = seq;
        v.hash = hash;
        Ok(())
    }

    /// Checks that the journal's path still names the file this journal has open: same device
    /// and inode. A journal replaced on disk while the workspace is open (another file renamed
    /// over it, or it deleted and re-created) is [`Error::JournalCorrupt`]: wsfs would go on
    /// appending to a file nobody can read back, and the next open would replay the other one.
    /// The message compares the two files' sizes and chain heads (last seq and hash).
    pub fn check_identity(&self) -> Result<()> {
        let t = self.lock();
        let open =
            sys::fstat(t.file.as_fd()).map_err(|e| io_err("journal check", &self.path, e))?;
        let on_disk = match std::fs::symlink_metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(corrupt(
                    &self.path,
                    format!(
                        "replaced on disk while the workspace was open: the file is gone \
                         (wsfs has the journal open: {} bytes, last record seq {})",
                        t.len, t.seq
                    ),
                ));
            }
            Err(e) => return Err(io_err("journal check", &self.path, e)),
        };
        use std::os::unix::fs::MetadataExt;
        #[allow(clippy::unnecessary_cast)] // dev_t and ino_t widths differ between targets
        let same = on_disk.dev() == open.st_dev as u64 && on_disk.ino() == open.st_ino as u64;
        if same {
            return Ok(());
        }
        let theirs = if on_disk.file_type().is_file() {
            match read_all(&self.path) {
                Ok(data) => {
                    let scan = codec::scan(&data);
                    let head = match scan.records.last() {
                        Some(r) => {
                            format!("last record seq {} ({})", r.seq, scan.last_hash.short())
                        }
                        None => "no records".into(),
                    };
                    let chain = match &scan.problem {
                        Some(p) => format!(", chain broken at {p}"),
                        None => String::new(),
                    };
                    format!("{} bytes, {head}{chain}", data.len())
                }
                Err(e) => format!("unreadable: {e}"),
            }
        } else {
            "not a regular file".into()
        };
        let ours = match t.seq {
            0 => "no records".to_string(),
            seq => format!("last record seq {seq} ({})", t.hash.short()),
        };
        Err(corrupt(
            &self.path,
            format!(
                "replaced on disk while the workspace was open: the path names another file \
                 (device {}, inode {}: {theirs}) than the one wsfs has open (device {}, inode {}: \
                 {} bytes, {ours})",
                on_disk.dev(),
                on_disk.ino(),
                open.st_dev,
                open.st_ino,
                t.len
            ),
        ))
    }

    /// Length, last seq and last hash of what this process appended, after cutting a partial
    /// line a failed append left; an error if the file's size says someone else wrote to it.
    fn settled_tail(&self) -> Result<(u64, u64, ContentHash)> {
        let mut t = self.lock();
        if t.dirty {
            t.rollback()
                .map_err(|e| io_err("journal check", &self.path, e))?;
        }
        let size = sys::fstat(t.file.as_fd())
            .map_err(|e| io_err("journal check", &self.path, e))?
            .st_size as u64;
        if size != t.len {
            return Err(corrupt(
                &self.path,
                format!(
                    "changed behind wsfs' back while the workspace was open: it is {size} bytes, wsfs wrote {}",
                    t.len
                ),
            ));
        }
        Ok((t.len, t.seq, t.hash))
    }

    /// The first `len` bytes of the file.
    fn read_prefix(&self, len: u64) -> Result<Vec<u8>> {
        let mut data = vec![0u8; len as usize];
        let mut done = 0;
        while done < data.len() {
            let n = sys::pread(self.sync_file.as_fd(), &mut data[done..], done as u64)
                .map_err(|e| io_err("journal read", &self.path, e))?;
            if n == 0 {
                return Err(corrupt(
                    &self.path,
                    format!("changed behind wsfs' back while the workspace was open: cut to {done} bytes"),
                ));
            }
            done += n;
        }
        Ok(data)
    }

    /// The error for a journal that no longer holds what wsfs wrote; `what` says where, and
    /// a full scan names the first bad line when the chain itself is broken.
    fn changed_behind_our_back(&self, data: &[u8], what: &str) -> Error {
        let detail = match codec::scan(data).problem {
            Some(p) => p.to_string(),
            None => format!("{what} was rewritten (the chain was recomputed)"),
        };
        corrupt(
            &self.path,
            format!("changed behind wsfs' back while the workspace was open: {detail}"),
        )
    }

    /// Reads all records of a journal file without opening it for append and without changing
    /// it (for `log`): a torn tail is skipped, damage before it is [`Error::JournalCorrupt`].
    pub fn read(path: &Path) -> Result<Vec<Record>> {
        let scan = codec::scan(&read_all(path)?);
        match scan.problem {
            Some(p) if !p.torn_tail => Err(corrupt(path, p.to_string())),
            _ => Ok(scan.records),
        }
    }

    /// Walks the chain without changing the file and reports the first problem with its line
    /// number. Damage is reported in the [`ChainReport`]; only I/O failures are errors.
    pub fn verify_chain(path: &Path) -> Result<ChainReport> {
        let scan = codec::scan(&read_all(path)?);
        Ok(ChainReport {
            records: scan.records.len() as u64,
            ok: scan.problem.is_none(),
            tail_cut_possible: scan.problem.as_ref().is_some_and(|p| p.torn_tail),
            problem: scan.problem.map(|p| p.to_string()),
        })
    }

    /// Test hook: the next append writes `after` bytes of its line, then fails with ENOSPC;
    /// with `rollback_fails`, cutting that partial line fails once too.
    #[cfg(test)]
    fn inject_write_failure(&self, after: usize, rollback_fails: bool) {
        let mut t = self.lock();
        t.fail_write_after = Some(after);
        t.fail_rollback = rollback_fails;
    }
}

#[cfg(test)]
mod tests;
