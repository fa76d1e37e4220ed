//! Numbers as pypgstac reads, compares and writes them, so that `host` and
//! pypgstac store the same rows for the same input and neither one's
//! `upsert` rewrites what the other loaded.
//!
//! pypgstac reads items with orjson (every number the double its text
//! denotes, correctly rounded; integers up to 64 bits exact), compares them
//! with Python's `==` while dehydrating, and writes the content back with
//! orjson (each double as the shortest text that reads back as it). `host`
//! does the same with serde_json built with `float_roundtrip` (without it,
//! serde_json's reading can be one unit in the last place off, which is how
//! `440633.39999999997` once became `440633.4`). pgstac's jsonb keeps the
//! decimal it is given, so the text written is what is stored.
//!
//! Two details make the rest equal:
//! - a JSON `-0` is read by orjson as the integer 0 (Python has no integer
//!   negative zero), where serde_json reads the double -0.0: [`integer_zero`]
//!   reads it as 0 too (geometry included). `-0.0` stays -0.0 in both.
//! - Python's `==` finds `10 == 10.0`: [`same`] compares numbers by value
//!   across integers and doubles, exactly (`2**53 + 1 != 2.0**53`). It does
//!   not follow Python in `True == 1`: dropping an item's `true` because the
//!   base item holds `1` would hydrate the item back with a different type.

use std::borrow::Cow;

use serde_json::{Number, Value};

/// The JSON text with every number token `-0` (an integer, not `-0.0` or
/// `-0e0`) outside strings written `0`, as orjson reads it.
pub fn integer_zero(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    // A number token follows ':', '[', ',' or whitespace and ends at ',',
    // ']', '}' or whitespace: that rules out dates ("2020-01-01") and other
    // text cheaply; what is left is checked to be outside a string.
    let zeros: Vec<usize> = memchr::memmem::find_iter(b, b"-0")
        .filter(|&i| {
            i > 0
                && matches!(b[i - 1], b':' | b'[' | b',' | b' ' | b'\t' | b'\n' | b'\r')
                && b.get(i + 2)
                    .is_none_or(|c| matches!(c, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
                && !in_string(b, i)
        })
        .collect();
    if zeros.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for i in zeros {
        out.push_str(&text[from..i]);
        from = i + 1; // the '-' is left out
    }
    out.push_str(&text[from..]);
    Cow::Owned(out)
}

/// Whether byte `at` of JSON text is inside a string: an odd number of
/// unescaped quotes before it.
fn in_string(b: &[u8], at: usize) -> bool {
    let mut inside = false;
    for q in memchr::memchr_iter(b'"', &b[..at]) {
        let backslashes = b[..q].iter().rev().take_while(|&&c| c == b'\\').count();
        if backslashes % 2 == 0 {
            inside = !inside;
        }
    }
    inside
}

/// Appends valid JSON text `raw` as pypgstac writes what it read (without
/// building it in memory): every number as serde_json writes the double or
/// integer it denotes (integer `-0` as `0`), whitespace dropped, strings and
/// the rest as they are. Refuses what pypgstac could not read either: a
/// number too large for a double, an escaped lone surrogate.
pub fn write_canonical(raw: &str, out: &mut Vec<u8>) -> Result<(), String> {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i;
                i += 1;
                loop {
                    let j =
                        i + memchr::memchr2(b'"', b'\\', &b[i..]).ok_or("unterminated string")?;
                    if b[j] == b'"' {
                        i = j + 1;
                        break;
                    }
                    i = j + match b.get(j + 1) {
                        Some(b'u') => unicode_escape(b, j)?,
                        _ => 2,
                    };
                }
                out.extend_from_slice(&b[start..i]);
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                number(&raw[start..i], out)?;
            }
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(())
}

/// A number token as serde_json (and so orjson) writes what it denotes.
fn number(t: &str, out: &mut Vec<u8>) -> Result<(), String> {
    use std::io::Write;
    if !t.bytes().any(|c| matches!(c, b'.' | b'e' | b'E')) {
        if let Ok(v) = t.parse::<u64>() {
            let _ = write!(out, "{v}");
            return Ok(());
        }
        if let Ok(v) = t.parse::<i64>() {
            let _ = write!(out, "{v}");
            return Ok(());
        }
    }
    let f: f64 = t.parse().map_err(|_| format!("invalid number {t}"))?;
    if !f.is_finite() {
        return Err(format!("number out of range: {t}"));
    }
    serde_json::to_writer(out, &f).map_err(|e| e.to_string())
}

/// The length of the `\\uXXXX` escape at `at`: 6, or 12 for a surrogate
/// pair; a surrogate that is not half of a pair is refused.
fn unicode_escape(b: &[u8], at: usize) -> Result<usize, String> {
    let hex = |k: usize| -> Option<u32> {
        let d = b.get(k..k + 4)?;
        u32::from_str_radix(std::str::from_utf8(d).ok()?, 16).ok()
    };
    match hex(at + 2).ok_or("bad \\u escape")? {
        0xD800..=0xDBFF => match (b.get(at + 6..at + 8), hex(at + 8)) {
            (Some(b"\\u"), Some(0xDC00..=0xDFFF)) => Ok(12),
            _ => Err("lone leading surrogate in hex escape".to_string()),
        },
        0xDC00..=0xDFFF => Err("lone trailing surrogate in hex escape".to_string()),
        _ => Ok(6),
    }
}

/// Whether two JSON values are equal by Python's `==` on what orjson reads,
/// numbers compared by value (see the module docs).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (a, b) => a == b,
    }
}

