//! A fast check that text is one valid JSON object (RFC 8259) that
//! PostgreSQL can store as `jsonb`, for what plugins hand back and for every
//! item and collection before it is loaded. It builds nothing: it only
//! answers "valid, or not and where". Text from a plugin is already valid
//! UTF-8 (the component model checks strings), and so is loaded text.
//!
//! Beyond the grammar, it refuses what PostgreSQL would refuse in the middle
//! of a COPY, failing the whole load with no address: nesting deeper than
//! [`MAX_DEPTH`], a `\u0000` escape, a lone UTF-16 surrogate escape (`\ud800`
//! without its pair), a number outside `numeric`'s range, and an array or
//! object whose members take more than jsonb can hold. Errors carry the
//! byte offset and the path to the value (`properties.title`).
//!
//! Why not serde_json: deserializing into `IgnoredAny` cost ~6 µs per 4.5 KB
//! STAC item, a quarter of `set_collection`'s whole per-item budget. Most of
//! an item is string bodies (URLs, titles); this scans them eight bytes at a
//! time. `tests::agrees_with_serde_json` holds it to serde_json's verdicts.

use std::ops::Range;

/// Where and why a text is not a JSON object PostgreSQL can store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What was wrong there.
    pub what: &'static str,
    /// The path to the value holding it (`properties.eo:bands[2].name`),
    /// empty at the top level.
    pub path: String,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{} at byte {}", self.what, self.offset)
        } else {
            write!(
                f,
                "{} in {} (byte {})",
                self.what,
                crate::terminal::Shown(&self.path),
                self.offset
            )
        }
    }
}

/// Deepest nesting accepted, counting the record itself as level 1: what
/// serde_json accepts (plugins parsing items with it stop there too).
pub const MAX_DEPTH: usize = 127;

/// The most bytes the members of one jsonb array or object may take
/// (PostgreSQL's `JENTRY_OFFLENMASK`).
const MAX_CONTAINER_BYTES: u64 = 0x0FFF_FFFF;

/// `numeric`'s limits: digits before the decimal point (weight 32767 in
/// base-10000 digits) and after it (display scale).
const MAX_NUMERIC_WEIGHT: i64 = 131_071;
const MAX_NUMERIC_SCALE: i64 = 16_383;
/// numeric's input refuses exponents this large even for zero (`INT_MAX / 2`).
const MAX_NUMERIC_EXPONENT: i64 = 1_073_741_823;

const TOO_DEEP: &str = "nesting deeper than 127 levels";
const NUL_ESCAPE: &str = "a \\u0000 escape, which PostgreSQL cannot store in jsonb";
const OUT_OF_RANGE: &str = "a number outside PostgreSQL's numeric range";
const TOO_LARGE: &str = "an array or object larger than PostgreSQL's jsonb can hold (its members take more than 256 MiB)";
const LONE_SURROGATE: &str =
    "a lone surrogate escape (\\ud800-\\udfff without its pair), which PostgreSQL refuses";

/// Checks that `text` is exactly one JSON object, with optional whitespace
/// around it, that PostgreSQL can store as jsonb.
pub fn check_object(text: &str) -> Result<(), JsonError> {
    let mut p = Parser::new(text, false);
    p.document(b'{').map_err(|e| located(text, b'{', e))
}

/// One member of a checked object (or element of a checked array), as
/// ranges of its text: the key between its quotes, as written (escapes
/// and all; empty for an array element), and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub key: Range<usize>,
    pub value: Range<usize>,
}

/// [`check_object`], also handing back the object's members in order,
/// duplicates included: one pass where reading the members with a JSON
/// library after the check would be a second one.
pub fn check_members(text: &str, out: &mut Vec<Span>) -> Result<(), JsonError> {
    check_spans(text, b'{', out)
}

/// As [`check_members`], for a JSON array: its elements.
pub fn check_elements(text: &str, out: &mut Vec<Span>) -> Result<(), JsonError> {
    check_spans(text, b'[', out)
}

fn check_spans(text: &str, open: u8, out: &mut Vec<Span>) -> Result<(), JsonError> {
    out.clear();
    let mut p = Parser::new(text, false);
    p.spans = Some(std::mem::take(out));
    let done = p.document(open);
    *out = p.spans.take().unwrap_or_default();
    done.map_err(|e| located(text, open, e))
}

