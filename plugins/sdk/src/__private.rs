//! Glue between the generated bindings and the traits; used by the export
//! macros only, not a public API.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

pub use host_plugin_bindings_item_rewriter as item_rewriter;
pub use host_plugin_bindings_row_transformer as row_transformer;
pub use host_plugin_bindings_where_filter as where_filter;

use item_rewriter::host::plugin::types as wit;

use crate::run::{self, ItemResult};
use crate::{Column, ItemRewriter, Outcome, Params, Plugin, RowTransformer, Table, WhereFilter};

/// Facts about the plugin's crate, filled in by the export macro.
pub trait Crate {
    const NAME: &'static str;
    const VERSION: &'static str;
    const DESCRIPTION: &'static str;
}

/// The configured plugin and the current table. A component holds exactly
/// one plugin, so one slot of `dyn Any` serves whatever type it is.
struct State {
    plugin: Option<Box<dyn Any>>,
    table: Option<Table>,
}

thread_local! {
    static STATE: RefCell<State> = const { RefCell::new(State { plugin: None, table: None }) };
}

const NOT_CONFIGURED: &str = "the plugin is not configured: the host must call `configure` first";
const NO_TABLE: &str = "no table: the host must call `begin-table` (and it must succeed) first";

fn info<T: Plugin, C: Crate>(kind: wit::Kind) -> wit::PluginInfo {
    wit::PluginInfo {
        name: C::NAME.into(),
        version: C::VERSION.into(),
        kind,
        description: T::DESCRIPTION.unwrap_or(C::DESCRIPTION).into(),
    }
}

fn configure<T: Plugin>(params: Vec<wit::Param>) -> Result<(), String> {
    STATE.with_borrow_mut(|s| {
        s.plugin = None;
        s.table = None;
    });
    let plugin = T::new(&Params::new(params.into_iter().map(|p| (p.key, p.value))))?;
    STATE.with_borrow_mut(|s| s.plugin = Some(Box::new(plugin)));
    Ok(())
}

fn with_plugin<T: 'static, R>(
    f: impl FnOnce(&mut T, Option<&Table>) -> Result<R, String>,
) -> Result<R, String> {
    STATE.with_borrow_mut(|s| {
        let plugin = s.plugin.as_mut().and_then(|p| p.downcast_mut::<T>());
        f(plugin.ok_or(NOT_CONFIGURED)?, s.table.as_ref())
    })
}

fn begin_table<T: 'static>(
    table: wit::Table,
    begin: impl FnOnce(&mut T, &Table) -> Result<(), String>,
) -> Result<(), String> {
    let table = Table {
        schema: table.schema,
        name: table.name,
        columns: table
            .columns
            .into_iter()
            .map(|c| Column {
                name: c.name,
                type_name: c.type_name,
            })
            .collect(),
    };
    STATE.with_borrow_mut(|s| {
        s.table = None;
        let plugin = s.plugin.as_mut().and_then(|p| p.downcast_mut::<T>());
        begin(plugin.ok_or(NOT_CONFIGURED)?, &table)?;
        s.table = Some(table);
        Ok(())
    })
}

fn outcome(o: Outcome) -> wit::Outcome {
    match o {
        Outcome::Keep => wit::Outcome::Keep,
        Outcome::Drop => wit::Outcome::Drop,
        Outcome::Reject(r) => wit::Outcome::Reject(r),
    }
}

/// The `item-rewriter` world's exports for plugin `T` of crate `C`.
pub struct ItemRewriterExport<T, C>(PhantomData<(T, C)>);

impl<T: ItemRewriter, C: Crate> item_rewriter::exports::host::plugin::plugin::Guest
    for ItemRewriterExport<T, C>
{
    fn info() -> wit::PluginInfo {
        info::<T, C>(wit::Kind::ItemRewriter)
    }
    fn configure(params: Vec<wit::Param>) -> Result<(), String> {
        configure::<T>(params)
    }
}

impl<T: ItemRewriter, C: Crate> item_rewriter::exports::host::plugin::item_rewrite::Guest
    for ItemRewriterExport<T, C>
{
    fn rewrite_items(items: Vec<String>) -> Result<Vec<wit::ItemOutcome>, String> {
        with_plugin(|plugin: &mut T, _| {
            let results = run::rewrite_items(plugin, items);
            Ok(results
                .into_iter()
                .map(|r| match r {
                    ItemResult::Keep(json) => wit::ItemOutcome::Keep(json),
                    ItemResult::Drop => wit::ItemOutcome::Drop,
                    ItemResult::Reject(reason) => wit::ItemOutcome::Reject(reason),
                })
                .collect())
        })
    }
}

/// The `row-transformer` world's exports for plugin `T` of crate `C`.
pub struct RowTransformerExport<T, C>(PhantomData<(T, C)>);

impl<T: RowTransformer, C: Crate> row_transformer::exports::host::plugin::plugin::Guest
    for RowTransformerExport<T, C>
{
    fn info() -> wit::PluginInfo {
        info::<T, C>(wit::Kind::RowTransformer)
    }
    fn configure(params: Vec<wit::Param>) -> Result<(), String> {
        configure::<T>(params)
    }
}

impl<T: RowTransformer, C: Crate> row_transformer::exports::host::plugin::row_transform::Guest
    for RowTransformerExport<T, C>
{
    fn begin_table(table: wit::Table) -> Result<(), String> {
        begin_table(table, T::begin_table)
    }
    fn transform_rows(rows: Vec<u8>) -> Result<wit::RowBatch, String> {
        with_plugin(|plugin: &mut T, table| {
            let (outcomes, rows) = run::transform_rows(plugin, table.ok_or(NO_TABLE)?, &rows)?;
            Ok(wit::RowBatch {
                outcomes: outcomes.into_iter().map(outcome).collect(),
                rows,
            })
        })
    }
}

/// The `where-filter` world's exports for plugin `T` of crate `C`.
pub struct WhereFilterExport<T, C>(PhantomData<(T, C)>);

impl<T: WhereFilter, C: Crate> where_filter::exports::host::plugin::plugin::Guest
    for WhereFilterExport<T, C>
{
    fn info() -> wit::PluginInfo {
        info::<T, C>(wit::Kind::WhereFilter)
    }
    fn configure(params: Vec<wit::Param>) -> Result<(), String> {
        configure::<T>(params)
    }
}

impl<T: WhereFilter, C: Crate> where_filter::exports::host::plugin::filter::Guest
    for WhereFilterExport<T, C>
{
    fn filter_items(items: Vec<String>) -> Result<Vec<wit::Outcome>, String> {
        with_plugin(|plugin: &mut T, _| {
            Ok(run::filter_items(plugin, items)
                .into_iter()
                .map(outcome)
                .collect())
        })
    }
    fn begin_table(table: wit::Table) -> Result<(), String> {
        begin_table(table, T::begin_table)
    }
    fn filter_rows(rows: Vec<u8>) -> Result<Vec<wit::Outcome>, String> {
        with_plugin(|plugin: &mut T, table| {
            let outcomes = run::filter_rows(plugin, table.ok_or(NO_TABLE)?, &rows)?;
            Ok(outcomes.into_iter().map(outcome).collect())
        })
    }
}
