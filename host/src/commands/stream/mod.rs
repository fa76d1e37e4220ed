//! `host stream ...`: setup, clone, receive, apply, follow, status, sentinel,
//! sync-sequences, cleanup. The work is in [`crate::stream`]; this resolves
//! DSNs and jobs, loads plugins, shows progress and maps outcomes to exit codes.

mod clone;
mod plan;
mod progress;
mod tenants;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use clap::ArgMatches;
use serde_json::json;
use tokio::sync::watch;

use super::Status;
use crate::cli::{
    ApplyArgs, CleanupArgs, EndposArgs, FollowArgs, ReceiveArgs, RunFlags, SentinelCommand,
    SentinelGetArgs, SentinelSet, SourceArg, StatusArgs, StreamCommand, SyncArgs, TargetArg,
};
use crate::db::Dsn;
use crate::stream::apply::{self, ApplyCounters, ApplyEnd, ApplyInput, ApplyOptions, ErrorKind};
use crate::stream::dir::{JobRef, Sentinel, StreamConfig, StreamDir};
use crate::stream::receive::{self, ReceiveCounters, ReceiveOptions};
use crate::stream::setup;
use crate::stream::{Lsn, Stop, StreamError};
use crate::xmat::jobs::{Job, JobFile, Setting};
use plan::stream_plugins;
use progress::{Progress, peak_rss_bytes};
use tenants::Tenants;

/// Runs a stream subcommand; `matches` are `stream`'s.
pub async fn run(cmd: StreamCommand, matches: &ArgMatches) -> anyhow::Result<Status> {
    // A subcommand's own matches: which flags the command line gave.
    let sub = |name: &str| {
        matches
            .subcommand_matches(name)
            .cloned()
            .unwrap_or_default()
    };
    match cmd {
        StreamCommand::Setup(a) => plan::setup(a, &sub("setup")).await,
        StreamCommand::Clone(a) => clone::run(a, &sub("clone")).await,
        StreamCommand::Receive(a) => receive(a).await,
        StreamCommand::Apply(a) => apply(a, &sub("apply")).await,
        StreamCommand::Follow(a) => follow(a, &sub("follow")).await,
        StreamCommand::Status(a) => status(a).await,
        StreamCommand::Sentinel(SentinelCommand::Get(a)) => sentinel_get(a),
        StreamCommand::Sentinel(SentinelCommand::Set(SentinelSet::Endpos(a))) => {
            sentinel_set(a).await
        }
        StreamCommand::SyncSequences(a) => sync_sequences(a).await,
        StreamCommand::Cleanup(a) => cleanup(a).await,
    }
}

/// A DSN from the flag, then HOST_*_PGURI, then PGCOPYDB_*_PGURI, then the job.
fn dsn(flag: &Option<String>, which: &str, job: Option<&Setting>) -> anyhow::Result<Dsn> {
    Ok(Dsn::parse(&dsn_text(flag, which, job)?)?)
}

/// The text of [`dsn`].
fn dsn_text(flag: &Option<String>, which: &str, job: Option<&Setting>) -> anyhow::Result<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let upper = which.to_uppercase();
    let text = match flag
        .clone()
        .or_else(|| var(&format!("HOST_{upper}_PGURI")))
        .or_else(|| var(&format!("PGCOPYDB_{upper}_PGURI")))
    {
        Some(t) => t,
        None => match job {
            Some(s) => s.resolve().map_err(|e| anyhow!("{which}: {e}"))?,
            None => bail!(
                "no {which} database: give --{which}, or set HOST_{upper}_PGURI (or PGCOPYDB_{upper}_PGURI)"
            ),
        },
    };
    Ok(text)
}

/// The job a stream was set up with, re-read for its DSNs (when it came from a file).
fn stored_job(cfg: &StreamConfig) -> Option<Job> {
    let JobRef::File { path, name } = &cfg.job else {
        return None;
    };
    JobFile::load(path)
        .ok()?
        .jobs
        .into_iter()
        .find(|j| &j.name == name)
}

fn source_of(arg: &SourceArg, cfg: &StreamConfig) -> anyhow::Result<Dsn> {
    let job = stored_job(cfg);
    dsn(
        &arg.source,
        "source",
        job.as_ref().map(|j| &j.source.database),
    )
}

fn target_of(arg: &TargetArg, cfg: &StreamConfig) -> anyhow::Result<Dsn> {
    let job = stored_job(cfg);
    dsn(
        &arg.target,
        "target",
        job.as_ref().map(|j| &j.target.database),
    )
}

fn open_dir(dir: &Path) -> anyhow::Result<(StreamDir, StreamConfig)> {
    let d = StreamDir::new(dir);
    let cfg = d.config()?;
    Ok((d, cfg))
}

