//! The SQL side of a load into pgstac: the staging tables COPY fills,
//! partitions (through pgstac's own `check_partition`), merging staged rows
//! into `pgstac.items` / `pgstac.collections` with each method's semantics,
//! and pgstac's partition statistics afterwards.
//!
//! A load runs in four steps on one connection:
//! 1. rows are COPYed into session temp tables (nothing of pgstac is touched);
//! 2. the partitions they need are created or widened by `check_partition`,
//!    each in its own short transaction (as pypgstac does), under a
//!    per-collection advisory lock so two loads never compute constraints
//!    from each other's half-finished state;
//! 3. one transaction moves the rows in with the method's semantics (into
//!    the collection's own partition when the load has one collection);
//! 4. after commit, `update_partition_stats_q` for every partition loaded
//!    into, as pypgstac does: it fills `partition_stats` (ranges, extent,
//!    `last_updated`), narrows the partitions' constraints to their rows,
//!    and updates collection extents when pgstac's settings say so.
//!
//! A load whose first rows all belong to one collection kept in one
//! partition (no `partition_trunc`) may skip the staging table ([`Straight`]):
//! step 2 runs for that collection before the first row (its partition is
//! made, and its constraints widened to any time, until step 4 narrows them
//! to the rows), and step 1 COPYs straight into the partition inside step
//! 3's transaction.
//! - `insert` always may: a bare COPY is what pypgstac does for insert, and a
//!   duplicate id fails the COPY as it fails the merge.
//! - `insert_ignore`, `upsert` and `delsert` may when the collection is
//!   empty, which is checked under a `SHARE ROW EXCLUSIVE` lock on the
//!   partition held to commit (readers go on; other loads' writes into it
//!   wait, and then find it no longer empty), and only while the rows' keys
//!   come strictly increasing: then none of them repeats an id, and every
//!   row is new, as the method's merge would have found.
//!
//! Rows that do not follow (of another collection, or a key not greater
//! than the one before) go, with every row after them, to the staging table
//! in the same transaction; their partitions are made in it, and they are
//! merged with the method over what went straight (for the collection that
//! was empty, what is in its partition is this load's own earlier rows).
//!
//! When that partition does not exist yet (a new collection's first load)
//! and this role is the one pgstac's functions run as, the load makes it
//! itself, inside its transaction, as a plain table COPY fills without
//! indexes or foreign-key checks, then indexes it and attaches it to
//! `pgstac.items` before `check_partition` runs on it as on any partition
//! (`Made::ByLoad`), for any method: a partition that did not exist holds
//! no rows, so no lock is needed to know it is empty. This is the one case
//! where partition work happens in
//! the load's transaction: the collection's advisory lock is held to its
//! end, so another load into the collection waits for it, and the attach
//! takes `SHARE UPDATE EXCLUSIVE` on `pgstac.items` (searches and loads of
//! other collections go on) for its last moments.
//!
//! If step 3 fails nothing is loaded; partitions created in step 2 stay
//! (empty, or with constraints that still hold), as with pypgstac. Step 4
//! failing is a warning, as with pypgstac: the rows are committed.
//!
//! Concurrent loads into one collection: partition work never happens
//! inside a staged load's transaction, so it holds no DDL lock while it
//! waits; rows that will be replaced are locked in `(collection, id)` order
//! before they are deleted, so loads with overlapping ids wait for each
//! other instead of deadlocking; inserts resolve conflicts with `ON
//! CONFLICT`, so an id another load committed meanwhile is skipped or
//! replaced, never lost. Of two loads into one empty collection one goes
//! straight and the other, waiting on its partition lock, merges after it.
//! Two loads that go straight into different collections and then have rows
//! of each other's can deadlock (each holds its partition, and by COPYing
//! into it a lock on `pgstac.items`, while it needs the other's):
//! PostgreSQL fails one of them whole (docs/benchmarks.md, issue 11).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use tokio_postgres::Client;

use crate::catalog::{CatalogError, ExtentMode, KeyOrder, Kind, Merged, Method};

const ITEMS_STAGING: &str = "pg_temp.host_pgstac_items";
const COLLECTIONS_STAGING: &str = "pg_temp.host_pgstac_collections";
const PARTS: &str = "pg_temp.host_pgstac_partitions";

/// Key of the advisory lock around a collection's partition changes.
const PARTITION_LOCK: i32 = 0x7067_7374; // "pgst"

const ITEM_COLUMNS: &str = "id, geometry, collection, datetime, end_datetime, content, private";

