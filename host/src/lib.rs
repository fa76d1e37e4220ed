//! `host`: move data into and between PostgreSQL databases, running every
//! record through sandboxed WebAssembly plugins on the way.
//!
//! - [`plugin`]: the sandboxed plugin runtime and plugin chains.
//! - [`copy`]: row formats (COPY text, CSV).
//! - [`fetch`]: reading files, URLs and object stores.
//! - [`xmat`]: cross-database materialisation jobs.
//! - [`cli`] and [`commands`]: the `host` command line.

pub mod cli;
pub mod commands;
pub mod copy;
pub mod db;
pub mod fetch;
pub mod plugin;
pub mod xmat;
