//! What both catalogs ask of their tables in the same words: each keeps
//! collections in `SCHEMA.collections (id, ...)` and items in
//! `SCHEMA.items (collection, id, ...)`. `schema` is `host` or `pgstac`,
//! never user input.

use tokio_postgres::GenericClient;

use super::CatalogError;

/// How many collections the catalog holds.
pub(super) async fn collection_count(
    client: &impl GenericClient,
    schema: &str,
) -> Result<u64, CatalogError> {
    let n: i64 = client
        .query_one(&format!("SELECT count(*) FROM {schema}.collections"), &[])
        .await
        .map_err(CatalogError::db("reading the catalog"))?
        .get(0);
    Ok(n as u64)
}

/// How many items a collection holds; a clear error when it does not exist.
pub(super) async fn item_count(
    client: &impl GenericClient,
    schema: &str,
    collection: &str,
) -> Result<u64, CatalogError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT (SELECT count(*) FROM {schema}.items WHERE collection = $1::text) \
                 FROM {schema}.collections WHERE id = $1::text"
            ),
            &[&collection],
        )
        .await
        .map_err(CatalogError::db("reading the collection"))?;
    match row {
        Some(r) => Ok(r.get::<_, i64>(0) as u64),
        None => Err(CatalogError::NoSuchCollection(collection.to_string())),
    }
}

/// How long a lock may take before the user is told what it waits for.
const LOCK_NOTICE: std::time::Duration = std::time::Duration::from_secs(2);

/// Locks the collection's row for the transaction (`FOR UPDATE`, `FOR KEY
/// SHARE`, ...), and fails if it is gone.
pub(super) async fn lock_collection(
    tx: &impl GenericClient,
    schema: &str,
    collection: &str,
    strength: &str,
) -> Result<(), CatalogError> {
    let sql = format!("SELECT 1 FROM {schema}.collections WHERE id = $1::text {strength}");
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&collection];
    let lock = tx.query_opt(&sql, &params);
    tokio::pin!(lock);
    // A load holds its collections until it commits: say why nothing happens.
    let row = match tokio::time::timeout(LOCK_NOTICE, &mut lock).await {
        Ok(row) => row,
        Err(_) => {
            tracing::info!(
                "waiting for collection \"{}\": a load or another delete is using it",
                crate::terminal::Shown(collection)
            );
            lock.await
        }
    }
    .map_err(CatalogError::db("delete"))?;
    match row {
        Some(_) => Ok(()),
        None => Err(CatalogError::NoSuchCollection(collection.to_string())),
    }
}