/// One load into pgstac: what it writes, how, and its extents.
#[derive(Debug)]
pub struct Plan {
    kind: Kind,
    method: Method,
    extents: Option<ExtentMode>,
    /// How the load's transactions compress the values PostgreSQL TOASTs.
    compression: Compression,
    /// Where the rows go.
    target: Target,
}

/// Where a load's rows go.
#[derive(Debug, Clone)]
enum Target {
    /// No COPY started yet.
    Undecided,
    /// The staging table, merged after partitions are made (steps 1–4).
    Staging,
    /// Rows of `collection`, straight into its `partition` (named as
    /// `check_partition` returns it) inside the load's transaction, while
    /// `straight` allows; `then_staged` once later rows went to the staging
    /// table in that transaction.
    Partition {
        collection: String,
        partition: String,
        made: Made,
        straight: Straight,
        then_staged: bool,
    },
}

/// Who made the partition a load COPYs straight into.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Made {
    /// pgstac's `check_partition`, before the load's transaction: every
    /// row COPY writes updates the partition's indexes and queues a
    /// foreign-key check.
    ByPgstac,
    /// This load, in its own transaction, as a table of its own that is
    /// attached to `pgstac.items` after COPY: PostgreSQL then builds the
    /// partition's indexes from the rows in one pass each, and checks the
    /// foreign key with one query, instead of once per row (measured:
    /// docs/benchmarks.md, issue 11). After the attach `check_partition`
    /// runs as for any partition, so the table ends up as pgstac makes it.
    /// `owner` is the role pgstac's functions run as, which the table is
    /// made as.
    ByLoad { owner: String },
}

/// Which rows may go straight into a collection's partition (see the
/// module's docs).
#[derive(Debug, Clone)]
enum Straight {
    /// An insert's: every row of the collection.
    Any,
    /// insert_ignore's, upsert's or delsert's into a collection that was
    /// empty: rows whose keys follow those sent so far (these).
    Increasing(KeyOrder),
}

impl Straight {
    /// Whether rows with keys as `order` says may follow; if so, notes them.
    fn takes(&mut self, order: &KeyOrder) -> bool {
        match self {
            Straight::Any => true,
            Straight::Increasing(sent) => {
                let follows = sent.continues_with(order);
                if follows {
                    sent.append(order.clone());
                }
                follows
            }
        }
    }

    /// The collection whose every stored row this load wrote, if any.
    fn fresh<'a>(&self, collection: &'a str) -> Option<&'a str> {
        match self {
            Straight::Any => None,
            Straight::Increasing(_) => Some(collection),
        }
    }
}

/// The TOAST compression of the values a load writes. Compressing items'
/// `content` with PostgreSQL's default, pglz, is about a third of the
/// server's work in a load (measured: docs/benchmarks.md, issue 11); lz4
/// does it several times faster and reads back faster. The values stored
/// are the same either way: only how PostgreSQL packs them differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::catalog) enum Compression {
    /// What the database says (someone chose it, or the server has no lz4).
    Server,
    /// lz4: the server has it and `default_toast_compression` is its
    /// built-in default, not anyone's choice.
    Lz4,
}

impl Compression {
    /// What a load into the database behind `client` uses.
    pub(in crate::catalog) async fn choose(
        client: &Client,
    ) -> Result<Compression, tokio_postgres::Error> {
        let lz4: Option<bool> = client
            .query_opt(
                "SELECT source = 'default' AND 'lz4' = ANY (enumvals) FROM pg_settings \
                 WHERE name = 'default_toast_compression'",
                &[],
            )
            .await?
            .map(|r| r.get(0));
        Ok(if lz4 == Some(true) {
            Compression::Lz4
        } else {
            Compression::Server
        })
    }

    /// Opens a transaction of the load.
    fn begin(self) -> &'static str {
        match self {
            Compression::Server => "BEGIN",
            Compression::Lz4 => "BEGIN; SET LOCAL default_toast_compression = lz4",
        }
    }
}

impl Plan {
    pub(in crate::catalog) fn new(
        kind: Kind,
        method: Method,
        extents: Option<ExtentMode>,
        compression: Compression,
    ) -> Plan {
        Plan {
            kind,
            method,
            extents,
            compression,
            target: Target::Undecided,
        }
    }

