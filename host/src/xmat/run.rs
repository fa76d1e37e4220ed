//! Running one job: prepare (snapshot, catalog, plan, checked SELECTs), then
//! execute (build, copy in parallel, keys, swap). See the module docs of
//! [`crate::xmat`] for the order of things.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::Notify;

use super::copy::{self, CopyError, Counters, TableStats};
use super::jobs::Job;
use super::plan::{self, Plan};
use super::same::{self, Sameness};
use super::schedule::{Next, Schedule};
use super::sql::{Conn, ident, literal};
use super::{XmatError, catalog, foreign_keys, swap};
use crate::db::Dsn;
use crate::plugin::chain::RowChain;
use crate::plugin::{Plugin, Table};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tables copied at the same time (each uses a source and a target connection).
    pub jobs: usize,
    /// Use binary COPY where it is safe (no plugins, built-in types or enums).
    pub binary: bool,
    /// Plugin threads per table (0: one per two cores, at most 4).
    pub plugin_threads: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            jobs: 4,
            binary: true,
            plugin_threads: 0,
        }
    }
}

/// Index builds sort in `maintenance_work_mem`, and adding a foreign key
/// checks existing rows with a hash join that gets the same budget; 64 MB
/// (the default) spills for a few million rows. Raised for our own target
/// sessions only, and never lowered.
pub(super) const MAINTENANCE_MEMORY: &str = "SELECT set_config('maintenance_work_mem', '256MB', false) \
     WHERE pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes('256MB')";

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

/// A planned job with its source snapshot open.
pub struct Prepared {
    pub plan: Plan,
    /// Source and target as they may be shown (no password).
    pub source_shown: String,
    pub target_shown: String,
    source: Dsn,
    target: Dsn,
    control: Conn,
    snapshot: String,
    /// `search_path` for the SELECTs: the source schema, then the server's default.
    search_path: String,
}

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

fn parse_dsn(
    job: &Job,
    which: &str,
    ep: &super::jobs::Endpoint,
) -> Result<(Dsn, String), XmatError> {
    let text = ep
        .database
        .resolve()
        .map_err(|e| XmatError::job(&job.name, format!("{which}: {e}")))?;
    let dsn = Dsn::parse(&text).map_err(|e| XmatError::job(&job.name, format!("{which}: {e}")))?;
    let shown = match ep.database.env_name() {
        Some(name) => format!("{dsn} (from ${name})"),
        None => dsn.to_string(),
    };
    Ok((dsn, shown))
}

/// A job whose target schema is its source schema, in the same database,
/// would swap a filtered copy over its own source: refused before anything
/// is written (and so in `--dry-run` too).
async fn refuse_self_replacement(job: &Job, source: &Dsn, target: &Dsn) -> Result<(), XmatError> {
    let how = match same::compare(source, target)
        .await
        .map_err(|e| XmatError::job(&job.name, e))?
    {
        Sameness::Different => return Ok(()),
        Sameness::SameDatabase => format!(
            "both reach database {} on one server (the target's server sees the source's session)",
            source.dbname()
        ),
        Sameness::StandbyOfTarget(id) => format!(
            "the source is a standby of the target's cluster (system identifier {id}), so the \
             target's changes replace its data too"
        ),
    };
    Err(XmatError::job(
        &job.name,
        format!(
            "source and target are the same schema {}: {how}; it would replace itself \
             (nothing was written)",
            crate::terminal::Shown(&job.source.schema)
        ),
    ))
}

/// Connects to the source, exports a snapshot, reads the catalog, plans, and
/// has the server check every SELECT (a bad `select` expression fails here,
/// before the target is touched).
pub async fn prepare(job: &Job, opts: &Options) -> Result<Prepared, XmatError> {
    let name = job.name.as_str();
    let (source, source_shown) = parse_dsn(job, "source", &job.source)?;
    let (target, target_shown) = parse_dsn(job, "target", &job.target)?;
    if job.source.schema == job.target.schema {
        refuse_self_replacement(job, &source, &target).await?;
    }
    let control = Conn {
        client: source
            .connect()
            .await
            .map_err(|e| XmatError::job(name, e))?,
        label: "source".into(),
    };
    let fail = |e: super::sql::StatementError| XmatError::job(name, e);
    control
        .exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(fail)?;
    let row = control
        .query_one(
            "SELECT pg_export_snapshot(), current_setting('search_path')",
            &[],
        )
        .await
        .map_err(fail)?;
    let (snapshot, default_path): (String, String) = (row.get(0), row.get(1));
    let cat = catalog::read(&control, &job.source.schema)
        .await
        .map_err(fail)?
        .ok_or_else(|| {
            XmatError::job(
                name,
                format!(
                    "source schema {} does not exist in {source}",
                    job.source.schema
                ),
            )
        })?;
    let mut plan = plan::build(job, &cat, &swap::build_name(&job.target.schema))
        .map_err(|e| XmatError::job(name, e))?;

    let search_path = format!("{}, {default_path}", ident(&job.source.schema));
    control
        .exec(&format!("SET LOCAL search_path = {search_path}"))
        .await
        .map_err(fail)?;
    for t in &mut plan.tables {
        let stmt = control.client.prepare(&t.select).await.map_err(|e| {
            XmatError::table(
                name,
                &t.name,
                super::sql::StatementError::new(&t.select, &e),
            )
        })?;
        // Binary COPY hands the target the source's bytes: only when each
        // column arrives with exactly the target column's type.
        let same_types = stmt
            .columns()
            .iter()
            .zip(&t.column_type_oids)
            .all(|(c, &oid)| c.type_().oid() == oid);
        t.binary = opts.binary && t.plugins.is_empty() && t.binary_safe && same_types;
    }
    Ok(Prepared {
        plan,
        source_shown,
        target_shown,
        source,
        target,
        control,
        snapshot,
        search_path,
    })
}

