//! Streaming one table: `COPY (SELECT ...) TO STDOUT` on the source into
//! `COPY ... FROM STDIN` on the target, through the table's plugins if it has
//! any. Nothing is written to disk and memory stays bounded: the stages are
//! joined by small bounded channels, so a slow target slows the source down.
//!
//! ```text
//!  source COPY ──chunks──▶ reader task ──batches──▶ plugin threads ──rows──▶ writer ──▶ target COPY
//! ```
//!
//! Without plugins there is no plugin thread and the reader forwards bytes
//! as they come (in ~256 KiB chunks, so the target gets few, large
//! messages); it never looks for row boundaries, which also lets binary COPY
//! through. With plugins the reader cuts complete rows into batches: the
//! protocol's CopyData messages need not align with rows, so each batch ends
//! at the last `\n` and the rest is carried into the next one. Plugin calls
//! are synchronous and CPU-bound, so they run on a blocking thread, never on
//! an async worker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc;

use super::follow::{RowError, RowTest};
use super::plan::TablePlan;
use super::share::{CpuExhausted, Share};
use super::sql::{Conn, StatementError};
use crate::plugin::chain::RowChain;
use crate::plugin::{Plugin, Table, Usage, thread_cpu};

/// Bytes gathered before one message goes to the target (pass-through).
const CHUNK_BYTES: usize = 256 * 1024;
/// A plugin batch closes at this many rows...
const BATCH_ROWS: usize = 4096;
/// ...or at this many bytes, so wide rows make smaller batches and memory
/// stays bounded (each batch is copied into and out of the plugin).
const BATCH_BYTES: usize = 1024 * 1024;
/// Messages in flight between two stages.
const DEPTH: usize = 4;

/// Live figures for one table, for progress display and the audit log.
#[derive(Debug, Default)]
pub struct Counters {
    /// Rows read from the source so far (text format only; binary shows bytes).
    pub rows: AtomicU64,
    /// Bytes read from the source so far.
    pub bytes: AtomicU64,
    /// CPU time of the table's plugin threads so far, in nanoseconds.
    pub plugin_cpu_ns: AtomicU64,
    /// What the table's plugin instances used (fuel, peak memory), added
    /// as each plugin thread ends.
    pub usage: Mutex<Usage>,
}

impl Counters {
    /// The plugins' CPU time so far.
    pub fn plugin_cpu(&self) -> Duration {
        Duration::from_nanos(self.plugin_cpu_ns.load(Ordering::Relaxed))
    }

    /// What the plugins used so far.
    pub fn usage(&self) -> Usage {
        *self.usage.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What happened to one table's rows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TableStats {
    pub rows_read: u64,
    pub rows_written: u64,
    /// Dropped by where-filter plugins.
    pub dropped: u64,
    /// Rejected by plugins (any rejection fails the table).
    pub rejected: u64,
    /// Left out by followed keys that host tested (see [`super::follow`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub followed_out: u64,
    /// Bytes read from the source, in its COPY format.
    pub bytes: u64,
    pub seconds: f64,
    /// CPU time of the plugins on this table.
    pub plugin_cpu_seconds: f64,
}

/// Why a table's copy failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("reading the source: {0}")]
    Source(StatementError),
    #[error("writing the target: {0}")]
    Target(StatementError),
    /// The plugin's own error names it.
    #[error("{source}")]
    Plugin {
        plugin: String,
        /// Boxed: a plugin's fault carries its text, and this error travels every row's `?`.
        source: Box<crate::plugin::PluginError>,
    },
    #[error(
        "plugin {} rejected {count} row(s); the first is row {row} of the table: {}",
        crate::terminal::Shown(.plugin), crate::terminal::Shown(.reason)
    )]
    Rejected {
        plugin: String,
        count: usize,
        row: u64,
        reason: String,
    },
    #[error("{0}")]
    Cpu(#[from] CpuExhausted),
    #[error("cancelled because another table failed")]
    Cancelled,
    #[error("{0}")]
    Stream(String),
    #[error("{0}")]
    Follow(#[from] RowError),
}

impl CopyError {
    /// The plugin involved, if any.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            CopyError::Plugin { plugin, .. } | CopyError::Rejected { plugin, .. } => Some(plugin),
            _ => None,
        }
    }
}

