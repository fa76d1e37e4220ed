//! wal2json's format-version 2: one JSON object per message, borrowed from
//! the line it was read from (in one pass, by [`super::jsonscan`]).
//!
//! The slot is read with `include-xids`, `include-timestamp`, `include-lsn`
//! (so `B` already carries the commit LSN and the next one, and the spool
//! needs no envelope of its own), `include-type-oids` and no type names.
//! Values arrive as JSON strings, numbers, booleans or null; this turns each
//! into PostgreSQL's text form, the one input functions read back:
//! - numbers are kept as written (never through a float, so `numeric` and
//!   `bigint` keep every digit);
//! - `true`/`false` become `t`/`f`;
//! - `bytea` (oid 17 exactly) comes without its `\x`, which is put back;
//! - a column missing from a new row is an unchanged TOASTed value, which
//!   wal2json does not send.
//!
//! wal2json before 2.6 writes NaN and ±Infinity of `float4`, `float8` and
//! `numeric` as `null`, indistinguishable from NULL: see [`Value::Null`] and
//! the checks in `tables`.

use std::borrow::Cow;

use super::jsonscan::{Scalar, ScanError, Scanner};
use super::lsn::Lsn;

/// What one line says.
#[derive(Debug)]
pub enum Message<'a> {
    Begin(TxnMark<'a>),
    Commit(TxnMark<'a>),
    Change(Change<'a>),
    /// One table of a TRUNCATE (a statement naming several tables gives
    /// several messages in a row).
    Truncate {
        lsn: Lsn,
        schema: Cow<'a, str>,
        table: Cow<'a, str>,
    },
    /// `pg_logical_emit_message` output.
    Message {
        lsn: Lsn,
        transactional: bool,
        prefix: Cow<'a, str>,
        content: Cow<'a, str>,
    },
}

/// BEGIN or COMMIT: both carry the commit's LSN and the next record's.
#[derive(Debug, Clone)]
pub struct TxnMark<'a> {
    pub xid: u32,
    /// Where the commit record starts (what PostgreSQL calls the commit LSN).
    pub commit_lsn: Lsn,
    /// Where it ends: the position a replica confirms and stores as its progress.
    pub end_lsn: Lsn,
    /// The commit time, as the server printed it.
    pub timestamp: Cow<'a, str>,
}

/// INSERT, UPDATE or DELETE of one row.
#[derive(Debug)]
pub struct Change<'a> {
    pub op: Op,
    pub lsn: Lsn,
    pub schema: Cow<'a, str>,
    pub table: Cow<'a, str>,
    /// The new row (INSERT, UPDATE); unchanged TOASTed columns are absent.
    pub columns: Vec<Column<'a>>,
    /// The old key (UPDATE, DELETE), or the whole old row with REPLICA IDENTITY FULL.
    pub identity: Vec<Column<'a>>,
}

/// The kind of row change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    /// As SQL calls it.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "INSERT",
            Op::Update => "UPDATE",
            Op::Delete => "DELETE",
        }
    }
}

/// One column value.
#[derive(Debug, Clone)]
pub struct Column<'a> {
    pub name: Cow<'a, str>,
    pub type_oid: u32,
    pub value: Value<'a>,
}

/// A value in PostgreSQL's text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// NULL — or, from wal2json before 2.6, NaN/±Infinity in a float or numeric column.
    Null,
    Text(Cow<'a, str>),
}

impl<'a> Value<'a> {
    /// The text, `None` for NULL.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Null => None,
            Value::Text(t) => Some(t),
        }
    }
}

/// Why a line is not a message we understand.
#[derive(Debug, thiserror::Error)]
#[error("not a wal2json format-version 2 message: {0}")]
pub struct ParseError(pub String);

/// `bytea`'s type oid: wal2json strips the `\x` of its hex form.
const BYTEA: u32 = 17;

/// The action letter of a line, without parsing it (wal2json writes `action` first).
pub fn action_of(line: &[u8]) -> Option<u8> {
    const PREFIX: &[u8] = b"{\"action\":\"";
    line.strip_prefix(PREFIX).and_then(|r| r.first().copied())
}

/// The fields of a line, as found (in any order; others are skipped).
#[derive(Default)]
struct Fields<'a> {
    action: Option<Cow<'a, str>>,
    xid: Option<u32>,
    timestamp: Option<Cow<'a, str>>,
    lsn: Option<Cow<'a, str>>,
    nextlsn: Option<Cow<'a, str>>,
    schema: Option<Cow<'a, str>>,
    table: Option<Cow<'a, str>>,
    columns: Vec<Column<'a>>,
    identity: Vec<Column<'a>>,
    transactional: Option<bool>,
    prefix: Option<Cow<'a, str>>,
    content: Option<Cow<'a, str>>,
}

