//! Deleting items and collections from pgstac, and recomputing extents, as
//! pgstac's own functions do it, each in one transaction:
//!
//! - items go with `DELETE FROM pgstac.items` (what `delete_item` does, for
//!   many ids at once), named by collection so only its partitions are
//!   scanned; pgstac's statement trigger keeps `partition_stats` and its
//!   item cache, and afterwards `update_partition_stats_q` refreshes the
//!   ranges of the partitions deleted from, as after a load;
//! - a collection goes with `pgstac.delete_collection`, whose trigger drops
//!   its partitions, statistics, base items and queryables;
//! - extents are pgstac's `collection_extent`, written as its
//!   `update_collection_extents` writes them.
//!
//! Refused where pgstac cannot do it safely: when pgstac is read-only (its
//! `readonly` setting, for replicas and maintenance windows).

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::Pgstac;
use super::search::in_pgstac;
use crate::catalog::tables::{item_count, lock_collection};
use crate::catalog::{
    CatalogError, CollectionDeleted, ExtentSelection, ExtentsUpdated, ItemSelection, ItemsDeleted,
};

impl Pgstac {
    pub(in crate::catalog) async fn delete_items(
        &self,
        client: &mut Client,
        collection: &str,
        which: &ItemSelection,
    ) -> Result<ItemsDeleted, CatalogError> {
        let db = CatalogError::db("delete");
        refuse_readonly(client, "delete items").await?;
        let tx = client.transaction().await.map_err(&db)?;
        // KEY SHARE: the collection cannot be deleted meanwhile, and loads
        // into it (whose items take the same lock) go on.
        lock_collection(&tx, "pgstac", collection, "FOR KEY SHARE").await?;
        let rows = match which {
            ItemSelection::All => {
                tx.query(
                    "DELETE FROM pgstac.items WHERE collection = $1::text RETURNING id, tableoid",
                    &[&collection],
                )
                .await
            }
            ItemSelection::Ids(ids) => {
                tx.query(
                    "DELETE FROM pgstac.items WHERE collection = $1::text AND id = ANY($2::text[]) \
                     RETURNING id, tableoid",
                    &[&collection, ids],
                )
                .await
            }
        }
        .map_err(&db)?;
        tx.commit().await.map_err(&db)?;
        let oids: BTreeSet<u32> = rows.iter().map(|r| r.get(1)).collect();
        let oids: Vec<u32> = oids.into_iter().collect();
        let partitions: Vec<String> = client
            .query(
                "SELECT relname::text FROM pg_class WHERE oid = ANY($1::oid[]) ORDER BY 1",
                &[&oids],
            )
            .await
            .map_err(&db)?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        for p in &partitions {
            update_partition_stats(client, p).await;
        }
        let deleted = rows.into_iter().map(|r| r.get(0)).collect();
        Ok(ItemsDeleted::new(collection, which, deleted))
    }

    pub(in crate::catalog) async fn delete_collection(
        &self,
        client: &mut Client,
        collection: &str,
    ) -> Result<CollectionDeleted, CatalogError> {
        let db = CatalogError::db("delete");
        refuse_readonly(client, "delete a collection").await?;
        let tx = client.transaction().await.map_err(&db)?;
        lock_collection(&tx, "pgstac", collection, "FOR UPDATE").await?;
        // Under the collection's lock no item can be added: this count is
        // what goes away.
        let items = item_count(&tx, "pgstac", collection).await?;
        tx.batch_execute("SET LOCAL search_path TO pgstac, public")
            .await
            .map_err(&db)?;
        tx.execute("SELECT pgstac.delete_collection($1::text)", &[&collection])
            .await
            .map_err(&db)?;
        tx.commit().await.map_err(&db)?;
        Ok(CollectionDeleted {
            collection: collection.to_string(),
            items,
        })
    }

