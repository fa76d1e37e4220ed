//! Deleting items and collections from host's schema, each in one
//! transaction, and recomputing collection extents.

use tokio_postgres::{Client, GenericClient};

use super::Builtin;
use crate::catalog::{
    CatalogError, CollectionDeleted, ExtentSelection, ExtentsUpdated, ItemSelection, ItemsDeleted,
};

impl Builtin {
    pub(in crate::catalog) async fn item_count(
        &self,
        client: &Client,
        collection: &str,
    ) -> Result<u64, CatalogError> {
        item_count(client, collection).await
    }

    pub(in crate::catalog) async fn delete_items(
        &self,
        client: &mut Client,
        collection: &str,
        which: &ItemSelection,
    ) -> Result<ItemsDeleted, CatalogError> {
        let db = CatalogError::db("delete");
        let tx = client.transaction().await.map_err(&db)?;
        lock_collection(&tx, collection).await?;
        let deleted: Vec<String> = match which {
            ItemSelection::All => {
                tx.query(
                    "DELETE FROM host.items WHERE collection = $1::text RETURNING id",
                    &[&collection],
                )
                .await
            }
            ItemSelection::Ids(ids) => {
                tx.query(
                    "DELETE FROM host.items WHERE collection = $1::text AND id = ANY($2::text[]) \
                     RETURNING id",
                    &[&collection, ids],
                )
                .await
            }
        }
        .map_err(&db)?
        .iter()
        .map(|r| r.get(0))
        .collect();
        tx.commit().await.map_err(&db)?;
        Ok(ItemsDeleted::new(collection, which, deleted))
    }

    pub(in crate::catalog) async fn delete_collection(
        &self,
        client: &mut Client,
        collection: &str,
    ) -> Result<CollectionDeleted, CatalogError> {
        let db = CatalogError::db("delete");
        let tx = client.transaction().await.map_err(&db)?;
        lock_collection(&tx, collection).await?;
        // The collection's items are exactly its partition: dropping the
        // partition deletes them without leaving an empty table behind. The
        // count under the collection's lock is what goes away.
        let items = item_count(&tx, collection).await?;
        tx.execute("SELECT host.drop_partition($1::text)", &[&collection])
            .await
            .map_err(&db)?;
        tx.execute(
            "DELETE FROM host.collections WHERE id = $1::text",
            &[&collection],
        )
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
        let n: i64 = match which {
            ExtentSelection::Queued => i64::from(
                client
                    .query_one("SELECT host.drain_extent_queue()", &[])
                    .await
                    .map_err(&db)?
                    .get::<_, i32>(0),
            ),
            ExtentSelection::All | ExtentSelection::Collections(_) => {
                let (all, ids) = match which {
                    ExtentSelection::Collections(ids) => (false, ids.clone()),
                    _ => (true, Vec::new()),
                };
                client
                    .query_one(
                        "SELECT count(*) FILTER (WHERE host.update_extent(c)) \
                         FROM (SELECT c FROM unnest(CASE WHEN $1 THEN ARRAY(SELECT id FROM host.collections) \
                                                   ELSE $2::text[] END) c ORDER BY c) s",
                        &[&all, &ids],
                    )
                    .await
                    .map_err(&db)?
                    .get(0)
            }
        };
        Ok(ExtentsUpdated {
            collections: n as u64,
            statements: None,
        })
    }
}

/// The collection's item count; a clear error when there is no such collection.
async fn item_count(client: &impl GenericClient, c: &str) -> Result<u64, CatalogError> {
    let row = client
        .query_opt(
            "SELECT (SELECT count(*) FROM host.items WHERE collection = $1::text) \
             FROM host.collections WHERE id = $1::text",
            &[&c],
        )
        .await
        .map_err(CatalogError::db("delete"))?;
    match row {
        Some(r) => Ok(r.get::<_, i64>(0) as u64),
        None => Err(CatalogError::NoSuchCollection(c.to_string())),
    }
}

/// Holds the collection row for the transaction (concurrent deletes queue up),
/// and fails if it went away since the count.
async fn lock_collection(tx: &impl GenericClient, c: &str) -> Result<(), CatalogError> {
    let row = tx
        .query_opt(
            "SELECT 1 FROM host.collections WHERE id = $1::text FOR UPDATE",
            &[&c],
        )
        .await
        .map_err(CatalogError::db("delete"))?;
    match row {
        Some(_) => Ok(()),
        None => Err(CatalogError::NoSuchCollection(c.to_string())),
    }
}
