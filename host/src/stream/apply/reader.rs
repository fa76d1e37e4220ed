//! The producing half of apply, on a thread of its own (plugins are
//! synchronous): spool lines into windows, windows through the [`Shaper`]
//! into units of work for the target.
//!
//! A transaction is read only once receive has made it durable (its end LSN
//! is at or before the published position), so apply never acts on what a
//! crash of receive could take back. Transactions the target already has
//! (ending at or before the origin's progress) are skipped. With an end
//! position, the first transaction committing after it ends the input.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::super::dir::StreamDir;
use super::super::lsn::Lsn;
use super::super::spool::SpoolReader;
use super::super::wal2json::{self, Message};
use super::shape::{Item, Lines, Shaper, WINDOW_BYTES, WINDOW_CHANGES};
use super::{ApplyEnd, Txn, Unit};
use crate::stream::StreamError;

/// What the producer needs.
pub struct Producer {
    pub dir: StreamDir,
    /// Skip transactions ending at or before this.
    pub after: Lsn,
    /// Shape transactions ending at or before this one at a time (to find
    /// which of them a plugin failed on).
    pub single_until: Lsn,
    /// The end position given on the command line.
    pub endpos: Option<Lsn>,
    /// The position up to which the spool is complete and durable.
    pub received: watch::Receiver<Lsn>,
    pub shaper: Shaper,
    pub tx: mpsc::Sender<Unit>,
    pub stop: Arc<AtomicBool>,
    pub runtime: tokio::runtime::Handle,
}

impl Producer {
    /// Runs until the end position, a failure (sent as [`Unit::Fail`]), or
    /// the consumer going away.
    pub fn run(mut self) -> Result<(), StreamError> {
        let mut reader = SpoolReader::open(&self.dir.spool(), self.after)?;
        let mut window = Window::default();
        // One buffer for every line read (the reader swaps it with its own,
        // so neither is allocated again); a change's line is copied into
        // the window's [`Lines`], whose buffer is kept from window to window.
        let mut line = Vec::new();
        let mut txn: Option<Arc<Txn>> = None;
        let mut skipping = false;
        let mut endpos = self.endpos();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            // Read before looking for lines: receive writes a line before it
            // publishes a position past it, so when no line is found, every
            // transaction ending before `received` has been read.
            let received = *self.received.borrow_and_update();
            if !reader.next_line(&mut line)? {
                // Nothing more written yet: hand over what we have, then wait.
                if !window.items.is_empty() {
                    if !self.flush(&mut window) {
                        return Ok(());
                    }
                    continue;
                }
                endpos = self.endpos();
                if txn.is_none()
                    && let Some(e) = endpos
                    && received >= e
                {
                    let _ = self.tx.blocking_send(Unit::End(ApplyEnd::Endpos));
                    return Ok(());
                }
                self.wait();
                continue;
            }
            match wal2json::action_of(&line) {
                Some(b'B') => {
                    let t = mark(&line, &reader)?;
                    if t.end_lsn <= self.after {
                        skipping = true;
                        continue;
                    }
                    if endpos.is_some_and(|e| t.commit_lsn > e) {
                        if !window.items.is_empty() && !self.flush(&mut window) {
                            return Ok(());
                        }
                        let _ = self.tx.blocking_send(Unit::End(ApplyEnd::Endpos));
                        return Ok(());
                    }
                    // Only what receive made durable.
                    while *self.received.borrow_and_update() < t.end_lsn {
                        if !window.items.is_empty() && !self.flush(&mut window) {
                            return Ok(());
                        }
                        if self.stop.load(Ordering::Relaxed) {
                            return Ok(());
                        }
                        self.wait();
                    }
                    let t = Arc::new(t);
                    window.items.push(Item::Begin(t.clone()));
                    window.open = Some(t.clone());
                    txn = Some(t);
                }
                Some(b'C') => {
                    if skipping {
                        skipping = false;
                        continue;
                    }
                    let t = txn.take().ok_or_else(|| {
                        StreamError::Setup(format!(
                            "the spool has a COMMIT without BEGIN ({})",
                            reader.position()
                        ))
                    })?;
                    let single = t.end_lsn <= self.single_until;
                    window.items.push(Item::Commit(t));
                    window.open = None;
                    if (single || window.full()) && !self.flush(&mut window) {
                        return Ok(());
                    }
                }
                _ if skipping => {}
                _ => {
                    if txn.is_none() {
                        return Err(StreamError::Setup(format!(
                            "the spool has a change outside a transaction ({})",
                            reader.position()
                        )));
                    }
                    window.bytes += line.len();
                    window.changes += 1;
                    window.items.push(Item::Line(window.lines.len()));
                    window.lines.push(&line);
                    if window.full() && !self.flush(&mut window) {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Shapes and sends a window; `false` when the consumer is gone or a
    /// failure was sent (nothing after it may be applied).
    fn flush(&mut self, window: &mut Window) -> bool {
        let units = self
            .shaper
            .shape(window.start.clone(), &window.items, &window.lines);
        window.clear();
        for u in units {
            let fail = matches!(u, Unit::Fail(..));
            if self.tx.blocking_send(u).is_err() || fail {
                return false;
            }
        }
        true
    }

    fn endpos(&self) -> Option<Lsn> {
        let sentinel = self.dir.sentinel().ok().and_then(|s| s.endpos);
        match (self.endpos, sentinel) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Until receive publishes more, or a short while (the spool may grow
    /// from another process).
    /// (Every read of `received` marks it seen, so this waits for a newer one.)
    fn wait(&mut self) {
        const SHORT: Duration = Duration::from_millis(100);
        let rx = &mut self.received;
        let waited = self
            .runtime
            .block_on(async { tokio::time::timeout(SHORT, rx.changed()).await });
        if let Ok(Err(_)) = waited {
            // Receive is gone (this process's, at its end): no news will come.
            std::thread::sleep(SHORT);
        }
    }
}

fn mark(line: &[u8], reader: &SpoolReader) -> Result<Txn, StreamError> {
    let corrupt = |why: String| {
        StreamError::Setup(format!(
            "the spool is damaged at {}: {why}",
            reader.position()
        ))
    };
    let text = std::str::from_utf8(line).map_err(|e| corrupt(e.to_string()))?;
    match wal2json::parse(text).map_err(|e| corrupt(e.to_string()))? {
        Message::Begin(m) => Ok(Txn {
            xid: m.xid,
            commit_lsn: m.commit_lsn,
            end_lsn: m.end_lsn,
            timestamp: m.timestamp.into_owned(),
        }),
        _ => Err(corrupt("expected a BEGIN".into())),
    }
}

#[derive(Default)]
struct Window {
    items: Vec<Item>,
    lines: Lines,
    changes: usize,
    bytes: usize,
    /// The transaction open when the window started (a large one spans windows).
    start: Option<Arc<Txn>>,
    /// The transaction open now.
    open: Option<Arc<Txn>>,
}

impl Window {
    fn full(&self) -> bool {
        self.changes >= WINDOW_CHANGES || self.bytes >= WINDOW_BYTES
    }

    fn clear(&mut self) {
        self.start = self.open.clone();
        self.items.clear();
        self.lines.clear();
        self.changes = 0;
        self.bytes = 0;
    }
}