    /// Creates the load's staging table (session-long: it outlives step 1's
    /// transaction; step 3 drops it) and opens step 1's transaction.
    pub(in crate::catalog) async fn begin(
        &self,
        client: &Client,
    ) -> Result<(), tokio_postgres::Error> {
        let sql = match self.kind {
            // Item rows have no number (they may go straight into a
            // partition): the staging table numbers them in the order COPY
            // takes them, which is the load's, for the merge's "first" and
            // "last" copy of an id.
            Kind::Items => format!(
                "SET client_min_messages TO warning; DROP TABLE IF EXISTS {ITEMS_STAGING}; DROP TABLE IF EXISTS {PARTS}; \
                 CREATE TEMP TABLE host_pgstac_items (LIKE pgstac.items INCLUDING COMPRESSION INCLUDING STORAGE, \
                 seq bigint GENERATED ALWAYS AS IDENTITY); {}",
                self.compression.begin()
            ),
            Kind::Collections => format!(
                "SET client_min_messages TO warning; DROP TABLE IF EXISTS {COLLECTIONS_STAGING}; \
                 CREATE TEMP TABLE host_pgstac_collections \
                 (seq bigint NOT NULL, id text NOT NULL, content jsonb NOT NULL); {}",
                self.compression.begin()
            ),
        };
        client.batch_execute(&sql).await
    }

