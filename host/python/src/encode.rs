//! Python values as JSON text, written in Rust: what
//! `json.dumps(value, separators=(",", ":"), ensure_ascii=False,
//! allow_nan=False)` writes, byte for byte, for the plain values a STAC
//! record is made of (exact `dict` with `str` keys, `list`, `tuple`, `str`,
//! `int`, `float`, `bool`, `None`). Anything else — a subclass, another
//! type, a non-string key, NaN, a string that is not Unicode text, nesting
//! deeper than [`MAX_DEPTH`] (a dict that contains itself) — is
//! [`Unsupported`], and the caller hands the record to `json.dumps` itself,
//! which encodes it or raises its own error. Loading from Python pulls and
//! encodes every record under the GIL; `json.dumps` was about a quarter of
//! that work (docs/benchmarks.md, issue 17).

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Nesting deeper than this goes to `json.dumps` (which reports a cycle).
const MAX_DEPTH: usize = 256;

/// The value is not one this encoder writes; `json.dumps` decides.
#[derive(Debug)]
pub struct Unsupported;

impl From<PyErr> for Unsupported {
    fn from(_: PyErr) -> Unsupported {
        Unsupported
    }
}

/// Appends `value` as JSON to `out`; on [`Unsupported`], `out` holds a
/// partial text the caller discards.
pub fn write(value: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> Result<(), Unsupported> {
    write_value(value, out, 0)
}

fn write_value(
    value: &Bound<'_, PyAny>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Unsupported> {
    if depth > MAX_DEPTH {
        return Err(Unsupported);
    }
    if let Ok(s) = value.cast_exact::<PyString>() {
        write_str(s.to_str()?, out);
    } else if let Ok(d) = value.cast_exact::<PyDict>() {
        out.push(b'{');
        for (i, (k, v)) in d.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let k = k.cast_exact::<PyString>().map_err(|_| Unsupported)?;
            write_str(k.to_str()?, out);
            out.push(b':');
            write_value(&v, out, depth + 1)?;
        }
        out.push(b'}');
    } else if let Ok(f) = value.cast_exact::<PyFloat>() {
        if !f.value().is_finite() {
            return Err(Unsupported);
        }
        // float.__repr__, as json.dumps writes floats.
        out.extend_from_slice(f.repr()?.to_str()?.as_bytes());
    } else if let Ok(b) = value.cast_exact::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if value.cast_exact::<PyInt>().is_ok() {
        match value.extract::<i64>() {
            Ok(n) => out.extend_from_slice(n.to_string().as_bytes()),
            // Past 64 bits: int.__repr__, as json.dumps writes ints.
            Err(_) => out.extend_from_slice(value.repr()?.to_str()?.as_bytes()),
        }
    } else if value.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(l) = value.cast_exact::<PyList>() {
        out.push(b'[');
        for (i, v) in l.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_value(&v, out, depth + 1)?;
        }
        out.push(b']');
    } else if let Ok(t) = value.cast_exact::<PyTuple>() {
        out.push(b'[');
        for (i, v) in t.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_value(&v, out, depth + 1)?;
        }
        out.push(b']');
    } else {
        return Err(Unsupported);
    }
    Ok(())
}

/// A JSON string as json's `py_encode_basestring` writes it: `"` and `\`
/// escaped, `\b \f \n \r \t` short, other control characters `\u00xx`,
/// everything else as it is.
fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}
