//! The spool: wal2json's messages on disk, one per line, exactly as the
//! server sent them, in segment files under `DIR/spool/`.
//!
//! - A segment is named after the end LSN of its first transaction
//!   (`0000000001A2B3C4.json`), so names sort in WAL order.
//! - Segments are only cut between transactions: a transaction never spans
//!   two files, so resuming never has to stitch one together (pgcopydb's
//!   duplicate keys on a transaction spanning files, #555, cannot happen).
//!   A transaction larger than the segment size simply makes a larger file.
//! - Transactions with no change for the streamed schema are not written
//!   (their BEGIN is held back until the first change).
//! - [`SpoolWriter::sync`] makes everything written durable (`fdatasync`) and
//!   returns the end LSN of the last complete transaction: only that may be
//!   confirmed to the slot. After a crash, [`SpoolWriter::open`] cuts the
//!   last segment back to its last complete transaction; the server sends
//!   the rest again from the slot's confirmed position.
//! - [`SpoolReader`] reads lines back in order, waiting at the end of the
//!   newest segment for more; it never returns a partial line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::lsn::Lsn;
use super::wal2json::{self, Message};

/// Default segment size: the spool cuts a new file after a transaction that
/// took the current one past this.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// A spool that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spool {path}, line at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The segment files, oldest first.
pub fn segments(dir: &Path) -> Result<Vec<(Lsn, PathBuf)>, SpoolError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if let Ok(v) = u64::from_str_radix(stem, 16)
            && stem.len() == 16
        {
            out.push((Lsn(v), entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Appends transactions to the spool.
pub struct SpoolWriter {
    dir: PathBuf,
    file: Option<(PathBuf, BufWriter<File>)>,
    size: u64,
    segment_bytes: u64,
    /// A BEGIN not written yet (no change seen in its transaction so far).
    held_begin: Option<(Vec<u8>, Lsn)>,
    /// Inside a transaction whose BEGIN was written.
    open_txn: bool,
    /// End LSN of the last complete transaction written.
    last_end: Lsn,
    /// Bytes written since the last sync.
    unsynced: u64,
}

/// What [`SpoolWriter::push`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// A BEGIN: the transaction commits at `commit_lsn` and ends at `end_lsn`.
    Begin { commit_lsn: Lsn, end_lsn: Lsn },
    /// A COMMIT; `written` is false for a transaction with no change (not spooled).
    Commit { end_lsn: Lsn, written: bool },
    /// Any other message inside a transaction.
    Other,
}

impl SpoolWriter {
    /// Opens the spool under `dir`, cutting a partly written last
    /// transaction away. Returns the writer; its [`last_end`](Self::last_end)
    /// is where the spool's complete transactions end (`0/0` when empty).
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<SpoolWriter, SpoolError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut last_end = Lsn::ZERO;
        let segs = segments(dir)?;
        for (i, (_, path)) in segs.iter().enumerate().rev() {
            let newest = i + 1 == segs.len();
            let (end, keep) = scan_commits(path)?;
            if newest {
                let len = fs::metadata(path).map_err(io_err(path))?.len();
                if keep < len {
                    tracing::info!(
                        "spool: cutting {} back to its last complete transaction ({} bytes dropped)",
                        path.display(),
                        len - keep
                    );
                    let f = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(io_err(path))?;
                    f.set_len(keep).map_err(io_err(path))?;
                    f.sync_all().map_err(io_err(path))?;
                }
                if keep == 0 {
                    fs::remove_file(path).map_err(io_err(path))?;
                    sync_dir(dir)?;
                }
            }
            if let Some(end) = end {
                last_end = end;
                break;
            }
        }
        Ok(SpoolWriter {
            dir: dir.to_path_buf(),
            file: None,
            size: 0,
            segment_bytes: segment_bytes.max(1),
            held_begin: None,
            open_txn: false,
            last_end,
            unsynced: 0,
        })
    }

    /// End LSN of the last complete transaction written.
    pub fn last_end(&self) -> Lsn {
        self.last_end
    }

    /// Whether a transaction is partly received.
    pub fn in_transaction(&self) -> bool {
        self.open_txn || self.held_begin.is_some()
    }

    /// Appends one message (without its newline).
    pub fn push(&mut self, line: &[u8]) -> Result<Pushed, SpoolError> {
        match wal2json::action_of(line) {
            Some(b'B') => {
                let mark = self.mark(line)?;
                self.held_begin = Some((line.to_vec(), mark.1));
                self.open_txn = false;
                Ok(Pushed::Begin {
                    commit_lsn: mark.0,
                    end_lsn: mark.1,
                })
            }
            Some(b'C') => {
                let (_, end_lsn) = self.mark(line)?;
                let written = self.open_txn;
                if written {
                    self.write_line(line)?;
                }
                self.held_begin = None;
                self.open_txn = false;
                self.last_end = self.last_end.max(end_lsn);
                Ok(Pushed::Commit { end_lsn, written })
            }
            _ => {
                if let Some((begin, end)) = self.held_begin.take() {
                    if self.file.is_none() || self.size >= self.segment_bytes {
                        self.rotate(end)?;
                    }
                    self.write_line(&begin)?;
                    self.open_txn = true;
                }
                if self.open_txn {
                    self.write_line(line)?;
                }
                // Outside a transaction (a non-transactional message): not spooled.
                Ok(Pushed::Other)
            }
        }
    }

    /// Makes everything written durable; returns the end LSN of the last
    /// complete transaction, which may now be confirmed to the slot.
    pub fn sync(&mut self) -> Result<Lsn, SpoolError> {
        if let Some((path, w)) = &mut self.file
            && self.unsynced > 0
        {
            w.flush().map_err(io_err(path))?;
            w.get_ref().sync_data().map_err(io_err(path))?;
            self.unsynced = 0;
        }
        Ok(self.last_end)
    }

    /// Bytes written since the last sync.
    pub fn unsynced(&self) -> u64 {
        self.unsynced
    }

    fn mark(&self, line: &[u8]) -> Result<(Lsn, Lsn), SpoolError> {
        let corrupt = |reason: String| SpoolError::Corrupt {
            path: self.dir.clone(),
            offset: 0,
            reason,
        };
        let text = std::str::from_utf8(line).map_err(|e| corrupt(e.to_string()))?;
        match wal2json::parse(text).map_err(|e| corrupt(e.to_string()))? {
            Message::Begin(m) | Message::Commit(m) => Ok((m.commit_lsn, m.end_lsn)),
            _ => Err(corrupt("expected BEGIN or COMMIT".into())),
        }
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), SpoolError> {
        let (path, w) = self.file.as_mut().expect("a segment is open");
        w.write_all(line).map_err(io_err(path))?;
        w.write_all(b"\n").map_err(io_err(path))?;
        let n = line.len() as u64 + 1;
        self.size += n;
        self.unsynced += n;
        Ok(())
    }

    /// Closes the current segment (durably) and starts one named `first_end`.
    fn rotate(&mut self, first_end: Lsn) -> Result<(), SpoolError> {
        self.sync()?;
        let path = self.dir.join(format!("{}.json", first_end.file_stem()));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        sync_dir(&self.dir)?;
        self.size = file.metadata().map_err(io_err(&path))?.len();
        self.file = Some((path, BufWriter::with_capacity(1 << 20, file)));
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Scans a segment: the end LSN of its last complete transaction and the
/// byte offset just after it. Memory stays small whatever the line sizes.
fn scan_commits(path: &Path) -> Result<(Option<Lsn>, u64), SpoolError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let (mut offset, mut keep, mut end) = (0u64, 0u64, None);
    let mut head = Vec::new();
    loop {
        // The start of the line tells its action; only COMMIT lines are read whole.
        head.clear();
        let start = offset;
        let mut complete = false;
        loop {
            let buf = r.fill_buf().map_err(io_err(path))?;
            if buf.is_empty() {
                break;
            }
            let (take, found) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if head.len() < 4096 {
                let want = (4096 - head.len()).min(take);
                head.extend_from_slice(&buf[..want]);
            }
            r.consume(take);
            offset += take as u64;
            if found {
                complete = true;
                break;
            }
        }
        if !complete {
            return Ok((end, keep));
        }
        if wal2json::action_of(&head) == Some(b'C') {
            let line =
                std::str::from_utf8(head.strip_suffix(b"\n").unwrap_or(&head)).map_err(|e| {
                    SpoolError::Corrupt {
                        path: path.to_path_buf(),
                        offset: start,
                        reason: e.to_string(),
                    }
                })?;
            match wal2json::parse(line) {
                Ok(Message::Commit(m)) => {
                    end = Some(m.end_lsn);
                    keep = offset;
                }
                _ => {
                    return Err(SpoolError::Corrupt {
                        path: path.to_path_buf(),
                        offset: start,
                        reason: "an unreadable COMMIT".into(),
                    });
                }
            }
        }
    }
}

/// Reads the spool's lines in order from a segment.
pub struct SpoolReader {
    dir: PathBuf,
    /// The segment being read: its first end LSN, path and reader.
    current: Option<(Lsn, PathBuf, BufReader<File>)>,
    /// Bytes of a line whose end is not written yet.
    partial: Vec<u8>,
    offset: u64,
}

impl SpoolReader {
    /// A reader positioned at the segment that holds the first transaction
    /// ending after `after` (transactions before it are the caller's to skip).
    pub fn open(dir: &Path, after: Lsn) -> Result<SpoolReader, SpoolError> {
        let mut reader = SpoolReader {
            dir: dir.to_path_buf(),
            current: None,
            partial: Vec::new(),
            offset: 0,
        };
        let segs = segments(dir)?;
        // The last segment whose first transaction ends at or before `after`
        // may hold later ones too.
        let start = segs
            .iter()
            .rposition(|(first, _)| *first <= after)
            .unwrap_or(0);
        if let Some((first, path)) = segs.get(start) {
            reader.switch(*first, path.clone())?;
        }
        Ok(reader)
    }

    fn switch(&mut self, first: Lsn, path: PathBuf) -> Result<(), SpoolError> {
        let file = File::open(&path).map_err(io_err(&path))?;
        self.current = Some((first, path, BufReader::with_capacity(1 << 20, file)));
        self.partial.clear();
        self.offset = 0;
        Ok(())
    }

    /// Where the reader is, for messages: the segment and the byte offset.
    pub fn position(&self) -> String {
        match &self.current {
            Some((_, path, _)) => format!("{} at byte {}", path.display(), self.offset),
            None => format!("{} (empty)", self.dir.display()),
        }
    }

    /// The next complete line (without its newline) into `line`; `false`
    /// when no more is written yet.
    pub fn next_line(&mut self, line: &mut Vec<u8>) -> Result<bool, SpoolError> {
        loop {
            if self.current.is_none() {
                match segments(&self.dir)?.into_iter().next() {
                    Some((first, path)) => self.switch(first, path)?,
                    None => return Ok(false),
                }
            }
            let n = self.read_more()?;
            if self.take_line(line) {
                return Ok(true);
            }
            if n > 0 || !self.partial.is_empty() {
                return Ok(false); // a line being written
            }
            // The end of this segment; the writer finishes a segment before
            // it starts the next, so if there is a next one, this one is
            // complete once a last read finds nothing more.
            let first = self.current.as_ref().map(|c| c.0).expect("a segment");
            let Some((f, p)) = segments(&self.dir)?.into_iter().find(|(f, _)| *f > first) else {
                return Ok(false);
            };
            self.read_more()?;
            if self.take_line(line) {
                return Ok(true);
            }
            if !self.partial.is_empty() {
                return Err(SpoolError::Corrupt {
                    path: self
                        .current
                        .as_ref()
                        .map(|c| c.1.clone())
                        .expect("a segment"),
                    offset: self.offset,
                    reason: "the segment ends in the middle of a line, yet a newer one exists"
                        .into(),
                });
            }
            self.switch(f, p)?;
        }
    }

    fn read_more(&mut self) -> Result<usize, SpoolError> {
        let (_, path, r) = self.current.as_mut().expect("a segment");
        r.read_until(b'\n', &mut self.partial).map_err(io_err(path))
    }

    /// Moves a complete line out of `partial`.
    fn take_line(&mut self, line: &mut Vec<u8>) -> bool {
        if self.partial.last() != Some(&b'\n') {
            return false;
        }
        self.offset += self.partial.len() as u64;
        self.partial.pop();
        line.clear();
        std::mem::swap(line, &mut self.partial);
        // Callers reuse `line`, so this is usually the buffer the previous
        // line was in; a caller that kept it left an empty one: size it for a
        // line like this one at once rather than growing it from nothing.
        self.partial.reserve(line.len() + 1);
        true
    }
}

/// Removes segments whose transactions all end at or before `applied`
/// (a segment is known to be done once the next one's first transaction is).
pub fn remove_applied(dir: &Path, applied: Lsn) -> Result<usize, SpoolError> {
    let segs = segments(dir)?;
    let mut removed = 0;
    for pair in segs.windows(2) {
        let (next_first, _) = pair[1];
        if next_first <= applied {
            fs::remove_file(&pair[0].1).map_err(io_err(&pair[0].1))?;
            removed += 1;
        } else {
            break;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(commit: u64, end: u64) -> String {
        format!(
            r#"{{"action":"B","xid":1,"timestamp":"t","lsn":"{}","nextlsn":"{}"}}"#,
            Lsn(commit),
            Lsn(end)
        )
    }
    fn c(commit: u64, end: u64) -> String {
        b(commit, end).replace("\"B\"", "\"C\"")
    }
    const I: &str = r#"{"action":"I","xid":1,"lsn":"0/1","schema":"s","table":"t","columns":[]}"#;

    fn txn(w: &mut SpoolWriter, commit: u64, end: u64, changes: usize) {
        w.push(b(commit, end).as_bytes()).unwrap();
        for _ in 0..changes {
            w.push(I.as_bytes()).unwrap();
        }
        w.push(c(commit, end).as_bytes()).unwrap();
    }

    fn read_all(dir: &Path) -> Vec<String> {
        let mut r = SpoolReader::open(dir, Lsn::ZERO).unwrap();
        let mut out = Vec::new();
        let mut line = Vec::new();
        while r.next_line(&mut line).unwrap() {
            out.push(String::from_utf8(line.clone()).unwrap());
        }
        out
    }

    #[test]
    fn empty_transactions_are_not_written_and_segments_cut_between_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::open(dir.path(), 200).unwrap();
        txn(&mut w, 10, 20, 0);
        txn(&mut w, 30, 40, 3);
        txn(&mut w, 50, 60, 1);
        txn(&mut w, 70, 80, 1);
        assert_eq!(w.sync().unwrap(), Lsn(80));
        let segs = segments(dir.path()).unwrap();
        assert_eq!(
            segs.iter().map(|s| s.0.0).collect::<Vec<_>>(),
            [40, 60, 80],
            "a new segment after a transaction passes the size"
        );
        let lines = read_all(dir.path());
        assert_eq!(lines.len(), 5 + 3 + 3);
        assert!(
            !lines.iter().any(|l| l.contains("0/14")),
            "the empty transaction is not spooled"
        );
        assert_eq!(remove_applied(dir.path(), Lsn(60)).unwrap(), 1);
        assert_eq!(segments(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn reopening_cuts_a_partial_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::open(dir.path(), SEGMENT_BYTES).unwrap();
        txn(&mut w, 10, 20, 2);
        w.push(b(30, 40).as_bytes()).unwrap();
        w.push(I.as_bytes()).unwrap();
        w.sync().unwrap();
        drop(w);
        // A torn last line too.
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"action\":\"I\",\"xi").unwrap();
        let w = SpoolWriter::open(dir.path(), SEGMENT_BYTES).unwrap();
        assert_eq!(w.last_end(), Lsn(20));
        assert_eq!(read_all(dir.path()).len(), 4);
    }

    #[test]
    fn reader_waits_for_partial_lines_and_follows_new_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::open(dir.path(), 1).unwrap();
        let mut r = SpoolReader::open(dir.path(), Lsn::ZERO).unwrap();
        let mut line = Vec::new();
        assert!(!r.next_line(&mut line).unwrap());
        txn(&mut w, 10, 20, 1);
        w.sync().unwrap();
        for _ in 0..3 {
            assert!(r.next_line(&mut line).unwrap());
        }
        assert!(!r.next_line(&mut line).unwrap());
        // A half-written line is not returned.
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"action\":\"B\"").unwrap();
        assert!(!r.next_line(&mut line).unwrap());
        drop(f);
        let w2 = SpoolWriter::open(dir.path(), 1).unwrap();
        drop(w2);
        let mut r = SpoolReader::open(dir.path(), Lsn(20)).unwrap();
        let mut w = SpoolWriter::open(dir.path(), 1).unwrap();
        txn(&mut w, 30, 40, 1);
        txn(&mut w, 50, 60, 1);
        w.sync().unwrap();
        let mut n = 0;
        while r.next_line(&mut line).unwrap() {
            n += 1;
        }
        assert_eq!(n, 9, "every line of every segment, across files");
    }
}
