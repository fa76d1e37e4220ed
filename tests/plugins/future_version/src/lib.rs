//! A minimal item rewriter built against `host:plugin@0.3.0` (the copy of
//! the WIT in `wit/`, with only the version changed), so that the host's
//! "unsupported interface version" error can be tested.

wit_bindgen::generate!({
    world: "item-rewriter",
    path: "wit",
});

use exports::host::plugin::{item_rewrite, plugin};
use host::plugin::types::{ItemOutcome, Kind, Param, PluginInfo};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct FutureVersion;

impl plugin::Guest for FutureVersion {
    fn info() -> PluginInfo {
        PluginInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::ItemRewriter,
            description: env!("CARGO_PKG_DESCRIPTION").into(),
        }
    }

    fn configure(_params: Vec<Param>) -> Result<(), String> {
        Ok(())
    }
}

impl item_rewrite::Guest for FutureVersion {
    fn rewrite_items(items: Vec<String>) -> Result<Vec<ItemOutcome>, String> {
        Ok(items.into_iter().map(ItemOutcome::Keep).collect())
    }
}

// Native builds (clippy, `cargo test --workspace`) cannot link exports named
// like `host:plugin/plugin@0.1.0#info`; only the wasm build exports.
#[cfg(target_arch = "wasm32")]
export!(FutureVersion);
