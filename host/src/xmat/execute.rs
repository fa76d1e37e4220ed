//! Running a prepared job: build the new target beside the old one, copy
//! every table through its plugins on `--jobs` worker pairs, add each
//! foreign key once its tables are loaded, move sequences on, and swap the
//! new schema in. Any failure drops the new schema instead. See the module
//! docs of [`crate::xmat`] for the order of things.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::Notify;

use super::copy::{self, Counters, TableStats};
use super::error::{Failure, ForeignKeyError, Side, TableError, XmatError};
use super::jobs::{DanglingKeys, Subset};
use super::plan::Plan;
use super::prepare::{PluginSetup, Plugins, Prepared, source_table};
use super::schedule::{Next, Schedule};
use super::sql::{Conn, StatementError, ident, literal};
use super::{follow, foreign_keys, swap};
use crate::db::Dsn;

/// Index builds sort in `maintenance_work_mem`, and adding a foreign key
/// checks existing rows with a hash join that gets the same budget; 64 MB
/// (the default) spills for a few million rows. Raised for our own target
/// sessions only, and never lowered.
pub(super) const MAINTENANCE_MEMORY: &str = "SELECT set_config('maintenance_work_mem', '256MB', false) \
     WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes('256MB')";

/// A followed key is a hash join on the source, whose hash table holds the
/// kept keys of the referenced table: at the default 4 MB, half a million
/// keys spill to temporary files in four batches (and the referencing table
/// with them), so `work_mem` is raised (never lowered), only in our own
/// source transactions, for jobs that follow keys. (Parallel workers are
/// priced per statement: [`follow::parallel_pricing`].)
const FOLLOW_SETTINGS: &str = "SELECT set_config('work_mem', '64MB', true) \
     WHERE pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('64MB')";

/// Hears about progress (the command prints it).
pub trait Observer: Send + Sync {
    /// A table's copy starts; `counters` move while it runs.
    fn table_started(&self, _table: &str, _counters: Arc<Counters>) {}
    /// A table is loaded, indexed and committed.
    fn table_finished(&self, _table: &str, _stats: &TableStats) {}
    /// A step of the job (each foreign key as it starts, `swap`).
    fn step(&self, _message: &str) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// What a finished job did.
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub job: String,
    pub source: String,
    pub target: String,
    pub tables: Vec<TableReport>,
    pub rows_read: u64,
    pub rows_written: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub seconds: f64,
    pub warnings: Vec<String>,
}

/// One table of a finished job.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    #[serde(flatten)]
    pub stats: TableStats,
}

