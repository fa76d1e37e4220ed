//! `status`: where each part of a stream is, and the lag in bytes and seconds.
//!
//! - `received`: every transaction committing before it is in the spool;
//! - `applied`: the end LSN of the last transaction the target has (its
//!   origin's progress), or, when apply has caught up with the spool, the
//!   spool's position (nothing is waiting);
//! - lag in bytes: WAL between the source's current position and those;
//! - lag in seconds: how long the oldest spooled, unapplied transaction has
//!   waited since its commit; with nothing waiting and receive not running,
//!   how long since the spool was last complete.

use serde::Serialize;

use super::dir::StreamDir;
use super::lsn::Lsn;
use super::{StreamError, connect};
use crate::db::Dsn;

/// A stream's state.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub dir: String,
    pub slot: String,
    pub origin: String,
    pub source: String,
    pub target: String,
    /// The source's current WAL position (when reachable).
    pub source_lsn: Option<Lsn>,
    pub slot_state: Option<SlotState>,
    pub received: Lsn,
    /// The origin's progress on the target (when reachable).
    pub origin_lsn: Option<Lsn>,
    pub applied: Lsn,
    pub endpos: Option<Lsn>,
    pub receive_lag_bytes: Option<u64>,
    pub apply_lag_bytes: u64,
    pub lag_bytes: Option<u64>,
    pub lag_seconds: f64,
    pub spool_bytes: u64,
    pub spool_segments: usize,
    pub transactions_applied: u64,
    pub changes_applied: u64,
    /// Problems reaching either side.
    pub errors: Vec<String>,
}

/// The slot as the source sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SlotState {
    pub confirmed_flush: Lsn,
    pub restart_lsn: Lsn,
    /// WAL the server keeps for the slot.
    pub retained_bytes: u64,
    /// A receiver is connected.
    pub active: bool,
}

/// Reads the stream's state; a side that cannot be reached is reported, not fatal.
pub async fn status(
    dir: &StreamDir,
    source: Option<&Dsn>,
    target: Option<&Dsn>,
) -> Result<Status, StreamError> {
    let cfg = dir.config()?;
    let received_state = dir.receive_state()?;
    let apply_state = dir.apply_state()?;
    let sentinel = dir.sentinel()?;
    let mut errors = Vec::new();
    let (mut source_lsn, mut slot_state) = (None, None);
    if let Some(src) = source {
        match slot(src, &cfg.slot).await {
            Ok((now, s)) => {
                source_lsn = Some(now);
                slot_state = s;
                if slot_state.is_none() {
                    errors.push(format!("the source has no slot {}", cfg.slot));
                }
            }
            Err(e) => errors.push(format!("source: {e}")),
        }
    }
    let mut origin_lsn = None;
    if let Some(tgt) = target {
        match origin(tgt, &cfg.origin).await {
            Ok(Some(l)) => origin_lsn = Some(l),
            Ok(None) => errors.push(format!("the target has no origin {}", cfg.origin)),
            Err(e) => errors.push(format!("target: {e}")),
        }
    }
    let received = received_state.received.max(cfg.start_lsn);
    let progress = origin_lsn.unwrap_or(apply_state.applied).max(cfg.start_lsn);
    // Nothing waits in the spool once apply caught up with it.
    let oldest_waiting = pending(dir, progress);
    let applied = if oldest_waiting.is_some() {
        progress
    } else {
        progress.max(received)
    };
    let now_lsn = source_lsn.map(|l| l.max(received));
    let receiving = slot_state.as_ref().is_some_and(|s| s.active);
    let lag_seconds = match oldest_waiting {
        // The oldest spooled transaction not applied yet: how long it has waited.
        Some(t) => commit_age(&t).unwrap_or(0.0),
        // Nothing spooled waits; with receive down, the source may have
        // committed anything since the spool was last complete.
        None if !receiving && now_lsn.is_some_and(|n| n > received) && received_state.at > 0.0 => {
            (super::dir::now() - received_state.at).max(0.0)
        }
        None => 0.0,
    };
    let (spool_bytes, spool_segments) = spool_size(dir);
    Ok(Status {
        dir: dir.root().display().to_string(),
        slot: cfg.slot,
        origin: cfg.origin,
        source: cfg.source.shown,
        target: cfg.target,
        source_lsn,
        slot_state,
        received,
        origin_lsn,
        applied,
        endpos: sentinel.endpos,
        receive_lag_bytes: now_lsn.map(|n| n.bytes_since(received)),
        apply_lag_bytes: received.bytes_since(applied),
        lag_bytes: now_lsn.map(|n| n.bytes_since(applied)),
        lag_seconds,
        spool_bytes,
        spool_segments,
        transactions_applied: apply_state.transactions,
        changes_applied: apply_state.changes,
        errors,
    })
}

async fn slot(source: &Dsn, name: &str) -> Result<(Lsn, Option<SlotState>), StreamError> {
    let c = connect(source, "source").await?;
    let now: String = c
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .map_err(|e| StreamError::db("source", "reading its WAL position", &e))?
        .get(0);
    let now: Lsn = now.parse().unwrap_or_default();
    let row = c
        .query_opt(
            "SELECT coalesce(confirmed_flush_lsn, '0/0')::text, coalesce(restart_lsn, '0/0')::text, active \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .map_err(|e| StreamError::db("source", "reading the slot", &e))?;
    Ok((
        now,
        row.map(|r| {
            let confirmed: Lsn = r.get::<_, String>(0).parse().unwrap_or_default();
            let restart: Lsn = r.get::<_, String>(1).parse().unwrap_or_default();
            SlotState {
                confirmed_flush: confirmed,
                restart_lsn: restart,
                retained_bytes: now.bytes_since(restart),
                active: r.get(2),
            }
        }),
    ))
}

async fn origin(target: &Dsn, name: &str) -> Result<Option<Lsn>, StreamError> {
    let c = connect(target, "target").await?;
    let row = c
        .query_opt(
            "SELECT coalesce(pg_replication_origin_progress(roname, false), '0/0')::text \
             FROM pg_replication_origin WHERE roname = $1",
            &[&name],
        )
        .await
        .map_err(|e| StreamError::db("target", "reading the origin", &e))?;
    Ok(row.map(|r| r.get::<_, String>(0).parse().unwrap_or_default()))
}

/// The commit time of the first spooled transaction ending after `applied`, if any.
fn pending(dir: &StreamDir, applied: Lsn) -> Option<String> {
    let mut r = super::spool::SpoolReader::open(dir.spool().as_path(), applied).ok()?;
    let mut line = Vec::new();
    while let Ok(true) = r.next_line(&mut line) {
        if super::wal2json::action_of(&line) == Some(b'B')
            && let Ok(super::wal2json::Message::Begin(m)) =
                super::wal2json::parse(std::str::from_utf8(&line).unwrap_or(""))
            && m.end_lsn > applied
        {
            return Some(m.timestamp.into_owned());
        }
    }
    None
}

fn spool_size(dir: &StreamDir) -> (u64, usize) {
    let segs = super::spool::segments(&dir.spool()).unwrap_or_default();
    let bytes = segs
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    (bytes, segs.len())
}

/// Seconds since a commit time printed by the server (`2024-05-01 10:00:00.123+00`).
fn commit_age(text: &str) -> Option<f64> {
    // The walsender runs with TimeZone=UTC: the offset is always +00.
    let rfc = text.replacen(' ', "T", 1).replace("+00", "Z");
    let micros = crate::stac::time::parse_rfc3339(&rfc).ok()?;
    Some((super::dir::now() - micros as f64 / 1e6).max(0.0))
}
