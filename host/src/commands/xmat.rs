//! `host xmat PATTERN`: run the matching jobs of a jobs file, in file order,
//! printing the plan (`--dry-run`), progress per table and a summary.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;

use super::{Status, load_plugins};
use crate::cli::XmatArgs;
use crate::plugin::Plugin;
use crate::xmat::copy::{Counters, TableStats};
use crate::xmat::run::{self, JobReport, Observer, Options, Prepared};
use crate::xmat::{JobFile, XmatError};

/// Runs the command.
pub async fn run(args: XmatArgs) -> anyhow::Result<Status> {
    let file = JobFile::load(&args.file)?;
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
    let opts = Options {
        jobs: usize::from(args.jobs),
        binary: !args.text,
        plugin_threads: args.plugin_threads.map_or(0, usize::from),
    };
    let mut outputs = Vec::new();
    for job in jobs {
        let result = async {
            let prepared = run::prepare(job, &opts).await?;
            let (_runtime, plugins) = job_plugins(&args, &prepared).await?;
            // Plugin calls are synchronous: keep them off the async workers.
            let (plan, loaded) = (prepared.plan.clone(), plugins.clone());
            tokio::task::spawn_blocking(move || run::check_plugins(&plan, &loaded)).await??;
            if args.dry_run {
                let shown = if args.json {
                    plan_json(&prepared, &plugins)
                } else {
                    print_plan(&prepared, &plugins);
                    serde_json::Value::Null
                };
                return Ok::<_, anyhow::Error>(shown);
            }
            tracing::info!(
                "job {}: {} -> {} (schema {} -> {})",
                job.name,
                prepared.source_shown,
                prepared.target_shown,
                prepared.plan.source_schema,
                prepared.plan.target_schema
            );
            let progress = Progress::new(!args.json);
            let report = run::execute(prepared, plugins, &opts, progress.clone()).await;
            progress.stop();
            let report = report?;
            print_report(&report);
            Ok(serde_json::to_value(&report)?)
        }
        .await;
        match result {
            Ok(v) => outputs.push(v),
            Err(e) => {
                if args.json {
                    outputs.push(json!({ "job": job.name, "error": format!("{e:#}") }));
                    println!("{}", json!({ "jobs": outputs }));
                }
                return Err(e);
            }
        }
    }
    if args.json {
        println!("{}", json!({ "jobs": outputs }));
    }
    Ok(Status::Success)
}

/// Loads every table's plugins in one runtime; the runtime must outlive the run.
async fn job_plugins(
    args: &XmatArgs,
    prepared: &Prepared,
) -> anyhow::Result<(Option<crate::plugin::Runtime>, Vec<Vec<Plugin>>)> {
    let plan = &prepared.plan;
    let mut specs = Vec::new();
    for t in &plan.tables {
        for p in &t.plugins {
            let spec = p.spec().map_err(|message| XmatError::Plugin {
                job: plan.job.clone(),
                table: t.name.clone(),
                plugin: p.location.clone(),
                message,
            })?;
            specs.push(spec);
        }
    }
    if specs.is_empty() {
        return Ok((None, plan.tables.iter().map(|_| Vec::new()).collect()));
    }
    let (runtime, loaded) = load_plugins(&args.opts, &specs)
        .await
        .map_err(|e| anyhow::anyhow!("job {}: {e:#}", plan.job))?;
    let mut loaded = loaded.into_iter();
    let per_table = plan
        .tables
        .iter()
        .map(|t| loaded.by_ref().take(t.plugins.len()).collect())
        .collect();
    Ok((Some(runtime), per_table))
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

fn print_plan(prep: &Prepared, plugins: &[Vec<Plugin>]) {
    let plan = &prep.plan;
    say!("job {}", plan.job);
    say!(
        "  source: {} schema {}",
        prep.source_shown,
        plan.source_schema
    );
    say!(
        "  target: {} schema {} (built as {}, swapped in at the end)",
        prep.target_shown,
        plan.target_schema,
        plan.build_schema
    );
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
}

fn plan_json(prep: &Prepared, plugins: &[Vec<Plugin>]) -> serde_json::Value {
    let plan = &prep.plan;
    let mut v = serde_json::to_value(plan).unwrap_or_default();
    v["source"] = json!(prep.source_shown);
    v["target"] = json!(prep.target_shown);
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
    format!(
        "{table}: {} rows read, {} written, {} dropped, {mb:.1} MB in {:.2}s ({:.1} MB/s)",
        s.rows_read,
        s.rows_written,
        s.dropped,
        s.seconds,
        if s.seconds > 0.0 { mb / s.seconds } else { 0.0 }
    )
}

/// Progress: a live line per running table on a terminal, a line per finished table.
struct Progress {
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
    fn new(allow_bars: bool) -> Arc<Progress> {
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

    fn stop(&self) {
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
