//! From the file as written to a [`Policy`], collecting every problem with
//! its line instead of stopping at the first.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::file::{Amount, File, LimitsFile, ParamFile};
use super::secret::SecretError;
use super::{AllowedPlugin, Param, Pattern, Policy, Scope, Tenant, TenantLimits};
use crate::plugin::{parse_bytes, parse_duration};

/// One thing wrong with a policy, at a line of its file.
#[derive(Debug)]
pub struct Problem {
    pub line: u32,
    pub kind: ProblemKind,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.line, self.kind)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProblemKind {
    #[error("{0}")]
    Syntax(String),
    #[error("{what} name {name:?} may only have letters, digits, '.', '_' and '-'")]
    BadName { what: &'static str, name: String },
    #[error("plugin `{plugin}`: sha256 {reason}")]
    BadDigest { plugin: String, reason: String },
    #[error("tenant `{tenant}` lists plugin `{plugin}`, which is not in [plugins]")]
    UnknownPlugin { tenant: String, plugin: String },
    #[error("tenant `{tenant}` lists plugin `{plugin}` twice")]
    RepeatedPlugin { tenant: String, plugin: String },
    #[error(
        "tenant `{tenant}` has parameters for plugin `{plugin}`, which it does not run; \
         nothing would use them"
    )]
    ParamsForUnlisted { tenant: String, plugin: String },
    #[error("tenant `{tenant}`: limit `{key}`: {reason}")]
    BadLimit {
        tenant: String,
        key: &'static str,
        reason: String,
    },
    #[error(
        "tenant `{tenant}` runs {chain} plugins in a chain, but may have only {instances} \
         instance{} at once; raise `instances` to at least {chain}",
        if *.instances == 1 { "" } else { "s" }
    )]
    ChainOverInstances {
        tenant: String,
        chain: usize,
        instances: u32,
    },
    #[error("tenant `{tenant}`, plugin `{plugin}`, parameter `{param}`: {error}")]
    Secret {
        tenant: String,
        plugin: String,
        param: String,
        error: SecretError,
    },
    #[error("budget: {}", over_budget(*.budget, *.worst, .tenants))]
    OverBudget {
        budget: u64,
        worst: u64,
        tenants: Vec<(String, u64)>,
    },
    #[error(
        "collection {collection:?} is in the scope of both `{first}` and `{second}`; \
         an item must belong to one tenant"
    )]
    SharedCollection {
        collection: String,
        first: String,
        second: String,
    },
    #[error("budget: memory: {reason}")]
    BadBudget { reason: String },
    #[error("tenant `{tenant}`: scope `where` is empty")]
    EmptyWhere { tenant: String },
}

fn over_budget(budget: u64, worst: u64, tenants: &[(String, u64)]) -> String {
    let parts: Vec<String> = tenants
        .iter()
        .map(|(t, b)| format!("{t} {}", mib(*b)))
        .collect();
    format!(
        "the tenants' limits allow {} of plugin memory at once ({}), over the budget of {}",
        mib(worst),
        parts.join(" + "),
        mib(budget)
    )
}

/// Bytes as MiB for people (limits are whole MiB in practice).
pub(super) fn mib(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    }
}

struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn at<T>(&mut self, spanned: &Spanned<T>, kind: ProblemKind) {
        self.at_offset(spanned.span().start, kind);
    }

    fn at_offset(&mut self, offset: usize, kind: ProblemKind) {
        let line = crate::xmat::jobs::line_of(self.text, offset);
        self.problems.push(Problem { line, kind });
    }

    fn name(&mut self, what: &'static str, name: &Spanned<String>) {
        let ok = !name.get_ref().is_empty()
            && name
                .get_ref()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            self.at(
                name,
                ProblemKind::BadName {
                    what,
                    name: name.get_ref().clone(),
                },
            );
        }
    }
}

