//! The world a plugin runs in: WASI with every capability denied, output
//! captured (bounded), time and randomness that are the same on every run,
//! and per-store resource limits.
//!
//! A plain Rust guest imports WASI even when it does no I/O (std seeds its
//! hash maps from `wasi:random`, panics write to stderr), so we link the
//! real WASI implementation with a context that grants nothing: no preopened
//! directories, no environment variables, no arguments, no stdin, no network
//! (every socket address is refused, name lookup is off).
//!
//! What a plugin may observe is fixed, so that its output depends only on
//! what it is given (a plugin on a change stream's key columns must give the
//! same answer every time), and so that it cannot stall the host:
//! - the wall clock always reads 1970-01-01T00:00:00Z;
//! - the monotonic clock starts at zero in every instance and moves only
//!   when the plugin waits; every wait ends at once, having moved the clock
//!   by what was asked ([`VirtualClock`]). A plugin cannot sleep through its
//!   `--plugin-time`; a loop that polls the clock runs into it instead;
//! - random bytes (`wasi:random/random` and `insecure`) are a fixed
//!   pseudo-random sequence that starts over in every instance, and the
//!   hash-map seed (`insecure-seed`) is a constant. A plugin cannot make a
//!   secret: keys come in as parameters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::SeedableRng;
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::Limits;
use super::limits::MemoryCap;

/// The seed of the random bytes every instance sees (`wasi:random/random`).
const RANDOM_SEED: u64 = 0x686f_7374_2d72_6e64;
/// The seed of `wasi:random/insecure`'s bytes.
const INSECURE_SEED: u64 = 0x686f_7374_2d69_6e73;
/// What `wasi:random/insecure-seed` returns.
const HASH_SEED: u128 = 0x686f_7374_2d68_6173_682d_7365_6564_0001;
/// Most random bytes one call may ask for.
const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// Per-store state: the WASI context, its resource table and the limits.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    clock: VirtualClock,
    pub(crate) memory: MemoryCap,
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
}

impl StoreState {
    /// A fresh, deny-all sandbox.
    pub fn new(limits: &Limits) -> StoreState {
        let stdout = Capture::new(limits.output_bytes);
        let stderr = Capture::new(limits.output_bytes);
        let clock = VirtualClock::default();
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .wall_clock(StoppedClock)
            .monotonic_clock(clock.clone())
            .secure_random(rand::rngs::StdRng::seed_from_u64(RANDOM_SEED))
            .insecure_random(rand::rngs::StdRng::seed_from_u64(INSECURE_SEED))
            .insecure_random_seed(HASH_SEED)
            .max_random_size(MAX_RANDOM_BYTES)
            .build();
        StoreState {
            wasi,
            table: ResourceTable::new(),
            clock,
            memory: MemoryCap::new(usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX)),
            stdout,
            stderr,
        }
    }
}

/// A wall clock that always reads the Unix epoch.
struct StoppedClock;

impl HostWallClock for StoppedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// Monotonic time in nanoseconds that moves only when the plugin waits.
#[derive(Debug, Clone, Default)]
pub(crate) struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn advance_to(&self, at: u64) {
        self.0.fetch_max(at, Ordering::Relaxed);
    }
}

impl HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        VirtualClock::now(self)
    }
}

/// A wait on the virtual clock: ready at once, moving the clock to its end.
struct Wake {
    clock: VirtualClock,
    at: u64,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Wake {
    async fn ready(&mut self) {
        self.clock.advance_to(self.at);
    }
}

/// `wasi:clocks/monotonic-clock` on the [`VirtualClock`], linked in place of
/// WASI's own (whose waits sleep for real, beyond the reach of the epoch
/// deadline: a plugin could stall a load for as long as it liked).
pub(crate) struct VirtualTime;

impl HasData for VirtualTime {
    type Data<'a> = TimeView<'a>;
}

/// What the virtual monotonic clock needs from the store.
pub(crate) struct TimeView<'a> {
    clock: &'a VirtualClock,
    table: &'a mut ResourceTable,
}

impl TimeView<'_> {
    fn wake_at(&mut self, at: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let wake = self.table.push(Wake {
            clock: self.clock.clone(),
            at,
        })?;
        wasmtime_wasi::p2::subscribe(self.table, wake)
    }
}

impl monotonic_clock::Host for TimeView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(self.clock.now())
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(1)
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.wake_at(when)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let at = self.clock.now().saturating_add(duration);
        self.wake_at(at)
    }
}

/// Links [`VirtualTime`] over WASI's monotonic clock.
pub(crate) fn link_virtual_time(
    linker: &mut wasmtime::component::Linker<StoreState>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = monotonic_clock::add_to_linker::<StoreState, VirtualTime>(linker, |s| TimeView {
        clock: &s.clock,
        table: &mut s.table,
    });
    linker.allow_shadowing(false);
    linked
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A bounded in-memory sink for a plugin's stdout or stderr. Writes never fail
/// (a chatty plugin must not trap because of its logging); bytes past the
/// bound are counted and dropped.
#[derive(Clone)]
pub struct Capture(Arc<Mutex<CaptureBuf>>);

struct CaptureBuf {
    data: Vec<u8>,
    limit: usize,
    dropped: usize,
}

impl Capture {
    fn new(limit: usize) -> Capture {
        Capture(Arc::new(Mutex::new(CaptureBuf {
            data: Vec::new(),
            limit,
            dropped: 0,
        })))
    }

    fn push(&self, bytes: &[u8]) {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let room = b.limit.saturating_sub(b.data.len());
        let take = room.min(bytes.len());
        b.data.extend_from_slice(&bytes[..take]);
        b.dropped += bytes.len() - take;
    }

    /// Takes what was captured since the last call, and how many bytes were dropped.
    pub fn take(&self) -> (Vec<u8>, usize) {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = std::mem::take(&mut b.dropped);
        (std::mem::take(&mut b.data), dropped)
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_is_bounded_and_counts_what_it_drops() {
        let c = Capture::new(10);
        c.push(b"hello ");
        c.push(b"world, again");
        let (data, dropped) = c.take();
        assert_eq!(data, b"hello worl");
        assert_eq!(dropped, 8);
        assert_eq!(c.take(), (Vec::new(), 0));
    }
}
