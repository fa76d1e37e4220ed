//! The plugin interface, one version per module.
//!
//! Each supported version of `host:plugin` is one module (`since_vX_Y`, as in
//! Zed's extension host) holding its bindings and their conversions into and
//! out of the host's own model ([`super::model`]). A component's version is
//! read once, from its export names, when it is loaded ([`identify`]); from
//! then on the host talks to it through [`Guest`] in model types and never
//! asks which version it is. Any version semver-compatible with a supported
//! one runs (0.1.x on the 0.1 module: its exports are found under the 0.1.0
//! names the bindings look for); a later minor (0.2 for a 0.1 host) or major
//! is refused, naming both.
//!
//! The next version is a new WIT folder (`wit/vX.Y/`), a new module
//! implementing [`Interface`] (reusing the older modules' types and
//! conversions where nothing changed, through bindgen's `with`), and one line
//! in [`INTERFACES`]. Keep the current and the previous version working, not
//! every version ever released. `since_v0_2` is a test-only 0.2 that shows it.

mod since_v0_1;
#[cfg(test)]
mod since_v0_2;

use semver::Version;
use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::PluginError;
use super::model::{Info, ItemOutcome, Kind, Outcome, RowBatch, Table};
use super::sandbox::StoreState;

/// The WIT package every plugin interface lives in.
pub const PACKAGE: &str = "host:plugin";

/// The interface versions this host runs, oldest first.
static INTERFACES: &[&dyn Interface] = &[
    &since_v0_1::V0_1,
    #[cfg(test)]
    &since_v0_2::V0_2,
];

/// What a guest call came to, short of a fault: its answer, or the error it
/// returned.
pub(crate) type Answer<R> = Result<R, String>;

/// Why a version module may assume a call suits the plugin's kind.
const KIND_CHECKED: &str = "the instance checks the plugin's kind before each call";

/// One version of the plugin interface.
pub(crate) trait Interface: Sync {
    /// The WIT package version the bindings were generated from.
    fn version(&self) -> Version;

    /// The plugin kind an exported interface of this version (e.g.
    /// `item-rewrite`) makes a component.
    fn kind_of(&self, interface: &str) -> Option<Kind>;

    /// Type-checks a linked component against the world of `kind`.
    fn prepare(
        &self,
        kind: Kind,
        pre: InstancePre<StoreState>,
    ) -> wasmtime::Result<Box<dyn Prepared>>;
}

/// A component type-checked against one world of one version.
pub(crate) trait Prepared: Send + Sync {
    /// A fresh instance in `store`.
    fn instantiate(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Box<dyn Guest>>;
}

/// An instance's calls, in the host's model. A method that does not suit the
/// plugin's kind is never called (the instance checks the kind first).
pub(crate) trait Guest: Send + Sync {
    fn info(&self, store: &mut Store<StoreState>) -> wasmtime::Result<Info>;

    fn configure(
        &self,
        store: &mut Store<StoreState>,
        params: &[(String, String)],
    ) -> wasmtime::Result<Answer<()>>;

    fn rewrite_items(
        &self,
        store: &mut Store<StoreState>,
        items: &[String],
    ) -> wasmtime::Result<Answer<Vec<ItemOutcome>>>;

    fn filter_items(
        &self,
        store: &mut Store<StoreState>,
        items: &[String],
    ) -> wasmtime::Result<Answer<Vec<Outcome>>>;

    fn begin_table(
        &self,
        store: &mut Store<StoreState>,
        table: &Table,
    ) -> wasmtime::Result<Answer<()>>;

    /// `table` is the one `begin_table` announced.
    fn transform_rows(
        &self,
        store: &mut Store<StoreState>,
        table: &Table,
        rows: &[u8],
    ) -> wasmtime::Result<Answer<RowBatch>>;