impl Prepared {
    /// Builds the new target, copies every table and swaps it in; on any
    /// failure the new schema is dropped and the old target stays as it was.
    pub async fn execute(self, observer: Arc<dyn Observer>) -> Result<JobReport, XmatError> {
        self.check()?;
        let started = Instant::now();
        let Prepared {
            plan,
            plugins,
            unique_risks: _,
            source_shown,
            target_shown,
            source,
            target,
            control: snapshot_holder,
            snapshot,
            search_path,
            opts,
        } = self;
        let job = plan.job.clone();
        let plan = Arc::new(plan);
        let conns = Endpoints {
            source,
            target,
            snapshot,
            search_path,
        };
        let fail = |f: Failure| XmatError::new(&job, f);
        let on_target = |source: StatementError| {
            fail(Failure::Statement {
                side: Side::Target,
                source,
            })
        };
        let control = Conn {
            client: conns.target.connect().await.map_err(|source| {
                fail(Failure::Connect {
                    side: Side::Target,
                    source,
                })
            })?,
            label: "target".into(),
        };
        swap::prepare(&control, &plan.target_schema, &plan.build_schema)
            .await
            .map_err(|e| fail(e.into()))?;
        control.exec(MAINTENANCE_MEMORY).await.map_err(on_target)?;

        let result = async {
            control.exec("BEGIN").await.map_err(on_target)?;
            for sql in &plan.pre_data {
                if let Err(e) = control.exec(sql).await {
                    let _ = control.exec("ROLLBACK").await;
                    return Err(on_target(e));
                }
            }
            control.exec("COMMIT").await.map_err(on_target)?;

            let workers = Workers {
                conns: &conns,
                plan: &plan,
                plugins,
                jobs: opts.jobs,
                plugin_threads: opts.plugin_threads,
                follow: opts.follow,
                setup: opts.plugins.clone(),
                observer: observer.clone(),
            };
            let (tables, warnings) = workers.run(snapshot_holder).await?;
            for s in &plan.sequences {
                control.exec(&s.sql()).await.map_err(on_target)?;
            }
            observer.step("swap");
            swap::swap(&control, &plan.target_schema, &plan.build_schema)
                .await
                .map_err(|e| fail(e.into()))?;
            Ok((tables, warnings))
        }
        .await;

        let (tables, warnings) = match result {
            Ok(t) => t,
            Err(e) => {
                if let Err(d) = swap::discard(&control, &plan.build_schema).await {
                    tracing::warn!("could not drop {}: {d}", plan.build_schema);
                }
                return Err(e);
            }
        };
        let mut report = JobReport {
            job: job.clone(),
            source: source_shown,
            target: target_shown,
            tables: Vec::new(),
            rows_read: 0,
            rows_written: 0,
            dropped: 0,
            rejected: 0,
            seconds: started.elapsed().as_secs_f64(),
            warnings: plan.warnings.iter().cloned().chain(warnings).collect(),
        };
        for (i, stats) in tables {
            report.rows_read += stats.rows_read;
            report.rows_written += stats.rows_written;
            report.dropped += stats.dropped;
            report.rejected += stats.rejected;
            report.tables.push(TableReport {
                table: plan.tables[i].name.clone(),
                stats,
            });
        }
        report.tables.sort_by(|a, b| a.table.cmp(&b.table));
        Ok(report)
    }
}

/// What each worker needs to open its connections.
struct Endpoints {
    source: Dsn,
    target: Dsn,
    snapshot: String,
    search_path: String,
}

/// What the workers share: the schedule, and a signal for its changes.
struct Shared {
    schedule: Mutex<Schedule>,
    /// Woken when a table is loaded, a key added, or the job fails.
    changed: Notify,
    /// Set with a failure, so tables in the middle of their copy stop too.
    cancel: Arc<AtomicBool>,
    /// What the run left out on the way (keys that did not hold, for pg-xmat jobs).
    warnings: Mutex<Vec<String>>,
}

impl Shared {
    fn update<T>(&self, f: impl FnOnce(&mut Schedule) -> T) -> T {
        let out = f(&mut self.schedule.lock().expect("schedule lock"));
        self.changed.notify_waiters();
        out
    }

    fn stop(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.update(Schedule::fail);
    }
}

/// The worker pairs of one job and what they share.
struct Workers<'a> {
    conns: &'a Endpoints,
    plan: &'a Arc<Plan>,
    plugins: Plugins,
    jobs: usize,
    plugin_threads: usize,
    follow: follow::Limits,
    setup: PluginSetup,
    observer: Arc<dyn Observer>,
}

