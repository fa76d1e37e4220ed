//! `setup`, and what `clone` shares with it: the job and both databases
//! resolved, the source checked, the plugins loaded, instantiated and
//! fingerprinted before anything is created; then the slot, the origin and
//! the directory. Also the plugins of a later run, refused if they changed.

use std::sync::Arc;

use anyhow::{anyhow, bail};
use clap::ArgMatches;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::dsn_text;
use super::tenants::Tenants;
use crate::cli::{PluginOpts, SetupArgs};
use crate::commands::{Status, load_plugins_within};
use crate::db::Dsn;
use crate::plugin::{Plugin, PluginSpec, Runtime};
use crate::stream::StreamDir;
use crate::stream::apply;
use crate::stream::apply::tenancy::Tenancy;
use crate::stream::dir::{JobRef, PluginDigest, StreamConfig};
use crate::stream::setup::{self, CreatedSlot, SetupOptions};
use crate::stream::tables::StreamTable;
use crate::xmat::Failure;
use crate::xmat::jobs::{Endpoint, Job, JobFile, Setting, TableEntry};
use crate::xmat::same::{self, Sameness};
use crate::xmat::unique;

/// What `setup` and `clone` decide before anything is created: the job,
/// both databases, the checked source, the plugins' identities.
pub(super) struct Planned {
    pub(super) job: Job,
    pub(super) job_ref: JobRef,
    /// The DSNs as given (for the xmat copy, which resolves its own).
    pub(super) source_text: String,
    pub(super) target_text: String,
    pub(super) source: Dsn,
    pub(super) target: Dsn,
    pub(super) dir: StreamDir,
    pub(super) checked: setup::Checked,
    pub(super) digests: Vec<PluginDigest>,
    pub(super) opts: SetupOptions,
}

pub(super) async fn plan_setup(a: &SetupArgs, tenants: &Tenants) -> anyhow::Result<Planned> {
    let (job, job_ref) = match (&a.file, &a.job) {
        (Some(file), Some(name)) => {
            let jobs = JobFile::load(file)?;
            let found: Vec<&Job> = jobs.matching(name);
            let job = match found.as_slice() {
                [one] => (*one).clone(),
                [] => bail!("no job in {} is named '{name}'", file.display()),
                many => bail!(
                    "'{name}' matches {} jobs in {}; a stream follows exactly one",
                    many.len(),
                    file.display()
                ),
            };
            let path = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
            let name = job.name.clone();
            (job, JobRef::File { path, name })
        }
        _ => {
            let target_schema = a.target_schema.clone().unwrap_or_else(|| a.schema.clone());
            let job = Job {
                name: format!("schema {}", a.schema),
                source: Endpoint {
                    database: Setting::new(""),
                    schema: a.schema.clone(),
                },
                target: Endpoint {
                    database: Setting::new(""),
                    schema: target_schema,
                },
                tables: vec![TableEntry {
                    name: "*".into(),
                    ..TableEntry::default()
                }],
                wildcard: Default::default(),
                subset: Default::default(),
                dangling_keys: Default::default(),
                notes: Vec::new(),
                tenant: None,
                scope: Default::default(),
            };
            (job, JobRef::Schema)
        }
    };
    // As its tenant, under a policy: its tables and rows, its pinned plugins
    // (refused here, before anything is read, compiled or created).
    let bound = tenants.binding().bind(&job).map_err(|e| {
        let tenant = job.tenant.as_deref().or(a.tenant.tenant.as_deref());
        tenants.refused(tenant, e.into())
    })?;
    let from_file = matches!(job_ref, JobRef::File { .. });
    let source_text = dsn_text(
        &a.source.source,
        "source",
        from_file.then_some(&job.source.database),
    )?;
    let target_text = dsn_text(
        &a.target.target,
        "target",
        from_file.then_some(&job.target.database),
    )?;
    let (source, target) = (Dsn::parse(&source_text)?, Dsn::parse(&target_text)?);
    // Streaming a schema into itself would apply every change on top of
    // itself; xmat's rule (what the servers say, not the names) decides.
    if job.source.schema == job.target.schema {
        let how = same::compare(&source, &target).await?;
        if how != Sameness::Different {
            return Err(Failure::SameSchema {
                database: source.dbname().to_string(),
                schema: job.source.schema.clone(),
                how,
            }
            .into());
        }
    }
    let dir = StreamDir::new(&a.dir.dir);
    let checked = setup::check_source(&source, &bound, &job).await?;
    // Load the plugins now: a bad plugin or parameter fails before anything is created.
    let loaded = load_table_plugins(
        &a.opts,
        tenants,
        &bound.name,
        bound.tenant.as_deref(),
        &checked.tables,
    )
    .await?;
    let plugins = &loaded.plugins;
    check_plugins(&checked.tables, &job.source.schema, plugins).await?;
    // As `host xmat` does: a transform that may give two rows of a unique
    // key one value fails the key on the target (at the copy, or at the
    // change that meets an existing value), so it is refused up front.
    let risks = unique::check(&checked.plan, plugins, a.allow_uniqueness_loss);
    if risks.refuses() {
        return Err(Failure::Unique(risks).into());
    }
    let digests = loaded.digests.clone();
    for w in &checked.warnings {
        tracing::warn!("{w}");
    }
    let opts = SetupOptions {
        slot: a.slot_name.clone(),
        origin: a.origin.clone().unwrap_or_else(|| a.slot_name.clone()),
        ddl_trigger: !a.no_ddl_trigger,
    };
    Ok(Planned {
        job: bound,
        job_ref,
        source_text,
        target_text,
        source,
        target,
        dir,
        checked,
        digests,
        opts,
    })
}

