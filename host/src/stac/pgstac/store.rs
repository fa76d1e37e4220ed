//! The SQL side of a load into pgstac: which version it is, its
//! collections' base items, the staging tables COPY fills, partitions
//! (through pgstac's own `check_partition`), and merging staged rows into
//! `pgstac.items` / `pgstac.collections` with each method's semantics.
//!
//! A load runs in three steps on one connection:
//! 1. rows are COPYed into session temp tables (nothing of pgstac is touched);
//! 2. the partitions they need are created or widened by `check_partition`,
//!    each in its own short transaction (as pypgstac does), under a
//!    per-collection advisory lock so two loads never compute constraints
//!    from each other's half-finished state;
//! 3. one transaction moves the rows in with the method's semantics.
//!
//! If step 3 fails nothing is loaded; partitions created in step 2 stay
//! (empty, or with constraints that still hold), as with pypgstac.
//!
//! Concurrent loads into one collection: partition work never happens
//! inside the load's transaction, so a load holds no DDL lock while it
//! waits; rows that will be replaced are locked in `(collection, id)` order
//! before they are deleted, so loads with overlapping ids wait for each
//! other instead of deadlocking; inserts resolve conflicts with `ON
//! CONFLICT`, so an id another load committed meanwhile is skipped or
//! replaced, never lost.

use std::collections::HashMap;

use serde_json::{Map, Value};
use tokio_postgres::{Client, Transaction};

use crate::load::Method;
use crate::stac::store::{Merged, StoreError, Target};

/// pgstac versions whose layout this binary writes.
pub const KNOWN_VERSIONS: &[&str] = &["0.10.0"];

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

/// The pgstac version of the database, `None` when pgstac is not installed.
pub async fn version(client: &Client) -> Result<Option<String>, StoreError> {
    let has: bool = client
        .query_one("SELECT to_regclass('pgstac.migrations') IS NOT NULL", &[])
        .await?
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
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Refuses pgstac versions this binary does not know how to write.
pub fn check_version(version: &str) -> Result<(), StoreError> {
    if KNOWN_VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(StoreError::PgstacVersion {
            found: version.to_string(),
            known: KNOWN_VERSIONS.join(", "),
        })
    }
}

/// Every collection with its current base item.
pub async fn collections(client: &Client) -> Result<Collections, StoreError> {
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

const ITEMS_STAGING: &str = "pg_temp.host_pgstac_items";
const COLLECTIONS_STAGING: &str = "pg_temp.host_pgstac_collections";
const PARTS: &str = "pg_temp.host_pgstac_partitions";

/// Creates the load's staging table (session-long: it outlives step 1's
/// transaction; step 3 drops it).
pub async fn create_staging(client: &Client, target: Target) -> Result<(), StoreError> {
    let sql = match target {
        Target::Items => format!(
            "SET client_min_messages TO warning; DROP TABLE IF EXISTS {ITEMS_STAGING}; DROP TABLE IF EXISTS {PARTS}; \
             CREATE TEMP TABLE host_pgstac_items (seq bigint NOT NULL, \
             LIKE pgstac.items INCLUDING COMPRESSION INCLUDING STORAGE)"
        ),
        Target::Collections => format!(
            "SET client_min_messages TO warning; DROP TABLE IF EXISTS {COLLECTIONS_STAGING}; \
             CREATE TEMP TABLE host_pgstac_collections \
             (seq bigint NOT NULL, id text NOT NULL, content jsonb NOT NULL)"
        ),
    };
    client.batch_execute(&sql).await?;
    Ok(())
}

/// The COPY statement the rows of [`super::rows`] go to.
pub fn copy_statement(target: Target) -> &'static str {
    match target {
        Target::Items => "COPY pg_temp.host_pgstac_items FROM STDIN (FORMAT binary)",
        Target::Collections => "COPY pg_temp.host_pgstac_collections FROM STDIN (FORMAT binary)",
    }
}

/// Key of the advisory lock around a collection's partition changes.
const PARTITION_LOCK: i32 = 0x7067_7374; // "pgst"

