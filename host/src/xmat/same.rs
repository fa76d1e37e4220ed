//! Whether a job's source and target are one database, decided from what the
//! servers say about themselves, never from how the job names them:
//! `127.0.0.1` and `localhost`, two names of one host, a forwarded port or a
//! pooler in between all reach the same database.
//!
//! A session on the source takes an advisory lock with a random key; if the
//! target's server lists that lock in its `pg_locks`, held in the database
//! the target connection is in, both connections reached one database. A
//! source that is a hot standby with the target's system identifier
//! (`pg_control_system()`) is a replica of the target's cluster: the target's
//! changes reach it, so it counts as the same too. A clone restored from a
//! backup has the identifier but not the lock: another database.

use std::hash::{BuildHasher, RandomState};

use tokio_postgres::Client;

use super::error::{Failure, Side};
use super::sql::StatementError;
use crate::db::Dsn;

/// How the source and target are related.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sameness {
    /// Different databases.
    Different,
    /// The target's server sees the source's session in its own database.
    SameDatabase,
    /// The source is a standby of the cluster with this system identifier,
    /// which the target belongs to.
    StandbyOfTarget(i64),
}

/// Compares the databases `source` and `target` reach. Opens a short
/// connection to each (writing nothing) and closes them.
pub async fn compare(source: &Dsn, target: &Dsn) -> Result<Sameness, Failure> {
    let connect = |side| move |source| Failure::Connect { side, source };
    let statement = |side, sql: &'static str| {
        move |e: tokio_postgres::Error| Failure::Statement {
            side,
            source: StatementError::new(sql, &e),
        }
    };
    let src = source.connect().await.map_err(connect(Side::Source))?;
    let tgt = target.connect().await.map_err(connect(Side::Target))?;
    // Two random non-negative keys: no other session holds this lock.
    let key = RandomState::new().hash_one(std::process::id());
    let (k1, k2) = ((key >> 33) as i32, (key & 0x7fff_ffff) as i32);
    // Held until `src` closes, at the end of this function.
    const LOCK: &str = "SELECT pg_is_in_recovery(), pg_try_advisory_lock_shared($1, $2)";
    let in_recovery: bool = src
        .query_one(LOCK, &[&k1, &k2])
        .await
        .map_err(statement(Side::Source, LOCK))?
        .get(0);
    const SEEN: &str = "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' \
         AND classid = $1::int8::oid AND objid = $2::int8::oid AND objsubid = 2 \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))";
    let seen: bool = tgt
        .query_one(SEEN, &[&i64::from(k1), &i64::from(k2)])
        .await
        .map_err(statement(Side::Target, SEEN))?
        .get(0);
    if seen {
        return Ok(Sameness::SameDatabase);
    }
    if in_recovery {
        let (a, b) = (system_identifier(&src).await, system_identifier(&tgt).await);
        if let (Some(a), Some(b)) = (a, b)
            && a == b
        {
            return Ok(Sameness::StandbyOfTarget(a));
        }
    }
    Ok(Sameness::Different)
}

/// The cluster's system identifier, when the role may read it.
async fn system_identifier(client: &Client) -> Option<i64> {
    client
        .query_one("SELECT system_identifier FROM pg_control_system()", &[])
        .await
        .ok()
        .map(|r| r.get(0))
}