/// Creates what `p` planned: the slot (exporting its snapshot with
/// `export`), the origin, the directory.
pub(super) async fn create(
    p: &Planned,
    export: bool,
) -> anyhow::Result<(StreamConfig, CreatedSlot, Value)> {
    let warnings = p.checked.warnings.clone();
    let (cfg, slot) = setup::setup(
        &p.dir,
        &p.job,
        p.job_ref.clone(),
        &p.source,
        &p.target,
        &p.opts,
        p.digests.clone(),
        p.checked.clone(),
        export,
    )
    .await?;
    let summary = json!({
        "dir": p.dir.root().display().to_string(),
        "slot": cfg.slot, "origin": cfg.origin, "start_lsn": cfg.start_lsn,
        "source": cfg.source.shown, "target": cfg.target,
        "source_schema": cfg.source_schema, "target_schema": cfg.target_schema,
        "tables": cfg.tables.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "ddl_trigger": cfg.ddl_trigger.is_some(),
        "numeric_as_string": cfg.numeric_as_string,
        "warnings": warnings,
    });
    tracing::info!(
        "stream set up in {}: slot {} on {} from {}, origin {} on {}; {} table(s): {}",
        p.dir.root().display(),
        cfg.slot,
        cfg.source.shown,
        cfg.start_lsn,
        cfg.origin,
        cfg.target,
        cfg.tables.len(),
        cfg.tables
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((cfg, slot, summary))
}

pub(super) async fn setup(a: SetupArgs, matches: &ArgMatches) -> anyhow::Result<Status> {
    let tenants = Tenants::new(&a.tenant, matches)?;
    let planned = plan_setup(&a, &tenants).await?;
    let (_cfg, _slot, summary) = create(&planned, false).await?;
    if a.json {
        println!("{summary}");
    }
    Ok(Status::Success)
}

/// A stream's plugins, loaded: every table's chain in one runtime (which
/// must outlive them), and what they account to.
pub(super) struct Loaded {
    pub(super) _runtime: Option<Runtime>,
    pub(super) plugins: Vec<Vec<Plugin>>,
    pub(super) tenancy: Arc<Tenancy>,
    /// What identifies each (see [`digests`]).
    digests: Vec<PluginDigest>,
}

/// Loads every table's plugins as `tenant` runs them (as the job names
/// them without a policy), within its limits.
async fn load_table_plugins(
    opts: &PluginOpts,
    tenants: &Tenants,
    job: &str,
    tenant: Option<&str>,
    tables: &[StreamTable],
) -> anyhow::Result<Loaded> {
    let refs = tenants.bind(job, tenant, tables)?;
    let mut specs = Vec::new();
    for (t, rs) in tables.iter().zip(&refs) {
        for (r, conf) in rs.iter().zip(&t.plugins) {
            specs.push(
                r.spec()
                    .map_err(|e| anyhow!("table {}, plugin {}: {e}", t.name, conf.location))?,
            );
        }
    }
    // Every table with plugins keeps its chain alive, with a second set of
    // its transformers for old keys (see `apply::chains`).
    let chains = tables
        .iter()
        .zip(&refs)
        .filter(|(_, rs)| !rs.is_empty())
        .count();
    let (limits, tenancy) = tenants.run_as(opts, job, tenant, chains, specs.len() * 2)?;
    if specs.is_empty() {
        let plugins = tables.iter().map(|_| Vec::new()).collect();
        return Ok(Loaded {
            _runtime: None,
            plugins,
            tenancy,
            digests: Vec::new(),
        });
    }
    let (runtime, loaded) = load_plugins_within(opts, limits, &specs)
        .await
        .map_err(|e| tenants.refused(tenant, e))?;
    let mut loaded = loaded.into_iter();
    let plugins: Vec<Vec<Plugin>> = tables
        .iter()
        .map(|t| loaded.by_ref().take(t.plugins.len()).collect())
        .collect();
    let digests = digests(tables, &specs, &plugins);
    Ok(Loaded {
        _runtime: Some(runtime),
        plugins,
        tenancy,
        digests,
    })
}

/// Instantiates each table's chain and announces the table, as apply will.
async fn check_plugins(
    tables: &[StreamTable],
    schema: &str,
    plugins: &[Vec<Plugin>],
) -> anyhow::Result<()> {
    let (tables, schema, plugins) = (
        Arc::new(tables.to_vec()),
        schema.to_string(),
        plugins.to_vec(),
    );
    tokio::task::spawn_blocking(move || {
        apply::Shaper::new(
            tables,
            &schema,
            apply::shape::Unknown::Ignored,
            true,
            &plugins,
            None,
            Arc::default(),
        )
        .map(|_| ())
        .map_err(|failed| {
            let (t, e) = *failed;
            anyhow!("table {t}: {e}")
        })
    })
    .await?
}

/// What identifies each plugin: its wasm and its resolved parameters
/// (`specs` in table order, as loaded).
fn digests(
    tables: &[StreamTable],
    specs: &[PluginSpec],
    plugins: &[Vec<Plugin>],
) -> Vec<PluginDigest> {
    let mut specs = specs.iter();
    let mut out = Vec::new();
    for (t, ps) in tables.iter().zip(plugins) {
        for (conf, p) in t.plugins.iter().zip(ps) {
            let spec = specs.next().expect("a spec per plugin");
            let mut h = Sha256::new();
            for (k, v) in &spec.params {
                h.update(k.as_bytes());
                h.update(b"=");
                h.update(v.as_bytes());
                h.update(b"\n");
            }
            out.push(PluginDigest {
                table: t.name.clone(),
                location: conf.location.clone(),
                sha256: p.sha256().to_string(),
                params_sha256: hex::encode(h.finalize()),
            });
        }
    }
    out
}

/// Loads the stream's plugins and refuses any that changed since setup.
pub(super) async fn stream_plugins(
    dir: &StreamDir,
    cfg: &StreamConfig,
    opts: &PluginOpts,
    tenants: &Tenants,
) -> anyhow::Result<Loaded> {
    tenants.check_stream(cfg, &dir.root().display().to_string())?;
    let job = match &cfg.job {
        JobRef::File { name, .. } => name.clone(),
        JobRef::Schema => format!("schema {}", cfg.source_schema),
    };
    let tenant = cfg.tenant.as_ref().map(|t| t.name.as_str());
    let loaded = load_table_plugins(opts, tenants, &job, tenant, &cfg.tables).await?;
    for (was, is) in cfg.plugin_digests.iter().zip(&loaded.digests) {
        if was.sha256 != is.sha256 {
            bail!(
                "table {}, plugin {}: the wasm changed since setup (sha256 {} then, {} now); a stream must \
                 apply the same plugins throughout (set up a new stream for new plugins)",
                was.table,
                was.location,
                &was.sha256[..16],
                &is.sha256[..16]
            );
        }
        if was.params_sha256 != is.params_sha256 {
            bail!(
                "table {}, plugin {}: its parameters (or the environment variables they read) changed \
                 since setup; a stream must apply the same plugins throughout",
                was.table,
                was.location
            );
        }
    }
    Ok(loaded)
}
