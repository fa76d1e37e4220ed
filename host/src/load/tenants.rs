//! A load shared by several tenants of a policy (`load items --policy P`
//! without `--tenant`): each item goes to the one tenant whose scope holds
//! its collection, and through that tenant's chain, in that tenant's sandbox
//! (its own runtime and limits), on a thread of its own.
//!
//! ```text
//!                       ┌─► lane `a` (a's chain, a's limits) ─┐
//! batches ─► dispatcher ┼─► lane `b` (b's chain, b's limits) ─┼─► collector ─► COPY
//!           route by    └───────── turned away (scope) ───────┘   rejects, totals
//!           collection
//! ```
//!
//! A lane that is slow (a plugin looping to its time limit) holds up only its
//! own items until its queue of [`LANE_QUEUE`] batches is full; the reader
//! then waits for it, which is what keeps memory bounded. What bounds that
//! wait is the tenant's own limits: the time of a call and the CPU time of
//! the run (`cpu`), past which its remaining items are turned away unrun.
//!
//! Every row carries its record's place in the whole load (its `seq`), so
//! "the later copy of an id wins" holds whichever lane wrote it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use super::LoadError;
use super::Origin;
use super::reject::RejectWriter;
use super::worker::{
    Audited, Batch, BatchFate, Chunk, RowWriter, Stage, Totals, TurnedAway, Worker, collection_of,
    decode, item_id, reject, transform,
};
use crate::catalog::KeyOrder;
use crate::plugin::chain::ItemChain;
use crate::plugin::{Fault, LimitHit, Plugin, PluginError, Usage};
use crate::policy::{DataScope, Scope, TenantScope};

/// Batches queued for one tenant's lane.
const LANE_QUEUE: usize = 2;

/// One tenant's part of a shared load.
#[derive(Debug)]
pub struct TenantLane {
    pub tenant: String,
    pub scope: Scope,
    /// Its chain, loaded by its own runtime (its limits).
    pub plugins: Vec<Plugin>,
    /// The CPU time its plugins may use in this load.
    pub cpu: Option<Duration>,
}

/// What one tenant's part of a load did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TenantSummary {
    pub tenant: String,
    /// Items that went to the tenant.
    pub read: u64,
    /// Rows staged for it (the merge may still skip some, by the method).
    pub written: u64,
    pub dropped: u64,
    pub rejected: u64,
    /// Batches its plugins failed on.
    pub plugin_failures: u64,
    /// CPU time its plugins used.
    pub cpu_seconds: f64,
    pub limit_hits: LimitHits,
}

/// How often a tenant's plugins ran into each limit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LimitHits {
    pub time: u64,
    pub memory: u64,
    pub fuel: u64,
    /// Batches turned away unrun: the tenant had used its CPU time for the run.
    pub cpu: u64,
}

impl TenantSummary {
    /// One line for the end of the load.
    pub fn line(&self) -> String {
        let h = &self.limit_hits;
        let mut s = format!(
            "  tenant {}: {} read, {} written, {} dropped, {} rejected, {} failed plugin batches, \
             {:.2}s plugin CPU",
            self.tenant,
            self.read,
            self.written,
            self.dropped,
            self.rejected,
            self.plugin_failures,
            self.cpu_seconds
        );
        let hits: Vec<String> = [
            ("time", h.time),
            ("memory", h.memory),
            ("fuel", h.fuel),
            ("cpu", h.cpu),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(what, n)| format!("{what} {n}"))
        .collect();
        if !hits.is_empty() {
            s += &format!(", limit hits: {}", hits.join(", "));
        }
        s
    }
}

/// Records of one batch for one lane.
struct Part {
    source: Arc<str>,
    places: Arc<[(u64, Option<u64>)]>,
    base: Option<u64>,
    texts: Vec<(usize, String)>,
}

