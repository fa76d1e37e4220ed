//! host's own catalog schema (`host migrate`): `host.collections` and
//! `host.items`, list-partitioned by collection, with the item fields search
//! needs as columns (geometry, bbox, datetime, start/end) and the item as
//! loaded in `content`.
//!
//! - [`load`]: staging tables and the methods' merge SQL;
//! - [`rows`]: the binary COPY rows;
//! - [`admin`]: deleting items and collections, recomputing extents;
//! - search is [`crate::search::sql`]'s statement run here.

pub mod admin;
pub mod load;
pub mod rows;

use std::collections::HashSet;

use tokio_postgres::Client;

use super::{CatalogError, ExtentMode, Kind, LoadSession, Method, Rows, load::Finish};
use crate::migrate::{MigrationSet, Version, current_version};
use crate::search::{Page, SearchRequest};

/// host's schema, at the version this binary writes.
#[derive(Debug, Clone)]
pub struct Builtin {
    pub version: Version,
}

/// The version of host's schema the database records, `None` without one.
pub(super) async fn installed_version(client: &mut Client) -> Result<Option<String>, CatalogError> {
    let present: bool = client
        .query_one("SELECT to_regclass('host.migrations') IS NOT NULL", &[])
        .await
        .map_err(CatalogError::db("reading the catalog"))?
        .get(0);
    if !present {
        return Ok(None);
    }
    let version = current_version(client, &MigrationSet::builtin()).await?;
    Ok(version.map(|v| v.to_string()))
}

impl Builtin {
    /// Opens host's schema; refuses a version other than this binary's.
    pub async fn open(client: &mut Client) -> Result<Builtin, CatalogError> {
        let set = MigrationSet::builtin();
        let binary = set.latest().expect("the built-in set has files").clone();
        match current_version(client, &set).await? {
            None => Err(CatalogError::NotInstalled(super::CatalogKind::Host)),
            Some(db) if db != binary => Err(CatalogError::HostVersion { db, binary }),
            Some(version) => Ok(Builtin { version }),
        }
    }

    pub(super) async fn begin_load(
        &self,
        client: &Client,
        kind: Kind,
        method: Method,
        extents: Option<ExtentMode>,
    ) -> Result<LoadSession, CatalogError> {
        let db = CatalogError::db("preparing the load");
        let known = match kind {
            Kind::Items => {
                load::ensure_partitions(client).await.map_err(&db)?;
                known_collections(client).await?
            }
            Kind::Collections => HashSet::new(),
        };
        let plan = load::Plan::new(kind, method, extents);
        plan.begin(client).await.map_err(&db)?;
        Ok(LoadSession::new(
            kind,
            known,
            Rows::Host {
                numbered: plan.staged(),
            },
            Finish::Host(plan),
        ))
    }

    pub(super) async fn search(
        &self,
        client: &Client,
        request: &SearchRequest,
    ) -> Result<Page, CatalogError> {
        let query = crate::search::sql::build(request)?;
        tracing::debug!(sql = %query.sql, params = ?query.params, "search");
        let rows = client
            .query(query.sql.as_str(), &query.param_refs())
            .await
            .map_err(CatalogError::db("search"))?;
        let rows = rows
            .iter()
            .map(|r| crate::search::Row {
                content: r.get(0),
                keys: (1..r.len())
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect(),
            })
            .collect();
        Ok(query.page(rows))
    }
}

/// The ids of the collections in host's schema.
pub async fn known_collections(client: &Client) -> Result<HashSet<String>, CatalogError> {
    let rows = client
        .query("SELECT id FROM host.collections", &[])
        .await
        .map_err(CatalogError::db("reading the collections"))?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}