/// `--resume`/`--restart` against what the directory holds.
fn check_run_flags(dir: &StreamDir, flags: &RunFlags, applied: Option<Lsn>) -> anyhow::Result<()> {
    let segments = crate::stream::spool::segments(&dir.spool())?;
    let state = dir.receive_state()?;
    let previous = !segments.is_empty() || state.received > Lsn::ZERO;
    if flags.restart && previous {
        let spooled = crate::stream::spool::SpoolWriter::open(&dir.spool(), u64::MAX)?.last_end();
        let applied = applied.unwrap_or(dir.apply_state()?.applied);
        if spooled > applied {
            bail!(
                "--restart would discard spooled changes the target has not applied (spool up to {spooled}, \
                 applied up to {applied}); apply them first, or clean the stream up and clone again"
            );
        }
        tracing::warn!(
            "--restart: discarding the previous spool in {}",
            dir.root().display()
        );
        std::fs::remove_dir_all(dir.spool()).ok();
        // What was received is all applied, and stays received: the slot
        // may be confirmed up to it, and the next run continues from there.
        dir.write_receive_state(&crate::stream::dir::ReceiveState {
            received: state.received.max(spooled),
            ..state
        })?;
        return Ok(());
    }
    if previous && !flags.resume {
        return Err(anyhow!(
            "{} holds a previous run's spool (received up to {}): continue it with --resume, or discard \
             it with --restart",
            dir.root().display(),
            state.received
        ))
        .context("refusing to guess");
    }
    Ok(())
}

async fn receive(a: ReceiveArgs) -> anyhow::Result<Status> {
    let (dir, cfg) = open_dir(&a.dir.dir)?;
    let source = source_of(&a.source, &cfg)?;
    check_run_flags(&dir, &a.run, None)?;
    let stop = stop_on_signals();
    let counters = Arc::new(ReceiveCounters::default());
    let (tx, _rx) = watch::channel(Lsn::ZERO);
    let progress = Progress::start(!a.json, Some(counters.clone()), None, tx.subscribe());
    let opts = ReceiveOptions {
        endpos: a.endpos,
        segment_bytes: a.segment_size,
    };
    let report = receive::run(&dir, &cfg, &source, &opts, counters, tx, stop).await;
    progress.finish();
    let report = report?;
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        v["peak_rss_bytes"] = json!(peak_rss_bytes());
        println!("{v}");
    } else {
        tracing::info!(
            "receive: {} transactions ({} messages, {:.1} MB) spooled; complete up to {} ({:?})",
            report.transactions,
            report.messages,
            report.bytes as f64 / 1e6,
            report.received,
            report.ended
        );
    }
    Ok(Status::Success)
}

async fn apply(a: ApplyArgs, matches: &ArgMatches) -> anyhow::Result<Status> {
    let (dir, cfg) = open_dir(&a.dir.dir)?;
    let target = target_of(&a.target, &cfg)?;
    let tenants = Tenants::new(&a.tenant, matches)?;
    let loaded = stream_plugins(&dir, &cfg, &a.opts, &tenants).await?;
    let stop = stop_on_signals();
    // Receive runs elsewhere: follow its state file.
    let (tx, rx) = watch::channel(dir.receive_state()?.received);
    let poll_dir = dir.clone();
    let poller = tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if let Ok(s) = poll_dir.receive_state()
                && s.received > *tx.borrow()
            {
                tx.send_replace(s.received);
            }
            if tx.is_closed() {
                break;
            }
        }
    });
    let counters = Arc::new(ApplyCounters::default());
    let progress = Progress::start(!a.json, None, Some(counters.clone()), rx.clone());
    let input = ApplyInput {
        dir: dir.clone(),
        cfg: cfg.clone(),
        plugins: loaded.plugins.clone(),
        tenancy: loaded.tenancy.clone(),
        received: rx,
        counters,
        stop,
    };
    let report = apply::run(input, &target, &ApplyOptions { endpos: a.endpos }).await;
    progress.finish();
    poller.abort();
    let report = match report {
        Ok(r) => r,
        Err(e) => return stopped(e, a.json),
    };
    let mut synced = None;
    if report.ended == ApplyEnd::Endpos && (a.source.source.is_some() || stored_job(&cfg).is_some())
    {
        let source = source_of(&a.source, &cfg)?;
        synced = Some(setup::sync_sequences(&source, &target, &cfg).await?);
    }
    print_apply(&report, synced, a.json)?;
    Ok(Status::Success)
}