/// What became of some records of a batch, for the collector.
struct Piece {
    /// The lane, or `None` for records no tenant took.
    lane: Option<usize>,
    source: Arc<str>,
    places: Arc<[(u64, Option<u64>)]>,
    read: u64,
    out: Vec<u8>,
    rows: u64,
    dropped: u64,
    turned_away: Vec<TurnedAway>,
    failure: Option<PluginError>,
    collections: BTreeSet<String>,
    order: KeyOrder,
    cpu: Duration,
    cpu_exhausted: bool,
    usage: Usage,
}

impl Piece {
    fn new(lane: Option<usize>, part: &Part) -> Piece {
        Piece {
            lane,
            source: part.source.clone(),
            places: part.places.clone(),
            read: part.texts.len() as u64,
            out: Vec::new(),
            rows: 0,
            dropped: 0,
            turned_away: Vec::new(),
            failure: None,
            collections: BTreeSet::new(),
            order: KeyOrder::default(),
            cpu: Duration::ZERO,
            cpu_exhausted: false,
            usage: Usage::default(),
        }
    }
}

impl Worker {
    /// Processes batches until the input ends, each item in its tenant's lane.
    pub fn run_tenants(
        mut self,
        lanes: &[TenantLane],
        batches: Receiver<Batch>,
        chunks: tokio::sync::mpsc::Sender<Chunk>,
    ) -> Result<Totals, LoadError> {
        let scopes: Vec<DataScope> = lanes
            .iter()
            .map(|l| {
                DataScope::Tenant(TenantScope {
                    tenant: l.tenant.clone(),
                    scope: l.scope.clone(),
                })
            })
            .collect();
        let (piece_tx, piece_rx) = sync_channel::<Piece>(2 * lanes.len() + 2);
        let rejects = self.rejects.take();
        let audits: Option<Vec<Audited>> = self.audit.as_ref().map(|a| {
            lanes
                .iter()
                .map(|l| a.for_tenant(&l.tenant, &l.plugins))
                .collect()
        });
        let this = &self;
        let (lane_results, dispatched, collected) = std::thread::scope(|s| {
            let mut senders = Vec::with_capacity(lanes.len());
            let mut handles = Vec::with_capacity(lanes.len());
            for (k, lane) in lanes.iter().enumerate() {
                let (tx, rx) = sync_channel::<Part>(LANE_QUEUE);
                senders.push(tx);
                let pieces = piece_tx.clone();
                let writer = RowWriter {
                    kind: this.kind,
                    known: &this.known,
                    collection: this.collection.as_deref(),
                    strict_bbox: this.strict_bbox,
                    scope: &scopes[k],
                    rows: &this.rows,
                };
                let spawned = std::thread::Builder::new()
                    .name(format!("load-tenant-{k}"))
                    .spawn_scoped(s, move || run_lane(k, lane, &writer, rx, pieces));
                match spawned {
                    Ok(h) => handles.push(h),
                    Err(e) => {
                        return (
                            vec![Err(LoadError::Source(format!(
                                "cannot start tenant `{}`'s thread: {e}",
                                lane.tenant
                            )))],
                            Err(LoadError::Cancelled),
                            Ok((Totals::default(), None)),
                        );
                    }
                }
            }
            let kind = this.kind;
            let collector =
                s.spawn(move || collect(kind, lanes, rejects, audits, piece_rx, chunks));
            let dispatched = this.dispatch(lanes, batches, &senders, &piece_tx);
            drop(senders);
            drop(piece_tx);
            let lane_results: Vec<Result<(), LoadError>> = handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(panicked("a tenant"))))
                .collect();
            let collected = collector
                .join()
                .unwrap_or_else(|_| Err(panicked("the collector")));
            (lane_results, dispatched, collected)
        });
        // The most telling error: a stage's own error beats the cancellations it caused.
        let mut errors: Vec<LoadError> = lane_results.into_iter().filter_map(Result::err).collect();
        errors.extend(dispatched.err());
        let collected = match collected {
            Ok(c) => Some(c),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        if let Some(k) = errors
            .iter()
            .position(|e| !matches!(e, LoadError::Cancelled))
        {
            return Err(errors.swap_remove(k));
        }
        if let Some(e) = errors.pop() {
            return Err(e);
        }
        let Some((totals, rejects)) = collected else {
            return Err(LoadError::Cancelled);
        };
        if let Some(r) = rejects {
            r.finish()?;
        }
        Ok(totals)
    }

    /// Sends each item to its tenant's lane; what no tenant may take goes
    /// straight to the collector.
    fn dispatch(
        &self,
        lanes: &[TenantLane],
        batches: Receiver<Batch>,
        senders: &[SyncSender<Part>],
        pieces: &SyncSender<Piece>,
    ) -> Result<(), LoadError> {
        let mut seq = self.seq;
        for batch in batches {
            let n = batch.inputs.len() as u64;
            let places: Arc<[(u64, Option<u64>)]> =
                batch.inputs.iter().map(|i| (i.line, i.index)).collect();
            let (texts, turned_away, _) = decode(batch.inputs);
            let base = seq;
            if let Some(s) = &mut seq {
                *s += n;
            }
            let mut parts: Vec<Vec<(usize, String)>> = vec![Vec::new(); lanes.len()];
            let mut away = Piece::new(
                None,
                &Part {
                    source: batch.source.clone(),
                    places: places.clone(),
                    base,
                    texts: Vec::new(),
                },
            );
            away.turned_away = turned_away;
            for (i, text) in texts {
                let named = collection_of(&text);
                let collection = named.as_deref().or(self.collection.as_deref());
                let owners: Vec<usize> = match collection {
                    None => Vec::new(),
                    Some(c) => (0..lanes.len())
                        .filter(|&k| lanes[k].scope.holds_collection(c))
                        .collect(),
                };
                if let [k] = owners[..] {
                    parts[k].push((i, text));
                    continue;
                }
                let reason = match (collection, &owners[..]) {
                    (None, _) => "the item names no collection, so no tenant may take it".into(),
                    (Some(c), []) => format!("collection {c:?} is in no tenant's scope"),
                    (Some(c), many) => format!(
                        "collection {c:?} is in the scope of tenants {}: it goes to none of them",
                        many.iter()
                            .map(|&k| format!("`{}`", lanes[k].tenant))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                };
                away.turned_away.push(TurnedAway {
                    index: i,
                    id: item_id(&text),
                    by: Stage::Scope,
                    reason: reason.into(),
                    record: text,
                });
            }
            let routed: u64 = parts.iter().map(|p| p.len() as u64).sum();
            away.read = n - routed;
            if pieces.send(away).is_err() {
                return Err(LoadError::Cancelled);
            }
            for (k, texts) in parts.into_iter().enumerate() {
                if texts.is_empty() {
                    continue;
                }
                let part = Part {
                    source: batch.source.clone(),
                    places: places.clone(),
                    base,
                    texts,
                };
                if senders[k].send(part).is_err() {
                    return Err(LoadError::Cancelled);
                }
            }
        }
        Ok(())
    }
}

