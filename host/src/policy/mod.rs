//! A multi-tenant policy: which plugin builds the operator allows, which
//! tenant may run which of them, on which data, within which limits, and with
//! which parameters and secrets.
//!
//! The file is TOML (`--policy FILE` or `HOST_POLICY`); [`Policy::load`]
//! reads and checks all of it at once, so `host policy check` can list every
//! problem with its line rather than the first. What commands use is the
//! checked model: a [`Tenant`] with its chain, [`Scope`] and
//! [`TenantLimits`]. A secret is a [`Secret`], whose value is only ever handed
//! to the plugin it is for: it has no `Display`, and its `Debug` hides it.

mod check;
mod file;
mod scope;
mod secret;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plugin::{Limits, PluginSpec};

pub use check::{Problem, ProblemKind};
pub use scope::{DataScope, Pattern, Scope, TenantScope};
pub use secret::{Secret, SecretSource};

/// A checked policy.
#[derive(Debug)]
pub struct Policy {
    /// Where it was read from, for messages.
    pub path: PathBuf,
    /// The most memory all tenants' plugin instances may hold at once, if set.
    pub budget: Option<u64>,
    /// The allowed builds, by name.
    pub plugins: BTreeMap<String, AllowedPlugin>,
    /// The tenants, by name.
    pub tenants: BTreeMap<String, Tenant>,
}

/// One plugin build the operator allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedPlugin {
    pub name: String,
    /// Lower-case hex SHA-256 of the component's bytes.
    pub sha256: String,
    /// Where to fetch it, if the policy says.
    pub location: Option<String>,
}

/// A tenant: its plugins, its data and its limits.
#[derive(Debug)]
pub struct Tenant {
    pub name: String,
    /// Names of the plugins it may run (in [`Policy::plugins`]); for `load`, its chain in this order.
    pub plugins: Vec<String>,
    pub scope: Scope,
    pub limits: TenantLimits,
    /// Parameters per plugin name, by parameter name.
    pub params: BTreeMap<String, Vec<(String, Param)>>,
}

/// What one tenant's plugins may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantLimits {
    /// Memory of one instance, summed over all of its linear memories.
    pub memory: u64,
    /// Wall-clock time of one call.
    pub time: Duration,
    /// Instructions per call, if metered.
    pub fuel: Option<u64>,
    /// Bytes of a call's stdout and of its stderr kept.
    pub output: u64,
    /// Plugin instances alive at once (all of the tenant's plugins together).
    pub instances: u32,
    /// Total CPU time of the tenant's plugins in one run, if capped.
    pub cpu: Option<Duration>,
}

impl Default for TenantLimits {
    /// The limits a command has without a policy (its flags' defaults), one instance.
    fn default() -> Self {
        let l = Limits::default();
        TenantLimits {
            memory: l.memory_bytes,
            time: l.call_time,
            fuel: l.fuel,
            output: l.output_bytes as u64,
            instances: 1,
            cpu: None,
        }
    }
}

impl TenantLimits {
    /// The sandbox limits of one of the tenant's instances.
    pub fn plugin_limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory,
            call_time: self.time,
            fuel: self.fuel,
            output_bytes: usize::try_from(self.output).unwrap_or(usize::MAX),
            ..Limits::default()
        }
    }

    /// The most memory the tenant's instances can hold at once.
    pub fn worst_memory(&self) -> u64 {
        self.memory.saturating_mul(u64::from(self.instances))
    }
}

/// A plugin parameter as the policy gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Literal(String),
    /// Read when the plugin is set up; never shown.
    Secret(SecretSource),
}

/// A parameter's value, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    Literal(String),
    Secret(Secret),
}

