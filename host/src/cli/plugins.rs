//! Plugin flags shared by every command that runs plugins.

use std::path::PathBuf;

use clap::{ArgMatches, Args};

use super::UsageError;
use crate::plugin::{Limits, PluginSpec, parse_bytes, parse_duration, parse_param};

/// Sandbox limits and the compile cache.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Plugin sandbox")]
pub struct PluginOpts {
    /// Memory cap per plugin instance.
    #[arg(long, default_value = "64MiB", value_parser = parse_bytes, value_name = "SIZE")]
    pub plugin_memory: u64,

    /// CPU time allowed per plugin call (one batch).
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub plugin_time: std::time::Duration,

    /// Instruction budget ("fuel") per plugin call; off by default (costs 6-30% speed).
    #[arg(long, value_name = "N")]
    pub plugin_fuel: Option<u64>,

    /// Bytes of a plugin's stdout and of its stderr kept per call (the rest is dropped).
    #[arg(long, default_value = "16KiB", value_parser = parse_bytes, value_name = "SIZE")]
    pub plugin_output: u64,

    /// Where compiled plugins are cached [default: $HOST_CACHE_DIR or ~/.cache/host/plugins].
    #[arg(long, value_name = "DIR", env = "HOST_CACHE_DIR")]
    pub plugin_cache: Option<PathBuf>,

    /// Compile plugins every time; read and write no cache.
    #[arg(long)]
    pub no_plugin_cache: bool,

    /// Largest plugin file accepted (a bigger one is refused before it is read).
    #[arg(long, default_value = "256MiB", value_parser = parse_bytes, value_name = "SIZE")]
    pub plugin_max_size: u64,

    /// How long to wait for a plugin URL's server: to connect, to answer, and for each next piece.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub fetch_timeout: std::time::Duration,
}

impl PluginOpts {
    /// The limits these flags describe.
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.plugin_memory,
            call_time: self.plugin_time,
            fuel: self.plugin_fuel,
            output_bytes: self.plugin_output as usize,
            ..Limits::default()
        }
    }

    /// The bounds of fetching a plugin.
    pub fn fetch_bounds(&self) -> crate::fetch::Bounds {
        crate::fetch::Bounds {
            max_bytes: self.plugin_max_size,
            timeout: self.fetch_timeout,
        }
    }

    /// The cache directory, or `None` when caching is off.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_plugin_cache {
            None
        } else {
            self.plugin_cache
                .clone()
                .or_else(crate::plugin::CompileCache::default_dir)
        }
    }
}

/// Running as a tenant of a multi-tenant policy.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Multi-tenant policy")]
pub struct TenantArgs {
    /// The policy binding tenants to their plugins, data and limits (see `host policy check --help`).
    /// Without `--tenant`, every tenant's items go through that tenant's own chain.
    #[arg(long, value_name = "FILE", env = "HOST_POLICY")]
    pub policy: Option<PathBuf>,

    /// Run as this tenant of the policy: only its plugins (`--plugin NAME`, by their policy
    /// names; all of them, in order, when none is given), on its data, within its limits.
    #[arg(long, value_name = "NAME", env = "HOST_TENANT", requires = "policy")]
    pub tenant: Option<String>,

    /// Append one JSON line per batch the plugins ran on to FILE: tenant, plugins (name and
    /// SHA-256), records in/out/dropped/rejected, CPU time, fuel, peak memory and outcome.
    #[arg(long, value_name = "FILE", env = "HOST_AUDIT")]
    pub audit: Option<PathBuf>,
}

/// A chain of plugins: `--plugin`, `--plugin-sha256` and `--plugin-arg`, in order.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Plugins")]
pub struct PluginChainArgs {
    /// A plugin to run, in order (`FILE.wasm`, `FILE.wasm#sha256=HEX`, or a URL).
    #[arg(long = "plugin", value_name = "PLUGIN")]
    pub plugin: Vec<String>,

    /// KEY=VALUE parameter for the nearest plugin before it.
    #[arg(long = "plugin-arg", value_name = "KEY=VALUE")]
    pub plugin_arg: Vec<String>,

    /// Expected SHA-256 of the nearest plugin before it; a mismatch refuses to run.
    #[arg(long = "plugin-sha256", value_name = "HEX")]
    pub plugin_sha256: Vec<String>,
}

