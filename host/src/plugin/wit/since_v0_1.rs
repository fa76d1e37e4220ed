//! `host:plugin@0.1` (`wit/v0.1/plugin.wit`): its bindings, and their
//! conversions into and out of the host's model. Runs every 0.1.x plugin.

use semver::Version;
use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::{Answer, Guest, Interface, KIND_CHECKED, Prepared};
use crate::plugin::limits::{MESSAGE_BYTES, NAME_BYTES, cap_text};
use crate::plugin::model::{self, Kind};
use crate::plugin::sandbox::StoreState;

pub mod item {
    wasmtime::component::bindgen!({
        world: "item-rewriter",
        path: "../wit/v0.1",
    });
}
pub mod row {
    wasmtime::component::bindgen!({
        world: "row-transformer",
        path: "../wit/v0.1",
        with: { "host:plugin/types": super::item::host::plugin::types },
    });
}
pub mod filter {
    wasmtime::component::bindgen!({
        world: "where-filter",
        path: "../wit/v0.1",
        with: { "host:plugin/types": super::item::host::plugin::types },
    });
}
/// The types every 0.1 world shares; later versions reuse what they did not change.
pub use item::host::plugin::types;
use types as t;

/// The 0.1 interface.
pub(crate) struct V0_1;

impl Interface for V0_1 {
    fn version(&self) -> Version {
        Version::new(0, 1, 0)
    }

    fn kind_of(&self, interface: &str) -> Option<Kind> {
        kind_of(interface)
    }

    fn prepare(
        &self,
        kind: Kind,
        pre: InstancePre<StoreState>,
    ) -> wasmtime::Result<Box<dyn Prepared>> {
        Ok(Box::new(match kind {
            Kind::ItemRewriter => Pre::Item(item::ItemRewriterPre::new(pre)?),
            Kind::RowTransformer => Pre::Row(row::RowTransformerPre::new(pre)?),
            Kind::WhereFilter => Pre::Filter(filter::WhereFilterPre::new(pre)?),
        }))
    }
}

/// The exported interface that makes a component a plugin of each kind.
pub(crate) fn kind_of(interface: &str) -> Option<Kind> {
    match interface {
        "item-rewrite" => Some(Kind::ItemRewriter),
        "row-transform" => Some(Kind::RowTransformer),
        "filter" => Some(Kind::WhereFilter),
        _ => None,
    }
}

enum Pre {
    Item(item::ItemRewriterPre<StoreState>),
    Row(row::RowTransformerPre<StoreState>),
    Filter(filter::WhereFilterPre<StoreState>),
}

impl Prepared for Pre {
    fn instantiate(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Box<dyn Guest>> {
        Ok(match self {
            Pre::Item(p) => Box::new(Bindings::Item(p.instantiate(store)?)),
            Pre::Row(p) => Box::new(Bindings::Row(p.instantiate(store)?)),
            Pre::Filter(p) => Box::new(Bindings::Filter(p.instantiate(store)?)),
        })
    }
}

enum Bindings {
    Item(item::ItemRewriter),
    Row(row::RowTransformer),
    Filter(filter::WhereFilter),
}

impl Guest for Bindings {
    fn info(&self, store: &mut Store<StoreState>) -> wasmtime::Result<model::Info> {
        let info = match self {
            Bindings::Item(b) => b.host_plugin_plugin().call_info(store),
            Bindings::Row(b) => b.host_plugin_plugin().call_info(store),
            Bindings::Filter(b) => b.host_plugin_plugin().call_info(store),
        }?;
        Ok(info.into())
    }

    fn configure(
        &self,
        store: &mut Store<StoreState>,
        params: &[(String, String)],
    ) -> wasmtime::Result<Answer<()>> {
        let params = params_of(params);
        match self {
            Bindings::Item(b) => b.host_plugin_plugin().call_configure(store, &params),
            Bindings::Row(b) => b.host_plugin_plugin().call_configure(store, &params),
            Bindings::Filter(b) => b.host_plugin_plugin().call_configure(store, &params),
        }
    }

    fn rewrite_items(
        &self,
        store: &mut Store<StoreState>,
        items: &[String],
    ) -> wasmtime::Result<Answer<Vec<model::ItemOutcome>>> {
        let Bindings::Item(b) = self else {
            unreachable!("{KIND_CHECKED}")
        };
        let out = b
            .host_plugin_item_rewrite()
            .call_rewrite_items(store, items)?;
        Ok(out.map(|o| o.into_iter().map(Into::into).collect()))
    }