    /// The COPY statement of the staging table.
    fn staging_copy(&self) -> &'static str {
        match self.kind {
            Kind::Items => {
                "COPY pg_temp.host_pgstac_items \
                 (id, geometry, collection, datetime, end_datetime, content, private) \
                 FROM STDIN (FORMAT binary)"
            }
            Kind::Collections => "COPY pg_temp.host_pgstac_collections FROM STDIN (FORMAT binary)",
        }
    }

    /// Whether the current COPY takes the next rows, of `collections` with
    /// keys as `order` says (if so, it notes them).
    pub(in crate::catalog) fn takes(
        &mut self,
        collections: &BTreeSet<String>,
        order: &KeyOrder,
    ) -> bool {
        match &mut self.target {
            Target::Partition {
                collection,
                straight,
                then_staged: false,
                ..
            } => collections.iter().all(|c| c == collection) && straight.takes(order),
            _ => true,
        }
    }

    /// Where the next COPY goes, for rows of `collections` with keys as
    /// `order` says: chosen once, by the load's first rows (see the
    /// module's docs); after a partition, the staging table.
    pub(in crate::catalog) async fn copy_target(
        &mut self,
        client: &Client,
        collections: &BTreeSet<String>,
        order: &KeyOrder,
    ) -> Result<Cow<'static, str>, CatalogError> {
        match &mut self.target {
            Target::Undecided => {}
            Target::Staging => return Ok(Cow::Borrowed(self.staging_copy())),
            Target::Partition { then_staged, .. } => {
                *then_staged = true;
                return Ok(Cow::Borrowed(self.staging_copy()));
            }
        }
        self.target = Target::Staging;
        let single = match (self.kind, collections.len()) {
            (Kind::Items, 1) => collections.first(),
            _ => None,
        };
        let Some(collection) = single else {
            return Ok(Cow::Borrowed(self.staging_copy()));
        };
        let straight = match self.method {
            Method::Insert => Straight::Any,
            _ if order.strictly_increasing() => Straight::Increasing(order.clone()),
            _ => return Ok(Cow::Borrowed(self.staging_copy())),
        };
        let load = |e| CatalogError::load(self.kind, e);
        let (partition, made) = match build_partition(client, collection).await.map_err(load)? {
            // A partition that did not exist holds no rows: any method's
            // rows may go straight into it.
            Some((partition, owner)) => {
                lock_collections(client, std::slice::from_ref(collection)).await?;
                (partition, Made::ByLoad { owner })
            }
            None => match self.open_straight(client, collection, &straight).await? {
                Some(partition) => (partition, Made::ByPgstac),
                None => return Ok(Cow::Borrowed(self.staging_copy())),
            },
        };
        match made {
            Made::ByPgstac => tracing::debug!(
                %partition,
                method = ?self.method,
                "rows go straight into the partition"
            ),
            Made::ByLoad { .. } => tracing::debug!(
                %partition,
                method = ?self.method,
                "rows go straight into the partition, a new table attached after COPY"
            ),
        }
        let statement = format!(
            "COPY pgstac.{} ({ITEM_COLUMNS}) FROM STDIN (FORMAT binary)",
            crate::xmat::sql::ident(&partition)
        )
        .into();
        self.target = Target::Partition {
            collection: collection.clone(),
            partition,
            made,
            straight,
            then_staged: false,
        };
        Ok(statement)
    }

    /// Makes `collection`'s partition ready for rows going straight into it
    /// and opens the load's transaction; returns the partition's name, or
    /// `None` (with the transaction open as before) when its rows must be
    /// staged: the collection is partitioned by time, or `straight` needs it
    /// empty and it is not.
    async fn open_straight(
        &self,
        client: &Client,
        collection: &str,
        straight: &Straight,
    ) -> Result<Option<String>, CatalogError> {
        let load = |e| CatalogError::load(self.kind, e);
        let needs_empty = matches!(straight, Straight::Increasing(_));
        // A first look, without a lock: a collection with items is merged
        // as it is, without widening its partition's constraints (which
        // validates every row) for nothing.
        if needs_empty && !collection_empty(client, collection).await.map_err(load)? {
            return Ok(None);
        }
        let Some(partition) = open_partition(client, collection, self.compression)
            .await
            .map_err(load)?
        else {
            return Ok(None);
        };
        // The collection's row first, then its partition: `host delete
        // collection` locks them in that order.
        lock_collections(client, &[collection.to_string()]).await?;
        if needs_empty {
            // Other loads' writes into the partition now wait for this one
            // to commit; one that wrote before it is committed by now.
            let table = format!("pgstac.{}", crate::xmat::sql::ident(&partition));
            client
                .batch_execute(&format!(
                    "LOCK TABLE ONLY {table} IN SHARE ROW EXCLUSIVE MODE"
                ))
                .await
                .map_err(load)?;
            let empty: bool = client
                .query_one(&format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"), &[])
                .await
                .map_err(load)?
                .get(0);
            if !empty {
                client
                    .batch_execute(&format!("ROLLBACK; {}", self.compression.begin()))
                    .await
                    .map_err(load)?;
                return Ok(None);
            }
        }
        Ok(Some(partition))
    }

    /// Steps 2 to 4.
    pub(in crate::catalog) async fn finish(
        &self,
        client: &Client,
        staged: u64,
        collections: &[String],
        order: &KeyOrder,
    ) -> Result<Merged, CatalogError> {
        if let Target::Partition {
            collection,
            partition,
            made,
            straight,
            then_staged,
        } = &self.target
        {
            if let Made::ByLoad { owner } = made {
                attach_partition(client, collection, partition, owner)
                    .await
                    .map_err(|e| CatalogError::load(self.kind, e))?;
            }
            let fresh = straight.fresh(collection);
            let staged_too = *then_staged;
            return self
                .finish_partition(
                    client,
                    staged,
                    partition,
                    staged_too,
                    fresh,
                    collections,
                    order,
                )
                .await;
        }
        let load = |e| CatalogError::load(self.kind, e);
        // The staged rows are in a session temp table: commit that, make the
        // partitions in their own transactions, then merge in one.
        client.batch_execute("COMMIT").await.map_err(load)?;
        let partitions = match self.kind {
            Kind::Items => {
                let phase = Instant::now();
                let p = prepare_partitions(client).await.map_err(load)?;
                tracing::debug!(
                    partitions = p.len(),
                    seconds = phase.elapsed().as_secs_f64(),
                    "partitions"
                );
                p
            }
            Kind::Collections => Vec::new(),
        };
        let phase = Instant::now();
        client
            .batch_execute(self.compression.begin())
            .await
            .map_err(load)?;
        if self.kind == Kind::Items {
            lock_collections(client, collections).await?;
        }
        let merged = match self.kind {
            Kind::Items => merge_items(client, self.method, staged, collections, order, None).await,
            Kind::Collections => merge_collections(client, self.method, staged).await,
        }
        .map_err(load)?;
        client.batch_execute("COMMIT").await.map_err(load)?;
        tracing::debug!(
            seconds = phase.elapsed().as_secs_f64(),
            "merged and committed"
        );
        self.statistics(client, &partitions, collections).await?;
        Ok(merged)
    }

    /// Steps 3 and 4 of a load that COPYed into `partition` (and, if
    /// `then_staged`, into the staging table too), all in the open
    /// transaction; `fresh`: the collection of `partition` if every row in
    /// it is this load's. Rows that went straight are all new and distinct.
    #[allow(clippy::too_many_arguments)]
    async fn finish_partition(
        &self,
        client: &Client,
        copied: u64,
        partition: &str,
        then_staged: bool,
        fresh: Option<&str>,
        collections: &[String],
        order: &KeyOrder,
    ) -> Result<Merged, CatalogError> {
        let load = |e| CatalogError::load(self.kind, e);
        let phase = Instant::now();
        let mut partitions = vec![partition.to_string()];
        let mut merged = Merged {
            loaded: copied,
            ..Merged::default()
        };
        if then_staged {
            // Rows that did not follow: their partitions are made in this
            // transaction (a rare load: its first rows were of one
            // collection, in key order), and they are merged with the method.
            partitions.extend(prepare_partitions_in(client).await.map_err(load)?);
            lock_collections(client, collections).await?;
            let staged: i64 = client
                .query_one(&format!("SELECT count(*) FROM {ITEMS_STAGING}"), &[])
                .await
                .map_err(load)?
                .get(0);
            let staged = staged as u64;
            let m = merge_items(client, self.method, staged, collections, order, fresh)
                .await
                .map_err(load)?;
            merged = Merged {
                loaded: copied - staged + m.loaded,
                ..m
            };
        } else {
            client
                .batch_execute(&format!("DROP TABLE {ITEMS_STAGING}"))
                .await
                .map_err(load)?;
        }
        client.batch_execute("COMMIT").await.map_err(load)?;
        tracing::debug!(
            seconds = phase.elapsed().as_secs_f64(),
            "merged and committed"
        );
        self.statistics(client, &partitions, collections).await?;
        Ok(merged)
    }

    /// Step 4.
    async fn statistics(
        &self,
        client: &Client,
        partitions: &[String],
        collections: &[String],
    ) -> Result<(), CatalogError> {
        let phase = Instant::now();
        for p in partitions {
            super::admin::update_partition_stats(client, p).await;
        }
        if self.kind == Kind::Items && self.extents == Some(ExtentMode::Immediate) {
            super::admin::update_extents_of(client, collections)
                .await
                .map_err(CatalogError::db("updating extents"))?;
        }
        tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "statistics");
        Ok(())
    }

    /// Drops the session's staging tables after a failure.
    pub(in crate::catalog) async fn drop_staging(&self, client: &Client) {
        let _ = client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {ITEMS_STAGING}; DROP TABLE IF EXISTS {COLLECTIONS_STAGING}; \
                 DROP TABLE IF EXISTS {PARTS}"
            ))
            .await;
    }
}

