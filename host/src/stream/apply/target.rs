//! The target connection of apply: the stream's replication origin set up
//! for the session, statements pipelined, and each group of source
//! transactions committed together with the origin's progress.
//!
//! Statements are sent without waiting for each other's results (the
//! driver pipelines requests that are polled before earlier ones finish;
//! each is polled once as it is queued, so they go out in order). Results
//! are checked as they come back, all of them before COMMIT: a statement
//! that failed, or an UPDATE or DELETE that found no row where one had to
//! be, rolls the group back.
//!
//! Changes that can share a statement are sent as one ([`super::batch`]),
//! gathered per table and kind where nothing on the target can observe the
//! order ([`super::gather`]). A run's result is one count for all its changes, so
//! runs of changes that must each find one row are only made on tables
//! where a key matches at most one target row (a unique index on the key
//! or part of it, read when the table is mapped); elsewhere each such
//! change is checked on its own. A run that fails (an error, or fewer rows than
//! changes where each must find its row) is not reported as it is: it does
//! not say which change was wrong. It is a [`Failure::Run`], and apply goes
//! through that transaction again one change per statement, which names
//! the change exactly.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::{FuturesOrdered, StreamExt};
use futures::{FutureExt, future::BoxFuture};
use tokio_postgres::{Client, Statement};

use super::super::dir::StreamConfig;
use super::super::lsn::Lsn;
use super::super::tables::StreamTable;
use super::super::{StreamError, connect};
use super::batch;
use super::gather::{self, Gather, Interleave, Order};
use super::statements::{self, Shape, TextParam};
use super::{ChangeError, ErrorKind, Expect, Op, Txn, Work};
use crate::db::Dsn;
use crate::xmat::sql::{describe, qualified};

/// How long apply waits for the replication origin to be released before
/// it refuses to run beside another apply.
const ORIGIN_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Statements in flight before the oldest result is awaited.
const IN_FLIGHT: usize = 512;
/// Changes in flight (held until their statement's result is in).
const IN_FLIGHT_CHANGES: usize = 16_384;

type Pending = BoxFuture<'static, (Result<u64, tokio_postgres::Error>, Sent)>;

/// What a pending statement was, to check and report its result.
enum Sent {
    Begin,
    Row(Op),
    /// A run of changes in one statement.
    Run(Vec<Op>),
    Truncate {
        lsn: Lsn,
        txn: Arc<Txn>,
        sql: String,
    },
}

/// Why the open group failed.
#[derive(Debug)]
pub enum Failure {
    /// This change cannot be applied.
    Change(ChangeError),
    /// A run of changes ending in this transaction (it may start in an
    /// earlier one of the group) failed: which change is not known;
    /// applying the group up to this transaction one change per statement
    /// tells.
    Run { txn: Arc<Txn>, what: String },
}

/// The target side of apply.
pub struct Target {
    client: Arc<Client>,
    schema: String,
    tables: Arc<Vec<StreamTable>>,
    /// Each table's key columns (projection positions).
    keys: Vec<Vec<usize>>,
    /// Each table as the target has it.
    mapped: Vec<Mapped>,
    /// Prepared statements by table, shape and whether for a run.
    statements: HashMap<(usize, Shape, bool), Statement>,
    finish: Statement,
    pending: FuturesOrdered<Pending>,
    /// Changes in the pending statements.
    pending_changes: usize,
    /// Statements of changes sent so far.
    sent: u64,
    /// A group is open (BEGIN sent).
    open: bool,
    /// The first failure of the open group.
    failed: Option<Failure>,
    /// The runs being gathered (not sent yet): they may span source
    /// transactions of the open group.
    gather: Gather,
    origin: String,
}

