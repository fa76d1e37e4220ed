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
        write_float(f.value(), out);
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

/// A finite float as `float.__repr__` (so `json.dumps`) writes it: the
/// shortest digits that read back as the same double, laid out as
/// CPython's `PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0)` does —
/// positional when the decimal point falls within `-4 < decpt <= 16`
/// (`0.0001`, `1e+16`), with `.0` on a whole number, else `d.ddde±XX`.
/// Calling `float.__repr__` per float was a tenth of a Python load's CPU.
fn write_float(x: f64, out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Ryu writes the same digits as Python's dtoa mode 0: the shortest that
    // round-trip, the closest of those, an exact tie to the even digit
    // (std's `{:e}` rounds such a tie up: `654980485815801.25` is
    // `…801.2` to Python, `…801.3` to std). Only its layout differs, so
    // take the digits and the point's place from it and lay them out anew.
    let mut ryu = ryu::Buffer::new();
    let text = ryu.format_finite(x).as_bytes();
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let (mantissa, exponent) = match text.iter().position(|&b| b == b'e') {
        Some(e) => (&text[..e], &text[e + 1..]),
        None => (text, &b"0"[..]),
    };
    let exponent: i32 = std::str::from_utf8(exponent)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("ryu writes a decimal exponent");
    // `digits` without leading or trailing zeros, the value being
    // 0.DIGITS × 10^decpt.
    let mut digits = [0u8; 24];
    let mut n = 0;
    let mut point = None;
    for &b in mantissa {
        if b == b'.' {
            point = Some(n);
        } else if n < digits.len() {
            digits[n] = b;
            n += 1;
        }
    }
    let mut decpt = i32::try_from(point.unwrap_or(n)).expect("a few digits") + exponent;
    let mut digits = &digits[..n];
    while let [b'0', rest @ ..] = digits {
        digits = rest;
        decpt -= 1;
    }
    while let [rest @ .., b'0'] = digits {
        digits = rest;
    }
    if negative {
        out.push(b'-');
    }
    if digits.is_empty() {
        out.extend_from_slice(b"0.0");
    } else if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(
                b'0',
                usize::try_from(-decpt).unwrap_or(0),
            ));
            out.extend_from_slice(digits);
        } else {
            let point = usize::try_from(decpt).unwrap_or(0);
            if point < digits.len() {
                out.extend_from_slice(&digits[..point]);
                out.push(b'.');
                out.extend_from_slice(&digits[point..]);
            } else {
                out.extend_from_slice(digits);
                out.extend(std::iter::repeat_n(b'0', point - digits.len()));
                out.extend_from_slice(b".0");
            }
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        let exponent = decpt - 1;
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.unsigned_abs());
    }
}

/// What each byte becomes in a JSON string: 0 for itself, `u` for
/// `\u00xx`, else the letter after the backslash.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table
};

/// A JSON string as json's `py_encode_basestring` writes it: `"` and `\`
/// escaped, `\b \f \n \r \t` short, other control characters `\u00xx`,
/// everything else as it is. One table lookup per byte: the plain runs
/// between escapes are copied whole.
fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        out.push(b'\\');
        out.push(escape);
        if escape == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}
