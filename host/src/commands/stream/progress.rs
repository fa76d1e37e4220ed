//! Progress of a running stream: one live line on a terminal (changes/s,
//! positions, lag behind the source), a log line every half minute otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::stream::Lsn;
use crate::stream::apply::ApplyCounters;
use crate::stream::receive::ReceiveCounters;

/// A running progress display.
pub struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Starts showing progress (nothing when `enabled` is false, e.g. `--json`).
    pub fn start(
        enabled: bool,
        receive: Option<Arc<ReceiveCounters>>,
        apply: Option<Arc<ApplyCounters>>,
        received: watch::Receiver<Lsn>,
    ) -> Progress {
        if !enabled {
            return Progress {
                task: None,
                bar: None,
            };
        }
        let tty = std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut last = (Instant::now(), 0u64, 0u64);
            let mut logged = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let msgs = receive.as_ref().map_or(0, |r| r.messages.load(Relaxed));
                let changes = apply.as_ref().map_or(0, |a| a.changes.load(Relaxed));
                let secs = last.0.elapsed().as_secs_f64().max(0.001);
                let (rate_r, rate_a) = (
                    (msgs - last.1) as f64 / secs,
                    (changes - last.2) as f64 / secs,
                );
                last = (Instant::now(), msgs, changes);
                let mut parts = Vec::new();
                let rx = *received.borrow();
                if let Some(r) = &receive {
                    let source = Lsn(r.source_lsn.load(Relaxed));
                    parts.push(format!(
                        "received {rx} ({} tx, {rate_r:.0} msg/s, source at {source}, {} behind)",
                        r.transactions.load(Relaxed),
                        human(source.bytes_since(rx))
                    ));
                }
                if let Some(a) = &apply {
                    let applied = Lsn(a.applied.load(Relaxed));
                    parts.push(format!(
                        "applied {applied} ({changes} changes, {rate_a:.0}/s, {} behind the spool)",
                        human(rx.bytes_since(applied))
                    ));
                }
                let line = parts.join(" · ");
                match &shown {
                    Some(b) => b.set_message(line),
                    None if logged.elapsed() >= Duration::from_secs(30) => {
                        tracing::info!("{line} after {:.0} s", started.elapsed().as_secs_f64());
                        logged = Instant::now();
                    }
                    None => {}
                }
            }
        });
        Progress {
            task: Some(task),
            bar,
        }
    }

    /// Stops and clears the display.
    pub fn finish(self) {
        if let Some(t) = self.task {
            t.abort();
        }
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// This process's peak resident memory (`VmHWM`), for the summaries: the
/// bound the stream promises whatever the transactions' sizes. `None` where
/// /proc is missing.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
