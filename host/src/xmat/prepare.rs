//! Everything before the target is touched: the source snapshot, the
//! catalog, the plan, each SELECT checked by the server, the plugins loaded
//! and shown each table. A [`Prepared`] job is what `--dry-run` prints and
//! what [`Prepared::execute`] runs.

use std::path::PathBuf;
use std::sync::Arc;

use super::error::{Failure, Side, TableError, XmatError};
use super::jobs::{Endpoint, Job};
use super::plan::{self, Plan, TablePlan};
use super::same::{self, Sameness};
use super::sql::{Conn, StatementError, ident, literal};
use super::unique::{self, UniqueRisks};
use super::{catalog, follow, swap};
use crate::db::Dsn;
use crate::plugin::chain::RowChain;
use crate::plugin::{Limits, Plugin, Runtime, Table};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tables copied at the same time (each uses a source and a target connection).
    pub jobs: usize,
    /// Use binary COPY where it is safe (no plugins, built-in types or enums).
    pub binary: bool,
    /// Plugin threads per table (0: one per two cores, at most 4).
    pub plugin_threads: usize,
    /// The sandbox and compile cache for the job's plugins.
    pub plugins: PluginSetup,
    /// Which view of the source the copy reads.
    pub snapshot: Snapshot,
    /// Accept every transform on a unique key, as `allow_uniqueness_loss =
    /// true` on every table would.
    pub allow_uniqueness_loss: bool,
    /// With `subset = "follow"`: how much of a parent's kept keys host holds
    /// and puts into a child's query to follow its integer keys
    /// ([`super::follow`]); a parent with more is followed by a semi join.
    pub follow: follow::Limits,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            jobs: 4,
            binary: true,
            plugin_threads: 0,
            plugins: PluginSetup::default(),
            snapshot: Snapshot::Export,
            allow_uniqueness_loss: false,
            follow: follow::Limits::default(),
        }
    }
}

/// Limits and compile cache for plugins (the runtime is built only for jobs
/// that have plugins), and what the job shares with its tenant's other jobs.
#[derive(Debug, Clone, Default)]
pub struct PluginSetup {
    pub limits: Limits,
    /// `None`: compile every time.
    pub cache_dir: Option<PathBuf>,
    /// How much and how long fetching a plugin may take.
    pub fetch: crate::fetch::Bounds,
    /// The tenant's instances and CPU time (unlimited without a policy).
    pub share: super::share::Share,
    /// Where a line per table goes (`--audit`), if anywhere.
    pub audit: Option<Arc<crate::audit::Audit>>,
}

/// The source snapshot every table is read in, so the copy is consistent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Snapshot {
    /// Open a `REPEATABLE READ` transaction on the source and export its snapshot.
    #[default]
    Export,
    /// Import a snapshot exported elsewhere (`pg_export_snapshot()`, or a
    /// logical replication slot created with `EXPORT_SNAPSHOT`, whose changes
    /// then continue exactly where the copy ends). Whoever exported it keeps
    /// that transaction or replication connection open, and idle, until
    /// [`Prepared::execute`] returns.
    Import(String),
}

/// Each table's plugins, loaded, in the runtime they run in. Cheap to clone;
/// a clone keeps the runtime (and its clock for CPU deadlines) alive.
#[derive(Clone)]
pub struct Plugins {
    runtime: Option<Arc<Runtime>>,
    per_table: Vec<Vec<Plugin>>,
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<Vec<&str>> = self
            .per_table
            .iter()
            .map(|ps| ps.iter().map(Plugin::name).collect())
            .collect();
        f.debug_struct("Plugins")
            .field("per_table", &names)
            .finish()
    }
}

impl Plugins {
    /// Table `i`'s plugins (`i` as in [`Plan::tables`]), in order.
    pub fn table(&self, i: usize) -> &[Plugin] {
        self.per_table.get(i).map_or(&[], Vec::as_slice)
    }

    /// Every table's plugins, in plan order.
    pub fn per_table(&self) -> &[Vec<Plugin>] {
        &self.per_table
    }

    /// The runtime, when any table has plugins.
    pub fn runtime(&self) -> Option<&Arc<Runtime>> {
        self.runtime.as_ref()
    }
}