async fn follow(a: FollowArgs, matches: &ArgMatches) -> anyhow::Result<Status> {
    let (dir, cfg) = open_dir(&a.dir.dir)?;
    let source = source_of(&a.source, &cfg)?;
    let target = target_of(&a.target, &cfg)?;
    let tenants = Tenants::new(&a.tenant, matches)?;
    let loaded = stream_plugins(&dir, &cfg, &a.opts, &tenants).await?;
    let applied = origin_progress(&target, &cfg.origin).await.ok();
    check_run_flags(&dir, &a.run, applied)?;
    let stop = stop_on_signals();
    let (tx, rx) = watch::channel(Lsn::ZERO);
    let rcounters = Arc::new(ReceiveCounters::default());
    let acounters = Arc::new(ApplyCounters::default());
    let progress = Progress::start(
        !a.json,
        Some(rcounters.clone()),
        Some(acounters.clone()),
        rx.clone(),
    );
    let ropts = ReceiveOptions {
        endpos: a.endpos,
        segment_bytes: a.segment_size,
    };
    let input = ApplyInput {
        dir: dir.clone(),
        cfg: cfg.clone(),
        plugins: loaded.plugins.clone(),
        tenancy: loaded.tenancy.clone(),
        received: rx,
        counters: acounters,
        stop: stop.clone(),
    };
    let receiving = async {
        let r = receive::run(&dir, &cfg, &source, &ropts, rcounters, tx, stop.clone()).await;
        if r.is_err() {
            stop.request();
        }
        r
    };
    let applying = async {
        let r = apply::run(input, &target, &ApplyOptions { endpos: a.endpos }).await;
        // Apply ends at endpos after receive did; on anything else receive stops too.
        stop.request();
        r
    };
    let (received, applied) = tokio::join!(receiving, applying);
    progress.finish();
    let report = match applied {
        Ok(r) => r,
        Err(e) => return stopped(e, a.json),
    };
    let received = received?;
    let synced = if report.ended == ApplyEnd::Endpos {
        Some(setup::sync_sequences(&source, &target, &cfg).await?)
    } else {
        None
    };
    if a.json {
        println!(
            "{}",
            json!({ "receive": received, "apply": report, "sequences_synced": synced,
                    "peak_rss_bytes": peak_rss_bytes() })
        );
    } else {
        print_apply(&report, synced, false)?;
    }
    Ok(Status::Success)
}

async fn origin_progress(target: &Dsn, origin: &str) -> Result<Lsn, StreamError> {
    let c = crate::stream::connect(target, "target").await?;
    let row = c
        .query_one(
            "SELECT coalesce(pg_replication_origin_progress($1, false), '0/0')::text",
            &[&origin],
        )
        .await
        .map_err(|e| StreamError::db("target", "reading the origin", &e))?;
    Ok(row.get::<_, String>(0).parse().unwrap_or_default())
}

fn print_apply(r: &apply::ApplyReport, synced: Option<usize>, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        println!(
            "{}",
            json!({ "apply": r, "sequences_synced": synced, "peak_rss_bytes": peak_rss_bytes() })
        );
    } else {
        tracing::info!(
            "apply: {} transactions, {} changes applied ({} statements, {} target transactions); \
             the target is at {} ({:?}){}",
            r.transactions,
            r.changes,
            r.statements,
            r.target_transactions,
            r.applied,
            r.ended,
            synced.map_or(String::new(), |n| format!(
                "; {n} sequence(s) set from the source"
            ))
        );
    }
    Ok(())
}

/// A change apply could not take: the message, and the exit code for its kind.
fn stopped(e: StreamError, as_json: bool) -> anyhow::Result<Status> {
    let StreamError::Change(c) = &e else {
        return Err(e.into());
    };
    if as_json {
        println!(
            "{}",
            json!({ "error": c.to_string(), "kind": c.kind, "xid": c.xid, "commit_lsn": c.commit_lsn,
                    "lsn": c.lsn, "table": c.table, "plugin": c.plugin })
        );
    }
    eprintln!("error: {c}");
    Ok(match c.kind {
        ErrorKind::Rejected => Status::Rejected,
        ErrorKind::PluginFailed => Status::PluginFailed,
        ErrorKind::Ddl => Status::Ddl,
        ErrorKind::Target | ErrorKind::Data => return Err(e.into()),
    })
}

