//! `host load collections|items`: stream STAC records from files and URLs,
//! through plugins, into the database in one transaction.

use anyhow::Context;
use clap::ArgMatches;

use super::tenancy::plugin_setup;
use super::{Status, load_plugins_within};
use crate::cli::{LoadArgs, LoadCommand};
use crate::load::{Kind, LoadOptions, Summary, load};

/// Runs the command; `matches` are the `load` matches (for plugin flag order).
pub async fn run(cmd: LoadCommand, matches: &ArgMatches) -> anyhow::Result<Status> {
    match cmd {
        LoadCommand::Collections(a) => {
            let opts = options(&a.load, Kind::Collections);
            execute(&a.load, opts, Vec::new()).await
        }
        LoadCommand::Items(a) => {
            let sub = matches
                .subcommand_matches("items")
                .expect("clap matched load items");
            let setup = plugin_setup(sub, &a.opts, &a.tenant)?;
            // The runtime lives until the load is over (it ticks plugin deadlines).
            let (_runtime, plugins) = if setup.specs.is_empty() {
                (None, Vec::new())
            } else {
                let (r, p) = load_plugins_within(&a.opts, setup.limits, &setup.specs).await?;
                (Some(r), p)
            };
            let mut opts = options(&a.load, Kind::Items);
            opts.scope = setup.scope;
            opts.collection = a.collection.clone();
            opts.update_extents = a.update_extents;
            opts.batch_size = a.batch_size;
            opts.strict_bbox = a.strict_bbox;
            execute(&a.load, opts, plugins).await
        }
    }
}

fn options(a: &LoadArgs, kind: Kind) -> LoadOptions {
    let mut o = LoadOptions::new(kind, a.sources.clone(), a.method);
    o.reject_file = a.reject_file.clone();
    o.progress = !a.json && !a.no_progress;
    o
}

async fn execute(
    a: &LoadArgs,
    opts: LoadOptions,
    plugins: Vec<crate::plugin::Plugin>,
) -> anyhow::Result<Status> {
    let dsn = a.conn.dsn()?;
    let what = opts.kind.plural();
    let (mut client, catalog) = super::open_catalog(&a.conn, a.catalog.catalog)
        .await
        .with_context(|| format!("no {what} were loaded into {dsn}"))?;
    let summary = load(&mut client, &catalog, opts, plugins)
        .await
        .with_context(|| format!("no {what} were loaded into {dsn}"))?;
    if a.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{}", summary.line());
    }
    if let Some(path) = &a.reject_file
        && summary.rejected > 0
    {
        eprintln!(
            "{} rejected {what} written to {}",
            summary.rejected,
            path.display()
        );
    }
    Ok(status(&summary))
}

fn status(s: &Summary) -> Status {
    if s.plugin_failures > 0 {
        Status::PluginFailed
    } else if s.rejected > 0 {
        Status::Rejected
    } else {
        Status::Success
    }
}
