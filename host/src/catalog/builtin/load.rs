//! The SQL side of a load into host's schema: the staging tables COPY fills,
//! and merging staged rows into `host.items` / `host.collections` with each
//! method's semantics — all in one transaction.
//!
//! Locking rules that keep concurrent loads (and deletes) from deadlocking:
//! - an items load locks every collection `FOR KEY SHARE` first thing in
//!   its transaction, before anything locks `host.items`, the order in
//!   which `host delete collection` locks them (see `locked_collections`);
//! - partitions are created in short transactions of their own, never in
//!   the load's: for items before it starts, for collections after it
//!   commits (a collections load never touches `host.items`);
//! - rows are written (and, for delsert, locked) in `(collection, id)` order,
//!   so two loads with overlapping ids wait for each other instead of
//!   deadlocking;
//! - extents lock collections in id order (`host.items_changed`).

use tokio_postgres::Client;

use crate::catalog::{CatalogError, ExtentMode, Kind, Merged, Method};

/// Creates the partitions collections lack (made by hand, or dropped), each
/// in its own short transaction, so an items load never has to create one
/// while it holds locks. Returns how many were created.
pub async fn ensure_partitions(client: &Client) -> Result<u64, tokio_postgres::Error> {
    let missing = client
        .query(
            "SELECT id FROM host.collections \
             WHERE to_regclass(format('host.%I', host.partition_name(id))) IS NULL ORDER BY id",
            &[],
        )
        .await?;
    if missing.len() >= 100 {
        // About 10 ms each: say why a load of many new collections takes a while.
        tracing::info!(
            "making the partitions of host.items for {} collections",
            missing.len()
        );
    }
    for row in &missing {
        let id: &str = row.get(0);
        client
            .execute("SELECT host.ensure_partition($1)", &[&id])
            .await?;
    }
    Ok(missing.len() as u64)
}

/// Where COPY sends the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Into a temporary staging table, merged with the method's semantics.
    Staged,
    /// Straight into `host.items`: for `insert`, whose semantics (an existing
    /// id fails the load) are what COPY does anyway; it saves writing and
    /// reading every row twice.
    Direct,
}

/// One load into host's schema: what it writes, how, and its extents.
#[derive(Debug)]
pub struct Plan {
    kind: Kind,
    method: Method,
    route: Route,
    extents: Option<ExtentMode>,
}

impl Plan {
    pub(in crate::catalog) fn new(kind: Kind, method: Method, extents: Option<ExtentMode>) -> Plan {
        let route = if kind == Kind::Items && method == Method::Insert {
            Route::Direct
        } else {
            Route::Staged
        };
        Plan {
            kind,
            method,
            route,
            extents,
        }
    }

    /// Whether rows go to a staging table (and so carry their place in the load).
    pub(in crate::catalog) fn staged(&self) -> bool {
        self.route == Route::Staged
    }

    /// Creates the load's staging table (dropped at commit) in its open
    /// transaction. It is made `LIKE host.items`, which locks `host.items`:
    /// the collections must be locked before (see `locked_collections`).
    pub(in crate::catalog) async fn stage(
        &self,
        client: &Client,
    ) -> Result<(), tokio_postgres::Error> {
        let staging = match (self.route, self.kind) {
            (Route::Direct, _) => return Ok(()),
            // Same column types, and the same compression so staged values are
            // compressed once and moved as they are.
            (Route::Staged, Kind::Items) => {
                "CREATE TEMP TABLE host_load_items (seq bigint NOT NULL, \
                 LIKE host.items INCLUDING COMPRESSION INCLUDING STORAGE) ON COMMIT DROP;"
            }
            (Route::Staged, Kind::Collections) => {
                "CREATE TEMP TABLE host_load_collections (seq bigint NOT NULL, \
                 LIKE host.collections INCLUDING COMPRESSION INCLUDING STORAGE) ON COMMIT DROP;"
            }
        };
        client.batch_execute(staging).await
    }

