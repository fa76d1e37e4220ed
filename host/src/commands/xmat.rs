//! `host xmat PATTERN`: run the matching jobs of a jobs file, in file order,
//! printing the plan (`--dry-run`), progress per table and a summary.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::collections::HashMap;

use anyhow::bail;
use clap::ArgMatches;
use futures::StreamExt;
use serde_json::json;

use super::{Status, tenancy};
use crate::audit::Audit;
use crate::cli::XmatArgs;
use crate::plugin::Plugin;
use crate::xmat::copy::{Counters, TableStats};
use crate::xmat::follow;
use crate::xmat::jobs::LoadOptions;
use crate::xmat::share::Share;
use crate::xmat::tenant::Binding;
use crate::xmat::{self, Job, JobFile, JobReport, Observer, Options, PluginSetup, Prepared};

/// Runs the command.
pub async fn run(args: XmatArgs, matches: &ArgMatches) -> anyhow::Result<Status> {
    let load = LoadOptions {
        python: args.python.clone(),
        ..LoadOptions::default()
    };
    let file = JobFile::load_with(&args.file, &load)?;
    let jobs = file.matching(&args.pattern);
    if jobs.is_empty() {
        let names: Vec<&str> = file.jobs.iter().map(|j| j.name.as_str()).collect();
        bail!(
            "no job in {} matches '{}' (its jobs: {})",
            args.file.display(),
            args.pattern,
            names.join(", ")
        );
    }
    let policy = match &args.tenant.policy {
        Some(path) => {
            tenancy::refuse_flags_decided_by_policy(matches)?;
            Some(tenancy::load_policy(path)?)
        }
        None => None,
    };
    let audit = match &args.tenant.audit {
        Some(path) => Some(Arc::new(Audit::open(path)?)),
        None => None,
    };
    let binding = match &policy {
        Some(policy) => Binding::Policy {
            policy,
            tenant: args.tenant.tenant.as_deref(),
        },
        None => Binding::Unbound,
    };
    // Every job is bound before any runs: a plugin its tenant may not run
    // stops the whole run before anything is read, compiled or written.
    let mut bound = Vec::with_capacity(jobs.len());
    for job in jobs {
        match binding.bind(job) {
            Ok(job) => bound.push(job),
            Err(e) => {
                let tenant = job.tenant.as_deref().or(args.tenant.tenant.as_deref());
                return Err(tenancy::audit_refusal(
                    audit.as_deref(),
                    "xmat",
                    tenant,
                    e.into(),
                ));
            }
        }
    }
    // What each tenant's jobs share: its limits, instances and CPU time.
    let mut setups: HashMap<Option<String>, PluginSetup> = HashMap::new();
    for job in &bound {
        let tenant = job.scope.tenant().map(str::to_string);
        if setups.contains_key(&tenant) {
            continue;
        }
        let (limits, share) = match (&policy, &tenant) {
            (Some(policy), Some(name)) => {
                let t = policy.tenant(name)?;
                (
                    tenancy::limits(policy, t),
                    Share::tenant(name, t.limits.instances, t.limits.cpu),
                )
            }
            _ => (args.opts.limits(), Share::unlimited()),
        };
        let setup = PluginSetup {
            limits,
            cache_dir: args.opts.cache_dir(),
            fetch: args.opts.fetch_bounds(),
            share,
            audit: audit.clone(),
        };
        setups.insert(tenant, setup);
    }
    let base = Options {
        jobs: usize::from(args.jobs),
        binary: !args.text,
        plugin_threads: args.plugin_threads.map_or(0, usize::from),
        allow_uniqueness_loss: args.allow_uniqueness_loss,
        follow: follow::Limits {
            memory: usize::try_from(args.follow_memory).unwrap_or(usize::MAX),
            in_query: usize::try_from(args.follow_in_query).unwrap_or(usize::MAX),
        },
        ..Options::default()
    };

    // Jobs in file order, `--parallel-jobs` at a time; a failure stops the
    // jobs of its tenant (all jobs, without a policy) that have not started.
    let failed: Mutex<Vec<Option<String>>> = Mutex::new(Vec::new());
    let results: Vec<JobOutcome> = futures::stream::iter(&bound)
        .map(|job| {
            let tenant = job.scope.tenant().map(str::to_string);
            let mut opts = base.clone();
            opts.plugins = setups[&tenant].clone();
            // One runtime per job: room for each of its instances (a chain
            // is one instance per plugin) on every thread the tenant may have.
            let longest = job
                .tables
                .iter()
                .map(|t| t.plugins.len())
                .max()
                .unwrap_or(0);
            if tenant.is_some() {
                opts.plugins.limits.max_instances = opts
                    .plugins
                    .limits
                    .max_instances
                    .saturating_mul(u32::try_from(longest.max(1)).unwrap_or(u32::MAX));
            }
            let (args, failed) = (&args, &failed);
            async move {
                if failed.lock().expect("failed lock").contains(&tenant) {
                    return JobOutcome::Skipped {
                        job: job.name.clone(),
                        tenant,
                    };
                }
                let mut out = None;
                match run_job(args, job, &opts, &mut out).await {
                    Ok(()) => JobOutcome::Done(out.unwrap_or_default()),
                    Err(e) => {
                        // A build whose bytes are not the pinned ones: refused unrun.
                        let e = tenancy::audit_refusal(
                            opts.plugins.audit.as_deref(),
                            "xmat",
                            tenant.as_deref(),
                            e,
                        );
                        failed.lock().expect("failed lock").push(tenant);
                        JobOutcome::Failed {
                            job: job.name.clone(),
                            output: out,
                            error: e,
                        }
                    }
                }
            }
        })
        .buffered(usize::from(args.parallel_jobs))
        .collect()
        .await;

    let mut outputs = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            JobOutcome::Done(out) => outputs.push(out),
            JobOutcome::Skipped { job, tenant } => {
                let why = match tenant {
                    Some(t) => format!("an earlier job of tenant `{t}` failed"),
                    None => "an earlier job failed".to_string(),
                };
                if !args.json {
                    tracing::warn!("job {job}: not run: {why}");
                }
                outputs.push(json!({ "job": job, "skipped": why }));
            }
            JobOutcome::Failed { job, output, error } => {
                let mut out = output.unwrap_or_else(|| json!({ "job": job }));
                out["error"] = json!(crate::terminal::redact(&crate::terminal::error_text(
                    &error
                )));
                outputs.push(out);
                errors.push((job, error));
            }
        }
    }
    if args.json {
        // Nothing of a policy's secrets, whatever a plan or error holds.
        let text = json!({ "jobs": outputs }).to_string();
        println!("{}", crate::terminal::redact(&text));
    }
    match errors.len() {
        0 => Ok(Status::Success),
        // One failure is the run's error, as it always was.
        1 => Err(errors.remove(0).1),
        n => {
            let names: Vec<String> = errors.iter().map(|(j, _)| j.clone()).collect();
            for (_, e) in &errors {
                tracing::error!("{}", crate::terminal::error_text(e));
            }
            bail!("{n} jobs failed: {}", names.join(", "))
        }
    }
}

