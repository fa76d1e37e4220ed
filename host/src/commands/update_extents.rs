//! `host update-extents`: recompute collection extents from their items —
//! what is queued (host's deferred collections, or pgstac's query queue),
//! the collections named, or all.

use anyhow::Context;

use super::{Status, open_catalog};
use crate::catalog::{CatalogKind, ExtentSelection};
use crate::cli::UpdateExtentsArgs;

/// Runs the command.
pub async fn run(args: UpdateExtentsArgs) -> anyhow::Result<Status> {
    let dsn = args.conn.dsn()?;
    let (mut client, catalog) = open_catalog(&args.conn, args.catalog.catalog).await?;
    let which = if args.all {
        ExtentSelection::All
    } else if !args.collections.is_empty() {
        ExtentSelection::Collections(args.collections.clone())
    } else {
        ExtentSelection::Queued
    };
    let done = catalog
        .update_extents(&mut client, &which)
        .await
        .with_context(|| format!("updating extents in {dsn}"))?;
    if args.json {
        let mut v = serde_json::to_value(&done)?;
        v["catalog"] = serde_json::json!(catalog.kind());
        println!("{v}");
        return Ok(Status::Success);
    }
    match (&which, catalog.kind(), done.statements) {
        (ExtentSelection::Queued, CatalogKind::Pgstac, Some(n)) => {
            println!("ran {n} statement(s) pgstac had queued")
        }
        (ExtentSelection::Queued, _, _) => println!(
            "updated the extents of {} queued collection(s)",
            done.collections
        ),
        _ => println!("updated the extents of {} collection(s)", done.collections),
    }
    Ok(Status::Success)
}
