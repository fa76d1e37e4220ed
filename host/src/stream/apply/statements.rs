//! The statements changes become on the target, one shape per table and
//! kind, prepared once. Parameters are sent in text form with their types
//! left to the server (each meets a column, so PostgreSQL types it from the
//! column and reads it with the column type's input function, exactly as a
//! COPY would).
//!
//! - INSERT: every copied column.
//! - UPDATE: the columns the change carries (wal2json leaves unchanged
//!   TOASTed values out) `WHERE` the old key. Identity columns that are
//!   `GENERATED ALWAYS` are never set (PostgreSQL refuses).
//! - On tables whose rows are copied in part (a `where` or plugins, which
//!   may drop rows), an UPDATE carrying the whole row is an update-or-insert
//!   in one statement: the row may be entering the subset. Its result is
//!   one row, the count of rows it updated plus those it inserted (an
//!   INSERT's own count would hide an UPDATE that found two rows with the
//!   key on a target without a unique index on it: see [`counts_by_row`]).
//! - DELETE: `WHERE` the old key.

use bytes::BufMut;
use tokio_postgres::types::{Format, IsNull, ToSql, Type, to_sql_checked};

use super::super::tables::StreamTable;
use crate::xmat::sql::{ident, qualified};

/// The shape of a statement (its SQL depends on the table and this only).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Shape {
    Insert,
    /// UPDATE of the projection columns listed (positions in the projection; `None`: all).
    Update(Option<Vec<usize>>),
    /// UPDATE of every column, or INSERT when no row has the old key.
    Upsert,
    Delete,
}