impl From<ScanError> for ParseError {
    fn from(e: ScanError) -> ParseError {
        ParseError(e.to_string())
    }
}

fn read_fields(line: &str) -> Result<Fields<'_>, ParseError> {
    let mut s = Scanner::new(line);
    let mut f = Fields::default();
    s.expect(b'{')?;
    let mut first = true;
    while s.more(b'}', first)? {
        first = false;
        let key = s.key()?;
        match key.as_ref() {
            "action" => f.action = Some(s.string()?),
            "xid" => f.xid = Some(s.u32()?),
            "timestamp" => f.timestamp = Some(s.string()?),
            "lsn" => f.lsn = Some(s.string()?),
            "nextlsn" => f.nextlsn = Some(s.string()?),
            "schema" => f.schema = Some(s.string()?),
            "table" => f.table = Some(s.string()?),
            "columns" => f.columns = columns(&mut s)?,
            "identity" => f.identity = columns(&mut s)?,
            "transactional" => {
                f.transactional = Some(match s.scalar()? {
                    Scalar::Bool(b) => b,
                    _ => return Err(ParseError("`transactional` is not a boolean".into())),
                })
            }
            "prefix" => f.prefix = Some(s.string()?),
            "content" => f.content = Some(s.string()?),
            _ => s.skip()?,
        }
    }
    s.end()?;
    Ok(f)
}

/// `[{"name":...,"typeoid":...,"value":...}, ...]`
fn columns<'a>(s: &mut Scanner<'a>) -> Result<Vec<Column<'a>>, ParseError> {
    let mut out = Vec::with_capacity(8);
    s.expect(b'[')?;
    let mut first = true;
    while s.more(b']', first)? {
        first = false;
        let (mut name, mut type_oid, mut value) = (None, None, None);
        s.expect(b'{')?;
        let mut first_member = true;
        while s.more(b'}', first_member)? {
            first_member = false;
            match s.key()?.as_ref() {
                "name" => name = Some(s.string()?),
                "typeoid" => type_oid = Some(s.u32()?),
                "value" => value = Some(s.scalar()?),
                _ => s.skip()?,
            }
        }
        let name = name.ok_or_else(|| ParseError("a column without `name`".into()))?;
        let type_oid = type_oid.ok_or_else(|| {
            ParseError(format!(
                "column {name}: no `typeoid` (the slot must be read with include-type-oids)"
            ))
        })?;
        let value = value.ok_or_else(|| ParseError(format!("column {name}: no `value`")))?;
        out.push(Column {
            value: text_form(value, type_oid),
            name,
            type_oid,
        });
    }
    Ok(out)
}

fn name<'a>(field: Option<Cow<'a, str>>, what: &str) -> Result<Cow<'a, str>, ParseError> {
    field.ok_or_else(|| ParseError(format!("`{what}` is missing")))
}

/// Parses one line.
pub fn parse(line: &str) -> Result<Message<'_>, ParseError> {
    let raw = read_fields(line)?;
    let lsn = |field: &Option<Cow<'_, str>>, name: &str| -> Result<Lsn, ParseError> {
        field
            .as_deref()
            .ok_or_else(|| {
                ParseError(format!(
                    "`{name}` is missing (the slot must be read with include-lsn)"
                ))
            })?
            .parse()
            .map_err(|e: super::lsn::LsnError| ParseError(e.to_string()))
    };
    let action = raw
        .action
        .as_deref()
        .ok_or_else(|| ParseError("`action` is missing".into()))?;
    Ok(match action {
        "B" | "C" => {
            let mark = TxnMark {
                xid: raw.xid.unwrap_or(0),
                commit_lsn: lsn(&raw.lsn, "lsn")?,
                end_lsn: lsn(&raw.nextlsn, "nextlsn")?,
                timestamp: raw.timestamp.unwrap_or(Cow::Borrowed("")),
            };
            if action == "B" {
                Message::Begin(mark)
            } else {
                Message::Commit(mark)
            }
        }
        a @ ("I" | "U" | "D") => Message::Change(Change {
            op: match a {
                "I" => Op::Insert,
                "U" => Op::Update,
                _ => Op::Delete,
            },
            lsn: lsn(&raw.lsn, "lsn")?,
            schema: name(raw.schema, "schema")?,
            table: name(raw.table, "table")?,
            columns: raw.columns,
            identity: raw.identity,
        }),
        "T" => Message::Truncate {
            lsn: lsn(&raw.lsn, "lsn").unwrap_or_default(),
            schema: name(raw.schema, "schema")?,
            table: name(raw.table, "table")?,
        },
        "M" => Message::Message {
            lsn: lsn(&raw.lsn, "lsn").unwrap_or_default(),
            transactional: raw.transactional.unwrap_or(false),
            prefix: raw.prefix.unwrap_or_default(),
            content: raw.content.unwrap_or_default(),
        },
        other => return Err(ParseError(format!("unknown action `{other}`"))),
    })
}