/// How one job of the run ended.
enum JobOutcome {
    /// What `--json` prints for it.
    Done(serde_json::Value),
    Failed {
        job: String,
        output: Option<serde_json::Value>,
        error: anyhow::Error,
    },
    /// Not started: an earlier job of its tenant failed.
    Skipped { job: String, tenant: Option<String> },
}

/// One job: its plan (`--dry-run`), or its run and summary; what `--json`
/// prints for it goes to `outputs`.
async fn run_job(
    args: &XmatArgs,
    job: &Job,
    opts: &Options,
    output: &mut Option<serde_json::Value>,
) -> anyhow::Result<()> {
    for note in &job.notes {
        tracing::warn!("{}: job {}: {note}", args.file.display(), job.name);
    }
    let prepared = xmat::prepare(job, opts).await?;
    if args.dry_run {
        if args.json {
            *output = Some(plan_json(&prepared));
        } else {
            print_plan(&prepared, job);
        }
        // The plan is shown either way; a run that would refuse fails here too.
        prepared.check()?;
        return Ok(());
    }
    tracing::info!(
        "job {}: {} -> {} (schema {} -> {})",
        job.name,
        prepared.source_shown(),
        prepared.target_shown(),
        prepared.plan().source_schema,
        prepared.plan().target_schema
    );
    let progress = Progress::new(!args.json);
    let report = prepared.execute(progress.clone()).await;
    progress.stop();
    let report = report?;
    print_report(&report);
    *output = Some(serde_json::to_value(&report)?);
    Ok(())
}

