//! Running a load: the catalog's session (its checks, staging and
//! transaction), the reader and worker threads, COPY, and the merge.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::SinkExt;
use tokio_postgres::{Client, CopyInSink};

use super::reject::RejectWriter;
use super::source::{self, SourceSpec};
use super::split::{Body, MAX_RECORD_BYTES, Splitter};
use super::worker::{Audited, Batch, Chunk, Input, Totals, Worker};
use super::{ExtentMode, Kind, LoadError, Method, Summary, TenantLane};
use crate::audit::Audit;
use crate::catalog::{Catalog, CatalogError, KeyOrder, LoadSession};
use crate::copy::binary;
use crate::plugin::Plugin;
use crate::plugin::chain::ItemChain;
use crate::policy::DataScope;

/// What to load, and how.
#[derive(Debug)]
pub struct LoadOptions {
    pub kind: Kind,
    /// Paths, `-`, URLs or readers, read in order.
    pub sources: Vec<SourceSpec>,
    pub method: Method,
    /// Where invalid and rejected records go; `None`: they fail the load.
    pub reject_file: Option<PathBuf>,
    /// Items' default collection (`--collection`).
    pub collection: Option<String>,
    /// Overrides the catalog's setting for extents for this load.
    pub update_extents: Option<ExtentMode>,
    /// Records per batch (and per plugin call).
    pub batch_size: usize,
    /// Items' bboxes must contain their geometry, not just overlap it.
    pub strict_bbox: bool,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// What the plugins may see and the load may write: everything, or a tenant's collections.
    pub scope: DataScope,
    /// Several tenants of a policy, each item going to the one whose scope
    /// holds its collection (then `plugins` is empty and `scope` unused).
    pub tenants: Vec<TenantLane>,
    /// Where each batch's audit line goes (`--audit`).
    pub audit: Option<Arc<Audit>>,
}

impl LoadOptions {
    /// Options for loading `sources` of `kind` with `method`, everything
    /// else as the command line's defaults.
    pub fn new<S: Into<SourceSpec>>(kind: Kind, sources: Vec<S>, method: Method) -> LoadOptions {
        LoadOptions {
            kind,
            sources: sources.into_iter().map(Into::into).collect(),
            method,
            reject_file: None,
            collection: None,
            update_extents: None,
            batch_size: 256,
            strict_bbox: false,
            progress: false,
            scope: DataScope::Everything,
            tenants: Vec::new(),
            audit: None,
        }
    }
}

/// A batch also ends once it holds this many bytes.
const MAX_BATCH_BYTES: usize = 8 << 20;

/// Loads the sources into `catalog`; on any error nothing is loaded.
pub async fn load(
    client: &mut Client,
    catalog: &Catalog,
    mut opts: LoadOptions,
    plugins: Vec<Plugin>,
) -> Result<Summary, LoadError> {
    let started = Instant::now();
    let sources = std::mem::take(&mut opts.sources);
    let tenants = std::mem::take(&mut opts.tenants);
    let mut session = catalog
        .begin_load(client, opts.kind, opts.method, opts.update_extents)
        .await?;
    let streamed = match stream(client, &mut session, &opts, sources, plugins, tenants).await {
        Ok(s) => s,
        Err(e) => {
            session.abort(client).await;
            return Err(e);
        }
    };
    tracing::debug!(
        rows = streamed.staged,
        seconds = started.elapsed().as_secs_f64(),
        "staged"
    );
    let collections: Vec<String> = streamed.totals.collections.iter().cloned().collect();
    let merged = session
        .finish(
            client,
            streamed.staged,
            &collections,
            &streamed.totals.order,
        )
        .await?;
    let totals = streamed.totals;
    Ok(Summary {
        kind: opts.kind,
        method: opts.method,
        catalog: catalog.kind(),
        read: totals.read,
        loaded: merged.loaded,
        skipped: merged.skipped,
        unchanged: merged.unchanged,
        dropped: totals.dropped,
        rejected: totals.rejected,
        plugin_failures: totals.plugin_failures,
        bytes: streamed.bytes,
        collections,
        seconds: started.elapsed().as_secs_f64(),
        tenants: totals.tenants,
    })
}

/// What streaming the sources into the session's COPY did.
struct Streamed {
    totals: Totals,
    /// Rows COPY took.
    staged: u64,
    /// Bytes read from the sources.
    bytes: u64,
}

