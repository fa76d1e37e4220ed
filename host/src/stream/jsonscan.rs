//! A single-pass JSON reader for wal2json's lines: it hands out strings
//! borrowed from the line (owned only when they hold escapes) and numbers
//! as the text they were written in, and builds nothing else.
//!
//! Why not serde_json: `host stream` parses every change (a few hundred
//! bytes, a dozen values) once; through serde_json (a `RawValue` per value,
//! then each string parsed a second time, a `Vec` per column list) it was
//! a fifth of receive-and-apply's own CPU. `tests::agrees_with_serde_json`
//! holds this reader to serde_json's values.

use std::borrow::Cow;

/// Why a line is not the JSON expected; `at` is a byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    pub at: usize,
    pub what: &'static str,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

/// A scalar value as written: a string's contents, a number's text, a
/// literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar<'a> {
    Str(Cow<'a, str>),
    /// A number, exactly as written.
    Number(&'a str),
    Bool(bool),
    Null,
}

/// A cursor over one JSON text.
pub struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Scanner<'a> {
        Scanner { text, at: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn fail<T>(&self, what: &'static str) -> Result<T, ScanError> {
        Err(ScanError { at: self.at, what })
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next non-blank byte, not consumed.
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes().get(self.at).copied()
    }

    /// Consumes `c` (after blanks) or fails.
    pub fn expect(&mut self, c: u8) -> Result<(), ScanError> {
        if self.peek() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            self.fail(match c {
                b'{' => "expected an object",
                b'[' => "expected an array",
                b':' => "expected `:`",
                b'"' => "expected a string",
                _ => "unexpected character",
            })
        }
    }

    /// Only blanks are left.
    pub fn end(&mut self) -> Result<(), ScanError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.fail("trailing characters"),
        }
    }

    /// Within an object or array whose opening bracket was consumed: `true`
    /// if another member follows (its comma consumed), `false` at the
    /// closing `close` (consumed). `first` is whether no member was read yet.
    pub fn more(&mut self, close: u8, first: bool) -> Result<bool, ScanError> {
        match self.peek() {
            Some(c) if c == close => {
                self.at += 1;
                Ok(false)
            }
            Some(b',') if !first => {
                self.at += 1;
                Ok(true)
            }
            Some(_) if first => Ok(true),
            Some(_) => self.fail("expected `,` or the end of the object or array"),
            None => self.fail("unexpected end"),
        }
    }

    /// The next member's key, with its `:` consumed.
    pub fn key(&mut self) -> Result<Cow<'a, str>, ScanError> {
        let k = self.string()?;
        self.expect(b':')?;
        Ok(k)
    }

    /// A string (after blanks): its contents, unescaped.
    pub fn string(&mut self) -> Result<Cow<'a, str>, ScanError> {
        self.expect(b'"')?;
        let start = self.at;
        let bytes = self.bytes();
        match find_quote_or_escape(&bytes[start..]) {
            Some(n) if bytes[start + n] == b'"' => {
                self.at = start + n + 1;
                Ok(Cow::Borrowed(&self.text[start..start + n]))
            }
            Some(n) => {
                let mut out = String::with_capacity(n + 16);
                out.push_str(&self.text[start..start + n]);
                self.at = start + n;
                self.escaped(out).map(Cow::Owned)
            }
            None => self.fail("unterminated string"),
        }
    }

    /// The rest of a string from a backslash on.
    fn escaped(&mut self, mut out: String) -> Result<String, ScanError> {
        let bytes = self.bytes();
        loop {
            match bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let c = match bytes.get(self.at + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.at += 2;
                            out.push(self.unicode()?);
                            continue;
                        }
                        _ => return self.fail("invalid escape"),
                    };
                    out.push(c);
                    self.at += 2;
                }
                Some(_) => {
                    let rest = &bytes[self.at..];
                    let n = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
                    out.push_str(&self.text[self.at..self.at + n]);
                    self.at += n;
                }
                None => return self.fail("unterminated string"),
            }
        }
    }

    /// `XXXX` of a `\u` escape (and the low half of a surrogate pair).
    fn unicode(&mut self) -> Result<char, ScanError> {
        let hex = |s: &Self, at: usize| -> Result<u32, ScanError> {
            s.text
                .get(at..at + 4)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or(ScanError {
                    at,
                    what: "invalid \\u escape",
                })
        };
        let hi = hex(self, self.at)?;
        self.at += 4;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if self.bytes().get(self.at..self.at + 2) != Some(b"\\u") {
                return self.fail("a lone UTF-16 surrogate in a \\u escape");
            }
            let lo = hex(self, self.at + 2)?;
            if !(0xDC00..0xE000).contains(&lo) {
                return self.fail("a lone UTF-16 surrogate in a \\u escape");
            }
            self.at += 6;
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        char::from_u32(code)
            .map_or_else(|| self.fail("a lone UTF-16 surrogate in a \\u escape"), Ok)
    }

    /// A string, number, `true`, `false` or `null`.
    pub fn scalar(&mut self) -> Result<Scalar<'a>, ScanError> {
        match self.peek() {
            Some(b'"') => self.string().map(Scalar::Str),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.at;
                let bytes = self.bytes();
                let mut end = start + 1;
                while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = bytes.get(end) {
                    end += 1;
                }
                let number = &self.text[start..end];
                if !valid_number(number) {
                    return self.fail("invalid number");
                }
                self.at = end;
                Ok(Scalar::Number(number))
            }
            Some(b't') => self.literal("true", Scalar::Bool(true)),
            Some(b'f') => self.literal("false", Scalar::Bool(false)),
            Some(b'n') => self.literal("null", Scalar::Null),
            _ => self.fail("expected a value"),
        }
    }

    fn literal(&mut self, word: &str, value: Scalar<'a>) -> Result<Scalar<'a>, ScanError> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            self.fail("expected a value")
        }
    }

    /// An unsigned integer that fits in a `u32`.
    pub fn u32(&mut self) -> Result<u32, ScanError> {
        let at = self.peek().map(|_| self.at);
        match self.scalar()? {
            Scalar::Number(n) => n.parse().map_err(|_| ScanError {
                at: at.unwrap_or(self.at),
                what: "expected an unsigned 32-bit integer",
            }),
            _ => Err(ScanError {
                at: at.unwrap_or(self.at),
                what: "expected an unsigned 32-bit integer",
            }),
        }
    }

    /// Skips any value (objects and arrays too).
    pub fn skip(&mut self) -> Result<(), ScanError> {
        match self.peek() {
            Some(open @ (b'{' | b'[')) => {
                self.at += 1;
                let close = if open == b'{' { b'}' } else { b']' };
                let mut first = true;
                while self.more(close, first)? {
                    first = false;
                    if open == b'{' {
                        self.key()?;
                    }
                    self.skip()?;
                }
                Ok(())
            }
            _ => self.scalar().map(drop),
        }
    }
}

