//! Running a load: checks, the reader and worker threads, COPY, the merge,
//! and the one transaction around it all.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use futures::SinkExt;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::reject::RejectWriter;
use super::split::{Body, Splitter};
use super::worker::{Batch, Input, Totals, Worker};
use super::{ExtentMode, Kind, LoadError, Method, Summary, TargetSchema, source};
use crate::plugin::Plugin;
use crate::plugin::chain::ItemChain;
use crate::stac::pgstac::{self, Collections};
use crate::stac::rows;
use crate::stac::store::{self, Merged, Route, StoreError, Target};

/// What to load, and how.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub kind: Kind,
    /// Paths, `-`, or URLs, read in order.
    pub sources: Vec<String>,
    pub method: Method,
    /// Where invalid and rejected records go; `None`: they fail the load.
    pub reject_file: Option<PathBuf>,
    /// Items' default collection (`--collection`).
    pub collection: Option<String>,
    /// Overrides the `update_extents` setting for this load.
    pub update_extents: Option<ExtentMode>,
    /// Records per batch (and per plugin call).
    pub batch_size: usize,
    /// Items' bboxes must contain their geometry, not just overlap it.
    pub strict_bbox: bool,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// The schema to write (`--target`).
    pub target: TargetSchema,
}

/// A batch also ends once it holds this many bytes.
const MAX_BATCH_BYTES: usize = 8 << 20;

