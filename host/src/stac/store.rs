//! The SQL side of a load: checks before it starts, the staging tables COPY
//! fills, and merging staged rows into `host.items` / `host.collections`
//! with each method's semantics.
//!
//! Locking rules that keep concurrent loads from deadlocking:
//! - partitions are created before the load's transaction touches
//!   `host.items` (for items: in separate short transactions before it
//!   starts; for collections: first thing in the merge);
//! - rows are written (and, for delsert, locked) in `(collection, id)` order,
//!   so two loads with overlapping ids wait for each other instead of
//!   deadlocking;
//! - extents lock collections in id order (`host.items_changed`).

use std::collections::HashSet;

use tokio_postgres::{Client, Transaction};

use crate::load::{ExtentMode, Method};
use crate::migrate::{MigrationSet, current_version};

/// What a load writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Items,
    Collections,
}

/// Why the database cannot take a load.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database has no host schema; run `host migrate` first")]
    NotInstalled,
    #[error(
        "the database's host schema is at version {db}, but this binary needs {binary}; {}",
        if .db < .binary { "run `host migrate`" } else { "use a newer host binary" }
    )]
    Version {
        db: crate::migrate::Version,
        binary: crate::migrate::Version,
    },
    #[error(
        "the database runs pgstac {found}, which this binary does not know how to write (it writes pgstac {known}); \
         migrate it with `host migrate --dir <pypgstac's migrations>` or use a host that knows {found}"
    )]
    PgstacVersion { found: String, known: String },
    #[error(
        "the database has no host schema (and no pgstac); run `host migrate` (or `host migrate --dir` with pgstac's files) first"
    )]
    NoSchema,
    #[error("the database has no pgstac schema (--target pgstac)")]
    NoPgstac,
    #[error("{0}")]
    Migrate(#[from] crate::migrate::MigrateError),
    #[error("{}", crate::db::describe(.0))]
    Db(#[from] tokio_postgres::Error),
}

/// Refuses databases whose schema is not the one this binary writes.
pub async fn check_schema(client: &mut Client) -> Result<(), StoreError> {
    let set = MigrationSet::builtin();
    let binary = set.latest().expect("the built-in set has files").clone();
    match current_version(client, &set).await? {
        None => Err(StoreError::NotInstalled),
        Some(db) if db != binary => Err(StoreError::Version { db, binary }),
        Some(_) => Ok(()),
    }
}

/// The ids of the collections in the database.
pub async fn known_collections(client: &Client) -> Result<HashSet<String>, StoreError> {
    let rows = client.query("SELECT id FROM host.collections", &[]).await?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}

/// Creates the partitions collections lack (made by hand, or dropped), each
/// in its own short transaction, so an items load never has to create one
/// while it holds locks. Returns how many were created.
pub async fn ensure_partitions(client: &Client) -> Result<u64, StoreError> {
    let missing = client
        .query(
            "SELECT id FROM host.collections \
             WHERE to_regclass(format('host.%I', host.partition_name(id))) IS NULL ORDER BY id",
            &[],
        )
        .await?;
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
pub enum Route {
    /// Into a temporary staging table, merged with the method's semantics.
    Staged,
    /// Straight into `host.items`: for `insert`, whose semantics (an existing
    /// id fails the load) are what COPY does anyway; it saves writing and
    /// reading every row twice.
    Direct,
}

impl Route {
    /// The route a load takes.
    pub fn for_load(target: Target, method: Method) -> Route {
        if target == Target::Items && method == Method::Insert {
            Route::Direct
        } else {
            Route::Staged
        }
    }
}

/// Creates the load's staging table (dropped at commit).
pub async fn create_staging(tx: &Transaction<'_>, target: Target) -> Result<(), StoreError> {
    let sql = match target {
        // Same column types, and the same compression so staged values are
        // compressed once and moved as they are.
        Target::Items => {
            "CREATE TEMP TABLE host_load_items (seq bigint NOT NULL, \
             LIKE host.items INCLUDING COMPRESSION INCLUDING STORAGE) ON COMMIT DROP"
        }
        Target::Collections => {
            "CREATE TEMP TABLE host_load_collections (seq bigint NOT NULL, \
             LIKE host.collections INCLUDING COMPRESSION INCLUDING STORAGE) ON COMMIT DROP"
        }
    };
    tx.batch_execute(sql).await?;
    Ok(())
}

/// The COPY statement the binary rows of [`super::rows`] go to (staged rows
/// start with their `seq`, direct ones do not).
pub fn copy_statement(target: Target, route: Route) -> &'static str {
    match (target, route) {
        (Target::Items, Route::Direct) => {
            "COPY host.items (collection, id, geometry, bbox, datetime, start_datetime, \
             end_datetime, content) FROM STDIN (FORMAT binary)"
        }
        (Target::Items, Route::Staged) => "COPY pg_temp.host_load_items FROM STDIN (FORMAT binary)",
        (Target::Collections, _) => "COPY pg_temp.host_load_collections FROM STDIN (FORMAT binary)",
    }
}

/// What a merge did with the staged rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Merged {
    /// Rows written (inserted, or replaced).
    pub loaded: u64,
    /// Rows not written: ids already there (insert_ignore), or earlier
    /// copies of an id that a later copy in the same load replaced.
    pub skipped: u64,
    /// Rows identical to what was there (upsert).
    pub unchanged: u64,
}

