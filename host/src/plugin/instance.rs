//! One running instance of a plugin: its own store, configured once, with
//! limits armed before every call and a fresh instance after any trap.

use wasmtime::{Store, Trap};

use super::limits::Limits;
use super::model::{Info, ItemOutcome, Kind, Outcome, RowBatch, Table};
use super::runtime::{Plugin, Pre};
use super::sandbox::StoreState;
use super::wit::v0_1::{self, types as t};
use super::{LimitKind, PluginError};

/// A configured plugin instance. Not shared between threads: make one per
/// pipeline (they are cheap: microseconds from the pre-linked component).
pub struct PluginInstance {
    plugin: Plugin,
    live: Option<Live>,
    table: Option<Table>,
    /// Instances built so far (1 + the number of traps survived).
    generation: u32,
}

struct Live {
    store: Store<StoreState>,
    bindings: Bindings,
}

enum Bindings {
    Item(v0_1::item::ItemRewriter),
    Row(v0_1::row::RowTransformer),
    Filter(v0_1::filter::WhereFilter),
}

/// Sets the memory limiter, CPU deadline and fuel right before a call.
pub(crate) fn arm(store: &mut Store<StoreState>, limits: &Limits) {
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(limits.deadline_ticks());
    if let Some(fuel) = limits.fuel {
        store
            .set_fuel(fuel)
            .expect("fuel is enabled in the engine config");
    }
}

impl PluginInstance {
    pub(crate) fn new(plugin: Plugin) -> Result<PluginInstance, PluginError> {
        let mut inst = PluginInstance {
            plugin,
            live: None,
            table: None,
            generation: 0,
        };
        inst.ensure_live()?;
        Ok(inst)
    }

    /// The plugin this is an instance of.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Name, version and kind.
    pub fn info(&self) -> &Info {
        self.plugin.info()
    }

    /// How many times the instance was rebuilt after a trap.
    pub fn restarts(&self) -> u32 {
        self.generation.saturating_sub(1)
    }

    fn name(&self) -> String {
        self.plugin.name().to_string()
    }

