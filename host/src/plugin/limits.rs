//! Resource limits for one plugin instance, and how they map onto wasmtime.
//!
//! Everything a plugin can make the host do is bounded here: the time of a
//! call (epoch interruption, counted in wall-clock time however the plugin
//! spends it), its memory ([`MemoryCap`]), what one call may hand back to
//! the host ([`Limits::transfer_bytes`]) and the length of every message it
//! writes for people ([`MESSAGE_BYTES`]).

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// How often the epoch ticker thread advances the engine's epoch.
/// A deadline is honoured to within about one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to every plugin instance. One set per process: they shape
/// the engine (pooling slots, fuel metering), so they are fixed at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory one instance may grow to, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock budget of one batch call (enforced with epoch interruption).
    pub call_time: Duration,
    /// Optional instruction budget ("fuel") per batch call.
    pub fuel: Option<u64>,
    /// Bytes of stdout and of stderr kept per call; the rest is counted and dropped.
    pub output_bytes: usize,
    /// Most plugin instances alive at once in this process (pooling allocator slots).
    pub max_instances: u32,
    /// Who set these limits, for messages about them.
    pub set_by: super::LimitSource,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            call_time: Duration::from_secs(1),
            fuel: None,
            output_bytes: 16 << 10,
            max_instances: 128,
            set_by: super::LimitSource::Flags,
        }
    }
}

impl Limits {
    /// Epoch ticks a call may run before it is interrupted.
    pub fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_nanos();
        (self.call_time.as_nanos().div_ceil(tick) as u64).max(1)
    }

    /// Bytes one call may hand back to the host (strings and lists lifted out
    /// of the plugin's memory), enforced by wasmtime's hostcall fuel. An
    /// honest result is in the plugin's memory all at once, so it never
    /// exceeds the memory cap; only a plugin that returns the same bytes many
    /// times over (one string's address for every record) could, and it must
    /// not make the host hold more than it may hold itself.
    pub fn transfer_bytes(&self) -> usize {
        usize::try_from(self.memory_bytes).unwrap_or(usize::MAX)
    }
}

/// Longest text a plugin may hand the host for people to read (an error, a
/// reject reason, a refusal of its parameters); longer text is cut, saying
/// how much was left out. A reason is written once per rejected record, so
/// this also bounds the reject file.
pub const MESSAGE_BYTES: usize = 1024;

/// Longest name or version a plugin may report (they appear in every message).
pub const NAME_BYTES: usize = 64;

/// `text` cut to at most `max` bytes (at a character boundary), with a note
/// of how many bytes were left out. The long original is freed, not kept as
/// spare capacity.
pub fn cap_text(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes)", &text[..end], text.len() - end)
}

/// A plugin's linear memories together may not grow past `bytes`
/// (`--plugin-memory`): a component with two memories gets the cap once, not
/// once per memory. Hitting the cap traps the plugin with [`MemoryCapHit`],
/// which the host recognises by its type.
///
/// wasmtime asks before creating each memory (from 0 to its minimum) and
/// before each growth, so the sum of what it was granted is what the
/// instance holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemoryCap {
    pub(crate) bytes: usize,
    /// Bytes of linear memory the instance holds, all memories together.
    pub(crate) used: usize,
}

impl MemoryCap {
    pub(crate) fn new(bytes: usize) -> MemoryCap {
        MemoryCap { bytes, used: 0 }
    }
}

/// A plugin tried to grow its memory past the cap.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("memory would grow to {desired} bytes in all, past the cap of {cap} bytes")]
pub(crate) struct MemoryCapHit {
    pub(crate) desired: usize,
    pub(crate) cap: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used.saturating_add(desired.saturating_sub(current));
        if total > self.bytes {
            return Err(MemoryCapHit {
                desired: total,
                cap: self.bytes,
            }
            .into());
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The pooling allocator's table slots bound tables.
        Ok(true)
    }
}

/// Parses a byte size like `64MiB`, `512k`, `1G` or `1048576`.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a size (e.g. 64MiB, 512KiB, 1GiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit '{other}' in '{text}' (use KiB, MiB or GiB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size '{text}' is too large"))
}

/// Parses a duration like `1s`, `250ms`, `2.5s` or `1500us`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. 1s, 250ms)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" | "µs" => n / 1e6,
        "m" | "min" => n * 60.0,
        other => {
            return Err(format!(
                "unknown time unit '{other}' in '{text}' (use s, ms or us)"
            ));
        }
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("duration '{text}' must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_parse() {
        assert_eq!(parse_bytes("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("512k").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert!(parse_bytes("12 parsecs").is_err());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn text_is_cut_at_a_character_boundary_saying_how_much() {
        assert_eq!(cap_text("short".into(), 10), "short");
        assert_eq!(cap_text("aaaaaé".into(), 6), "aaaaa... (2 more bytes)");
        assert_eq!(cap_text("x".repeat(5000), 1024).len(), 1024 + 21);
    }

    #[test]
    fn deadline_rounds_up_to_whole_ticks() {
        let l = Limits {
            call_time: Duration::from_millis(15),
            ..Limits::default()
        };
        assert_eq!(l.deadline_ticks(), 2);
        let l = Limits {
            call_time: Duration::from_secs(1),
            ..Limits::default()
        };
        assert_eq!(l.deadline_ticks(), 100);
    }
}