/// The first `"` or `\\`. Most strings here are short (names, keys,
/// small values), where a plain loop beats starting a vectorised search.
fn find_quote_or_escape(bytes: &[u8]) -> Option<usize> {
    const SHORT: usize = 32;
    let head = &bytes[..bytes.len().min(SHORT)];
    match head.iter().position(|&b| b == b'"' || b == b'\\') {
        Some(n) => Some(n),
        None if bytes.len() > SHORT => {
            memchr::memchr2(b'"', b'\\', &bytes[SHORT..]).map(|n| n + SHORT)
        }
        None => None,
    }
}

/// JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn valid_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Result<Scalar<'_>, ScanError> {
        let mut s = Scanner::new(text);
        let v = s.scalar()?;
        s.end()?;
        Ok(v)
    }

    #[test]
    fn agrees_with_serde_json() {
        let cases = [
            r#""plain""#,
            r#""a\"b\\c\/d\b\f\n\r\t""#,
            r#""\u00e9\u0001 \ud83d\ude00 é""#,
            r#""""#,
            "0",
            "-12.5e+3",
            "90071992547409931",
            "1.10",
            "true",
            "false",
            "null",
        ];
        for c in cases {
            let ours = scalar(c).unwrap_or_else(|e| panic!("{c}: {e}"));
            let theirs: serde_json::Value = serde_json::from_str(c).unwrap();
            match (&ours, &theirs) {
                (Scalar::Str(a), serde_json::Value::String(b)) => assert_eq!(a, b, "{c}"),
                (Scalar::Number(a), serde_json::Value::Number(_)) => assert_eq!(*a, c),
                (Scalar::Bool(a), serde_json::Value::Bool(b)) => assert_eq!(a, b),
                (Scalar::Null, serde_json::Value::Null) => {}
                _ => panic!("{c}: {ours:?} vs {theirs:?}"),
            }
        }
        for bad in [
            r#""unterminated"#,
            r#""bad \x escape""#,
            r#""\ud800 lone""#,
            r#""\udc00""#,
            r#""\u12""#,
            "01",
            "1.",
            "-",
            "1e",
            "nul",
            "tru",
            "+1",
            "{",
        ] {
            assert!(scalar(bad).is_err(), "{bad} is refused");
            assert!(
                serde_json::from_str::<serde_json::Value>(bad).is_err(),
                "{bad}: serde_json refuses it too"
            );
        }
        assert!(matches!(
            scalar(r#""no escapes""#),
            Ok(Scalar::Str(Cow::Borrowed(_)))
        ));
        // Past the short-string loop, with and without escapes.
        let long = "x".repeat(100);
        let quoted = format!("\"{long}\\n{long}\"");
        assert_eq!(
            scalar(&quoted).unwrap(),
            Scalar::Str(Cow::Owned(format!("{long}\n{long}")))
        );
        let plain = format!("\"{long}\"");
        assert_eq!(scalar(&plain).unwrap(), Scalar::Str(Cow::Borrowed(&long)));
        assert!(scalar(&format!("\"{long}")).is_err());
    }

    #[test]
    fn objects_arrays_and_skipping() {
        let mut s = Scanner::new(r#" { "a" : [1, {"x": [true, null]}, "s"], "b": 7 } "#);
        s.expect(b'{').unwrap();
        assert!(s.more(b'}', true).unwrap());
        assert_eq!(s.key().unwrap(), "a");
        s.skip().unwrap();
        assert!(s.more(b'}', false).unwrap());
        assert_eq!(s.key().unwrap(), "b");
        assert_eq!(s.u32().unwrap(), 7);
        assert!(!s.more(b'}', false).unwrap());
        s.end().unwrap();
        let mut s = Scanner::new("[1 2]");
        s.expect(b'[').unwrap();
        assert!(s.more(b']', true).unwrap());
        s.skip().unwrap();
        assert!(s.more(b']', false).is_err());
        assert!(Scanner::new("-1").u32().is_err());
        assert!(Scanner::new("4294967296").u32().is_err());
    }
}
