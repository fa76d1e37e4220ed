//! Write `host` plugins as plain Rust.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2`. With this
//! crate its author implements [`Plugin`] (how to build it from the user's
//! parameters) and one of [`ItemRewriter`], [`RowTransformer`] or
//! [`WhereFilter`], then calls the matching export macro once:
//!
//! ```
//! use host_plugin_sdk::{Item, ItemOutcome, ItemRewriter, Params, Plugin};
//!
//! /// Tags every item with a `source` property-like top-level field.
//! struct Tag {
//!     source: String,
//! }
//!
//! impl Plugin for Tag {
//!     fn new(params: &Params) -> Result<Self, String> {
//!         params.only(&["source"])?;
//!         Ok(Tag { source: params.require("source")?.to_owned() })
//!     }
//! }
//!
//! impl ItemRewriter for Tag {
//!     fn rewrite(&mut self, mut item: Item) -> ItemOutcome {
//!         item.set("source", &self.source);
//!         ItemOutcome::Keep(item)
//!     }
//! }
//!
//! host_plugin_sdk::export_item_rewriter!(Tag);
//! ```
//!
//! The macro fills the plugin's `info` from the crate's `Cargo.toml` (name,
//! version, description; [`Plugin::DESCRIPTION`] overrides the latter), keeps
//! the value built by `configure` and turns the host's batches into one call
//! per item or row. Items are [`Item`]s, parsed lazily so that a plugin pays
//! only for the fields it reads; rows are [`Row`]s, decoded from COPY text
//! without copying. A batch function called before `configure` returns an
//! error. A panic traps the instance; the host builds a fresh one.
//!
//! Build with `cargo build --release --target wasm32-wasip2`: the `.wasm` file
//! in `target/wasm32-wasip2/release/` is the component. Give the crate
//! `crate-type = ["cdylib", "rlib"]` so its logic can also be unit-tested
//! natively, with the drivers in [`run`].

mod copy;
mod json;
mod params;
pub mod pg;
pub mod stac;

pub use copy::{Column, Row, Table, decode_field, encode_field};
pub use json::{Item, JsonObject};
pub use params::Params;
/// The serde_json this crate uses, for `Value`, `json!` and `RawValue`.
pub use serde_json;

/// What happens to one item.
#[derive(Debug, Clone)]
pub enum ItemOutcome {
    /// Pass the item on (unchanged or rewritten).
    Keep(Item),
    /// Leave it out; the host counts it as dropped.
    Drop,
    /// The item is bad; the host shows this reason with the item's id.
    Reject(String),
}

/// What happens to one row, or a filter's decision on an item or row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Pass it on.
    Keep,
    /// Leave it out; the host counts it as dropped.
    Drop,
    /// It is bad; the host shows this reason.
    Reject(String),
}

impl Outcome {
    /// `Keep` if `keep`, else `Drop`.
    pub fn keep_if(keep: bool) -> Outcome {
        if keep { Outcome::Keep } else { Outcome::Drop }
    }
}

/// What every plugin has: how it is built from the user's parameters.
pub trait Plugin: Sized + 'static {
    /// One line for `host plugin inspect`; `None` uses the `description` of
    /// the plugin's `Cargo.toml`.
    const DESCRIPTION: Option<&'static str> = None;

    /// Builds the plugin from the user's parameters (`configure`). Refuse
    /// unknown or bad parameters here with a message for the user; see
    /// [`Params::only`] and [`Params::require`].
    fn new(params: &Params) -> Result<Self, String>;
}

/// A STAC item rewriter (world `item-rewriter`); export with [`export_item_rewriter!`].
pub trait ItemRewriter: Plugin {
    /// Rewrites, drops or rejects one item.
    fn rewrite(&mut self, item: Item) -> ItemOutcome;
}

/// A row transformer, e.g. an anonymizer (world `row-transformer`); export
/// with [`export_row_transformer!`].
pub trait RowTransformer: Plugin {
    /// Called once per table before its rows; refuse a table the parameters
    /// do not fit (a missing column, say). Look columns up here, not per row.
    fn begin_table(&mut self, table: &Table) -> Result<(), String>;

    /// Changes the row in place ([`Row::set`]) and keeps, drops or rejects it.
    fn transform(&mut self, row: &mut Row<'_>) -> Outcome;
}

/// Keep-or-drop decisions for items and rows (world `where-filter`); export
/// with [`export_where_filter!`]. Implement one side or both: the defaults
/// reject items / refuse tables, saying the filter does not handle them.
pub trait WhereFilter: Plugin {
    /// Keeps, drops or rejects one item.
    fn keep_item(&mut self, item: &Item) -> Outcome {
        let _ = item;
        Outcome::Reject(NO_ITEMS.into())
    }

