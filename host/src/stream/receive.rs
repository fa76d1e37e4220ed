//! `receive`: the slot's changes into the spool, confirmed only once durable.
//!
//! Messages are appended to the spool as they arrive; every [`SYNC_EVERY`]
//! (or sooner when much is unsynced) the spool is `fdatasync`ed and the
//! position up to which everything is complete and durable is published.
//! Only that position is ever sent to the server as flushed, so the slot
//! never moves past what a crash could lose.
//!
//! A keepalive's position counts as received only between transactions: the
//! server sends keepalives in the middle of a long transaction's output too,
//! and confirming one of those would skip the rest of that transaction.
//! Between transactions it is safe (every transaction committing before it
//! has been sent) and it is what keeps the slot of a quiet database moving
//! while others write WAL.
//!
//! With an end position the receiver stops at the first transaction that
//! commits after it (not spooled; the next run receives it whole) or at the
//! first keepalive (between transactions) at or past it, and publishes the
//! end position as received: an idle source's run ends there too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::dir::{ReceiveState, StreamConfig, StreamDir, now};
use super::lsn::Lsn;
use super::replication::{Event, ReplicationClient};
use super::spool::{self, SpoolWriter};
use super::wal2json::{self, Message};
use super::{Stop, StreamError, slot_options};
use crate::db::Dsn;

/// How often the spool is made durable (and the slot confirmed).
pub const SYNC_EVERY: Duration = Duration::from_millis(200);
/// Sync sooner once this much is written and not synced.
const SYNC_BYTES: u64 = 32 * 1024 * 1024;
/// How long reading pauses after a read that emptied the socket: at most
/// this much later than it could be is each message spooled (its end
/// position is ~ms away anyway: syncs come every [`SYNC_EVERY`]).
const NAP: Duration = Duration::from_millis(1);
/// Messages handled per turn of the receiving loop at most (those already
/// read after the first; a 64 KB read holds a few hundred).
const DRAIN: usize = 1024;

/// How to receive.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// Stop after the last transaction committing at or before this (and the sentinel's).
    pub endpos: Option<Lsn>,
    /// Spool segment size.
    pub segment_bytes: u64,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        ReceiveOptions {
            endpos: None,
            segment_bytes: spool::SEGMENT_BYTES,
        }
    }
}

/// Live figures (for progress and `follow`).
#[derive(Debug, Default)]
pub struct ReceiveCounters {
    pub transactions: AtomicU64,
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    /// The source's WAL position last seen.
    pub source_lsn: AtomicU64,
}

/// How a receive ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// Everything up to the end position is spooled.
    Endpos,
    /// Asked to stop.
    Stopped,
}

/// What a receive did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReceiveReport {
    pub ended: Ended,
    /// Every transaction committing before this is in the spool.
    pub received: Lsn,
    pub transactions: u64,
    pub messages: u64,
    pub bytes: u64,
}

/// Where a receive starts, after checking the spool belongs to this stream
/// and the slot has not moved past it. Cuts a partly spooled transaction.
pub async fn prepare_spool(
    dir: &StreamDir,
    cfg: &StreamConfig,
    source: &Dsn,
    segment_bytes: u64,
) -> Result<(SpoolWriter, Lsn), StreamError> {
    let writer = SpoolWriter::open(&dir.spool(), segment_bytes)?;
    let state = dir.receive_state()?;
    let received = writer.last_end().max(state.received).max(cfg.start_lsn);
    let client = super::connect(source, "source").await?;
    let row = client
        .query_opt(
            "SELECT confirmed_flush_lsn::text, active_pid FROM pg_replication_slots WHERE slot_name = $1",
            &[&cfg.slot],
        )
        .await
        .map_err(|e| StreamError::db("source", "reading the slot", &e))?;
    let Some(row) = row else {
        return Err(StreamError::Setup(format!(
            "the source has no replication slot {} (was the stream cleaned up? run `host stream setup`)",
            cfg.slot
        )));
    };
    let confirmed: Option<String> = row.get(0);
    let confirmed: Lsn = confirmed
        .as_deref()
        .unwrap_or("0/0")
        .parse()
        .unwrap_or_default();
    if let Some(pid) = row.get::<_, Option<i32>>(1) {
        return Err(StreamError::Setup(format!(
            "replication slot {} is in use by another receiver (server process {pid})",
            cfg.slot
        )));
    }
    if confirmed > received {
        return Err(StreamError::Setup(format!(
            "the slot {} is confirmed up to {confirmed}, but the spool in {} ends at {received}: \
             changes in between were consumed elsewhere and are not here. This spool cannot \
             continue the stream (start over with `host stream cleanup` and a new setup/clone)",
            cfg.slot,
            dir.root().display()
        )));
    }
    Ok((writer, received))
}

