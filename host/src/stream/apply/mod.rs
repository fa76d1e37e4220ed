//! `apply`: spooled transactions onto the target, exactly once.
//!
//! Each source transaction is applied whole, in commit order, inside a
//! target transaction that also records the source transaction's end LSN
//! as the progress of the stream's replication origin
//! (`pg_replication_origin_xact_setup`): the data and the position commit
//! together or not at all. On start, apply reads the origin's progress and
//! skips every spooled transaction ending at or before it, so a `kill -9`
//! anywhere (mid-transaction, between COMMIT and anything after it) neither
//! loses nor repeats a change. Transactions are taken from the spool in the
//! order the server sent them, which is commit order whatever the order of
//! their BEGINs (pgcopydb #1044 cannot happen), and nothing but a
//! transaction's own COMMIT moves the origin (keepalives never do:
//! pgcopydb #1033).
//!
//! Consecutive source transactions are applied in one target transaction
//! (a group, up to [`GROUP_CHANGES`] changes or [`GROUP_TIME`]; between
//! transactions it waits up to [`GROUP_LINGER`] for the next), with the
//! last one's position, and their changes share statements across
//! transaction boundaries, gathered per table and kind where nothing on
//! the target can see the order ([`gather`]): still all or nothing for
//! each source transaction, with far fewer commits and statements. A group never
//! passes the end position (the reader ends the input there). When a group
//! fails, apply rolls it back (data and origin) and goes through it again
//! one source transaction at a time, one change per statement, so the
//! transactions before the bad one are applied and apply stops exactly
//! before it, naming the change.
//!
//! With an end position, apply stops after the last transaction committing
//! at or before it, once receive has spooled everything up to it; a
//! transaction straddling it is left whole for the next run (pgcopydb
//! #1049/#1050).

mod batch;
pub mod chains;
pub mod expr;
mod gather;
mod reader;
pub mod shape;
pub mod statements;
mod target;
pub mod tenancy;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::dir::{StreamConfig, StreamDir, now};
use super::lsn::Lsn;
use super::{Stop, StreamError};
use crate::db::Dsn;
use crate::plugin::Plugin;
pub use shape::Shaper;
use statements::{Params, Shape};
pub use target::{Failure, Target};

/// Changes in one group at most.
pub const GROUP_CHANGES: u64 = 16_384;
/// A group is committed after this long even if more is spooled.
pub const GROUP_TIME: Duration = Duration::from_millis(500);
/// How long an open group waits between source transactions for the next
/// one before it is committed (within [`GROUP_TIME`]): long enough for the
/// reader to shape the next window, short enough not to hold the target
/// transaction open while the source is idle.
pub const GROUP_LINGER: Duration = Duration::from_millis(50);

/// A source transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub xid: u32,
    pub commit_lsn: Lsn,
    pub end_lsn: Lsn,
    /// Commit time, as the server printed it.
    pub timestamp: String,
}

/// How many rows a statement must touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly one: the row is on the target (the table is copied whole).
    One,
    /// Exactly one, for an UPDATE that lacks unchanged TOASTed values.
    OneKeepingToast,
    /// None or one: the row may be outside the copied subset.
    AtMostOne,
}

/// One statement for one row.
#[derive(Debug)]
pub struct Op {
    pub table: usize,
    pub shape: Shape,
    pub params: Params,
    pub expect: Expect,
    /// The change's LSN, for messages.
    pub lsn: Lsn,
    pub txn: Arc<Txn>,
}

/// Work on the target, in order.
#[derive(Debug)]
pub enum Work {
    Row(Op),
    /// One source TRUNCATE (of one or more tables).
    Truncate {
        tables: Vec<usize>,
        lsn: Lsn,
        txn: Arc<Txn>,
    },
}

/// What the producer hands the target side.
#[derive(Debug)]
pub enum Unit {
    Begin(Arc<Txn>),
    Work(Vec<Work>),
    Commit(Arc<Txn>),
    /// Stop before this change's transaction; or, with an LSN, try again
    /// one source transaction at a time up to it (a plugin failed on rows
    /// of several transactions, and which one is not known).
    Fail(ChangeError, Option<Lsn>),
    End(ApplyEnd),
}

/// Why apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyEnd {
    /// Everything up to the end position is applied.
    Endpos,
    /// Asked to stop.
    Stopped,
}

/// What kind of problem stopped apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The source's schema changed.
    Ddl,
    /// A plugin rejected a row.
    Rejected,
    /// A plugin failed (trap, limit, broken contract) or broke the key rule.
    PluginFailed,
    /// The target refused a statement or has diverged.
    Target,
    /// A value that cannot be applied exactly.
    Data,
}

