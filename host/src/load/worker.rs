//! The worker thread: each batch of records goes through the plugins, then
//! the STAC checks, and comes out as COPY rows. Every record gets exactly
//! one fate: a row, dropped by a plugin, or rejected (to the reject file, or
//! failing the load when there is none).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use bytes::Bytes;

use super::reject::RejectWriter;
use super::split::{Body, MAX_RECORD_BYTES};
use super::{Kind, LoadError, Origin, RecordError};
use crate::catalog::Rows as CatalogRows;
use crate::plugin::chain::{ItemChain, Reason};
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
}

/// A record that will not be loaded, and why.
struct TurnedAway {
    index: usize,
    id: Option<String>,
    by: Stage,
    /// Shared by the records of a batch a plugin failed on.
    reason: Arc<str>,
    record: String,
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
enum Stage {
    Validation,
    /// Outside the tenant's scope (before its plugins, or as they left it).
    Scope,
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
        let mut turned_away: Vec<TurnedAway> = Vec::new();
        // (index in batch, text) of the records still in play.
        let mut texts: Vec<(usize, String)> = Vec::with_capacity(n);
        let mut total = 0;
        for (i, input) in batch.inputs.into_iter().enumerate() {
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

        if let Some(chain) = &mut self.chain {
            let (idx, strings): (Vec<usize>, Vec<String>) = texts.into_iter().unzip();
            // Borrowed: the originals stay here for the reject file.
            let mut out = chain.run(&strings);
            self.totals.dropped += out.dropped.len() as u64;
            if let Some(failure) = out.failure.take() {
                self.totals.plugin_failures += 1;
                if self.rejects.is_none() {
                    return Err(LoadError::Plugin(failure));
                }
                tracing::error!("{failure}; its records are in the reject file");
            }
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
            texts = out.kept.into_iter().map(|(k, s)| (idx[k], s)).collect();
        }

        let writer = RowWriter {
            kind: self.kind,
            known: &self.known,
            collection: self.collection.as_deref(),
            strict_bbox: self.strict_bbox,
            scope: &self.scope,
            rows: &self.rows,
        };
        let capacity = |total: usize, n: usize| total + total / 8 + 256 * n.min(1024);
        // Dehydrating for pgstac parses every item whole: worth more than one core.
        let threads = if self.rows.parallel() && self.kind == Kind::Items && texts.len() >= 64 {
            row_threads()
        } else {
            1
        };
        let parts: Vec<Rows> = if threads <= 1 {
            vec![writer.write(texts, self.seq, capacity(total, n))]
        } else {
            let per = texts.len().div_ceil(threads);
            let mut chunks = Vec::with_capacity(threads);
            let mut rest = texts;
            while !rest.is_empty() {
                let tail = rest.split_off(per.min(rest.len()));
                chunks.push(std::mem::replace(&mut rest, tail));
            }
            let base = self.seq.unwrap_or_default();
            std::thread::scope(|scope| {
                let writer = &writer;
                let handles: Vec<_> = chunks
                    .into_iter()
                    .enumerate()
                    .map(|(k, chunk)| {
                        // Each chunk numbers its rows from its first record's
                        // place: gaps where records are turned away, order kept.
                        let seq = Some(base + (k * per) as u64);
                        let cap = capacity(total / threads, chunk.len());
                        scope.spawn(move || writer.write(chunk, seq, cap))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a row thread panicked"))
                    .collect()
            })
        };
        let mut out = Vec::new();
        let last_seq = parts.last().and_then(|p| p.seq);
        for part in parts {
            if out.is_empty() {
                out = part.out;
            } else {
                out.extend_from_slice(&part.out);
            }
            turned_away.extend(part.turned_away);
            self.totals.rows += part.rows;
            for c in part.collections {
                if !self.totals.collections.contains(&c) {
                    self.totals.collections.insert(c);
                }
            }
        }
        if self.seq.is_some() {
            self.seq = if threads <= 1 {
                last_seq
            } else {
                self.seq.map(|s| s + n as u64)
            };
        }
        turned_away.sort_by_key(|t| t.index);
        for t in turned_away {
            self.reject(origin(t.index), &t.record, t.id, t.by, &t.reason)?;
        }
        Ok(Chunk {
            bytes: Bytes::from(out),
            read: n as u64,
        })
    }

    /// Writes the record to the reject file, or fails the load without one.
    fn reject(
        &mut self,
        at: Origin,
        record: &str,
        id: Option<String>,
        stage: Stage,
        reason: &str,
    ) -> Result<(), LoadError> {
        self.totals.rejected += 1;
        let what = self.kind.singular();
        match (&mut self.rejects, stage) {
            (Some(w), Stage::Validation) => {
                w.write(&at, id.as_deref(), "validation", reason, record)
            }
            (Some(w), Stage::Scope) => w.write(&at, id.as_deref(), "scope", reason, record),
            (Some(w), Stage::Plugin(p)) => {
                w.write(&at, id.as_deref(), &format!("plugin {p}"), reason, record)
            }
            (None, stage) => Err(LoadError::Record(Box::new(RecordError {
                at,
                what,
                id,
                plugin: match stage {
                    Stage::Validation | Stage::Scope => None,
                    Stage::Plugin(p) => Some(p),
                },
                reason: reason.to_string(),
            }))),
        }
    }
}

/// Rows for part of a batch, and what was turned away.
struct Rows {
    out: Vec<u8>,
    turned_away: Vec<TurnedAway>,
    collections: BTreeSet<String>,
    rows: u64,
    /// The next `seq` after this part.
    seq: Option<u64>,
}

/// What validating records and writing their rows needs (shared by threads).
struct RowWriter<'a> {
    kind: Kind,
    known: &'a HashSet<String>,
    collection: Option<&'a str>,
    strict_bbox: bool,
    scope: &'a DataScope,
    rows: &'a CatalogRows,
}

impl RowWriter<'_> {
    /// Checks each record and writes its row, numbering rows from `seq`.
    fn write(&self, texts: Vec<(usize, String)>, mut seq: Option<u64>, capacity: usize) -> Rows {
        let mut out = Vec::with_capacity(capacity);
        let mut turned_away = Vec::new();
        let mut collections = BTreeSet::new();
        let mut rows = 0;
        for (i, text) in texts {
            let written = match self.kind {
                Kind::Items => {
                    let ctx = ItemContext {
                        collection: self.collection,
                        known: self.known,
                        strict_bbox: self.strict_bbox,
                    };
                    let item = self.rows.item_text(&text);
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
                                None => self
                                    .rows
                                    .write_item(&mut out, seq, &fields, &item)
                                    .map(|()| fields.collection.into_owned()),
                            }
                        }
                        Err(e) => Err(e),
                    }
                }
                Kind::Collections => check_collection(&text).and_then(|id| {
                    self.rows.write_collection(&mut out, seq, &id, &text)?;
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
            if let Some(s) = &mut seq {
                *s += 1;
            }
            rows += 1;
        }
        Rows {
            out,
            turned_away,
            collections,
            rows,
            seq,
        }
    }
}

/// Threads that turn one batch into pgstac rows: the cores, at most 4.
fn row_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// The `collection` an item names, if it names one as a string.
fn collection_of(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        collection: Option<String>,
    }
    serde_json::from_str::<Named>(text)
        .ok()
        .and_then(|n| n.collection)
}

/// The `id` of a record, if it has a string one (for messages).
fn item_id(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<String>,
    }
    serde_json::from_str::<Id>(text).ok().and_then(|i| i.id)
}