/// Reads, checks and COPYs every record; the session's transaction stays open.
async fn stream(
    client: &Client,
    session: &mut LoadSession,
    opts: &LoadOptions,
    sources: Vec<SourceSpec>,
    plugins: Vec<Plugin>,
    tenants: Vec<TenantLane>,
) -> Result<Streamed, LoadError> {
    let known = session.known_collections().clone();
    if let Some(c) = &opts.collection
        && !known.contains(c)
    {
        return Err(LoadError::Source(format!(
            "collection \"{c}\" (--collection) does not exist; load it first with `host load collections`"
        )));
    }
    let rejects = opts
        .reject_file
        .as_deref()
        .map(RejectWriter::create)
        .transpose()?;

    let bytes = Arc::new(AtomicU64::new(0));
    let (batch_tx, batch_rx) = std::sync::mpsc::sync_channel::<Batch>(4);
    let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::channel(4);
    // A plain thread, not spawn_blocking: a failed load must not wait for a
    // read from a stalled pipe (the runtime waits for its blocking tasks).
    let (reader_tx, reader_rx) = tokio::sync::oneshot::channel();
    {
        let handle = tokio::runtime::Handle::current();
        let bytes = bytes.clone();
        let batch_size = opts.batch_size.max(1);
        std::thread::Builder::new()
            .name("load-reader".into())
            .spawn(move || {
                let r = read_sources(sources, batch_size, &handle, bytes, batch_tx);
                let _ = reader_tx.send(r);
            })
            .map_err(|e| LoadError::Source(format!("cannot start the reader thread: {e}")))?;
    }
    let worker = {
        let kind = opts.kind;
        let collection = opts.collection.clone();
        let strict_bbox = opts.strict_bbox;
        let scope = opts.scope.clone();
        let audit = opts.audit.clone();
        let rows = session.rows().clone();
        // Plugins are instantiated (and called) off the async workers.
        tokio::task::spawn_blocking(move || {
            let chain = if plugins.is_empty() {
                None
            } else {
                Some(ItemChain::new(&plugins)?)
            };
            let worker = Worker {
                kind,
                chain,
                known,
                collection,
                strict_bbox,
                audit: audit.map(|log| Audited::new(log, scope.tenant(), &plugins)),
                scope,
                rejects,
                seq: rows.numbered().then_some(0),
                rows,
                totals: Totals::default(),
            };
            if tenants.is_empty() {
                worker.run(batch_rx, chunk_tx)
            } else {
                worker.run_tenants(&tenants, batch_rx, chunk_tx)
            }
        })
    };

    let progress = Progress::new(opts.progress, opts.kind, bytes.clone());
    // The COPY is started by the first rows (the catalog may send them
    // straight to their collection's table) and replaced when rows come
    // that it does not take.
    let mut copy = Copy::default();
    let mut failed = None;
    while let Some(chunk) = chunk_rx.recv().await {
        progress.add(chunk.read);
        if chunk.bytes.is_empty() {
            continue;
        }
        if let Err(e) = copy.send(client, session, chunk).await {
            failed = Some(e);
            break;
        }
    }
    drop(chunk_rx); // stops the worker (and so the reader) if COPY failed
    let worker = worker.await.unwrap_or_else(|e| Err(panicked("worker", e)));
    progress.finish();
    // The most telling error: a stage's own error beats the cancellations it caused.
    let totals = match (worker, failed) {
        (Err(e), _) if !matches!(e, LoadError::Cancelled) => return Err(e),
        (_, Some(e)) => return Err(e),
        (Err(e), None) => return Err(e),
        // The worker saw the end of the input, so the reader has finished.
        (Ok(t), None) => match reader_rx.await {
            Ok(Ok(())) => t,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(LoadError::Source("the reader thread failed".into())),
        },
    };
    let staged = copy.finish(client, session).await?;
    debug_assert_eq!(staged, totals.rows);
    Ok(Streamed {
        totals,
        staged,
        bytes: bytes.load(Ordering::Relaxed),
    })
}

/// The COPY rows are going to, and the rows COPYs before it took.
#[derive(Default)]
struct Copy {
    sink: Option<Pin<Box<CopyInSink<Bytes>>>>,
    done: u64,
}

impl Copy {
    /// Sends a chunk's rows, first starting a COPY that takes them.
    async fn send(
        &mut self,
        client: &Client,
        session: &mut LoadSession,
        chunk: Chunk,
    ) -> Result<(), LoadError> {
        if self.sink.is_none() || !session.takes(&chunk.collections, &chunk.order) {
            self.end(session).await?;
            self.start(client, session, &chunk.collections, &chunk.order)
                .await?;
        }
        let sink = self.sink.as_mut().expect("started above");
        sink.send(chunk.bytes)
            .await
            .map_err(|e| LoadError::Catalog(CatalogError::load(session.kind(), e)))
    }

    async fn start(
        &mut self,
        client: &Client,
        session: &mut LoadSession,
        collections: &BTreeSet<String>,
        order: &KeyOrder,
    ) -> Result<(), LoadError> {
        let mut sink = Box::pin(session.copy_in(client, collections, order).await?);
        sink.feed(Bytes::from_static(binary::HEADER))
            .await
            .map_err(|e| LoadError::Catalog(CatalogError::load(session.kind(), e)))?;
        self.sink = Some(sink);
        Ok(())
    }

