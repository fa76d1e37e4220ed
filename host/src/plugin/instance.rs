//! One running instance of a plugin: its own store, configured once, with
//! limits armed before every call and a fresh instance after any fault.

use std::sync::Arc;

use wasmtime::{Store, Trap};

use super::PluginError;
use super::error::{Fault, LimitHit};
use super::limits::{Limits, MESSAGE_BYTES, MemoryCapHit, cap_text};
use super::model::{Info, ItemOutcome, Kind, Outcome, RowBatch, Table};
use super::runtime::Plugin;
use super::sandbox::StoreState;
use super::wit::{Answer, Guest};
use crate::terminal::Shown;

/// A configured plugin instance. Not shared between threads: make one per
/// pipeline (they are cheap: microseconds from the pre-linked component).
pub struct PluginInstance {
    plugin: Plugin,
    live: Option<Live>,
    table: Option<Arc<Table>>,
    /// Instances built so far (1 + the number of faults survived).
    generation: u32,
    /// What its calls used since [`take_usage`](Self::take_usage).
    usage: Usage,
}

/// What a plugin's calls used: for accounting (an audit line per batch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Instructions executed, when fuel is metered (`None` when it is not).
    pub fuel: Option<u64>,
    /// The most linear memory an instance held, all its memories together, in bytes.
    pub peak_memory: u64,
}

impl Usage {
    /// Two instances' usage as one: fuel adds up; so does memory, as instances
    /// of one chain are alive at the same time.
    pub fn beside(self, other: Usage) -> Usage {
        Usage {
            fuel: match (self.fuel, other.fuel) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            },
            peak_memory: self.peak_memory + other.peak_memory,
        }
    }

    /// The same instance's usage over a longer time: fuel adds up, memory peaks.
    pub fn then(self, later: Usage) -> Usage {
        Usage {
            fuel: match (self.fuel, later.fuel) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            },
            peak_memory: self.peak_memory.max(later.peak_memory),
        }
    }
}

/// An instantiated plugin in a store of its own.
pub(crate) struct Live {
    store: Store<StoreState>,
    guest: Box<dyn Guest>,
}

impl Live {
    /// A fresh store and instance. The limits are armed first: a start
    /// function runs under them, and memory the plugin needs to start counts.
    pub(crate) fn start(plugin: &Plugin) -> Result<Live, Fault> {
        let limits = &plugin.0.shared.limits;
        let mut store = Store::new(&plugin.0.shared.engine, StoreState::new(limits));
        store.limiter(|s| &mut s.memory);
        // A call may hand the host no more than the plugin may hold itself.
        store.set_hostcall_fuel(limits.transfer_bytes());
        arm(&mut store, limits);
        match plugin.0.pre.instantiate(&mut store) {
            Ok(guest) => Ok(Live { store, guest }),
            Err(e) => {
                let stderr = drain_output(&store, plugin);
                Err(classify(e, &stderr, limits))
            }
        }
    }

    /// Runs one guest call with its limits armed. A fault poisons the store:
    /// drop this `Live` after one.
    fn call<R>(
        &mut self,
        plugin: &Plugin,
        usage: &mut Usage,
        f: impl FnOnce(&mut Store<StoreState>, &dyn Guest) -> wasmtime::Result<Answer<R>>,
    ) -> Result<Answer<R>, Fault> {
        let limits = &plugin.0.shared.limits;
        arm(&mut self.store, limits);
        let result = f(&mut self.store, self.guest.as_ref());
        *usage = usage.then(Usage {
            // Out of fuel reads as 0 left: the whole budget was used.
            fuel: limits
                .fuel
                .map(|armed| armed - self.store.get_fuel().unwrap_or(0).min(armed)),
            peak_memory: self.store.data().memory.used as u64,
        });
        let stderr = drain_output(&self.store, plugin);
        match result {
            Ok(Ok(r)) => Ok(Ok(r)),
            Ok(Err(message)) => Ok(Err(cap_text(message, MESSAGE_BYTES))),
            Err(e) => Err(classify(e, &stderr, limits)),
        }
    }

    /// Asks the plugin who it is.
    pub(crate) fn info(&mut self, plugin: &Plugin) -> Result<Info, Fault> {
        let info = self.call(plugin, &mut Usage::default(), |store, g| {
            g.info(store).map(Ok)
        })?;
        Ok(info.unwrap_or_else(|never: String| unreachable!("{never}")))
    }
}

/// Sets the deadline and fuel right before a call.
fn arm(store: &mut Store<StoreState>, limits: &Limits) {
    store.set_epoch_deadline(limits.deadline_ticks());
    if let Some(fuel) = limits.fuel {
        store
            .set_fuel(fuel)
            .expect("fuel is enabled in the engine config");
    }
}

