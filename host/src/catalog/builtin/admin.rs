//! Deleting items and collections from host's schema, each in one
//! transaction, and recomputing collection extents.

use tokio_postgres::Client;

use super::Builtin;
use crate::catalog::tables::{item_count, lock_collection};
use crate::catalog::{
    CatalogError, CollectionDeleted, ExtentSelection, ExtentsUpdated, ItemSelection, ItemsDeleted,
};

impl Builtin {
    pub(in crate::catalog) async fn delete_items(
        &self,
        client: &mut Client,
        collection: &str,
        which: &ItemSelection,
    ) -> Result<ItemsDeleted, CatalogError> {
        let db = CatalogError::db("delete");
        let tx = client.transaction().await.map_err(&db)?;
        // KEY SHARE: the collection cannot be deleted meanwhile, and loads
        // (which hold the same lock on every collection) go on.
        lock_collection(&tx, "host", collection, "FOR KEY SHARE").await?;
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
        lock_collection(&tx, "host", collection, "FOR UPDATE").await?;
        // The collection's items are exactly its partition: dropping the
        // partition deletes them without leaving an empty table behind. The
        // count under the collection's lock is what goes away.
        let items = item_count(&tx, "host", collection).await?;
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
