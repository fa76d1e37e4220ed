//! The worker thread: each batch of records goes through the plugins, then
//! the STAC checks, and comes out as COPY rows. Every record gets exactly
//! one fate: a row, dropped by a plugin, or rejected (to the reject file, or
//! failing the load when there is none).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use bytes::Bytes;

use super::reject::RejectWriter;
use super::split::{Body, MAX_RECORD_BYTES};
use super::{Kind, LoadError, Origin, RecordError};
use crate::audit::{Audit, Entry, Outcome, PluginRef, Unit};
use crate::catalog::{KeyOrder, Rows as CatalogRows};
use crate::plugin::chain::{ItemChain, Reason};
use crate::plugin::{Plugin, PluginError, Usage};
use crate::policy::DataScope;
use crate::stac::{ItemContext, check_collection, check_item};

/// One record as read.
pub(super) struct Input {
    pub body: Body,
    pub line: u64,
    pub index: Option<u64>,
}

/// Records from one source.
pub(super) struct Batch {
    pub source: Arc<str>,
    pub inputs: Vec<Input>,
}

/// COPY rows for one batch.
pub(super) struct Chunk {
    pub bytes: Bytes,
    /// Records of the batch (for progress).
    pub read: u64,
    /// The collections of its item rows (a COPY may take only some).
    pub collections: BTreeSet<String>,
    /// How its rows' keys came (a COPY may take only rows that follow the
    /// ones it took).
    pub order: KeyOrder,
}

/// What the worker saw, in the end.
#[derive(Debug, Default)]
pub(super) struct Totals {
    pub read: u64,
    pub rows: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub plugin_failures: u64,
    pub collections: BTreeSet<String>,
    /// How the rows' keys came, in the order COPY took them.
    pub order: KeyOrder,
    /// Per tenant, when several shared the load.
    pub tenants: Vec<super::tenants::TenantSummary>,
}

impl Totals {
    pub fn add_collections(&mut self, collections: BTreeSet<String>) {
        for c in collections {
            if !self.collections.contains(&c) {
                self.collections.insert(c);
            }
        }
    }
}

pub(super) struct Worker {
    pub kind: Kind,
    pub chain: Option<ItemChain>,
    pub known: HashSet<String>,
    pub collection: Option<String>,
    pub strict_bbox: bool,
    /// What the plugins may see and the load may write (a tenant's collections).
    pub scope: DataScope,
    pub rejects: Option<RejectWriter>,
    /// How the catalog loaded into writes rows.
    pub rows: CatalogRows,
    /// The next record's position in the load, when rows carry it (staged loads).
    pub seq: Option<u64>,
    pub totals: Totals,
    /// Where each batch is audited (`--audit`).
    pub audit: Option<Audited>,
}

/// One tenant's (or the load's) audit trail: the log, who, and which builds.
pub(crate) struct Audited {
    log: Arc<Audit>,
    tenant: Option<String>,
    plugins: Vec<PluginRef>,
    batches: u64,
}

/// What became of one batch, as the audit counts it.
pub(super) struct BatchFate<'a> {
    pub source: &'a str,
    pub read: u64,
    pub rows: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub cpu: Duration,
    pub usage: Usage,
    pub failure: Option<&'a PluginError>,
    /// Not run: the tenant had used its CPU time for the load.
    pub cpu_exhausted: bool,
}

impl Audited {
    pub(crate) fn new(log: Arc<Audit>, tenant: Option<&str>, plugins: &[Plugin]) -> Audited {
        Audited {
            log,
            tenant: tenant.map(str::to_string),
            plugins: plugins.iter().map(PluginRef::of).collect(),
            batches: 0,
        }
    }

    /// The same log, for another tenant's plugins.
    pub(super) fn for_tenant(&self, tenant: &str, plugins: &[Plugin]) -> Audited {
        Audited::new(self.log.clone(), Some(tenant), plugins)
    }

    /// Writes the batch's line.
    pub(super) fn batch(&mut self, fate: BatchFate<'_>) -> Result<(), LoadError> {
        self.batches += 1;
        let unit = Unit::Batch {
            source: fate.source,
            batch: self.batches,
        };
        let mut entry = Entry::new("load", self.tenant.as_deref(), &self.plugins, unit).with(
            fate.usage,
            fate.cpu,
            fate.failure,
        );
        entry.records_in = fate.read;
        entry.records_out = fate.rows;
        entry.dropped = fate.dropped;
        entry.rejected = fate.rejected;
        if fate.cpu_exhausted {
            entry.outcome = Outcome::Limit;
            entry.limit = Some(crate::audit::Limit::Cpu);
        }
        self.log.write(&entry)?;
        Ok(())
    }
}

