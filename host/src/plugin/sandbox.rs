//! The world a plugin runs in: WASI with every capability denied, output
//! captured (bounded), and per-store resource limits.
//!
//! A plain Rust guest imports WASI even when it does no I/O (std seeds its
//! hash maps from `wasi:random`, panics write to stderr), so we link the
//! real WASI implementation with a context that grants nothing: no preopened
//! directories, no environment variables, no arguments, no stdin, no network
//! (every socket address is refused, name lookup is off). Clocks and random
//! numbers are allowed; they reveal nothing about the host.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::Limits;

/// Per-store state: the WASI context, its resource table and the limits.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
}

impl StoreState {
    /// A fresh, deny-all sandbox.
    pub fn new(limits: &Limits) -> StoreState {
        let stdout = Capture::new(limits.output_bytes);
        let stderr = Capture::new(limits.output_bytes);
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes as usize)
            .trap_on_grow_failure(true)
            .build();
        StoreState {
            wasi,
            table: ResourceTable::new(),
            limits: store_limits,
            stdout,
            stderr,
        }
    }
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
