//! Why a catalog could not do what it was asked. Each error keeps its cause
//! (the database's own error, where there is one) and says what to do.

use super::{CatalogKind, Kind};
use crate::db::describe;
use crate::migrate::{MigrateError, Version};
use crate::search::SearchError;

/// Why a catalog operation failed; nothing was changed unless it says so.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "the database holds no STAC catalog (neither host's schema nor pgstac); run `host migrate` \
         (or `host migrate --dir` with pgstac's files) first"
    )]
    NoCatalog,
    #[error("the database holds no {0}{hint}", hint = match .0 {
        CatalogKind::Host => "; run `host migrate` first",
        CatalogKind::Pgstac => " (--catalog pgstac); install it with `host migrate --dir` and pgstac's files",
    })]
    NotInstalled(CatalogKind),
    #[error(
        "the database holds both host's schema ({host} collections) and pgstac ({pgstac} collections); \
         say which with --catalog host or --catalog pgstac"
    )]
    Ambiguous { host: u64, pgstac: u64 },
    #[error(
        "the database's host schema is at version {db}, but this binary needs {binary}; {}",
        if .db < .binary { "run `host migrate`" } else { "use a newer host binary" }
    )]
    HostVersion { db: Version, binary: Version },
    #[error(
        "the database runs pgstac {found}, which this binary does not know how to work with (it knows pgstac {known}); \
         migrate it with `host migrate --dir <pypgstac's migrations>` or use a host that knows {found}"
    )]
    PgstacVersion { found: String, known: String },
    #[error("collection \"{0}\" does not exist")]
    NoSuchCollection(String),
    #[error("{0}")]
    Unsupported(String),
    /// A load with `insert` met an id that is already there.
    #[error(
        "{detail} (the {what} is in the database already, or twice in this load); \
         --method insert refuses existing ids: use insert_ignore, upsert or delsert"
    )]
    Duplicate {
        what: &'static str,
        detail: String,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The database broke a deadlock between the load and another
    /// transaction by stopping the load.
    #[error(
        "the load and another transaction (a load or delete of the same {what}s?) waited for each \
         other, and the database stopped the load; nothing was written, run it again: {}",
        describe(.source)
    )]
    Contended {
        what: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("collection \"{0}\" was deleted while its items were loading")]
    CollectionDeleted(String),
    #[error("a collection was deleted while its items were loading ({detail})")]
    CollectionGone {
        detail: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("{0}")]
    Search(#[from] SearchError),
    #[error("{0}")]
    Migrate(#[from] MigrateError),
    #[error("{what}: {}", describe(.source))]
    Db {
        what: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
}

impl CatalogError {
    /// A database error while doing `what` ("search", "delete", ...).
    pub fn db(what: &'static str) -> impl Fn(tokio_postgres::Error) -> CatalogError {
        move |source| CatalogError::Db { what, source }
    }

    /// A COPY or merge error of a load of `kind`, said in the user's terms
    /// where they can act on it.
    pub fn load(kind: Kind, source: tokio_postgres::Error) -> CatalogError {
        use tokio_postgres::error::SqlState;
        let detail = source
            .as_db_error()
            .and_then(|d| d.detail())
            .unwrap_or_default()
            .to_string();
        let what = kind.singular();
        match source.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => CatalogError::Duplicate {
                what,
                detail,
                source,
            },
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => {
                CatalogError::Contended { what, source }
            }
            Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => {
                CatalogError::CollectionGone { detail, source }
            }
            _ => CatalogError::Db {
                what: "load",
                source,
            },
        }
    }
}
