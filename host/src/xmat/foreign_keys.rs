//! Adding one foreign key, which validates every referencing row: on big
//! tables most of the work after the copy. When each key runs is
//! [`super::schedule`]'s business.

use super::error::ForeignKeyError;
use super::jobs::Subset;
use super::plan::{ForeignKey, Plan};
use super::sql::{Conn, StatementError, ident};

/// Both sides of a foreign key at least this big: validate it with a merge join.
const MERGE_JOIN_ROWS: u64 = 100_000;

/// SQLSTATE `foreign_key_violation`.
const FOREIGN_KEY_VIOLATION: &str = "23503";

/// Adds a foreign key (the connection's `search_path` is the build schema:
/// the key's SQL names the referenced table unqualified). PostgreSQL checks
/// with one anti join whose plan it picks without statistics (the tables
/// are new): for big tables that is a hash join probing a table far bigger
/// than the CPU caches at random, 2-3× slower than sorting the referencing
/// keys and walking the referenced key's index (measured: 1.5 s against
/// 0.55 s for 1M rows referencing 500k). Small tables keep the planner's
/// choice (a nested loop is best for a few rows).
pub async fn add(
    conn: &Conn,
    fk: &ForeignKey,
    referencing: u64,
    referenced: u64,
) -> Result<(), StatementError> {
    if referencing < MERGE_JOIN_ROWS || referenced < MERGE_JOIN_ROWS {
        return conn.exec(&fk.sql).await;
    }
    conn.exec("BEGIN; SET LOCAL enable_hashjoin = off; SET LOCAL enable_nestloop = off")
        .await?;
    match conn.exec(&fk.sql).await {
        Ok(()) => conn.exec("COMMIT").await,
        Err(e) => {
            let _ = conn.exec("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Turns a failed [`add`] into what the user needs: for rows that reference
/// rows that were not copied, how many there are (counted in the new
/// target), the server's example, and the job setting that prevents it.
pub async fn explain(
    conn: &Conn,
    plan: &Plan,
    fk: &ForeignKey,
    source: StatementError,
) -> ForeignKeyError {
    if source.code.as_deref() != Some(FOREIGN_KEY_VIOLATION) {
        return ForeignKeyError::Statement {
            key: fk.name.clone(),
            source,
        };
    }
    let child = &plan.tables[fk.from];
    let parent = &plan.tables[fk.to];
    let on: Vec<String> = fk
        .columns
        .iter()
        .zip(&fk.ref_columns)
        .map(|(c, r)| format!("p.{} = c.{}", ident(r), ident(c)))
        .collect();
    // MATCH SIMPLE (the default) skips a row with any NULL in the key.
    let not_null: Vec<String> = fk
        .columns
        .iter()
        .map(|c| format!("c.{} IS NOT NULL", ident(c)))
        .collect();
    let count = format!(
        "SELECT count(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})",
        child.target,
        not_null.join(" AND "),
        parent.target,
        on.join(" AND ")
    );
    let rows = match conn.query_one(&count, &[]).await {
        Ok(row) => u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        Err(e) => {
            tracing::debug!("counting the dangling rows of {}: {e}", fk.name);
            0
        }
    };
    ForeignKeyError::Dangling {
        key: fk.name.clone(),
        table: child.name.clone(),
        parent: parent.name.clone(),
        rows,
        detail: source
            .detail
            .clone()
            .unwrap_or_else(|| source.reason.clone()),
        suggest_follow: plan.subset == Subset::Off,
        source,
    }
}