/// The policy in `text`, or every problem it has.
pub(super) fn check(text: &str, path: &Path) -> Result<Policy, Vec<Problem>> {
    let file: File = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| crate::xmat::jobs::line_of(text, s.start))
            .unwrap_or(1);
        vec![Problem {
            line,
            kind: ProblemKind::Syntax(e.message().trim_end().to_string()),
        }]
    })?;
    let mut c = Checker {
        text,
        problems: Vec::new(),
    };

    let mut plugins = BTreeMap::new();
    for (name, entry) in &file.plugins {
        c.name("plugin", name);
        let entry = entry.get_ref();
        let hex = entry.sha256.get_ref().trim().to_ascii_lowercase();
        if !(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())) {
            c.at(
                &entry.sha256,
                ProblemKind::BadDigest {
                    plugin: name.get_ref().clone(),
                    reason: format!("{:?} is not 64 hex digits", entry.sha256.get_ref()),
                },
            );
        }
        plugins.insert(
            name.get_ref().clone(),
            AllowedPlugin {
                name: name.get_ref().clone(),
                sha256: hex,
                location: entry.location.as_ref().map(|l| l.get_ref().clone()),
            },
        );
    }

    let mut tenants = BTreeMap::new();
    for (name, tenant) in &file.tenants {
        c.name("tenant", name);
        let t = tenant.get_ref();
        let tname = name.get_ref().clone();

        let mut chain: Vec<String> = Vec::new();
        for p in &t.plugins {
            if !plugins.contains_key(p.get_ref()) {
                c.at(
                    p,
                    ProblemKind::UnknownPlugin {
                        tenant: tname.clone(),
                        plugin: p.get_ref().clone(),
                    },
                );
            } else if chain.contains(p.get_ref()) {
                c.at(
                    p,
                    ProblemKind::RepeatedPlugin {
                        tenant: tname.clone(),
                        plugin: p.get_ref().clone(),
                    },
                );
            } else {
                chain.push(p.get_ref().clone());
            }
        }

        let limits = match &t.limits {
            Some(l) => limits(&mut c, &tname, l.get_ref()),
            None => TenantLimits::default(),
        };
        if chain.len() > limits.instances as usize {
            c.at_offset(
                t.limits.as_ref().map_or(name.span(), |l| l.span()).start,
                ProblemKind::ChainOverInstances {
                    tenant: tname.clone(),
                    chain: chain.len(),
                    instances: limits.instances,
                },
            );
        }

        let mut params = BTreeMap::new();
        for (plugin, values) in &t.params {
            if !chain.contains(plugin.get_ref()) {
                c.at(
                    plugin,
                    ProblemKind::ParamsForUnlisted {
                        tenant: tname.clone(),
                        plugin: plugin.get_ref().clone(),
                    },
                );
            }
            let mut list = Vec::new();
            for (key, value) in values {
                let param = match value.get_ref() {
                    ParamFile::Literal(v) => Param::Literal(v.clone()),
                    ParamFile::Secret(source) => {
                        // Checked now so an operator learns of a missing
                        // secret from `policy check`, not mid-run.
                        if let Err(error) = source.read() {
                            c.at(
                                value,
                                ProblemKind::Secret {
                                    tenant: tname.clone(),
                                    plugin: plugin.get_ref().clone(),
                                    param: key.get_ref().clone(),
                                    error,
                                },
                            );
                        }
                        Param::Secret(source.clone())
                    }
                };
                list.push((key.get_ref().clone(), param));
            }
            params.insert(plugin.get_ref().clone(), list);
        }

        let scope = match &t.scope {
            Some(s) => {
                let s = s.get_ref();
                if let Some(w) = &s.where_
                    && w.get_ref().trim().is_empty()
                {
                    c.at(
                        w,
                        ProblemKind::EmptyWhere {
                            tenant: tname.clone(),
                        },
                    );
                }
                Scope {
                    collections: s
                        .collections
                        .iter()
                        .map(|p| Pattern::new(p.get_ref()))
                        .collect(),
                    tables: s.tables.iter().map(|p| Pattern::new(p.get_ref())).collect(),
                    rows: s.where_.as_ref().map(|w| w.get_ref().clone()),
                }
            }
            None => Scope::default(),
        };

        tenants.insert(
            tname.clone(),
            Tenant {
                name: tname,
                plugins: chain,
                scope,
                limits,
                params,
            },
        );
    }

    // A collection named outright by two tenants would make its items
    // ambiguous; globs that overlap are caught per item when loading.
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, tenant) in &file.tenants {
        for p in tenant
            .get_ref()
            .scope
            .iter()
            .flat_map(|s| &s.get_ref().collections)
        {
            let literal = Pattern::new(p.get_ref());
            if !literal.is_literal() {
                continue;
            }
            match owner.get(p.get_ref().as_str()) {
                Some(first) if *first != name.get_ref().as_str() => c.at(
                    p,
                    ProblemKind::SharedCollection {
                        collection: p.get_ref().clone(),
                        first: first.to_string(),
                        second: name.get_ref().clone(),
                    },
                ),
                _ => {
                    owner.insert(p.get_ref(), name.get_ref());
                }
            }
        }
    }

    let mut budget = None;
    if let Some(b) = &file.budget {
        match bytes(b.get_ref().memory.get_ref()) {
            Ok(bytes) => {
                let per: Vec<(String, u64)> = tenants
                    .values()
                    .map(|t: &Tenant| (t.name.clone(), t.limits.worst_memory()))
                    .collect();
                let worst = per.iter().map(|(_, b)| *b).fold(0u64, u64::saturating_add);
                if worst > bytes {
                    c.at(
                        &b.get_ref().memory,
                        ProblemKind::OverBudget {
                            budget: bytes,
                            worst,
                            tenants: per,
                        },
                    );
                }
                budget = Some(bytes);
            }
            Err(reason) => c.at(&b.get_ref().memory, ProblemKind::BadBudget { reason }),
        }
    }

    if c.problems.is_empty() {
        Ok(Policy {
            path: path.to_path_buf(),
            budget,
            plugins,
            tenants,
        })
    } else {
        c.problems.sort_by_key(|p| p.line);
        Err(c.problems)
    }
}

