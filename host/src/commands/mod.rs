//! One module per command. Each returns a [`Status`] for `main` to turn into
//! an exit code; errors carry their own context.

pub mod delete;
pub mod load;
pub mod migrate;
pub mod pgready;
pub mod plugin_inspect;
pub mod plugin_new;
pub mod plugin_push;
pub mod plugin_run;
pub mod search;
pub mod update_extents;
pub mod version;
pub mod xmat;

use crate::cli::PluginOpts;
use crate::fetch::{Bounds, FetchError, Location};
use crate::oci;
use crate::plugin::{Plugin, PluginError, PluginSpec, Runtime};

/// How a command that finished went, beyond plain success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything done.
    Success,
    /// Done, but some records were rejected.
    Rejected,
    /// Done, but a plugin failed on some batches.
    PluginFailed,
}

impl Status {
    /// The process exit code (see `cli::EXIT_HELP`).
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Success => 0,
            Status::Rejected => 3,
            Status::PluginFailed => 4,
        }
    }
}

/// Builds the runtime for these options and loads each plugin (fetching URLs).
pub async fn load_plugins(
    opts: &PluginOpts,
    specs: &[PluginSpec],
) -> anyhow::Result<(Runtime, Vec<Plugin>)> {
    let cache_dir = opts.cache_dir();
    let runtime = Runtime::new(opts.limits(), cache_dir.as_deref())?;
    let bounds = opts.fetch_bounds();
    let mut plugins = Vec::with_capacity(specs.len());
    for spec in specs {
        let bytes = fetch_plugin(spec, &bounds).await?;
        plugins.push(runtime.load(spec, &bytes)?);
    }
    Ok((runtime, plugins))
}

/// A plugin's bytes from a path, a URL or an OCI registry (`oci://`), read
/// within `bounds` (`--plugin-max-size`, `--fetch-timeout`) and checked
/// against every digest the location carries.
pub async fn fetch_plugin(spec: &PluginSpec, bounds: &Bounds) -> Result<Vec<u8>, PluginError> {
    let fetch_err = |reason: String| PluginError::Fetch {
        location: spec.shown(),
        reason,
    };
    // Which flag moves the bound that was hit.
    let flag = |e: &FetchError| match e {
        FetchError::TooLarge { .. } => " (--plugin-max-size)",
        FetchError::TimedOut { .. } => " (--fetch-timeout)",
        _ => "",
    };
    let location = spec.location.as_str();
    if location.starts_with(oci::SCHEME) {
        let reference = oci::Reference::parse(location).map_err(fetch_err)?;
        let mut registry = oci::Registry::new(&reference, bounds.timeout)?;
        let pulled = registry.pull(bounds).await.map_err(|e| match &e {
            oci::OciError::Fetch(f) => fetch_err(format!("{f}{}", flag(f))),
            oci::OciError::TooLarge {
                what: "wasm layer", ..
            } => fetch_err(format!("{e} (--plugin-max-size)")),
            oci::OciError::Http { error, .. } if error.is_timeout() => fetch_err(format!(
                "the registry did not answer within {}s (--fetch-timeout)",
                bounds.timeout.as_secs_f64()
            )),
            _ => PluginError::from(e),
        })?;
        tracing::debug!(%reference, manifest = %pulled.manifest_digest, "pulled");
        return Ok(pulled.wasm);
    }
    let parsed = Location::parse(location).map_err(|e| fetch_err(e.to_string()))?;
    parsed
        .read_bounded(bounds)
        .await
        .map_err(|e| fetch_err(format!("{e}{}", flag(&e))))
}
