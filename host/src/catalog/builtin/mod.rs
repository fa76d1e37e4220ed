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
        if kind == Kind::Items {
            load::ensure_partitions(client).await.map_err(&db)?;
        }
        let plan = load::Plan::new(kind, method, extents);
        client.batch_execute("BEGIN").await.map_err(&db)?;
        let begun = async {
            let known = match kind {
                Kind::Items => locked_collections(client).await?,
                Kind::Collections => HashSet::new(),
            };
            plan.stage(client).await.map_err(&db)?;
            Ok(known)
        }
        .await;
        let known = match begun {
            Ok(known) => known,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(e);
            }
        };
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

/// The ids of the collections in host's schema, each locked `FOR KEY SHARE`
/// (in id order) to the end of the load's transaction: what the load checks
/// its items against stays there until it commits.
///
/// The item rows' foreign key would take these locks anyway, but only once
/// COPY or the merge has written rows, i.e. after the load holds
/// `host.items`; `host delete collection` locks the collection's row first
/// and `host.items` (to drop the partition) second. Taken in that order
/// here too, a delete waits for the load (or the load for the delete)
/// instead of the two deadlocking. `KEY SHARE` does not conflict with
/// the `NO KEY UPDATE` of collection loads and extent updates, nor with
/// other loads.
async fn locked_collections(client: &Client) -> Result<HashSet<String>, CatalogError> {
    let rows = client
        .query(
            "SELECT id FROM host.collections ORDER BY id FOR KEY SHARE",
            &[],
        )
        .await
        .map_err(CatalogError::db("reading the collections"))?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}