/// A change that could not be applied: apply stopped before its
/// transaction, and a rerun retries it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ChangeError {
    pub xid: u32,
    pub commit_lsn: Lsn,
    /// The change's own LSN.
    pub lsn: Lsn,
    pub table: Option<String>,
    pub plugin: Option<String>,
    pub kind: ErrorKind,
    pub what: String,
}

impl ChangeError {
    fn describe(&self) -> String {
        let mut s = format!(
            "apply stopped before source transaction {} (commit LSN {}): change at LSN {}",
            self.xid, self.commit_lsn, self.lsn
        );
        if let Some(t) = &self.table {
            s += &format!(", table {t}");
        }
        if let Some(p) = &self.plugin {
            s += &format!(", plugin {p}");
        }
        s += ": ";
        s += &self.what;
        s
    }
}

/// How to apply.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Stop after the last transaction committing at or before this (and the sentinel's).
    pub endpos: Option<Lsn>,
}

/// Live figures.
#[derive(Debug, Default)]
pub struct ApplyCounters {
    /// Source transactions applied.
    pub transactions: AtomicU64,
    /// Target transactions they were applied in (groups committed).
    pub target_transactions: AtomicU64,
    pub changes: AtomicU64,
    /// End LSN of the last transaction applied.
    pub applied: AtomicU64,
}

/// What an apply did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    pub ended: ApplyEnd,
    /// The origin's progress at the end.
    pub applied: Lsn,
    /// Source transactions applied.
    pub transactions: u64,
    /// Target transactions committed for them (consecutive source
    /// transactions share one).
    pub target_transactions: u64,
    pub changes: u64,
    /// Statements sent to the target (a run of changes sharing one counts once).
    pub statements: u64,
}

/// Everything apply needs besides the target.
pub struct ApplyInput {
    pub dir: StreamDir,
    pub cfg: StreamConfig,
    /// Each streamed table's plugins, loaded.
    pub plugins: Vec<Vec<Plugin>>,
    /// Where the spool is complete and durable.
    pub received: watch::Receiver<Lsn>,
    pub counters: Arc<ApplyCounters>,
    pub stop: Arc<Stop>,
    /// The tenant the plugins run for (CPU time, audit log), if any.
    pub tenancy: Arc<tenancy::Tenancy>,
}

/// Applies until the end position, `stop`, or a change that cannot be applied.
pub async fn run(
    input: ApplyInput,
    target: &Dsn,
    opts: &ApplyOptions,
) -> Result<ApplyReport, StreamError> {
    let _lock = input.dir.lock("apply")?;
    input.dir.check_copied()?;
    let tables = Arc::new(input.cfg.tables.clone());
    let mut tgt = Target::connect(target, &input.cfg, tables.clone()).await?;
    let started_at = tgt.progress(false).await?;
    tracing::info!("apply: origin {} at {started_at}", input.cfg.origin);
    input
        .counters
        .applied
        .store(started_at.0, Ordering::Relaxed);
    let mut single_until = Lsn::ZERO;
    let mut books = Books::new(&input.dir);
    loop {
        let after = tgt.progress(false).await?;
        let evaluator = expressions(target, &input.cfg).await?;
        let shaper = Shaper::new(
            tables.clone(),
            &input.cfg.source_schema,
            shape::Unknown::of(&input.cfg),
            input.cfg.numeric_as_string,
            &input.plugins,
            evaluator,
            input.tenancy.clone(),
        )
        .map_err(|failed| {
            let (table, e) = *failed;
            StreamError::Setup(format!("table {table}: {e}"))
        })?;
        let (tx, rx) = mpsc::channel(16);
        let stop_flag = Arc::new(AtomicBool::new(false));
        let producer = reader::Producer {
            dir: input.dir.clone(),
            after,
            single_until,
            endpos: opts.endpos,
            received: input.received.clone(),
            shaper,
            tx,
            stop: stop_flag.clone(),
            runtime: tokio::runtime::Handle::current(),
        };
        let handle = tokio::task::spawn_blocking(move || producer.run());
        let consumed = consume(&mut tgt, rx, single_until, &input, &mut books).await;
        stop_flag.store(true, Ordering::Relaxed);
        let produced = handle
            .await
            .map_err(|e| StreamError::Setup(format!("the apply reader stopped: {e}")))?;
        match consumed {
            Ok(ended) => {
                produced?;
                let applied = tgt.progress(false).await?;
                books.write(&input, &tgt, true).await;
                return Ok(ApplyReport {
                    ended,
                    applied,
                    transactions: input.counters.transactions.load(Ordering::Relaxed),
                    target_transactions: input.counters.target_transactions.load(Ordering::Relaxed),
                    changes: input.counters.changes.load(Ordering::Relaxed),
                    statements: tgt.statements(),
                });
            }
            Err(Consume::Retry(until)) => {
                tracing::debug!(
                    "apply: a group failed; again one transaction at a time up to {until}"
                );
                single_until = until;
            }
            Err(Consume::Failed(e)) => {
                books.write(&input, &tgt, false).await;
                return Err(e);
            }
        }
    }
}