/// SQL for one shape of one table in the target schema. Parameters: the
/// values (in projection order, or the listed columns), then the old key.
pub fn sql(table: &StreamTable, schema: &str, shape: &Shape) -> String {
    let target = qualified(schema, &table.name);
    let cols: Vec<&str> = table
        .projection
        .iter()
        .map(|p| table.columns[p.column].name.as_str())
        .collect();
    let overriding = if table
        .projection
        .iter()
        .any(|p| table.columns[p.column].identity_always)
    {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    let settable = |i: usize| !table.columns[table.projection[i].column].identity_always;
    let key_where = |first: usize| -> String {
        table
            .key_in_projection()
            .iter()
            .enumerate()
            .map(|(n, k)| format!("{} = ${}", ident(cols[*k]), first + n))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let list = |idx: &[usize]| {
        idx.iter()
            .map(|&i| ident(cols[i]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all: Vec<usize> = (0..cols.len()).collect();
    let placeholders = |n: usize| {
        (1..=n)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match shape {
        Shape::Insert => format!(
            "INSERT INTO {target} ({}){overriding} VALUES ({})",
            list(&all),
            placeholders(cols.len())
        ),
        Shape::Update(which) => {
            let idx = update_columns(table, which.as_deref());
            let sets = if idx.is_empty() {
                // Nothing settable changed: keep the statement valid (and
                // still check the row is there).
                let k = table.key_in_projection()[0];
                format!("{0} = {0}", ident(cols[k]))
            } else {
                idx.iter()
                    .enumerate()
                    .map(|(n, i)| format!("{} = ${}", ident(cols[*i]), n + 1))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "UPDATE {target} SET {sets} WHERE {}",
                key_where(idx.len() + 1)
            )
        }
        Shape::Upsert => {
            let sets = set_list(&cols, &all, settable);
            format!(
                "WITH u AS (UPDATE {target} SET {sets} WHERE {} RETURNING 1), \
                 i AS (INSERT INTO {target} ({}){overriding} SELECT {} \
                 WHERE NOT EXISTS (SELECT FROM u) RETURNING 1) \
                 {TOUCHED}",
                key_where(cols.len() + 1),
                list(&all),
                placeholders(cols.len())
            )
        }
        Shape::Delete => format!("DELETE FROM {target} WHERE {}", key_where(1)),
    }
}

/// The end of an update-or-insert: the rows its `u` (UPDATE) and `i`
/// (INSERT) touched, as one `bigint`.
pub const TOUCHED: &str = "SELECT (SELECT count(*) FROM u) + (SELECT count(*) FROM i)";

/// Whether a shape's statement reports the rows it touched as a result row
/// ([`TOUCHED`]) rather than as its command's row count.
pub fn counts_by_row(shape: &Shape) -> bool {
    matches!(shape, Shape::Upsert)
}

/// `a = $1, b = $2` over all columns (the upsert, whose INSERT uses every
/// parameter); GENERATED ALWAYS identity columns are not set.
fn set_list(cols: &[&str], idx: &[usize], settable: impl Fn(usize) -> bool) -> String {
    let sets: Vec<String> = idx
        .iter()
        .enumerate()
        .filter(|(_, i)| settable(**i))
        .map(|(n, i)| format!("{} = ${}", ident(cols[*i]), n + 1))
        .collect();
    if sets.is_empty() {
        let first = idx.first().copied().unwrap_or(0);
        format!("{0} = {0}", ident(cols[first]))
    } else {
        sets.join(", ")
    }
}

/// The projection positions an UPDATE sets (and takes values for, in this
/// order, before the key): those present, except GENERATED ALWAYS identity
/// columns, which PostgreSQL does not let an UPDATE set.
pub fn update_columns(table: &StreamTable, present: Option<&[usize]>) -> Vec<usize> {
    update_columns_iter(table, present).collect()
}

/// [`update_columns`] without collecting them (per change, where the list
/// is only walked).
pub fn update_columns_iter<'a>(
    table: &'a StreamTable,
    present: Option<&'a [usize]>,
) -> impl Iterator<Item = usize> + 'a {
    let (listed, all) = match present {
        Some(p) => (Some(p.iter().copied()), None),
        None => (None, Some(0..table.projection.len())),
    };
    listed
        .into_iter()
        .flatten()
        .chain(all.into_iter().flatten())
        .filter(|&i| !table.columns[table.projection[i].column].identity_always)
}

/// `TRUNCATE ONLY a, b`: the tables of one source TRUNCATE, together, so
/// foreign keys between them do not refuse it.
pub fn truncate(tables: &[&StreamTable], schema: &str) -> String {
    let names: Vec<String> = tables.iter().map(|t| qualified(schema, &t.name)).collect();
    format!("TRUNCATE ONLY {}", names.join(", "))
}

/// Text values for one statement, in one buffer.
#[derive(Debug, Clone, Default)]
pub struct Params {
    text: String,
    spans: Vec<Option<(u32, u32)>>,
}

impl Params {
    pub fn with_capacity(values: usize, bytes: usize) -> Params {
        Params {
            text: String::with_capacity(bytes),
            spans: Vec::with_capacity(values),
        }
    }

    pub fn push(&mut self, value: Option<&str>) {
        self.spans.push(value.map(|v| {
            let start = self.text.len() as u32;
            self.text.push_str(v);
            (start, self.text.len() as u32)
        }));
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        self.spans[i].map(|(a, b)| &self.text[a as usize..b as usize])
    }

    /// The parameters as the driver takes them.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = TextParam<'_>> {
        (0..self.spans.len()).map(|i| TextParam(self.get(i)))
    }
}

/// A parameter sent in text form whatever its type.
#[derive(Debug, Clone, Copy)]
pub struct TextParam<'a>(pub Option<&'a str>);

impl ToSql for TextParam<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            None => Ok(IsNull::Yes),
            Some(s) => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> StreamTable {
        super::super::test_table(0)
    }

    #[test]
    fn statement_shapes() {
        let t = table();
        assert_eq!(
            sql(&t, "s", &Shape::Insert),
            "INSERT INTO \"s\".\"we\"\"ird\" (\"id\", \"a\", \"b\") OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3)"
        );
        assert_eq!(
            sql(&t, "s", &Shape::Update(Some(vec![0, 2]))),
            "UPDATE \"s\".\"we\"\"ird\" SET \"b\" = $1 WHERE \"id\" = $2"
        );
        assert_eq!(
            sql(&t, "s", &Shape::Delete),
            "DELETE FROM \"s\".\"we\"\"ird\" WHERE \"id\" = $1"
        );
        let upsert = sql(&t, "s", &Shape::Upsert);
        assert!(upsert.starts_with(
            "WITH u AS (UPDATE \"s\".\"we\"\"ird\" SET \"a\" = $2, \"b\" = $3 WHERE \"id\" = $4 RETURNING 1), \
             i AS (INSERT"
        ), "{upsert}");
        assert!(upsert.ends_with(TOUCHED), "{upsert}");
        let mut p = Params::default();
        p.push(Some("x"));
        p.push(None);
        p.push(Some(""));
        assert_eq!((p.get(0), p.get(1), p.get(2)), (Some("x"), None, Some("")));
    }
}