impl Workers<'_> {
    /// Runs the workers over the [`Schedule`]: every table, and each foreign
    /// key once its tables are loaded. The first failure stops the others.
    /// `snapshot_holder`'s transaction, which holds the snapshot, ends once
    /// every table is loaded: no worker imports it after that.
    async fn run(
        self,
        snapshot_holder: Conn,
    ) -> Result<(Vec<(usize, TableStats)>, Vec<String>), XmatError> {
        let plan = self.plan;
        let sizes = plan
            .tables
            .iter()
            .map(|t| u64::try_from(t.bytes).unwrap_or(0))
            .enumerate();
        let shared = Arc::new(Shared {
            schedule: Mutex::new(Schedule::new(sizes, &plan.foreign_keys)),
            changed: Notify::new(),
            cancel: Arc::new(AtomicBool::new(false)),
            warnings: Mutex::new(Vec::new()),
        });
        let mut set = tokio::task::JoinSet::new();
        // A key locks two tables, or one: more workers than tables never run.
        for id in 1..=self.jobs.clamp(1, plan.tables.len().max(1)) {
            let w = Worker {
                id,
                plugin_threads: self.plugin_threads,
                follow: self.follow,
                setup: self.setup.clone(),
                plan: plan.clone(),
                plugins: self.plugins.clone(),
                shared: shared.clone(),
                observer: self.observer.clone(),
                source: self.conns.source.clone(),
                target: self.conns.target.clone(),
                snapshot: self.conns.snapshot.clone(),
                search_path: self.conns.search_path.clone(),
            };
            set.spawn(async move {
                let r = w.run().await;
                if r.is_err() {
                    w.shared.stop();
                }
                r
            });
        }
        let release = async {
            loop {
                let changed = shared.changed.notified();
                if shared.schedule.lock().expect("schedule lock").tables_done() {
                    break;
                }
                changed.await;
            }
            let _ = snapshot_holder.exec("COMMIT").await;
        };
        let collect = async {
            let mut done = Vec::new();
            let mut first_error: Option<XmatError> = None;
            while let Some(joined) = set.join_next().await {
                match joined {
                    Ok(Ok(tables)) => done.extend(tables),
                    Ok(Err(e)) => {
                        // A cancelled table only echoes another's failure.
                        if first_error
                            .as_ref()
                            .is_none_or(|f| f.is_cancel() && !e.is_cancel())
                        {
                            first_error = Some(e);
                        }
                    }
                    Err(e) => {
                        shared.stop();
                        first_error.get_or_insert_with(|| {
                            XmatError::new(&plan.job, Failure::Worker(e.to_string()))
                        });
                    }
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(done),
            }
        };
        let (result, ()) = tokio::join!(collect, release);
        let warnings = std::mem::take(&mut *shared.warnings.lock().expect("warnings lock"));
        result.map(|tables| (tables, warnings))
    }
}

/// One pair of connections taking work off the shared schedule.
struct Worker {
    id: usize,
    plugin_threads: usize,
    follow: follow::Limits,
    setup: PluginSetup,
    plan: Arc<Plan>,
    plugins: Plugins,
    shared: Arc<Shared>,
    observer: Arc<dyn Observer>,
    source: Dsn,
    target: Dsn,
    snapshot: String,
    search_path: String,
}

impl Worker {
    fn fail(&self, failure: Failure) -> XmatError {
        XmatError::new(&self.plan.job, failure)
    }

