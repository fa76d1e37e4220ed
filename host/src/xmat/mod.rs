//! Cross-database materialisation: copy tables from a source schema into a
//! target schema (another database, or the same one), filtered with `where`,
//! reshaped with `select`, and streamed through row plugins.
//!
//! One entry point runs a job, [`run`]; it is [`prepare`] then
//! [`Prepared::execute`], for callers that want to look at the plan first
//! (`--dry-run`) or keep the plugins and snapshot for what follows:
//! 1. [`prepare`]: one `REPEATABLE READ` transaction on the source exports
//!    a snapshot (or imports one, [`Snapshot::Import`]) and reads the
//!    [`catalog`]; the [`plan`] says what to create and the exact SELECT per
//!    table (see [`select`], and [`subset`] for `where`s that follow foreign
//!    keys); the server checks each SELECT; the plugins are loaded and shown
//!    their tables; transforms on unique keys are checked ([`unique`]).
//!    Nothing is written yet.
//! 2. [`Prepared::execute`]: the new target is built in a schema of its own
//!    ([`swap`]): types, sequences and tables first; then worker pairs of
//!    connections (`--jobs`) each import the snapshot and stream tables
//!    ([`copy`]; followed integer keys tested on the way, [`follow`]), building each table's keys, indexes and checks right after
//!    its data; each foreign key is added as soon as both its tables are
//!    loaded (`schedule`); then sequence values; then one transaction swaps
//!    the new schema in. Any failure drops the new schema instead.
//!
//! Errors are [`XmatError`]s: the job, and a [`Failure`] that names the
//! table, plugin or key and keeps its cause.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use host::xmat::{self, JobFile, Options, Quiet};
//! let file = JobFile::load("xmat.toml".as_ref())?;
//! for job in file.matching("export:*") {
//!     let prepared = xmat::prepare(job, &Options::default()).await?;
//!     for t in &prepared.plan().tables {
//!         println!("{}: {}", t.name, t.select);
//!     }
//!     let report = prepared.execute(Arc::new(Quiet)).await?;
//!     println!("{} rows", report.rows_written);
//! }
//! # Ok(()) }
//! ```

pub mod catalog;
pub mod copy;
pub mod ddl;
mod error;
mod execute;
pub mod follow;
mod foreign_keys;
pub mod glob;
pub mod jobs;
pub mod plan;
mod post;
mod prepare;
pub mod same;
mod schedule;
pub mod select;
pub mod share;
pub mod sql;
pub mod subset;
pub mod swap;
pub mod tenant;
pub mod unique;

use std::sync::Arc;

pub use error::{Failure, ForeignKeyError, Side, TableError, XmatError};
pub use execute::{JobReport, Observer, Quiet, TableReport};
pub use jobs::{Job, JobFile, JobsError};
pub use plan::{Plan, PlanError, TablePlan};
pub use prepare::{Options, PluginSetup, Plugins, Prepared, Snapshot, prepare};

/// Runs one job: [`prepare`], then [`Prepared::execute`].
pub async fn run(
    job: &Job,
    opts: &Options,
    observer: Arc<dyn Observer>,
) -> Result<JobReport, XmatError> {
    prepare(job, opts).await?.execute(observer).await
}