/// Step 2: creates or widens, through `pgstac.check_partition`, every
/// partition the staged items need, each in its own transaction, in
/// (collection, period) order. Returns how many partitions were checked.
pub async fn prepare_partitions(client: &mut Client) -> Result<u64, StoreError> {
    // Grouped the way pgstac's own staging trigger groups them: by the
    // collection's partition_trunc, in UTC.
    client
        .batch_execute(&format!(
            "CREATE TEMP TABLE host_pgstac_partitions AS \
             SELECT row_number() OVER (ORDER BY collection, period) AS n, collection, dtrange, edtrange \
             FROM (SELECT s.collection, \
                          CASE WHEN c.partition_trunc IS NULL THEN '-infinity'::timestamptz \
                               ELSE date_trunc(c.partition_trunc, s.datetime, 'UTC') END AS period, \
                          tstzrange(min(s.datetime), max(s.datetime), '[]') AS dtrange, \
                          tstzrange(min(s.end_datetime), max(s.end_datetime), '[]') AS edtrange \
                   FROM {ITEMS_STAGING} s JOIN pgstac.collections c ON c.id = s.collection \
                   GROUP BY 1, 2) g"
        ))
        .await?;
    let n: i64 = client
        .query_one(&format!("SELECT count(*) FROM {PARTS}"), &[])
        .await?
        .get(0);
    for i in 1..=n {
        let tx = client.transaction().await?;
        tx.execute(
            &format!(
                "SELECT pg_advisory_xact_lock({PARTITION_LOCK}, hashtext(collection)) FROM {PARTS} WHERE n = $1"
            ),
            &[&i],
        )
        .await?;
        tx.execute(
            &format!(
                "SELECT pgstac.check_partition(collection, dtrange, edtrange) FROM {PARTS} WHERE n = $1"
            ),
            &[&i],
        )
        .await?;
        tx.commit().await?;
    }
    client.batch_execute(&format!("DROP TABLE {PARTS}")).await?;
    Ok(n as u64)
}

const ITEM_COLUMNS: &str = "id, geometry, collection, datetime, end_datetime, content, private";

/// Step 3: moves the staged rows into pgstac; `staged` is how many COPY took.
pub async fn merge(
    tx: &Transaction<'_>,
    target: Target,
    method: Method,
    staged: u64,
) -> Result<Merged, tokio_postgres::Error> {
    let merged = match target {
        Target::Items => merge_items(tx, method, staged).await?,
        Target::Collections => merge_collections(tx, method, staged).await?,
    };
    let staging = match target {
        Target::Items => ITEMS_STAGING,
        Target::Collections => COLLECTIONS_STAGING,
    };
    tx.batch_execute(&format!("DROP TABLE {staging}")).await?;
    Ok(merged)
}