impl Target {
    /// Connects, sets the session up for applying and takes the origin.
    pub async fn connect(
        dsn: &Dsn,
        cfg: &StreamConfig,
        tables: Arc<Vec<StreamTable>>,
    ) -> Result<Target, StreamError> {
        let client = connect(dsn, "target").await?;
        let db = |what: &str, e: &tokio_postgres::Error| StreamError::db("target", what, e);
        // Our own writes replay the source's: no triggers, no foreign key
        // checks (the source checked them), as PostgreSQL's own apply does.
        client
            .batch_execute(
                "SET synchronous_commit = off; SET datestyle = ISO; SET intervalstyle = postgres; \
                 SET client_min_messages = warning",
            )
            .await
            .map_err(|e| db("setting up the session", &e))?;
        let replica = client
            .batch_execute("SET session_replication_role = replica")
            .await;
        if let Err(e) = &replica {
            tracing::warn!(
                "target: cannot set session_replication_role = replica ({}); triggers and foreign \
                 key checks on the target will run for every applied change",
                describe(e)
            );
        }
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_replication_origin WHERE roname = $1",
                &[&cfg.origin],
            )
            .await
            .map_err(|e| db("looking for the replication origin", &e))?;
        if exists.is_none() {
            return Err(StreamError::Setup(format!(
                "the target has no replication origin {}: it records what was applied, so apply \
                 cannot run without it (run `host stream setup` for this target)",
                cfg.origin
            )));
        }
        // A killed apply's server session keeps the origin until it notices
        // its client is gone, which may be after the statement it was
        // running ends: a restart right after a crash waits for that, a
        // bounded while, before it calls the origin another apply's.
        let waited_since = std::time::Instant::now();
        let mut told = false;
        while let Err(e) = client
            .query(
                "SELECT pg_replication_origin_session_setup($1)",
                &[&cfg.origin],
            )
            .await
        {
            let in_use = e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE);
            if in_use && waited_since.elapsed() < ORIGIN_RELEASE_WAIT {
                if !told {
                    tracing::warn!(
                        "target: the replication origin {} is held by another session ({}); \
                         waiting up to {}s for it (a crashed apply's session ends once its \
                         statement does)",
                        cfg.origin,
                        describe(&e),
                        ORIGIN_RELEASE_WAIT.as_secs()
                    );
                    told = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            return Err(if in_use {
                StreamError::Setup(format!(
                    "another apply is running for this stream ({}: {})",
                    cfg.origin,
                    describe(&e)
                ))
            } else {
                db("taking the replication origin", &e)
            });
        }
        let mapped = check_tables(&client, &cfg.target_schema, &tables).await?;
        let order = if replica.is_ok() && !observed(&client, &cfg.target_schema, &tables).await? {
            Order::PerTable
        } else {
            tracing::info!(
                "target: changes are applied in source order (a trigger, rule or row security \
                 policy on a streamed table, or a session that is not `replica`, could see \
                 another order)"
            );
            Order::Source
        };
        let finish = client
            .prepare(
                "SELECT pg_replication_origin_xact_setup($1::text::pg_lsn, $2::text::timestamptz), \
                 pg_current_xact_id()",
            )
            .await
            .map_err(|e| db("preparing", &e))?;
        Ok(Target {
            client: Arc::new(client),
            schema: cfg.target_schema.clone(),
            keys: tables.iter().map(|t| t.key_in_projection()).collect(),
            gather: Gather::new(order, mapped.iter().map(|m| m.interleave).collect()),
            mapped,
            tables,
            statements: HashMap::new(),
            finish,
            pending: FuturesOrdered::new(),
            pending_changes: 0,
            sent: 0,
            open: false,
            failed: None,
            origin: cfg.origin.clone(),
        })
    }

    /// The end LSN of the last source transaction applied (committed on the
    /// target; with `flushed`, also on its disk).
    pub async fn progress(&self, flushed: bool) -> Result<Lsn, StreamError> {
        let row = self
            .client
            .query_one(
                "SELECT coalesce(pg_replication_origin_progress($1, $2), '0/0')::text",
                &[&self.origin, &flushed],
            )
            .await
            .map_err(|e| StreamError::db("target", "reading the origin's progress", &e))?;
        Ok(row.get::<_, String>(0).parse().unwrap_or_default())
    }