/// One tenant's lane: its chain on its own thread, within its CPU time.
fn run_lane(
    k: usize,
    lane: &TenantLane,
    writer: &RowWriter<'_>,
    parts: Receiver<Part>,
    pieces: SyncSender<Piece>,
) -> Result<(), LoadError> {
    let mut chain = if lane.plugins.is_empty() {
        None
    } else {
        Some(ItemChain::new(&lane.plugins)?)
    };
    let mut used = Duration::ZERO;
    for mut part in parts {
        let mut piece = Piece::new(Some(k), &part);
        let texts = std::mem::take(&mut part.texts);
        match lane.cpu.filter(|cap| used >= *cap) {
            Some(cap) => {
                piece.cpu_exhausted = true;
                let reason: Arc<str> = format!(
                    "tenant `{}` has used the {cap:?} of plugin CPU time its limits give it \
                     for this load; its items are no longer run",
                    lane.tenant
                )
                .into();
                piece.turned_away = texts
                    .into_iter()
                    .map(|(i, text)| TurnedAway {
                        index: i,
                        id: item_id(&text),
                        by: Stage::Limit,
                        reason: reason.clone(),
                        record: text,
                    })
                    .collect();
            }
            None => {
                let total = texts.iter().map(|(_, t)| t.len()).sum();
                let done = transform(chain.as_mut(), writer, texts, part.base, total);
                used += done.plugin_cpu;
                piece.cpu = done.plugin_cpu;
                piece.out = done.out;
                piece.rows = done.rows;
                piece.dropped = done.dropped;
                piece.turned_away = done.turned_away;
                piece.failure = done.failure;
                piece.collections = done.collections;
                piece.order = done.order;
                piece.usage = done.usage;
            }
        }
        if pieces.send(piece).is_err() {
            return Err(LoadError::Cancelled);
        }
    }
    Ok(())
}