fn plugin_line(p: &Plugin, shown: &str) -> String {
    format!(
        "{} {} ({}) {shown} sha256:{}",
        p.name(),
        p.info().version,
        p.kind(),
        &p.sha256()[..16]
    )
}

/// `println!` with anything from the source database (names, SQL) escaped.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", crate::terminal::escape(&format!($($arg)*)))
    };
}

fn print_plan(prep: &Prepared, job: &Job) {
    let plan = prep.plan();
    let plugins = prep.plugins().per_table();
    say!("job {}", plan.job);
    if let Some(t) = &plan.tenant {
        say!("  tenant: {t} (its plugins, tables, rows and limits, as its policy says)");
    }
    say!(
        "  source: {} schema {}",
        prep.source_shown(),
        plan.source_schema
    );
    say!(
        "  target: {} schema {} (built as {}, swapped in at the end)",
        prep.target_shown(),
        plan.target_schema,
        plan.build_schema
    );
    if plan.subset != xmat::jobs::Subset::Off {
        say!(
            "  subset: {} (each table's SELECT below keeps only what its keys allow)",
            plan.subset.name()
        );
    }
    say!("  before the data:");
    for s in &plan.pre_data {
        say!("    {s};");
    }
    say!("  tables:");
    for (t, ps) in plan.tables.iter().zip(plugins) {
        let format = if t.binary { "binary" } else { "text" };
        say!(
            "    {} ({format} COPY{})",
            t.name,
            if t.freeze { ", FREEZE" } else { "" }
        );
        say!("      {};", t.select);
        if !t.follows.is_empty() {
            say!("      follows: {}", t.follows.join(", "));
        }
        if let Some(h) = &t.host_follow {
            for k in &h.keys {
                say!(
                    "      {} ({}) follows the kept keys of {}, read first: {};",
                    k.column,
                    k.key,
                    k.parent,
                    k.keys_select
                );
            }
            say!(
                "      reading (while the kept keys fit in --follow-memory), with them in the \
                 query (within --follow-in-query) or tested by host: {};",
                h.select
            );
        }
        if !t.added_by.is_empty() {
            say!("      rows added for: {}", t.added_by.join(", "));
        }
        for (p, r) in ps.iter().zip(&t.plugins) {
            say!("      plugin: {}", plugin_line(p, &r.display()));
        }
        for s in &t.post_data {
            say!("      then: {s};");
        }
    }
    if !plan.foreign_keys.is_empty() {
        say!("  foreign keys:");
        for fk in &plan.foreign_keys {
            say!("    {};", fk.sql);
        }
    }
    if !plan.sequences.is_empty() {
        say!("  sequences:");
        for s in &plan.sequences {
            say!("    {};", s.sql());
        }
    }
    for s in &plan.skipped {
        say!("  not copied: {s}");
    }
    for w in &plan.warnings {
        say!("  warning: {w}");
    }
    let risks = prep.unique_risks();
    if !risks.0.is_empty() {
        say!("  unique keys with transformed columns:");
        for r in &risks.0 {
            say!(
                "    {} {r}",
                if r.accepted { "accepted:" } else { "REFUSED: " }
            );
        }
    }
    for n in &job.notes {
        say!("  note: {n}");
    }
}

