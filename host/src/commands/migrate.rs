//! `host migrate`: bring the database's schema to a version, printing the plan.

use std::time::Instant;

use anyhow::{Context, bail};

use super::Status;
use crate::catalog::Installed;
use crate::cli::{MigrateArgs, SetArgs};
use crate::migrate::{MigrationSet, Report, Request, migrate};

/// The migration set the flags choose.
pub fn migration_set(args: &SetArgs) -> anyhow::Result<MigrationSet> {
    match &args.dir {
        Some(dir) => Ok(MigrationSet::from_dir(dir, args.prefix.as_deref())?),
        None => Ok(MigrationSet::builtin()),
    }
}

/// Runs the command; `quiet` (`-q`) prints nothing but errors (and `--json`).
pub async fn run(args: MigrateArgs, quiet: bool) -> anyhow::Result<Status> {
    let set = migration_set(&args.set)?;
    let dsn = args.conn.dsn()?;
    let mut client = dsn.connect().await?;
    if args.set.dir.is_none() && !args.alongside_pgstac {
        refuse_beside_pgstac(&mut client)
            .await
            .with_context(|| format!("migrating {dsn}"))?;
    }
    let started = Instant::now();
    let json = args.json;
    let quiet = quiet && !json;
    let request = Request {
        to: args.to.clone(),
        dry_run: args.dry_run,
    };
    let report = migrate(&mut client, &set, &request, |plan| {
        if !json && !quiet {
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
    } else if report.applied && !quiet {
        println!("{}: migrated to {} in {seconds:.2}s", report.set, report.to);
    }
    Ok(Status::Success)
}

/// Installing host's schema into a database that runs pgstac makes two
/// catalogs, which is rarely meant: it needs `--alongside-pgstac`.
pub async fn refuse_beside_pgstac(client: &mut tokio_postgres::Client) -> anyhow::Result<()> {
    let installed = Installed::read(client).await?;
    if let (None, Some(pgstac)) = (&installed.host, &installed.pgstac) {
        bail!(
            "the database runs pgstac {pgstac}, and `host migrate` without --dir installs host's own \
             schema beside it (a second, empty catalog). To migrate pgstac, give pgstac's files: \
             `host migrate --dir DIR` with the `migrations` directory of the pypgstac wheel (in a \
             checkout of host: `scripts/pgstac-migrations VERSION` prints one); to install host's \
             schema anyway, add --alongside-pgstac"
        );
    }
    Ok(())
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