    /// Statements of changes sent so far (a run counts once).
    pub fn statements(&self) -> u64 {
        self.sent
    }

    /// Whether a group is open.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Opens a group (a target transaction).
    pub fn begin(&mut self) {
        let c = self.client.clone();
        self.queue(
            Box::pin(async move { (c.batch_execute("BEGIN").await.map(|_| 0), Sent::Begin) }),
            0,
        );
        self.open = true;
    }

    /// Queues statements; checks results as they arrive. After the first
    /// failure nothing more is sent; the failure is returned (here or by
    /// [`commit`](Self::commit)). With `runs`, changes that can share a
    /// statement do.
    ///
    /// Runs may go on past the end of `work` and of its source transaction
    /// (consecutive transactions of one group share statements); a run is
    /// sent when [`Gather`] says so, or by [`commit`](Self::commit).
    pub async fn push(&mut self, work: Vec<Work>, runs: bool) -> Result<(), Failure> {
        let mut key_buf = Vec::new();
        let mut out = Vec::new();
        if !runs {
            self.send_gathered().await?;
        }
        for w in work {
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
            match w {
                Work::Row(op) => {
                    let table = &self.tables[op.table];
                    let joinable = runs
                        && batch::joinable(
                            &op,
                            table,
                            &self.keys[op.table],
                            self.mapped[op.table].key_unique,
                        );
                    let key = joinable.then(|| {
                        batch::key_bytes(&op, &self.keys[op.table], &mut key_buf);
                        gather::key_hash(&key_buf)
                    });
                    self.gather.add(op, key, &mut out);
                    for ops in out.drain(..) {
                        self.send(ops).await?;
                    }
                }
                Work::Truncate { tables, lsn, txn } => {
                    self.send_gathered().await?;
                    let list: Vec<&StreamTable> = tables.iter().map(|&t| &self.tables[t]).collect();
                    let sql = statements::truncate(&list, &self.schema);
                    let c = self.client.clone();
                    self.queue(
                        Box::pin(async move {
                            let r = c.batch_execute(&sql).await.map(|_| 0);
                            (r, Sent::Truncate { lsn, txn, sql })
                        }),
                        0,
                    );
                    super::super::crash::point("apply-sent");
                    self.settle_some().await;
                }
            }
        }
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends every run gathered so far.
    async fn send_gathered(&mut self) -> Result<(), Failure> {
        let mut out = Vec::new();
        self.gather.send_all(&mut out);
        for ops in out {
            self.send(ops).await?;
        }
        Ok(())
    }

    /// Sends changes: one as its row statement, more as a run.
    async fn send(&mut self, ops: Vec<Op>) -> Result<(), Failure> {
        let n = ops.len();
        if n == 0 {
            return Ok(());
        }
        let stmt = self
            .statement(&ops[0], n > 1)
            .await
            .map_err(Failure::Change)?;
        let c = self.client.clone();
        let by_row = statements::counts_by_row(&ops[0].shape);
        self.sent += 1;
        self.queue(
            if n == 1 {
                let op = ops.into_iter().next().expect("one change");
                Box::pin(async move {
                    let r = touched(&c, &stmt, op.params.iter(), by_row).await;
                    (r, Sent::Row(op))
                })
            } else {
                Box::pin(async move {
                    let r = {
                        let columns =
                            (0..ops[0].params.len()).map(|i| batch::Column { ops: &ops, i });
                        touched(&c, &stmt, columns.collect::<Vec<_>>(), by_row).await
                    };
                    (r, Sent::Run(ops))
                })
            },
            n,
        );
        // A crash point per change, so a kill lands after any number of them.
        for _ in 0..n {
            super::super::crash::point("apply-sent");
        }
        self.settle_some().await;
        Ok(())
    }

    /// Awaits results until few enough are in flight.
    async fn settle_some(&mut self) {
        while self.pending.len() > IN_FLIGHT || self.pending_changes > IN_FLIGHT_CHANGES {
            self.settle_one().await;
        }
    }

    /// Commits the open group, recording `last` (its last source transaction)
    /// as the origin's progress in the same transaction.
    pub async fn commit(&mut self, last: &Txn) -> Result<(), Failure> {
        if let Err(e) = self.send_gathered().await {
            self.rollback().await;
            return Err(e);
        }
        while !self.pending.is_empty() {
            self.settle_one().await;
        }
        if let Some(e) = self.failed.take() {
            self.rollback().await;
            return Err(e);
        }
        let target_error = |what: String| ChangeError {
            xid: last.xid,
            commit_lsn: last.commit_lsn,
            lsn: last.commit_lsn,
            table: None,
            plugin: None,
            kind: ErrorKind::Target,
            what,
        };
        let lsn = last.end_lsn.to_string();
        let params = [TextParam(Some(&lsn)), TextParam(Some(&last.timestamp))];
        let setup = self.client.execute_raw(&self.finish, params);
        let commit = self.client.batch_execute("COMMIT");
        let (setup, commit) = tokio::join!(setup, commit);
        self.open = false;
        if let Err(e) = setup.and(commit) {
            let _ = self.client.batch_execute("ROLLBACK").await;
            return Err(Failure::Change(target_error(format!(
                "committing on the target: {}",
                describe(&e)
            ))));
        }
        super::super::crash::point("apply-committed");
        Ok(())
    }

    /// Abandons the open group.
    pub async fn rollback(&mut self) {
        while !self.pending.is_empty() {
            let _ = self.pending.next().await;
        }
        self.failed = None;
        self.pending_changes = 0;
        self.gather.clear();
        if self.open {
            let _ = self.client.batch_execute("ROLLBACK").await;
            self.open = false;
        }
    }

    /// Sends a request now (so requests go out in the order queued).
    fn queue(&mut self, mut fut: Pending, changes: usize) {
        self.pending_changes += changes;
        let waker = futures::task::noop_waker();
        match fut.poll_unpin(&mut Context::from_waker(&waker)) {
            Poll::Ready(out) => self
                .pending
                .push_back(Box::pin(futures::future::ready(out))),
            Poll::Pending => self.pending.push_back(fut),
        }
    }

    async fn settle_one(&mut self) {
        let Some((result, sent)) = self.pending.next().await else {
            return;
        };
        self.pending_changes -= match &sent {
            Sent::Row(_) => 1,
            Sent::Run(ops) => ops.len(),
            Sent::Begin | Sent::Truncate { .. } => 0,
        };
        if self.failed.is_some() {
            return; // later statements only echo the first failure
        }
        self.failed = self.check(result, sent);
    }

    fn check(&self, result: Result<u64, tokio_postgres::Error>, sent: Sent) -> Option<Failure> {
        if let Sent::Run(ops) = sent {
            let expect = ops[0].expect;
            let what = match result {
                Err(e) => describe(&e),
                Ok(n) if expected(expect, n, ops.len() as u64) => return None,
                Ok(n) => format!("{n} rows for {} changes ({expect:?})", ops.len()),
            };
            // The run's last transaction: going through the group one
            // change at a time up to it names the change.
            let txn = ops[ops.len() - 1].txn.clone();
            return Some(Failure::Run { txn, what });
        }
        self.check_one(result, sent).map(Failure::Change)
    }

    fn check_one(
        &self,
        result: Result<u64, tokio_postgres::Error>,
        sent: Sent,
    ) -> Option<ChangeError> {
        match sent {
            Sent::Run(_) => None,
            Sent::Begin => result.err().map(|e| ChangeError {
                xid: 0,
                commit_lsn: Lsn::ZERO,
                lsn: Lsn::ZERO,
                table: None,
                plugin: None,
                kind: ErrorKind::Target,
                what: format!("BEGIN on the target: {}", describe(&e)),
            }),
            Sent::Truncate { lsn, txn, sql } => result.err().map(|e| ChangeError {
                xid: txn.xid,
                commit_lsn: txn.commit_lsn,
                lsn,
                table: None,
                plugin: None,
                kind: ErrorKind::Target,
                what: format!("{sql}: {}", describe(&e)),
            }),
            Sent::Row(op) => {
                let table = &self.tables[op.table];
                let fail = |what: String| ChangeError {
                    xid: op.txn.xid,
                    commit_lsn: op.txn.commit_lsn,
                    lsn: op.lsn,
                    table: Some(table.name.clone()),
                    plugin: None,
                    kind: ErrorKind::Target,
                    what,
                };
                let key = || key_text(table, &op);
                let n = match result {
                    Ok(n) => n,
                    Err(e) => {
                        return Some(fail(format!(
                            "{} of the row with key {} failed on the target: {}",
                            verb(&op.shape),
                            key(),
                            describe(&e)
                        )));
                    }
                };
                if expected(op.expect, n, 1) {
                    return None;
                }
                Some(fail(match op.expect {
                    Expect::OneKeepingToast => format!(
                        "the row with key {} is not on the target, so this UPDATE brings it into the \
                         copied subset, but wal2json did not send its unchanged TOASTed column(s) {}: \
                         it cannot be inserted whole (set REPLICA IDENTITY FULL on the source table \
                         so the old row carries them)",
                        key(),
                        missing_columns(table, &op.shape).join(", ")
                    ),
                    _ => format!(
                        "{} found {n} rows with key {} on the target where the source had exactly one: \
                         the target has diverged from the source (changed outside the stream?)",
                        verb(&op.shape),
                        key()
                    ),
                }))
            }
        }
    }

    /// The prepared statement for an op's table and shape, alone or in a run.
    async fn statement(&mut self, op: &Op, run: bool) -> Result<Statement, ChangeError> {
        let k = (op.table, op.shape.clone(), run);
        if let Some(s) = self.statements.get(&k) {
            return Ok(s.clone());
        }
        let table = &self.tables[op.table];
        let sql = if run {
            batch::sql(table, &self.schema, &op.shape, &self.mapped[op.table].types)
        } else {
            statements::sql(table, &self.schema, &op.shape)
        };
        tracing::debug!("target: prepare {sql}");
        let s = self.client.prepare(&sql).await.map_err(|e| ChangeError {
            xid: op.txn.xid,
            commit_lsn: op.txn.commit_lsn,
            lsn: op.lsn,
            table: Some(table.name.clone()),
            plugin: None,
            kind: ErrorKind::Target,
            what: format!("preparing `{sql}` on the target: {}", describe(&e)),
        })?;
        self.statements.insert(k, s.clone());
        Ok(s)
    }
}

/// Runs a change's statement: the rows it touched, from its command's row
/// count or (`by_row`) from the one `bigint` it returns.
async fn touched<P, I>(
    c: &Client,
    stmt: &Statement,
    params: I,
    by_row: bool,
) -> Result<u64, tokio_postgres::Error>
where
    P: tokio_postgres::types::BorrowToSql,
    I: IntoIterator<Item = P>,
    I::IntoIter: ExactSizeIterator,
{
    if !by_row {
        return c.execute_raw(stmt, params).await;
    }
    let rows = c.query_raw(stmt, params).await?;
    futures::pin_mut!(rows);
    let mut n = 0;
    while let Some(row) = rows.next().await {
        n += row?.get::<_, i64>(0) as u64;
    }
    Ok(n)
}

/// Whether `n` rows touched is right for `changes` changes that expect this.
fn expected(expect: Expect, n: u64, changes: u64) -> bool {
    match expect {
        Expect::One | Expect::OneKeepingToast => n == changes,
        Expect::AtMostOne => n <= changes,
    }
}

fn verb(shape: &Shape) -> &'static str {
    match shape {
        Shape::Insert => "INSERT",
        Shape::Update(_) | Shape::Upsert => "UPDATE",
        Shape::Delete => "DELETE",
    }
}

