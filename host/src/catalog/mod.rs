//! Catalogs: where a database keeps its STAC collections and items, and
//! everything `host` does to them — load, search, delete, update extents,
//! report a version — behind one interface with two implementations, chosen
//! once from what the database holds:
//!
//! - [`builtin`]: host's own schema (`host migrate`): `host.collections`
//!   and `host.items`, partitioned by collection;
//! - [`pgstac`]: pgstac (behind stac-fastapi-pgstac and eoAPI) in its own
//!   layout, through pgstac's own functions where it has them.
//!
//! ```no_run
//! # async fn demo(client: &mut tokio_postgres::Client) -> Result<(), host::catalog::CatalogError> {
//! use host::catalog::{Catalog, CatalogChoice};
//! use host::search::SearchRequest;
//! let catalog = Catalog::open(client, CatalogChoice::Auto).await?;
//! let request = SearchRequest::parse(r#"{"collections": ["naip"], "limit": 5}"#)?;
//! let page = catalog.search(client, &request).await?;
//! println!("{}", page.feature_collection(&request));
//! # Ok(()) }
//! ```
//!
//! How `auto` chooses: the catalog the database has; with both, the one that
//! holds collections; with both holding collections (or neither), it refuses
//! and asks for `--catalog`.

pub mod builtin;
mod error;
mod load;
pub mod pgstac;
mod tables;

use std::collections::HashSet;

use clap::ValueEnum;
use serde::Serialize;
use tokio_postgres::Client;

pub use error::CatalogError;
pub use load::{KeyOrder, LoadSession, Rows};

use crate::search::{Page, SearchRequest};

/// Which catalog to use (`--catalog`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogChoice {
    /// The one the database holds (with both: the one that holds collections).
    #[default]
    Auto,
    /// host's own schema (`host migrate`).
    Host,
    /// pgstac, in its own layout (`host migrate --dir` with pypgstac's files).
    Pgstac,
}

/// The two kinds of catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogKind {
    Host,
    Pgstac,
}

impl CatalogKind {
    /// `host` or `pgstac`.
    pub fn as_str(self) -> &'static str {
        match self {
            CatalogKind::Host => "host",
            CatalogKind::Pgstac => "pgstac",
        }
    }
}

impl std::fmt::Display for CatalogKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CatalogKind::Host => "host's schema",
            CatalogKind::Pgstac => "pgstac",
        })
    }
}

/// What to do with ids that already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Fail the load if an id already exists.
    Insert,
    /// Skip ids that already exist.
    #[value(name = "insert_ignore", alias = "ignore")]
    InsertIgnore,
    /// Replace records that changed; leave identical ones untouched.
    Upsert,
    /// Delete the existing records with those ids, then insert.
    Delsert,
}

/// When collection extents follow item loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtentMode {
    /// Leave extents alone.
    Off,
    /// Recompute the touched collections' extents as part of the load.
    Immediate,
    /// Queue the touched collections for `host update-extents` (host's schema only).
    Deferred,
}

impl ExtentMode {
    /// The setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            ExtentMode::Off => "off",
            ExtentMode::Immediate => "immediate",
            ExtentMode::Deferred => "deferred",
        }
    }
}

/// Which records: items or collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Items,
    Collections,
}

impl Kind {
    /// "item" or "collection".
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Items => "item",
            Kind::Collections => "collection",
        }
    }

    /// "items" or "collections".
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Items => "items",
            Kind::Collections => "collections",
        }
    }
}

/// What a load's merge did with the staged rows.
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

/// Which items `delete items` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemSelection {
    /// These ids (of one collection).
    Ids(Vec<String>),
    /// Every item of the collection.
    All,
}

/// What `delete items` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemsDeleted {
    pub collection: String,
    /// The ids deleted.
    pub deleted: Vec<String>,
    /// Requested ids that were not there (empty for `All`).
    pub not_found: Vec<String>,
}

impl ItemsDeleted {
    /// What deleting `which` from `collection` did, given the ids that went.
    fn new(collection: &str, which: &ItemSelection, deleted: Vec<String>) -> ItemsDeleted {
        let not_found = match which {
            ItemSelection::All => Vec::new(),
            ItemSelection::Ids(ids) => {
                let gone: HashSet<&str> = deleted.iter().map(String::as_str).collect();
                ids.iter()
                    .filter(|i| !gone.contains(i.as_str()))
                    .cloned()
                    .collect()
            }
        };
        ItemsDeleted {
            collection: collection.to_string(),
            deleted,
            not_found,
        }
    }
}

/// What `delete collection` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionDeleted {
    pub collection: String,
    /// How many items went with it.
    pub items: u64,
}

/// Which collections `update-extents` recomputes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtentSelection {
    /// What is waiting: host's deferred-extents queue, or pgstac's query queue.
    Queued,
    /// These collections.
    Collections(Vec<String>),
    /// Every collection.
    All,
}

/// What `update-extents` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtentsUpdated {
    /// Collections whose extents were recomputed.
    pub collections: u64,
    /// For [`ExtentSelection::Queued`] on pgstac: queued statements run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statements: Option<u64>,
}

/// A database's STAC catalog, opened and checked.
#[derive(Debug, Clone)]
pub enum Catalog {
    Host(builtin::Builtin),
    Pgstac(pgstac::Pgstac),
}

/// Which catalogs a database holds, and their versions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Installed {
    /// host's schema version, when installed.
    pub host: Option<String>,
    /// pgstac's version, when installed.
    pub pgstac: Option<String>,
}

