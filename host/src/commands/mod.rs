//! One module per command. Each returns a [`Status`] for `main` to turn into
//! an exit code; errors carry their own context.

pub mod delete;
pub mod load;
pub mod migrate;
pub mod pgready;
pub mod plugin_inspect;
pub mod plugin_new;
pub mod plugin_push;
pub mod plugin_run;
pub mod policy;
pub mod search;
pub mod stream;
pub mod tenancy;
pub mod update_extents;
pub mod version;
pub mod xmat;

use anyhow::Context;

use crate::catalog::{Catalog, CatalogChoice};
use crate::cli::PluginOpts;
use crate::db::ConnArgs;
use crate::plugin::{Plugin, PluginSpec, Runtime};

/// How a command that finished went, beyond plain success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything done.
    Success,
    /// Done, but some records were rejected.
    Rejected,
    /// Done, but a plugin failed on some batches.
    PluginFailed,
    /// A stream stopped before a transaction with DDL on a streamed table.
    Ddl,
}

impl Status {
    /// The process exit code (see `cli::EXIT_HELP`).
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Success => 0,
            Status::Rejected => 3,
            Status::PluginFailed => 4,
            Status::Ddl => 5,
        }
    }
}

/// Builds the runtime for these options and loads each plugin (fetching URLs).
pub async fn load_plugins(
    opts: &PluginOpts,
    specs: &[PluginSpec],
) -> anyhow::Result<(Runtime, Vec<Plugin>)> {
    load_plugins_within(opts, opts.limits(), specs).await
}

/// As [`load_plugins`], with `limits` instead of the flags' (a tenant's).
pub async fn load_plugins_within(
    opts: &PluginOpts,
    limits: crate::plugin::Limits,
    specs: &[PluginSpec],
) -> anyhow::Result<(Runtime, Vec<Plugin>)> {
    let cache_dir = opts.cache_dir();
    let runtime = Runtime::new(limits, cache_dir.as_deref())?;
    let bounds = opts.fetch_bounds();
    let mut plugins = Vec::with_capacity(specs.len());
    for spec in specs {
        plugins.push(runtime.fetch_and_load(spec, &bounds).await?);
    }
    Ok((runtime, plugins))
}

/// Connects and opens the catalog `choice` names.
pub async fn open_catalog(
    conn: &ConnArgs,
    choice: CatalogChoice,
) -> anyhow::Result<(tokio_postgres::Client, Catalog)> {
    let dsn = conn.dsn()?;
    let mut client = dsn.connect().await?;
    let catalog = Catalog::open(&mut client, choice)
        .await
        .with_context(|| format!("opening the STAC catalog of {dsn}"))?;
    Ok((client, catalog))
}
