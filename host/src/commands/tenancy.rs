//! Which plugins a command runs, within which limits, on which data: as its
//! flags say, or — with `--policy` and `--tenant` — exactly what the policy
//! allows that tenant, decided before any plugin is read or compiled.

use clap::ArgMatches;
use clap::parser::ValueSource;

use crate::cli::{PluginOpts, TenantArgs, UsageError, plugin_specs};
use crate::plugin::{Limits, PluginSpec};
use crate::policy::{DataScope, Policy, TenantScope};

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
) -> anyhow::Result<PluginSetup> {
    let (Some(path), Some(name)) = (&tenant.policy, &tenant.tenant) else {
        return Ok(PluginSetup {
            specs: plugin_specs(matches, None)?,
            limits: opts.limits(),
            scope: DataScope::Everything,
        });
    };
    for (id, flag, why) in DECIDED_BY_POLICY {
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            return Err(
                UsageError(format!("{flag} cannot be combined with --policy: {why}")).into(),
            );
        }
    }
    let policy = Policy::load(path)?;
    let tenant = policy.tenant(name)?;
    // Every secret of the policy stays out of every output from here on.
    for secret in policy.secret_values() {
        crate::terminal::hide_secret(secret.expose());
    }
    let named: Vec<String> = matches
        .get_many::<String>("plugin")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let specs = if named.is_empty() {
        policy.chain(tenant)?
    } else {
        named
            .iter()
            .map(|p| policy.plugin_spec(tenant, p, None))
            .collect::<Result<_, _>>()?
    };
    let mut limits = tenant.limits.plugin_limits();
    limits.max_instances = tenant.limits.instances;
    Ok(PluginSetup {
        specs,
        limits,
        scope: DataScope::Tenant(TenantScope {
            tenant: tenant.name.clone(),
            scope: tenant.scope.clone(),
        }),
    })
}
