//! A job bound to its tenant under a policy (`tenant = "acme"` in the job,
//! or `--tenant`): its plugins become the policy's pinned builds with the
//! tenant's parameters, and its [`DataScope`] the tenant's tables and row
//! predicate, which the plan applies to every table (see [`super::plan`]).
//! Everything here happens before any plugin is read, fetched or compiled,
//! so a plugin the tenant may not run never reaches the compile cache.
//!
//! The jobs file is the operator's (it holds the databases' credentials):
//! its SQL — a `where` string, a `select` expression — runs as written, and
//! the tenant's predicate is ANDed to it. What the tenant supplies is its
//! plugins, and those see only the rows the SELECT returns.

use std::path::PathBuf;

use super::jobs::{Job, PluginRef, Setting};
use crate::policy::{DataScope, ParamValue, Policy, PolicyError, Tenant, TenantScope};

/// How the jobs of a run are bound.
#[derive(Debug, Clone, Copy)]
pub enum Binding<'a> {
    /// No policy: jobs run as written; a job that names a tenant is refused.
    Unbound,
    /// Every job runs as one of the policy's tenants: its own, or `tenant`.
    Policy {
        policy: &'a Policy,
        tenant: Option<&'a str>,
    },
}

/// Why a job cannot run as its tenant.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "job {job} is tenant `{tenant}`'s; a tenant's job runs only under a policy \
         (--policy FILE or HOST_POLICY)"
    )]
    NoPolicy { job: String, tenant: String },
    #[error(
        "job {job} names no tenant; under policy {} every job runs as one of its tenants: \
         add `tenant = \"NAME\"` to the job, or give --tenant", .path.display()
    )]
    NoTenant { job: String, path: PathBuf },
    #[error("job {job} is tenant `{job_tenant}`'s, but --tenant says `{flag}`")]
    OtherTenant {
        job: String,
        job_tenant: String,
        flag: String,
    },
    // The policy's message (the cause, shown after this one by `{:#}`)
    // names the policy file and the tenant.
    #[error("job {job}")]
    Tenant {
        job: String,
        source: Box<PolicyError>,
    },
    #[error("job {job}, table {table}")]
    Plugin {
        job: String,
        table: String,
        source: Box<PolicyError>,
    },
    #[error(
        "job {job}, table {table}: plugin `{plugin}` is pinned to sha256:{pinned} in the job, \
         but policy {} allows sha256:{allowed}", .path.display()
    )]
    Digest {
        job: String,
        table: String,
        plugin: String,
        pinned: String,
        allowed: String,
        path: PathBuf,
    },
    #[error(
        "job {job}, table {table}: parameter `{param}` of plugin `{plugin}` is set by policy {}; \
         the job may not set it", .path.display()
    )]
    ParamSetByPolicy {
        job: String,
        table: String,
        plugin: String,
        param: String,
        path: PathBuf,
    },
}

impl BindError {
    /// Whether the policy refused a plugin (not allowed, another digest):
    /// what the audit log records as a refused setup.
    pub fn plugin_refused(&self) -> bool {
        matches!(
            self,
            BindError::Plugin { source, .. } if matches!(**source, PolicyError::NotAllowed { .. })
        ) || matches!(self, BindError::Digest { .. })
    }
}

impl<'a> Binding<'a> {
    /// The job as it runs: as written, or bound to its tenant.
    // Once per job, before anything runs: the error's size costs nothing.
    #[allow(clippy::result_large_err)]
    pub fn bind(&self, job: &Job) -> Result<Job, BindError> {
        let Some((policy, tenant)) = self.tenant_of(&job.name, job.tenant.as_deref())? else {
            return Ok(job.clone());
        };
        let mut bound = job.clone();
        bound.tenant = Some(tenant.name.clone());
        bound.scope = DataScope::Tenant(TenantScope {
            tenant: tenant.name.clone(),
            scope: tenant.scope.clone(),
        });
        for entry in &mut bound.tables {
            entry.plugins = bind_plugins(policy, tenant, &job.name, &entry.name, &entry.plugins)?;
        }
        Ok(bound)
    }