    /// Builds a fresh instance and replays configure (and begin-table) if the last one trapped.
    fn ensure_live(&mut self) -> Result<(), PluginError> {
        if self.live.is_some() {
            return Ok(());
        }
        let shared = &self.plugin.0.shared;
        let mut store = Store::new(&shared.engine, StoreState::new(&shared.limits));
        arm(&mut store, &shared.limits);
        let inst_err = |e: wasmtime::Error| PluginError::Failed {
            plugin: self.plugin.name().to_string(),
            during: "instantiation".into(),
            message: format!("{e:#}"),
        };
        let bindings = match &self.plugin.0.pre {
            Pre::Item(p) => Bindings::Item(p.instantiate(&mut store).map_err(inst_err)?),
            Pre::Row(p) => Bindings::Row(p.instantiate(&mut store).map_err(inst_err)?),
            Pre::Filter(p) => Bindings::Filter(p.instantiate(&mut store).map_err(inst_err)?),
        };
        self.live = Some(Live { store, bindings });
        self.generation += 1;

        let params: Vec<t::Param> = self
            .plugin
            .spec()
            .params
            .iter()
            .map(|(k, v)| t::Param {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        self.call("configure", |store, b| match b {
            Bindings::Item(b) => b.host_plugin_plugin().call_configure(store, &params),
            Bindings::Row(b) => b.host_plugin_plugin().call_configure(store, &params),
            Bindings::Filter(b) => b.host_plugin_plugin().call_configure(store, &params),
        })
        .map_err(|e| match e {
            PluginError::Failed {
                plugin, message, ..
            } => PluginError::Configure { plugin, message },
            other => other,
        })?;

        if let Some(table) = self.table.clone() {
            self.call_begin_table(&table)?;
        }
        Ok(())
    }

    /// Runs one guest call with limits armed; maps traps to errors and
    /// discards the instance after any trap (a trap poisons the whole store).
    fn call<R>(
        &mut self,
        during: &str,
        f: impl FnOnce(&mut Store<StoreState>, &Bindings) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, PluginError> {
        let limits = self.plugin.0.shared.limits.clone();
        let live = self.live.as_mut().expect("ensure_live first");
        arm(&mut live.store, &limits);
        let result = f(&mut live.store, &live.bindings);
        let stderr = self.drain_output();
        match result {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(message)) => Err(PluginError::Failed {
                plugin: self.name(),
                during: during.into(),
                message,
            }),
            Err(e) => {
                self.live = None;
                Err(self.classify_trap(e, during, &stderr))
            }
        }
    }

    fn classify_trap(&self, e: wasmtime::Error, during: &str, stderr: &str) -> PluginError {
        let (plugin, during) = (self.name(), during.to_string());
        let limit = match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Some(LimitKind::Time),
            Some(Trap::OutOfFuel) => Some(LimitKind::Fuel),
            _ if e.chain().any(|c| c.to_string().contains("growing memory")) => {
                Some(LimitKind::Memory)
            }
            _ => None,
        };
        if let Some(limit) = limit {
            return PluginError::Limit {
                plugin,
                limit,
                during,
            };
        }
        // A Rust guest's panic message is on its stderr; it says more than "unreachable".
        let panic = panic_message(stderr);
        let message = match (panic, e.downcast_ref::<Trap>()) {
            (Some(p), _) => format!("panicked: {p}"),
            (None, Some(trap)) => trap.to_string(),
            (None, None) => format!("{e:#}"),
        };
        PluginError::Trap {
            plugin,
            during,
            message,
        }
    }

    /// Moves the plugin's captured stdout/stderr into our log, under its name;
    /// returns the stderr text for error messages.
    fn drain_output(&mut self) -> String {
        let Some(live) = self.live.as_mut() else {
            return String::new();
        };
        let name = &self.plugin.0.display_name;
        let mut stderr_text = String::new();
        for (stream, capture) in [
            ("stdout", &live.store.data().stdout),
            ("stderr", &live.store.data().stderr),
        ] {
            let (data, dropped) = capture.take();
            if data.is_empty() && dropped == 0 {
                continue;
            }
            let text = String::from_utf8_lossy(&data);
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                tracing::info!(target: "plugin", "[{name} {stream}] {line}");
            }
            if dropped > 0 {
                tracing::warn!(target: "plugin", "[{name} {stream}] ... {dropped} more bytes dropped (output limit)");
            }
            if stream == "stderr" {
                stderr_text = text.into_owned();
            }
        }
        stderr_text
    }

    fn require(&self, kind_ok: bool, what: &'static str) -> Result<(), PluginError> {
        if kind_ok {
            Ok(())
        } else {
            Err(PluginError::WrongKind {
                plugin: self.name(),
                what,
                kind: self.plugin.kind().as_str(),
            })
        }
    }

    /// Rewrites a batch of items (JSON objects as text). Exactly one outcome per item.
    pub fn rewrite_items(
        &mut self,
        items: &[String],
        during: &str,
    ) -> Result<Vec<ItemOutcome>, PluginError> {
        self.require(self.plugin.kind() == Kind::ItemRewriter, "rewrite items")?;
        self.ensure_live()?;
        let out = self.call(during, |store, b| match b {
            Bindings::Item(b) => b
                .host_plugin_item_rewrite()
                .call_rewrite_items(store, items),
            _ => unreachable!("kind checked"),
        })?;
        self.check_count(out.len(), items.len(), during)?;
        Ok(out.into_iter().map(Into::into).collect())
    }

    /// Filters a batch of items. Exactly one outcome per item.
    pub fn filter_items(
        &mut self,
        items: &[String],
        during: &str,
    ) -> Result<Vec<Outcome>, PluginError> {
        self.require(self.plugin.kind() == Kind::WhereFilter, "filter items")?;
        self.ensure_live()?;
        let out = self.call(during, |store, b| match b {
            Bindings::Filter(b) => b.host_plugin_filter().call_filter_items(store, items),
            _ => unreachable!("kind checked"),
        })?;
        self.check_count(out.len(), items.len(), during)?;
        Ok(out.into_iter().map(Into::into).collect())
    }

