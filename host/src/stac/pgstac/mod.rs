//! Loading into pgstac, the schema most STAC catalogs in PostgreSQL run
//! (behind stac-fastapi-pgstac and eoAPI), in its own layout so that
//! pgstac's functions and pypgstac read back what was loaded:
//!
//! - [`dehydrate`]: items are stored as their difference from the
//!   collection's base item, as pypgstac does on the client;
//! - [`rows`]: the binary COPY rows of the staging tables;
//! - [`store`]: version check, base items, partitions through pgstac's own
//!   `check_partition`, and the methods' merge SQL.

pub mod dehydrate;
pub mod rows;
pub mod store;

pub use store::{CollectionInfo, Collections, KNOWN_VERSIONS};