/// Step 3 begins by locking the items' collections (`FOR KEY SHARE`, in id
/// order, as `host delete items` does): a collection deleted meanwhile waits
/// for the load to commit, or, deleted before, fails the load by name here
/// instead of as a row with no partition (pgstac drops a collection's
/// partitions with it).
async fn lock_collections(client: &Client, collections: &[String]) -> Result<(), CatalogError> {
    let found: HashSet<String> = client
        .query(
            "SELECT id FROM pgstac.collections WHERE id = ANY($1::text[]) ORDER BY id FOR KEY SHARE",
            &[&collections],
        )
        .await
        .map_err(|e| CatalogError::load(Kind::Items, e))?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    match collections.iter().find(|c| !found.contains(*c)) {
        Some(gone) => Err(CatalogError::CollectionDeleted(gone.clone())),
        None => Ok(()),
    }
}

/// Step 2: creates or widens, through `pgstac.check_partition`, every
/// partition the staged items need, each in its own transaction, in
/// (collection, period) order. Returns the partitions' names.
async fn prepare_partitions(client: &Client) -> Result<Vec<String>, tokio_postgres::Error> {
    let n = plan_partitions(client).await?;
    let mut names = Vec::with_capacity(n as usize);
    for i in 1..=n {
        client.batch_execute("BEGIN").await?;
        let name = async {
            let name = check_partition(client, i).await?;
            client.batch_execute("COMMIT").await?;
            Ok::<_, tokio_postgres::Error>(name)
        }
        .await;
        match name {
            Ok(name) => names.push(name),
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(e);
            }
        }
    }
    client.batch_execute(&format!("DROP TABLE {PARTS}")).await?;
    Ok(names)
}

/// Step 2 inside the open transaction (for the staged rows of an insert
/// that began in a partition).
async fn prepare_partitions_in(client: &Client) -> Result<Vec<String>, tokio_postgres::Error> {
    let n = plan_partitions(client).await?;
    let mut names = Vec::with_capacity(n as usize);
    for i in 1..=n {
        names.push(check_partition(client, i).await?);
    }
    client.batch_execute(&format!("DROP TABLE {PARTS}")).await?;
    Ok(names)
}

/// Lists the (collection, period) partitions the staged items need, with
/// their time ranges, numbered from 1; returns how many.
async fn plan_partitions(client: &Client) -> Result<i64, tokio_postgres::Error> {
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
    Ok(client
        .query_one(&format!("SELECT count(*) FROM {PARTS}"), &[])
        .await?
        .get(0))
}

