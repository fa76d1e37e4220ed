//! Rows in PostgreSQL's COPY text format, decoded without copying.
//!
//! A batch is one buffer: every row ends with `\n`, fields are separated by
//! `\t`, NULL is `\N`, and `\\`, `\t`, `\n`, `\r` inside values are escaped.
//! Decoding also accepts everything else COPY's input side does (`\b`, `\f`,
//! `\v`, octal `\NNN`, hex `\xHH`, and a backslash before any other
//! character standing for that character). A field without a backslash is
//! borrowed from the buffer; an unchanged row is copied out as bytes.

use std::borrow::Cow;
use std::ops::Range;

/// A column of the table that rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// The type as PostgreSQL's `format_type` prints it, e.g. `text`,
    /// `character varying(20)`, `timestamp with time zone`.
    pub type_name: String,
}

/// The table that the following row batches belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The table's schema.
    pub schema: String,
    /// The table's name.
    pub name: String,
    /// The columns, in the order of the fields in each row.
    pub columns: Vec<Column>,
}

impl Table {
    /// A table from `(name, type)` pairs; handy in tests.
    pub fn new(schema: &str, name: &str, columns: &[(&str, &str)]) -> Table {
        Table {
            schema: schema.into(),
            name: name.into(),
            columns: columns
                .iter()
                .map(|(n, t)| Column {
                    name: (*n).into(),
                    type_name: (*t).into(),
                })
                .collect(),
        }
    }

    /// The position of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The position of the column called `name`, or an error naming the
    /// table and listing its columns.
    pub fn require_column(&self, name: &str) -> Result<usize, String> {
        self.column_index(name).ok_or_else(|| {
            let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
            format!(
                "table {}.{} has no column `{name}` (its columns: {})",
                self.schema,
                self.name,
                names.join(", ")
            )
        })
    }
}

/// Decodes one field's text (between tabs): `None` for NULL (`\N`).
pub fn decode_field(raw: &str) -> Result<Option<Cow<'_, str>>, String> {
    if raw == "\\N" {
        Ok(None)
    } else if memchr::memchr(b'\\', raw.as_bytes()).is_none() {
        Ok(Some(Cow::Borrowed(raw)))
    } else {
        unescape(raw).map(|s| Some(Cow::Owned(s)))
    }
}

fn unescape(raw: &str) -> Result<String, String> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = b.get(i) else {
            return Err(format!("COPY field `{raw}` ends with a lone backslash"));
        };
        i += 1;
        out.push(match e {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 0x0b,
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match b.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                (v & 0xff) as u8
            }
            b'x' if b.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u8;
                for _ in 0..2 {
                    match b.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                v
            }
            other => other,
        });
    }
    String::from_utf8(out).map_err(|_| format!("COPY field `{raw}` decodes to invalid UTF-8"))
}

/// Appends `value` as one COPY text field (`\N` for NULL, escapes as needed).
pub fn encode_field(value: Option<&str>, out: &mut Vec<u8>) {
    let Some(s) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    let b = s.as_bytes();
    let mut from = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc = match c {
            b'\\' => b'\\',
            b'\t' => b't',
            b'\n' => b'n',
            b'\r' => b'r',
            _ => continue,
        };
        out.extend_from_slice(&b[from..i]);
        out.extend_from_slice(&[b'\\', esc]);
        from = i + 1;
    }
    out.extend_from_slice(&b[from..]);
}

#[derive(Debug)]
struct Field<'a> {
    /// The field's text within the row.
    raw: Range<usize>,
    value: Option<Cow<'a, str>>,
    changed: bool,
}

/// One row of a batch: its fields by position or column name.
///
/// `None` is SQL NULL, distinct from `Some("")`. Setting a field marks it
/// changed; only changed fields are encoded again when the row is kept.
#[derive(Debug)]
pub struct Row<'a> {
    table: &'a Table,
    line: &'a str,
    fields: Vec<Field<'a>>,
    modified: bool,
}

