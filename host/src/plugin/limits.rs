//! Resource limits for one plugin instance, and how they map onto wasmtime.

use std::time::Duration;

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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            call_time: Duration::from_secs(1),
            fuel: None,
            output_bytes: 16 << 10,
            max_instances: 128,
        }
    }
}

impl Limits {
    /// Epoch ticks a call may run before it is interrupted.
    pub fn deadline_ticks(&self) -> u64 {
        let tick = EPOCH_TICK.as_nanos();
        (self.call_time.as_nanos().div_ceil(tick) as u64).max(1)
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