    /// One table's plugins (as a job names them) as its tenant runs them:
    /// what a stream does at each run, its tables and rows having been
    /// fixed when it was set up.
    #[allow(clippy::result_large_err)]
    pub fn bind_table(
        &self,
        job: &str,
        tenant: Option<&str>,
        table: &str,
        plugins: &[PluginRef],
    ) -> Result<Vec<PluginRef>, BindError> {
        match self.tenant_of(job, tenant)? {
            None => Ok(plugins.to_vec()),
            Some((policy, tenant)) => bind_plugins(policy, tenant, job, table, plugins),
        }
    }

    /// The tenant a job named `job` (whose file says `tenant`) runs as, if any.
    #[allow(clippy::result_large_err)]
    fn tenant_of(
        &self,
        job: &str,
        tenant: Option<&str>,
    ) -> Result<Option<(&'a Policy, &'a Tenant)>, BindError> {
        let (policy, flag) = match *self {
            Binding::Unbound => {
                return match tenant {
                    Some(tenant) => Err(BindError::NoPolicy {
                        job: job.to_string(),
                        tenant: tenant.to_string(),
                    }),
                    None => Ok(None),
                };
            }
            Binding::Policy { policy, tenant } => (policy, tenant),
        };
        let name = match (tenant, flag) {
            (Some(t), Some(f)) if t != f => {
                return Err(BindError::OtherTenant {
                    job: job.to_string(),
                    job_tenant: t.to_string(),
                    flag: f.to_string(),
                });
            }
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => {
                return Err(BindError::NoTenant {
                    job: job.to_string(),
                    path: policy.path.clone(),
                });
            }
        };
        let tenant = policy.tenant(name).map_err(|source| BindError::Tenant {
            job: job.to_string(),
            source: Box::new(source),
        })?;
        Ok(Some((policy, tenant)))
    }
}