    pub(in crate::catalog) async fn update_extents(
        &self,
        client: &mut Client,
        which: &ExtentSelection,
    ) -> Result<ExtentsUpdated, CatalogError> {
        let db = CatalogError::db("updating extents");
        match which {
            ExtentSelection::Queued => {
                let n = crate::migrate::drain_pgstac_queue(client)
                    .await
                    .map_err(&db)?;
                Ok(ExtentsUpdated {
                    collections: 0,
                    statements: Some(n),
                })
            }
            ExtentSelection::All | ExtentSelection::Collections(_) => {
                let ids: Vec<String> = match which {
                    ExtentSelection::Collections(ids) => {
                        for id in ids {
                            item_count(client, "pgstac", id).await?;
                        }
                        ids.clone()
                    }
                    _ => client
                        .query("SELECT id FROM pgstac.collections ORDER BY id", &[])
                        .await
                        .map_err(&db)?
                        .into_iter()
                        .map(|r| r.get(0))
                        .collect(),
                };
                let n = update_extents_of(client, &ids).await.map_err(&db)?;
                Ok(ExtentsUpdated {
                    collections: n,
                    statements: None,
                })
            }
        }
    }
}

/// Recomputes the extents of these collections from their items (pgstac's
/// `collection_extent`, refreshing partition statistics first), in id
/// order. A collection without items keeps its extent.
pub(super) async fn update_extents_of(
    client: &Client,
    collections: &[String],
) -> Result<u64, tokio_postgres::Error> {
    in_pgstac(client, async {
        client
            .execute(
                "UPDATE pgstac.collections c \
                 SET content = jsonb_set_lax(c.content, '{extent}', pgstac.collection_extent(c.id, true), \
                                             true, 'return_target') \
                 FROM (SELECT id FROM pgstac.collections WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE) s \
                 WHERE c.id = s.id",
                &[&collections],
            )
            .await
    })
    .await
}

/// What pypgstac runs after loading a partition; a failure is a warning
/// (the rows are committed; only the observed ranges lag).
///
/// The collection's row is locked first (`FOR NO KEY UPDATE`, what the
/// statistics' own extent update takes), so this step and a `delete
/// collection` (row `FOR UPDATE`, then the partition) take their locks in
/// one order: without it each held the partition weakly and wanted it
/// exclusively (pgstac alters its constraint; the delete drops it), and
/// PostgreSQL broke the deadlock by failing one. Which collection owns the
/// partition is read before, in a statement of its own: reading
/// `partition_sys_meta` locks the partition until its transaction ends, so
/// read inside the transaction it put the partition's lock before the
/// row's again (a delete during a load's last step deadlocked:
/// `pgstac_admin::a_collection_deleted_during_a_load_waits_for_it_and_leaves_nothing`).
/// A collection deleted meanwhile has no partition left to refresh.
pub(super) async fn update_partition_stats(client: &Client, partition: &str) {
    let r = async {
        let collection: Option<String> = client
            .query_opt(
                "SELECT collection FROM pgstac.partition_sys_meta WHERE partition = $1",
                &[&partition],
            )
            .await?
            .map(|r| r.get(0));
        let Some(collection) = collection else {
            return Ok(());
        };
        in_pgstac(client, async {
            let owner = client
                .query_opt(
                    "SELECT 1 FROM pgstac.collections WHERE id = $1 FOR NO KEY UPDATE",
                    &[&collection],
                )
                .await?;
            if owner.is_some() {
                client
                    .execute("SELECT pgstac.update_partition_stats_q($1)", &[&partition])
                    .await?;
            }
            Ok(())
        })
        .await
    }
    .await;
    if let Err(e) = r {
        tracing::warn!(
            "could not update pgstac's statistics of partition {partition}: {}; \
             run `SELECT pgstac.update_partition_stats('{partition}')` to refresh them",
            crate::db::describe(&e)
        );
    }
}

async fn refuse_readonly(client: &Client, what: &str) -> Result<(), CatalogError> {
    let readonly: bool = in_pgstac(client, async {
        Ok(client
            .query_one("SELECT pgstac.readonly()", &[])
            .await?
            .get(0))
    })
    .await
    .map_err(CatalogError::db("reading pgstac's settings"))?;
    if readonly {
        return Err(CatalogError::Unsupported(format!(
            "pgstac is read-only (its readonly setting is true); refusing to {what}: \
             writing would go around it"
        )));
    }
    Ok(())
}
