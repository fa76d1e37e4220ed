//! `host pgready`: wait until the database accepts connections (for scripts
//! that start PostgreSQL and then use it).

use anyhow::Context;

use super::Status;
use crate::cli::PgreadyArgs;

/// Runs the command.
pub async fn run(args: PgreadyArgs) -> anyhow::Result<Status> {
    let dsn = args.conn.dsn()?;
    let client = match dsn.wait_ready(args.timeout).await {
        Ok(c) => c,
        Err(e) if e.is_transient() => {
            return Err(e).with_context(|| format!("not ready after {:?}", args.timeout));
        }
        // Waiting would not help (a refused login, a bad certificate): say so now.
        Err(e) => return Err(e.into()),
    };
    // Connecting is not always enough (a server in recovery refuses queries).
    client.simple_query("SELECT 1").await.map_err(|e| {
        anyhow::anyhow!(
            "{dsn} accepts connections but not queries: {}",
            crate::db::describe(&e)
        )
    })?;
    println!("{dsn}: accepting connections");
    Ok(Status::Success)
}