/// The evaluator for the tables with `where`/`select` expressions, prepared
/// (an expression the target cannot run fails here, before anything is applied).
pub async fn expressions(
    target: &Dsn,
    cfg: &StreamConfig,
) -> Result<Option<expr::Evaluator>, StreamError> {
    if !cfg.tables.iter().any(|t| t.has_expressions()) {
        return Ok(None);
    }
    let mut ev = expr::Evaluator::connect(target, &cfg.target_schema).await?;
    for (i, t) in cfg
        .tables
        .iter()
        .enumerate()
        .filter(|(_, t)| t.has_expressions())
    {
        ev.prepare(i, t)
            .await
            .map_err(|e| StreamError::Setup(format!("table {}: {e}", t.name)))?;
    }
    Ok(Some(ev))
}

enum Consume {
    /// A group of several source transactions failed: apply them one at a time up to this end LSN.
    Retry(Lsn),
    Failed(StreamError),
}

/// The open group of source transactions.
struct Group {
    /// Source transactions completed in it.
    txns: u64,
    changes: u64,
    started: Instant,
    last: Option<Arc<Txn>>,
}

async fn consume(
    tgt: &mut Target,
    mut rx: mpsc::Receiver<Unit>,
    single_until: Lsn,
    input: &ApplyInput,
    books: &mut Books,
) -> Result<ApplyEnd, Consume> {
    let mut group: Option<Group> = None;
    let mut current: Option<Arc<Txn>> = None;
    // Changes share statements, except in transactions being gone through
    // one at a time (to name the change that fails).
    let mut runs = true;
    loop {
        // Between transactions, an open group waits a little for the next
        // one (the reader may be shaping it), then is committed: never hold
        // a target transaction open while the source is idle.
        let unit = match rx.try_recv() {
            Ok(u) => Some(u),
            Err(mpsc::error::TryRecvError::Empty) => {
                let linger = match (&current, &group) {
                    (None, Some(g)) => {
                        Some(GROUP_LINGER.min(GROUP_TIME.saturating_sub(g.started.elapsed())))
                    }
                    _ => None,
                };
                let next = tokio::select! {
                    u = rx.recv() => Some(u),
                    _ = tokio::time::sleep(linger.unwrap_or_default()), if linger.is_some() => None,
                    _ = input.stop.wait() => {
                        match (&current, group.take()) {
                            (None, Some(g)) => commit(tgt, g, input, books).await?,
                            _ => tgt.rollback().await,
                        }
                        return Ok(ApplyEnd::Stopped);
                    }
                };
                match next {
                    Some(u) => u,
                    None => {
                        let g = group.take().expect("a group lingers");
                        commit(tgt, g, input, books).await?;
                        continue;
                    }
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => None,
        };
        let Some(unit) = unit else {
            // The producer ended without an end marker: an error (reported by the caller) or a stop.
            if current.is_none()
                && let Some(g) = group.take()
            {
                commit(tgt, g, input, books).await?;
            }
            tgt.rollback().await;
            return Ok(ApplyEnd::Stopped);
        };
        match unit {
            Unit::Begin(t) => {
                if group.is_none() {
                    tgt.begin();
                    group = Some(Group {
                        txns: 0,
                        changes: 0,
                        started: Instant::now(),
                        last: None,
                    });
                }
                runs = t.end_lsn > single_until;
                current = Some(t);
            }
            Unit::Work(w) => {
                let n = w.len() as u64;
                if let Err(e) = tgt.push(w, runs).await {
                    return Err(fail(tgt, group.as_ref(), e).await);
                }
                if let Some(g) = group.as_mut() {
                    g.changes += n;
                }
            }
            Unit::Commit(t) => {
                current = None;
                let g = group.as_mut().expect("a COMMIT inside a group");
                g.txns += 1;
                let single = t.end_lsn <= single_until;
                g.last = Some(t);
                if single || g.changes >= GROUP_CHANGES || g.started.elapsed() >= GROUP_TIME {
                    let g = group.take().expect("a group");
                    commit(tgt, g, input, books).await?;
                }
            }
            Unit::Fail(_, Some(until)) if until > single_until => {
                tgt.rollback().await;
                let done = group.as_ref().and_then(|g| g.last.as_ref());
                return Err(Consume::Retry(
                    until.max(done.map_or(Lsn::ZERO, |t| t.end_lsn)),
                ));
            }
            Unit::Fail(e, _) => return Err(fail(tgt, group.as_ref(), Failure::Change(e)).await),
            Unit::End(end) => {
                if let Some(g) = group.take() {
                    commit(tgt, g, input, books).await?;
                }
                return Ok(end);
            }
        }
        if input.stop.is_requested() && current.is_none() {
            if let Some(g) = group.take() {
                commit(tgt, g, input, books).await?;
            }
            return Ok(ApplyEnd::Stopped);
        }
    }
}

/// Rolls the open group back; a group holding completed transactions is
/// retried one transaction at a time, so those are applied; a failed run
/// is retried one change per statement, to name the change.
async fn fail(tgt: &mut Target, group: Option<&Group>, e: Failure) -> Consume {
    tgt.rollback().await;
    let done = group
        .and_then(|g| g.last.as_ref())
        .map_or(Lsn::ZERO, |t| t.end_lsn);
    match e {
        Failure::Run { txn, what } => {
            tracing::debug!(
                "apply: a run of changes of transaction {} failed ({what}); again one change at a time",
                txn.xid
            );
            Consume::Retry(txn.end_lsn.max(done))
        }
        Failure::Change(e) => match group {
            Some(g) if g.txns > 0 => Consume::Retry(e.commit_lsn.max(done)),
            _ => Consume::Failed(StreamError::Change(e)),
        },
    }
}

async fn commit(
    tgt: &mut Target,
    g: Group,
    input: &ApplyInput,
    books: &mut Books,
) -> Result<(), Consume> {
    let last = g
        .last
        .as_ref()
        .expect("a committed group has a transaction");
    if let Err(e) = tgt.commit(last).await {
        return Err(match e {
            Failure::Run { txn, .. } => Consume::Retry(txn.end_lsn.max(last.end_lsn)),
            Failure::Change(_) if g.txns > 1 => Consume::Retry(last.end_lsn),
            Failure::Change(e) => Consume::Failed(StreamError::Change(e)),
        });
    }
    let c = &input.counters;
    c.transactions.fetch_add(g.txns, Ordering::Relaxed);
    c.target_transactions.fetch_add(1, Ordering::Relaxed);
    c.changes.fetch_add(g.changes, Ordering::Relaxed);
    c.applied.store(last.end_lsn.0, Ordering::Relaxed);
    books.last = Some(last.clone());
    if books.due() {
        books.write(input, tgt, false).await;
    }
    Ok(())
}

/// Bookkeeping on the side: `apply.json` and removing spool segments the
/// target has on disk.
struct Books {
    last: Option<Arc<Txn>>,
    written: Instant,
    dir: StreamDir,
}

impl Books {
    fn new(dir: &StreamDir) -> Books {
        Books {
            last: None,
            written: Instant::now(),
            dir: dir.clone(),
        }
    }

    fn due(&self) -> bool {
        self.written.elapsed() >= Duration::from_secs(2)
    }

    async fn write(&mut self, input: &ApplyInput, tgt: &Target, caught_up: bool) {
        self.written = Instant::now();
        let c = &input.counters;
        let applied = Lsn(c.applied.load(Ordering::Relaxed));
        let mut state = self.dir.apply_state().unwrap_or_default();
        state.applied = applied;
        if let Some(t) = &self.last {
            state.commit_time = t.timestamp.clone();
        }
        if caught_up {
            state.caught_up_to = (*input.received.borrow()).max(applied);
        }
        state.at = now();
        state.transactions = c.transactions.load(Ordering::Relaxed);
        state.changes = c.changes.load(Ordering::Relaxed);
        if let Err(e) = self.dir.write_apply_state(&state) {
            tracing::warn!("apply: {e}");
        }
        // Only what the target has flushed: a crash of the target server
        // loses unflushed commits (synchronous_commit is off) together with
        // their origin progress, and the spool must still have them then.
        match tgt.progress(true).await {
            Ok(flushed) => {
                if let Err(e) = super::spool::remove_applied(&self.dir.spool(), flushed) {
                    tracing::warn!("apply: {e}");
                }
            }
            Err(e) => tracing::warn!("apply: {e}"),
        }
    }
}

/// The statement tests' table: `"we""ird"` (id, a, b), all text, keyed by
/// `id`, with `GENERATED ALWAYS AS IDENTITY` on column `identity`.
#[cfg(test)]
fn test_table(identity: usize) -> super::tables::StreamTable {
    use super::tables::{ColumnDef, Projected, StreamTable};
    let col = |i: usize, name: &str| ColumnDef {
        name: name.into(),
        type_oid: 25,
        type_sql: "text".into(),
        not_null: false,
        toastable: true,
        generated: false,
        identity_always: i == identity,
    };
    StreamTable {
        name: "we\"ird".into(),
        columns: vec![col(0, "id"), col(1, "a"), col(2, "b")],
        key: vec![0],
        identity_full: false,
        partitions: vec![],
        projection: (0..3)
            .map(|column| Projected { column, expr: None })
            .collect(),
        filter: None,
        plugins: vec![],
    }
}
