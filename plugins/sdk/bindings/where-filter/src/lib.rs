//! Bindings for the `where-filter` world, for `host-plugin-sdk` only.
//!
//! Each world lives in its own crate because wit-bindgen names the exported
//! `plugin` interface's macro the same way in every world, and two
//! `#[macro_export]` macros of the same name cannot share a crate.
#![doc(hidden)]

wit_bindgen::generate!({
    world: "where-filter",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "host_plugin_sdk::__private::where_filter",
    // One set of shared types for all three worlds.
    with: { "host:plugin/types@0.1.0": host_plugin_bindings_item_rewriter::host::plugin::types },
});