/// Receives until the end position, `stop`, or an error. `published`
/// carries the position up to which the spool is complete and durable.
pub async fn run(
    dir: &StreamDir,
    cfg: &StreamConfig,
    source: &Dsn,
    opts: &ReceiveOptions,
    counters: Arc<ReceiveCounters>,
    published: watch::Sender<Lsn>,
    stop: Arc<Stop>,
) -> Result<ReceiveReport, StreamError> {
    let _lock = dir.lock("receive")?;
    let (writer, start) = prepare_spool(dir, cfg, source, opts.segment_bytes).await?;
    published.send_replace(start);
    let mut repl = ReplicationClient::connect(source).await?;
    check_identity(&mut repl, cfg).await?;
    let endpos = |sentinel: Option<Lsn>| match (opts.endpos, sentinel) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let end = endpos(dir.sentinel()?.endpos);
    let mut r = Receiver {
        dir,
        writer,
        counters,
        published,
        position: start,
        confirmable: start,
        last_state: None,
    };
    if let Some(e) = end
        && start >= e
    {
        tracing::info!("receive: the spool already reaches the end position {e}");
        return Ok(r.report(Ended::Endpos));
    }
    tracing::info!("receive: slot {} from {start}", cfg.slot);
    let (mut reader, mut status) = repl
        .start_logical(&cfg.slot, start, &slot_options(cfg))
        .await?;
    let outcome = r.stream(&mut reader, &mut status, end, endpos, &stop).await;
    // Whatever happened, make what was written durable and say so.
    let synced = r.sync();
    match (outcome, synced) {
        (Ok(ended), Ok(())) => {
            let report = r.report(ended);
            status.status(r.confirmable, false).await.ok();
            status.finish().await;
            Ok(report)
        }
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}

/// The receiving loop's state.
struct Receiver<'a> {
    dir: &'a StreamDir,
    writer: SpoolWriter,
    counters: Arc<ReceiveCounters>,
    published: watch::Sender<Lsn>,
    /// Complete and durable up to here.
    position: Lsn,
    /// What a restart would know of `position`: the spool's synced end, or
    /// the position last written to `receive.json`. Only this is sent to
    /// the server as flushed, so the slot never passes what the directory
    /// records (a keepalive's position is not in the spool until the state
    /// file says so).
    confirmable: Lsn,
    last_state: Option<Instant>,
}