    fn filter_items(
        &self,
        store: &mut Store<StoreState>,
        items: &[String],
    ) -> wasmtime::Result<Answer<Vec<model::Outcome>>> {
        let Bindings::Filter(b) = self else {
            unreachable!("{KIND_CHECKED}")
        };
        let out = b.host_plugin_filter().call_filter_items(store, items)?;
        Ok(out.map(outcomes))
    }

    fn begin_table(
        &self,
        store: &mut Store<StoreState>,
        table: &model::Table,
    ) -> wasmtime::Result<Answer<()>> {
        let table = t::Table::from(table);
        match self {
            Bindings::Row(b) => b
                .host_plugin_row_transform()
                .call_begin_table(store, &table),
            Bindings::Filter(b) => b.host_plugin_filter().call_begin_table(store, &table),
            Bindings::Item(_) => unreachable!("{KIND_CHECKED}"),
        }
    }

    fn transform_rows(
        &self,
        store: &mut Store<StoreState>,
        _table: &model::Table,
        rows: &[u8],
    ) -> wasmtime::Result<Answer<model::RowBatch>> {
        let Bindings::Row(b) = self else {
            unreachable!("{KIND_CHECKED}")
        };
        let out = b
            .host_plugin_row_transform()
            .call_transform_rows(store, rows)?;
        Ok(out.map(Into::into))
    }

    fn filter_rows(
        &self,
        store: &mut Store<StoreState>,
        _table: &model::Table,
        rows: &[u8],
    ) -> wasmtime::Result<Answer<Vec<model::Outcome>>> {
        let Bindings::Filter(b) = self else {
            unreachable!("{KIND_CHECKED}")
        };
        let out = b.host_plugin_filter().call_filter_rows(store, rows)?;
        Ok(out.map(outcomes))
    }
}

pub(crate) fn params_of(params: &[(String, String)]) -> Vec<t::Param> {
    params
        .iter()
        .map(|(k, v)| t::Param {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

pub(crate) fn outcomes(o: Vec<t::Outcome>) -> Vec<model::Outcome> {
    o.into_iter().map(Into::into).collect()
}

impl From<t::Kind> for Kind {
    fn from(k: t::Kind) -> Self {
        match k {
            t::Kind::ItemRewriter => Kind::ItemRewriter,
            t::Kind::RowTransformer => Kind::RowTransformer,
            t::Kind::WhereFilter => Kind::WhereFilter,
        }
    }
}

impl From<t::PluginInfo> for model::Info {
    fn from(i: t::PluginInfo) -> Self {
        model::Info {
            name: cap_text(i.name, NAME_BYTES),
            version: cap_text(i.version, NAME_BYTES),
            kind: i.kind.into(),
            description: cap_text(i.description, MESSAGE_BYTES),
        }
    }
}

impl From<t::ItemOutcome> for model::ItemOutcome {
    fn from(o: t::ItemOutcome) -> Self {
        match o {
            t::ItemOutcome::Keep(s) => model::ItemOutcome::Keep(s),
            t::ItemOutcome::Drop => model::ItemOutcome::Drop,
            t::ItemOutcome::Reject(r) => model::ItemOutcome::Reject(cap_text(r, MESSAGE_BYTES)),
        }
    }
}

impl From<t::Outcome> for model::Outcome {
    fn from(o: t::Outcome) -> Self {
        match o {
            t::Outcome::Keep => model::Outcome::Keep,
            t::Outcome::Drop => model::Outcome::Drop,
            t::Outcome::Reject(r) => model::Outcome::Reject(cap_text(r, MESSAGE_BYTES)),
        }
    }
}

impl From<t::RowBatch> for model::RowBatch {
    fn from(b: t::RowBatch) -> Self {
        model::RowBatch {
            outcomes: outcomes(b.outcomes),
            rows: b.rows,
        }
    }
}

impl From<&model::Table> for t::Table {
    fn from(tb: &model::Table) -> Self {
        t::Table {
            schema: tb.schema.clone(),
            name: tb.name.clone(),
            columns: tb
                .columns
                .iter()
                .map(|c| t::Column {
                    name: c.name.clone(),
                    type_name: c.type_name.clone(),
                })
                .collect(),
        }
    }
}