/// `check_partition` for the `i`th planned partition, under its
/// collection's advisory lock (held to the end of the transaction).
async fn check_partition(client: &Client, i: i64) -> Result<String, tokio_postgres::Error> {
    client
        .execute(
            &format!(
                "SELECT pg_advisory_xact_lock({PARTITION_LOCK}, hashtext(collection)) FROM {PARTS} WHERE n = $1"
            ),
            &[&i],
        )
        .await?;
    Ok(client
        .query_one(
            &format!(
                "SELECT pgstac.check_partition(collection, dtrange, edtrange) FROM {PARTS} WHERE n = $1"
            ),
            &[&i],
        )
        .await?
        .get(0))
}

/// Takes `collection`'s advisory lock around partition changes, to the end
/// of the transaction.
async fn lock_partitions_of(
    client: &Client,
    collection: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            &format!("SELECT pg_advisory_xact_lock({PARTITION_LOCK}, hashtext($1))"),
            &[&collection],
        )
        .await?;
    Ok(())
}

/// `check_partition` for `collection`'s one partition with the widest
/// constraints (any time): step 4 narrows them to the rows once they are
/// committed. Returns the partition's name.
async fn check_partition_for_any_time(
    client: &Client,
    collection: &str,
) -> Result<String, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT pgstac.check_partition($1, tstzrange('-infinity', 'infinity', '[]'), \
             tstzrange('-infinity', 'infinity', '[]'))",
            &[&collection],
        )
        .await?
        .get(0))
}

/// For an insert whose first rows are all of `collection`, kept in one
/// partition that does not exist yet: creates that partition, in the load's
/// open transaction, as a table of its own shaped like `pgstac.items` (see
/// `Made::ByLoad`), and returns its name and owner; `None` (nothing done) when the
/// partition exists, the collection is partitioned by time, or this role is
/// not the one pgstac's functions run as (a table it made would not be
/// owned and granted as pgstac's own are).
///
/// The collection's advisory lock is held to the end of the load: another
/// load into the collection waits for this one (then finds the partition
/// made), instead of making it a second time.
async fn build_partition(
    client: &Client,
    collection: &str,
) -> Result<Option<(String, String)>, tokio_postgres::Error> {
    // pgstac's functions are SECURITY DEFINER: the partitions they make
    // belong to the functions' owner (pgstac_admin), with that role's
    // default privileges. The table is made as that role too, so it can be
    // made only by a role that may act as it.
    let row = client
        .query_opt(
            "SELECT '_items_' || c.key, f.proowner::regrole::text \
             FROM pgstac.collections c, pg_proc f, pg_class t \
             WHERE c.id = $1 AND c.partition_trunc IS NULL \
               AND f.oid = 'pgstac.check_partition(text, tstzrange, tstzrange)'::regprocedure \
               AND t.oid = 'pgstac.items'::regclass AND t.relowner = f.proowner \
               AND pg_has_role(current_user, f.proowner, 'MEMBER')",
            &[&collection],
        )
        .await?;
    let Some((partition, owner)) = row.map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
    else {
        return Ok(None);
    };
    lock_partitions_of(client, collection).await?;
    let exists: bool = client
        .query_one(
            "SELECT to_regclass(format('pgstac.%I', $1::text)) IS NOT NULL",
            &[&partition],
        )
        .await?
        .get(0);
    if exists {
        return Ok(None);
    }
    client
        .batch_execute(&format!(
            "SET LOCAL ROLE {owner}; \
             CREATE TABLE pgstac.{} (LIKE pgstac.items INCLUDING DEFAULTS INCLUDING CONSTRAINTS \
             INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING GENERATED); \
             SET LOCAL ROLE NONE",
            crate::xmat::sql::ident(&partition)
        ))
        .await?;
    Ok(Some((partition, owner)))
}