/// A planned job with its source snapshot open: nothing written yet.
pub struct Prepared {
    pub(super) plan: Plan,
    pub(super) plugins: Plugins,
    pub(super) unique_risks: UniqueRisks,
    pub(super) source_shown: String,
    pub(super) target_shown: String,
    pub(super) source: Dsn,
    pub(super) target: Dsn,
    /// The transaction the snapshot lives in (exported or imported).
    pub(super) control: Conn,
    pub(super) snapshot: String,
    /// `search_path` for the SELECTs: the source schema, then the server's default.
    pub(super) search_path: String,
    pub(super) opts: Options,
}

impl Prepared {
    /// What will be done, in order.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The loaded plugins, per table.
    pub fn plugins(&self) -> &Plugins {
        &self.plugins
    }

    /// Every transformed column of a unique key, accepted or not.
    pub fn unique_risks(&self) -> &UniqueRisks {
        &self.unique_risks
    }

    /// Whether the job may run as planned: refuses transforms on unique keys
    /// that the job did not accept ([`Prepared::execute`] checks this too).
    pub fn check(&self) -> Result<(), XmatError> {
        match self.unique_risks.refuses() {
            true => Err(XmatError::new(
                &self.plan.job,
                Failure::Unique(self.unique_risks.clone()),
            )),
            false => Ok(()),
        }
    }

    /// The source, as it may be shown (no password).
    pub fn source_shown(&self) -> &str {
        &self.source_shown
    }

    /// The target, as it may be shown (no password).
    pub fn target_shown(&self) -> &str {
        &self.target_shown
    }

    /// The snapshot every table is read in.
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }
}

fn endpoint(job: &Job, side: Side, ep: &Endpoint) -> Result<(Dsn, String), XmatError> {
    let fail = |f: Failure| XmatError::new(&job.name, f);
    let text = ep
        .database
        .resolve()
        .map_err(|source| fail(Failure::Unset { side, source }))?;
    let dsn = Dsn::parse(&text).map_err(|source| fail(Failure::Connect { side, source }))?;
    let shown = match ep.database.env_name() {
        Some(name) => format!("{dsn} (from ${name})"),
        None => dsn.to_string(),
    };
    Ok((dsn, shown))
}

/// Connects to the source, takes the snapshot, reads the catalog, plans,
/// has the server check every SELECT (a bad `select` expression fails here,
/// before the target is touched), loads the plugins and shows each its table.
pub async fn prepare(job: &Job, opts: &Options) -> Result<Prepared, XmatError> {
    let name = job.name.as_str();
    let fail = |f: Failure| XmatError::new(name, f);
    let on_source = |source: StatementError| {
        fail(Failure::Statement {
            side: Side::Source,
            source,
        })
    };
    let (source, source_shown) = endpoint(job, Side::Source, &job.source)?;
    let (target, target_shown) = endpoint(job, Side::Target, &job.target)?;
    // "The same database" is what the servers say, not how the job names them
    // (`localhost` and `127.0.0.1`, a socket, a forwarded port): see `same`.
    if job.source.schema == job.target.schema {
        let how = same::compare(&source, &target).await.map_err(fail)?;
        if how != Sameness::Different {
            return Err(fail(Failure::SameSchema {
                database: source.dbname().to_string(),
                schema: job.source.schema.clone(),
                how,
            }));
        }
    }
    let control = Conn {
        client: source.connect().await.map_err(|source| {
            fail(Failure::Connect {
                side: Side::Source,
                source,
            })
        })?,
        label: "source".into(),
    };
    let snapshot = match &opts.snapshot {
        Snapshot::Export => {
            control
                .exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await
                .map_err(on_source)?;
            let row = control
                .query_one("SELECT pg_export_snapshot()", &[])
                .await
                .map_err(on_source)?;
            row.get::<_, String>(0)
        }
        Snapshot::Import(id) => {
            control
                .exec(&format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
                    literal(id)
                ))
                .await
                .map_err(on_source)?;
            id.clone()
        }
    };
    let default_path: String = control
        .query_one("SELECT current_setting('search_path')", &[])
        .await
        .map_err(on_source)?
        .get(0);
    let cat = catalog::read(&control, &job.source.schema)
        .await
        .map_err(on_source)?
        .ok_or_else(|| {
            fail(Failure::NoSourceSchema {
                schema: job.source.schema.clone(),
                database: source.to_string(),
            })
        })?;
    let mut plan = plan::build(job, &cat, &swap::build_name(&job.target.schema))
        .map_err(|e| fail(e.into()))?;

    let search_path = format!("{}, {default_path}", ident(&job.source.schema));
    control
        .exec(&format!("SET LOCAL search_path = {search_path}"))
        .await
        .map_err(on_source)?;
    for t in &mut plan.tables {
        let stmt = control.client.prepare(&t.select).await.map_err(|e| {
            fail(Failure::Table {
                table: t.name.clone(),
                source: TableError::Select(StatementError::new(&t.select, &e)),
            })
        })?;
        // Binary COPY hands the target the source's bytes: only when each
        // column arrives with exactly the target column's type.
        let same_types = stmt
            .columns()
            .iter()
            .zip(&t.column_type_oids)
            .all(|(c, &oid)| c.type_().oid() == oid);
        t.binary = opts.binary && t.plugins.is_empty() && t.binary_safe && same_types;
        // Host cuts only binary rows into fields; text ones can only have
        // their keys in the query.
        if opts.follow.memory == 0 || (!t.binary && opts.follow.in_query == 0) {
            t.host_follow = None;
        }
    }
    let plugins = load_plugins(&plan, &opts.plugins).await?;
    check_plugins(&plan, &plugins).await?;
    let unique_risks = unique::check(&plan, plugins.per_table(), opts.allow_uniqueness_loss);
    Ok(Prepared {
        plan,
        plugins,
        unique_risks,
        source_shown,
        target_shown,
        source,
        target,
        control,
        snapshot,
        search_path,
        opts: opts.clone(),
    })
}