/// A size: text such as `64MiB`, or a number of bytes.
fn bytes(a: &Amount) -> Result<u64, String> {
    match a {
        Amount::Text(t) => parse_bytes(t),
        Amount::Number(n) => Ok(*n),
    }
}

fn limits(c: &mut Checker<'_>, tenant: &str, l: &LimitsFile) -> TenantLimits {
    let mut out = TenantLimits::default();
    let bad = |c: &mut Checker<'_>, at: &Spanned<Amount>, key: &'static str, reason: String| {
        c.at(
            at,
            ProblemKind::BadLimit {
                tenant: tenant.to_string(),
                key,
                reason,
            },
        )
    };
    if let Some(m) = &l.memory {
        match bytes(m.get_ref()) {
            Ok(0) => bad(c, m, "memory", "must be more than 0".into()),
            Ok(b) => out.memory = b,
            Err(e) => bad(c, m, "memory", e),
        }
    }
    if let Some(o) = &l.output {
        match bytes(o.get_ref()) {
            Ok(b) => out.output = b,
            Err(e) => bad(c, o, "output", e),
        }
    }
    let secs = |a: &Amount| match a {
        Amount::Text(t) => parse_duration(t),
        Amount::Number(0) => Err("must be more than 0".to_string()),
        Amount::Number(n) => Ok(Duration::from_secs(*n)),
    };
    if let Some(t) = &l.time {
        match secs(t.get_ref()) {
            Ok(d) => out.time = d,
            Err(e) => bad(c, t, "time", e),
        }
    }
    if let Some(t) = &l.cpu {
        match secs(t.get_ref()) {
            Ok(d) => out.cpu = Some(d),
            Err(e) => bad(c, t, "cpu", e),
        }
    }
    if let Some(f) = &l.fuel {
        if *f.get_ref() == 0 {
            c.at(
                f,
                ProblemKind::BadLimit {
                    tenant: tenant.to_string(),
                    key: "fuel",
                    reason: "must be more than 0".into(),
                },
            );
        }
        out.fuel = Some(*f.get_ref());
    }
    if let Some(i) = &l.instances {
        if *i.get_ref() == 0 {
            c.at(
                i,
                ProblemKind::BadLimit {
                    tenant: tenant.to_string(),
                    key: "instances",
                    reason: "must be at least 1".into(),
                },
            );
        }
        out.instances = *i.get_ref();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const D2: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn problems(text: &str) -> Vec<(u32, ProblemKind)> {
        match check(text, Path::new("p.toml")) {
            Ok(_) => panic!("expected problems in:\n{text}"),
            Err(ps) => ps.into_iter().map(|p| (p.line, p.kind)).collect(),
        }
    }

    #[test]
    fn a_good_policy_becomes_the_model() {
        let text = format!(
            r#"
[budget]
memory = "256MiB"

[plugins.anonymize]
sha256 = "{}"
location = "plugins/anonymize.wasm"
[plugins.set_collection]
sha256 = "{D2}"

[tenants.acme]
plugins = ["set_collection", "anonymize"]
scope = {{ collections = ["acme-*"], tables = ["public.*"], where = "tenant_id = 42" }}
limits = {{ memory = "32MiB", time = "250ms", fuel = 1000, output = 1024, instances = 4, cpu = 60 }}
params.set_collection = {{ collection = "acme-naip" }}
params.anonymize = {{ key = {{ env = "PATH" }} }}

[tenants.globex]
plugins = ["set_collection"]
scope.collections = ["globex"]
"#,
            D1.to_uppercase()
        );
        let p = check(&text, Path::new("p.toml")).unwrap();
        assert_eq!(p.budget, Some(256 << 20));
        assert_eq!(
            p.plugins["anonymize"].sha256, D1,
            "digests are kept lower-case"
        );
        let acme = &p.tenants["acme"];
        assert_eq!(acme.plugins, ["set_collection", "anonymize"]);
        assert_eq!(
            acme.limits,
            TenantLimits {
                memory: 32 << 20,
                time: Duration::from_millis(250),
                fuel: Some(1000),
                output: 1024,
                instances: 4,
                cpu: Some(Duration::from_secs(60)),
            }
        );
        assert_eq!(acme.scope.rows.as_deref(), Some("tenant_id = 42"));
        assert!(acme.scope.holds_collection("acme-x") && !acme.scope.holds_collection("globex"));
        assert_eq!(
            acme.params["anonymize"],
            [(
                "key".to_string(),
                Param::Secret(super::super::SecretSource::Env("PATH".into()))
            )]
        );
        // Defaults: one instance, the flags' limits.
        assert_eq!(p.tenants["globex"].limits, TenantLimits::default());
        assert_eq!(p.worst_memory(), (32 << 20) * 4 + (64 << 20));
    }

    #[test]
    fn every_problem_is_listed_with_its_line() {
        let text = format!(
            r#"[plugins.a]
sha256 = "abc"
[plugins.b]
sha256 = "{D1}"
[tenants.t1]
plugins = ["b", "nope", "b"]
params.a = {{ k = "v" }}
limits = {{ memory = "12 parsecs", time = "0s" }}
[tenants.t2]
plugins = ["b"]
scope = {{ collections = ["shared"], where = " " }}
params.b = {{ s = {{ env = "HOST_TEST_UNSET_7f3e" }} }}
[tenants.t3]
scope = {{ collections = ["shared", "t3-*"] }}
[tenants."bad name"]
"#
        );
        let got = problems(&text);
        let lines: Vec<u32> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 6, 6, 7, 8, 8, 11, 12, 14, 15], "{got:#?}");
        assert!(matches!(&got[0].1, ProblemKind::BadDigest { plugin, .. } if plugin == "a"));
        assert!(matches!(&got[1].1, ProblemKind::UnknownPlugin { plugin, .. } if plugin == "nope"));
        assert!(matches!(&got[2].1, ProblemKind::RepeatedPlugin { plugin, .. } if plugin == "b"));
        assert!(
            matches!(&got[3].1, ProblemKind::ParamsForUnlisted { plugin, .. } if plugin == "a")
        );
        assert!(matches!(
            &got[4].1,
            ProblemKind::BadLimit { key: "memory", .. }
        ));
        assert!(matches!(
            &got[5].1,
            ProblemKind::BadLimit { key: "time", .. }
        ));
        assert!(matches!(&got[6].1, ProblemKind::EmptyWhere { tenant } if tenant == "t2"));
        assert!(
            matches!(&got[7].1, ProblemKind::Secret { param, error: SecretError::Unset(_), .. } if param == "s")
        );
        assert!(
            matches!(&got[8].1, ProblemKind::SharedCollection { collection, first, second }
                if collection == "shared" && first == "t2" && second == "t3")
        );
        assert!(matches!(
            &got[9].1,
            ProblemKind::BadName { what: "tenant", .. }
        ));
        // A secret's problem names its source, never a value.
        assert_eq!(
            got[7].1.to_string(),
            "tenant `t2`, plugin `b`, parameter `s`: environment variable HOST_TEST_UNSET_7f3e is not set"
        );
    }

    #[test]
    fn syntax_and_unknown_keys_name_their_line() {
        let got = problems("[tenants.a]\nplugins = []\nlimts = {}\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 3);
        assert!(got[0].1.to_string().contains("limts"), "{}", got[0].1);

        let got = problems("[plugins.a]\nsha256 = \n");
        assert_eq!(got[0].0, 2, "{:?}", got[0].1);

        let got = problems("[tenants.a.params.p]\nk = { env = \"X\", file = \"/y\" }\n");
        assert_eq!(got[0].0, 2);
        assert!(got[0].1.to_string().contains("one place"), "{}", got[0].1);

        let got = problems("[tenants.a]\nlimits = { instances = -1 }\n");
        assert_eq!(got[0].0, 2);
    }

    #[test]
    fn a_chain_longer_than_its_instances_and_a_budget_too_small_are_refused() {
        let text = format!(
            r#"[budget]
memory = "100MiB"
[plugins.a]
sha256 = "{D1}"
[plugins.b]
sha256 = "{D2}"
[tenants.t]
plugins = ["a", "b"]
limits = {{ memory = "64MiB", instances = 1 }}
[tenants.u]
limits = {{ memory = "16MiB", instances = 3 }}
"#
        );
        let got = problems(&text);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert_eq!(got[0].0, 2);
        let ProblemKind::OverBudget {
            budget,
            worst,
            tenants,
        } = &got[0].1
        else {
            panic!("{got:#?}")
        };
        assert_eq!((*budget, *worst), (100 << 20, 112 << 20));
        assert_eq!(tenants.len(), 2);
        assert_eq!(
            got[0].1.to_string(),
            "budget: the tenants' limits allow 112 MiB of plugin memory at once \
             (t 64 MiB + u 48 MiB), over the budget of 100 MiB"
        );
        assert_eq!(got[1].0, 9);
        assert!(matches!(
            got[1].1,
            ProblemKind::ChainOverInstances {
                chain: 2,
                instances: 1,
                ..
            }
        ));
    }
}
