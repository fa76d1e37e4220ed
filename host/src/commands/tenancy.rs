//! Which plugins a command runs, within which limits, on which data: as its
//! flags say, or — with `--policy` and `--tenant` — exactly what the policy
//! allows that tenant, or — with `--policy` alone — what it allows each of
//! its tenants; decided before any plugin is read or compiled.

use clap::ArgMatches;
use clap::parser::ValueSource;

use crate::cli::{PluginOpts, TenantArgs, UsageError, plugin_specs};
use crate::plugin::{Limits, PluginSpec};
use crate::policy::{DataScope, Policy, Scope, TenantScope};

/// What a command runs: one chain, or each tenant's own.
#[derive(Debug)]
pub enum Setup {
    One(PluginSetup),
    /// `--policy` without `--tenant`: every tenant of the policy.
    Tenants(Vec<TenantSetup>),
}

/// One tenant's chain, limits and scope in a run shared by every tenant.
#[derive(Debug)]
pub struct TenantSetup {
    pub tenant: String,
    pub specs: Vec<PluginSpec>,
    pub limits: Limits,
    pub scope: Scope,
    /// The CPU time its plugins may use in the run.
    pub cpu: Option<std::time::Duration>,
}

/// What a command's plugins are and may do.
#[derive(Debug)]
pub struct PluginSetup {
    pub specs: Vec<PluginSpec>,
    pub limits: Limits,
    pub scope: DataScope,
}

/// The flags a policy decides instead: given with `--policy`, they would
/// silently not apply (or, worse, let a tenant raise its own limits).
const DECIDED_BY_POLICY: &[(&str, &str, &str)] = &[
    (
        "plugin_arg",
        "--plugin-arg",
        "parameters come from the policy",
    ),
    (
        "plugin_sha256",
        "--plugin-sha256",
        "the policy pins every plugin",
    ),
    (
        "plugin_memory",
        "--plugin-memory",
        "the tenant's limits apply",
    ),
    ("plugin_time", "--plugin-time", "the tenant's limits apply"),
    ("plugin_fuel", "--plugin-fuel", "the tenant's limits apply"),
    (
        "plugin_output",
        "--plugin-output",
        "the tenant's limits apply",
    ),
];

/// The plugin setup for a command's flags. `matches` are the command's own.
pub fn plugin_setup(
    matches: &ArgMatches,
    opts: &PluginOpts,
    tenant: &TenantArgs,
) -> anyhow::Result<Setup> {
    let Some(path) = &tenant.policy else {
        return Ok(Setup::One(PluginSetup {
            specs: plugin_specs(matches, None)?,
            limits: opts.limits(),
            scope: DataScope::Everything,
        }));
    };
    refuse_flags_decided_by_policy(matches)?;
    let named: Vec<String> = matches
        .get_many::<String>("plugin")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let Some(name) = &tenant.tenant else {
        if !named.is_empty() {
            return Err(UsageError(
                "--plugin names one tenant's plugins: give --tenant, or leave --plugin out \
                 to run each tenant's own chain"
                    .into(),
            )
            .into());
        }
        let policy = load_policy(path)?;
        return Ok(Setup::Tenants(
            policy
                .tenants
                .values()
                .map(|t| {
                    Ok(TenantSetup {
                        tenant: t.name.clone(),
                        specs: policy.chain(t)?,
                        limits: limits(&policy, t),
                        scope: t.scope.clone(),
                        cpu: t.limits.cpu,
                    })
                })
                .collect::<anyhow::Result<_>>()?,
        ));
    };
    let policy = load_policy(path)?;
    let tenant = policy.tenant(name)?;
    let specs = if named.is_empty() {
        policy.chain(tenant)?
    } else {
        named
            .iter()
            .map(|p| policy.plugin_spec(tenant, p, None))
            .collect::<Result<_, _>>()?
    };
    Ok(Setup::One(PluginSetup {
        specs,
        limits: limits(&policy, tenant),
        scope: DataScope::Tenant(TenantScope {
            tenant: tenant.name.clone(),
            scope: tenant.scope.clone(),
        }),
    }))
}

/// Refuses the flags a policy decides when they are on the command line.
pub fn refuse_flags_decided_by_policy(matches: &ArgMatches) -> Result<(), UsageError> {
    for (id, flag, why) in DECIDED_BY_POLICY {
        // Not every command has every flag (xmat has no --plugin-arg).
        let known = matches.ids().any(|i| i.as_str() == *id);
        if known && matches.value_source(id) == Some(ValueSource::CommandLine) {
            return Err(UsageError(format!(
                "{flag} cannot be combined with --policy: {why}"
            )));
        }
    }
    Ok(())
}

/// Reads a policy, hiding each of its secrets from every output from here on.
pub fn load_policy(path: &std::path::Path) -> anyhow::Result<Policy> {
    let policy = Policy::load(path)?;
    // Every secret of the policy stays out of every output from here on.
    for secret in policy.secret_values() {
        crate::terminal::hide_secret(secret.expose());
    }
    Ok(policy)
}

/// The sandbox limits of the tenant's instances, named as the policy's.
pub fn limits(policy: &Policy, tenant: &crate::policy::Tenant) -> Limits {
    let mut limits = tenant.limits.plugin_limits();
    limits.max_instances = tenant.limits.instances;
    limits.set_by = crate::plugin::LimitSource::policy(&tenant.name, &policy.path);
    limits
}

/// Whether `error` is the policy (or its pinned digest) refusing a plugin
/// before it ran: a plugin the tenant may not run, a build whose bytes are
/// not the pinned ones.
pub fn is_refusal(error: &anyhow::Error) -> bool {
    use crate::plugin::PluginError;
    use crate::policy::PolicyError;
    use crate::xmat::{Failure, XmatError, tenant::BindError};
    if let Some(p) = error.downcast_ref::<PolicyError>() {
        return matches!(p, PolicyError::NotAllowed { .. });
    }
    if let Some(b) = error.downcast_ref::<BindError>() {
        return b.plugin_refused();
    }
    if let Some(x) = error.downcast_ref::<XmatError>() {
        return matches!(
            &*x.failure,
            Failure::Plugin {
                source: PluginError::DigestMismatch { .. },
                ..
            }
        );
    }
    error.chain().any(|c| {
        matches!(
            c.downcast_ref::<PluginError>(),
            Some(PluginError::DigestMismatch { .. })
        )
    })
}

/// The audit line of a run (or job) whose plugins the policy refused before
/// any ran, if `error` is such a refusal; `error` comes back either way,
/// unless the line could not be written.
pub fn audit_refusal(
    audit: Option<&crate::audit::Audit>,
    command: &'static str,
    tenant: Option<&str>,
    error: anyhow::Error,
) -> anyhow::Error {
    use crate::audit::{Entry, Outcome, Unit};
    let Some(audit) = audit.filter(|_| is_refusal(&error)) else {
        return error;
    };
    let mut entry = Entry::new(command, tenant, &[], Unit::Setup);
    entry.outcome = Outcome::Refused;
    entry.error = Some(crate::terminal::redact(&crate::terminal::error_text(&error)).into_owned());
    let written = audit.write(&entry);
    match written {
        Ok(()) => error,
        Err(e) => e.into(),
    }
}
