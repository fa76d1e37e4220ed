//! Schema migrations: sets of SQL files named after the versions they
//! produce, the shortest chain of files from a database's version to a
//! target, and running that chain in one locked transaction.
//!
//! ```no_run
//! # async fn demo(client: &mut tokio_postgres::Client) -> Result<(), host::migrate::MigrateError> {
//! use host::migrate::{MigrationSet, Request, migrate};
//! let set = MigrationSet::builtin();
//! let report = migrate(client, &set, &Request::default(), |plan| {
//!     println!("{} step(s) to {}", plan.steps.len(), plan.to)
//! })
//! .await?;
//! assert!(report.applied || report.steps.is_empty());
//! # Ok(()) }
//! ```
//!
//! Another set (pgstac from pypgstac's wheel, say) plugs in as a
//! [`MigrationSet`] with its own [`Naming`] and a [`Ledger`] describing where
//! it keeps its version.

mod apply;
mod embedded;
mod ledger;
mod pgstac;
mod set;
mod version;

pub use apply::{Report, Request, Step, current_version, migrate};
pub use ledger::{Applied, Ledger};
pub use pgstac::drain_queue as drain_pgstac_queue;
pub use set::{Flavor, MigrationFile, MigrationSet, Naming, Plan};
pub use version::Version;

/// Why a migration was refused or failed. Nothing was changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{dir}: {reason}")]
    Dir { dir: String, reason: String },
    #[error("migration file {file}: {reason} (expected {expected})")]
    BadName {
        file: String,
        expected: String,
        reason: String,
    },
    #[error("migration files {a} and {b} make the same step")]
    Duplicate { a: String, b: String },
    #[error(
        "'{0}' cannot name a migration set: its prefix is also its schema name, so it must be a lower-case identifier"
    )]
    Prefix(String),
    #[error("refusing to touch schema {schema}: {reason}, so it was not created by `host migrate`")]
    Foreign { schema: String, reason: String },
    #[error(
        "the database's {set} schema is at version {db}, newer than {binary}, the newest this binary knows; use a newer host (or --dir with newer files)"
    )]
    Newer {
        set: String,
        db: String,
        binary: String,
    },
    #[error("no {set} migration file produces version {to} (known versions: {known})")]
    UnknownTarget {
        set: String,
        to: String,
        known: String,
    },
    #[error("no chain of {set} migration files leads from {} to {to}", from.as_deref().unwrap_or("an empty database"))]
    NoPath {
        set: String,
        from: Option<String>,
        to: String,
    },
    #[error(
        "{file} was changed after it was applied (version {version}: SHA-256 {recorded} then, {now} now); restore the file, or write a new migration instead of editing an applied one"
    )]
    Changed {
        file: String,
        version: String,
        recorded: String,
        now: String,
    },
    #[error("{file}{}: {message}; nothing was changed", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Sql {
        file: String,
        line: Option<usize>,
        message: String,
    },
    #[error("after migrating, the {set} schema reports version {} instead of {to}; rolled back", found.as_deref().unwrap_or("none"))]
    Unrecorded {
        set: String,
        to: String,
        found: Option<String>,
    },
    #[error("{}", crate::db::describe(.0))]
    Db(#[from] tokio_postgres::Error),
}

impl MigrateError {
    fn sql(file: &str, sql: &str, e: &tokio_postgres::Error) -> MigrateError {
        let mut message = crate::db::describe(e);
        if let Some(w) = e.as_db_error().and_then(|d| d.where_()) {
            message += &format!(" (in {w})");
        }
        MigrateError::Sql {
            file: file.to_string(),
            line: crate::db::error_line(e, sql),
            message,
        }
    }
}