/// Loads every table's plugins in one runtime, built only if there are any.
async fn load_plugins(plan: &Plan, setup: &PluginSetup) -> Result<Plugins, XmatError> {
    let fail = |f: Failure| XmatError::new(&plan.job, f);
    if plan.tables.iter().all(|t| t.plugins.is_empty()) {
        return Ok(Plugins {
            runtime: None,
            per_table: plan.tables.iter().map(|_| Vec::new()).collect(),
        });
    }
    let first = plan
        .tables
        .iter()
        .find(|t| !t.plugins.is_empty())
        .map_or_else(String::new, |t| t.name.clone());
    let runtime =
        Runtime::new(setup.limits.clone(), setup.cache_dir.as_deref()).map_err(|source| {
            fail(Failure::Plugin {
                table: first,
                source,
            })
        })?;
    let mut per_table = Vec::with_capacity(plan.tables.len());
    for t in &plan.tables {
        let mut loaded = Vec::with_capacity(t.plugins.len());
        for p in &t.plugins {
            let spec = p.spec().map_err(|source| {
                fail(Failure::PluginEntry {
                    table: t.name.clone(),
                    plugin: p.location.clone(),
                    source,
                })
            })?;
            let plugin = runtime
                .fetch_and_load(&spec, &setup.fetch)
                .await
                .map_err(|source| {
                    fail(Failure::Plugin {
                        table: t.name.clone(),
                        source,
                    })
                })?;
            loaded.push(plugin);
        }
        per_table.push(loaded);
    }
    Ok(Plugins {
        runtime: Some(Arc::new(runtime)),
        per_table,
    })
}

/// Checks that each table's plugins take rows and accept the table (an
/// unknown column in a plugin's parameters fails here, before any copying).
/// Plugin calls are synchronous: they run off the async workers.
async fn check_plugins(plan: &Plan, plugins: &Plugins) -> Result<(), XmatError> {
    let work: Vec<(String, Table, Vec<Plugin>)> = plan
        .tables
        .iter()
        .enumerate()
        .filter(|(i, _)| !plugins.table(*i).is_empty())
        .map(|(i, t)| {
            (
                t.name.clone(),
                source_table(plan, t),
                plugins.table(i).to_vec(),
            )
        })
        .collect();
    let job = plan.job.clone();
    let checked = tokio::task::spawn_blocking(move || {
        for (name, table, ps) in work {
            let result = RowChain::new(&ps).and_then(|mut chain| chain.begin_table(&table));
            if let Err(source) = result {
                return Err(XmatError::new(
                    &job,
                    Failure::Plugin {
                        table: name,
                        source,
                    },
                ));
            }
        }
        Ok(())
    })
    .await;
    match checked {
        Ok(r) => r,
        Err(e) => Err(XmatError::new(&plan.job, Failure::Worker(e.to_string()))),
    }
}

/// The table as plugins see it: the source's name, the copied columns.
pub(super) fn source_table(plan: &Plan, t: &TablePlan) -> Table {
    Table {
        schema: plan.source_schema.clone(),
        name: t.name.clone(),
        columns: t.columns.clone(),
    }
}
