//! Why a job failed: one type per kind of failure, each keeping its cause
//! (the server's error with its SQLSTATE, the plugin's, the copy's) and
//! naming what a user needs to find it: the job, the table, the plugin, the key.

use super::copy::CopyError;
use super::jobs::{PluginRefError, UnsetVariable};
use super::plan::PlanError;
use super::same::Sameness;
use super::sql::StatementError;
use super::swap::SwapError;
use super::unique::UniqueRisks;
use crate::db::ConnectError;
use crate::plugin::PluginError;

/// A job that could not run.
#[derive(Debug, thiserror::Error)]
#[error("job {job}: {failure}")]
pub struct XmatError {
    pub job: String,
    /// Boxed: errors travel through every `?` of a run, and some failures are large.
    pub failure: Box<Failure>,
}

impl XmatError {
    pub(crate) fn new(job: &str, failure: impl Into<Failure>) -> XmatError {
        XmatError {
            job: job.to_string(),
            failure: Box::new(failure.into()),
        }
    }

    /// A table that stopped only because another one failed first.
    pub fn is_cancel(&self) -> bool {
        matches!(
            *self.failure,
            Failure::Table {
                source: TableError::Copy(CopyError::Cancelled),
                ..
            }
        )
    }
}

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The connection string is `env:NAME` and the variable is not set.
    #[error("{side}: {source}")]
    Unset { side: Side, source: UnsetVariable },
    /// A connection string that does not parse, or a server that cannot be reached.
    #[error("{side}: {source}")]
    Connect { side: Side, source: ConnectError },
    /// The target is the source schema itself, however the job reached it.
    #[error(
        "source and target are the same schema {}: {}; it would replace itself (nothing was written)",
        crate::terminal::Shown(.schema),
        match .how {
            Sameness::StandbyOfTarget(id) => format!(
                "the source is a standby of the target's cluster (system identifier {id}), so the \
                 target's changes replace its data too"
            ),
            _ => format!(
                "both reach database {} on one server (the target's server sees the source's session)",
                crate::terminal::Shown(.database)
            ),
        }
    )]
    SameSchema {
        database: String,
        schema: String,
        how: Sameness,
    },
    #[error("source schema {schema} does not exist in {database}")]
    NoSourceSchema { schema: String, database: String },
    /// The job does not fit the source's catalog.
    #[error("{0}")]
    Plan(#[from] PlanError),
    /// A statement that belongs to no one table (snapshot, catalog, types, sequences).
    #[error("{side}: {source}")]
    Statement { side: Side, source: StatementError },
    #[error("table {table}: {source}")]
    Table { table: String, source: TableError },
    /// A plugin entry that cannot be loaded as written.
    #[error("table {table}, plugin {plugin}: {source}")]
    PluginEntry {
        table: String,
        plugin: String,
        source: PluginRefError,
    },
    /// Loading a plugin, or its refusal of the table.
    #[error("table {table}: {source}")]
    Plugin { table: String, source: PluginError },
    #[error("table {table}: {source}")]
    ForeignKey {
        table: String,
        source: ForeignKeyError,
    },
    /// Transforms on unique keys that the job did not accept.
    #[error("{0}")]
    Unique(UniqueRisks),
    /// Preparing or swapping in the target schema.
    #[error("{0}")]
    Swap(#[from] SwapError),
    #[error("a worker stopped: {0}")]
    Worker(String),
}

/// What went wrong with one table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The server refused the table's SELECT (checked before anything is written).
    #[error("{0}")]
    Select(StatementError),
    #[error("{0}")]
    Copy(CopyError),
    /// Its transaction, or a key, index or check built after its data.
    #[error("{0}")]
    Statement(StatementError),
    /// Its line could not be written to the audit log: the run stops (an
    /// operator who asked for an audit must not get an unaudited copy).
    #[error("{0}")]
    Audit(crate::audit::AuditError),
    /// Its followed keys could not be read or tested.
    #[error("{0}")]
    Follow(super::follow::KeysError),
}

/// A foreign key that could not be added.
#[derive(Debug, thiserror::Error)]
pub enum ForeignKeyError {
    /// Rows reference rows that were not copied.
    #[error(
        "foreign key {key}: {rows} row(s) of {table} reference {parent} rows that were not copied ({detail}){}",
        if *suggest_follow {
            "; to copy only the rows whose referenced rows are copied, add `subset = \"follow\"` to the job"
        } else {
            ""
        }
    )]
    Dangling {
        key: String,
        table: String,
        parent: String,
        /// How many rows of `table` dangle.
        rows: u64,
        /// The server's example (`Key (user_id)=(42) is not present in table "users".`).
        detail: String,
        /// The job copies without `subset`, which would have prevented it.
        suggest_follow: bool,
        source: StatementError,
    },
    #[error("foreign key {key}: {source}")]
    Statement { key: String, source: StatementError },
}