fn plan_json(prep: &Prepared) -> serde_json::Value {
    let plan = prep.plan();
    let plugins = prep.plugins().per_table();
    let mut v = serde_json::to_value(plan).unwrap_or_default();
    v["source"] = json!(prep.source_shown());
    v["target"] = json!(prep.target_shown());
    v["unique_risks"] = json!(prep.unique_risks().0);
    v["refused"] = json!(prep.unique_risks().refuses());
    v["sequences"] = json!(plan.sequences.iter().map(|s| s.sql()).collect::<Vec<_>>());
    if let Some(tables) = v["tables"].as_array_mut() {
        for ((tv, t), ps) in tables.iter_mut().zip(&plan.tables).zip(plugins) {
            tv["copy_out"] = json!(t.copy_out());
            tv["copy_in"] = json!(t.copy_in());
            tv["plugins"] = json!(
                ps.iter()
                    .zip(&t.plugins)
                    .map(|(p, r)| json!({
                        "name": p.name(), "version": p.info().version, "kind": p.kind(),
                        "sha256": p.sha256(), "plugin": r.display(),
                    }))
                    .collect::<Vec<_>>()
            );
        }
    }
    v
}

fn print_report(r: &JobReport) {
    for w in &r.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        "job {}: {} tables, {} rows read, {} written, {} dropped by filters, {} rejected in {:.2}s",
        r.job,
        r.tables.len(),
        r.rows_read,
        r.rows_written,
        r.dropped,
        r.rejected,
        r.seconds
    );
}

fn table_line(table: &str, s: &TableStats) -> String {
    let mb = s.bytes as f64 / 1e6;
    let followed = match s.followed_out {
        0 => String::new(),
        n => format!(" ({n} left out by followed keys)"),
    };
    format!(
        "{table}: {} rows read{followed}, {} written, {} dropped, {mb:.1} MB in {:.2}s ({:.1} MB/s)",
        s.rows_read,
        s.rows_written,
        s.dropped,
        s.seconds,
        if s.seconds > 0.0 { mb / s.seconds } else { 0.0 }
    )
}

/// Progress: a live line per running table on a terminal, a line per finished table.
pub(crate) struct Progress {
    bars: Option<indicatif::MultiProgress>,
    running: Mutex<Vec<Running>>,
    stop: std::sync::atomic::AtomicBool,
}

/// A table being copied, with its live line.
struct Running {
    table: String,
    counters: Arc<Counters>,
    bar: indicatif::ProgressBar,
    started: Instant,
}

impl Progress {
    pub(crate) fn new(allow_bars: bool) -> Arc<Progress> {
        let tty = allow_bars && std::io::stderr().is_terminal();
        let p = Arc::new(Progress {
            bars: tty.then(indicatif::MultiProgress::new),
            running: Mutex::new(Vec::new()),
            stop: std::sync::atomic::AtomicBool::new(false),
        });
        if tty {
            let weak = Arc::downgrade(&p);
            std::thread::spawn(move || {
                while let Some(p) = weak.upgrade() {
                    if p.stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    p.tick();
                    drop(p);
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
        }
        p
    }

    fn tick(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        for r in self.running.lock().expect("progress").iter() {
            let mb = r.counters.bytes.load(Relaxed) as f64 / 1e6;
            let secs = r.started.elapsed().as_secs_f64().max(0.001);
            r.bar.set_message(format!(
                "{}: {} rows, {mb:.1} MB ({:.1} MB/s)",
                r.table,
                r.counters.rows.load(Relaxed),
                mb / secs
            ));
        }
    }

    pub(crate) fn stop(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in self.running.lock().expect("progress").drain(..) {
            r.bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn table_started(&self, table: &str, counters: Arc<Counters>) {
        tracing::debug!("{table}: started");
        if let Some(m) = &self.bars {
            let bar = m.add(indicatif::ProgressBar::new_spinner());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message(format!("{table}: starting"));
            self.running.lock().expect("progress").push(Running {
                table: table.to_string(),
                counters,
                bar,
                started: Instant::now(),
            });
        }
    }

    fn table_finished(&self, table: &str, stats: &TableStats) {
        let mut running = self.running.lock().expect("progress");
        if let Some(i) = running.iter().position(|r| r.table == table) {
            running.remove(i).bar.finish_and_clear();
        }
        drop(running);
        tracing::info!("{}", table_line(table, stats));
    }

    fn step(&self, message: &str) {
        tracing::info!("{message}");
    }
}
