//! The streamed tables: what each looked like on the source when the stream
//! was set up, and what the job does to its rows. `setup` builds these from
//! xmat's own plan (so `*`, `select` and `plugins` mean what they mean in
//! `host xmat`) plus what only streaming needs (the replica identity key,
//! TOASTable columns, partitions); they are stored in the stream directory,
//! so `apply` needs no source connection, and every change is checked
//! against them: a change whose columns differ is DDL the stream cannot
//! follow, and stops it by name instead of diverging.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::wal2json::{self, Op};
use crate::xmat::catalog::{Catalog, Identity, RelKind};
use crate::xmat::jobs::{Job, PluginRef, Setting};
use crate::xmat::plan::Plan;
use crate::xmat::sql::Conn;

/// One streamed table (the source table and its copy have the same name).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamTable {
    pub name: String,
    /// Every column of the source table, in column order.
    pub columns: Vec<ColumnDef>,
    /// The replica identity's columns (indexes into `columns`): how a row is found.
    pub key: Vec<usize>,
    /// The old row arrives whole (`REPLICA IDENTITY FULL`).
    pub identity_full: bool,
    /// Leaf partitions whose changes belong to this table (wal2json names the leaf).
    pub partitions: Vec<String>,
    /// The copied columns in order, each with its `select` expression, if any.
    pub projection: Vec<Projected>,
    /// The job's `where` and its tenant's row predicate, as SQL on the source columns.
    pub filter: Option<String>,
    /// The job's plugins for this table, in order, as the job names them.
    pub plugins: Vec<PluginConf>,
}

/// A source column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub type_oid: u32,
    /// `format_type` text, as plugins are told.
    pub type_sql: String,
    pub not_null: bool,
    /// Stored out of line when large: an UPDATE that leaves it alone does not send it.
    pub toastable: bool,
    /// `GENERATED ... STORED`: the target computes it.
    pub generated: bool,
    /// `GENERATED ALWAYS AS IDENTITY`: written with OVERRIDING SYSTEM VALUE, never updated.
    pub identity_always: bool,
}

impl ColumnDef {
    /// float4, float8, numeric: wal2json before 2.6 writes NaN and ±Infinity as null.
    pub fn nan_as_null(&self) -> bool {
        matches!(self.type_oid, 700 | 701 | 1700)
    }
}

/// A copied column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Projected {
    /// Index into `columns`.
    pub column: usize,
    /// The `select` expression replacing it, `{column_name}` substituted.
    pub expr: Option<String>,
}

/// A plugin of the job, as configured at setup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PluginConf {
    /// As the job names it (under a policy, the policy's name for it);
    /// streams set up before names were kept have only the location.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub location: String,
    /// Parameters as written (`env:NAME` is read at each run).
    pub params: Vec<(String, String)>,
}

impl PluginConf {
    /// xmat's form, to load it the same way.
    pub fn plugin_ref(&self) -> PluginRef {
        PluginRef {
            name: if self.name.is_empty() {
                self.location.clone()
            } else {
                self.name.clone()
            },
            location: self.location.clone(),
            params: self
                .params
                .iter()
                .map(|(k, v)| (k.clone(), Setting::new(v.clone())))
                .collect(),
        }
    }
}

impl StreamTable {
    /// The copied columns' names and types, as plugins are told (as in `host xmat`).
    pub fn plugin_columns(&self) -> Vec<crate::plugin::Column> {
        self.projection
            .iter()
            .map(|p| crate::plugin::Column {
                name: self.columns[p.column].name.clone(),
                type_name: self.columns[p.column].type_sql.clone(),
            })
            .collect()
    }

    /// Whether rows are only copied in part (a `where`, or a where-filter
    /// plugin may drop some): then an UPDATE may move a row in or out.
    pub fn has_expressions(&self) -> bool {
        self.filter.is_some() || self.projection.iter().any(|p| p.expr.is_some())
    }

    /// Whether changes go through anything but a plain copy.
    pub fn is_shaped(&self) -> bool {
        self.has_expressions() || !self.plugins.is_empty()
    }

    /// The key's positions in the projection.
    pub fn key_in_projection(&self) -> Vec<usize> {
        self.key
            .iter()
            .map(|k| {
                self.projection
                    .iter()
                    .position(|p| p.column == *k)
                    .expect("setup checked the key is copied")
            })
            .collect()
    }
}

/// Lookup of changes' tables by the name wal2json gives (a table or a leaf partition).
#[derive(Debug, Default)]
pub struct TableIndex {
    by_name: HashMap<String, usize>,
}

impl TableIndex {
    pub fn new(tables: &[StreamTable]) -> TableIndex {
        let mut by_name = HashMap::new();
        for (i, t) in tables.iter().enumerate() {
            by_name.insert(t.name.clone(), i);
            for p in &t.partitions {
                by_name.insert(p.clone(), i);
            }
        }
        TableIndex { by_name }
    }

    pub fn get(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }
}

/// A change that does not fit the table as it was at setup: DDL.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(pub String);