/// Makes the table `build_partition` made and COPY filled `collection`'s
/// partition: its unique id index first (pgstac's `check_partition` would
/// build it too, but it turns any error into a notice, and a duplicate id
/// must fail the load by name), then the attach (which builds the other
/// indexes and checks the foreign key over the rows), then
/// `check_partition` as for any partition, with the widest constraints
/// (step 4 narrows them to the rows).
async fn attach_partition(
    client: &Client,
    collection: &str,
    partition: &str,
    owner: &str,
) -> Result<(), tokio_postgres::Error> {
    let table = crate::xmat::sql::ident(partition);
    let phase = Instant::now();
    // As the owner, as pgstac would (indexes belong to their table's owner
    // whoever builds them; the role matters for what the attach runs).
    client
        .batch_execute(&format!(
            "SET LOCAL ROLE {owner}; \
             CREATE UNIQUE INDEX {} ON pgstac.{table} (id); \
             ALTER TABLE pgstac.items ATTACH PARTITION pgstac.{table} FOR VALUES IN ({}); \
             SET LOCAL ROLE NONE",
            crate::xmat::sql::ident(&format!("{partition}_pk")),
            crate::xmat::sql::literal(collection)
        ))
        .await?;
    check_partition_for_any_time(client, collection).await?;
    tracing::debug!(
        %partition,
        seconds = phase.elapsed().as_secs_f64(),
        "partition indexed and attached"
    );
    Ok(())
}

/// For an insert whose first rows are all of `collection`: ends the
/// transaction `Plan::begin` opened (nothing is in it), makes the
/// collection's partition ready for rows of any time in a transaction of
/// its own (as step 2 does), and opens the load's transaction. Returns the
/// partition's name, or `None` (and the transaction open as before) when
/// the collection is partitioned by time: which periods its rows need is
/// known only once they are all read.
async fn open_partition(
    client: &Client,
    collection: &str,
    compression: Compression,
) -> Result<Option<String>, tokio_postgres::Error> {
    let one_partition: Option<bool> = client
        .query_opt(
            "SELECT partition_trunc IS NULL FROM pgstac.collections WHERE id = $1",
            &[&collection],
        )
        .await?
        .map(|r| r.get(0));
    if one_partition != Some(true) {
        return Ok(None);
    }
    client.batch_execute("COMMIT; BEGIN").await?;
    let name = async {
        lock_partitions_of(client, collection).await?;
        let name = check_partition_for_any_time(client, collection).await?;
        client.batch_execute("COMMIT").await?;
        Ok::<_, tokio_postgres::Error>(name)
    }
    .await;
    match name {
        Ok(name) => {
            client.batch_execute(compression.begin()).await?;
            Ok(Some(name))
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Whether `collection` has no item (committed).
async fn collection_empty(
    client: &Client,
    collection: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM pgstac.items WHERE collection = $1)",
            &[&collection],
        )
        .await?
        .get(0))
}

/// Where step 3 inserts the rows of `collections`: the one collection's own
/// partition of `pgstac.items` when the load has one collection, else
/// `pgstac.items`. Inserting into the partition spares PostgreSQL a copy of
/// every row: `pgstac.items`' statement trigger captures the rows inserted
/// (a transition table) only to refresh their partitions' statistics, which
/// step 4 does anyway (`check_partition`, in step 2, already recorded the
/// partitions), and it fires only for statements naming `pgstac.items`.
async fn insert_target(
    client: &Client,
    collections: &[String],
) -> Result<String, tokio_postgres::Error> {
    let [collection] = collections else {
        return Ok("pgstac.items".into());
    };
    // pgstac names a collection's partition `_items_<key>` (partitioned
    // further by time when the collection's partition_trunc says so).
    let partition: Option<String> = client
        .query_opt(
            "SELECT format('pgstac.%I', p.relname) FROM pgstac.collections c \
             JOIN pg_class p ON p.relname = '_items_' || c.key \
                            AND p.relnamespace = 'pgstac'::regnamespace \
             JOIN pg_inherits i ON i.inhrelid = p.oid AND i.inhparent = 'pgstac.items'::regclass \
             WHERE c.id = $1",
            &[collection],
        )
        .await?
        .map(|r| r.get(0));
    Ok(partition.unwrap_or_else(|| "pgstac.items".into()))
}

