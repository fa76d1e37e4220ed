//! The plugin sandbox from Python: `sandbox={...}` on a load, with the keys
//! a policy's `limits` uses (`memory`, `time`, `fuel`, `output`) plus where
//! plugins come from (`max_size`, `fetch_timeout`) and the compile cache
//! (`cache`: a directory, or `False` for none). Sizes and durations are the
//! CLI's text (`"64MiB"`, `"1s"`) or numbers (bytes, seconds).

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict};

use host::fetch::Bounds;
use host::plugin::{CompileCache, LimitSource, Limits, parse_bytes, parse_duration};

const KEYS: &str = "memory, time, fuel, output, max_size, fetch_timeout, cache";

/// What a load's plugins run within, and where they come from.
pub struct Sandbox {
    pub limits: Limits,
    pub bounds: Bounds,
    /// `None`: compile every time.
    pub cache: Option<PathBuf>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox {
            limits: Limits {
                set_by: LimitSource::Sandbox,
                ..Limits::default()
            },
            bounds: Bounds::default(),
            cache: CompileCache::default_dir(),
        }
    }
}

impl Sandbox {
    pub fn from_py(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Sandbox> {
        let mut s = Sandbox::default();
        let Some(obj) = obj else { return Ok(s) };
        let d = obj.cast::<PyDict>().map_err(|_| {
            PyTypeError::new_err(format!("sandbox: expected a dict with keys {KEYS}"))
        })?;
        for (k, v) in d.iter() {
            let key: String = k.extract()?;
            let bad = |m: String| PyValueError::new_err(format!("sandbox[{key:?}]: {m}"));
            match key.as_str() {
                "memory" => s.limits.memory_bytes = bytes(&v).map_err(bad)?,
                "time" => s.limits.call_time = duration(&v).map_err(bad)?,
                "fuel" => s.limits.fuel = Some(count(&v).map_err(bad)?),
                "output" => s.limits.output_bytes = bytes(&v).map_err(bad)? as usize,
                "max_size" => s.bounds.max_bytes = bytes(&v).map_err(bad)?,
                "fetch_timeout" => s.bounds.timeout = duration(&v).map_err(bad)?,
                "cache" => {
                    s.cache = if v.is_instance_of::<PyBool>() {
                        if v.extract::<bool>()? {
                            CompileCache::default_dir()
                        } else {
                            None
                        }
                    } else {
                        Some(
                            v.extract::<PathBuf>()
                                .map_err(|_| bad("expected a directory or False".into()))?,
                        )
                    }
                }
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "sandbox: unknown key {key:?}; the keys are {KEYS}"
                    )));
                }
            }
        }
        Ok(s)
    }
}

/// A whole number: `fuel`.
fn count(v: &Bound<'_, PyAny>) -> Result<u64, String> {
    if v.is_instance_of::<PyBool>() {
        return Err("expected a whole number, not a bool".into());
    }
    v.extract::<u64>()
        .map_err(|_| "expected a whole number ≥ 0".to_string())
}

/// Bytes: a number, or text such as `"64MiB"`.
fn bytes(v: &Bound<'_, PyAny>) -> Result<u64, String> {
    match v.extract::<String>() {
        Ok(text) => parse_bytes(&text),
        Err(_) => {
            count(v).map_err(|_| "expected bytes (a number) or a size such as \"64MiB\"".into())
        }
    }
}

/// A duration: seconds as a number, or text such as `"1s"`, `"250ms"`.
fn duration(v: &Bound<'_, PyAny>) -> Result<Duration, String> {
    if let Ok(text) = v.extract::<String>() {
        return parse_duration(&text);
    }
    if v.is_instance_of::<PyBool>() {
        return Err("expected seconds or a duration such as \"1s\", not a bool".into());
    }
    let secs: f64 = v
        .extract()
        .map_err(|_| "expected seconds (a number) or a duration such as \"1s\"".to_string())?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{secs} seconds: {e}"))
}
