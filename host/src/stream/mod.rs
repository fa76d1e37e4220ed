//! Change data capture from one PostgreSQL database to another
//! (`host stream`), through the same plugins as `host xmat`, exactly once.
//!
//! ```text
//!  source ──wal2json──▶ receive ──▶ DIR/spool (durable) ──▶ apply ──▶ target
//!   slot confirmed up to what is on disk        origin advanced in each target transaction
//! ```
//!
//! - [`setup`]: checks the source (`wal_level`, wal2json, keys), creates the
//!   logical slot (wal2json, format-version 2) and the replication origin on
//!   the target, and writes `DIR/stream.json` ([`dir`]) with the tables as
//!   they are ([`tables`]): every later change is checked against them.
//! - [`receive`]: the slot's messages into the [`spool`]; the slot is
//!   confirmed only up to what is durable there.
//! - [`apply`]: spooled transactions onto the target through the job's
//!   plugins, each source transaction atomically, with the origin's progress
//!   in the same transaction: a restart skips exactly what was applied.
//! - `follow` runs both in one process (`commands::stream`); `status`,
//!   `sentinel`, `cleanup` are in [`setup`] and [`status`].
//!
//! ## Why the replication protocol
//!
//! tokio-postgres cannot speak the replication protocol, so two ways were
//! open: the SQL functions (`pg_logical_slot_peek_changes` and
//! `pg_replication_slot_advance`) over an ordinary connection, or a client
//! for the protocol ([`replication`]). The functions decode each call from
//! the slot's restart point: while a long transaction is open every poll
//! decodes it again (and `peek` materialises its whole result server-side
//! before the first row comes back), and confirming means decoding a second
//! time in `advance`. The protocol decodes once, streams each change as it
//! is decoded (memory stays flat whatever the transaction's size), carries
//! the flushed position as feedback, and its keepalives are what keep a
//! quiet database's slot moving. The client is small (startup,
//! password/MD5/SCRAM, TLS as the rest of the host, CopyBoth), and the
//! throughput is the server's decoding speed (see `docs/benchmarks.md`).

pub mod apply;
pub mod crash;
pub mod dir;
pub mod jsonscan;
pub mod lsn;
pub mod receive;
pub mod replication;
pub mod setup;
pub mod spool;
pub mod status;
pub mod tables;
pub mod wal2json;

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

pub use dir::{StreamConfig, StreamDir};
pub use lsn::Lsn;

use crate::db::Dsn;
use crate::xmat::sql::describe;

/// Why a stream command failed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Dir(#[from] dir::DirError),
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
    #[error(transparent)]
    Replication(#[from] replication::ReplicationError),
    #[error(transparent)]
    Connect(#[from] crate::db::ConnectError),
    /// A statement on one side failed.
    #[error("{side}: {what}: {reason}")]
    Db {
        side: &'static str,
        what: String,
        reason: String,
        code: Option<String>,
    },
    /// The stream cannot run as set up (a refusal, with what to do).
    #[error("{0}")]
    Setup(String),
    /// A change that cannot be applied; apply stopped before its transaction.
    #[error(transparent)]
    Change(#[from] apply::ChangeError),
}

impl StreamError {
    /// A failed statement.
    pub fn db(side: &'static str, what: &str, e: &tokio_postgres::Error) -> StreamError {
        StreamError::Db {
            side,
            what: what.to_string(),
            reason: describe(e),
            code: e.code().map(|c| c.code().to_string()),
        }
    }
}

/// An ordinary connection, for catalog queries and apply.
pub async fn connect(
    dsn: &Dsn,
    _side: &'static str,
) -> Result<tokio_postgres::Client, StreamError> {
    Ok(dsn.connect().await?)
}

/// A request to stop (Ctrl-C), seen by every part of a running stream.
#[derive(Debug, Default)]
pub struct Stop {
    requested: AtomicBool,
    notify: Notify,
}

impl Stop {
    /// Asks everything to stop at the next safe point.
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Resolves once a stop is requested (cancel-safe).
    pub async fn wait(&self) {
        loop {
            let n = self.notify.notified();
            if self.is_requested() {
                return;
            }
            n.await;
        }
    }
}

/// The output plugin's options: format-version 2 with what the spool and
/// apply rely on (see [`wal2json`]), only the source schema's tables, only
/// our DDL messages.
pub fn slot_options(cfg: &StreamConfig) -> Vec<(&'static str, String)> {
    let mut opts = vec![
        ("format-version", "2".to_string()),
        ("include-xids", "1".to_string()),
        ("include-timestamp", "1".to_string()),
        ("include-lsn", "1".to_string()),
        ("include-type-oids", "1".to_string()),
        ("include-types", "0".to_string()),
        (
            "add-tables",
            format!("{}.*", wal2json_escape(&cfg.source_schema)),
        ),
        ("add-msg-prefixes", apply::shape::DDL_PREFIX.to_string()),
    ];
    if cfg.numeric_as_string {
        opts.push(("numeric-data-types-as-string", "1".to_string()));
    }
    opts
}

/// wal2json's table lists split on `,`, `.` and spaces; a backslash escapes.
fn wal2json_escape(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    for c in name.chars() {
        if matches!(c, ',' | '.' | '\\' | '*') || c.is_whitespace() {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_names_are_escaped_for_wal2json() {
        assert_eq!(super::wal2json_escape("public"), "public");
        assert_eq!(super::wal2json_escape("a.b, c*\\"), "a\\.b\\,\\ c\\*\\\\");
    }
}
