//! The sandboxed WebAssembly plugin host.
//!
//! - [`Runtime`]: one per process; the engine, limits, compile cache.
//! - [`Plugin`]: a loaded, verified, pre-linked component.
//! - [`PluginInstance`]: a configured instance that runs batches; it survives
//!   traps by rebuilding itself.
//! - [`chain`]: runs batches of items or rows through several plugins in order.
//! - the sandbox (`sandbox`): what a plugin may see — no files, network or
//!   environment; a clock that stands still, time that moves only when it
//!   waits (and every wait ends at once), and random bytes that are the same
//!   on every run.

mod cache;
pub mod chain;
mod error;
mod instance;
mod limits;
mod memory;
mod model;
mod runtime;
mod sandbox;
mod spec;
mod uniqueness;
pub mod wit;

pub use cache::{CacheOutcome, CompileCache};
pub use error::{Fault, LimitHit, LimitSource, PluginError};
pub use instance::{PluginInstance, Usage};
pub use limits::{EPOCH_TICK, Limits, MESSAGE_BYTES, NAME_BYTES, parse_bytes, parse_duration};
pub use model::{Column, Info, ItemOutcome, Kind, Outcome, RowBatch, Table};
pub use runtime::{Plugin, Runtime, fetch};
pub use spec::{PluginSpec, parse_param};
pub use uniqueness::{ColumnEffect, Declaration, Effect, Uniqueness};

/// The CPU time this thread has had, from /proc (no `unsafe` clock call);
/// zero where /proc cannot tell.
pub fn thread_cpu() -> std::time::Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(std::time::Duration::ZERO, std::time::Duration::from_nanos)
}
