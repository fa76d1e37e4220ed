//! Bindings for the `item-rewriter` world, for `host-plugin-sdk` only.
//!
//! Each world lives in its own crate because wit-bindgen names the exported
//! `plugin` interface's macro the same way in every world, and two
//! `#[macro_export]` macros of the same name cannot share a crate.
#![doc(hidden)]

wit_bindgen::generate!({
    world: "item-rewriter",
    path: "../../wit",
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "host_plugin_sdk::__private::item_rewriter",

});
