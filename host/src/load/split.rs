//! Splitting a byte stream into JSON records without parsing them, so the
//! input streams through in constant memory whatever its size:
//! - NDJSON, or any sequence of top-level objects (a single pretty-printed
//!   object is a sequence of one);
//! - a top-level JSON array of objects;
//! - a GeoJSON FeatureCollection, whose `features` are streamed one by one
//!   (recognised by a top-level `"features": [` member, wherever it is).
//!
//! Only strings, escapes and nesting are tracked; the records themselves are
//! checked by the JSON parser later.
//!
//! A record larger than [`MAX_RECORD_BYTES`] is not held: the splitter reads
//! on to its end without keeping it and hands on only its size, so that the
//! load can refuse it by name (or put it in the reject file) while memory
//! stays bounded.

use std::io::Read;

/// The largest record loaded. PostgreSQL's jsonb holds at most 256 MiB in
/// one object or array, so a larger record could not be stored anyway.
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// One record: a top-level object, or one element of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub body: Body,
    /// The line it starts on (1-based).
    pub line: u64,
    /// Its position in the array or FeatureCollection holding it (0-based).
    pub index: Option<u64>,
}

/// What a record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The record's bytes, from `{` to `}`.
    Json(Vec<u8>),
    /// A record larger than the limit, skipped: how many bytes it had.
    TooLarge(u64),
}

/// Input that cannot be split into records.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    #[error("line {line}: {reason}")]
    Syntax { line: u64, reason: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

enum State {
    Top,
    Array {
        next: u64,
        first: bool,
        in_collection: bool,
    },
    /// After a FeatureCollection's features: skip to the end of its object.
    RestOfCollection,
}

enum Scanned {
    Record(Record),
    CollectionStart,
}

/// Reads records from `R`.
pub struct Splitter<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    line: u64,
    state: State,
    started: bool,
    max_record: usize,
}

