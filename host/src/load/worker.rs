//! The worker thread: each batch of records goes through the plugins, then
//! the STAC checks, and comes out as COPY rows. Every record gets exactly
//! one fate: a row, dropped by a plugin, or rejected (to the reject file, or
//! failing the load when there is none).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use bytes::Bytes;

use super::reject::RejectWriter;
use super::{Kind, LoadError, Origin, RecordError};
use crate::plugin::chain::ItemChain;
use crate::stac::pgstac::{self, Collections};
use crate::stac::{ItemContext, check_collection, check_item, rows};

/// One record as read.
pub(super) struct Input {
    pub bytes: Vec<u8>,
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
    pub rejects: Option<RejectWriter>,
    /// Into pgstac (its layout, items dehydrated against these collections'
    /// base items); `None`: the host schema.
    pub pgstac: Option<Arc<Collections>>,
    /// The next record's position in the load, when rows carry it (staged loads).
    pub seq: Option<u64>,
    pub totals: Totals,
}

/// A record that will not be loaded, and why.
struct TurnedAway {
    index: usize,
    id: Option<String>,
    /// The plugin that rejected it; `None`: it failed validation.
    plugin: Option<String>,
    reason: String,
    record: String,
}

impl TurnedAway {
    fn invalid(index: usize, e: crate::stac::Invalid, record: String) -> TurnedAway {
        TurnedAway {
            index,
            id: e.id,
            plugin: None,
            reason: e.reason,
            record,
        }
    }
}

/// Who turned a record away.
enum Stage<'a> {
    Validation,
    Plugin(&'a str),
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
            match String::from_utf8(input.bytes) {
                Ok(s) => {
                    total += s.len();
                    texts.push((i, s));
                }
                Err(e) => turned_away.push(TurnedAway {
                    index: i,
                    id: None,
                    plugin: None,
                    reason: format!("not UTF-8: {}", e.utf8_error()),
                    record: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                }),
            }
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
                    plugin: Some(r.plugin.clone()),
                    reason: r.reason.clone(),
                    record: strings[r.index].clone(),
                });
            }
            texts = out.kept.into_iter().map(|(k, s)| (idx[k], s)).collect();
        }

        let mut out = Vec::with_capacity(total + total / 8 + 256 * n.min(1024));
        for (i, text) in texts {
            match self.kind {
                Kind::Items => {
                    let ctx = ItemContext {
                        collection: self.collection.as_deref(),
                        known: &self.known,
                        strict_bbox: self.strict_bbox,
                    };
                    let written = check_item(&text, &ctx).and_then(|fields| {
                        match &self.pgstac {
                            Some(p) => {
                                let seq = self.seq.unwrap_or_default();
                                pgstac::rows::write_item(&mut out, seq, &fields, &text, p)?
                            }
                            None => rows::write_item(&mut out, self.seq, &fields, &text),
                        }
                        Ok(fields)
                    });
                    match written {
                        Ok(fields) => {
                            if !self.totals.collections.contains(fields.collection.as_ref()) {
                                self.totals
                                    .collections
                                    .insert(fields.collection.to_string());
                            }
                        }
                        Err(e) => {
                            turned_away.push(TurnedAway::invalid(i, e, text));
                            continue;
                        }
                    }
                }
                Kind::Collections => match check_collection(&text) {
                    Ok(id) => {
                        match &self.pgstac {
                            Some(_) => pgstac::rows::write_collection(
                                &mut out,
                                self.seq.unwrap_or_default(),
                                &id,
                                &text,
                            ),
                            None => rows::write_collection(&mut out, self.seq, &id, &text),
                        }
                        self.totals.collections.insert(id.into_owned());
                    }
                    Err(e) => {
                        turned_away.push(TurnedAway::invalid(i, e, text));
                        continue;
                    }
                },
            }
            if let Some(seq) = &mut self.seq {
                *seq += 1;
            }
            self.totals.rows += 1;
        }
        turned_away.sort_by_key(|t| t.index);
        for t in turned_away {
            let stage = match &t.plugin {
                Some(p) => Stage::Plugin(p),
                None => Stage::Validation,
            };
            self.reject(origin(t.index), &t.record, t.id, stage, t.reason)?;
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
        stage: Stage<'_>,
        reason: String,
    ) -> Result<(), LoadError> {
        self.totals.rejected += 1;
        let what = self.kind.singular();
        match (&mut self.rejects, stage) {
            (Some(w), Stage::Validation) => {
                w.write(&at, id.as_deref(), "validation", &reason, record)
            }
            (Some(w), Stage::Plugin(p)) => {
                w.write(&at, id.as_deref(), &format!("plugin {p}"), &reason, record)
            }
            (None, stage) => Err(LoadError::Record(Box::new(RecordError {
                at,
                what,
                id,
                plugin: match stage {
                    Stage::Validation => None,
                    Stage::Plugin(p) => Some(p.to_string()),
                },
                reason,
            }))),
        }
    }
}

/// The `id` of a record, if it has a string one (for messages).
fn item_id(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<String>,
    }
    serde_json::from_str::<Id>(text).ok().and_then(|i| i.id)
}