/// A table's plugins as `tenant` runs them: each the policy's pinned build
/// of the plugin it names, with the tenant's parameters and secrets.
#[allow(clippy::result_large_err)]
fn bind_plugins(
    policy: &Policy,
    tenant: &Tenant,
    job: &str,
    table: &str,
    plugins: &[PluginRef],
) -> Result<Vec<PluginRef>, BindError> {
    let on_policy = |source| BindError::Plugin {
        job: job.to_string(),
        table: table.to_string(),
        source: Box::new(source),
    };
    let mut bound = Vec::with_capacity(plugins.len());
    for r in plugins {
        // `plugin = "anon"`, maybe pinned again (`#sha256=` or `sha256 = …`).
        let plugin = r
            .name
            .split("#sha256=")
            .next()
            .unwrap_or_default()
            .to_string();
        let pinned = r
            .location
            .rsplit_once("#sha256=")
            .map(|(_, d)| d.to_ascii_lowercase());
        let allowed = policy.allowed(tenant, &plugin).map_err(on_policy)?;
        if let Some(pinned) = pinned.filter(|d| *d != allowed.sha256) {
            return Err(BindError::Digest {
                job: job.to_string(),
                table: table.to_string(),
                plugin,
                pinned,
                allowed: allowed.sha256.clone(),
                path: policy.path.clone(),
            });
        }
        let location = policy.location(tenant, allowed).map_err(on_policy)?;
        let mut params = r.params.clone();
        for (key, value) in policy.params(tenant, &plugin).map_err(on_policy)? {
            if params.iter().any(|(k, _)| *k == key) {
                return Err(BindError::ParamSetByPolicy {
                    job: job.to_string(),
                    table: table.to_string(),
                    plugin,
                    param: key,
                    path: policy.path.clone(),
                });
            }
            params.push((
                key,
                match value {
                    ParamValue::Literal(v) => Setting::Text(v),
                    ParamValue::Secret(s) => Setting::Hidden(s),
                },
            ));
        }
        bound.push(PluginRef {
            name: plugin,
            location: format!("{location}#sha256={}", allowed.sha256),
            params,
        });
    }
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmat::jobs::JobFile;
    use std::path::Path;

    const D1: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const D2: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn policy(dir: &Path) -> Policy {
        let key = dir.join("key");
        std::fs::write(&key, "k3y\n").unwrap();
        let text = format!(
            r#"[plugins.anon]
sha256 = "{D1}"
location = "/p/anonymize.wasm"
[plugins.other]
sha256 = "{D2}"
location = "/p/other.wasm"
[tenants.a]
plugins = ["anon"]
params.anon = {{ key = {{ file = "{}" }}, mode = "x" }}
scope = {{ tables = ["public.*"], where = "tenant_id = 1" }}
[tenants.b]
plugins = ["other"]
"#,
            key.display()
        );
        Policy::parse(&text, Path::new("p.toml")).unwrap()
    }

    fn job(extra: &str, plugin: &str) -> Job {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xmat.toml");
        let text = format!(
            "[j]\nsource = {{ database = \"postgresql:///s\", schema = \"public\" }}\n\
             target = {{ database = \"postgresql:///t\", schema = \"t\" }}\n{extra}\n\
             [j.tables.users]\nplugins = [{plugin}]\n"
        );
        std::fs::write(&path, text).unwrap();
        JobFile::load(&path).unwrap().jobs.remove(0)
    }

    #[test]
    fn a_bound_job_runs_the_pinned_build_with_the_tenants_params_and_scope() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        let bind = Binding::Policy {
            policy: &p,
            tenant: None,
        };
        let j = bind
            .bind(&job(
                "tenant = \"a\"",
                "{ plugin = \"anon\", params = { column = \"email\" } }",
            ))
            .unwrap();
        let r = &j.tables[0].plugins[0];
        assert_eq!(r.location, format!("/p/anonymize.wasm#sha256={D1}"));
        let spec = r.spec().unwrap();
        assert_eq!(spec.sha256.as_deref(), Some(D1));
        assert!(spec.params.contains(&("key".into(), "k3y".into())));
        assert!(spec.params.contains(&("column".into(), "email".into())));
        assert!(!r.display().contains("k3y"), "{}", r.display());
        assert_eq!(j.scope.tenant(), Some("a"));

        // --tenant for a job that names none; a job of another tenant refused.
        let flag = Binding::Policy {
            policy: &p,
            tenant: Some("a"),
        };
        assert!(flag.bind(&job("", "\"anon\"")).is_ok());
        let e = flag.bind(&job("tenant = \"b\"", "\"anon\"")).unwrap_err();
        assert!(matches!(e, BindError::OtherTenant { .. }), "{e}");
    }

    #[test]
    fn refusals_name_the_job_the_table_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let p = policy(dir.path());
        let bind = Binding::Policy {
            policy: &p,
            tenant: None,
        };
        // Allowed for b, not for a.
        let e = bind.bind(&job("tenant = \"a\"", "\"other\"")).unwrap_err();
        assert!(e.plugin_refused(), "{e}");
        // As the command prints it: the policy's refusal after the job and table.
        let shown = crate::terminal::error_text(&anyhow::Error::from(e));
        assert!(
            shown.contains("job j, table users: tenant `a` may not run plugin `other`"),
            "{shown}"
        );
        let e = bind
            .bind(&job("tenant = \"a\"", &format!("\"anon#sha256={D2}\"")))
            .unwrap_err();
        assert!(matches!(e, BindError::Digest { .. }), "{e}");
        let e = bind
            .bind(&job(
                "tenant = \"a\"",
                "{ plugin = \"anon\", params = { key = \"mine\" } }",
            ))
            .unwrap_err();
        assert!(matches!(e, BindError::ParamSetByPolicy { .. }), "{e}");
        let e = bind.bind(&job("", "\"anon\"")).unwrap_err();
        assert!(matches!(e, BindError::NoTenant { .. }), "{e}");
        let e = bind.bind(&job("tenant = \"c\"", "\"anon\"")).unwrap_err();
        assert!(matches!(e, BindError::Tenant { .. }), "{e}");
        let e = Binding::Unbound
            .bind(&job("tenant = \"a\"", "\"anon\""))
            .unwrap_err();
        assert!(matches!(e, BindError::NoPolicy { .. }), "{e}");
    }
}
