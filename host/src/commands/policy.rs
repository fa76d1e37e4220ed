//! `host policy check`: every problem of a policy with its line, or a summary
//! of what it allows. Secret values are never printed; their sources are.

use anyhow::anyhow;
use serde_json::{Value, json};

use super::Status;
use crate::cli::PolicyCheckArgs;
use crate::policy::{Param, Policy, PolicyError, Tenant};
use crate::terminal::escape_message;

/// Runs the command.
pub fn check(args: PolicyCheckArgs) -> anyhow::Result<Status> {
    let policy = match Policy::load(&args.file) {
        Ok(p) => p,
        Err(PolicyError::Invalid { path, problems }) => {
            // One line per problem, each escaped: names in the file are the
            // operator's text, but a terminal must not run anything in them.
            for p in &problems {
                eprintln!("{}:{}", path.display(), escape_message(&p.to_string()));
            }
            return Err(anyhow!(
                "policy {} has {} problem{}",
                path.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary(&policy))?);
    } else {
        print_summary(&policy);
    }
    Ok(Status::Success)
}

fn params_json(t: &Tenant, plugin: &str) -> Value {
    let mut map = serde_json::Map::new();
    for (k, v) in t.params.get(plugin).into_iter().flatten() {
        let shown = match v {
            Param::Literal(text) => json!(text),
            Param::Secret(source) => json!({ "secret": source.to_string() }),
        };
        map.insert(k.clone(), shown);
    }
    Value::Object(map)
}

fn summary(policy: &Policy) -> Value {
    let tenants: Vec<Value> = policy
        .tenants
        .values()
        .map(|t| {
            json!({
                "name": t.name,
                "plugins": t.plugins.iter().map(|p| json!({
                    "name": p,
                    "sha256": policy.plugins[p].sha256,
                    "params": params_json(t, p),
                })).collect::<Vec<_>>(),
                "scope": {
                    "collections": t.scope.collections.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                    "tables": t.scope.tables.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
                    "where": t.scope.rows,
                },
                "limits": {
                    "memory_bytes": t.limits.memory,
                    "time_ms": t.limits.time.as_millis() as u64,
                    "fuel": t.limits.fuel,
                    "output_bytes": t.limits.output,
                    "instances": t.limits.instances,
                    "cpu_ms": t.limits.cpu.map(|d| d.as_millis() as u64),
                },
                "worst_memory_bytes": t.limits.worst_memory(),
            })
        })
        .collect();
    json!({
        "policy": policy.path.display().to_string(),
        "valid": true,
        "budget_memory_bytes": policy.budget,
        "worst_memory_bytes": policy.worst_memory(),
        "plugins": policy.plugins.values().map(|p| json!({
            "name": p.name, "sha256": p.sha256, "location": p.location,
        })).collect::<Vec<_>>(),
        "tenants": tenants,
    })
}

fn print_summary(policy: &Policy) {
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / f64::from(1 << 20));
    println!(
        "policy {}: valid — {} plugin{}, {} tenant{}",
        policy.path.display(),
        policy.plugins.len(),
        if policy.plugins.len() == 1 { "" } else { "s" },
        policy.tenants.len(),
        if policy.tenants.len() == 1 { "" } else { "s" },
    );
    match policy.budget {
        Some(b) => println!(
            "memory: at most {} of plugin instances at once, within the budget of {}",
            mib(policy.worst_memory()),
            mib(b)
        ),
        None => println!(
            "memory: at most {} of plugin instances at once (no budget set)",
            mib(policy.worst_memory())
        ),
    }
    for t in policy.tenants.values() {
        println!("tenant {}:", escape_message(&t.name));
        let chain = if t.plugins.is_empty() {
            "none".to_string()
        } else {
            t.plugins.join(" -> ")
        };
        println!("  plugins: {}", escape_message(&chain));
        for p in &t.plugins {
            for (k, v) in t.params.get(p).into_iter().flatten() {
                let shown = match v {
                    Param::Literal(text) => format!("{text:?}"),
                    Param::Secret(source) => format!("secret from {source}"),
                };
                println!("    {p}.{k} = {}", escape_message(&shown));
            }
        }
        let list = |ps: &[crate::policy::Pattern]| {
            if ps.is_empty() {
                "none".to_string()
            } else {
                ps.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
            }
        };
        println!(
            "  scope: collections {}; tables {}{}",
            escape_message(&list(&t.scope.collections)),
            escape_message(&list(&t.scope.tables)),
            t.scope
                .rows
                .as_ref()
                .map(|w| format!("; rows where {}", escape_message(w)))
                .unwrap_or_default()
        );
        let l = &t.limits;
        println!(
            "  limits: memory {} per instance x {} instance{}, {:?} per call{}{}, output {} bytes",
            mib(l.memory),
            l.instances,
            if l.instances == 1 { "" } else { "s" },
            l.time,
            l.fuel.map(|f| format!(", fuel {f}")).unwrap_or_default(),
            l.cpu
                .map(|c| format!(", {c:?} CPU per run"))
                .unwrap_or_default(),
            l.output
        );
    }
}