/// A table's plugins, and what they run on.
pub struct TablePlugins<'a> {
    pub plugins: &'a [Plugin],
    /// Plugin threads (at least one when there are plugins).
    pub threads: usize,
    /// The table as the plugins see it.
    pub table: Table,
    /// The tenant's share, charged for the plugins' CPU time.
    pub share: Share,
}

/// How a table's rows are read from the source.
pub enum Reading {
    /// Its SELECT, every row of which is copied.
    Select,
    /// A SELECT with some followed keys' semi joins replaced by their kept
    /// keys, and the keys host tests on its rows, if any.
    Followed {
        select: String,
        test: Option<Box<RowTest>>,
        /// Whether `select` still has semi joins.
        joins: bool,
    },
}

impl Reading {
    /// Whether the SELECT that reads `table` joins (follows keys in SQL).
    pub fn joins(&self, table: &TablePlan) -> bool {
        match self {
            Reading::Select => !table.follows.is_empty() || !table.added_by.is_empty(),
            Reading::Followed { joins, .. } => *joins,
        }
    }
}

/// Copies one table (the caller owns the transactions).
pub async fn copy_table(
    src: &Conn,
    dst: &Conn,
    table: &TablePlan,
    reading: Reading,
    plugins: TablePlugins<'_>,
    counters: Arc<Counters>,
    cancel: Arc<AtomicBool>,
) -> Result<TableStats, CopyError> {
    let started = Instant::now();
    let (out_sql, test) = match reading {
        Reading::Select => (table.copy_out(), None),
        Reading::Followed { select, test, .. } => (table.copy_out_of(&select), test),
    };
    src.log(&out_sql);
    let stream = src
        .client
        .copy_out(out_sql.as_str())
        .await
        .map_err(|e| CopyError::Source(StatementError::new(&out_sql, &e)))?;
    let in_sql = table.copy_in();
    dst.log(&in_sql);
    let sink = dst
        .client
        .copy_in::<_, Bytes>(in_sql.as_str())
        .await
        .map_err(|e| CopyError::Target(StatementError::new(&in_sql, &e)))?;
    let mut sink = Box::pin(sink);

    let (tx, mut rx) = mpsc::channel::<Bytes>(DEPTH);
    let text = !table.binary;
    // Rows are counted as they pass when they are cut: text, or tested.
    let counted = text || test.is_some();
    let reader = if plugins.plugins.is_empty() {
        let forward = Forward {
            text,
            test,
            counters: counters.clone(),
            cancel,
            sql: out_sql,
        };
        tokio::spawn(forward.run(stream, tx))
    } else {
        let (btx, brx) = mpsc::channel::<Batch>(DEPTH);
        let brx = Arc::new(Mutex::new(brx));
        let stop = Arc::new(AtomicBool::new(false));
        let filters: Vec<_> = (0..plugins.threads.max(1))
            .map(|_| {
                let stage = Stage {
                    plugins: plugins.plugins.to_vec(),
                    table: plugins.table.clone(),
                    share: plugins.share.clone(),
                    counters: counters.clone(),
                };
                let (brx, tx, stop) = (brx.clone(), tx.clone(), stop.clone());
                tokio::task::spawn_blocking(move || stage.run(brx, tx, stop))
            })
            .collect();
        drop(tx);
        let batcher = tokio::spawn(batches(
            stream,
            btx,
            counters.clone(),
            cancel,
            stop,
            out_sql,
        ));
        tokio::spawn(async move {
            let read = batcher.await.map_err(join_error)?;
            let mut dropped = 0;
            let mut failure = None;
            for f in filters {
                match f.await.map_err(join_error)? {
                    Ok(d) => dropped += d,
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            // A plugin failure explains a reader that stopped early: report it first.
            if let Some(e) = failure {
                return Err(e);
            }
            let (rows, bytes) = read?;
            Ok(ReadStats {
                rows,
                bytes,
                dropped,
                rejected: 0,
                followed_out: 0,
            })
        })
    };

    let mut write_error = None;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = sink.as_mut().send(chunk).await {
            write_error = Some(e);
            break;
        }
    }
    drop(rx);
    let read = reader.await.map_err(join_error);
    if let Some(e) = write_error {
        // The target's complaint (a bad value, a type mismatch) is the cause;
        // the reader only saw its channel close.
        return Err(CopyError::Target(StatementError::new(&in_sql, &e)));
    }
    // Dropping the sink without finishing aborts the COPY on the target.
    let read = read??;
    let written = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| CopyError::Target(StatementError::new(&in_sql, &e)))?;
    Ok(TableStats {
        rows_read: if counted { read.rows } else { written },
        followed_out: read.followed_out,
        rows_written: written,
        dropped: read.dropped,
        rejected: read.rejected,
        bytes: read.bytes,
        seconds: started.elapsed().as_secs_f64(),
        plugin_cpu_seconds: counters.plugin_cpu().as_secs_f64(),
    })
}