/// `(id)=(42)`, as PostgreSQL shows keys.
fn key_text(table: &StreamTable, op: &Op) -> String {
    let names: Vec<&str> = table
        .key
        .iter()
        .map(|&k| table.columns[k].name.as_str())
        .collect();
    let n = names.len();
    let first = op.params.len() - n;
    let values: Vec<&str> = (first..op.params.len())
        .map(|i| op.params.get(i).unwrap_or("NULL"))
        .collect();
    let values = if matches!(op.shape, Shape::Insert) {
        table
            .key_in_projection()
            .iter()
            .map(|&p| op.params.get(p).unwrap_or("NULL"))
            .collect()
    } else {
        values
    };
    format!("({})=({})", names.join(", "), values.join(", "))
}

fn missing_columns(table: &StreamTable, shape: &Shape) -> Vec<String> {
    match shape {
        Shape::Update(Some(present)) => (0..table.projection.len())
            .filter(|i| !present.contains(i))
            .map(|i| table.columns[table.projection[i].column].name.clone())
            .collect(),
        _ => Vec::new(),
    }
}

/// A streamed table as the target has it.
struct Mapped {
    /// The type of each projection column on the target, as run statements
    /// cast to them (schema-qualified internal names: see [`super::batch`]).
    types: Vec<String>,
    /// Whether a key matches at most one target row: a primary key or a
    /// unique index on the key columns, or on some of them, that the
    /// statements' `=` obeys (see [`KEY_UNIQUE`]).
    key_unique: bool,
    /// Whether changes to different keys commute (see [`INTERLEAVE`]).
    interleave: Interleave,
}

