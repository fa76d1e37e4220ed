//! What pgstac needs around its files: once a migration has committed, the
//! maintenance its files queued (`pgstac.query_queue`: partition statistics
//! and constraints) is run, as `pypgstac migrate` does.

use tokio_postgres::Client;

/// Runs pgstac's queued statements until the queue is empty or a round
/// makes no progress. Returns how many were waiting at the start. A
/// statement that fails stays in pgstac's queue history; the migration
/// itself has committed, so that is reported, not raised.
pub async fn drain_queue(client: &Client) -> Result<u64, tokio_postgres::Error> {
    let waiting = queued(client).await?;
    if waiting == 0 {
        return Ok(0);
    }
    tracing::info!("running {waiting} maintenance statements pgstac queued");
    // run_queued_queries is a procedure that COMMITs per statement: it must
    // run outside a transaction, with pgstac on the search path.
    client
        .batch_execute("SET search_path TO pgstac, public")
        .await?;
    let mut before = (waiting, attempts(client).await?);
    loop {
        client
            .batch_execute("CALL pgstac.run_queued_queries()")
            .await?;
        let now = (queued(client).await?, attempts(client).await?);
        if now.0 == 0 || now == before {
            if now.0 > 0 {
                tracing::warn!(
                    "{} statements are still in pgstac.query_queue; run `pypgstac runqueue` once their cause is fixed",
                    now.0
                );
            }
            break;
        }
        before = now;
    }
    client.batch_execute("RESET search_path").await?;
    Ok(waiting)
}

async fn queued(client: &Client) -> Result<u64, tokio_postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('pgstac.query_queue') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let n: i64 = client
        .query_one("SELECT count(*) FROM pgstac.query_queue", &[])
        .await?
        .get(0);
    Ok(n as u64)
}

async fn attempts(client: &Client) -> Result<i64, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT coalesce(sum(attempts), 0)::bigint FROM pgstac.query_queue",
            &[],
        )
        .await?
        .get(0))
}