fn same_number(x: &Number, y: &Number) -> bool {
    match (integer(x), integer(y)) {
        (Some(a), Some(b)) => a == b,
        (Some(i), None) => float_is(y, i),
        (None, Some(i)) => float_is(x, i),
        (None, None) => x.as_f64() == y.as_f64(),
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// Whether the double `n` is exactly the integer `i`.
fn float_is(n: &Number, i: i128) -> bool {
    let f = n
        .as_f64()
        .expect("a JSON number that is not an integer is a double");
    f.fract() == 0.0 && f.abs() < 2f64.powi(127) && f as i128 == i
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integer_negative_zero_reads_as_zero_outside_strings() {
        for (text, want) in [
            (r#"{"a":-0}"#, r#"{"a":0}"#),
            (
                r#"{"a":[-0,-0.0,-0e0,-0E1,-01,-00]}"#,
                r#"{"a":[0,-0.0,-0e0,-0E1,-01,-00]}"#,
            ),
            (r#"{"a":"-0","b":-0}"#, r#"{"a":"-0","b":0}"#),
            (r#"{"a\"-0":"x\\","b":-0}"#, r#"{"a\"-0":"x\\","b":0}"#),
            (r#"{"c":[1,-0 ,-0]}"#, r#"{"c":[1,0 ,0]}"#),
            (r#"{"e":1e-0}"#, r#"{"e":1e-0}"#),
            ("{\"é\":-0}", "{\"é\":0}"),
            (r#"{"a":-1}"#, r#"{"a":-1}"#),
        ] {
            assert_eq!(integer_zero(text), want, "{text}");
        }
        assert!(matches!(integer_zero(r#"{"a":"-0"}"#), Cow::Borrowed(_)));
        assert!(matches!(integer_zero(r#"{"a":1}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn canonical_text_is_what_serde_json_writes_of_what_it_read() {
        let items = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/stac/planetary-computer/naip-items.ndjson"),
        )
        .unwrap();
        let hard = r#"{"a":[440633.39999999997,0.10000000000000001,5e-324,1E22,1.5e-7,-0,-0.0,
            18446744073709551615,18446744073709551616,-9223372036854775809,1e-400,100,1.0,1.50,
            123456789012345678901234567890],"s":"-0 \"1.50\" \\ \u00e9 \ud83d\ude00 \\ud800","t":true,"n":null}"#;
        for text in items.lines().take(50).chain([hard]) {
            let mut out = Vec::new();
            write_canonical(text, &mut out).unwrap();
            let ours: Value = serde_json::from_slice(&out).unwrap();
            let theirs: Value = serde_json::from_str(&integer_zero(text)).unwrap();
            // Same values, the same kinds of number (1 is not 1.0).
            assert_eq!(ours, theirs, "{text}");
        }
        for (bad, why) in [
            ("[1e400]", "out of range"),
            (r#"["\ud800"]"#, "lone leading"),
            (r#"["\udc00"]"#, "lone trailing"),
            (r#"["\ud800\u0041"]"#, "lone leading"),
            (r#"["\\\ud83d\\\ude00"]"#, "lone leading"),
        ] {
            let e = write_canonical(bad, &mut Vec::new()).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn numbers_compare_by_value_as_python_does() {
        let v = |t: &str| -> Value { serde_json::from_str(t).unwrap() };
        assert!(same(&v("10"), &v("10.0")));
        assert!(same(&v("1e2"), &v("100")));
        assert!(same(&v("-0.0"), &v("0")));
        assert!(same(
            &v(r#"{"a":[1,{"b":2.0}]}"#),
            &v(r#"{"a":[1.0,{"b":2}]}"#)
        ));
        assert!(!same(&v("9007199254740993"), &v("9007199254740992.0")));
        assert!(same(&v("9007199254740992"), &v("9007199254740992.0")));
        assert!(same(&v("18446744073709551615"), &v("18446744073709551615")));
        assert!(!same(&v("18446744073709551615"), &v("-1")));
        assert!(!same(&v("0.1"), &v("0.10000000000000002")));
        assert!(same(&v("0.1"), &v("0.10000000000000001")));
        assert!(!same(&v("true"), &v("1")));
        assert!(!same(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!same(&json!([1]), &json!([1, 1])));
    }
}