/// Whether table `$1`'s changes to different keys (columns `$2`) have the
/// same result in any order: no unique index checked at once and no
/// exclusion constraint compares rows unless it includes every key column
/// (plain, with the type's default operator class and the column's own
/// collation, so rows with different keys never conflict in it). Invalid
/// and partial indexes count: they are checked on every write too.
/// Deferrable ones are not checked under `replica` (see [`super::gather`]).
const INTERLEAVE: &str = "\
    SELECT NOT EXISTS (SELECT FROM pg_index i \
    WHERE i.indrelid = to_regclass($1) AND ((i.indisunique AND i.indimmediate) OR i.indisexclusion) \
      AND (i.indisexclusion OR EXISTS (SELECT FROM unnest($2::text[]) AS key(name) \
          WHERE NOT EXISTS (SELECT FROM unnest(i.indkey::int2[], i.indclass::oid[], \
                  i.indcollation::oid[]) WITH ORDINALITY AS k(attnum, opclass, coll, n) \
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
              JOIN pg_opclass o ON o.oid = k.opclass \
              WHERE k.n <= i.indnkeyatts AND a.attname::text = key.name AND o.opcdefault \
                AND k.coll = a.attcollation))))";

/// Whether anything on the streamed tables `$1` (or their partitions) could
/// see the order of changes under `replica`: a trigger or rule enabled
/// ALWAYS or REPLICA, or row security (a policy may read other rows).
const OBSERVED: &str = "\
    WITH r AS (SELECT to_regclass(n.name) AS oid FROM unnest($1::text[]) AS n(name)), \
    t AS (SELECT oid FROM r UNION SELECT p.relid FROM r, pg_partition_tree(r.oid) AS p) \
    SELECT EXISTS (SELECT FROM pg_trigger g JOIN t ON g.tgrelid = t.oid \
                   WHERE g.tgenabled IN ('A', 'R')) \
        OR EXISTS (SELECT FROM pg_rewrite r JOIN t ON r.ev_class = t.oid \
                   WHERE r.ev_enabled IN ('A', 'R') AND r.rulename <> '_RETURN') \
        OR EXISTS (SELECT FROM pg_class c JOIN t ON c.oid = t.oid WHERE c.relrowsecurity)";

