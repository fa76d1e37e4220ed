//! A plugin that needs 96 MiB of memory to start and never answers `info`;
//! see README.md.

wit_bindgen::generate!({
    world: "item-rewriter",
    path: "../../../wit/v0.1",
});

use exports::host::plugin::{item_rewrite, plugin};
use host::plugin::types::{ItemOutcome, Param, PluginInfo};

/// Zeroed, so it costs the file nothing but the memory's initial size.
static mut BALLAST: [u8; 96 << 20] = [0; 96 << 20];

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Stuck;

impl plugin::Guest for Stuck {
    fn info() -> PluginInfo {
        // SAFETY: a read of one byte of a static nothing writes.
        let first = unsafe { std::ptr::addr_of!(BALLAST).cast::<u8>().read_volatile() };
        let mut n = u64::from(first);
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn configure(_params: Vec<Param>) -> Result<(), String> {
        Ok(())
    }
}

impl item_rewrite::Guest for Stuck {
    fn rewrite_items(items: Vec<String>) -> Result<Vec<ItemOutcome>, String> {
        Ok(items.into_iter().map(ItemOutcome::Keep).collect())
    }
}

// Native builds (clippy, `cargo test --workspace`) cannot link exports named
// like `host:plugin/plugin@0.1.0#info`; only the wasm build exports.
#[cfg(target_arch = "wasm32")]
export!(Stuck);