struct ReadStats {
    rows: u64,
    bytes: u64,
    dropped: u64,
    rejected: u64,
    followed_out: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn join_error(e: tokio::task::JoinError) -> CopyError {
    CopyError::Stream(format!("a copy stage stopped: {e}"))
}

/// Pass-through: the source's bytes in large chunks, rows counted on the
/// way (text), or tested against followed keys (binary, `test`).
struct Forward {
    text: bool,
    test: Option<Box<RowTest>>,
    counters: Arc<Counters>,
    cancel: Arc<AtomicBool>,
    sql: String,
}

impl Forward {
    async fn run(
        self,
        stream: tokio_postgres::CopyOutStream,
        tx: mpsc::Sender<Bytes>,
    ) -> Result<ReadStats, CopyError> {
        let Forward {
            text,
            mut test,
            counters,
            cancel,
            sql,
        } = self;
        let mut stream = Box::pin(stream);
        let mut buf = BytesMut::with_capacity(CHUNK_BYTES + 64 * 1024);
        let (mut rows, mut bytes) = (0u64, 0u64);
        loop {
            let next = stream.next().await;
            let done = next.is_none();
            if let Some(data) = next {
                let data = data.map_err(|e| CopyError::Source(StatementError::new(&sql, &e)))?;
                if text {
                    rows += memchr::memchr_iter(b'\n', &data).count() as u64;
                }
                bytes += data.len() as u64;
                match &mut test {
                    Some(test) => test.feed(&data, &mut buf)?,
                    None => buf.extend_from_slice(&data),
                }
            }
            if buf.len() >= CHUNK_BYTES || (done && !buf.is_empty()) {
                if cancel.load(Ordering::Relaxed) {
                    return Err(CopyError::Cancelled);
                }
                counters.rows.store(rows, Ordering::Relaxed);
                counters.bytes.store(bytes, Ordering::Relaxed);
                let chunk = buf.split().freeze();
                buf.reserve(CHUNK_BYTES + 64 * 1024);
                if tx.send(chunk).await.is_err() {
                    break; // the writer failed; it reports why
                }
            }
            if done {
                break;
            }
        }
        let mut followed_out = 0;
        if let Some(test) = &test {
            test.finish()?;
            rows = test.seen;
            followed_out = test.seen - test.kept;
        }
        counters.rows.store(rows, Ordering::Relaxed);
        counters.bytes.store(bytes, Ordering::Relaxed);
        Ok(ReadStats {
            rows,
            bytes,
            dropped: 0,
            rejected: 0,
            followed_out,
        })
    }
}

/// Rows for the plugins: COPY text, the number of rows, and the number of
/// rows before them in the table (for messages).
type Batch = (Bytes, usize, u64);

/// Plugin threads per table. Plugins are usually the slowest stage, and a
/// table's batches are independent, so several instances share them (rows
/// then reach the target in a different order, which COPY does not promise
/// anyway); the rest of the machine is left to the two servers.
pub fn default_plugin_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).clamp(1, 4)
}