async fn status(a: StatusArgs) -> anyhow::Result<Status> {
    let (dir, cfg) = open_dir(&a.dir.dir)?;
    let source = source_of(&a.source, &cfg).ok();
    let target = target_of(&a.target, &cfg).ok();
    let s = crate::stream::status::status(&dir, source.as_ref(), target.as_ref()).await?;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
        return Ok(Status::Success);
    }
    let opt = |l: Option<Lsn>| l.map_or("?".to_string(), |l| l.to_string());
    println!("stream {} (slot {}, origin {})", s.dir, s.slot, s.origin);
    println!("  source:   {} at {}", s.source, opt(s.source_lsn));
    if let Some(slot) = &s.slot_state {
        println!(
            "  slot:     confirmed {}, restart {}, {} retained, {}",
            slot.confirmed_flush,
            slot.restart_lsn,
            human(slot.retained_bytes),
            if slot.active { "receiving" } else { "idle" }
        );
    }
    println!(
        "  spool:    complete up to {} ({} in {} segment(s))",
        s.received,
        human(s.spool_bytes),
        s.spool_segments
    );
    println!(
        "  target:   {} applied up to {} ({} transactions, {} changes)",
        s.target, s.applied, s.transactions_applied, s.changes_applied
    );
    if let Some(e) = s.endpos {
        println!("  endpos:   {e}");
    }
    println!(
        "  lag:      {} behind the source, {:.1} s",
        s.lag_bytes.map_or("?".into(), human),
        s.lag_seconds
    );
    for e in &s.errors {
        println!("  problem:  {e}");
    }
    Ok(Status::Success)
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

fn sentinel_get(a: SentinelGetArgs) -> anyhow::Result<Status> {
    let (dir, _cfg) = open_dir(&a.dir.dir)?;
    let s = dir.sentinel()?;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "endpos {}",
            s.endpos.map_or("(none)".to_string(), |l| l.to_string())
        );
    }
    Ok(Status::Success)
}

async fn sentinel_set(a: EndposArgs) -> anyhow::Result<Status> {
    let (dir, cfg) = open_dir(&a.dir.dir)?;
    let endpos = if a.clear {
        None
    } else if a.current {
        let source = source_of(&a.source, &cfg)?;
        let c = crate::stream::connect(&source, "source").await?;
        let l: String = c
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .map_err(|e| StreamError::db("source", "reading its WAL position", &e))?
            .get(0);
        Some(l.parse()?)
    } else {
        a.lsn
    };
    let s = Sentinel { endpos };
    dir.write_sentinel(&s)?;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        tracing::info!(
            "endpos {}",
            endpos.map_or("cleared".to_string(), |l| l.to_string())
        );
    }
    Ok(Status::Success)
}

async fn sync_sequences(a: SyncArgs) -> anyhow::Result<Status> {
    let (_dir, cfg) = open_dir(&a.dir.dir)?;
    let source = source_of(&a.source, &cfg)?;
    let target = target_of(&a.target, &cfg)?;
    let n = setup::sync_sequences(&source, &target, &cfg).await?;
    if a.json {
        println!("{}", json!({ "sequences_synced": n }));
    } else {
        tracing::info!("{n} sequence(s) set from the source");
    }
    Ok(Status::Success)
}

async fn cleanup(a: CleanupArgs) -> anyhow::Result<Status> {
    let (dir, cfg) = open_dir(&a.dir.dir)?;
    let mut problems = Vec::new();
    let mut done = serde_json::Map::new();
    match source_of(&a.source, &cfg) {
        Ok(source) => match setup::drop_slot(&source, &cfg.slot).await {
            Ok(dropped) => {
                done.insert("slot_dropped".into(), json!(dropped));
            }
            Err(e) => problems.push(format!("slot {}: {e}", cfg.slot)),
        },
        Err(e) => problems.push(format!("slot {}: {e}", cfg.slot)),
    }
    match target_of(&a.target, &cfg) {
        Ok(target) => match setup::drop_origin(&target, &cfg.origin).await {
            Ok(dropped) => {
                done.insert("origin_dropped".into(), json!(dropped));
            }
            Err(e) => problems.push(format!("origin {}: {e}", cfg.origin)),
        },
        Err(e) => problems.push(format!("origin {}: {e}", cfg.origin)),
    }
    if !problems.is_empty() {
        // Keep the directory: it says what is left to clean.
        bail!(
            "cleanup of {} is incomplete (the directory is kept; run cleanup again):\n  {}",
            dir.root().display(),
            problems.join("\n  ")
        );
    }
    dir.remove_all()?;
    done.insert("dir".into(), json!(dir.root().display().to_string()));
    if a.json {
        println!("{}", serde_json::Value::Object(done));
    } else {
        tracing::info!(
            "cleaned up: slot {}, origin {}, spool in {}",
            cfg.slot,
            cfg.origin,
            dir.root().display()
        );
    }
    Ok(Status::Success)
}

/// Ctrl-C or SIGTERM: stop at the next transaction boundary.
fn stop_on_signals() -> Arc<Stop> {
    let stop = Arc::new(Stop::default());
    let s = stop.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::info!("stopping at the next transaction boundary");
        s.request();
    });
    stop
}