impl Receiver<'_> {
    async fn stream(
        &mut self,
        reader: &mut super::replication::LogicalReader,
        status: &mut super::replication::LogicalWriter,
        mut end: Option<Lsn>,
        endpos: impl Fn(Option<Lsn>) -> Option<Lsn>,
        stop: &Stop,
    ) -> Result<Ended, StreamError> {
        // A keepalive's position, usable once what came before it is synced.
        let mut seen = self.position;
        let mut sync_tick = tokio::time::interval(SYNC_EVERY);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // While the server sends slower than it is read, reading waits a
        // moment (NAP) after each read, so each wake-up takes what came in
        // meanwhile instead of every few messages (a thread woken and a
        // system call per TCP segment: in a profile, wake-ups in the kernel
        // were about a fifth of host's own CPU; this cut host's voluntary
        // context switches by a fifth, its CPU by ~14%: docs/benchmarks.md).
        let nap = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(nap);
        let mut napping = false;
        loop {
            tokio::select! {
                () = &mut nap, if napping => napping = false,
                ev = reader.next(), if !napping => {
                    // Then the messages that came in the same read, in this
                    // same turn: one trip through `select!` per read rather
                    // than per message (a bounded number, so the ticks still
                    // come round while the server streams without pause).
                    let mut ev = ev?;
                    for _ in 0..DRAIN {
                        if let Some(ended) = self.on_event(ev, status, end, &mut seen).await? {
                            return Ok(ended);
                        }
                        match reader.buffered()? {
                            Some(next) => ev = next,
                            None => break,
                        }
                    }
                    if reader.caught_up() {
                        nap.as_mut().reset(tokio::time::Instant::now() + NAP);
                        napping = true;
                    }
                }
                _ = sync_tick.tick() => {
                    let before = self.confirmable;
                    // Everything before the keepalive was pushed, so syncing covers it.
                    let usable = seen;
                    self.sync()?;
                    self.position = self.position.max(usable);
                    self.publish();
                    if self.confirmable != before {
                        status.status(self.confirmable, false).await?;
                    }
                }
                _ = tick.tick() => {
                    end = endpos(self.dir.sentinel()?.endpos);
                    // Ask for a keepalive between transactions: a quiet
                    // source's position moves with the WAL others write.
                    status.status(self.confirmable, !self.writer.in_transaction()).await?;
                }
                _ = stop.wait() => return Ok(Ended::Stopped),
            }
        }
    }

    /// One message: spooled (a change), or noted (a keepalive). `Some` when
    /// the end position is reached.
    async fn on_event(
        &mut self,
        ev: Option<Event>,
        status: &mut super::replication::LogicalWriter,
        end: Option<Lsn>,
        seen: &mut Lsn,
    ) -> Result<Option<Ended>, StreamError> {
        match ev {
            None => Err(StreamError::Setup(
                "the source ended the replication stream".into(),
            )),
            Some(Event::Data { data, .. }) => {
                if wal2json::action_of(&data) == Some(b'B') {
                    let commit = begin_commit_lsn(&data)?;
                    tracing::trace!("receive: BEGIN of a transaction committing at {commit}");
                    if let Some(e) = end.filter(|&e| commit > e) {
                        tracing::debug!(
                            "receive: a transaction commits at {commit}, past the end position {e}"
                        );
                        // Commit order: every transaction committing
                        // at or before `e` came before this one.
                        return self.reached(e).map(Some);
                    }
                }
                if let super::spool::Pushed::Commit { .. } = self.writer.push(&data)? {
                    self.counters.transactions.fetch_add(1, Ordering::Relaxed);
                }
                super::crash::point("receive-written");
                self.counters.messages.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .bytes
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                if self.writer.unsynced() >= SYNC_BYTES {
                    self.sync()?;
                    status.status(self.confirmable, false).await?;
                }
                Ok(None)
            }
            Some(Event::Keepalive { end: at, reply }) => {
                self.counters.source_lsn.fetch_max(at.0, Ordering::Relaxed);
                tracing::trace!(
                    "receive: keepalive at {at}{}",
                    if self.writer.in_transaction() {
                        " (inside a transaction)"
                    } else {
                        ""
                    }
                );
                if !self.writer.in_transaction() {
                    *seen = (*seen).max(at);
                    // The server has sent every transaction
                    // committing before `at`: with nothing written
                    // after the end position, this is how a run
                    // ending there learns it is done.
                    if end.is_some_and(|e| at >= e) {
                        tracing::debug!(
                            "receive: the server has sent everything before {at}, past the end position"
                        );
                        return self.reached(*seen).map(Some);
                    }
                }
                if reply {
                    status.status(self.confirmable, false).await?;
                }
                Ok(None)
            }
        }
    }

    /// The end position is reached: everything committing before `complete`
    /// is in the spool once it is synced, which is then published (apply
    /// waits for the published position to reach the end position).
    fn reached(&mut self, complete: Lsn) -> Result<Ended, StreamError> {
        self.sync()?;
        self.position = self.position.max(complete);
        self.last_state = None;
        self.publish();
        Ok(Ended::Endpos)
    }

    /// Syncs the spool and publishes the durable position.
    fn sync(&mut self) -> Result<(), StreamError> {
        let end = tokio::task::block_in_place(|| self.writer.sync())?;
        if end > self.position {
            super::crash::point("receive-synced");
        }
        self.position = self.position.max(end);
        self.confirmable = self.confirmable.max(end);
        self.publish();
        Ok(())
    }

    fn publish(&mut self) {
        if *self.published.borrow() != self.position {
            self.published.send_replace(self.position);
        }
        if self
            .last_state
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            let state = ReceiveState {
                received: self.position,
                at: now(),
                source_lsn: Lsn(self.counters.source_lsn.load(Ordering::Relaxed)),
            };
            match self.dir.write_receive_state(&state) {
                Ok(()) => self.confirmable = self.confirmable.max(state.received),
                Err(e) => tracing::warn!("receive: {e}"),
            }
            self.last_state = Some(Instant::now());
        }
    }

    fn report(&mut self, ended: Ended) -> ReceiveReport {
        self.last_state = None;
        self.publish();
        ReceiveReport {
            ended,
            received: self.position,
            transactions: self.counters.transactions.load(Ordering::Relaxed),
            messages: self.counters.messages.load(Ordering::Relaxed),
            bytes: self.counters.bytes.load(Ordering::Relaxed),
        }
    }
}

/// Checks the server is the one the stream was set up on.
async fn check_identity(
    repl: &mut ReplicationClient,
    cfg: &StreamConfig,
) -> Result<(), StreamError> {
    let rows = repl.simple_query("IDENTIFY_SYSTEM").await?;
    let row = rows.first().cloned().unwrap_or_default();
    let system = row.first().cloned().flatten().unwrap_or_default();
    let db = row.get(3).cloned().flatten().unwrap_or_default();
    if system != cfg.source.system_identifier || db != cfg.source.database {
        return Err(StreamError::Setup(format!(
            "this stream directory belongs to database {} of server {} ({}), but the source is \
             database {db} of server {system}: refusing to mix two sources in one spool",
            cfg.source.database, cfg.source.system_identifier, cfg.source.shown
        )));
    }
    Ok(())
}

fn begin_commit_lsn(data: &[u8]) -> Result<Lsn, StreamError> {
    let text = std::str::from_utf8(data)
        .map_err(|e| StreamError::Setup(format!("the server sent invalid UTF-8: {e}")))?;
    match wal2json::parse(text) {
        Ok(Message::Begin(m)) => Ok(m.commit_lsn),
        Ok(_) => Err(StreamError::Setup("expected a BEGIN".into())),
        Err(e) => Err(StreamError::Setup(e.to_string())),
    }
}