    /// Tells a row plugin which table the next batches come from.
    pub fn begin_table(&mut self, table: &Table) -> Result<(), PluginError> {
        self.require(self.plugin.kind().handles_rows(), "process rows")?;
        self.table = Some(table.clone());
        self.ensure_live()?;
        // ensure_live may just have replayed it on a fresh instance; calling twice is harmless.
        self.call_begin_table(table)
    }

    fn call_begin_table(&mut self, table: &Table) -> Result<(), PluginError> {
        let wit_table: t::Table = table.into();
        self.call("begin-table", |store, b| match b {
            Bindings::Row(b) => b
                .host_plugin_row_transform()
                .call_begin_table(store, &wit_table),
            Bindings::Filter(b) => b.host_plugin_filter().call_begin_table(store, &wit_table),
            Bindings::Item(_) => unreachable!("kind checked"),
        })
        .map_err(|e| match e {
            PluginError::Failed {
                plugin, message, ..
            } => PluginError::Table {
                plugin,
                table: table.to_string(),
                message,
            },
            other => other,
        })
    }

    /// Transforms a batch of `n_rows` COPY-text rows. One outcome per row.
    pub fn transform_rows(
        &mut self,
        rows: &[u8],
        n_rows: usize,
        during: &str,
    ) -> Result<RowBatch, PluginError> {
        self.require(self.plugin.kind() == Kind::RowTransformer, "transform rows")?;
        self.ensure_live()?;
        let out = self.call(during, |store, b| match b {
            Bindings::Row(b) => b
                .host_plugin_row_transform()
                .call_transform_rows(store, rows),
            _ => unreachable!("kind checked"),
        })?;
        self.check_count(out.outcomes.len(), n_rows, during)?;
        Ok(RowBatch {
            outcomes: out.outcomes.into_iter().map(Into::into).collect(),
            rows: out.rows,
        })
    }

    /// Filters a batch of `n_rows` COPY-text rows. One outcome per row.
    pub fn filter_rows(
        &mut self,
        rows: &[u8],
        n_rows: usize,
        during: &str,
    ) -> Result<Vec<Outcome>, PluginError> {
        self.require(self.plugin.kind() == Kind::WhereFilter, "filter rows")?;
        self.ensure_live()?;
        let out = self.call(during, |store, b| match b {
            Bindings::Filter(b) => b.host_plugin_filter().call_filter_rows(store, rows),
            _ => unreachable!("kind checked"),
        })?;
        self.check_count(out.len(), n_rows, during)?;
        Ok(out.into_iter().map(Into::into).collect())
    }

    fn check_count(&mut self, got: usize, want: usize, during: &str) -> Result<(), PluginError> {
        if got == want {
            return Ok(());
        }
        // Its state no longer matches ours; start the next batch on a fresh instance.
        self.live = None;
        Err(PluginError::Contract {
            plugin: self.name(),
            message: format!("returned {got} results for {want} records on {during}"),
        })
    }
}

/// Extracts the message from a Rust panic report on stderr
/// ("thread '…' panicked at src/lib.rs:3:5:\nMESSAGE\nnote: …").
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at")?;
    let report = &stderr[start..];
    let mut lines = report.lines();
    let location = lines
        .next()?
        .trim_start_matches("panicked at")
        .trim()
        .trim_end_matches(':');
    let message: Vec<&str> = lines.take_while(|l| !l.starts_with("note:")).collect();
    Some(format!("{} (at {location})", message.join(" ").trim()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn panic_reports_are_condensed() {
        let s = "thread '<unnamed>' panicked at tests/plugins/hostile/src/lib.rs:12:9:\nboom on purpose\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            super::panic_message(s).unwrap(),
            "boom on purpose (at tests/plugins/hostile/src/lib.rs:12:9)"
        );
        assert_eq!(super::panic_message("plain log line"), None);
    }
}