/// Cuts the source's text stream into batches of whole rows.
async fn batches(
    stream: tokio_postgres::CopyOutStream,
    tx: mpsc::Sender<Batch>,
    counters: Arc<Counters>,
    cancel: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    sql: String,
) -> Result<(u64, u64), CopyError> {
    let mut stream = Box::pin(stream);
    let mut buf = BytesMut::with_capacity(BATCH_BYTES + 64 * 1024);
    // Rows complete in `buf` (the bytes after the last newline are a partial row).
    let mut complete = 0usize;
    let (mut rows, mut bytes, mut sent) = (0u64, 0u64, 0u64);
    while let Some(data) = stream.next().await {
        let data = data.map_err(|e| CopyError::Source(StatementError::new(&sql, &e)))?;
        let n = memchr::memchr_iter(b'\n', &data).count();
        complete += n;
        rows += n as u64;
        bytes += data.len() as u64;
        buf.extend_from_slice(&data);
        if complete >= BATCH_ROWS || (complete > 0 && buf.len() >= BATCH_BYTES) {
            if cancel.load(Ordering::Relaxed) {
                return Err(CopyError::Cancelled);
            }
            if stop.load(Ordering::Relaxed) {
                return Ok((rows, bytes)); // a plugin failed; it reports why
            }
            counters.rows.store(rows, Ordering::Relaxed);
            counters.bytes.store(bytes, Ordering::Relaxed);
            let end = memchr::memrchr(b'\n', &buf).expect("complete rows end with a newline") + 1;
            let batch = buf.split_to(end).freeze();
            if tx.send((batch, complete, sent)).await.is_err() {
                return Ok((rows, bytes)); // the plugin stage stopped; it reports why
            }
            sent += complete as u64;
            complete = 0;
            buf.reserve(BATCH_BYTES + 64 * 1024);
        }
    }
    if !buf.is_empty() && buf.last() != Some(&b'\n') {
        return Err(CopyError::Stream(
            "the source's COPY output ended in the middle of a row".into(),
        ));
    }
    if complete > 0 && tx.send((buf.freeze(), complete, sent)).await.is_err() {
        return Ok((rows, bytes));
    }
    counters.rows.store(rows, Ordering::Relaxed);
    counters.bytes.store(bytes, Ordering::Relaxed);
    Ok((rows, bytes))
}

/// A plugin thread: its own chain over the table's batches.
struct Stage {
    plugins: Vec<Plugin>,
    table: Table,
    share: Share,
    counters: Arc<Counters>,
}

impl Stage {
    /// Batches through the chain; any rejection or plugin failure stops the
    /// table (a copy must not silently lose rows). Returns the number of
    /// rows dropped by filters. What the instances used is added to the
    /// table's counters however it ends.
    fn run(
        self,
        rx: Arc<Mutex<mpsc::Receiver<Batch>>>,
        tx: mpsc::Sender<Bytes>,
        stop: Arc<AtomicBool>,
    ) -> Result<u64, CopyError> {
        let mut usage = Usage::default();
        let result = self.chain(rx, tx, &stop, &mut usage);
        if result.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        let mut total = self
            .counters
            .usage
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *total = total.beside(usage);
        result
    }

    fn chain(
        &self,
        rx: Arc<Mutex<mpsc::Receiver<Batch>>>,
        tx: mpsc::Sender<Bytes>,
        stop: &AtomicBool,
        usage: &mut Usage,
    ) -> Result<u64, CopyError> {
        let plugins = &self.plugins;
        let plugin_error = |e: crate::plugin::PluginError| {
            let plugin = match e.plugin() {
                Some(p) => p.to_string(),
                None => plugins
                    .first()
                    .map(|p| p.name().to_string())
                    .unwrap_or_default(),
            };
            CopyError::Plugin {
                plugin,
                source: Box::new(e),
            }
        };
        let mut chain = RowChain::new(plugins).map_err(plugin_error)?;
        chain.begin_table(&self.table).map_err(plugin_error)?;
        let mut dropped = 0u64;
        loop {
            // One thread waits for the next batch at a time; batches are large.
            let next = rx.lock().expect("batch receiver").blocking_recv();
            let Some((rows, n, offset)) = next else { break };
            if stop.load(Ordering::Relaxed) {
                break;
            }
            self.share.check()?;
            let started = thread_cpu();
            let out = chain.run(&rows, n);
            let cpu = thread_cpu().saturating_sub(started);
            self.counters.plugin_cpu_ns.fetch_add(
                u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            *usage = usage.then(out.usage);
            if let Some(e) = out.failure {
                return Err(plugin_error(e));
            }
            if let Some(first) = out.rejected.first() {
                return Err(CopyError::Rejected {
                    plugin: first.plugin.clone(),
                    count: out.rejected.len(),
                    row: offset + first.index as u64 + 1,
                    reason: first.reason.to_string(),
                });
            }
            self.share.charge(cpu)?;
            dropped += out.dropped.len() as u64;
            if out.kept_count > 0 && tx.blocking_send(Bytes::from(out.kept)).is_err() {
                break; // the writer failed; it reports why
            }
        }
        Ok(dropped)
    }
}
