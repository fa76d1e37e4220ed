//! `host`: move data into and between PostgreSQL databases, running every
//! record through sandboxed WebAssembly plugins on the way.
//!
//! - [`plugin`]: the sandboxed plugin runtime and plugin chains.
//! - [`copy`]: row formats (COPY text, CSV).
//! - [`fetch`]: reading files, URLs and object stores.
//! - [`oci`]: plugins in OCI registries (pull, push).
//! - [`search`]: STAC API item search (CQL2-JSON) translated to parameterized SQL.
//! - [`migrate`]: schema migrations (the built-in STAC schema and other sets).
//! - [`stac`]: STAC records: validation and the fields catalogs index.
//! - [`catalog`]: STAC catalogs in a database (host's schema, pgstac): load,
//!   search, delete, extents, versions behind one interface.
//! - [`load`]: streaming sources through plugins into a catalog.
//! - [`xmat`]: cross-database materialisation jobs.
//! - [`policy`]: multi-tenant policies (tenants, their plugins, data scope, limits, secrets).
//! - [`cli`] and [`commands`]: the `host` command line.
//! - [`terminal`]: what reaches a person's terminal (untrusted text escaped).

pub mod audit;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod copy;
pub mod db;
pub mod fetch;
pub mod json_check;
pub mod load;
pub mod migrate;
pub mod oci;
pub mod plugin;
pub mod policy;
pub mod search;
pub mod stac;
pub mod stream;
pub mod terminal;
pub mod xmat;