/// A value in PostgreSQL's text form.
fn text_form(value: Scalar<'_>, type_oid: u32) -> Value<'_> {
    let text: Cow<'_, str> = match value {
        Scalar::Null => return Value::Null,
        Scalar::Str(s) => s,
        Scalar::Number(n) => Cow::Borrowed(n),
        Scalar::Bool(true) => Cow::Borrowed("t"),
        Scalar::Bool(false) => Cow::Borrowed("f"),
    };
    Value::Text(if type_oid == BYTEA {
        Cow::Owned(format!("\\x{text}"))
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_commit_and_changes() {
        let b = r#"{"action":"B","xid":741,"timestamp":"2024-05-01 10:00:00.123+00","lsn":"0/16B3790","nextlsn":"0/16B37C0"}"#;
        let Message::Begin(m) = parse(b).unwrap() else {
            panic!()
        };
        assert_eq!(
            (m.xid, m.commit_lsn.to_string(), m.end_lsn.to_string()),
            (741, "0/16B3790".into(), "0/16B37C0".into())
        );
        let u = r#"{"action":"U","xid":741,"lsn":"0/16B3700","schema":"public","table":"we\"ird","columns":[{"name":"id","typeoid":20,"value":90071992547409931},{"name":"n","typeoid":1700,"value":1.10},{"name":"b","typeoid":16,"value":true},{"name":"d","typeoid":17,"value":"00ff"},{"name":"s","typeoid":25,"value":"a\tb\n\u00e9"},{"name":"z","typeoid":25,"value":null}],"identity":[{"name":"id","typeoid":20,"value":1}]}"#;
        assert_eq!(action_of(u.as_bytes()), Some(b'U'));
        let Message::Change(c) = parse(u).unwrap() else {
            panic!()
        };
        assert_eq!((c.op, c.table.as_ref()), (Op::Update, "we\"ird"));
        let texts: Vec<Option<&str>> = c.columns.iter().map(|c| c.value.as_text()).collect();
        assert_eq!(
            texts,
            [
                Some("90071992547409931"),
                Some("1.10"),
                Some("t"),
                Some("\\x00ff"),
                Some("a\tb\né"),
                None
            ]
        );
        assert_eq!(c.identity[0].value.as_text(), Some("1"));
        assert!(
            matches!(c.columns[0].name, Cow::Borrowed(_)),
            "names are borrowed"
        );
    }

    #[test]
    fn fields_in_any_order_and_unknown_ones_skipped() {
        // Options the slot is not read with add fields (`origin`, `pk`,
        // types, positions); members may come in any order.
        let u = r#"{ "table":"t","action":"I","origin":3,"pk":[{"name":"id","type":"int"}],"schema":"s","lsn":"0/10","columns":[{"position":1,"value":"a\"b","optional":false,"typeoid":25,"name":"c","type":"text"}]}"#;
        let Message::Change(c) = parse(u).unwrap() else {
            panic!()
        };
        assert_eq!(
            (c.op, c.schema.as_ref(), c.table.as_ref()),
            (Op::Insert, "s", "t")
        );
        assert_eq!(c.columns[0].value.as_text(), Some("a\"b"));
        assert!(c.identity.is_empty());
        for bad in [
            r#"{"action":"I","lsn":"0/1","schema":"s","table":"t","columns":[{"name":"c","value":1}]}"#,
            r#"{"action":"I","lsn":"0/1","schema":"s","table":"t","columns":[{"name":"c","typeoid":25,"value":[1]}]}"#,
            r#"{"action":"B","xid":-1,"lsn":"0/1","nextlsn":"0/2"}"#,
            r#"{"action":"B","lsn":"0/1","nextlsn":"0/2"} x"#,
            r#"{"lsn":"0/1"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn truncate_message_and_errors() {
        assert!(matches!(
            parse(r#"{"action":"T","xid":1,"lsn":"0/1","schema":"s","table":"t"}"#).unwrap(),
            Message::Truncate { .. }
        ));
        let m = parse(
            r#"{"action":"M","xid":1,"lsn":"0/2","transactional":true,"prefix":"p","content":"c"}"#,
        )
        .unwrap();
        assert!(matches!(
            m,
            Message::Message {
                transactional: true,
                ..
            }
        ));
        assert!(
            parse(r#"{"action":"X"}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown action")
        );
        assert!(
            parse(r#"{"action":"B","xid":1}"#)
                .unwrap_err()
                .to_string()
                .contains("include-lsn")
        );
        assert!(parse("{not json").is_err());
    }
}