    fn on(&self, side: Side) -> impl Fn(StatementError) -> XmatError + '_ {
        move |source| self.fail(Failure::Statement { side, source })
    }

    async fn run(&self) -> Result<Vec<(usize, TableStats)>, XmatError> {
        let dst = Conn {
            client: self.target.connect().await.map_err(|source| {
                self.fail(Failure::Connect {
                    side: Side::Target,
                    source,
                })
            })?,
            label: format!("target {}", self.id),
        };
        dst.exec(&format!(
            "SET search_path = {}; SET client_min_messages = warning; {}",
            ident(&self.plan.build_schema),
            MAINTENANCE_MEMORY
        ))
        .await
        .map_err(self.on(Side::Target))?;

        // Opened with the first table; a worker that only adds keys never needs it.
        let mut src: Option<Conn> = None;
        let mut done = Vec::new();
        loop {
            let changed = self.shared.changed.notified();
            let next = self.shared.schedule.lock().expect("schedule lock").next();
            if !matches!(next, Next::Table(_)) {
                // No table is left to start: end the source transaction now
                // rather than hold its snapshot while keys are validated.
                if let Some(src) = src.take() {
                    src.exec("COMMIT").await.map_err(self.on(Side::Source))?;
                }
            }
            match next {
                Next::Table(i) => {
                    let src = match &mut src {
                        Some(src) => src,
                        None => src.insert(self.source().await?),
                    };
                    let stats = self.table(src, &dst, i).await?;
                    let rows = stats.rows_written;
                    self.shared.update(|s| s.table_loaded(i, rows));
                    done.push((i, stats));
                }
                Next::Key {
                    key,
                    referencing,
                    referenced,
                } => {
                    let table = &self.plan.tables[key.from].name;
                    self.observer
                        .step(&format!("{table}: adding foreign key {}", key.name));
                    if let Err(source) =
                        foreign_keys::add(&dst, &key, referencing, referenced).await
                    {
                        let source = foreign_keys::explain(&dst, &self.plan, &key, source).await;
                        match (&source, self.plan.dangling_keys) {
                            (ForeignKeyError::Dangling { .. }, DanglingKeys::LeaveOut) => {
                                let w = format!("{table}: {source}; left out, as pg-xmat does");
                                tracing::warn!("{w}");
                                self.shared.warnings.lock().expect("warnings lock").push(w);
                            }
                            _ => {
                                return Err(self.fail(Failure::ForeignKey {
                                    table: table.clone(),
                                    source,
                                }));
                            }
                        }
                    }
                    self.shared.update(|s| s.key_added(&key));
                }
                Next::Wait => changed.await,
                Next::Done => break,
            }
        }
        Ok(done)
    }

    /// How the table's rows are read: with each followed integer key's kept
    /// keys in the query, or tested by host, if every parent's kept keys fit
    /// in memory; else by the SELECT with every semi join.
    async fn reading(
        &self,
        src: &Conn,
        t: &super::plan::TablePlan,
    ) -> Result<copy::Reading, follow::KeysError> {
        let Some(host) = &t.host_follow else {
            return Ok(copy::Reading::Select);
        };
        let mut conditions: Vec<String> = host.condition.iter().cloned().collect();
        let (mut tested, mut sets) = (Vec::new(), Vec::new());
        for k in &host.keys {
            self.observer.step(&format!(
                "{}: reading the kept keys of {} ({})",
                t.name, k.parent, k.key
            ));
            let fall_back = |why: String| {
                tracing::info!(
                    "{}: the kept keys of {} ({}) {why}; following it in the source instead",
                    t.name,
                    k.parent,
                    k.key
                );
                copy::Reading::Select
            };
            let Some(set) = follow::read_keys(src, k, self.follow.memory).await? else {
                return Ok(fall_back(format!(
                    "need more than {} bytes",
                    self.follow.memory
                )));
            };
            let bytes = set.bytes();
            if let Some(c) = set.condition(&k.column_ref, self.follow.in_query) {
                tracing::debug!(table = %t.name, key = %k.key, bytes, sql = c.len(), "kept keys go into the query");
                conditions.push(c);
            } else if t.binary {
                tracing::debug!(table = %t.name, key = %k.key, bytes, "host tests the kept keys");
                tested.push(k.clone());
                sets.push(set);
            } else {
                return Ok(fall_back(format!(
                    "need more than {} bytes of SQL, and host cannot test text rows",
                    self.follow.in_query
                )));
            }
        }
        let condition = (!conditions.is_empty()).then(|| conditions.join(" AND "));
        Ok(copy::Reading::Followed {
            select: t.select_with(host.with.as_deref(), condition.as_deref()),
            test: (!tested.is_empty()).then(|| Box::new(follow::RowTest::new(&tested, sets))),
            joins: host.joins,
        })
    }

    /// A source connection inside the job's snapshot.
    async fn source(&self) -> Result<Conn, XmatError> {
        let src = Conn {
            client: self.source.connect().await.map_err(|source| {
                self.fail(Failure::Connect {
                    side: Side::Source,
                    source,
                })
            })?,
            label: format!("source {}", self.id),
        };
        src.exec(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}; \
             SET LOCAL search_path = {}",
            literal(&self.snapshot),
            self.search_path
        ))
        .await
        .map_err(self.on(Side::Source))?;
        if self.plan.subset != Subset::Off {
            src.exec(FOLLOW_SETTINGS)
                .await
                .map_err(self.on(Side::Source))?;
        }
        Ok(src)
    }

    /// The table's line in the audit log: what its plugins did, however it ended.
    fn audit(
        &self,
        audit: &crate::audit::Audit,
        t: &super::plan::TablePlan,
        plugins: &[crate::plugin::Plugin],
        counters: &Counters,
        copied: &Result<TableStats, copy::CopyError>,
    ) -> Result<(), crate::audit::AuditError> {
        use crate::audit::{Entry, Limit, Outcome, PluginRef, Unit};
        let refs: Vec<PluginRef> = plugins.iter().map(PluginRef::of).collect();
        let unit = Unit::Table {
            job: &self.plan.job,
            table: &t.name,
        };
        // A plugin's own failure types the line itself (`with`).
        let failure = match copied {
            Err(copy::CopyError::Plugin { source, .. }) => Some(source.as_ref()),
            _ => None,
        };
        let mut entry = Entry::new("xmat", self.plan.tenant.as_deref(), &refs, unit).with(
            counters.usage(),
            counters.plugin_cpu(),
            failure,
        );
        entry.records_in = counters.rows.load(Ordering::Relaxed);
        match copied {
            Ok(stats) => {
                entry.records_out = stats.rows_written;
                entry.dropped = stats.dropped;
            }
            Err(copy::CopyError::Plugin { .. }) => {}
            // A rejection, the tenant's CPU, another table's failure, a database error.
            Err(e) => {
                entry.outcome = Outcome::Failed;
                entry.error = Some(crate::terminal::redact(&e.to_string()).into_owned());
                match e {
                    copy::CopyError::Rejected { count, .. } => entry.rejected = *count as u64,
                    copy::CopyError::Cpu(_) => {
                        entry.outcome = Outcome::Limit;
                        entry.limit = Some(Limit::Cpu);
                    }
                    _ => {}
                }
            }
        }
        audit.write(&entry)
    }

    /// Loads one table and builds its keys and indexes, in one target transaction.
    async fn table(&self, src: &Conn, dst: &Conn, i: usize) -> Result<TableStats, XmatError> {
        let t = &self.plan.tables[i];
        let fail = |source: TableError| {
            self.fail(Failure::Table {
                table: t.name.clone(),
                source,
            })
        };
        let counters = Arc::new(Counters::default());
        self.observer.table_started(&t.name, counters.clone());
        let plugins = self.plugins.table(i);
        let setup = &self.setup;
        // A table's plugin threads take that many of the tenant's instances,
        // waiting for them if its other tables hold them.
        let (_instances, threads) = if plugins.is_empty() {
            (None, 0)
        } else {
            let wanted = match self.plugin_threads {
                0 => copy::default_plugin_threads(),
                n => n,
            };
            let (permit, n) = setup.share.instances(wanted).await;
            (Some(permit), n)
        };
        // FREEZE needs the table created or truncated in this transaction.
        let begin = if t.freeze {
            format!("BEGIN; TRUNCATE {}", t.target)
        } else {
            "BEGIN".to_string()
        };
        let reading = self
            .reading(src, t)
            .await
            .map_err(|e| fail(TableError::Follow(e)))?;
        if self.plan.subset != Subset::Off {
            src.exec(follow::parallel_pricing(reading.joins(t)))
                .await
                .map_err(|e| fail(TableError::Statement(e)))?;
        }
        dst.exec(&begin)
            .await
            .map_err(|e| fail(TableError::Statement(e)))?;
        let copied = copy::copy_table(
            src,
            dst,
            t,
            reading,
            copy::TablePlugins {
                plugins,
                threads,
                table: source_table(&self.plan, t),
                share: setup.share.clone(),
            },
            counters.clone(),
            self.shared.cancel.clone(),
        )
        .await;
        if let Some(audit) = &setup.audit {
            self.audit(audit, t, plugins, &counters, &copied)
                .map_err(|e| fail(TableError::Audit(e)))?;
        }
        let mut stats = copied.map_err(|e| fail(TableError::Copy(e)))?;
        for sql in &t.post_data {
            dst.exec(sql)
                .await
                .map_err(|e| fail(TableError::Statement(e)))?;
        }
        dst.exec("COMMIT")
            .await
            .map_err(|e| fail(TableError::Statement(e)))?;
        stats.seconds = stats.seconds.max(0.0);
        self.observer.table_finished(&t.name, &stats);
        Ok(stats)
    }
}
