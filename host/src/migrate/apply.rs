//! Running a plan against a database: one transaction, under an advisory
//! lock that ends with it (so no early return can leave it held).

use serde::Serialize;
use tokio_postgres::Client;

use super::ledger::{Applied, current};
use super::{Flavor, MigrateError, MigrationSet, Plan, Version};

/// What `migrate` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The version to reach (default: the set's latest).
    pub to: Option<Version>,
    /// Print the plan, change nothing.
    pub dry_run: bool,
}

/// What `migrate` did, or would do with `dry_run`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The set's name (its file prefix).
    pub set: String,
    /// The database's version before (`None`: not installed).
    pub from: Option<String>,
    /// The target version.
    pub to: String,
    /// The files run (or to run), in order.
    pub steps: Vec<Step>,
    /// Whether the steps were applied and committed.
    pub applied: bool,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// One file of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub file: String,
    pub kind: &'static str,
    pub from: Option<String>,
    pub to: String,
    pub sha256: String,
}

impl Report {
    fn new(set: &MigrationSet, plan: &Plan<'_>, dry_run: bool) -> Report {
        Report {
            set: set.name.clone(),
            from: plan.from.as_ref().map(|v| v.to_string()),
            to: plan.to.to_string(),
            steps: plan
                .steps
                .iter()
                .map(|f| Step {
                    file: f.name.clone(),
                    kind: f.kind(),
                    from: f.from.as_ref().map(|v| v.to_string()),
                    to: f.to.to_string(),
                    sha256: f.sha256.clone(),
                })
                .collect(),
            applied: false,
            dry_run,
        }
    }
}

/// Key of the advisory lock `migrate` takes (with a hash of the set's name).
const LOCK_KEY: i32 = 0x686f_7374; // "host"

/// Brings the database to the requested version of `set`. `on_plan` sees the
/// plan before anything runs (to print it).
pub async fn migrate(
    client: &mut Client,
    set: &MigrationSet,
    request: &Request,
    on_plan: impl FnOnce(&Report),
) -> Result<Report, MigrateError> {
    if set.flavor == Flavor::Pgstac {
        // pgstac's files talk a lot ("role ... already exists, skipping"); as
        // with pypgstac, only warnings and errors are shown.
        client
            .batch_execute("SET client_min_messages TO warning")
            .await?;
    }
    let tx = client.transaction().await?;
    // Transaction-level: released by commit, rollback, or the connection
    // closing, whatever path we leave by.
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&LOCK_KEY, &format!("migrate {}", set.name)],
    )
    .await?;
    let applied = set.ledger.read(&tx).await?;
    if let Some(applied) = &applied {
        check_unchanged(set, applied)?;
    }
    let from = applied.as_deref().and_then(current).cloned();
    let latest = set.latest().ok_or_else(|| MigrateError::Dir {
        dir: set.name.clone(),
        reason: "the set has no files".into(),
    })?;
    let target = match &request.to {
        Some(t) if !set.knows(t) => {
            return Err(MigrateError::UnknownTarget {
                set: set.name.clone(),
                to: t.to_string(),
                known: known_versions(set),
            });
        }
        Some(t) => t.clone(),
        None => {
            if let Some(db) = &from
                && db > latest
            {
                return Err(MigrateError::Newer {
                    set: set.name.clone(),
                    db: db.to_string(),
                    binary: latest.to_string(),
                });
            }
            latest.clone()
        }
    };
    let plan = set
        .plan(from.as_ref(), &target)
        .ok_or_else(|| MigrateError::NoPath {
            set: set.name.clone(),
            from: from.as_ref().map(|v| v.to_string()),
            to: target.to_string(),
        })?;
    let mut report = Report::new(set, &plan, request.dry_run);
    on_plan(&report);
    if plan.steps.is_empty() || request.dry_run {
        tx.rollback().await?;
        return Ok(report);
    }
    for step in &plan.steps {
        tracing::debug!(file = %step.name, "applying");
        let sql = step.body();
        tx.batch_execute(&sql)
            .await
            .map_err(|e| MigrateError::sql(&step.name, &sql, &e))?;
        if let Some(record) = &set.ledger.record_sql {
            tx.execute(
                record.as_str(),
                &[&step.to.as_str(), &step.sha256, &step.kind(), &step.name],
            )
            .await?;
        }
    }
    // The set must now say it is at the target (sets that record their own
    // version could get that wrong).
    let now = set.ledger.read(&tx).await?;
    let now = now.as_deref().and_then(current).cloned();
    if now.as_ref() != Some(&target) {
        return Err(MigrateError::Unrecorded {
            set: set.name.clone(),
            to: target.to_string(),
            found: now.map(|v| v.to_string()),
        });
    }
    tx.commit().await?;
    report.applied = true;
    if set.flavor == Flavor::Pgstac {
        // Committed already: a statement that cannot run is pgstac's queue
        // history's to report, not a reason to call the migration failed.
        if let Err(e) = super::pgstac::drain_queue(client).await {
            tracing::warn!(
                "pgstac migrated to {target}, but running its queued maintenance failed: {}; run `pypgstac runqueue`",
                crate::db::describe(&e)
            );
        }
    }
    Ok(report)
}

/// The database's version of `set`, `None` when it is not installed.
pub async fn current_version(
    client: &mut Client,
    set: &MigrationSet,
) -> Result<Option<Version>, MigrateError> {
    let tx = client.transaction().await?;
    let applied = set.ledger.read(&tx).await?;
    tx.rollback().await?;
    Ok(applied.as_deref().and_then(current).cloned())
}

/// Refuses when a file that was applied has changed since.
fn check_unchanged(set: &MigrationSet, applied: &[Applied]) -> Result<(), MigrateError> {
    for a in applied {
        let (Some(name), Some(recorded)) = (&a.file, &a.sha256) else {
            continue;
        };
        if let Some(file) = set.file(name)
            && file.sha256 != *recorded
        {
            return Err(MigrateError::Changed {
                file: name.clone(),
                version: a.version.to_string(),
                recorded: recorded.clone(),
                now: file.sha256.clone(),
            });
        }
    }
    Ok(())
}

fn known_versions(set: &MigrationSet) -> String {
    let mut v: Vec<&Version> = set.files.iter().map(|f| &f.to).collect();
    v.sort();
    v.dedup();
    v.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
}