/// Step 3 for items; `staged` is how many rows COPY took into the staging
/// table, `collections` those the load's rows belong to, `order` how their
/// keys came, `fresh` a collection whose every stored row this load wrote
/// earlier (see [`Straight::Increasing`]): a staged row with one of those
/// ids is a later copy in the load, so it replaces the earlier one (or, with
/// insert_ignore, is skipped) and the earlier one counts as skipped.
async fn merge_items(
    client: &Client,
    method: Method,
    staged: u64,
    collections: &[String],
    order: &KeyOrder,
    fresh: Option<&str>,
) -> Result<Merged, tokio_postgres::Error> {
    let s = ITEMS_STAGING;
    let target = insert_target(client, collections).await?;
    // Rows are inserted in one order, bytewise, whoever loads them, so that
    // loads with ids in common wait for each other instead of deadlocking;
    // rows that came in that order are inserted as they are (a sort of every
    // row, content and all, is a good part of the merge).
    let sorted = if order.strictly_increasing() {
        ""
    } else {
        "ORDER BY collection COLLATE \"C\", id COLLATE \"C\""
    };
    if method == Method::Insert {
        // pgstac's insert: an id already in the item's partition (or twice in
        // the load) fails the load.
        let n = client
            .execute(
                &format!(
                    "INSERT INTO {target} ({ITEM_COLUMNS}) SELECT {ITEM_COLUMNS} FROM {s} {sorted}"
                ),
                &[],
            )
            .await?;
        client.batch_execute(&format!("DROP TABLE {s}")).await?;
        return Ok(Merged {
            loaded: n,
            ..Merged::default()
        });
    }
    // One copy per id: insert_ignore keeps the first in the load, the others
    // the last. Most loads have no duplicates, and then the staged rows are
    // used as they are (no second copy of every row); rows in strictly
    // increasing key order have none, and need no look.
    let duplicates: bool = !order.strictly_increasing()
        && client
            .query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {s} GROUP BY collection, id HAVING count(*) > 1)"
                ),
                &[],
            )
            .await?
            .get(0);
    let (src, distinct) = if duplicates {
        let keep = if method == Method::InsertIgnore {
            "seq"
        } else {
            "seq DESC"
        };
        client
            .batch_execute(&format!(
                "CREATE TEMP TABLE host_pgstac_src ON COMMIT DROP AS \
                 SELECT DISTINCT ON (collection, id) {ITEM_COLUMNS} FROM {s} ORDER BY collection, id, {keep}; \
                 ANALYZE host_pgstac_src (collection, id)"
            ))
            .await?;
        let n: i64 = client
            .query_one("SELECT count(*) FROM pg_temp.host_pgstac_src", &[])
            .await?
            .get(0);
        ("pg_temp.host_pgstac_src", n as u64)
    } else {
        // For the deletes' join; the keys are all it reads (statistics of
        // `content` would read the rows whole).
        client
            .batch_execute(&format!("ANALYZE {s} (collection, id)"))
            .await?;
        (s, staged)
    };
    // Earlier copies in the load that later ones replaced.
    let mut superseded = 0;
    match method {
        // pgstac's upsert (its items_staging_upsert): rows that differ are
        // deleted, wherever their datetime put them, and the new ones
        // inserted; identical rows are left alone. A fresh collection's rows
        // are this load's own earlier copies (same transaction, so replacing
        // an identical one is not seen): all are replaced, and counted once.
        Method::Upsert | Method::Delsert => {
            // One collection at a time, so only its partitions are scanned.
            for c in collections {
                let own = fresh == Some(c.as_str());
                let differs = if method == Method::Upsert && !own {
                    "AND (o.id, o.geometry, o.collection, o.datetime, o.end_datetime, o.content, o.private) \
                     IS DISTINCT FROM (s.id, s.geometry, s.collection, s.datetime, s.end_datetime, s.content, s.private)"
                } else {
                    ""
                };
                let deleted = client
                    .execute(
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
                if own {
                    superseded = deleted;
                }
            }
        }
        Method::InsertIgnore | Method::Insert => {}
    }
    let written = client
        .execute(
            &format!(
                "INSERT INTO {target} ({ITEM_COLUMNS}) \
                 SELECT {ITEM_COLUMNS} FROM {src} {sorted} ON CONFLICT DO NOTHING"
            ),
            &[],
        )
        .await?;
    client.batch_execute(&format!("DROP TABLE {s}")).await?;
    let merged = Merged::counted(method, staged, distinct, written);
    Ok(Merged {
        loaded: merged.loaded - superseded,
        skipped: merged.skipped + superseded,
        ..merged
    })
}

/// Step 3 for collections.
async fn merge_collections(
    client: &Client,
    method: Method,
    staged: u64,
) -> Result<Merged, tokio_postgres::Error> {
    let s = COLLECTIONS_STAGING;
    let merged = if method == Method::Insert {
        let n = client
            .execute(
                &format!(
                    "INSERT INTO pgstac.collections (content) SELECT content FROM {s} ORDER BY id"
                ),
                &[],
            )
            .await?;
        Merged {
            loaded: n,
            ..Merged::default()
        }
    } else {
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
        let row = client
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
        Merged::counted(method, staged, distinct, written)
    };
    client.batch_execute(&format!("DROP TABLE {s}")).await?;
    Ok(merged)
}
