//! Cross-database materialisation: copy tables from a source schema into a
//! target schema (another database, or the same one), filtered with `where`,
//! reshaped with `select`, and streamed through row plugins.
//!
//! A run of one job:
//! 1. [`run::prepare`]: one `REPEATABLE READ` transaction on the source
//!    exports a snapshot and reads the [`catalog`]; the [`plan`] says what to
//!    create and the exact SELECT per table (see [`select`]), and each SELECT
//!    is checked by the server before anything is written.
//! 2. [`run::execute`]: the new target is built in a schema of its own
//!    ([`swap`]): types, sequences and tables first; then worker pairs of
//!    connections (`--jobs`) each import the snapshot and stream tables
//!    ([`copy`]), building each table's keys, indexes and checks right after
//!    its data; each foreign key is added as soon as both its tables are
//!    loaded (`schedule`); then sequence values; then one transaction swaps
//!    the new schema in. Any failure drops the new schema instead.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use host::xmat::{jobs::JobFile, run};
//! let file = JobFile::load("xmat.toml".as_ref())?;
//! for job in file.matching("export:*") {
//!     let prepared = run::prepare(job, &run::Options::default()).await?;
//!     println!("{:#?}", prepared.plan);
//! }
//! # Ok(()) }
//! ```

pub mod catalog;
pub mod copy;
pub mod ddl;
mod foreign_keys;
pub mod jobs;
pub mod node;
pub mod plan;
mod post;
pub mod run;
pub mod same;
mod schedule;
pub mod select;
pub mod sql;
pub mod swap;

pub use jobs::{Job, JobFile, JobsError};
pub use plan::{Plan, TablePlan};
pub use run::{JobReport, Observer, Options, Prepared};

/// A job that could not run, naming what the user needs to find the cause.
#[derive(Debug, thiserror::Error)]
pub enum XmatError {
    /// Connecting, reading the catalog, or planning.
    #[error("job {job}: {message}")]
    Job { job: String, message: String },
    /// One table (its SELECT, its COPY, its indexes).
    #[error("job {job}, table {table}: {message}")]
    Table {
        job: String,
        table: String,
        message: String,
    },
    /// A plugin on one table.
    #[error("job {job}, table {table}, plugin {plugin}: {message}")]
    Plugin {
        job: String,
        table: String,
        plugin: String,
        message: String,
    },
}

impl XmatError {
    pub(crate) fn job(job: &str, message: impl std::fmt::Display) -> XmatError {
        XmatError::Job {
            job: job.to_string(),
            message: message.to_string(),
        }
    }

    pub(crate) fn table(job: &str, table: &str, message: impl std::fmt::Display) -> XmatError {
        XmatError::Table {
            job: job.to_string(),
            table: table.to_string(),
            message: message.to_string(),
        }
    }
}
