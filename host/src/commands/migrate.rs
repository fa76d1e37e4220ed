//! `host migrate`: bring the database's schema to a version, printing the plan.

use std::time::Instant;

use anyhow::Context;

use super::Status;
use crate::cli::{MigrateArgs, SetArgs};
use crate::migrate::{MigrationSet, Report, Request, migrate};

/// The migration set the flags choose.
pub fn migration_set(args: &SetArgs) -> anyhow::Result<MigrationSet> {
    match &args.dir {
        Some(dir) => Ok(MigrationSet::from_dir(dir, args.prefix.as_deref())?),
        None => Ok(MigrationSet::builtin()),
    }
}

/// Runs the command.
pub async fn run(args: MigrateArgs) -> anyhow::Result<Status> {
    let set = migration_set(&args.set)?;
    let dsn = args.conn.dsn()?;
    let mut client = dsn.connect().await?;
    let started = Instant::now();
    let json = args.json;
    let request = Request {
        to: args.to.clone(),
        dry_run: args.dry_run,
    };
    let report = migrate(&mut client, &set, &request, |plan| {
        if !json {
            print_plan(plan);
        }
    })
    .await
    .with_context(|| format!("migrating {dsn}"))?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        let mut value = serde_json::to_value(&report)?;
        value["seconds"] = serde_json::json!(seconds);
        println!("{value}");
    } else if report.applied {
        println!("{}: migrated to {} in {seconds:.2}s", report.set, report.to);
    }
    Ok(Status::Success)
}

fn print_plan(r: &Report) {
    let from = r.from.as_deref().unwrap_or("nothing");
    if r.steps.is_empty() {
        println!("{}: already at {}, nothing to do", r.set, r.to);
        return;
    }
    let n = r.steps.len();
    let note = if r.dry_run {
        " (dry run: nothing will be applied)"
    } else {
        ""
    };
    println!(
        "{}: {from} -> {}, {n} step{}{note}",
        r.set,
        r.to,
        if n == 1 { "" } else { "s" }
    );
    for s in &r.steps {
        let what = match &s.from {
            Some(f) => format!("{f} -> {}", s.to),
            None => format!("install {}", s.to),
        };
        println!(
            "  {}  {} {what}  sha256:{}",
            s.file,
            s.kind,
            &s.sha256[..12]
        );
    }
}
