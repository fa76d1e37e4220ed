//! A stream run as a policy's tenant, by xmat's own binding
//! ([`crate::xmat::tenant`]): `setup` and `clone` bind the job (the
//! tenant's tables only, its row predicate in every table's filter, its
//! pinned plugins); every run that applies changes binds the stored
//! plugins again, so a plugin the policy no longer allows, or a scope it
//! narrowed, stops the stream before anything is compiled. Nothing secret
//! is stored in the stream directory: secrets are read from the policy at
//! each run.

use std::sync::Arc;

use anyhow::bail;
use clap::ArgMatches;

use crate::audit::Audit;
use crate::cli::{PluginOpts, TenantArgs};
use crate::commands::tenancy;
use crate::plugin::Limits;
use crate::policy::Policy;
use crate::stream::apply::tenancy::Tenancy;
use crate::stream::dir::StreamConfig;
use crate::stream::tables::StreamTable;
use crate::xmat::PluginSetup;
use crate::xmat::jobs::{Job, PluginRef};
use crate::xmat::share::Share;
use crate::xmat::tenant::Binding;

/// The policy of a stream command (`--policy`/`HOST_POLICY`), if any.
pub(super) struct Tenants {
    policy: Option<Policy>,
    /// `--tenant`.
    flag: Option<String>,
    audit: Option<Arc<Audit>>,
}

impl Tenants {
    /// Reads the policy; the flags it decides are refused beside it.
    pub(super) fn new(args: &TenantArgs, matches: &ArgMatches) -> anyhow::Result<Tenants> {
        let policy = match &args.policy {
            Some(path) => {
                tenancy::refuse_flags_decided_by_policy(matches)?;
                Some(tenancy::load_policy(path)?)
            }
            None => None,
        };
        let audit = match &args.audit {
            Some(path) => Some(Arc::new(Audit::open(path)?)),
            None => None,
        };
        Ok(Tenants {
            policy,
            flag: args.tenant.clone(),
            audit,
        })
    }

    pub(super) fn binding(&self) -> Binding<'_> {
        match &self.policy {
            Some(policy) => Binding::Policy {
                policy,
                tenant: self.flag.as_deref(),
            },
            None => Binding::Unbound,
        }
    }

    /// `error`, with its audit line if it is the policy refusing a plugin.
    pub(super) fn refused(&self, tenant: Option<&str>, error: anyhow::Error) -> anyhow::Error {
        tenancy::audit_refusal(self.audit.as_deref(), "stream", tenant, error)
    }

    /// Checks that a stream set up as `cfg.tenant` runs as that tenant,
    /// within the scope it was set up with.
    pub(super) fn check_stream(&self, cfg: &StreamConfig, dir: &str) -> anyhow::Result<()> {
        let (Some(policy), Some(bound)) = (&self.policy, &cfg.tenant) else {
            if self.policy.is_some() {
                bail!(
                    "stream {dir} was set up without a tenant; under a policy every stream runs as \
                     one of its tenants: set it up again with --policy (and --tenant or the job's \
                     `tenant`)"
                );
            }
            // A tenant's stream without its policy: the binding refuses it.
            return Ok(());
        };
        let name = &bound.name;
        let tenant = policy.tenant(name)?;
        for t in &cfg.tables {
            if !tenant.scope.holds_table(&cfg.source_schema, &t.name) {
                bail!(
                    "table {}.{} is no longer in tenant `{name}`'s scope in policy {}: the stream \
                     stops (clean it up, and set up a new one)",
                    cfg.source_schema,
                    t.name,
                    policy.path.display()
                );
            }
        }
        if tenant.scope.rows != bound.rows {
            bail!(
                "tenant `{name}`'s row predicate in policy {} changed since the stream was set up \
                 ({} then, {} now): its tables hold the rows of the old one; clean the stream up, \
                 and set up a new one",
                policy.path.display(),
                bound.rows.as_deref().unwrap_or("none"),
                tenant.scope.rows.as_deref().unwrap_or("none"),
            );
        }
        Ok(())
    }

    /// Each table's plugins as `tenant` runs them (as the job names them
    /// without a policy); refused before any is read or compiled.
    pub(super) fn bind(
        &self,
        job: &str,
        tenant: Option<&str>,
        tables: &[StreamTable],
    ) -> anyhow::Result<Vec<Vec<PluginRef>>> {
        let binding = self.binding();
        tables
            .iter()
            .map(|t| {
                let written: Vec<PluginRef> = t.plugins.iter().map(|p| p.plugin_ref()).collect();
                binding
                    .bind_table(job, tenant, &t.name, &written)
                    .map_err(|e| self.refused(tenant, e.into()))
            })
            .collect()
    }

    /// The limits of `tenant`'s instances (the flags' without a policy)
    /// and what its plugins account to. A stream keeps every table's chains
    /// alive at once (`chains` of them, `instances` instances in all), so
    /// a tenant whose `instances` are fewer than its chains is refused.
    pub(super) fn run_as(
        &self,
        opts: &PluginOpts,
        job: &str,
        tenant: Option<&str>,
        chains: usize,
        instances: usize,
    ) -> anyhow::Result<(Limits, Arc<Tenancy>)> {
        let (Some(policy), Some(name)) = (&self.policy, tenant) else {
            let tenancy = Tenancy {
                job: job.to_string(),
                audit: self.audit.clone(),
                ..Tenancy::default()
            };
            return Ok((opts.limits(), Arc::new(tenancy)));
        };
        let t = policy.tenant(name)?;
        if chains > t.limits.instances as usize {
            bail!(
                "job {job}: the stream keeps {chains} plugin chains alive at once (one per table \
                 with plugins), but tenant `{name}` may have {} at once (`limits.instances` in policy {}); stream \
                 fewer tables per stream",
                t.limits.instances,
                policy.path.display()
            );
        }
        let mut limits = tenancy::limits(policy, t);
        limits.max_instances = u32::try_from(instances.max(1)).unwrap_or(u32::MAX);
        let tenancy = Tenancy {
            tenant: Some(name.to_string()),
            job: job.to_string(),
            share: Share::tenant(name, t.limits.instances, t.limits.cpu),
            audit: self.audit.clone(),
        };
        Ok((limits, Arc::new(tenancy)))
    }

    /// The plugins of a clone's initial copy: what `host xmat` gives a job
    /// (its tenant's limits, a chain's instances on each of the tenant's
    /// threads, its CPU time).
    pub(super) fn copy_setup(&self, opts: &PluginOpts, job: &Job) -> anyhow::Result<PluginSetup> {
        let (limits, share) = match (&self.policy, job.scope.tenant()) {
            (Some(policy), Some(name)) => {
                let t = policy.tenant(name)?;
                let longest = job
                    .tables
                    .iter()
                    .map(|e| e.plugins.len())
                    .max()
                    .unwrap_or(0);
                let mut limits = tenancy::limits(policy, t);
                limits.max_instances = limits
                    .max_instances
                    .saturating_mul(u32::try_from(longest.max(1)).unwrap_or(u32::MAX));
                (
                    limits,
                    Share::tenant(name, t.limits.instances, t.limits.cpu),
                )
            }
            _ => (opts.limits(), Share::unlimited()),
        };
        Ok(PluginSetup {
            limits,
            cache_dir: opts.cache_dir(),
            fetch: opts.fetch_bounds(),
            share,
            audit: self.audit.clone(),
        })
    }
}