impl Installed {
    /// Reads what the database holds (versions as recorded, not checked).
    pub async fn read(client: &mut Client) -> Result<Installed, CatalogError> {
        Ok(Installed {
            host: builtin::installed_version(client).await?,
            pgstac: pgstac::installed_version(client).await?,
        })
    }

    /// The catalog `choice` names among these, with its recorded version
    /// (see the module docs for `auto`); every command chooses by this.
    pub async fn choose(
        &self,
        client: &Client,
        choice: CatalogChoice,
    ) -> Result<(CatalogKind, &str), CatalogError> {
        use CatalogChoice as C;
        use CatalogKind as K;
        match (choice, self.host.as_deref(), self.pgstac.as_deref()) {
            (C::Host, None, _) => Err(CatalogError::NotInstalled(K::Host)),
            (C::Pgstac, _, None) => Err(CatalogError::NotInstalled(K::Pgstac)),
            (C::Host, Some(h), _) | (C::Auto, Some(h), None) => Ok((K::Host, h)),
            (C::Pgstac, _, Some(p)) | (C::Auto, None, Some(p)) => Ok((K::Pgstac, p)),
            (C::Auto, None, None) => Err(CatalogError::NoCatalog),
            (C::Auto, Some(h), Some(p)) => {
                // Never an empty catalog over the one that holds the collections.
                let host = tables::collection_count(client, "host").await?;
                let pgstac = tables::collection_count(client, "pgstac").await?;
                match (host, pgstac) {
                    (n, 0) if n > 0 => Ok((K::Host, h)),
                    (0, n) if n > 0 => Ok((K::Pgstac, p)),
                    (host, pgstac) => Err(CatalogError::Ambiguous { host, pgstac }),
                }
            }
        }
    }
}

impl Catalog {
    /// Opens the catalog `choice` names (see the module docs for `auto`),
    /// refusing versions this binary cannot work with.
    pub async fn open(client: &mut Client, choice: CatalogChoice) -> Result<Catalog, CatalogError> {
        let installed = Installed::read(client).await?;
        let (kind, _) = installed.choose(client, choice).await?;
        Ok(match kind {
            CatalogKind::Host => Catalog::Host(builtin::Builtin::open(client).await?),
            CatalogKind::Pgstac => Catalog::Pgstac(pgstac::Pgstac::open(client).await?),
        })
    }

    /// Which kind it is.
    pub fn kind(&self) -> CatalogKind {
        match self {
            Catalog::Host(_) => CatalogKind::Host,
            Catalog::Pgstac(_) => CatalogKind::Pgstac,
        }
    }

    /// Its schema version.
    pub fn version(&self) -> String {
        match self {
            Catalog::Host(c) => c.version.to_string(),
            Catalog::Pgstac(c) => c.version.clone(),
        }
    }

    /// Starts loading `kind` records with `method`: checks, the staging the
    /// rows go to, and the transaction they are written in. See [`LoadSession`].
    pub async fn begin_load(
        &self,
        client: &Client,
        kind: Kind,
        method: Method,
        extents: Option<ExtentMode>,
    ) -> Result<LoadSession, CatalogError> {
        match self {
            Catalog::Host(c) => c.begin_load(client, kind, method, extents).await,
            Catalog::Pgstac(c) => c.begin_load(client, kind, method, extents).await,
        }
    }

    /// Runs an item search and returns one page.
    pub async fn search(
        &self,
        client: &Client,
        request: &SearchRequest,
    ) -> Result<Page, CatalogError> {
        match self {
            Catalog::Host(c) => c.search(client, request).await,
            Catalog::Pgstac(c) => c.search(client, request).await,
        }
    }

    /// How many items a collection holds; an error if it does not exist.
    pub async fn item_count(&self, client: &Client, collection: &str) -> Result<u64, CatalogError> {
        // Both keep SCHEMA.collections and SCHEMA.items, the schema named as the kind.
        tables::item_count(client, self.kind().as_str(), collection).await
    }

    /// Deletes items of one collection, in one transaction.
    pub async fn delete_items(
        &self,
        client: &mut Client,
        collection: &str,
        which: &ItemSelection,
    ) -> Result<ItemsDeleted, CatalogError> {
        match self {
            Catalog::Host(c) => c.delete_items(client, collection, which).await,
            Catalog::Pgstac(c) => c.delete_items(client, collection, which).await,
        }
    }

    /// Deletes a collection and its items, in one transaction.
    pub async fn delete_collection(
        &self,
        client: &mut Client,
        collection: &str,
    ) -> Result<CollectionDeleted, CatalogError> {
        match self {
            Catalog::Host(c) => c.delete_collection(client, collection).await,
            Catalog::Pgstac(c) => c.delete_collection(client, collection).await,
        }
    }

    /// Recomputes collection extents from their items.
    pub async fn update_extents(
        &self,
        client: &mut Client,
        which: &ExtentSelection,
    ) -> Result<ExtentsUpdated, CatalogError> {
        match self {
            Catalog::Host(c) => c.update_extents(client, which).await,
            Catalog::Pgstac(c) => c.update_extents(client, which).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_staged_row_is_counted_once() {
        let m = Merged::counted(Method::Upsert, 5, 4, 1);
        assert_eq!((m.loaded, m.skipped, m.unchanged), (1, 1, 3));
        let m = Merged::counted(Method::InsertIgnore, 5, 4, 1);
        assert_eq!((m.loaded, m.skipped, m.unchanged), (1, 4, 0));
    }
}