impl<'a> Row<'a> {
    /// The table this row belongs to.
    pub fn table(&self) -> &'a Table {
        self.table
    }

    /// The number of fields (the table's number of columns).
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the row has no field (a table without columns).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Field `i`: `None` for NULL.
    ///
    /// # Panics
    /// If `i` is not below [`Row::len`].
    pub fn get(&self, i: usize) -> Option<&str> {
        self.fields[i].value.as_deref()
    }

    /// The field of column `name`: `None` for NULL or when there is no such
    /// column. Resolve names once with [`Table::column_index`] in
    /// `begin_table` and use [`Row::get`] per row: it is faster.
    pub fn column(&self, name: &str) -> Option<&str> {
        self.table.column_index(name).and_then(|i| self.get(i))
    }

    /// Sets field `i` (`None` for NULL), e.g. `row.set(2, Some(hashed))`.
    ///
    /// # Panics
    /// If `i` is not below [`Row::len`].
    pub fn set<S: Into<Cow<'a, str>>>(&mut self, i: usize, value: Option<S>) {
        let value = value.map(Into::into);
        let field = &mut self.fields[i];
        if field.value != value {
            field.value = value;
            field.changed = true;
            self.modified = true;
        }
    }

    /// Sets field `i` to NULL.
    pub fn set_null(&mut self, i: usize) {
        self.set::<&str>(i, None);
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> {
        self.fields.iter().map(|f| f.value.as_deref())
    }

    /// The row as it came, in COPY text, without its `\n`.
    pub fn raw(&self) -> &'a str {
        self.line
    }

    /// Whether a field was set to a different value.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// Appends the row in COPY text, with its `\n`.
    fn write(&self, out: &mut Vec<u8>) {
        if !self.modified {
            out.extend_from_slice(self.line.as_bytes());
        } else {
            for (i, f) in self.fields.iter().enumerate() {
                if i > 0 {
                    out.push(b'\t');
                }
                if f.changed {
                    encode_field(f.value.as_deref(), out);
                } else {
                    out.extend_from_slice(self.line[f.raw.clone()].as_bytes());
                }
            }
        }
        out.push(b'\n');
    }
}

/// Calls `f` on each row of `buf`, a batch of `table`'s rows in COPY text,
/// and returns how many rows there were. `f` may write the row out with
/// [`RowSink::keep`]. Fails on a malformed buffer: not UTF-8, a row without
/// its final `\n`, a row with the wrong number of fields, a bad escape.
pub(crate) fn for_each_row<'a>(
    table: &'a Table,
    buf: &'a [u8],
    mut f: impl FnMut(&mut Row<'a>),
) -> Result<usize, String> {
    let text = std::str::from_utf8(buf)
        .map_err(|e| format!("row batch is not UTF-8 (at byte {})", e.valid_up_to()))?;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("row batch does not end with a newline".into());
    }
    let ncols = table.columns.len();
    let mut row = Row {
        table,
        line: "",
        fields: Vec::with_capacity(ncols),
        modified: false,
    };
    let mut count = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let nl = memchr::memchr(b'\n', rest.as_bytes()).expect("the batch ends with a newline");
        let line = &rest[..nl];
        rest = &rest[nl + 1..];
        count += 1;
        let mut fields = std::mem::take(&mut row.fields);
        fields.clear();
        split_fields(line, ncols, &mut fields)
            .map_err(|e| format!("row {count} of the batch: {e}"))?;
        if fields.len() != ncols {
            return Err(format!(
                "row {count} of the batch has {} fields, table {}.{} has {ncols} columns",
                fields.len(),
                table.schema,
                table.name
            ));
        }
        row = Row {
            table,
            line,
            fields,
            modified: false,
        };
        f(&mut row);
    }
    Ok(count)
}

fn split_fields<'a>(line: &'a str, ncols: usize, out: &mut Vec<Field<'a>>) -> Result<(), String> {
    if ncols == 0 && line.is_empty() {
        return Ok(());
    }
    let b = line.as_bytes();
    let mut start = 0;
    let mut escaped = false;
    let mut at = 0;
    loop {
        match memchr::memchr2(b'\t', b'\\', &b[at..]).map(|i| at + i) {
            Some(i) if b[i] == b'\\' => {
                escaped = true;
                at = i + 2; // skip the escaped character (a tab after `\` is data)
                if at > b.len() {
                    at = b.len();
                }
            }
            found => {
                let end = found.unwrap_or(b.len());
                let raw = &line[start..end];
                let value = if raw == "\\N" {
                    None
                } else if escaped {
                    Some(Cow::Owned(unescape(raw)?))
                } else {
                    Some(Cow::Borrowed(raw))
                };
                out.push(Field {
                    raw: start..end,
                    value,
                    changed: false,
                });
                if found.is_none() {
                    return Ok(());
                }
                start = end + 1;
                at = start;
                escaped = false;
            }
        }
    }
}

