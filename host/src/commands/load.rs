//! `host load collections|items`: stream STAC records from files and URLs,
//! through plugins, into the database in one transaction.

use anyhow::Context;
use clap::ArgMatches;

use super::tenancy::{self, Setup, plugin_setup};
use super::{Status, load_plugins_within};
use crate::cli::{LoadArgs, LoadCommand};
use crate::load::{Kind, LoadOptions, Summary, TenantLane, load};

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
            let mut opts = options(&a.load, Kind::Items);
            if let Some(path) = &a.tenant.audit {
                opts.audit = Some(std::sync::Arc::new(crate::audit::Audit::open(path)?));
            }
            // (The epoch ticker lives as long as a plugin's engine: runtimes can go.)
            let mut plugins = Vec::new();
            // A plugin the policy refuses is audited as a refused setup.
            let audit = opts.audit.clone();
            let refused = |tenant: Option<&str>, e: anyhow::Error| {
                tenancy::audit_refusal(audit.as_deref(), "load", tenant, e)
            };
            let setup = plugin_setup(sub, &a.opts, &a.tenant)
                .map_err(|e| refused(a.tenant.tenant.as_deref(), e))?;
            match setup {
                Setup::One(setup) => {
                    if !setup.specs.is_empty() {
                        let (_, p) = load_plugins_within(&a.opts, setup.limits, &setup.specs)
                            .await
                            .map_err(|e| refused(a.tenant.tenant.as_deref(), e))?;
                        plugins = p;
                    }
                    opts.scope = setup.scope;
                }
                // Each tenant its own runtime: its limits shape the engine.
                Setup::Tenants(tenants) => {
                    for t in tenants {
                        let (_, p) = load_plugins_within(&a.opts, t.limits, &t.specs)
                            .await
                            .map_err(|e| refused(Some(&t.tenant), e))?;
                        opts.tenants.push(TenantLane {
                            tenant: t.tenant,
                            scope: t.scope,
                            plugins: p,
                            cpu: t.cpu,
                        });
                    }
                }
            }
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
        for t in &summary.tenants {
            println!("{}", t.line());
        }
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