/// Maps a change's columns onto the table's (`out[i]` is the index into
/// `columns` of the change's column `i`). A column the table does not have,
/// a type that changed, or a column missing from a new row that could not be
/// an unchanged TOASTed value, is DDL.
pub fn match_columns(
    table: &StreamTable,
    op: Op,
    columns: &[wal2json::Column<'_>],
    out: &mut Vec<usize>,
) -> Result<(), Mismatch> {
    out.clear();
    for (i, c) in columns.iter().enumerate() {
        // Usually the same position; partitions may order columns differently.
        let idx = match table.columns.get(i) {
            Some(d) if d.name == c.name => i,
            _ => table
                .columns
                .iter()
                .position(|d| d.name == c.name)
                .ok_or_else(|| {
                    Mismatch(format!(
                        "column {} is not in the table as it was at setup (added or renamed)",
                        c.name
                    ))
                })?,
        };
        let def = &table.columns[idx];
        if def.type_oid != c.type_oid {
            return Err(Mismatch(format!(
                "column {} changed type (type oid {} at setup, now {})",
                c.name, def.type_oid, c.type_oid
            )));
        }
        out.push(idx);
    }
    if out.len() != table.columns.len() {
        for (idx, def) in table.columns.iter().enumerate() {
            if out.contains(&idx) {
                continue;
            }
            // Only an UPDATE may leave out a value, and only a TOASTed one.
            if op != Op::Update || !def.toastable {
                return Err(Mismatch(format!(
                    "column {} is missing from the {} (dropped or renamed)",
                    def.name,
                    op.as_str()
                )));
            }
        }
    }
    Ok(())
}

/// Facts about each copied table that only streaming needs.
struct Facts {
    replident: char,
    key: Vec<String>,
    toastable: Vec<String>,
    partitions: Vec<(String, String)>,
}

async fn read_facts(conn: &Conn, oids: &[u32]) -> Result<HashMap<u32, Facts>, String> {
    let sql = "SELECT c.oid, c.relreplident::text, \
           coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord) \
              FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) \
              JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
              WHERE i.indrelid = c.oid AND CASE c.relreplident WHEN 'i' THEN i.indisreplident \
                                                              ELSE i.indisprimary END), '{}'), \
           array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 \
                 AND NOT a.attisdropped AND a.attlen = -1 AND a.attstorage <> 'p' ORDER BY a.attnum), \
           array(SELECT n.nspname::text FROM pg_partition_tree(c.oid) t JOIN pg_class p ON p.oid = t.relid \
                 JOIN pg_namespace n ON n.oid = p.relnamespace WHERE t.isleaf AND t.relid <> c.oid ORDER BY p.relname), \
           array(SELECT p.relname::text FROM pg_partition_tree(c.oid) t JOIN pg_class p ON p.oid = t.relid \
                 WHERE t.isleaf AND t.relid <> c.oid ORDER BY p.relname) \
         FROM pg_class c WHERE c.oid = ANY($1)";
    let rows = conn.query(sql, &[&oids]).await.map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    for r in rows {
        let replident: String = r.get(1);
        let schemas: Vec<String> = r.get(4);
        let names: Vec<String> = r.get(5);
        out.insert(
            r.get::<_, u32>(0),
            Facts {
                replident: replident.chars().next().unwrap_or('d'),
                key: r.get(2),
                toastable: r.get(3),
                partitions: schemas.into_iter().zip(names).collect(),
            },
        );
    }
    Ok(out)
}