/// Runs `keep` over each row, writing kept rows to the returned buffer.
pub(crate) fn transform<'a>(
    table: &'a Table,
    buf: &'a [u8],
    mut decide: impl FnMut(&mut Row<'a>) -> crate::Outcome,
) -> Result<(Vec<crate::Outcome>, Vec<u8>), String> {
    let mut outcomes = Vec::new();
    let mut out = Vec::with_capacity(buf.len());
    for_each_row(table, buf, |row| {
        let outcome = decide(row);
        if outcome == crate::Outcome::Keep {
            row.write(&mut out);
        }
        outcomes.push(outcome);
    })?;
    Ok((outcomes, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;

    fn table(n: usize) -> Table {
        let cols: Vec<(String, &str)> = (0..n).map(|i| (format!("c{i}"), "text")).collect();
        let cols: Vec<(&str, &str)> = cols.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        Table::new("public", "t", &cols)
    }

    fn rows(t: &Table, buf: &str) -> Result<Vec<Vec<Option<String>>>, String> {
        let mut all = Vec::new();
        for_each_row(t, buf.as_bytes(), |r| {
            all.push(r.iter().map(|f| f.map(str::to_owned)).collect())
        })?;
        Ok(all)
    }

    #[test]
    fn decodes_escapes_null_and_empty() {
        let t = table(3);
        let got = rows(&t, "a\\\\b\t\\N\t\nx\\ty\\nz\\r\t\\\\N\t\\x41\\101\\b\\q\n").unwrap();
        assert_eq!(
            got,
            [
                vec![Some("a\\b".into()), None, Some("".into())],
                vec![
                    Some("x\ty\nz\r".into()),
                    Some("\\N".into()),
                    Some("AA\u{8}q".into())
                ],
            ]
        );
        assert_eq!(rows(&t, "").unwrap().len(), 0);
        // A zero-column table's rows are empty lines.
        assert_eq!(
            rows(&table(0), "\n\n").unwrap(),
            [vec![], vec![]] as [Vec<_>; 2]
        );
    }

    #[test]
    fn refuses_malformed_batches() {
        let t = table(2);
        assert_eq!(
            rows(&t, "a\tb").unwrap_err(),
            "row batch does not end with a newline"
        );
        assert!(rows(&t, "a\n").unwrap_err().contains("has 1 fields"));
        assert!(rows(&t, "a\tb\tc\n").unwrap_err().contains("has 3 fields"));
        assert!(rows(&t, "a\tb\\\n").unwrap_err().contains("lone backslash"));
        assert!(
            rows(&t, "a\t\\377\n")
                .unwrap_err()
                .contains("invalid UTF-8")
        );
        assert!(
            for_each_row(&t, b"a\t\xff\n", |_| ())
                .unwrap_err()
                .contains("not UTF-8")
        );
    }

    #[test]
    fn encodes_escapes() {
        let mut out = Vec::new();
        for v in [
            Some("plain"),
            Some(""),
            None,
            Some("a\\b\tc\nd\re"),
            Some("\\N"),
        ] {
            encode_field(v, &mut out);
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain||\\N|a\\\\b\\tc\\nd\\re|\\\\N|"
        );
    }

    #[test]
    fn round_trips_every_value() {
        let values = [
            None,
            Some(""),
            Some("\\N"),
            Some("\\"),
            Some("tab\there"),
            Some("é\r\n\u{8}"),
        ];
        let t = table(values.len());
        let mut buf = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                buf.push(b'\t');
            }
            encode_field(*v, &mut buf);
        }
        buf.push(b'\n');
        let got = rows(&t, std::str::from_utf8(&buf).unwrap()).unwrap();
        let want: Vec<Option<String>> = values.iter().map(|v| v.map(str::to_owned)).collect();
        assert_eq!(got, [want]);
    }

    #[test]
    fn transform_reencodes_only_changed_fields() {
        let t = table(3);
        let buf = b"a\\x41\tb\\\\\tc\nd\te\t\\N\nf\tg\th\n";
        let (outcomes, out) = transform(&t, buf, |row| match row.get(0) {
            Some("d") => {
                row.set(2, Some("new\tvalue"));
                row.set(0, Some("d")); // unchanged: stays as given
                Outcome::Keep
            }
            Some("f") => Outcome::Drop,
            _ => Outcome::Keep,
        })
        .unwrap();
        assert_eq!(outcomes, [Outcome::Keep, Outcome::Keep, Outcome::Drop]);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "a\\x41\tb\\\\\tc\nd\te\tnew\\tvalue\n"
        );
    }

    #[test]
    fn row_accessors() {
        let t = Table::new("s", "t", &[("id", "integer"), ("email", "text")]);
        for_each_row(&t, b"1\t\\N\n", |row| {
            assert_eq!(row.len(), 2);
            assert_eq!(row.column("id"), Some("1"));
            assert_eq!(row.column("email"), None);
            assert_eq!(row.column("nope"), None);
            assert_eq!(row.raw(), "1\t\\N");
            row.set_null(1);
            assert!(!row.is_modified());
            row.set(1, Some(String::from("x")));
            assert!(row.is_modified());
            assert_eq!(row.get(1), Some("x"));
        })
        .unwrap();
        assert_eq!(
            t.require_column("x").unwrap_err(),
            "table s.t has no column `x` (its columns: id, email)"
        );
    }
}