    /// The COPY statement the rows of [`super::rows`] go to (staged rows
    /// start with their `seq`, direct ones do not).
    pub(in crate::catalog) fn copy_statement(&self) -> &'static str {
        match (self.kind, self.route) {
            (Kind::Items, Route::Direct) => {
                "COPY host.items (collection, id, geometry, bbox, datetime, start_datetime, \
                 end_datetime, content) FROM STDIN (FORMAT binary)"
            }
            (Kind::Items, Route::Staged) => {
                "COPY pg_temp.host_load_items FROM STDIN (FORMAT binary)"
            }
            (Kind::Collections, _) => {
                "COPY pg_temp.host_load_collections FROM STDIN (FORMAT binary)"
            }
        }
    }

    /// Merges, updates extents and commits.
    pub(in crate::catalog) async fn finish(
        &self,
        client: &Client,
        staged: u64,
        collections: &[String],
    ) -> Result<Merged, CatalogError> {
        let load = |e| CatalogError::load(self.kind, e);
        let phase = std::time::Instant::now();
        let merged = match self.route {
            Route::Direct => Merged {
                loaded: staged,
                ..Merged::default()
            },
            Route::Staged => merge(client, self.kind, self.method, staged)
                .await
                .map_err(load)?,
        };
        tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "merged");
        let phase = std::time::Instant::now();
        if self.kind == Kind::Items {
            items_changed(client, collections, self.extents)
                .await
                .map_err(CatalogError::db("updating extents"))?;
        }
        client.batch_execute("COMMIT").await.map_err(load)?;
        if self.kind == Kind::Collections {
            // Each new collection's partition, in a short transaction of its
            // own: made in the load's transaction, a thousand of them held
            // the lock table's slots to the end (3,000 new collections failed
            // with "out of shared memory") and held host.items while the load
            // waited for collections a delete had locked. An items load makes
            // any that are missing (a load killed here) the same way.
            if let Err(e) = ensure_partitions(client).await {
                tracing::warn!(
                    "the collections are loaded, but making their partitions failed \
                     (the next items load makes them): {}",
                    crate::db::describe(&e)
                );
            }
        }
        tracing::debug!(
            seconds = phase.elapsed().as_secs_f64(),
            "extents and commit"
        );
        Ok(merged)
    }
}

const ITEM_COLUMNS: &str =
    "collection, id, geometry, bbox, datetime, start_datetime, end_datetime, content";
const ITEM_UPDATE: &str = "geometry = EXCLUDED.geometry, bbox = EXCLUDED.bbox, \
     datetime = EXCLUDED.datetime, start_datetime = EXCLUDED.start_datetime, \
     end_datetime = EXCLUDED.end_datetime, content = EXCLUDED.content";

/// Moves the staged rows into place; `staged` is how many COPY took.
async fn merge(
    client: &Client,
    kind: Kind,
    method: Method,
    staged: u64,
) -> Result<Merged, tokio_postgres::Error> {
    let (table, staging, key, columns, update) = match kind {
        Kind::Items => (
            "host.items",
            "pg_temp.host_load_items",
            "collection, id",
            ITEM_COLUMNS,
            ITEM_UPDATE,
        ),
        // Partitions are made after the commit (see `Plan::finish`).
        Kind::Collections => (
            "host.collections",
            "pg_temp.host_load_collections",
            "id",
            "id, content",
            "content = EXCLUDED.content",
        ),
    };
    if method == Method::Insert {
        let n = client
            .execute(
                &format!(
                    "INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} ORDER BY {key}"
                ),
                &[],
            )
            .await?;
        return Ok(Merged {
            loaded: n,
            ..Merged::default()
        });
    }
    if method == Method::Delsert && kind == Kind::Items {
        // Lock what will be deleted in key order, then delete it.
        client
            .execute(
                &format!(
                    "WITH keys AS (SELECT DISTINCT {key} FROM {staging}), \
                     locked AS (SELECT t.collection, t.id FROM {table} t JOIN keys USING ({key}) \
                                ORDER BY t.collection, t.id FOR UPDATE OF t) \
                     DELETE FROM {table} d USING locked l \
                     WHERE d.collection = l.collection AND d.id = l.id"
                ),
                &[],
            )
            .await?;
    }
    // insert_ignore keeps the first copy of an id in the load; the others the last.
    let (order, conflict) = match method {
        Method::InsertIgnore => ("seq", "DO NOTHING".to_string()),
        Method::Upsert => (
            "seq DESC",
            format!(
                "({key}) DO UPDATE SET {update} WHERE t.content IS DISTINCT FROM EXCLUDED.content"
            ),
        ),
        // For collections, delsert replaces the content in place: deleting a
        // collection would take its items with it. For items, a concurrent
        // delsert may have inserted an id since the delete above.
        Method::Delsert => ("seq DESC", format!("({key}) DO UPDATE SET {update}")),
        Method::Insert => unreachable!("handled above"),
    };
    let row = client
        .query_one(
            &format!(
                "WITH src AS MATERIALIZED (SELECT DISTINCT ON ({key}) {columns} FROM {staging} \
                                            ORDER BY {key}, {order}), \
                 written AS (INSERT INTO {table} AS t ({columns}) \
                             SELECT {columns} FROM src ORDER BY {key} \
                             ON CONFLICT {conflict} RETURNING 1) \
                 SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM written)"
            ),
            &[],
        )
        .await?;
    let distinct = row.get::<_, i64>(0) as u64;
    let written = row.get::<_, i64>(1) as u64;
    Ok(Merged::counted(method, staged, distinct, written))
}

/// Tells the database which collections' items changed, so it updates
/// their extents as `mode` (or the `update_extents` setting) says.
async fn items_changed(
    client: &Client,
    collections: &[String],
    mode: Option<ExtentMode>,
) -> Result<(), tokio_postgres::Error> {
    if collections.is_empty() {
        return Ok(());
    }
    let mode = mode.map(ExtentMode::as_str);
    client
        .execute(
            "SELECT host.items_changed($1::text[], $2::text)",
            &[&collections, &mode],
        )
        .await?;
    Ok(())
}
