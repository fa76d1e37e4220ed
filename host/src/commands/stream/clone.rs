//! `host stream clone [--follow]`: setup with the slot's exported snapshot,
//! the initial copy by xmat (the job's where, select, plugins and keys) in
//! exactly that snapshot, then, with `--follow`, receive and apply from the
//! slot's start. The snapshot and the slot's consistent point are one
//! instant: a transaction committed before it is in the copy and not in the
//! stream, one committed after it is in the stream and not in the copy.
//!
//! `DIR/copy.json` says the copy is running until it is done; apply refuses
//! a stream whose copy never finished (a clone killed mid-copy). A copy
//! that fails removes the slot, origin and directory again.

use anyhow::{Context, anyhow};
use serde_json::json;

use super::Status;
use super::tenants::Tenants;
use crate::cli::{CloneArgs, FollowArgs, RunFlags, SourceArg, TargetArg};
use crate::commands::xmat::Progress;
use crate::stream::dir::{InitialCopy, now};
use crate::stream::setup::{self, CreatedSlot};
use crate::xmat::jobs::Setting;
use crate::xmat::{self, JobReport, Options, Snapshot};
use clap::ArgMatches;

pub async fn run(a: CloneArgs, matches: &ArgMatches) -> anyhow::Result<Status> {
    let tenants = Tenants::new(&a.setup.tenant, matches)?;
    let planned = super::plan::plan_setup(&a.setup, &tenants).await?;
    let (cfg, slot, summary) = super::plan::create(&planned, true).await?;
    let report = match copy(&a, &planned, &tenants, slot).await {
        Ok(r) => r,
        Err(e) => {
            let left = remove(&planned, &cfg.slot, &cfg.origin).await;
            return Err(e.context(if left.is_empty() {
                "the initial copy failed; the stream is removed (slot, origin, directory): fix the cause \
                 and clone again"
                    .to_string()
            } else {
                format!(
                    "the initial copy failed, and removing the stream did not finish ({}); run \
                     `host stream cleanup --dir {}`",
                    left.join("; "),
                    planned.dir.root().display()
                )
            }));
        }
    };
    if a.setup.json {
        println!("{}", json!({ "setup": summary, "copy": report }));
    }
    if !a.follow {
        tracing::info!(
            "copied; follow the changes since with `host stream follow --dir {} --resume`",
            planned.dir.root().display()
        );
        return Ok(Status::Success);
    }
    super::follow(
        FollowArgs {
            dir: a.setup.dir.clone(),
            source: SourceArg {
                source: Some(planned.source_text.clone()),
            },
            target: TargetArg {
                target: Some(planned.target_text.clone()),
            },
            endpos: a.endpos,
            run: RunFlags {
                resume: false,
                restart: false,
            },
            segment_size: a.segment_size,
            json: a.setup.json,
            opts: a.setup.opts.clone(),
            tenant: a.setup.tenant.clone(),
        },
        matches,
    )
    .await
}

/// The job copied by xmat in the slot's snapshot, which `slot`'s
/// connection keeps alive until the copy is done.
async fn copy(
    a: &CloneArgs,
    p: &super::plan::Planned,
    tenants: &Tenants,
    slot: CreatedSlot,
) -> anyhow::Result<JobReport> {
    let snapshot = slot
        .snapshot
        .clone()
        .ok_or_else(|| anyhow!("the source exported no snapshot with the slot"))?;
    p.dir
        .write_initial_copy(&InitialCopy::Running { started: now() })?;
    let mut job = p.job.clone();
    job.source.database = Setting::new(p.source_text.clone());
    job.target.database = Setting::new(p.target_text.clone());
    // The job is bound to its tenant (see `plan_setup`): the copy runs its
    // pinned plugins within its limits, on its tables and rows, as
    // `host xmat` runs a tenant's job.
    let plugins = tenants.copy_setup(&a.setup.opts, &job)?;
    let opts = Options {
        jobs: usize::from(a.table_jobs),
        plugins,
        snapshot: Snapshot::Import(snapshot),
        allow_uniqueness_loss: a.setup.allow_uniqueness_loss,
        ..Options::default()
    };
    tracing::info!(
        "copying {} -> {} (schema {} -> {}) from the slot's snapshot at {}",
        p.source,
        p.target,
        job.source.schema,
        job.target.schema,
        slot.consistent_point
    );
    let progress = Progress::new(!a.setup.json);
    let copied = async {
        xmat::prepare(&job, &opts)
            .await?
            .execute(progress.clone())
            .await
    }
    .await;
    progress.stop();
    // The snapshot is no longer needed: let the slot's connection go.
    drop(slot.holder);
    let report = copied.context("initial copy")?;
    p.dir.write_initial_copy(&InitialCopy::Done {
        seconds: report.seconds,
        rows_written: report.rows_written,
    })?;
    tracing::info!(
        "initial copy: {} tables, {} rows written in {:.2}s",
        report.tables.len(),
        report.rows_written,
        report.seconds
    );
    Ok(report)
}

/// Undoes a clone whose copy failed; returns what could not be removed.
async fn remove(p: &super::plan::Planned, slot: &str, origin: &str) -> Vec<String> {
    let mut left = Vec::new();
    if let Err(e) = setup::drop_slot_quietly(&p.source, slot).await {
        left.push(format!("slot {slot}: {e}"));
    }
    if let Err(e) = setup::drop_origin(&p.target, origin).await {
        left.push(format!("origin {origin}: {e}"));
    }
    if let Err(e) = p.dir.remove_all() {
        left.push(e.to_string());
    }
    left
}
