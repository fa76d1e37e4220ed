//! Bindings for each supported version of the plugin interface, converted
//! into the host's own model ([`super::model`]).
//!
//! Only v0.1 exists today. When v0.2 ships, add `mod v0_2` beside it and keep
//! v0.1 working through the same conversions (support the current and the
//! previous version, not every version ever released).

use super::limits::{MESSAGE_BYTES, NAME_BYTES, cap_text};
use super::model;

/// Interface versions this host can run, newest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0"];

/// The WIT package every plugin interface lives in.
pub const PACKAGE: &str = "host:plugin";

pub mod v0_1 {
    //! `host:plugin@0.1.0` (`wit/v0.1/plugin.wit`).

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
    pub use item::host::plugin::types;
}

use v0_1::types as t;

impl From<t::Kind> for model::Kind {
    fn from(k: t::Kind) -> Self {
        match k {
            t::Kind::ItemRewriter => model::Kind::ItemRewriter,
            t::Kind::RowTransformer => model::Kind::RowTransformer,
            t::Kind::WhereFilter => model::Kind::WhereFilter,
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

/// Finds the plugin interface version and kind from a component's export
/// names, e.g. `host:plugin/item-rewrite@0.1.0`.
pub fn classify_exports(exports: &[String]) -> Classified {
    let mut versions = Vec::new();
    let mut kinds = Vec::new();
    for name in exports {
        let Some(rest) = name.strip_prefix(PACKAGE).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
        if !versions.contains(&version.to_string()) {
            versions.push(version.to_string());
        }
        let kind = match iface {
            "item-rewrite" => Some(model::Kind::ItemRewriter),
            "row-transform" => Some(model::Kind::RowTransformer),
            "filter" => Some(model::Kind::WhereFilter),
            _ => None,
        };
        if let Some(k) = kind
            && !kinds.contains(&k)
        {
            kinds.push(k);
        }
    }
    Classified { versions, kinds }
}

/// What [`classify_exports`] found.
#[derive(Debug, PartialEq, Eq)]
pub struct Classified {
    /// Interface versions seen in the export names.
    pub versions: Vec<String>,
    /// Plugin kinds whose interface is exported.
    pub kinds: Vec<model::Kind>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDKs carry their own copy of the frozen WIT (so that they build as
    /// path or git dependencies from anywhere); the copies must not drift.
    #[test]
    fn the_sdks_carry_the_released_wit_unchanged() {
        let released = include_str!("../../../wit/v0.1/plugin.wit");
        assert_eq!(
            include_str!("../../../plugins/sdk/wit/plugin.wit"),
            released
        );
        assert_eq!(
            include_str!("../../../plugins/python/host_plugin/wit/plugin.wit"),
            released
        );
    }

    #[test]
    fn exports_name_the_version_and_kind() {
        let c = classify_exports(&[
            "host:plugin/plugin@0.1.0".into(),
            "host:plugin/filter@0.1.0".into(),
        ]);
        assert_eq!(c.versions, vec!["0.1.0"]);
        assert_eq!(c.kinds, vec![model::Kind::WhereFilter]);
        let c = classify_exports(&["wasi:cli/run@0.2.6".into()]);
        assert!(c.versions.is_empty() && c.kinds.is_empty());
    }
}
