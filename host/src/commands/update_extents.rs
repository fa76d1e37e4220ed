//! `host update-extents`: recompute collection extents from their items —
//! the queued ones (what `update_extents = deferred` loads leave), or those named.

use anyhow::Context;

use super::Status;
use crate::cli::UpdateExtentsArgs;
use crate::stac::store::check_schema;

/// Runs the command.
pub async fn run(args: UpdateExtentsArgs) -> anyhow::Result<Status> {
    let dsn = args.conn.dsn()?;
    let mut client = dsn.connect().await?;
    check_schema(&mut client).await?;
    let context = || format!("updating extents in {dsn}");
    let (n, what) = if args.all || !args.collections.is_empty() {
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE host.update_extent(c)) \
                 FROM (SELECT c FROM unnest(CASE WHEN $1 THEN ARRAY(SELECT id FROM host.collections) \
                                           ELSE $2::text[] END) c ORDER BY c) s",
                &[&args.all, &args.collections],
            )
            .await
            .map_err(|e| anyhow::anyhow!(crate::db::describe(&e)))
            .with_context(context)?;
        (row.get::<_, i64>(0), "")
    } else {
        let row = client
            .query_one("SELECT host.drain_extent_queue()", &[])
            .await
            .map_err(|e| anyhow::anyhow!(crate::db::describe(&e)))
            .with_context(context)?;
        (i64::from(row.get::<_, i32>(0)), " queued")
    };
    println!("updated the extents of {n}{what} collection(s)");
    Ok(Status::Success)
}