    /// Ends the current COPY, if any.
    async fn end(&mut self, session: &LoadSession) -> Result<(), LoadError> {
        let Some(mut sink) = self.sink.take() else {
            return Ok(());
        };
        let copy_error = |e| LoadError::Catalog(CatalogError::load(session.kind(), e));
        sink.send(Bytes::from_static(binary::TRAILER))
            .await
            .map_err(copy_error)?;
        self.done += sink.as_mut().finish().await.map_err(copy_error)?;
        Ok(())
    }

    /// Ends the load's COPY (one is started for a load with no rows, so
    /// that every load finishes the same way); returns the rows COPY took.
    async fn finish(
        mut self,
        client: &Client,
        session: &mut LoadSession,
    ) -> Result<u64, LoadError> {
        if self.sink.is_none() {
            self.start(client, session, &BTreeSet::new(), &KeyOrder::default())
                .await?;
        }
        self.end(session).await?;
        Ok(self.done)
    }
}

/// The reader thread: opens each source in turn and sends its records in batches.
fn read_sources(
    sources: Vec<SourceSpec>,
    batch_size: usize,
    handle: &tokio::runtime::Handle,
    bytes: Arc<AtomicU64>,
    batches: SyncSender<Batch>,
) -> Result<(), LoadError> {
    for spec in sources {
        match spec {
            SourceSpec::Named(text) => {
                let src = source::open(&text, handle, bytes.clone()).map_err(LoadError::Source)?;
                let mut out = Batcher::new(src.name.into(), batch_size, &batches);
                let mut splitter = Splitter::new(src.reader);
                while let Some(r) = splitter
                    .next_record()
                    .map_err(|e| LoadError::Source(format!("{}: {e}", out.source)))?
                {
                    out.push(Input {
                        body: r.body,
                        line: r.line,
                        index: r.index,
                    })?;
                }
                out.finish()?;
            }
            SourceSpec::Records { name, mut records } => {
                let mut out = Batcher::new(name.into(), batch_size, &batches);
                let mut pulled = Vec::new();
                let mut line = 0;
                while records
                    .next_batch(&mut pulled)
                    .map_err(|e| LoadError::Source(format!("{}: {e}", out.source)))?
                {
                    for body in pulled.drain(..) {
                        line += 1;
                        bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                        let body = if body.len() > MAX_RECORD_BYTES {
                            Body::TooLarge(body.len() as u64)
                        } else {
                            Body::Json(body)
                        };
                        out.push(Input {
                            body,
                            line,
                            index: None,
                        })?;
                    }
                }
                out.finish()?;
            }
        }
    }
    Ok(())
}

/// Gathers one source's records into batches for the worker.
struct Batcher<'a> {
    source: Arc<str>,
    inputs: Vec<Input>,
    size: usize,
    batch_size: usize,
    to: &'a SyncSender<Batch>,
}

impl<'a> Batcher<'a> {
    fn new(source: Arc<str>, batch_size: usize, to: &'a SyncSender<Batch>) -> Batcher<'a> {
        Batcher {
            source,
            inputs: Vec::with_capacity(batch_size),
            size: 0,
            batch_size,
            to,
        }
    }

    fn push(&mut self, input: Input) -> Result<(), LoadError> {
        self.size += match &input.body {
            Body::Json(b) => b.len(),
            Body::TooLarge(_) => 0,
        };
        self.inputs.push(input);
        if self.inputs.len() >= self.batch_size || self.size >= MAX_BATCH_BYTES {
            let full = std::mem::replace(&mut self.inputs, Vec::with_capacity(self.batch_size));
            self.size = 0;
            self.send(full)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(), LoadError> {
        let rest = std::mem::take(&mut self.inputs);
        if rest.is_empty() {
            return Ok(());
        }
        self.send(rest)
    }

    fn send(&self, inputs: Vec<Input>) -> Result<(), LoadError> {
        self.to
            .send(Batch {
                source: self.source.clone(),
                inputs,
            })
            .map_err(|_| LoadError::Cancelled)
    }
}

fn panicked(what: &str, e: tokio::task::JoinError) -> LoadError {
    LoadError::Source(format!("the {what} thread failed: {e}"))
}

/// The progress bar: records read and bytes, on a terminal only.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    bytes: Arc<AtomicU64>,
    what: &'static str,
}

impl Progress {
    fn new(enabled: bool, kind: Kind, bytes: Arc<AtomicU64>) -> Progress {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {human_pos} {msg} [{elapsed}, {per_sec}]",
                )
                .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            bytes,
            what: kind.plural(),
        }
    }

    fn add(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
            let b = self.bytes.load(Ordering::Relaxed);
            bar.set_message(format!("{} read, {}", self.what, indicatif::HumanBytes(b)));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