/// Why a policy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    // The cause is in the message, not a `#[source]`: a chain printed whole
    // would say it twice.
    #[error("cannot read policy {}: {error}", .path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("policy {} has {} problem{}:\n{}", .path.display(), .problems.len(),
        if .problems.len() == 1 { "" } else { "s" }, list(.path, .problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
    #[error("policy {} has no tenant `{tenant}` (it has: {})", .path.display(), .known.join(", "))]
    UnknownTenant {
        path: PathBuf,
        tenant: String,
        known: Vec<String>,
    },
    #[error("tenant `{tenant}` may not run plugin `{plugin}` (policy {}; it may run: {})",
        .path.display(), if .allowed.is_empty() { "none".to_string() } else { .allowed.join(", ") })]
    NotAllowed {
        path: PathBuf,
        tenant: String,
        plugin: String,
        allowed: Vec<String>,
    },
    #[error("plugin `{plugin}` of tenant `{tenant}` has no location in policy {} and none was given", .path.display())]
    NoLocation {
        path: PathBuf,
        tenant: String,
        plugin: String,
    },
    #[error("secret parameter `{param}` of plugin `{plugin}` (tenant `{tenant}`): {error}")]
    Secret {
        tenant: String,
        plugin: String,
        param: String,
        error: secret::SecretError,
    },
}