const INITIAL: usize = 1 << 20;

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<R: Read> Splitter<R> {
    /// A splitter over `reader`.
    pub fn new(reader: R) -> Splitter<R> {
        Splitter {
            reader,
            buf: vec![0; INITIAL],
            pos: 0,
            len: 0,
            eof: false,
            line: 1,
            state: State::Top,
            started: false,
            max_record: MAX_RECORD_BYTES,
        }
    }

    fn syntax(&self, line: u64, reason: impl Into<String>) -> SplitError {
        SplitError::Syntax {
            line,
            reason: reason.into(),
        }
    }

    /// Moves the bytes from `keep` on to the front and reads more; returns
    /// how far positions moved.
    fn fill(&mut self, keep: usize) -> std::io::Result<usize> {
        if keep > 0 {
            self.buf.copy_within(keep..self.len, 0);
            self.len -= keep;
            self.pos -= keep.min(self.pos);
            // After a big record, give the memory back.
            if self.buf.len() > INITIAL && self.len < self.buf.len() / 4 {
                self.buf.truncate((self.len * 2).max(INITIAL));
                self.buf.shrink_to_fit();
            }
        }
        if self.len == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = loop {
            match self.reader.read(&mut self.buf[self.len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.eof = true;
        }
        self.len += n;
        Ok(keep)
    }

    /// The next non-whitespace byte, not consumed; `None` at the end.
    fn peek(&mut self) -> Result<Option<u8>, SplitError> {
        loop {
            if self.pos >= self.len {
                if self.eof {
                    return Ok(None);
                }
                self.fill(self.pos)?;
                continue;
            }
            let b = self.buf[self.pos];
            if !self.started {
                self.started = true;
                if self.buf[self.pos..self.len].starts_with(b"\xEF\xBB\xBF") {
                    self.pos += 3;
                    continue;
                }
            }
            match b {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b if is_ws(b) => self.pos += 1,
                b => return Ok(Some(b)),
            }
        }
    }

    /// The next record, or `None` at the end of the input.
    pub fn next_record(&mut self) -> Result<Option<Record>, SplitError> {
        loop {
            match self.state {
                State::Top => match self.peek()? {
                    None => return Ok(None),
                    Some(b'{') => match self.scan_object(true)? {
                        Scanned::Record(r) => return Ok(Some(r)),
                        Scanned::CollectionStart => {
                            self.state = State::Array {
                                next: 0,
                                first: true,
                                in_collection: true,
                            };
                        }
                    },
                    Some(b'[') => {
                        self.pos += 1;
                        self.state = State::Array {
                            next: 0,
                            first: true,
                            in_collection: false,
                        };
                    }
                    Some(b) => {
                        return Err(self.syntax(
                            self.line,
                            format!(
                                "expected a JSON object or array, found '{}'",
                                char::from(b).escape_default()
                            ),
                        ));
                    }
                },
                State::Array {
                    next,
                    first,
                    in_collection,
                } => {
                    let what = if in_collection {
                        "the features array"
                    } else {
                        "the array"
                    };
                    let Some(mut b) = self.peek()? else {
                        return Err(self.syntax(self.line, format!("input ends inside {what}")));
                    };
                    if b == b']' {
                        self.pos += 1;
                        self.state = if in_collection {
                            State::RestOfCollection
                        } else {
                            State::Top
                        };
                        continue;
                    }
                    if !first {
                        if b != b',' {
                            return Err(
                                self.syntax(self.line, format!("expected ',' or ']' in {what}"))
                            );
                        }
                        self.pos += 1;
                        b = self.peek()?.ok_or_else(|| {
                            self.syntax(self.line, format!("input ends inside {what}"))
                        })?;
                    }
                    if b != b'{' {
                        return Err(self.syntax(
                            self.line,
                            format!("expected an object as element {next} of {what}"),
                        ));
                    }
                    let Scanned::Record(mut r) = self.scan_object(false)? else {
                        unreachable!("collections are only recognised at the top level")
                    };
                    r.index = Some(next);
                    self.state = State::Array {
                        next: next + 1,
                        first: false,
                        in_collection,
                    };
                    return Ok(Some(r));
                }
                State::RestOfCollection => {
                    self.skip_to_close()?;
                    self.state = State::Top;
                }
            }
        }
    }

    /// Scans the object starting at `pos` (a `{`). With `detect`, a
    /// top-level `"features": [` member makes it a FeatureCollection: the
    /// scan stops inside that array.
    fn scan_object(&mut self, detect: bool) -> Result<Scanned, SplitError> {
        let start_line = self.line;
        let mut start = self.pos;
        let mut i = start;
        let mut depth = 0u32;
        let mut lines = 0u64;
        // Bytes of a too-large record read and let go.
        let mut skipped: Option<u64> = None;
        let (mut in_str, mut esc) = (false, false);
        // Member names at depth 1, to spot "features".
        let mut expect_key = false;
        let mut key_start: Option<usize> = None;
        let mut features_key = false;
        let mut features_value = false;
        loop {
            if i >= self.len {
                if self.eof {
                    return Err(self.syntax(start_line, "input ends inside an object"));
                }
                if skipped.is_none() && i - start > self.max_record {
                    skipped = Some(0);
                    key_start = None;
                }
                if let Some(n) = &mut skipped {
                    // Too large: keep nothing of it, only count.
                    *n += (i - start) as u64;
                    start = i;
                    key_start = None;
                }
                let shift = self.fill(start)?;
                start -= shift;
                i -= shift;
                key_start = key_start.map(|k| k - shift);
                continue;
            }
            if in_str {
                if esc {
                    esc = false;
                    i += 1;
                    continue;
                }
                match memchr::memchr2(b'"', b'\\', &self.buf[i..self.len]) {
                    None => i = self.len,
                    Some(off) => {
                        i += off;
                        if self.buf[i] == b'\\' {
                            esc = true;
                        } else {
                            in_str = false;
                            if let Some(k) = key_start.take() {
                                features_key = detect && &self.buf[k..i] == b"features";
                            }
                        }
                        i += 1;
                    }
                }
                continue;
            }
            let b = self.buf[i];
            if features_value && !is_ws(b) {
                features_value = false;
                if b == b'[' {
                    self.pos = i + 1;
                    self.line = start_line + lines;
                    return Ok(Scanned::CollectionStart);
                }
            }
            match b {
                b'"' => {
                    in_str = true;
                    if depth == 1 && expect_key {
                        key_start = Some(i + 1);
                        expect_key = false;
                    }
                }
                b'{' | b'[' => {
                    depth += 1;
                    if depth == 1 {
                        expect_key = true;
                    }
                }
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        let size = skipped.unwrap_or(0) + (i - start) as u64;
                        let body = if size > self.max_record as u64 {
                            self.pos = i;
                            Body::TooLarge(size)
                        } else {
                            Body::Json(self.take(start, i))
                        };
                        self.line = start_line + lines;
                        return Ok(Scanned::Record(Record {
                            body,
                            line: start_line,
                            index: None,
                        }));
                    }
                }
                b',' if depth == 1 => expect_key = true,
                b':' if depth == 1 => {
                    features_value = features_key;
                    features_key = false;
                }
                b'\n' => lines += 1,
                _ => {}
            }
            i += 1;
        }
    }

    /// Takes `buf[start..end]` as a record and moves past it. A big record
    /// takes the buffer itself (no second copy of it); the bytes after it
    /// move to a fresh buffer.
    fn take(&mut self, start: usize, end: usize) -> Vec<u8> {
        if end - start <= INITIAL {
            self.pos = end;
            return self.buf[start..end].to_vec();
        }
        let rest = self.len - end;
        let mut fresh = vec![0; (rest * 2).max(INITIAL)];
        fresh[..rest].copy_from_slice(&self.buf[end..self.len]);
        let mut record = std::mem::replace(&mut self.buf, fresh);
        record.truncate(end);
        record.drain(..start);
        record.shrink_to_fit();
        self.len = rest;
        self.pos = 0;
        record
    }

    /// Skips the rest of an object we are one level inside.
    fn skip_to_close(&mut self) -> Result<(), SplitError> {
        let start_line = self.line;
        let mut depth = 1u32;
        let (mut in_str, mut esc) = (false, false);
        loop {
            if self.pos >= self.len {
                if self.eof {
                    return Err(self.syntax(start_line, "input ends inside the FeatureCollection"));
                }
                self.fill(self.pos)?;
                continue;
            }
            let b = self.buf[self.pos];
            self.pos += 1;
            if in_str {
                if esc {
                    esc = false;
                } else if b == b'\\' {
                    esc = true;
                } else if b == b'"' {
                    in_str = false;
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                b'\n' => self.line += 1,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `input`, reading it a few bytes at a time to cross buffer edges.
    fn split(input: &str) -> Result<Vec<(String, u64, Option<u64>)>, String> {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(3);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut s = Splitter::new(Trickle(input.as_bytes()));
        s.buf = vec![0; 8]; // tiny, so it must grow and compact
        s.max_record = 40;
        let mut out = Vec::new();
        while let Some(r) = s.next_record().map_err(|e| e.to_string())? {
            let text = match r.body {
                Body::Json(b) => String::from_utf8(b).unwrap(),
                Body::TooLarge(n) => format!("<{n} bytes>"),
            };
            out.push((text, r.line, r.index));
        }
        Ok(out)
    }

    #[test]
    fn ndjson_and_concatenated_objects() {
        let got = split("{\"a\":1}\n\n{\"b\":\"}\\\"{\"}\r\n  {\"c\":\n[1,{}]}").unwrap();
        assert_eq!(
            got,
            vec![
                ("{\"a\":1}".into(), 1, None),
                ("{\"b\":\"}\\\"{\"}".into(), 3, None),
                ("{\"c\":\n[1,{}]}".into(), 4, None),
            ]
        );
        assert_eq!(split("").unwrap(), vec![]);
        assert_eq!(split("\u{feff}{}").unwrap(), vec![("{}".into(), 1, None)]);
    }

    #[test]
    fn arrays_and_feature_collections() {
        let got = split("[\n {\"id\":1},\n {\"id\":2}\n]").unwrap();
        assert_eq!(
            got,
            vec![
                ("{\"id\":1}".into(), 2, Some(0)),
                ("{\"id\":2}".into(), 3, Some(1))
            ]
        );
        let fc = r#"{"type":"FeatureCollection","features":[{"id":"a","x":{"features":[1]}},
{"id":"b"}],"links":[{"rel":"next"}]}
{"id":"after"}"#;
        let got = split(fc).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, r#"{"id":"a","x":{"features":[1]}}"#);
        assert_eq!((got[1].1, got[1].2), (2, Some(1)));
        assert_eq!(got[2], ("{\"id\":\"after\"}".into(), 3, None));
        // "features" that is not an array, or nested deeper, is just a member.
        let got = split(r#"{"features":"x","a":{"features":[{}]}}"#).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(split("[]").unwrap(), vec![]);
        assert_eq!(
            split(r#"{"type":"FeatureCollection","features":[]}"#).unwrap(),
            vec![]
        );
    }

    #[test]
    fn a_record_too_large_is_counted_not_kept() {
        let big = format!(r#"{{"id":"big","pad":"{}","n":[{{}}]}}"#, "x".repeat(100));
        let input = format!("{{\"id\":\"a\"}}\n{big}\n{{\"id\":\"b\"}}\n[{big},{{}}]");
        let got = split(&input).unwrap();
        assert_eq!(got[0].0, r#"{"id":"a"}"#);
        assert_eq!(got[1], (format!("<{} bytes>", big.len()), 2, None));
        assert_eq!(got[2], (r#"{"id":"b"}"#.into(), 3, None));
        assert_eq!(got[3], (format!("<{} bytes>", big.len()), 4, Some(0)));
        assert_eq!(got[4], ("{}".into(), 4, Some(1)));
        // Big records (past the first buffer) take the buffer, and the rest reads on.
        let huge = format!(r#"{{"pad":"{}"}}"#, "y".repeat(3 << 20));
        let text = format!("{huge}\n{{\"id\":\"after\"}}\n");
        let mut s = Splitter::new(text.as_bytes());
        let Body::Json(first) = s.next_record().unwrap().unwrap().body else {
            panic!("kept")
        };
        assert_eq!(first, huge.as_bytes());
        let r = s.next_record().unwrap().unwrap();
        assert_eq!(
            (r.body, r.line),
            (Body::Json(br#"{"id":"after"}"#.to_vec()), 2)
        );
        assert!(s.next_record().unwrap().is_none());
    }

    #[test]
    fn broken_input_names_the_line() {
        for (input, expected) in [
            ("{\"a\":1}\nx", "line 2: expected a JSON object or array"),
            ("{\"a\":\n1", "line 1: input ends inside an object"),
            ("[{}, 3]", "expected an object as element 1"),
            ("[{} {}]", "expected ',' or ']'"),
            ("[{},", "input ends inside the array"),
            (r#"{"features":[{}"#, "input ends inside the features array"),
        ] {
            let e = split(input).unwrap_err();
            assert!(e.contains(expected), "{input:?}: {e}");
        }
    }
}