/// Gathers the lanes' pieces: rows on to COPY, rejects to the reject file,
/// counts per tenant, a line per batch to the audit log.
fn collect(
    kind: super::Kind,
    lanes: &[TenantLane],
    mut rejects: Option<RejectWriter>,
    mut audits: Option<Vec<Audited>>,
    pieces: Receiver<Piece>,
    chunks: tokio::sync::mpsc::Sender<Chunk>,
) -> Result<(Totals, Option<RejectWriter>), LoadError> {
    let mut totals = Totals::default();
    let mut tenants: Vec<TenantSummary> = lanes
        .iter()
        .map(|l| TenantSummary {
            tenant: l.tenant.clone(),
            ..TenantSummary::default()
        })
        .collect();
    for mut piece in pieces {
        totals.read += piece.read;
        totals.rows += piece.rows;
        totals.dropped += piece.dropped;
        totals.rejected += piece.turned_away.len() as u64;
        totals.add_collections(piece.collections.clone());
        let order = std::mem::take(&mut piece.order);
        totals.order.append(order.clone());
        if let (Some(k), Some(audits)) = (piece.lane, &mut audits) {
            audits[k].batch(BatchFate {
                source: &piece.source,
                read: piece.read,
                rows: piece.rows,
                dropped: piece.dropped,
                rejected: piece.turned_away.len() as u64,
                cpu: piece.cpu,
                usage: piece.usage,
                failure: piece.failure.as_ref(),
                cpu_exhausted: piece.cpu_exhausted,
            })?;
        }
        if let Some(k) = piece.lane {
            let t = &mut tenants[k];
            t.read += piece.read;
            t.written += piece.rows;
            t.dropped += piece.dropped;
            t.rejected += piece.turned_away.len() as u64;
            t.cpu_seconds += piece.cpu.as_secs_f64();
            t.limit_hits.cpu += u64::from(piece.cpu_exhausted);
            if let Some(failure) = &piece.failure {
                t.plugin_failures += 1;
                match failure.fault() {
                    Some(Fault::Limit(LimitHit::Time(_))) => t.limit_hits.time += 1,
                    Some(Fault::Limit(LimitHit::Memory(_))) => t.limit_hits.memory += 1,
                    Some(Fault::Limit(LimitHit::Fuel(_))) => t.limit_hits.fuel += 1,
                    _ => {}
                }
            }
        }
        if let Some(failure) = piece.failure.take() {
            totals.plugin_failures += 1;
            if rejects.is_none() {
                return Err(LoadError::Plugin(failure));
            }
            let tenant = piece.lane.map_or("", |k| lanes[k].tenant.as_str());
            tracing::error!("tenant `{tenant}`: {failure}; its records are in the reject file");
        }
        piece.turned_away.sort_by_key(|t| t.index);
        for t in piece.turned_away {
            let at = Origin {
                source: piece.source.to_string(),
                line: piece.places[t.index].0,
                index: piece.places[t.index].1,
            };
            reject(&mut rejects, kind, at, t)?;
        }
        let chunk = Chunk {
            bytes: Bytes::from(piece.out),
            read: piece.read,
            collections: piece.collections,
            order,
        };
        if chunks.blocking_send(chunk).is_err() {
            return Err(LoadError::Cancelled);
        }
    }
    totals.tenants = tenants;
    Ok((totals, rejects))
}

fn panicked(what: &str) -> LoadError {
    LoadError::Source(format!("{what} thread panicked"))
}