/// Checks that each table's plugins take rows and accept the table (an
/// unknown column in a plugin's parameters fails here, before any copying).
pub fn check_plugins(plan: &Plan, plugins: &[Vec<Plugin>]) -> Result<(), XmatError> {
    for (t, ps) in plan.tables.iter().zip(plugins) {
        if ps.is_empty() {
            continue;
        }
        let fail = |plugin: &str, e: &dyn std::fmt::Display| XmatError::Plugin {
            job: plan.job.clone(),
            table: t.name.clone(),
            plugin: plugin.to_string(),
            message: e.to_string(),
        };
        let mut chain = RowChain::new(ps).map_err(|e| fail(ps[0].name(), &e))?;
        chain
            .begin_table(&source_table(plan, t))
            .map_err(|e| fail(ps[0].name(), &e))?;
    }
    Ok(())
}

fn source_table(plan: &Plan, t: &plan::TablePlan) -> Table {
    Table {
        schema: plan.source_schema.clone(),
        name: t.name.clone(),
        columns: t.columns.clone(),
    }
}

/// Builds the new target, copies every table and swaps it in; on any
/// failure the new schema is dropped and the old target stays as it was.
/// `plugins[i]` are table `i`'s plugins, loaded.
pub async fn execute(
    prep: Prepared,
    plugins: Vec<Vec<Plugin>>,
    opts: &Options,
    observer: Arc<dyn Observer>,
) -> Result<JobReport, XmatError> {
    let started = Instant::now();
    let Prepared {
        plan,
        source_shown,
        target_shown,
        source,
        target,
        control: snapshot_holder,
        snapshot,
        search_path,
    } = prep;
    let job = plan.job.clone();
    let plan = Arc::new(plan);
    let conns = Endpoints {
        source,
        target,
        snapshot,
        search_path,
    };
    let fail = |e: &dyn std::fmt::Display| XmatError::job(&job, e);
    let control = Conn {
        client: conns.target.connect().await.map_err(|e| fail(&e))?,
        label: "target".into(),
    };
    swap::prepare(&control, &plan.target_schema, &plan.build_schema)
        .await
        .map_err(|e| fail(&e))?;
    control
        .exec(MAINTENANCE_MEMORY)
        .await
        .map_err(|e| fail(&e))?;

    let result = async {
        control.exec("BEGIN").await.map_err(|e| fail(&e))?;
        for sql in &plan.pre_data {
            if let Err(e) = control.exec(sql).await {
                let _ = control.exec("ROLLBACK").await;
                return Err(fail(&e));
            }
        }
        control.exec("COMMIT").await.map_err(|e| fail(&e))?;

        let tables = load_all(
            &conns,
            &plan,
            plugins,
            opts,
            observer.clone(),
            snapshot_holder,
        )
        .await?;
        for s in &plan.sequences {
            control.exec(&s.sql()).await.map_err(|e| fail(&e))?;
        }
        observer.step("swap");
        swap::swap(&control, &plan.target_schema, &plan.build_schema)
            .await
            .map_err(|e| fail(&e))?;
        Ok(tables)
    }
    .await;

    let tables = match result {
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
        warnings: plan.warnings.clone(),
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

/// Runs the workers over the [`Schedule`]: every table, and each foreign key
/// once its tables are loaded. The first failure stops the others.
/// `snapshot_holder`'s transaction, which exported the snapshot, ends once
/// every table is loaded: no worker imports it after that.
async fn load_all(
    prep: &Endpoints,
    plan: &Arc<Plan>,
    plugins: Vec<Vec<Plugin>>,
    opts: &Options,
    observer: Arc<dyn Observer>,
    snapshot_holder: Conn,
) -> Result<Vec<(usize, TableStats)>, XmatError> {
    let sizes = plan
        .tables
        .iter()
        .map(|t| u64::try_from(t.bytes).unwrap_or(0))
        .enumerate();
    let shared = Arc::new(Shared {
        schedule: Mutex::new(Schedule::new(sizes, &plan.foreign_keys)),
        changed: Notify::new(),
        cancel: Arc::new(AtomicBool::new(false)),
    });
    let plugins = Arc::new(plugins);
    let mut set = tokio::task::JoinSet::new();
    // A key locks two tables, or one: more workers than tables never run.
    for id in 1..=opts.jobs.clamp(1, plan.tables.len().max(1)) {
        let w = Worker {
            id,
            plugin_threads: opts.plugin_threads,
            plan: plan.clone(),
            plugins: plugins.clone(),
            shared: shared.clone(),
            observer: observer.clone(),
            source: prep.source.clone(),
            target: prep.target.clone(),
            snapshot: prep.snapshot.clone(),
            search_path: prep.search_path.clone(),
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
                        .is_none_or(|f| is_cancel(f) && !is_cancel(&e))
                    {
                        first_error = Some(e);
                    }
                }
                Err(e) => {
                    shared.stop();
                    first_error.get_or_insert_with(|| {
                        XmatError::job(&plan.job, format!("a worker stopped: {e}"))
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
    result
}

fn is_cancel(e: &XmatError) -> bool {
    matches!(e, XmatError::Table { message, .. } if message.ends_with("another table failed"))
}

/// One pair of connections taking work off the shared schedule.
struct Worker {
    id: usize,
    plugin_threads: usize,
    plan: Arc<Plan>,
    plugins: Arc<Vec<Vec<Plugin>>>,
    shared: Arc<Shared>,
    observer: Arc<dyn Observer>,
    source: Dsn,
    target: Dsn,
    snapshot: String,
    search_path: String,
}

impl Worker {
    async fn run(&self) -> Result<Vec<(usize, TableStats)>, XmatError> {
        let job = &self.plan.job;
        let fail = |e: &dyn std::fmt::Display| XmatError::job(job, e);
        let dst = Conn {
            client: self.target.connect().await.map_err(|e| fail(&e))?,
            label: format!("target {}", self.id),
        };
        dst.exec(&format!(
            "SET search_path = {}; SET client_min_messages = warning; {}",
            ident(&self.plan.build_schema),
            MAINTENANCE_MEMORY
        ))
        .await
        .map_err(|e| fail(&e))?;

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
                    src.exec("COMMIT").await.map_err(|e| fail(&e))?;
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
                    foreign_keys::add(&dst, &key, referencing, referenced)
                        .await
                        .map_err(|e| XmatError::table(job, table, e))?;
                    self.shared.update(|s| s.key_added(&key));
                }
                Next::Wait => changed.await,
                Next::Done => break,
            }
        }
        Ok(done)
    }

    /// A source connection inside the job's snapshot.
    async fn source(&self) -> Result<Conn, XmatError> {
        let fail = |e: &dyn std::fmt::Display| XmatError::job(&self.plan.job, e);
        let src = Conn {
            client: self.source.connect().await.map_err(|e| fail(&e))?,
            label: format!("source {}", self.id),
        };
        src.exec(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}; \
             SET LOCAL search_path = {}",
            literal(&self.snapshot),
            self.search_path
        ))
        .await
        .map_err(|e| fail(&e))?;
        Ok(src)
    }

    /// Loads one table and builds its keys and indexes, in one target transaction.
    async fn table(&self, src: &Conn, dst: &Conn, i: usize) -> Result<TableStats, XmatError> {
        let t = &self.plan.tables[i];
        let job = &self.plan.job;
        let fail = |e: &dyn std::fmt::Display| XmatError::table(job, &t.name, e);
        let counters = Arc::new(Counters::default());
        self.observer.table_started(&t.name, counters.clone());
        // FREEZE needs the table created or truncated in this transaction.
        let begin = if t.freeze {
            format!("BEGIN; TRUNCATE {}", t.target)
        } else {
            "BEGIN".to_string()
        };
        dst.exec(&begin).await.map_err(|e| fail(&e))?;
        let copied = copy::copy_table(
            src,
            dst,
            t,
            &self.plugins[i],
            self.plugin_threads,
            source_table(&self.plan, t),
            counters,
            self.shared.cancel.clone(),
        )
        .await;
        let mut stats = match copied {
            Ok(s) => s,
            Err(e) => return Err(copy_error(job, &t.name, e)),
        };
        for sql in &t.post_data {
            dst.exec(sql).await.map_err(|e| fail(&e))?;
        }
        dst.exec("COMMIT").await.map_err(|e| fail(&e))?;
        stats.seconds = stats.seconds.max(0.0);
        self.observer.table_finished(&t.name, &stats);
        Ok(stats)
    }
}

fn copy_error(job: &str, table: &str, e: CopyError) -> XmatError {
    match e.plugin() {
        Some(p) => XmatError::Plugin {
            job: job.to_string(),
            table: table.to_string(),
            plugin: p.to_string(),
            message: match &e {
                CopyError::Plugin { message, .. } => message.clone(),
                other => other.to_string(),
            },
        },
        None => XmatError::table(job, table, e),
    }
}