/// A record that will not be loaded, and why.
pub(super) struct TurnedAway {
    pub index: usize,
    pub id: Option<String>,
    pub by: Stage,
    /// Shared by the records of a batch a plugin failed on.
    pub reason: Arc<str>,
    pub record: String,
}

impl TurnedAway {
    fn invalid(index: usize, e: crate::stac::Invalid, record: String) -> TurnedAway {
        TurnedAway {
            index,
            id: e.id,
            by: Stage::Validation,
            reason: e.reason.into(),
            record,
        }
    }
}

/// Who turned a record away.
pub(super) enum Stage {
    Validation,
    /// Outside the tenant's scope (before its plugins, or as they left it).
    Scope,
    /// Not run: its tenant had used up a limit of the whole load (CPU time).
    Limit,
    Plugin(String),
}

impl Worker {
    /// Processes batches until the input ends, sending rows on.
    pub fn run(
        mut self,
        batches: Receiver<Batch>,
        chunks: tokio::sync::mpsc::Sender<Chunk>,
    ) -> Result<Totals, LoadError> {
        for batch in batches {
            let chunk = self.process(batch)?;
            if chunks.blocking_send(chunk).is_err() {
                return Err(LoadError::Cancelled);
            }
        }
        if let Some(r) = self.rejects.take() {
            r.finish()?;
        }
        Ok(self.totals)
    }

    fn process(&mut self, batch: Batch) -> Result<Chunk, LoadError> {
        let n = batch.inputs.len();
        self.totals.read += n as u64;
        let places: Vec<(u64, Option<u64>)> =
            batch.inputs.iter().map(|i| (i.line, i.index)).collect();
        let origin = |i: usize| Origin {
            source: batch.source.to_string(),
            line: places[i].0,
            index: places[i].1,
        };
        // Records turned away, handled in input order once the batch is done.
        let (mut texts, mut turned_away, total) = decode(batch.inputs);

        // A tenant's plugins see only the tenant's items.
        if let DataScope::Tenant(_) = &self.scope {
            texts.retain(|(i, text)| {
                let named = collection_of(text);
                let collection = named.as_deref().or(self.collection.as_deref());
                match self.scope.refuse_collection(collection) {
                    None => true,
                    Some(reason) => {
                        turned_away.push(TurnedAway {
                            index: *i,
                            id: item_id(text),
                            by: Stage::Scope,
                            reason: reason.into(),
                            record: text.clone(),
                        });
                        false
                    }
                }
            });
        }

        let writer = RowWriter {
            kind: self.kind,
            known: &self.known,
            collection: self.collection.as_deref(),
            strict_bbox: self.strict_bbox,
            scope: &self.scope,
            rows: &self.rows,
        };
        let base = self.seq;
        if let Some(s) = &mut self.seq {
            *s += n as u64;
        }
        let done = transform(self.chain.as_mut(), &writer, texts, base, total);
        if let Some(audit) = &mut self.audit {
            let rejected = turned_away.len() + done.turned_away.len();
            audit.batch(BatchFate {
                source: &batch.source,
                read: n as u64,
                rows: done.rows,
                dropped: done.dropped,
                rejected: rejected as u64,
                cpu: done.plugin_cpu,
                usage: done.usage,
                failure: done.failure.as_ref(),
                cpu_exhausted: false,
            })?;
        }
        self.totals.dropped += done.dropped;
        if let Some(failure) = done.failure {
            self.totals.plugin_failures += 1;
            if self.rejects.is_none() {
                return Err(LoadError::Plugin(failure));
            }
            tracing::error!("{failure}; its records are in the reject file");
        }
        turned_away.extend(done.turned_away);
        self.totals.rows += done.rows;
        let collections = done.collections.clone();
        self.totals.add_collections(done.collections);
        let order = done.order.clone();
        self.totals.order.append(done.order);
        let out = done.out;
        turned_away.sort_by_key(|t| t.index);
        for t in turned_away {
            self.reject(origin(t.index), t)?;
        }
        Ok(Chunk {
            bytes: Bytes::from(out),
            read: n as u64,
            collections,
            order,
        })
    }

    fn reject(&mut self, at: Origin, t: TurnedAway) -> Result<(), LoadError> {
        self.totals.rejected += 1;
        reject(&mut self.rejects, self.kind, at, t)
    }
}