/// Loads the sources in one transaction; on any error nothing is loaded.
pub async fn load(
    client: &mut Client,
    opts: LoadOptions,
    plugins: Vec<Plugin>,
) -> Result<Summary, LoadError> {
    let started = Instant::now();
    let target = match opts.kind {
        Kind::Items => Target::Items,
        Kind::Collections => Target::Collections,
    };
    // Into pgstac: its collections and their base items; `None`: the host schema.
    let pgstac: Option<Arc<Collections>> = match choose_schema(client, opts.target).await? {
        Schema::Host => {
            store::check_schema(client).await?;
            None
        }
        Schema::Pgstac => {
            if let Some(mode) = opts.update_extents
                && mode != ExtentMode::Off
            {
                return Err(LoadError::Source(format!(
                    "--update-extents {} is for the host schema; pgstac keeps extents itself \
                     (its update_collection_extent setting)",
                    mode.as_str()
                )));
            }
            Some(Arc::new(match opts.kind {
                Kind::Items => pgstac::store::collections(client).await?,
                Kind::Collections => Collections::new(),
            }))
        }
    };
    let known: HashSet<String> = match (opts.kind, &pgstac) {
        (Kind::Items, None) => {
            store::ensure_partitions(client).await?;
            store::known_collections(client).await?
        }
        (Kind::Items, Some(p)) => p.keys().cloned().collect(),
        (Kind::Collections, _) => HashSet::new(),
    };
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

    let route = match pgstac {
        Some(_) => Route::Staged,
        None => Route::for_load(target, opts.method),
    };
    if pgstac.is_some() {
        pgstac::store::create_staging(client, target).await?;
    }
    let tx = client.transaction().await.map_err(db)?;
    let copy = match pgstac {
        Some(_) => pgstac::store::copy_statement(target),
        None => {
            if route == Route::Staged {
                store::create_staging(&tx, target).await?;
            }
            store::copy_statement(target, route)
        }
    };
    let sink = tx.copy_in::<_, bytes::Bytes>(copy).await.map_err(db)?;
    let mut sink = Box::pin(sink);
    sink.feed(bytes::Bytes::from_static(rows::HEADER))
        .await
        .map_err(db)?;

    let bytes = Arc::new(AtomicU64::new(0));
    let (batch_tx, batch_rx) = std::sync::mpsc::sync_channel::<Batch>(4);
    let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::channel(4);
    // A plain thread, not spawn_blocking: a failed load must not wait for a
    // read from a stalled pipe (the runtime waits for its blocking tasks).
    let (reader_tx, reader_rx) = tokio::sync::oneshot::channel();
    {
        let sources = opts.sources.clone();
        let handle = tokio::runtime::Handle::current();
        let bytes = bytes.clone();
        let batch_size = opts.batch_size.max(1);
        std::thread::Builder::new()
            .name("load-reader".into())
            .spawn(move || {
                let r = read_sources(&sources, batch_size, &handle, bytes, batch_tx);
                let _ = reader_tx.send(r);
            })
            .map_err(|e| LoadError::Source(format!("cannot start the reader thread: {e}")))?;
    }
    let into_pgstac = pgstac.is_some();
    let worker = {
        let kind = opts.kind;
        let collection = opts.collection.clone();
        let strict_bbox = opts.strict_bbox;
        // Plugins are instantiated (and called) off the async workers.
        tokio::task::spawn_blocking(move || {
            let chain = if plugins.is_empty() {
                None
            } else {
                Some(ItemChain::new(&plugins)?)
            };
            Worker {
                kind,
                chain,
                known,
                collection,
                strict_bbox,
                rejects,
                pgstac,
                seq: (route == Route::Staged).then_some(0),
                totals: Totals::default(),
            }
            .run(batch_rx, chunk_tx)
        })
    };

    let progress = Progress::new(opts.progress, opts.kind, bytes.clone());
    let mut copy_error = None;
    while let Some(chunk) = chunk_rx.recv().await {
        progress.add(chunk.read);
        if chunk.bytes.is_empty() {
            continue;
        }
        if let Err(e) = sink.send(chunk.bytes).await {
            copy_error = Some(e);
            break;
        }
    }
    drop(chunk_rx); // stops the worker (and so the reader) if COPY failed
    let worker = worker.await.unwrap_or_else(|e| Err(panicked("worker", e)));
    progress.finish();
    // The most telling error: a stage's own error beats the cancellations it caused.
    let totals = match (worker, copy_error) {
        (Err(e), _) if !matches!(e, LoadError::Cancelled) => return Err(e),
        (_, Some(e)) => return Err(merge_error(e, opts.kind)),
        (Err(e), None) => return Err(e),
        // The worker saw the end of the input, so the reader has finished.
        (Ok(t), None) => match reader_rx.await {
            Ok(Ok(())) => t,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(LoadError::Source("the reader thread failed".into())),
        },
    };
    sink.send(bytes::Bytes::from_static(rows::TRAILER))
        .await
        .map_err(|e| merge_error(e, opts.kind))?;
    let staged = sink
        .as_mut()
        .finish()
        .await
        .map_err(|e| merge_error(e, opts.kind))?;
    debug_assert_eq!(staged, totals.rows);
    tracing::debug!(
        rows = staged,
        seconds = started.elapsed().as_secs_f64(),
        "staged"
    );
    let collections: Vec<String> = totals.collections.into_iter().collect();
    let merged = if into_pgstac {
        // The staged rows are in a session temp table: commit that, make the
        // partitions in their own transactions, then merge in one.
        tx.commit().await.map_err(db)?;
        let phase = Instant::now();
        if opts.kind == Kind::Items {
            let n = pgstac::store::prepare_partitions(client)
                .await
                .map_err(|e| match e {
                    StoreError::Db(e) => merge_error(e, opts.kind),
                    e => LoadError::Store(e),
                })?;
            tracing::debug!(
                partitions = n,
                seconds = phase.elapsed().as_secs_f64(),
                "partitions"
            );
        }
        let phase = Instant::now();
        let tx = client.transaction().await.map_err(db)?;
        let merged = pgstac::store::merge(&tx, target, opts.method, staged)
            .await
            .map_err(|e| merge_error(e, opts.kind))?;
        tx.commit().await.map_err(|e| merge_error(e, opts.kind))?;
        tracing::debug!(
            seconds = phase.elapsed().as_secs_f64(),
            "merged and committed"
        );
        merged
    } else {
        let phase = Instant::now();
        let merged = match route {
            Route::Direct => Merged {
                loaded: staged,
                ..Merged::default()
            },
            Route::Staged => store::merge(&tx, target, opts.method, staged)
                .await
                .map_err(|e| merge_error(e, opts.kind))?,
        };
        tracing::debug!(seconds = phase.elapsed().as_secs_f64(), "merged");
        let phase = Instant::now();
        if opts.kind == Kind::Items {
            store::items_changed(&tx, &collections, opts.update_extents)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        tracing::debug!(
            seconds = phase.elapsed().as_secs_f64(),
            "extents and commit"
        );
        merged
    };

    Ok(Summary {
        kind: opts.kind,
        method: opts.method,
        read: totals.read,
        loaded: merged.loaded,
        skipped: merged.skipped,
        unchanged: merged.unchanged,
        dropped: totals.dropped,
        rejected: totals.rejected,
        plugin_failures: totals.plugin_failures,
        bytes: bytes.load(Ordering::Relaxed),
        collections,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The schema a load writes.
enum Schema {
    Host,
    Pgstac,
}

/// Resolves `--target`: `auto` takes the host schema when the database has
/// it, else pgstac. A pgstac version this binary cannot write is refused.
async fn choose_schema(client: &Client, wanted: TargetSchema) -> Result<Schema, LoadError> {
    let host: bool = client
        .query_one("SELECT to_regclass('host.migrations') IS NOT NULL", &[])
        .await
        .map_err(db)?
        .get(0);
    if wanted == TargetSchema::Host || (wanted == TargetSchema::Auto && host) {
        return Ok(Schema::Host);
    }
    match pgstac::store::version(client).await? {
        Some(v) => {
            pgstac::store::check_version(&v)?;
            Ok(Schema::Pgstac)
        }
        None if wanted == TargetSchema::Pgstac => Err(StoreError::NoPgstac.into()),
        None => Err(StoreError::NoSchema.into()),
    }
}

/// The reader thread: opens each source in turn and sends its records in batches.
fn read_sources(
    sources: &[String],
    batch_size: usize,
    handle: &tokio::runtime::Handle,
    bytes: Arc<AtomicU64>,
    batches: SyncSender<Batch>,
) -> Result<(), LoadError> {
    for text in sources {
        let src = source::open(text, handle, bytes.clone()).map_err(LoadError::Source)?;
        let name: Arc<str> = src.name.into();
        let mut splitter = Splitter::new(src.reader);
        let mut inputs = Vec::with_capacity(batch_size);
        let mut size = 0;
        loop {
            let record = splitter
                .next_record()
                .map_err(|e| LoadError::Source(format!("{name}: {e}")))?;
            let Some(r) = record else { break };
            size += match &r.body {
                Body::Json(b) => b.len(),
                Body::TooLarge(_) => 0,
            };
            inputs.push(Input {
                body: r.body,
                line: r.line,
                index: r.index,
            });
            if inputs.len() >= batch_size || size >= MAX_BATCH_BYTES {
                let full = std::mem::replace(&mut inputs, Vec::with_capacity(batch_size));
                size = 0;
                batches
                    .send(Batch {
                        source: name.clone(),
                        inputs: full,
                    })
                    .map_err(|_| LoadError::Cancelled)?;
            }
        }
        if !inputs.is_empty() {
            batches
                .send(Batch {
                    source: name.clone(),
                    inputs,
                })
                .map_err(|_| LoadError::Cancelled)?;
        }
    }
    Ok(())
}

fn db(e: tokio_postgres::Error) -> LoadError {
    LoadError::Db(crate::db::describe(&e))
}

fn panicked(what: &str, e: tokio::task::JoinError) -> LoadError {
    LoadError::Source(format!("the {what} thread failed: {e}"))
}

/// COPY and merge errors users can act on, said in their terms.
fn merge_error(e: tokio_postgres::Error, kind: Kind) -> LoadError {
    let detail = e
        .as_db_error()
        .and_then(|d| d.detail())
        .unwrap_or_default()
        .to_string();
    let what = kind.singular();
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => LoadError::Db(format!(
            "{detail} (the {what} is in the database already, or twice in this load); \
             --method insert refuses existing ids: use insert_ignore, upsert or delsert"
        )),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => LoadError::Db(format!(
            "another load wrote the same {}s at the same time and one had to give way: {}",
            what,
            crate::db::describe(&e)
        )),
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => LoadError::Db(format!(
            "a collection was deleted while its items were loading ({detail})"
        )),
        _ => db(e),
    }
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