    /// `table` is the one `begin_table` announced.
    fn filter_rows(
        &self,
        store: &mut Store<StoreState>,
        table: &Table,
        rows: &[u8],
    ) -> wasmtime::Result<Answer<Vec<Outcome>>>;
}

/// What a component's exports say it is.
pub(crate) struct Identified {
    /// The interface version module that runs it.
    pub interface: &'static dyn Interface,
    /// The version it was built against, as its exports name it (e.g. `0.1.1`).
    pub version: String,
    pub kind: Kind,
}

/// Finds the interface version and kind of a component from its export
/// names, e.g. `host:plugin/item-rewrite@0.1.0`.
pub(crate) fn identify(exports: &[String], location: &str) -> Result<Identified, PluginError> {
    let ours: Vec<(&str, &str)> = exports
        .iter()
        .filter_map(|name| {
            let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
            Some(rest.split_once('@').unwrap_or((rest, "")))
        })
        .collect();
    let not_a_plugin = || PluginError::NotAPlugin {
        location: location.to_string(),
        exports: exports.join(", "),
    };
    let Some(&(_, version)) = ours.first() else {
        return Err(not_a_plugin());
    };
    if let Some(&(_, other)) = ours.iter().find(|(_, v)| *v != version) {
        return Err(PluginError::MixedVersions {
            location: location.to_string(),
            versions: format!("{version}, {other}"),
        });
    }
    let interface = interface_for(version).ok_or_else(|| PluginError::UnsupportedVersion {
        location: location.to_string(),
        found: match version {
            "" => "(no version)".to_string(),
            v => v.to_string(),
        },
        supported: supported(),
    })?;
    let mut kinds: Vec<Kind> = Vec::new();
    for k in ours
        .iter()
        .filter_map(|(iface, _)| interface.kind_of(iface))
    {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    let kind = match kinds.as_slice() {
        [k] => *k,
        [] => return Err(not_a_plugin()),
        many => {
            return Err(PluginError::AmbiguousKind {
                location: location.to_string(),
                kinds: many
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    Ok(Identified {
        interface,
        version: version.to_string(),
        kind,
    })
}

/// The supported interface that runs plugins built against `version`.
fn interface_for(version: &str) -> Option<&'static dyn Interface> {
    let version = Version::parse(version).ok()?;
    let wanted = track(&version)?;
    INTERFACES
        .iter()
        .copied()
        .find(|i| track(&i.version()).as_ref() == Some(&wanted))
}

/// The semver-compatible track of a version (what wasmtime matches export
/// names by, and Cargo's `^`): `1.x` for 1.4.2, `0.1.x` for 0.1.3; a 0.0.x or
/// pre-release version is compatible with itself alone, and we run none.
fn track(v: &Version) -> Option<String> {
    if !v.pre.is_empty() {
        None
    } else if v.major != 0 {
        Some(format!("{}.x", v.major))
    } else if v.minor != 0 {
        Some(format!("0.{}.x", v.minor))
    } else {
        None
    }
}

/// The supported versions, as users read them: `0.1.x`.
fn supported() -> String {
    INTERFACES
        .iter()
        .filter_map(|i| track(&i.version()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDKs carry their own copy of the frozen WIT (so that they build as
    /// path or git dependencies from anywhere); the copies must not drift.
    #[test]
    fn the_sdks_carry_the_released_wit_unchanged() {
        let released = include_str!("../../../../wit/v0.1/plugin.wit");
        assert_eq!(
            include_str!("../../../../plugins/sdk/wit/plugin.wit"),
            released
        );
        assert_eq!(
            include_str!("../../../../plugins/python/host_plugin/wit/plugin.wit"),
            released
        );
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn found(exports: &[&str]) -> Result<(String, String, Kind), String> {
        identify(&names(exports), "p.wasm")
            .map(|i| (i.interface.version().to_string(), i.version, i.kind))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn exports_name_the_version_and_kind() {
        assert_eq!(
            found(&["host:plugin/plugin@0.1.0", "host:plugin/filter@0.1.0"]),
            Ok(("0.1.0".into(), "0.1.0".into(), Kind::WhereFilter))
        );
        assert_eq!(
            found(&["wasi:cli/run@0.2.6"]).unwrap_err(),
            "p.wasm is not a host plugin: it exports none of the host:plugin interfaces (it exports: wasi:cli/run@0.2.6)"
        );
        // The right version, but no kind's interface.
        assert!(
            found(&["host:plugin/plugin@0.1.0"])
                .unwrap_err()
                .contains("is not a host plugin")
        );
    }

    #[test]
    fn any_patch_of_a_supported_version_runs_on_its_module() {
        for v in ["0.1.1", "0.1.17", "0.1.0+build.5"] {
            let exports = [
                format!("host:plugin/plugin@{v}"),
                format!("host:plugin/row-transform@{v}"),
            ];
            let exports: Vec<&str> = exports.iter().map(String::as_str).collect();
            assert_eq!(
                found(&exports),
                Ok(("0.1.0".into(), v.to_string(), Kind::RowTransformer)),
                "{v}"
            );
        }
    }

    #[test]
    fn later_minors_majors_and_prereleases_are_refused_naming_both_versions() {
        // (The unit tests also know the test-only 0.2.)
        for v in ["0.3.0", "1.0.0", "1.1.0", "0.1.1-rc.1", "0.0.1", "0.1", "x"] {
            let exports = [
                format!("host:plugin/plugin@{v}"),
                format!("host:plugin/item-rewrite@{v}"),
            ];
            let exports: Vec<&str> = exports.iter().map(String::as_str).collect();
            assert_eq!(
                found(&exports).unwrap_err(),
                format!(
                    "p.wasm was built against plugin interface host:plugin@{v}, which this host does not support; supported: 0.1.x, 0.2.x. Rebuild it with an SDK for a supported version."
                ),
            );
        }
    }

    #[test]
    fn one_component_with_two_versions_is_refused() {
        assert_eq!(
            found(&["host:plugin/plugin@0.1.0", "host:plugin/filter@0.2.0"]).unwrap_err(),
            "p.wasm exports two versions of the plugin interface (0.1.0, 0.2.0); a plugin is built against one"
        );
    }

    #[test]
    fn two_kinds_are_refused() {
        assert_eq!(
            found(&[
                "host:plugin/plugin@0.1.0",
                "host:plugin/filter@0.1.0",
                "host:plugin/item-rewrite@0.1.0"
            ])
            .unwrap_err(),
            "p.wasm exports more than one plugin kind (where-filter, item-rewriter); a plugin must target exactly one world"
        );
    }
}