/// Writes the record to the reject file, or fails the load without one.
pub(super) fn reject(
    rejects: &mut Option<RejectWriter>,
    kind: Kind,
    at: Origin,
    t: TurnedAway,
) -> Result<(), LoadError> {
    let TurnedAway {
        id,
        by,
        reason,
        record,
        ..
    } = t;
    match (rejects, by) {
        (Some(w), Stage::Validation) => w.write(&at, id.as_deref(), "validation", &reason, &record),
        (Some(w), Stage::Scope) => w.write(&at, id.as_deref(), "scope", &reason, &record),
        (Some(w), Stage::Limit) => w.write(&at, id.as_deref(), "limit", &reason, &record),
        (Some(w), Stage::Plugin(p)) => {
            w.write(&at, id.as_deref(), &format!("plugin {p}"), &reason, &record)
        }
        (None, stage) => Err(LoadError::Record(Box::new(RecordError {
            at,
            what: kind.singular(),
            id,
            plugin: match stage {
                Stage::Validation | Stage::Scope | Stage::Limit => None,
                Stage::Plugin(p) => Some(p),
            },
            reason: reason.to_string(),
        }))),
    }
}

/// The records of a batch as text: `(index in batch, text)`, those that are
/// not (too large, not UTF-8) turned away, and the texts' bytes.
pub(super) fn decode(inputs: Vec<Input>) -> (Vec<(usize, String)>, Vec<TurnedAway>, usize) {
    let mut turned_away: Vec<TurnedAway> = Vec::new();
    // (index in batch, text) of the records still in play.
    let mut texts: Vec<(usize, String)> = Vec::with_capacity(inputs.len());
    let mut total = 0;
    for (i, input) in inputs.into_iter().enumerate() {
        let bytes = match input.body {
            Body::Json(b) => b,
            Body::TooLarge(size) => {
                turned_away.push(TurnedAway {
                    index: i,
                    id: None,
                    by: Stage::Validation,
                    reason: format!(
                        "the record is {size} bytes, more than the {} MiB a record may have \
                         (PostgreSQL's jsonb cannot hold it); it was skipped unread",
                        MAX_RECORD_BYTES >> 20
                    )
                    .into(),
                    record: String::new(),
                });
                continue;
            }
        };
        match String::from_utf8(bytes) {
            Ok(s) => {
                total += s.len();
                texts.push((i, s));
            }
            Err(e) => turned_away.push(TurnedAway {
                index: i,
                id: None,
                by: Stage::Validation,
                reason: format!("not UTF-8: {}", e.utf8_error()).into(),
                record: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            }),
        }
    }
    (texts, turned_away, total)
}

/// What the plugins and the row writer made of a batch's records.
pub(super) struct Transformed {
    pub out: Vec<u8>,
    pub rows: u64,
    pub dropped: u64,
    pub turned_away: Vec<TurnedAway>,
    /// The plugin failure that hit the batch (its records are in `turned_away`).
    pub failure: Option<crate::plugin::PluginError>,
    pub collections: BTreeSet<String>,
    /// How the rows' keys came.
    pub order: KeyOrder,
    /// CPU time the chain took (on this thread).
    pub plugin_cpu: Duration,
    /// What the chain's instances used.
    pub usage: Usage,
}

/// Runs `texts` (index in batch, text) through the chain, then checks them
/// and writes their rows, numbered from `base`. `total`: their bytes.
pub(super) fn transform(
    chain: Option<&mut ItemChain>,
    writer: &RowWriter<'_>,
    texts: Vec<(usize, String)>,
    base: Option<u64>,
    total: usize,
) -> Transformed {
    let mut turned_away = Vec::new();
    let mut dropped = 0;
    let mut failure = None;
    let mut plugin_cpu = Duration::ZERO;
    let mut usage = Usage::default();
    // What comes out of an item rewriter was checked by the chain, so that a
    // lying plugin is blamed by name; the row writer checks every text again
    // anyway, in the one pass that reads it.
    let texts: Vec<(usize, String)> = if let Some(chain) = chain {
        let (idx, strings): (Vec<usize>, Vec<String>) = texts.into_iter().unzip();
        let started = crate::plugin::thread_cpu();
        // Borrowed: the originals stay here for the reject file.
        let mut out = chain.run(&strings);
        plugin_cpu = crate::plugin::thread_cpu().saturating_sub(started);
        dropped = out.dropped.len() as u64;
        failure = out.failure.take();
        usage = out.usage;
        for r in &out.rejected {
            turned_away.push(TurnedAway {
                index: idx[r.index],
                id: item_id(&strings[r.index]),
                by: Stage::Plugin(r.plugin.clone()),
                reason: match &r.reason {
                    Reason::Rejected(text) => text.as_str().into(),
                    Reason::Failed(failure) => failure.clone(),
                },
                record: strings[r.index].clone(),
            });
        }
        out.kept.into_iter().map(|(k, s)| (idx[k], s)).collect()
    } else {
        texts
    };
    let n = texts.len();
    let capacity = |total: usize, n: usize| total + total / 8 + 256 * n.min(1024);
    // Dehydrating for pgstac parses every item whole: worth more than one core.
    let threads = if writer.rows.parallel() && writer.kind == Kind::Items && n >= 64 {
        row_threads()
    } else {
        1
    };
    let parts: Vec<Rows> = if threads <= 1 {
        vec![writer.write(texts, base, capacity(total, n))]
    } else {
        let per = n.div_ceil(threads);
        let mut chunks = Vec::with_capacity(threads);
        let mut rest = texts;
        while !rest.is_empty() {
            let tail = rest.split_off(per.min(rest.len()));
            chunks.push(std::mem::replace(&mut rest, tail));
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    let cap = capacity(total / threads, chunk.len());
                    scope.spawn(move || writer.write(chunk, base, cap))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a row thread panicked"))
                .collect()
        })
    };
    let mut done = Transformed {
        out: Vec::new(),
        rows: 0,
        dropped,
        turned_away,
        failure,
        collections: BTreeSet::new(),
        order: KeyOrder::default(),
        plugin_cpu,
        usage,
    };
    for part in parts {
        if done.out.is_empty() {
            done.out = part.out;
        } else {
            done.out.extend_from_slice(&part.out);
        }
        done.turned_away.extend(part.turned_away);
        done.rows += part.rows;
        done.collections.extend(part.collections);
        done.order.append(part.order);
    }
    done
}

