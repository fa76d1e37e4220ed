//! `host plugin inspect`: what a plugin is, before anyone runs it.

use serde_json::json;

use super::{Status, load_plugins};
use crate::cli::{InspectArgs, UsageError};
use crate::plugin::{CacheOutcome, Plugin, PluginSpec, wit};
use crate::terminal::Shown;

/// Loads each plugin (verifying any pinned digest) and describes it.
pub async fn run(args: InspectArgs) -> anyhow::Result<Status> {
    let specs = args
        .plugins
        .iter()
        .map(|p| PluginSpec::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(UsageError)?;
    let (_runtime, plugins) = load_plugins(&args.opts, &specs).await?;
    if args.json {
        let all: Vec<_> = plugins.iter().map(describe_json).collect();
        let out = if all.len() == 1 {
            all.into_iter().next().unwrap()
        } else {
            json!(all)
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (i, p) in plugins.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print!("{}", describe_text(p));
        }
    }
    Ok(Status::Success)
}

fn describe_json(p: &Plugin) -> serde_json::Value {
    let info = p.info();
    json!({
        "location": p.spec().shown(),
        "name": info.name,
        "version": info.version,
        "kind": info.kind,
        "description": info.description,
        "interface": format!("{}@{}", wit::PACKAGE, p.interface_version()),
        "size": p.size(),
        "sha256": p.sha256(),
        "exports": p.exports(),
        "imports": p.imports(),
        "compile": { "cache": p.cache(), "ms": p.load_time().as_secs_f64() * 1e3 },
    })
}

fn describe_text(p: &Plugin) -> String {
    let info = p.info();
    // What the plugin says about itself is shown escaped, like all it writes.
    let mut s = format!(
        "{} {} ({})\n",
        Shown(&info.name),
        Shown(&info.version),
        info.kind
    );
    if !info.description.is_empty() {
        s += &format!("  {}\n", Shown(&info.description));
    }
    s += &format!("  location:   {}\n", Shown(p.spec().shown()));
    s += &format!("  interface:  {}@{}\n", wit::PACKAGE, p.interface_version());
    s += &format!("  size:       {} bytes\n", p.size());
    s += &format!("  sha256:     {}\n", p.sha256());
    s += &format!("  exports:    {}\n", p.exports().join(", "));
    s += &format!(
        "  imports:    {}\n",
        if p.imports().is_empty() {
            "none".to_string()
        } else {
            p.imports().join(", ")
        }
    );
    s += "  sandbox:    no filesystem, network, environment or arguments; output captured;\n";
    s += "              a stopped wall clock, waits that end at once, the same random bytes every run\n";
    let compiled = match p.cache() {
        CacheOutcome::Hit => "loaded from the compile cache",
        CacheOutcome::Miss => "compiled now, stored in the compile cache",
        CacheOutcome::Disabled => "compiled now (cache off)",
    };
    s += &format!(
        "  compiled:   {compiled} in {:.1} ms\n",
        p.load_time().as_secs_f64() * 1e3
    );
    s
}
