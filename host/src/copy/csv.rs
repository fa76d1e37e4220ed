//! CSV as PostgreSQL reads and writes it (`COPY ... (FORMAT csv, HEADER)`):
//! an unquoted empty field is NULL, a quoted empty field (`""`) is the empty
//! string. Generic CSV crates do not keep that distinction, hence this module.

use std::io::BufRead;

/// One parsed record.
pub type Record = Vec<Option<String>>;

/// Reads CSV records from a buffered reader, tracking line numbers for errors.
pub struct Reader<R> {
    input: R,
    line: usize,
}

impl<R: BufRead> Reader<R> {
    /// Wraps a reader.
    pub fn new(input: R) -> Self {
        Reader { input, line: 0 }
    }

    /// The line the last record ended on (1-based).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The next record, or `None` at end of input.
    pub fn next_record(&mut self) -> Result<Option<Record>, String> {
        let mut raw = String::new();
        let start_line = self.line + 1;
        loop {
            let n = self
                .input
                .read_line(&mut raw)
                .map_err(|e| format!("line {}: {e}", self.line + 1))?;
            if n == 0 {
                if raw.is_empty() {
                    return Ok(None);
                }
                return Err(format!(
                    "line {start_line}: unterminated quoted field at end of input"
                ));
            }
            self.line += 1;
            // A record is complete when its quotes are balanced.
            if raw.bytes().filter(|&b| b == b'"').count() % 2 == 0 {
                break;
            }
        }
        let body = raw.strip_suffix('\n').unwrap_or(&raw);
        let body = body.strip_suffix('\r').unwrap_or(body);
        parse_record(body)
            .map(Some)
            .map_err(|e| format!("line {start_line}: {e}"))
    }
}

fn parse_record(s: &str) -> Result<Record, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut field = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
        }
        while let Some(&c) = chars.peek() {
            if c == ',' {
                break;
            }
            if quoted {
                return Err(format!("unexpected '{c}' after a closing quote"));
            }
            field.push(c);
            chars.next();
        }
        out.push(if !quoted && field.is_empty() {
            None
        } else {
            Some(field)
        });
        if chars.next().is_none() {
            return Ok(out);
        }
    }
}

/// Appends one CSV record (with `\n`), quoting where needed.
pub fn write_record<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = Option<&'a str>>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match f {
            None => {}
            Some(v) if v.is_empty() || v.contains([',', '"', '\n', '\r']) => {
                out.push(b'"');
                out.extend_from_slice(v.replace('"', "\"\"").as_bytes());
                out.push(b'"');
            }
            Some(v) => out.extend_from_slice(v.as_bytes()),
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_empty_string_differ() {
        let mut r = Reader::new(&b"a,,\"\",\"x,\"\"y\"\"\nz\"\n"[..]);
        let rec = r.next_record().unwrap().unwrap();
        assert_eq!(
            rec,
            vec![
                Some("a".into()),
                None,
                Some("".into()),
                Some("x,\"y\"\nz".into())
            ]
        );
        assert_eq!(r.line(), 2);
        assert_eq!(r.next_record().unwrap(), None);
    }

    #[test]
    fn writes_what_it_reads() {
        let rec: Vec<Option<&str>> = vec![Some("a"), None, Some(""), Some("q\"c,d")];
        let mut out = Vec::new();
        write_record(&mut out, rec.iter().copied());
        assert_eq!(out, b"a,,\"\",\"q\"\"c,d\"\n");
        let back = Reader::new(&out[..]).next_record().unwrap().unwrap();
        assert_eq!(
            back,
            vec![
                Some("a".into()),
                None,
                Some("".into()),
                Some("q\"c,d".into())
            ]
        );
    }

    #[test]
    fn malformed_records_name_their_line() {
        let mut r = Reader::new(&b"ok\n\"x\"y\n"[..]);
        r.next_record().unwrap();
        assert!(r.next_record().unwrap_err().starts_with("line 2"));
        let mut r = Reader::new(&b"\"open\n"[..]);
        assert!(r.next_record().unwrap_err().contains("unterminated"));
    }
}
