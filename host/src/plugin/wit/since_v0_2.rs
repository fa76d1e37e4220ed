//! `host:plugin@0.2`, a TEST-ONLY interface version (`tests/wit/v0.2/plugin.wit`):
//! compiled into the unit tests alone, so the shipped host refuses 0.2 plugins.
//! It shows what the next real version costs: this one module, reusing the
//! 0.1 types and conversions it did not change. Its one change: a row
//! transformer is handed the table with every batch.

use semver::Version;
use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::since_v0_1::{self, params_of, types as t};
use super::{Answer, Guest, Interface, KIND_CHECKED, Prepared};
use crate::plugin::model::{self, Kind};
use crate::plugin::sandbox::StoreState;

mod item {
    wasmtime::component::bindgen!({
        world: "item-rewriter",
        path: "../tests/wit/v0.2",
        with: { "host:plugin/types": crate::plugin::wit::since_v0_1::types },
    });
}
mod row {
    wasmtime::component::bindgen!({
        world: "row-transformer",
        path: "../tests/wit/v0.2",
        with: { "host:plugin/types": crate::plugin::wit::since_v0_1::types },
    });
}
mod filter {
    wasmtime::component::bindgen!({
        world: "where-filter",
        path: "../tests/wit/v0.2",
        with: { "host:plugin/types": crate::plugin::wit::since_v0_1::types },
    });
}

/// The 0.2 interface.
pub(crate) struct V0_2;

impl Interface for V0_2 {
    fn version(&self) -> Version {
        Version::new(0, 2, 0)
    }

    fn kind_of(&self, interface: &str) -> Option<Kind> {
        since_v0_1::kind_of(interface)
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
        Ok(out.map(since_v0_1::outcomes))
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

    /// New in 0.2: the table goes with every batch.
    fn transform_rows(
        &self,
        store: &mut Store<StoreState>,
        table: &model::Table,
        rows: &[u8],
    ) -> wasmtime::Result<Answer<model::RowBatch>> {
        let Bindings::Row(b) = self else {
            unreachable!("{KIND_CHECKED}")
        };
        let out = b.host_plugin_row_transform().call_transform_rows(
            store,
            &t::Table::from(table),
            rows,
        )?;
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
        Ok(out.map(since_v0_1::outcomes))
    }
}
