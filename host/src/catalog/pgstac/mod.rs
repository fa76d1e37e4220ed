//! pgstac, the schema most STAC catalogs in PostgreSQL run (behind
//! stac-fastapi-pgstac and eoAPI), used in its own layout and through its
//! own functions, so that pgstac, pypgstac and STAC APIs read back what
//! `host` wrote and `host` answers as they do:
//!
//! - [`numbers`] and [`dehydrate`]: items are stored as their difference
//!   from the collection's base item, with numbers read and written exactly
//!   as pypgstac reads and writes them, so both tools store the same rows;
//! - [`rows`]: the binary COPY rows of the staging tables;
//! - [`load`]: partitions through pgstac's own `check_partition`, the
//!   methods' merge SQL, and pgstac's partition statistics afterwards;
//! - [`search`]: requests run by pgstac's own `search()`;
//! - [`admin`]: deleting items and collections, recomputing extents.

pub mod admin;
pub mod dehydrate;
pub mod load;
pub mod numbers;
pub mod rows;
pub mod search;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio_postgres::Client;

use super::{CatalogError, CatalogKind, ExtentMode, Kind, LoadSession, Method, Rows, load::Finish};

/// pgstac versions whose layout and functions this binary works with.
pub const KNOWN_VERSIONS: &[&str] = &["0.10.0"];

/// pgstac, at a version this binary knows.
#[derive(Debug, Clone)]
pub struct Pgstac {
    pub version: String,
}

/// What a load needs to know about one pgstac collection.
#[derive(Debug, Clone)]
pub struct CollectionInfo {
    /// The base item new items are dehydrated against.
    pub base_item: Map<String, Value>,
    /// Its id in `pgstac.base_items`; `None` until the collection's first edit
    /// (untagged items hydrate against the collection's first base item).
    pub base_item_id: Option<i32>,
}

/// A pgstac database's collections, by id.
pub type Collections = HashMap<String, CollectionInfo>;

/// The pgstac version the database records, `None` when pgstac is not installed.
pub(super) async fn installed_version(client: &Client) -> Result<Option<String>, CatalogError> {
    let db = CatalogError::db("reading the catalog");
    let has: bool = client
        .query_one("SELECT to_regclass('pgstac.migrations') IS NOT NULL", &[])
        .await
        .map_err(&db)?
        .get(0);
    if !has {
        return Ok(None);
    }
    // What pgstac's get_version() says (not every version has that function).
    let row = client
        .query_opt(
            "SELECT version FROM pgstac.migrations ORDER BY datetime DESC, version DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(&db)?;
    Ok(row.map(|r| r.get(0)))
}

impl Pgstac {
    /// Opens pgstac; refuses versions this binary does not know.
    pub async fn open(client: &Client) -> Result<Pgstac, CatalogError> {
        match installed_version(client).await? {
            None => Err(CatalogError::NotInstalled(CatalogKind::Pgstac)),
            Some(v) if KNOWN_VERSIONS.contains(&v.as_str()) => Ok(Pgstac { version: v }),
            Some(found) => Err(CatalogError::PgstacVersion {
                found,
                known: KNOWN_VERSIONS.join(", "),
            }),
        }
    }

    pub(super) async fn begin_load(
        &self,
        client: &Client,
        kind: Kind,
        method: Method,
        extents: Option<ExtentMode>,
    ) -> Result<LoadSession, CatalogError> {
        if extents == Some(ExtentMode::Deferred) {
            return Err(CatalogError::Unsupported(
                "--update-extents deferred queues collections in host's schema; pgstac has no such \
                 queue (its update_collection_extent and use_queue settings decide): use immediate, \
                 or `host update-extents --collection ID` later"
                    .into(),
            ));
        }
        let db = CatalogError::db("preparing the load");
        let collections = match kind {
            Kind::Items => collections(client).await.map_err(&db)?,
            Kind::Collections => Collections::new(),
        };
        let known: HashSet<String> = collections.keys().cloned().collect();
        let compression = load::Compression::choose(client).await.map_err(&db)?;
        let plan = load::Plan::new(kind, method, extents, compression);
        plan.begin(client).await.map_err(&db)?;
        Ok(LoadSession::new(
            kind,
            known,
            Rows::Pgstac {
                collections: Arc::new(collections),
                // Item rows may go straight into a partition; the staging
                // table numbers the ones it takes (see `load::Plan::begin`).
                numbered: kind == Kind::Collections,
            },
            Finish::Pgstac(plan),
        ))
    }
}

/// Every collection with its current base item.
pub async fn collections(client: &Client) -> Result<Collections, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT c.id, b.base_item_id, b.base_item::text \
             FROM pgstac.collections c CROSS JOIN LATERAL pgstac.current_base_item(c.id) b",
            &[],
        )
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let id: String = r.get(0);
        let text: Option<String> = r.get(2);
        let base_item = match text.as_deref().map(serde_json::from_str::<Value>) {
            Some(Ok(Value::Object(m))) => m,
            _ => Map::new(),
        };
        out.insert(
            id,
            CollectionInfo {
                base_item,
                base_item_id: r.get(1),
            },
        );
    }
    Ok(out)
}
