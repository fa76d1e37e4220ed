//! Loading STAC collections and items: sources are read and split into
//! records on one thread, run through plugins and validated on another, and
//! COPYed into a staging table that one statement then merges with the
//! chosen [`Method`] — all in one transaction.
//!
//! ```text
//! sources ──► reader thread ──► worker thread ──► COPY (async) ──► merge ──► commit
//!             split records     plugins, checks,    staging table    method
//!             (gzip, NDJSON,    COPY rows,          (temp)           semantics
//!              arrays, FCs)     reject file
//! ```
//!
//! Memory stays flat: a few batches are in flight at a time, whatever the input size.
//!
//! What the staging is, how rows are merged and when the transaction commits
//! is the catalog's ([`crate::catalog::LoadSession`]): into pgstac the
//! staging table is a session temp table, pgstac's partitions are prepared
//! in short transactions of their own, then one transaction merges.

mod pipeline;
mod reject;
pub mod source;
pub mod split;
mod tenants;
mod worker;

use serde::Serialize;

pub use crate::catalog::{ExtentMode, Kind, Method};
use crate::terminal::Shown;
pub use pipeline::{LoadOptions, load};
pub use source::{Records, SourceSpec};
pub use tenants::{LimitHits, TenantLane, TenantSummary};

/// Where a record came from, for messages: `items.ndjson:12`, or
/// `items.json:3 (element 5)` inside an array or FeatureCollection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub source: String,
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", Shown(&self.source), self.line)?;
        if let Some(i) = self.index {
            write!(f, " (element {i})")?;
        }
        Ok(())
    }
}

/// One record that could not be loaded: where it is, what it is, and why.
#[derive(Debug, Clone)]
pub struct RecordError {
    pub at: Origin,
    /// "item" or "collection".
    pub what: &'static str,
    pub id: Option<String>,
    /// The plugin that rejected it; `None` when it failed validation.
    pub plugin: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The id and the reason come from the data or a plugin: escaped.
        let id = self
            .id
            .as_ref()
            .map(|i| format!(" ({})", Shown(i)))
            .unwrap_or_default();
        let reason = Shown(&self.reason);
        match &self.plugin {
            None => write!(f, "{}: invalid {}{id}: {reason}", self.at, self.what),
            Some(p) => write!(
                f,
                "{}: {}{id} rejected by plugin {}: {reason}",
                self.at,
                self.what,
                Shown(p)
            ),
        }
    }
}

/// Why a load failed. The transaction was rolled back: nothing was loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("{0}")]
    Source(String),
    /// A record was invalid or a plugin rejected it (and there is no reject file).
    #[error("{0}")]
    Record(Box<RecordError>),
    #[error("{0}")]
    Plugin(#[from] crate::plugin::PluginError),
    #[error("{0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("reject file {path}: {reason}")]
    RejectFile { path: String, reason: String },
    /// A later stage stopped; the real error is reported by that stage.
    #[error("the load was cancelled")]
    Cancelled,
}

/// Everything a load did, for the summary line and `--json`.
/// `read = loaded + skipped + unchanged + dropped + rejected`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub kind: Kind,
    pub method: Method,
    /// The catalog loaded into.
    pub catalog: crate::catalog::CatalogKind,
    /// Records read from the sources.
    pub read: u64,
    /// Written to the database (inserted or replaced).
    pub loaded: u64,
    /// Not written: the id was already there (insert_ignore), or a later
    /// copy of the same id in this load replaced it.
    pub skipped: u64,
    /// Identical to what the database had (upsert): not rewritten.
    pub unchanged: u64,
    /// Dropped by a plugin (a filter said no).
    pub dropped: u64,
    /// Invalid or rejected by a plugin (written to the reject file).
    pub rejected: u64,
    /// Batches a plugin failed on (their records are among `rejected`).
    pub plugin_failures: u64,
    /// Bytes read from the sources (before decompression).
    pub bytes: u64,
    /// The collections loaded (or whose items were).
    pub collections: Vec<String>,
    pub seconds: f64,
    /// Per tenant, when several tenants of a policy shared the load.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantSummary>,
}

impl Summary {
    /// The one-line summary printed at the end.
    pub fn line(&self) -> String {
        let rate = if self.seconds > 0.0 {
            self.read as f64 / self.seconds
        } else {
            0.0
        };
        let mut s = format!(
            "{} {} read: {} loaded, {} skipped, {} unchanged, {} dropped, {} rejected",
            self.read,
            self.kind.plural(),
            self.loaded,
            self.skipped,
            self.unchanged,
            self.dropped,
            self.rejected
        );
        if self.plugin_failures > 0 {
            s += &format!(" ({} failed plugin batches)", self.plugin_failures);
        }
        s += &format!(" in {:.2}s ({rate:.0}/s", self.seconds);
        if self.bytes > 0 {
            s += &format!(", {:.1} MB", self.bytes as f64 / 1e6);
        }
        s.push(')');
        s
    }
}