/// Builds the streamed tables from the job's xmat plan (`written` is the
/// job as its file says, `plan` is of the job as it runs, bound to its
/// tenant if it has one). Refuses, by table
/// name, what cannot be streamed exactly: no primary key or replica
/// identity (wal2json silently skips their UPDATEs and DELETEs), a key the
/// job leaves out or computes, a leaf partition in another schema.
pub async fn describe(
    conn: &Conn,
    written: &Job,
    cat: &Catalog,
    plan: &Plan,
) -> Result<Vec<StreamTable>, String> {
    let oids: Vec<u32> = plan.tables.iter().map(|t| t.oid).collect();
    let facts = read_facts(conn, &oids).await?;
    let mut tables = Vec::new();
    let mut problems = Vec::new();
    for t in &plan.tables {
        let rel = cat
            .relation(t.oid)
            .expect("planned tables are in the catalog");
        let f = &facts[&t.oid];
        let columns: Vec<ColumnDef> = rel
            .columns
            .iter()
            .map(|c| ColumnDef {
                name: c.name.clone(),
                type_oid: c.type_oid,
                type_sql: c.type_sql.clone(),
                not_null: c.not_null,
                toastable: f.toastable.contains(&c.name),
                generated: c.generated.is_some(),
                identity_always: c.identity == Some(Identity::Always),
            })
            .collect();
        let pos = |name: &str| columns.iter().position(|c| c.name == name);
        let key: Vec<usize> = f.key.iter().filter_map(|k| pos(k)).collect();
        let identity_full = f.replident == 'f';
        match f.replident {
            'n' => problems.push(format!(
                "table {}: REPLICA IDENTITY NOTHING; its UPDATEs and DELETEs would not be streamed \
                 (ALTER TABLE ... REPLICA IDENTITY DEFAULT, with a primary key)",
                t.name
            )),
            _ if key.is_empty() => problems.push(format!(
                "table {}: no primary key or replica identity index; wal2json skips its UPDATEs and \
                 DELETEs (add a primary key, or ALTER TABLE ... REPLICA IDENTITY USING INDEX)",
                t.name
            )),
            _ => {}
        }
        let projection: Vec<Projected> = t
            .projection
            .iter()
            .map(|p| Projected {
                column: pos(&p.name).expect("projected columns exist"),
                expr: p.expr.clone(),
            })
            .collect();
        for k in &key {
            match projection.iter().find(|p| p.column == *k) {
                None => problems.push(format!(
                    "table {}: key column {} is left out by `select`; the target could not find rows",
                    t.name, columns[*k].name
                )),
                Some(p) if p.expr.is_some() => problems.push(format!(
                    "table {}: key column {} is computed by a `select` expression; use a plugin \
                     (the stream transforms old keys through plugins, not SQL)",
                    t.name, columns[*k].name
                )),
                Some(_) => {}
            }
        }
        let mut partitions = Vec::new();
        for (schema, name) in &f.partitions {
            if *schema != plan.source_schema {
                problems.push(format!(
                    "table {}: partition {schema}.{name} is in another schema, which the stream does not read",
                    t.name
                ));
            }
            partitions.push(name.clone());
        }
        if rel.kind == RelKind::Partitioned && partitions.is_empty() {
            tracing::warn!("table {}: partitioned, with no partition yet", t.name);
        }
        // The plugins as the job names them: under a policy each run binds
        // them again (pinned build, the tenant's parameters and secrets),
        // so no secret is ever stored in the stream directory.
        let entry = written
            .tables
            .iter()
            .find(|e| e.name == t.name)
            .or_else(|| written.tables.iter().find(|e| e.name == "*"))
            .expect("planned tables come from an entry");
        tables.push(StreamTable {
            name: t.name.clone(),
            columns,
            key,
            identity_full,
            partitions,
            projection,
            filter: t.filter.clone(),
            plugins: entry
                .plugins
                .iter()
                .map(|p| PluginConf {
                    name: p.name.clone(),
                    location: p.location.clone(),
                    params: p
                        .params
                        .iter()
                        .map(|(k, v)| (k.clone(), v.raw().to_string()))
                        .collect(),
                })
                .collect(),
        });
    }
    if problems.is_empty() {
        Ok(tables)
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn col(name: &str, oid: u32, toastable: bool) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            type_oid: oid,
            type_sql: String::new(),
            not_null: false,
            toastable,
            generated: false,
            identity_always: false,
        }
    }

    fn table() -> StreamTable {
        StreamTable {
            name: "t".into(),
            columns: vec![
                col("id", 20, false),
                col("big", 25, true),
                col("n", 23, false),
            ],
            key: vec![0],
            identity_full: false,
            partitions: vec![],
            projection: (0..3)
                .map(|column| Projected { column, expr: None })
                .collect(),
            filter: None,
            plugins: vec![],
        }
    }

    fn c(name: &'static str, oid: u32) -> wal2json::Column<'static> {
        wal2json::Column {
            name: Cow::Borrowed(name),
            type_oid: oid,
            value: wal2json::Value::Null,
        }
    }

    #[test]
    fn changed_columns_are_ddl_and_missing_toast_is_not() {
        let t = table();
        let mut out = Vec::new();
        match_columns(
            &t,
            Op::Insert,
            &[c("id", 20), c("big", 25), c("n", 23)],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [0, 1, 2]);
        match_columns(&t, Op::Update, &[c("id", 20), c("n", 23)], &mut out).unwrap();
        assert_eq!(out, [0, 2]);
        let e = match_columns(&t, Op::Insert, &[c("id", 20), c("n", 23)], &mut out).unwrap_err();
        assert!(e.0.contains("big is missing from the INSERT"), "{e}");
        let e = match_columns(&t, Op::Update, &[c("id", 20), c("big", 25)], &mut out).unwrap_err();
        assert!(e.0.contains("n is missing"), "{e}");
        let e = match_columns(
            &t,
            Op::Insert,
            &[c("id", 20), c("big", 25), c("n", 20)],
            &mut out,
        )
        .unwrap_err();
        assert!(e.0.contains("changed type"), "{e}");
        let e = match_columns(
            &t,
            Op::Insert,
            &[c("id", 20), c("big", 25), c("n", 23), c("x", 23)],
            &mut out,
        )
        .unwrap_err();
        assert!(e.0.contains("column x is not in the table"), "{e}");
        // Another column order (a partition) still matches by name.
        match_columns(
            &t,
            Op::Insert,
            &[c("n", 23), c("id", 20), c("big", 25)],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [2, 0, 1]);
    }
}
