//! An item rewriter built against `host:plugin@0.1.1` (`wit/plugin.wit`: the
//! 0.1 WIT with the version bumped and one function added), so that the
//! host's tests can show a 0.1 host running a 0.1.x plugin. It writes the
//! version into every item, as the first member: `{"interface":"0.1.1",...}`.

wit_bindgen::generate!({
    world: "item-rewriter",
    path: "wit",
});

use exports::host::plugin::{item_rewrite, plugin};
use host::plugin::types::{ItemOutcome, Kind, Param, PluginInfo};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct PatchVersion;

impl plugin::Guest for PatchVersion {
    fn info() -> PluginInfo {
        PluginInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::ItemRewriter,
            description: env!("CARGO_PKG_DESCRIPTION").into(),
        }
    }

    fn configure(params: Vec<Param>) -> Result<(), String> {
        match params.first() {
            None => Ok(()),
            Some(p) => Err(format!("takes no parameters, got `{}`", p.key)),
        }
    }

    fn describe() -> String {
        "never called by a 0.1.0 host".into()
    }
}

impl item_rewrite::Guest for PatchVersion {
    fn rewrite_items(items: Vec<String>) -> Result<Vec<ItemOutcome>, String> {
        Ok(items.iter().map(|item| tag(item)).collect())
    }
}

/// `{"interface":"0.1.1", ...rest of the object}`; the host hands over JSON objects.
fn tag(item: &str) -> ItemOutcome {
    let Some(rest) = item.trim_start().strip_prefix('{') else {
        return ItemOutcome::Reject("not a JSON object".into());
    };
    let sep = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    ItemOutcome::Keep(format!("{{\"interface\":\"0.1.1\"{sep}{rest}"))
}

// Native builds (clippy, `cargo test --workspace`) cannot link exports named
// like `host:plugin/plugin@0.1.1#info`; only the wasm build exports.
#[cfg(target_arch = "wasm32")]
export!(PatchVersion);