/// See [`OBSERVED`].
async fn observed(
    client: &Client,
    schema: &str,
    tables: &[StreamTable],
) -> Result<bool, StreamError> {
    let names: Vec<String> = tables.iter().map(|t| qualified(schema, &t.name)).collect();
    Ok(client
        .query_one(OBSERVED, &[&names])
        .await
        .map_err(|e| StreamError::db("target", "reading its triggers and rules", &e))?
        .get(0))
}

/// Whether table `$1` has a unique index on columns `$2` or a subset of
/// them that holds whenever a statement compares keys: enforced at once
/// (not deferred: apply runs as `replica`, where the deferred check's
/// trigger does not fire), valid, not partial, on plain columns, with the
/// type's default operator class and the column's own collation (so its
/// equality is the `=` the statements use; a case-insensitive column
/// under a deterministic index could match two rows).
const KEY_UNIQUE: &str = "\
    SELECT EXISTS (SELECT FROM pg_index i \
    WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indisvalid AND i.indimmediate \
      AND i.indpred IS NULL AND i.indexprs IS NULL \
      AND NOT EXISTS (SELECT FROM unnest(i.indkey::int2[], i.indclass::oid[], i.indcollation::oid[]) \
            WITH ORDINALITY AS k(attnum, opclass, coll, n) \
          LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
          LEFT JOIN pg_opclass o ON o.oid = k.opclass \
          WHERE k.n <= i.indnkeyatts \
            AND NOT coalesce(a.attname::text = ANY ($2) AND o.opcdefault \
                             AND k.coll = a.attcollation, false)))";

