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
    if memchr::memmem::find(b, b"-0").is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut changed = false;
    let mut in_string = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if in_string {
            out.push(c);
            match c {
                b'\\' => {
                    if let Some(&escaped) = b.get(i + 1) {
                        out.push(escaped);
                        i += 1;
                    }
                }
                b'"' => in_string = false,
                _ => {}
            }
        } else if c == b'-'
            && b.get(i + 1) == Some(&b'0')
            && !b
                .get(i + 2)
                .is_some_and(|n| n.is_ascii_digit() || matches!(n, b'.' | b'e' | b'E'))
            && !(i > 0 && matches!(b[i - 1], b'e' | b'E'))
        {
            changed = true; // the '-' is left out
        } else {
            in_string = c == b'"';
            out.push(c);
        }
        i += 1;
    }
    if !changed {
        return Cow::Borrowed(text);
    }
    Cow::Owned(String::from_utf8(out).expect("only an ASCII '-' was removed"))
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
