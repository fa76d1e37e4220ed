//! `host version`: the version of the database's catalog (host's schema or
//! pgstac), or of this binary.

use anyhow::{Context, bail};
use serde_json::json;

use super::Status;
use super::migrate::migration_set;
use crate::catalog::{CatalogChoice, CatalogKind, Installed, pgstac};
use crate::cli::VersionArgs;
use crate::migrate::current_version;

/// Runs the command.
pub async fn run(args: VersionArgs) -> anyhow::Result<Status> {
    let choice = args.catalog.catalog;
    if args.binary {
        return binary(&args);
    }
    let dsn = args.conn.dsn()?;
    let mut client = dsn.connect().await?;
    if args.set.dir.is_some() {
        // Another migration set: its own ledger says.
        let set = migration_set(&args.set)?;
        let version = current_version(&mut client, &set)
            .await
            .with_context(|| format!("reading the {} version of {dsn}", set.name))?;
        let Some(v) = version else {
            bail!("{dsn} has no {} schema", set.name);
        };
        print(&args, &set.name, v.as_str(), None);
        return Ok(Status::Success);
    }
    let installed = Installed::read(&mut client)
        .await
        .with_context(|| format!("reading the catalogs of {dsn}"))?;
    let (kind, version) = installed
        .choose(&client, choice)
        .await
        .with_context(|| format!("reading the catalog of {dsn}"))?;
    let writable = match kind {
        CatalogKind::Host => {
            let set = crate::migrate::MigrationSet::builtin();
            set.latest().is_some_and(|l| l.as_str() == version)
        }
        CatalogKind::Pgstac => pgstac::KNOWN_VERSIONS.contains(&version),
    };
    print(&args, kind.as_str(), version, Some(writable));
    Ok(Status::Success)
}

/// `--binary`: what this binary installs or works with, without connecting.
fn binary(args: &VersionArgs) -> anyhow::Result<Status> {
    if args.set.dir.is_none() && args.catalog.catalog == CatalogChoice::Pgstac {
        if args.oldest {
            bail!("--oldest needs the set's files: give pgstac's with --dir");
        }
        // pgstac's SQL is not shipped: these are the versions host works with.
        print(args, "pgstac", &pgstac::KNOWN_VERSIONS.join(", "), None);
        return Ok(Status::Success);
    }
    let set = migration_set(&args.set)?;
    let version = if args.oldest {
        set.oldest()
    } else {
        set.latest()
    };
    match version {
        Some(v) => print(args, &set.name, v.as_str(), None),
        None => bail!("the {} migration set has no files", set.name),
    }
    Ok(Status::Success)
}

fn print(args: &VersionArgs, catalog: &str, version: &str, writable: Option<bool>) {
    if args.json {
        let mut v = json!({ "catalog": catalog, "version": version });
        if let Some(w) = writable {
            v["supported"] = json!(w);
        }
        println!("{v}");
    } else {
        println!("{version}");
    }
}