/// Refuses a target without the streamed tables (or with their columns
/// missing); maps each one.
async fn check_tables(
    client: &Client,
    schema: &str,
    tables: &[StreamTable],
) -> Result<Vec<Mapped>, StreamError> {
    let mut problems = Vec::new();
    let mut mapped = Vec::new();
    for t in tables {
        let name = qualified(schema, &t.name);
        let cols: Vec<String> = t
            .projection
            .iter()
            .map(|p| t.columns[p.column].name.clone())
            .collect();
        let rows = client
            .query(
                "SELECT a.attname::text, quote_ident(n.nspname) || '.' || quote_ident(y.typname) \
                 FROM pg_attribute a JOIN pg_type y ON y.oid = a.atttypid \
                 JOIN pg_namespace n ON n.oid = y.typnamespace \
                 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
                &[&name],
            )
            .await
            .map_err(|e| StreamError::db("target", "reading its tables", &e))?;
        if rows.is_empty() {
            problems.push(format!("table {name} does not exist"));
            continue;
        }
        let have: HashMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let missing: Vec<&String> = cols.iter().filter(|c| !have.contains_key(*c)).collect();
        let key: Vec<String> = t.key.iter().map(|&k| t.columns[k].name.clone()).collect();
        let key_unique: bool = client
            .query_one(KEY_UNIQUE, &[&name, &key])
            .await
            .map_err(|e| StreamError::db("target", "reading its unique indexes", &e))?
            .get(0);
        let interleave: bool = client
            .query_one(INTERLEAVE, &[&name, &key])
            .await
            .map_err(|e| StreamError::db("target", "reading its constraints", &e))?
            .get(0);
        if !key_unique {
            tracing::info!(
                "target: no unique index on the key of {name}: its UPDATEs and DELETEs are \
                 applied one per statement, each checked to find one row (update-or-inserts \
                 share statements: their total shows a key matching two rows)"
            );
        }
        mapped.push(Mapped {
            types: cols
                .iter()
                .map(|c| have.get(c).cloned().unwrap_or_default())
                .collect(),
            key_unique,
            interleave: if interleave {
                Interleave::Kinds
            } else {
                Interleave::InOrder
            },
        });
        if !missing.is_empty() {
            problems.push(format!(
                "table {name} has no column {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    if problems.is_empty() {
        Ok(mapped)
    } else {
        Err(StreamError::Setup(format!(
            "the target is not ready for this stream: {} (copy the tables first, e.g. with \
             `host stream clone`)",
            problems.join("; ")
        )))
    }
}