/// What ended a call, by the error's type (never by its text).
fn classify(e: wasmtime::Error, stderr: &str, limits: &Limits) -> Fault {
    if e.downcast_ref::<MemoryCapHit>().is_some() {
        return Fault::Limit(LimitHit::Memory(limits.memory_bytes));
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Fault::Exit(exit.0);
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Fault::Limit(LimitHit::Time(limits.call_time)),
        Some(Trap::OutOfFuel) => Fault::Limit(LimitHit::Fuel(limits.fuel.unwrap_or_default())),
        // A Rust guest's panic message is on its stderr; it says more than "unreachable".
        Some(trap) => match panic_message(stderr) {
            Some(p) => Fault::Panic(cap_text(p, MESSAGE_BYTES)),
            None => Fault::Trap(*trap),
        },
        None => Fault::Refused(cap_text(format!("{e:#}"), MESSAGE_BYTES)),
    }
}

/// Moves the plugin's captured stdout/stderr into our log, under its name;
/// returns the stderr text for error messages.
fn drain_output(store: &Store<StoreState>, plugin: &Plugin) -> String {
    let name = plugin.name();
    let mut stderr_text = String::new();
    for (stream, capture) in [
        ("stdout", &store.data().stdout),
        ("stderr", &store.data().stderr),
    ] {
        let (data, dropped) = capture.take();
        if data.is_empty() && dropped == 0 {
            continue;
        }
        let text = String::from_utf8_lossy(&data);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(target: "plugin", "[{} {stream}] {}", Shown(name), Shown(line));
        }
        if dropped > 0 {
            tracing::warn!(target: "plugin", "[{} {stream}] ... {dropped} more bytes dropped (output limit)", Shown(name));
        }
        if stream == "stderr" {
            stderr_text = text.into_owned();
        }
    }
    stderr_text
}

impl PluginInstance {
    pub(crate) fn new(plugin: Plugin) -> Result<PluginInstance, PluginError> {
        let mut inst = PluginInstance {
            plugin,
            live: None,
            table: None,
            generation: 0,
            usage: Usage::default(),
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

    /// What its calls used since the last time this was asked.
    pub fn take_usage(&mut self) -> Usage {
        std::mem::take(&mut self.usage)
    }

    /// How many times the instance was rebuilt after a fault.
    pub fn restarts(&self) -> u32 {
        self.generation.saturating_sub(1)
    }

    fn name(&self) -> String {
        self.plugin.name().to_string()
    }

    fn fault(&self, during: &str, fault: Fault) -> PluginError {
        PluginError::Fault {
            plugin: self.name(),
            during: during.to_string(),
            fault,
            set_by: self.plugin.0.shared.limits.set_by.clone(),
        }
    }

    /// Builds a fresh instance and replays configure (and begin-table) if the last one faulted.
    fn ensure_live(&mut self) -> Result<(), PluginError> {
        if self.live.is_some() {
            return Ok(());
        }
        let live = Live::start(&self.plugin).map_err(|f| self.fault("instantiation", f))?;
        self.live = Some(live);
        self.generation += 1;

        let plugin = self.plugin.clone();
        let params = &plugin.spec().params;
        self.call("configure", |store, g| g.configure(store, params))
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

    /// Runs one guest call; discards the instance after a fault.
    fn call<R>(
        &mut self,
        during: &str,
        f: impl FnOnce(&mut Store<StoreState>, &dyn Guest) -> wasmtime::Result<Answer<R>>,
    ) -> Result<R, PluginError> {
        let live = self.live.as_mut().expect("ensure_live first");
        match live.call(&self.plugin, &mut self.usage, f) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(message)) => Err(PluginError::Failed {
                plugin: self.name(),
                during: during.into(),
                message,
            }),
            Err(fault) => {
                self.live = None;
                Err(self.fault(during, fault))
            }
        }
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
        let out = self.call(during, |store, g| g.rewrite_items(store, items))?;
        self.check_count(out.len(), items.len(), during)?;
        Ok(out)
    }

    /// Filters a batch of items. Exactly one outcome per item.
    pub fn filter_items(
        &mut self,
        items: &[String],
        during: &str,
    ) -> Result<Vec<Outcome>, PluginError> {
        self.require(self.plugin.kind() == Kind::WhereFilter, "filter items")?;
        self.ensure_live()?;
        let out = self.call(during, |store, g| g.filter_items(store, items))?;
        self.check_count(out.len(), items.len(), during)?;
        Ok(out)
    }

    /// Tells a row plugin which table the next batches come from.
    pub fn begin_table(&mut self, table: &Table) -> Result<(), PluginError> {
        self.require(self.plugin.kind().handles_rows(), "process rows")?;
        self.table = Some(Arc::new(table.clone()));
        self.ensure_live()?;
        // ensure_live may just have replayed it on a fresh instance; calling twice is harmless.
        self.call_begin_table(table)
    }

    fn call_begin_table(&mut self, table: &Table) -> Result<(), PluginError> {
        self.call("begin-table", |store, g| g.begin_table(store, table))
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

    /// The table [`begin_table`](Self::begin_table) announced.
    fn table(&self) -> Arc<Table> {
        self.table.clone().expect("begin_table before any rows")
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
        let table = self.table();
        let out = self.call(during, |store, g| g.transform_rows(store, &table, rows))?;
        self.check_count(out.outcomes.len(), n_rows, during)?;
        Ok(out)
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
        let table = self.table();
        let out = self.call(during, |store, g| g.filter_rows(store, &table, rows))?;
        self.check_count(out.len(), n_rows, during)?;
        Ok(out)
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