impl Merged {
    /// What a merge of `staged` rows, `distinct` of them with different
    /// ids, did when it wrote `written`: upsert leaves the distinct rows it
    /// did not write unchanged (they were identical); every other row not
    /// written was skipped (an earlier copy of an id a later one superseded,
    /// or with insert_ignore an id already there). Every staged row is
    /// counted once.
    pub fn counted(method: Method, staged: u64, distinct: u64, written: u64) -> Merged {
        let unchanged = if method == Method::Upsert {
            distinct - written
        } else {
            0
        };
        Merged {
            loaded: written,
            skipped: staged - written - unchanged,
            unchanged,
        }
    }
}

const ITEM_COLUMNS: &str =
    "collection, id, geometry, bbox, datetime, start_datetime, end_datetime, content";
const ITEM_UPDATE: &str = "geometry = EXCLUDED.geometry, bbox = EXCLUDED.bbox, \
     datetime = EXCLUDED.datetime, start_datetime = EXCLUDED.start_datetime, \
     end_datetime = EXCLUDED.end_datetime, content = EXCLUDED.content";

/// Moves the staged rows into place; `staged` is how many COPY took.
pub async fn merge(
    tx: &Transaction<'_>,
    target: Target,
    method: Method,
    staged: u64,
) -> Result<Merged, tokio_postgres::Error> {
    let (table, staging, key, columns, update) = match target {
        Target::Items => (
            "host.items",
            "pg_temp.host_load_items",
            "collection, id",
            ITEM_COLUMNS,
            ITEM_UPDATE,
        ),
        Target::Collections => {
            // Partitions first: nothing below may lock host.items before.
            tx.execute(
                "SELECT count(host.ensure_partition(id)) \
                 FROM (SELECT DISTINCT id FROM pg_temp.host_load_collections ORDER BY id) s",
                &[],
            )
            .await?;
            (
                "host.collections",
                "pg_temp.host_load_collections",
                "id",
                "id, content",
                "content = EXCLUDED.content",
            )
        }
    };
    if method == Method::Insert {
        let n = tx
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
    if method == Method::Delsert && target == Target::Items {
        // Lock what will be deleted in key order, then delete it.
        tx.execute(
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
    let row = tx
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
pub async fn items_changed(
    tx: &Transaction<'_>,
    collections: &[String],
    mode: Option<ExtentMode>,
) -> Result<(), tokio_postgres::Error> {
    if collections.is_empty() {
        return Ok(());
    }
    let mode = mode.map(ExtentMode::as_str);
    tx.execute(
        "SELECT host.items_changed($1::text[], $2::text)",
        &[&collections, &mode],
    )
    .await?;
    Ok(())
}