async fn merge_items(
    tx: &Transaction<'_>,
    method: Method,
    staged: u64,
) -> Result<Merged, tokio_postgres::Error> {
    let s = ITEMS_STAGING;
    if method == Method::Insert {
        // pgstac's insert: an id already in the item's partition (or twice in
        // the load) fails the load.
        let n = tx
            .execute(
                &format!(
                    "INSERT INTO pgstac.items ({ITEM_COLUMNS}) \
                     SELECT {ITEM_COLUMNS} FROM {s} ORDER BY collection, id"
                ),
                &[],
            )
            .await?;
        return Ok(Merged {
            loaded: n,
            ..Merged::default()
        });
    }
    // One copy per id: insert_ignore keeps the first in the load, the others
    // the last. Most loads have no duplicates, and then the staged rows are
    // used as they are (no second copy of every row).
    let duplicates: bool = tx
        .query_one(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {s} GROUP BY collection, id HAVING count(*) > 1)"
            ),
            &[],
        )
        .await?
        .get(0);
    let (src, distinct) = if duplicates {
        let order = if method == Method::InsertIgnore {
            "seq"
        } else {
            "seq DESC"
        };
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE host_pgstac_src ON COMMIT DROP AS \
             SELECT DISTINCT ON (collection, id) {ITEM_COLUMNS} FROM {s} ORDER BY collection, id, {order}; \
             ANALYZE host_pgstac_src"
        ))
        .await?;
        let n: i64 = tx
            .query_one("SELECT count(*) FROM pg_temp.host_pgstac_src", &[])
            .await?
            .get(0);
        ("pg_temp.host_pgstac_src", n as u64)
    } else {
        tx.batch_execute(&format!("ANALYZE {s}")).await?;
        (s, staged)
    };
    // Deletes name one collection at a time, so only its partitions are scanned.
    let collections: Vec<String> = tx
        .query(
            &format!("SELECT DISTINCT collection FROM {src} ORDER BY 1"),
            &[],
        )
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    match method {
        // pgstac's upsert (its items_staging_upsert): rows that differ are
        // deleted, wherever their datetime put them, and the new ones
        // inserted; identical rows are left alone.
        Method::Upsert | Method::Delsert => {
            let differs = if method == Method::Upsert {
                "AND (o.id, o.geometry, o.collection, o.datetime, o.end_datetime, o.content, o.private) \
                 IS DISTINCT FROM (s.id, s.geometry, s.collection, s.datetime, s.end_datetime, s.content, s.private)"
            } else {
                ""
            };
            for c in &collections {
                tx.execute(
                    &format!(
                        "WITH locked AS (SELECT o.collection, o.id FROM pgstac.items o \
                           JOIN {src} s ON o.id = s.id AND o.collection = s.collection \
                           WHERE o.collection = $1 AND s.collection = $1 {differs} \
                           ORDER BY o.collection, o.id FOR UPDATE OF o) \
                         DELETE FROM pgstac.items i USING locked l \
                         WHERE i.collection = $1 AND i.collection = l.collection AND i.id = l.id"
                    ),
                    &[c],
                )
                .await?;
            }
        }
        Method::InsertIgnore | Method::Insert => {}
    }
    let written = tx
        .execute(
            &format!(
                "INSERT INTO pgstac.items ({ITEM_COLUMNS}) \
                 SELECT {ITEM_COLUMNS} FROM {src} ORDER BY collection, id \
                 ON CONFLICT DO NOTHING"
            ),
            &[],
        )
        .await?;
    Ok(Merged::counted(method, staged, distinct, written))
}

async fn merge_collections(
    tx: &Transaction<'_>,
    method: Method,
    staged: u64,
) -> Result<Merged, tokio_postgres::Error> {
    let s = COLLECTIONS_STAGING;
    if method == Method::Insert {
        let n = tx
            .execute(
                &format!(
                    "INSERT INTO pgstac.collections (content) SELECT content FROM {s} ORDER BY id"
                ),
                &[],
            )
            .await?;
        return Ok(Merged {
            loaded: n,
            ..Merged::default()
        });
    }
    let (order, conflict) = match method {
        Method::InsertIgnore => ("seq", "DO NOTHING"),
        // Rewriting an identical collection would record a new base item for nothing.
        Method::Upsert => (
            "seq DESC",
            "DO UPDATE SET content = EXCLUDED.content WHERE t.content IS DISTINCT FROM EXCLUDED.content",
        ),
        // Deleting a pgstac collection drops its items' partitions: delsert
        // replaces the content in place instead.
        Method::Delsert => ("seq DESC", "DO UPDATE SET content = EXCLUDED.content"),
        Method::Insert => unreachable!("handled above"),
    };
    let row = tx
        .query_one(
            &format!(
                "WITH src AS MATERIALIZED (SELECT DISTINCT ON (id) id, content FROM {s} ORDER BY id, {order}), \
                 written AS (INSERT INTO pgstac.collections AS t (content) \
                             SELECT content FROM src ORDER BY id \
                             ON CONFLICT (id) {conflict} RETURNING 1) \
                 SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM written)"
            ),
            &[],
        )
        .await?;
    let distinct = row.get::<_, i64>(0) as u64;
    let written = row.get::<_, i64>(1) as u64;
    Ok(Merged::counted(method, staged, distinct, written))
}
