//! `host version`: the database's schema version, or the binary's.

use anyhow::{Context, bail};

use super::Status;
use super::migrate::migration_set;
use crate::cli::VersionArgs;
use crate::migrate::current_version;

/// Runs the command.
pub async fn run(args: VersionArgs) -> anyhow::Result<Status> {
    let set = migration_set(&args.set)?;
    if args.binary {
        match set.latest() {
            Some(v) => println!("{v}"),
            None => bail!("the {} migration set has no files", set.name),
        }
        return Ok(Status::Success);
    }
    let dsn = args.conn.dsn()?;
    let mut client = dsn.connect().await?;
    let version = current_version(&mut client, &set)
        .await
        .with_context(|| format!("reading the {} version of {dsn}", set.name))?;
    match version {
        Some(v) => {
            println!("{v}");
            Ok(Status::Success)
        }
        None => bail!(
            "{dsn} has no {} schema; run `host migrate` to install it",
            set.name
        ),
    }
}