/// The error for a problem found by the fast pass: the path is found only
/// now, by a second pass that records it.
fn located(text: &str, open: u8, e: Problem) -> JsonError {
    let mut p = Parser::new(text, true);
    let _ = p.document(open);
    JsonError {
        offset: e.offset,
        what: e.what,
        path: p.path_text(),
    }
}

/// A problem before its path is known.
#[derive(Debug)]
struct Problem {
    offset: usize,
    what: &'static str,
}

/// One step of a path: an object member (its key, as written) or an array element.
enum Step {
    Key(usize, usize),
    Index(usize),
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    /// Record the path to where parsing stopped (the slow, second pass).
    track: bool,
    path: Vec<Step>,
    /// Where to record the top level's members or elements, when asked.
    spans: Option<Vec<Span>>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, track: bool) -> Parser<'a> {
        Parser {
            b: text.as_bytes(),
            i: 0,
            track,
            path: Vec::new(),
            spans: None,
        }
    }

    /// One object (`open` is `{`) or array (`[`), nothing after it.
    fn document(&mut self, open: u8) -> Result<(), Problem> {
        self.ws();
        if self.peek() != Some(open) {
            return Err(self.err(if open == b'{' {
                "expected a JSON object"
            } else {
                "expected a JSON array"
            }));
        }
        self.value(0)?;
        self.ws();
        if self.i != self.b.len() {
            return Err(self.err("trailing characters after the object"));
        }
        Ok(())
    }

    fn path_text(&self) -> String {
        let mut out = String::new();
        for step in &self.path {
            match *step {
                Step::Key(a, b) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(&String::from_utf8_lossy(&self.b[a..b]));
                }
                Step::Index(n) => out.push_str(&format!("[{n}]")),
            }
        }
        out
    }

    fn err(&self, what: &'static str) -> Problem {
        Problem {
            offset: self.i,
            what,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// Parses one value; returns (an upper bound of) the bytes it takes in jsonb.
    fn value(&mut self, depth: usize) -> Result<u64, Problem> {
        // The top-level object is level 1 (depth 0).
        if depth >= MAX_DEPTH {
            return Err(self.err(TOO_DEEP));
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    /// A container's size: header, an entry per member, members, alignment.
    fn container(&self, start: usize, entries: u64, members: u64) -> Result<u64, Problem> {
        if members > MAX_CONTAINER_BYTES {
            return Err(Problem {
                offset: start,
                what: TOO_LARGE,
            });
        }
        Ok(4 + 4 * entries + members + 3)
    }

    fn object(&mut self, depth: usize) -> Result<u64, Problem> {
        let start = self.i;
        self.i += 1; // {
        self.ws();
        let (mut entries, mut members) = (0u64, 0u64);
        if self.peek() == Some(b'}') {
            self.i += 1;
            return self.container(start, 0, 0);
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let key_start = self.i + 1;
            members += self.string()?;
            let key_end = self.i - 1;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            self.ws();
            if self.track {
                self.path.push(Step::Key(key_start, key_end));
            }
            let value_start = self.i;
            members += self.value(depth + 1)?;
            if self.track {
                self.path.pop();
            }
            if depth == 0
                && let Some(spans) = &mut self.spans
            {
                spans.push(Span {
                    key: key_start..key_end,
                    value: value_start..self.i,
                });
            }
            entries += 2;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.i += 1;
                    return self.container(start, entries, members);
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<u64, Problem> {
        let start = self.i;
        self.i += 1; // [
        self.ws();
        let (mut entries, mut members) = (0u64, 0u64);
        if self.peek() == Some(b']') {
            self.i += 1;
            return self.container(start, 0, 0);
        }
        loop {
            if self.track {
                self.path.push(Step::Index(entries as usize));
            }
            let value_start = self.i;
            members += self.value(depth + 1)?;
            if self.track {
                self.path.pop();
            }
            if depth == 0
                && let Some(spans) = &mut self.spans
            {
                spans.push(Span {
                    key: value_start..value_start,
                    value: value_start..self.i,
                });
            }
            entries += 1;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.i += 1;
                    return self.container(start, entries, members);
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<u64, Problem> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(0)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    /// A number, which must fit `numeric`: at most 131072 digits before the
    /// decimal point and 16383 after it, exponent included.
    fn number(&mut self) -> Result<u64, Problem> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        let int = &self.b[int_start..self.i];
        let mut frac: &[u8] = &[];
        if self.peek() == Some(b'.') {
            self.i += 1;
            let f = self.i;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
            frac = &self.b[f..self.i];
        }
        let mut exp: i64 = 0;
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            let negative = match self.peek() {
                Some(b'-') => {
                    self.i += 1;
                    true
                }
                Some(b'+') => {
                    self.i += 1;
                    false
                }
                _ => false,
            };
            let e = self.i;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
            // Saturating: anything this large is out of range anyway.
            let magnitude = self.b[e..self.i].iter().fold(0i64, |acc, d| {
                acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
            });
            exp = if negative { -magnitude } else { magnitude };
        }
        // Display scale: digits after the point once the exponent is applied.
        let scale = (frac.len() as i64).saturating_sub(exp).max(0);
        // Weight: the decimal position of the first significant digit.
        let weight = if int != b"0" {
            Some(int.len() as i64 - 1)
        } else {
            frac.iter()
                .position(|&d| d != b'0')
                .map(|z| -(z as i64) - 1)
        }
        .map(|w| w.saturating_add(exp));
        if exp.abs() >= MAX_NUMERIC_EXPONENT
            || scale > MAX_NUMERIC_SCALE
            || weight.is_some_and(|w| w > MAX_NUMERIC_WEIGHT)
        {
            return Err(Problem {
                offset: start,
                what: OUT_OF_RANGE,
            });
        }
        // numeric: alignment, varlena and numeric headers, base-10000 digits.
        let digits = (int.len() + frac.len()) as u64;
        Ok(3 + 4 + 4 + 2 * (digits / 4 + 2))
    }

    /// A string; returns its size (the text between the quotes is never
    /// shorter than what it decodes to).
    fn string(&mut self) -> Result<u64, Problem> {
        self.i += 1; // opening quote
        let start = self.i;
        loop {
            self.skip_plain();
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok((self.i - 1 - start) as u64);
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => self.unicode_escape()?,
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in a string")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }

    /// `\uXXXX` (after the backslash): PostgreSQL refuses `\u0000`, and a
    /// surrogate that is not a high one followed at once by a low one.
    fn unicode_escape(&mut self) -> Result<(), Problem> {
        let at = self.i - 1;
        let code = self.hex4(self.i + 1)?;
        self.i += 5;
        let refuse = |what| Err(Problem { offset: at, what });
        match code {
            0 => refuse(NUL_ESCAPE),
            0xD800..=0xDBFF => {
                let low = if self.b[self.i..].starts_with(b"\\u") {
                    self.hex4(self.i + 2).ok()
                } else {
                    None
                };
                match low {
                    Some(0xDC00..=0xDFFF) => {
                        self.i += 6;
                        Ok(())
                    }
                    _ => refuse(LONE_SURROGATE),
                }
            }
            0xDC00..=0xDFFF => refuse(LONE_SURROGATE),
            _ => Ok(()),
        }
    }

    /// The value of four hex digits at `at`.
    fn hex4(&self, at: usize) -> Result<u32, Problem> {
        let hex = self.b.get(at..at + 4);
        match hex
            .and_then(|h| std::str::from_utf8(h).ok())
            .map(|h| u32::from_str_radix(h, 16))
        {
            Some(Ok(v)) if hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) => Ok(v),
            _ => Err(self.err("invalid \\u escape")),
        }
    }

    /// Skips string bytes that need no attention: not `"`, not `\`, not a
    /// control character. Eight bytes at a time while none is special.
    #[inline]
    fn skip_plain(&mut self) {
        const LO: u64 = 0x0101_0101_0101_0101;
        const HI: u64 = 0x8080_8080_8080_8080;
        let b = self.b;
        while self.i + 8 <= b.len() {
            let w = u64::from_le_bytes(b[self.i..self.i + 8].try_into().unwrap());
            // A byte is special when it is < 0x20, == '"' or == '\\'. Bytes >= 0x80
            // (UTF-8) are plain; masking them out keeps the arithmetic exact.
            // A borrow can only flag bytes above a flagged one, so the lowest
            // flag is exact: little-endian, it is the first special byte.
            let ascii = !w & HI;
            let lt20 = w.wrapping_sub(LO * 0x20);
            let quote = w ^ (LO * b'"' as u64);
            let quote = quote.wrapping_sub(LO);
            let bslash = w ^ (LO * b'\\' as u64);
            let bslash = bslash.wrapping_sub(LO);
            let special = (lt20 | quote | bslash) & ascii;
            if special != 0 {
                self.i += special.trailing_zeros() as usize / 8;
                return;
            }
            self.i += 8;
        }
        while let Some(&c) = b.get(self.i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                return;
            }
            self.i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_says(text: &str) -> bool {
        serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
            && text.trim_start().starts_with('{')
    }

    /// Our verdict on the grammar alone (serde_json knows nothing of what
    /// PostgreSQL refuses beyond it).
    fn grammar_ok(text: &str) -> bool {
        match check_object(text) {
            Ok(()) => true,
            Err(e) => [NUL_ESCAPE, OUT_OF_RANGE, LONE_SURROGATE, TOO_LARGE].contains(&e.what),
        }
    }

    #[test]
    fn accepts_objects_and_refuses_the_rest() {
        for ok in [
            "{}",
            " {\"a\":1} ",
            r#"{"a":[1,-2.5e+3,0,true,false,null,{"b":"c\"\\\/\b\f\n\r\t\u00e9"}],"é":"😀"}"#,
            "{\"a\":0.0e0}",
        ] {
            assert_eq!(check_object(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "[]",
            "\"s\"",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":-}",
            "{\"a\":1e}",
            "{\"a\":tru}",
            "{\"a\":\"x\ny\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12g4\"}",
            "{\"a\":\"open}",
            "{} {}",
            "{\"a\":[1 2]}",
            "{not json",
        ] {
            assert!(check_object(bad).is_err(), "{bad:?} accepted");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert!(check_object(&deep).is_err());
    }

    #[test]
    fn what_postgresql_refuses_is_refused_with_its_path() {
        let e = check_object(r#"{"properties":{"eo:bands":[{"name":"x\ud800"}]}}"#).unwrap_err();
        assert_eq!(e.path, "properties.eo:bands[0].name");
        assert!(e.what.contains("lone surrogate"), "{e}");
        assert_eq!(e.offset, 37);
        for lone in [
            r"\udc00",
            r"\ud800x",
            r"\ud800\u0041",
            r"\ud800\ud800",
            r"\uDBFF",
        ] {
            let text = format!(r#"{{"id":"{lone}"}}"#);
            let e = check_object(&text).unwrap_err();
            assert!(
                e.what.contains("lone surrogate") && e.path == "id",
                "{text}: {e}"
            );
        }
        check_object(r#"{"a":"\ud83d\ude00 \uD83D\uDE00"}"#).unwrap();
        let e = check_object(r#"{"a":["\u0000"]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "a \\u0000 escape, which PostgreSQL cannot store in jsonb in a[0] (byte 7)"
        );
        // numeric's range, as PostgreSQL 15 draws it.
        for ok in [
            "1e131071",
            "-1e-16383",
            "123456789012345678901234567890e131000",
            "0.5e-16382",
            "0e999999999",
            "0.00000e131072",
            "0.0001e131075",
            "-0",
        ] {
            check_object(&format!(r#"{{"n":{ok}}}"#)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "1e131072",
            "1e-16384",
            "1.5e-16383",
            "1.5e-1000000",
            "1e99999999999999999999",
            "0.0001e131076",
            "0e2000000000",
            "0.0e-16383",
        ] {
            let e = check_object(&format!(r#"{{"n":{bad}}}"#)).unwrap_err();
            assert!(
                e.what.contains("numeric range") && e.path == "n",
                "{bad}: {e}"
            );
        }
        let deep = format!(
            r#"{{"properties":{{"a":{}{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let e = check_object(&deep).unwrap_err();
        assert!(e.what.contains("deeper than 127"), "{e}");
        assert!(e.path.starts_with("properties.a[0][0]"), "{e}");
    }

    #[test]
    fn nesting_stops_where_serde_json_stops() {
        for levels in [127, 128, 129] {
            let inner = levels - 1;
            let text = format!(r#"{{"a":{}{}}}"#, "[".repeat(inner), "]".repeat(inner));
            assert_eq!(
                check_object(&text).is_ok(),
                serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                "{levels} levels"
            );
        }
    }

    #[test]
    fn agrees_with_serde_json() {
        // Every fixture item, and every single-byte corruption of a few of them
        // that stays valid UTF-8, must get serde_json's verdict.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/stac");
        let text = std::fs::read_to_string(root.join("pgstac-testdata/items.ndjson")).unwrap();
        let replacements: &[u8] = b"\"\\{}[],:0-e.ntu \n\x01a";
        for (n, line) in text.lines().enumerate() {
            assert_eq!(grammar_ok(line), serde_says(line));
            if n >= 3 {
                continue;
            }
            let bytes = line.as_bytes();
            for pos in (0..bytes.len()).step_by(7) {
                for &r in replacements {
                    let mut m = bytes.to_vec();
                    m[pos] = r;
                    let Ok(s) = std::str::from_utf8(&m) else {
                        continue;
                    };
                    assert_eq!(
                        grammar_ok(s),
                        serde_says(s),
                        "disagree at {pos} with {:?}: {s}",
                        r as char
                    );
                }
            }
        }
    }

    /// serde_json's reading of an object's top level, in order and with
    /// duplicates: each key (unescaped) with its value's text.
    fn serde_members(text: &str) -> Option<Vec<(String, String)>> {
        struct Pairs(Vec<(String, String)>);
        impl<'de> serde::Deserialize<'de> for Pairs {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pairs, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Pairs;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut m: A,
                    ) -> Result<Pairs, A::Error> {
                        let mut out = Vec::new();
                        while let Some(k) = m.next_key::<String>()? {
                            let v: &serde_json::value::RawValue = m.next_value()?;
                            out.push((k, v.get().to_string()));
                        }
                        Ok(Pairs(out))
                    }
                }
                d.deserialize_map(V)
            }
        }
        serde_json::from_str::<Pairs>(text).ok().map(|p| p.0)
    }

    fn our_members(text: &str) -> Option<Vec<(String, String)>> {
        let mut spans = Vec::new();
        check_members(text, &mut spans).ok()?;
        Some(
            spans
                .into_iter()
                .map(|s| {
                    let key: String =
                        serde_json::from_str(&text[s.key.start - 1..s.key.end + 1]).unwrap();
                    (key, text[s.value].to_string())
                })
                .collect(),
        )
    }

    #[test]
    fn members_and_elements_are_where_serde_json_finds_them() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/stac");
        let text = std::fs::read_to_string(root.join("pgstac-testdata/items.ndjson")).unwrap();
        let mut checked = 0;
        for line in text.lines().take(20).chain([
            r#" { "a\"b" : [1, {"x": 2}] , "a\"b":"dup" ,"e\u00e9":-1.5e3 , "n":null} "#,
            r#"{}"#,
        ]) {
            let ours = our_members(line).expect(line);
            assert_eq!(Some(ours.clone()), serde_members(line), "{line}");
            checked += ours.len();
            // Each array member's elements, as serde_json splits them.
            for (_, v) in &ours {
                if v.starts_with('[') {
                    let mut spans = Vec::new();
                    check_elements(v, &mut spans).unwrap();
                    let ours: Vec<&str> = spans.iter().map(|s| &v[s.value.clone()]).collect();
                    let theirs: Vec<Box<serde_json::value::RawValue>> =
                        serde_json::from_str(v).unwrap();
                    let theirs: Vec<&str> = theirs.iter().map(|r| r.get()).collect();
                    assert_eq!(ours, theirs, "{v}");
                }
            }
        }
        assert!(checked > 100);
        // Refused as check_object refuses, spans or not.
        let mut spans = Vec::new();
        assert!(check_members(r#"{"a":"\u0000"}"#, &mut spans).is_err());
        assert!(check_members(r#"[1]"#, &mut spans).is_err());
        assert!(check_elements(r#"{"a":1}"#, &mut spans).is_err());
        assert_eq!(
            check_elements(r#"[1, "\ud800"]"#, &mut spans)
                .unwrap_err()
                .path,
            "[1]"
        );
    }
}