    /// As [`RowTransformer::begin_table`].
    fn begin_table(&mut self, table: &Table) -> Result<(), String> {
        let _ = table;
        Err(NO_ROWS.into())
    }

    /// Keeps, drops or rejects one row.
    fn keep_row(&mut self, row: &Row<'_>) -> Outcome {
        let _ = row;
        Outcome::Reject(NO_ROWS.into())
    }
}

const NO_ITEMS: &str = "this filter does not handle items";
const NO_ROWS: &str = "this filter does not handle rows";

/// Drives a plugin over a batch exactly as the exported component does; for
/// native unit tests of a plugin's logic.
pub mod run {
    use super::*;

    /// An item's outcome as it crosses to the host: kept items as JSON text.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ItemResult {
        /// The kept item's JSON.
        Keep(String),
        /// Dropped.
        Drop,
        /// Rejected, with the reason.
        Reject(String),
    }

    /// Rewrites a batch of items; an item that is not a JSON object is rejected.
    pub fn rewrite_items<T: ItemRewriter>(plugin: &mut T, items: Vec<String>) -> Vec<ItemResult> {
        items
            .into_iter()
            .map(|json| match Item::parse(json) {
                Err(e) => ItemResult::Reject(e),
                Ok(item) => match plugin.rewrite(item) {
                    ItemOutcome::Keep(item) => ItemResult::Keep(item.into_json()),
                    ItemOutcome::Drop => ItemResult::Drop,
                    ItemOutcome::Reject(reason) => ItemResult::Reject(reason),
                },
            })
            .collect()
    }

    /// Filters a batch of items; an item that is not a JSON object is rejected.
    pub fn filter_items<T: WhereFilter>(plugin: &mut T, items: Vec<String>) -> Vec<Outcome> {
        items
            .into_iter()
            .map(|json| match Item::parse(json) {
                Err(e) => Outcome::Reject(e),
                Ok(item) => plugin.keep_item(&item),
            })
            .collect()
    }

    /// Transforms a COPY text batch of `table`'s rows (call `begin_table`
    /// first): one outcome per row and the kept rows as COPY text.
    pub fn transform_rows<T: RowTransformer>(
        plugin: &mut T,
        table: &Table,
        rows: &[u8],
    ) -> Result<(Vec<Outcome>, Vec<u8>), String> {
        copy::transform(table, rows, |row| plugin.transform(row))
    }

    /// Filters a COPY text batch of `table`'s rows (call `begin_table` first).
    pub fn filter_rows<T: WhereFilter>(
        plugin: &mut T,
        table: &Table,
        rows: &[u8],
    ) -> Result<Vec<Outcome>, String> {
        let mut outcomes = Vec::new();
        copy::for_each_row(table, rows, |row| outcomes.push(plugin.keep_row(row)))?;
        Ok(outcomes)
    }
}

#[doc(hidden)]
pub mod __private;

/// Exports `$plugin` (an [`ItemRewriter`]) as the component's `item-rewriter` world.
#[macro_export]
macro_rules! export_item_rewriter {
    ($plugin:ty) => {
        $crate::__export_world!($plugin, ItemRewriter, ItemRewriterExport, item_rewriter);
    };
}

/// Exports `$plugin` (a [`RowTransformer`]) as the component's `row-transformer` world.
#[macro_export]
macro_rules! export_row_transformer {
    ($plugin:ty) => {
        $crate::__export_world!(
            $plugin,
            RowTransformer,
            RowTransformerExport,
            row_transformer
        );
    };
}

/// Exports `$plugin` (a [`WhereFilter`]) as the component's `where-filter` world.
#[macro_export]
macro_rules! export_where_filter {
    ($plugin:ty) => {
        $crate::__export_world!($plugin, WhereFilter, WhereFilterExport, where_filter);
    };
}

// The exports are only linked for wasm32: native cdylibs cannot export names
// like `host:plugin/plugin@0.1.0#info`. Natively the macro only checks that
// the plugin implements the trait, so that `cargo test` sees the same errors.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_world {
    ($plugin:ty, $trait:ident, $adapter:ident, $world:ident) => {
        const _: () = {
            fn __host_plugin_implements<T: $crate::$trait>() {}
            let _ = __host_plugin_implements::<$plugin>;
        };
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct __HostPluginCrate;
            impl $crate::__private::Crate for __HostPluginCrate {
                const NAME: &'static str = env!("CARGO_PKG_NAME");
                const VERSION: &'static str = env!("CARGO_PKG_VERSION");
                const DESCRIPTION: &'static str = env!("CARGO_PKG_DESCRIPTION");
            }
            type __HostPluginExport = $crate::__private::$adapter<$plugin, __HostPluginCrate>;
            $crate::__private::$world::export!(
                __HostPluginExport with_types_in $crate::__private::$world
            );
        };
    };
}
