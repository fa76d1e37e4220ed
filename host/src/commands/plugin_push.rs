//! `host plugin push`: a plugin into an OCI registry, as the wasm OCI artifact.

use std::collections::BTreeMap;

use serde_json::json;

use super::Status;
use crate::cli::PushArgs;
use crate::oci;
use crate::plugin::{PluginSpec, Runtime};

/// Loads the plugin (so that only real plugins are pushed), then pushes it.
pub async fn run(args: PushArgs) -> anyhow::Result<Status> {
    let reference = oci::Reference::parse(&args.target).map_err(anyhow::Error::msg)?;
    let spec = PluginSpec::parse(&args.plugin).map_err(anyhow::Error::msg)?;
    let wasm = crate::plugin::fetch(&spec, &args.opts.fetch_bounds()).await?;
    let runtime = Runtime::new(args.opts.limits(), args.opts.cache_dir().as_deref())?;
    let plugin = runtime.load(&spec, &wasm)?;
    let info = plugin.info();

    // The wasm OCI artifact's config (what `wkg oci push` writes).
    let config = json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [oci::digest_of(&wasm)],
        "component": {
            "exports": plugin.exports(),
            "imports": plugin.imports(),
            "target": format!("{}/{}@{}", crate::plugin::wit::PACKAGE, info.kind, plugin.interface_version()),
        },
    });
    let annotations = BTreeMap::from([
        (
            "org.opencontainers.image.title".to_string(),
            info.name.clone(),
        ),
        (
            "org.opencontainers.image.version".to_string(),
            info.version.clone(),
        ),
        (
            "org.opencontainers.image.description".to_string(),
            info.description.clone(),
        ),
    ]);
    let mut registry = oci::Registry::new(&reference, args.opts.fetch_timeout)?;
    let digest = registry.push(&wasm, &config, annotations).await?;
    let pinned = reference.pinned(&digest);
    if args.json {
        println!(
            "{}",
            json!({
                "reference": pinned.to_string(),
                "manifest_digest": format!("sha256:{digest}"),
                "wasm_sha256": plugin.sha256(),
                "size": wasm.len(),
                "name": info.name,
                "version": info.version,
                "kind": info.kind,
            })
        );
    } else {
        println!(
            "pushed {} {} ({}, {} bytes) to {pinned}",
            info.name,
            info.version,
            info.kind,
            wasm.len()
        );
    }
    Ok(Status::Success)
}
