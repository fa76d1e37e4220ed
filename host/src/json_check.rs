//! A fast check that text is one valid JSON object (RFC 8259), for what
//! plugins hand back. It builds nothing: it only answers "valid, or not and
//! where". Text from a plugin is already valid UTF-8 (the component model
//! checks strings), so only the JSON grammar is checked here.
//!
//! Why not serde_json: deserializing into `IgnoredAny` cost ~6 µs per 4.5 KB
//! STAC item, a quarter of `set_collection`'s whole per-item budget. Most of
//! an item is string bodies (URLs, titles); this scans them eight bytes at a
//! time. `tests::agrees_with_serde_json` holds it to serde_json's verdicts.

/// Where and why a text is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

/// Deepest nesting accepted (serde_json's default recursion limit is 128).
const MAX_DEPTH: usize = 128;

/// Checks that `text` is exactly one JSON object, with optional whitespace around it.
pub fn check_object(text: &str) -> Result<(), JsonError> {
    let b = text.as_bytes();
    let mut p = Parser { b, i: 0 };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(p.err("expected a JSON object"));
    }
    p.value(0)?;
    p.ws();
    if p.i != b.len() {
        return Err(p.err("trailing characters after the object"));
    }
    Ok(())
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> JsonError {
        JsonError {
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

    fn value(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
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

    fn object(&mut self, depth: usize) -> Result<(), JsonError> {
        self.i += 1; // {
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("expected ':'"));
            }
            self.i += 1;
            self.ws();
            self.value(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), JsonError> {
        self.i += 1; // [
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value(depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), JsonError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
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

    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        Ok(())
    }

    fn string(&mut self) -> Result<(), JsonError> {
        self.i += 1; // opening quote
        loop {
            self.skip_plain();
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            let hex = self.b.get(self.i + 1..self.i + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.err("invalid \\u escape"));
                            }
                            self.i += 5;
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in a string")),
                None => return Err(self.err("unterminated string")),
            }
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
            let ascii = !w & HI;
            let lt20 = w.wrapping_sub(LO * 0x20);
            let quote = w ^ (LO * b'"' as u64);
            let quote = quote.wrapping_sub(LO);
            let bslash = w ^ (LO * b'\\' as u64);
            let bslash = bslash.wrapping_sub(LO);
            if (lt20 | quote | bslash) & ascii != 0 {
                break;
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
    fn agrees_with_serde_json() {
        // Every fixture item, and every single-byte corruption of a few of them
        // that stays valid UTF-8, must get serde_json's verdict.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/stac");
        let text = std::fs::read_to_string(root.join("pgstac-testdata/items.ndjson")).unwrap();
        let replacements: &[u8] = b"\"\\{}[],:0-e.ntu \n\x01a";
        for (n, line) in text.lines().enumerate() {
            assert_eq!(check_object(line).is_ok(), serde_says(line));
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
                        check_object(s).is_ok(),
                        serde_says(s),
                        "disagree at {pos} with {:?}: {s}",
                        r as char
                    );
                }
            }
        }
    }
}