fn list(path: &Path, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {}:{p}", path.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Policy {
    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|error| PolicyError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Policy::parse(&text, path)
    }

    /// Checks a policy's text; `path` names it in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Policy, PolicyError> {
        check::check(text, path).map_err(|problems| PolicyError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }

    /// The tenant called `name`.
    pub fn tenant(&self, name: &str) -> Result<&Tenant, PolicyError> {
        self.tenants
            .get(name)
            .ok_or_else(|| PolicyError::UnknownTenant {
                path: self.path.clone(),
                tenant: name.to_string(),
                known: self.tenants.keys().cloned().collect(),
            })
    }

    /// The most memory every tenant's instances can hold at once.
    pub fn worst_memory(&self) -> u64 {
        self.tenants
            .values()
            .map(|t| t.limits.worst_memory())
            .fold(0u64, u64::saturating_add)
    }

    /// The tenants whose scope holds `collection`.
    pub fn tenants_of_collection<'a>(
        &'a self,
        collection: &'a str,
    ) -> impl Iterator<Item = &'a Tenant> {
        self.tenants
            .values()
            .filter(move |t| t.scope.holds_collection(collection))
    }

    /// The plugin `plugin` as `tenant` may run it: pinned to the policy's
    /// digest, with the tenant's parameters (secrets read now), fetched from
    /// `location` or else the policy's. Refused, before anything is read or
    /// compiled, when the tenant may not run it.
    pub fn plugin_spec(
        &self,
        tenant: &Tenant,
        plugin: &str,
        location: Option<&str>,
    ) -> Result<PluginSpec, PolicyError> {
        let allowed = self.allowed(tenant, plugin)?;
        let location = location
            .map(str::to_string)
            .map_or_else(|| self.location(tenant, allowed), Ok)?;
        let params = self
            .params(tenant, plugin)?
            .into_iter()
            .map(|(key, value)| match value {
                ParamValue::Literal(v) => (key, v),
                ParamValue::Secret(s) => (key, s.expose().to_string()),
            })
            .collect();
        Ok(PluginSpec {
            location,
            sha256: Some(allowed.sha256.clone()),
            params,
        })
    }

    /// The tenant's parameters of `plugin`, with secrets read now.
    pub fn params(
        &self,
        tenant: &Tenant,
        plugin: &str,
    ) -> Result<Vec<(String, ParamValue)>, PolicyError> {
        let mut params = Vec::new();
        for (key, value) in tenant.params.get(plugin).into_iter().flatten() {
            let value = match value {
                Param::Literal(v) => ParamValue::Literal(v.clone()),
                Param::Secret(source) => {
                    ParamValue::Secret(source.read().map_err(|error| PolicyError::Secret {
                        tenant: tenant.name.clone(),
                        plugin: plugin.to_string(),
                        param: key.clone(),
                        error,
                    })?)
                }
            };
            params.push((key.clone(), value));
        }
        Ok(params)
    }

    /// The build of `plugin` the tenant may run; refused when it may not.
    pub fn allowed(&self, tenant: &Tenant, plugin: &str) -> Result<&AllowedPlugin, PolicyError> {
        self.plugins
            .get(plugin)
            .filter(|_| tenant.plugins.iter().any(|p| p == plugin))
            .ok_or_else(|| PolicyError::NotAllowed {
                path: self.path.clone(),
                tenant: tenant.name.clone(),
                plugin: plugin.to_string(),
                allowed: tenant.plugins.clone(),
            })
    }

    /// Where the policy fetches an allowed plugin from.
    pub fn location(&self, tenant: &Tenant, plugin: &AllowedPlugin) -> Result<String, PolicyError> {
        plugin
            .location
            .clone()
            .ok_or_else(|| PolicyError::NoLocation {
                path: self.path.clone(),
                tenant: tenant.name.clone(),
                plugin: plugin.name.clone(),
            })
    }

    /// The tenant's chain for `load`: every plugin it may run, in order.
    pub fn chain(&self, tenant: &Tenant) -> Result<Vec<PluginSpec>, PolicyError> {
        tenant
            .plugins
            .iter()
            .map(|p| self.plugin_spec(tenant, p, None))
            .collect()
    }

    /// Every secret value the policy's parameters hold, to be scrubbed from
    /// whatever a plugin writes (it could echo a parameter in a message).
    /// Secrets that cannot be read are skipped: using them fails anyway.
    pub fn secret_values(&self) -> Vec<Secret> {
        let mut out = Vec::new();
        for tenant in self.tenants.values() {
            for (_, value) in tenant.params.values().flatten() {
                if let Param::Secret(source) = value
                    && let Ok(secret) = source.read()
                {
                    out.push(secret);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn policy(secret_file: &Path) -> Policy {
        let text = format!(
            r#"[plugins.anon]
sha256 = "{D1}"
location = "plugins/anonymize.wasm"
[plugins.other]
sha256 = "{D1}"
[tenants.a]
plugins = ["anon"]
params.anon = {{ key = {{ file = "{}" }}, email = "email" }}
[tenants.b]
plugins = ["other"]
"#,
            secret_file.display()
        );
        Policy::parse(&text, Path::new("p.toml")).unwrap()
    }

    #[test]
    fn a_tenant_gets_only_its_plugins_pinned_with_its_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("key");
        std::fs::write(&secret, "k3y-material\n").unwrap();
        let p = policy(&secret);
        let a = p.tenant("a").unwrap();
        let spec = p.plugin_spec(a, "anon", None).unwrap();
        assert_eq!(spec.location, "plugins/anonymize.wasm");
        assert_eq!(spec.sha256.as_deref(), Some(D1));
        assert_eq!(
            spec.params,
            [
                ("email".to_string(), "email".to_string()),
                ("key".to_string(), "k3y-material".to_string())
            ]
        );
        // Allowed for b, not for a: refused by name, before anything is read.
        let err = p.plugin_spec(a, "other", None).unwrap_err();
        assert!(
            matches!(&err, PolicyError::NotAllowed { tenant, plugin, allowed, .. }
                if tenant == "a" && plugin == "other" && allowed == &["anon"]),
            "{err}"
        );
        // No location in the policy and none given.
        let b = p.tenant("b").unwrap();
        assert!(matches!(
            p.plugin_spec(b, "other", None),
            Err(PolicyError::NoLocation { .. })
        ));
        assert_eq!(
            p.plugin_spec(b, "other", Some("x.wasm")).unwrap().location,
            "x.wasm"
        );
        assert!(matches!(
            p.tenant("c"),
            Err(PolicyError::UnknownTenant { .. })
        ));
        assert_eq!(p.secret_values().len(), 1);

        // A secret that went away after the check: named by source, not value.
        std::fs::remove_file(&secret).unwrap();
        let err = p.plugin_spec(a, "anon", None).unwrap_err();
        assert!(matches!(err, PolicyError::Secret { .. }), "{err}");
        assert!(format!("{err}").contains("parameter `key`"), "{err}");
    }
}