/// Rows for part of a batch, and what was turned away.
struct Rows {
    out: Vec<u8>,
    turned_away: Vec<TurnedAway>,
    collections: BTreeSet<String>,
    order: KeyOrder,
    rows: u64,
}

/// What validating records and writing their rows needs (shared by threads).
pub(super) struct RowWriter<'a> {
    pub kind: Kind,
    pub known: &'a HashSet<String>,
    pub collection: Option<&'a str>,
    pub strict_bbox: bool,
    pub scope: &'a DataScope,
    pub rows: &'a CatalogRows,
}

impl RowWriter<'_> {
    /// Checks each record and writes its row. A row's `seq` (when rows carry
    /// one) is its record's place in the load: `base` plus its index in the batch.
    fn write(&self, texts: Vec<(usize, String)>, base: Option<u64>, capacity: usize) -> Rows {
        let mut out = Vec::with_capacity(capacity);
        let mut turned_away = Vec::new();
        let mut collections = BTreeSet::new();
        let mut order = KeyOrder::default();
        let mut rows = 0;
        for (i, text) in texts {
            let seq = base.map(|b| b + i as u64);
            let written = match self.kind {
                Kind::Items => {
                    let ctx = ItemContext {
                        collection: self.collection,
                        known: self.known,
                        strict_bbox: self.strict_bbox,
                    };
                    let item = self.rows.item_text(text.as_str());
                    match check_item(&item, &ctx) {
                        // What the tenant's plugins made of an item stays in its collections.
                        Ok(fields) => {
                            match self.scope.refuse_collection(Some(&fields.collection)) {
                                Some(reason) => {
                                    turned_away.push(TurnedAway {
                                        index: i,
                                        id: Some(fields.id.to_string()),
                                        by: Stage::Scope,
                                        reason: reason.into(),
                                        record: text,
                                    });
                                    continue;
                                }
                                None => {
                                    self.rows
                                        .write_item(&mut out, seq, &fields, &item)
                                        .map(|()| {
                                            order.push(&fields.collection, &fields.id);
                                            fields.collection.into_owned()
                                        })
                                }
                            }
                        }
                        Err(e) => Err(e),
                    }
                }
                Kind::Collections => check_collection(text.as_str()).and_then(|id| {
                    self.rows
                        .write_collection(&mut out, seq, &id, text.as_str())?;
                    Ok(id.into_owned())
                }),
            };
            match written {
                Ok(c) => {
                    if !collections.contains(&c) {
                        collections.insert(c);
                    }
                }
                Err(e) => {
                    turned_away.push(TurnedAway::invalid(i, e, text));
                    continue;
                }
            }
            rows += 1;
        }
        Rows {
            out,
            turned_away,
            collections,
            order,
            rows,
        }
    }
}

/// Threads that turn one batch into pgstac rows: the cores, at most 4.
fn row_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// The `collection` an item names, if it names one as a string.
pub(super) fn collection_of(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        collection: Option<String>,
    }
    serde_json::from_str::<Named>(text)
        .ok()
        .and_then(|n| n.collection)
}

/// The `id` of a record, if it has a string one (for messages).
pub(super) fn item_id(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<String>,
    }
    serde_json::from_str::<Id>(text).ok().and_then(|i| i.id)
}
