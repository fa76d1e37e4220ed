//! Runs of changes in one statement: changes to one table, of one
//! [`Shape`], within one group of source transactions (which commit
//! together: see [`super`]; which changes [`super::gather`] decides),
//! become one statement over
//! `unnest` of text arrays (one array per parameter of the row statement,
//! one element per change), so the target parses, plans and executes once
//! per run instead of once per row.
//!
//! A run holds the same rows the row statements would touch, in a form
//! whose result does not depend on order within the statement:
//! - every change in a run has a different key (a second change to a key
//!   starts a new run), so no target row is matched twice;
//! - an UPDATE that changes the key is never in a run (moving keys within
//!   one statement could meet a unique index in another order than the
//!   source did); it goes alone, as a row statement.
//!
//! Each value is cast from text to the target column's type by its
//! schema-qualified internal name (`pg_catalog.bpchar`, not `character`,
//! which would mean `char(1)`): the type's input function, no typmod, then
//! the column's assignment coercion, exactly as a text parameter of the row
//! statement is read.

use bytes::BufMut;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::super::tables::StreamTable;
use super::Op;
use super::statements::{Shape, TOUCHED, update_columns, update_columns_iter};
use crate::xmat::sql::{ident, qualified};

/// The statement for a run of one table and shape. `types[i]` is the
/// target's type of projection column `i`. Parameters: one `text[]` per
/// parameter of the row statement, in the same order.
pub fn sql(table: &StreamTable, schema: &str, shape: &Shape, types: &[String]) -> String {
    let target = qualified(schema, &table.name);
    let cols: Vec<&str> = table
        .projection
        .iter()
        .map(|p| table.columns[p.column].name.as_str())
        .collect();
    let keys = table.key_in_projection();
    let all: Vec<usize> = (0..cols.len()).collect();
    // The projection column each parameter goes to (or is compared with).
    let params: Vec<usize> = match shape {
        Shape::Insert => all.clone(),
        Shape::Update(present) => {
            let mut p = update_columns(table, present.as_deref());
            p.extend(&keys);
            p
        }
        Shape::Upsert => all.iter().chain(&keys).copied().collect(),
        Shape::Delete => keys.clone(),
    };
    let from = format!(
        "unnest({}) AS _v({})",
        (1..=params.len())
            .map(|i| format!("${i}::text[]"))
            .collect::<Vec<_>>()
            .join(", "),
        (1..=params.len())
            .map(|i| format!("p{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let value = |n: usize| format!("_v.p{}::{}", n + 1, types[params[n]]);
    let key_match = || {
        let first = params.len() - keys.len();
        keys.iter()
            .enumerate()
            .map(|(j, &k)| format!("_t.{} = {}", ident(cols[k]), value(first + j)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let settable = |i: usize| !table.columns[table.projection[i].column].identity_always;
    // `a = _v.p1::T, ...` for the parameters `0..n` that are settable.
    let sets = |n: usize| {
        let s: Vec<String> = (0..n)
            .filter(|&i| settable(params[i]))
            .map(|i| format!("{} = {}", ident(cols[params[i]]), value(i)))
            .collect();
        if s.is_empty() {
            // Nothing settable changed: keep the statement valid (and
            // still count the rows found).
            let k = ident(cols[keys[0]]);
            format!("{k} = _t.{k}")
        } else {
            s.join(", ")
        }
    };
    let overriding = if all.iter().any(|&i| !settable(i)) {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    let list = all
        .iter()
        .map(|&i| ident(cols[i]))
        .collect::<Vec<_>>()
        .join(", ");
    let values = |n: usize| (0..n).map(value).collect::<Vec<_>>().join(", ");
    match shape {
        Shape::Insert => format!(
            "INSERT INTO {target} ({list}){overriding} SELECT {} FROM {from}",
            values(cols.len())
        ),
        Shape::Update(_) => format!(
            "UPDATE {target} AS _t SET {} FROM {from} WHERE {}",
            sets(params.len() - keys.len()),
            key_match()
        ),
        Shape::Upsert => {
            let old: Vec<String> = (cols.len() + 1..=params.len())
                .map(|i| format!("p{i}"))
                .collect();
            format!(
                "WITH _v AS (SELECT * FROM {from}), \
                 u AS (UPDATE {target} AS _t SET {} FROM _v WHERE {} RETURNING {}), \
                 i AS (INSERT INTO {target} ({list}){overriding} SELECT {} FROM _v \
                 WHERE NOT EXISTS (SELECT FROM u WHERE {}) RETURNING 1) {TOUCHED}",
                sets(cols.len()),
                key_match(),
                old.iter()
                    .map(|p| format!("_v.{p}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                values(cols.len()),
                old.iter()
                    .map(|p| format!("u.{p} = _v.{p}"))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            )
        }
        Shape::Delete => format!(
            "DELETE FROM {target} AS _t USING {from} WHERE {}",
            key_match()
        ),
    }
}

/// Whether a change may be in a run (`keys`: the key's projection
/// positions). A run's result is one count, the rows all its changes
/// touched together: it tells that each change found its one row only when
/// no key can match two (`key_unique`: the target has a unique index on
/// the key); otherwise one key matching two rows and another none add up
/// to the right count. INSERTs always count one row each. An
/// update-or-insert touches at least one row per change (the rows its key
/// matched, or the one it inserted), so its run's total equals the number
/// of changes exactly when each touched one: checkable on any target.
pub fn joinable(op: &Op, table: &StreamTable, keys: &[usize], key_unique: bool) -> bool {
    let counted = key_unique || matches!(op.shape, Shape::Insert | Shape::Upsert);
    counted && keeps_key(op, table, keys)
}

/// Not an UPDATE that moves its key. (Per change: nothing is collected.)
fn keeps_key(op: &Op, table: &StreamTable, keys: &[usize]) -> bool {
    let old = op.params.len() - keys.len();
    // Where key column `k` is among the values the statement sets.
    let set_at = |k: usize| match &op.shape {
        Shape::Insert | Shape::Delete => None,
        Shape::Update(present) => {
            update_columns_iter(table, present.as_deref()).position(|c| c == k)
        }
        Shape::Upsert => Some(k),
    };
    if matches!(op.shape, Shape::Insert | Shape::Delete) {
        return true;
    }
    keys.iter()
        .enumerate()
        .all(|(j, &k)| set_at(k).is_none_or(|n| op.params.get(n) == op.params.get(old + j)))
}

/// The change's key on the target (new for an INSERT, old otherwise), as
/// bytes to tell keys apart within a run.
pub fn key_bytes(op: &Op, keys: &[usize], out: &mut Vec<u8>) {
    out.clear();
    let old = op.params.len() - keys.len();
    for (j, k) in keys.iter().enumerate() {
        let v = match op.shape {
            Shape::Insert => op.params.get(*k),
            _ => op.params.get(old + j),
        };
        match v {
            // Lengths first: no separator can be confused with a value.
            Some(s) => {
                out.extend((s.len() as u64).to_le_bytes());
                out.extend(s.as_bytes());
            }
            None => out.extend(u64::MAX.to_le_bytes()),
        }
    }
}

/// Parameter `i` of every change of a run, as one `text[]` (binary array
/// format, built straight from the changes' buffers).
#[derive(Debug)]
pub struct Column<'a> {
    pub ops: &'a [Op],
    pub i: usize,
}

impl ToSql for Column<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let nulls = self.ops.iter().any(|op| op.params.get(self.i).is_none());
        out.put_i32(1); // dimensions
        out.put_i32(nulls as i32);
        out.put_u32(Type::TEXT.oid());
        out.put_i32(i32::try_from(self.ops.len())?);
        out.put_i32(1); // lower bound
        for op in self.ops {
            match op.params.get(self.i) {
                None => out.put_i32(-1),
                Some(s) => {
                    out.put_i32(i32::try_from(s.len())?);
                    out.put_slice(s.as_bytes());
                }
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TEXT_ARRAY
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> StreamTable {
        super::super::test_table(2)
    }

    #[test]
    fn run_statements() {
        let t = table();
        let types = ["pg_catalog.int8", "pg_catalog.text", "pg_catalog.int4"].map(String::from);
        assert_eq!(
            sql(&t, "s", &Shape::Insert, &types),
            "INSERT INTO \"s\".\"we\"\"ird\" (\"id\", \"a\", \"b\") OVERRIDING SYSTEM VALUE SELECT \
             _v.p1::pg_catalog.int8, _v.p2::pg_catalog.text, _v.p3::pg_catalog.int4 FROM \
             unnest($1::text[], $2::text[], $3::text[]) AS _v(p1, p2, p3)"
        );
        assert_eq!(
            sql(&t, "s", &Shape::Update(Some(vec![1, 2])), &types),
            "UPDATE \"s\".\"we\"\"ird\" AS _t SET \"a\" = _v.p1::pg_catalog.text FROM \
             unnest($1::text[], $2::text[]) AS _v(p1, p2) WHERE _t.\"id\" = _v.p2::pg_catalog.int8"
        );
        assert_eq!(
            sql(&t, "s", &Shape::Delete, &types),
            "DELETE FROM \"s\".\"we\"\"ird\" AS _t USING unnest($1::text[]) AS _v(p1) WHERE \
             _t.\"id\" = _v.p1::pg_catalog.int8"
        );
        let upsert = sql(&t, "s", &Shape::Upsert, &types);
        assert!(upsert.contains("RETURNING _v.p4)"), "{upsert}");
        assert!(
            upsert.ends_with(&format!(
                "WHERE NOT EXISTS (SELECT FROM u WHERE u.p4 = _v.p4) RETURNING 1) {TOUCHED}"
            )),
            "{upsert}"
        );
    }
}