/// Builds the ordered plugin list from the parsed matches, attaching each
/// `--plugin-arg` and `--plugin-sha256` to the nearest plugin before it.
/// `first` is a positional plugin that precedes all `--plugin`s, if the command has one.
/// An argument or a pin with no plugin to take it is a usage error: it would
/// silently do nothing (a forgotten `--plugin anonymize.wasm` must not load
/// the data untransformed).
pub fn plugin_specs(
    matches: &ArgMatches,
    first: Option<(&str, &str)>,
) -> Result<Vec<PluginSpec>, UsageError> {
    // (position on the command line, spec)
    let mut specs: Vec<(usize, PluginSpec)> = Vec::new();
    if let Some((id, text)) = first {
        let pos = matches.index_of(id).unwrap_or(0);
        specs.push((pos, PluginSpec::parse(text)?));
    }
    for (pos, text) in indexed(matches, "plugin") {
        specs.push((pos, PluginSpec::parse(&text)?));
    }
    specs.sort_by_key(|(pos, _)| *pos);
    if specs.is_empty() {
        let orphans: Vec<String> = indexed(matches, "plugin_arg")
            .into_iter()
            .map(|(_, a)| format!("--plugin-arg {a}"))
            .chain(
                indexed(matches, "plugin_sha256")
                    .into_iter()
                    .map(|(_, d)| format!("--plugin-sha256 {d}")),
            )
            .collect();
        if let Some(first) = orphans.first() {
            return Err(UsageError(format!(
                "{first} is given, but no --plugin to apply it to; nothing would use it \
                 (add --plugin FILE.wasm before it, or leave it out)"
            )));
        }
        return Ok(Vec::new());
    }
    let owner = |specs: &[(usize, PluginSpec)], pos: usize| {
        specs.iter().rposition(|(p, _)| *p < pos).unwrap_or(0)
    };
    for (pos, text) in indexed(matches, "plugin_arg") {
        let i = owner(&specs, pos);
        specs[i].1.params.push(parse_param(&text)?);
    }
    for (pos, text) in indexed(matches, "plugin_sha256") {
        let i = owner(&specs, pos);
        specs[i].1.pin(&text)?;
    }
    Ok(specs.into_iter().map(|(_, s)| s).collect())
}

fn indexed(matches: &ArgMatches, id: &str) -> Vec<(usize, String)> {
    match (matches.indices_of(id), matches.get_many::<String>(id)) {
        (Some(idx), Some(vals)) => idx.zip(vals.cloned()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct T {
        first: String,
        #[command(flatten)]
        chain: PluginChainArgs,
    }

    fn specs(args: &[&str]) -> Vec<PluginSpec> {
        let m = T::command().get_matches_from(args);
        let t = T::from_arg_matches(&m).unwrap();
        plugin_specs(&m, Some(("first", &t.first))).unwrap()
    }

    #[test]
    fn args_attach_to_the_nearest_plugin_before_them() {
        let s = specs(&[
            "t",
            "--plugin-arg",
            "a=0",
            "one.wasm",
            "--plugin-arg",
            "a=1",
            "--plugin",
            "two.wasm",
            "--plugin-arg",
            "b=2",
            "--plugin-arg",
            "c=3",
            "--plugin",
            "three.wasm",
        ]);
        let names: Vec<_> = s.iter().map(|s| s.location.as_str()).collect();
        assert_eq!(names, ["one.wasm", "two.wasm", "three.wasm"]);
        assert_eq!(
            s[0].params,
            vec![("a".into(), "0".into()), ("a".into(), "1".into())]
        );
        assert_eq!(
            s[1].params,
            vec![("b".into(), "2".into()), ("c".into(), "3".into())]
        );
        assert!(s[2].params.is_empty());
    }

    #[test]
    fn arguments_without_a_plugin_are_a_usage_error() {
        #[derive(Parser)]
        struct NoFirst {
            #[command(flatten)]
            chain: PluginChainArgs,
        }
        let m = NoFirst::command().get_matches_from(["t", "--plugin-arg", "collection=x"]);
        let e = plugin_specs(&m, None).unwrap_err();
        assert!(
            e.0.contains("--plugin-arg collection=x is given, but no --plugin"),
            "{e}"
        );
        let m = NoFirst::command().get_matches_from(["t", "--plugin-sha256", "ab"]);
        assert!(
            plugin_specs(&m, None)
                .unwrap_err()
                .0
                .contains("--plugin-sha256 ab")
        );
        let m = NoFirst::command().get_matches_from(["t"]);
        assert!(plugin_specs(&m, None).unwrap().is_empty());
    }

    #[test]
    fn digest_flag_pins_the_plugin_before_it() {
        let d = "ab".repeat(32);
        let s = specs(&[
            "t",
            "one.wasm",
            "--plugin",
            "two.wasm",
            "--plugin-sha256",
            &d,
        ]);
        assert_eq!(s[0].sha256, None);
        assert_eq!(s[1].sha256.as_deref(), Some(d.as_str()));
    }
}
