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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::plugin::chain::RowChain;
    use crate::plugin::{Column, Limits, Plugin, PluginError, PluginSpec, Runtime, Table};

    /// A test plugin built by `scripts/build-plugins`, loaded with `params`.
    fn load(rt: &Runtime, name: &str, params: &[(&str, &str)]) -> Plugin {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/wasm32-wasip2/release")
            .join(format!("{name}.wasm"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (run scripts/build-plugins first)", path.display())
        });
        let mut spec = PluginSpec::parse(path.to_str().unwrap()).unwrap();
        spec.params = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        rt.load(&spec, &bytes).unwrap()
    }

    fn table(schema: &str, name: &str, columns: &[&str]) -> Table {
        Table {
            schema: schema.into(),
            name: name.into(),
            columns: columns
                .iter()
                .map(|c| Column {
                    name: c.to_string(),
                    type_name: "text".into(),
                })
                .collect(),
        }
    }

    /// `upper` speaks 0.1 (the table once, at `begin-table`), `table_tag`
    /// speaks 0.2 (the table with every batch): one chain runs both, and
    /// `table_tag` writes the table it was handed into its column.
    #[test]
    fn a_0_2_plugin_runs_beside_0_1_plugins_in_one_chain() {
        let rt = Runtime::new(Limits::default(), None).unwrap();
        let upper = load(&rt, "upper", &[("columns", "name")]);
        let tag = load(&rt, "table_tag", &[("column", "name")]);
        assert_eq!(upper.interface_version(), "0.1.0");
        assert_eq!(tag.interface_version(), "0.2.0");

        let mut chain = RowChain::new(&[upper.clone(), tag, upper]).unwrap();
        chain
            .begin_table(&table("public", "people", &["id", "name"]))
            .unwrap();
        let out = chain.run(b"1\tada\n2\t\\N\n3\tgrace hopper\n", 3);
        assert!(out.failure.is_none(), "{:?}", out.failure);
        assert!(out.dropped.is_empty() && out.rejected.is_empty());
        assert_eq!(out.kept_count, 3);
        assert_eq!(
            String::from_utf8(out.kept).unwrap(),
            "1\tPUBLIC.PEOPLE:ADA\n2\t\\N\n3\tPUBLIC.PEOPLE:GRACE HOPPER\n"
        );

        // The next table reaches the 0.2 plugin with each batch; its name
        // comes back escaped as COPY text (and `upper`, reading the value
        // unescaped, upper-cases the tab but not its escape).
        chain
            .begin_table(&table("we\tird", "pets", &["name", "id"]))
            .unwrap();
        let out = chain.run(b"rex\t1\n", 1);
        assert!(out.failure.is_none(), "{:?}", out.failure);
        assert_eq!(
            String::from_utf8(out.kept).unwrap(),
            "WE\\tIRD.PETS:REX\t1\n"
        );
    }

    /// 0.2's `begin-table` answer goes through the same errors as 0.1's.
    #[test]
    fn a_0_2_plugin_refusing_a_table_is_named() {
        let rt = Runtime::new(Limits::default(), None).unwrap();
        let tag = load(&rt, "table_tag", &[("column", "nope")]);
        let mut chain = RowChain::new(&[tag]).unwrap();
        let err = chain
            .begin_table(&table("public", "people", &["id", "name"]))
            .unwrap_err();
        assert!(matches!(err, PluginError::Table { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "plugin table_tag refused table public.people: table public.people has no column `nope`"
        );
    }
}
