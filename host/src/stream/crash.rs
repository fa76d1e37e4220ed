//! Crash points, for the tests that prove a `kill -9` at any stage loses
//! and repeats nothing: `HOST_STREAM_CRASH=POINT:N` kills the process with
//! SIGKILL (no cleanup, no flush, as `kill -9` from outside) the Nth time
//! it passes `POINT`. Unset, a point costs one relaxed atomic load.
//!
//! Points: `receive-written` (a message appended, not yet synced),
//! `receive-synced` (synced, the slot not yet told), `apply-sent` (a
//! statement sent inside an open target transaction), `apply-committed`
//! (the target committed, nothing after it done yet).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
static PASSED: AtomicU64 = AtomicU64::new(0);

/// Passes a crash point.
pub fn point(name: &str) {
    let armed = ARMED.get_or_init(|| {
        let v = std::env::var("HOST_STREAM_CRASH").ok()?;
        let (p, n) = v.rsplit_once(':')?;
        Some((p.to_string(), n.parse().ok()?))
    });
    let Some((p, n)) = armed else { return };
    if p != name {
        return;
    }
    if PASSED.fetch_add(1, Ordering::Relaxed) + 1 >= *n {
        eprintln!("crash point {name} reached: killing this process");
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}
