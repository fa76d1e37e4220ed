//! DDL text for the target: the source's own types, sequences and tables.
//!
//! Names we write ourselves are qualified with the build schema; text that
//! comes from the catalog (types, defaults, partition bounds) is relative to
//! the source schema and resolves in the build schema because the target
//! session runs with `search_path` set to it (see `catalog`).

use std::collections::{BTreeSet, HashMap};

use super::catalog::{Catalog, ColumnInfo, Identity, Relation, Sequence, TypeInfo};
use super::sql::{ident, literal, qualified};

/// A type of the source that cannot be recreated on the target.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TypeError {
    #[error("a column has type {0}, the row type of a table; use a composite type instead")]
    TableRowType(String),
    #[error("type {0} is a base type (written in C); xmat cannot recreate it")]
    BaseType(String),
    #[error("type {name} of kind '{kind}' cannot be recreated")]
    Kind { name: String, kind: char },
}

/// PostgreSQL's first OID for user-created objects: below it, built-in types.
const FIRST_NORMAL_OID: u32 = 16384;

/// Whether values of this type survive binary COPY from one database to
/// another: built-in types do, and enums (sent as their label). Arrays and
/// composites of user types do not, because their binary form embeds type
/// OIDs, which differ between databases.
pub fn binary_safe(cat: &Catalog, mut oid: u32) -> bool {
    for _ in 0..16 {
        if oid < FIRST_NORMAL_OID {
            return true;
        }
        match cat.types.get(&oid) {
            Some(t) if t.kind == 'd' => oid = t.base,
            Some(t) => return t.kind == 'e',
            None => return false,
        }
    }
    false
}

/// The source's own types that these column types need, dependencies first,
/// as `CREATE TYPE` / `CREATE DOMAIN` statements.
pub fn types_ddl(cat: &Catalog, build: &str, used: &[u32]) -> Result<Vec<String>, TypeError> {
    let mut order: Vec<u32> = Vec::new();
    let mut seen = BTreeSet::new();
    for &oid in used {
        visit_type(cat, oid, &mut seen, &mut order)?;
    }
    order
        .iter()
        .map(|oid| type_ddl(&cat.types[oid], build))
        .collect()
}

/// Depth-first: a type's own dependencies go before it.
fn visit_type(
    cat: &Catalog,
    oid: u32,
    seen: &mut BTreeSet<u32>,
    order: &mut Vec<u32>,
) -> Result<(), TypeError> {
    if oid < FIRST_NORMAL_OID || !seen.insert(oid) {
        return Ok(());
    }
    let Some(t) = cat.types.get(&oid) else {
        return Ok(());
    };
    if t.elem != 0 {
        // An array: its element is what gets created.
        return visit_type(cat, t.elem, seen, order);
    }
    let deps: Vec<u32> = match t.kind {
        'd' => vec![t.base],
        'c' => t.attrs.iter().map(|a| a.2).collect(),
        'r' => t.range.iter().map(|r| r.subtype).collect(),
        _ => Vec::new(),
    };
    for d in deps {
        visit_type(cat, d, seen, order)?;
    }
    if t.local {
        match t.kind {
            'e' | 'd' | 'r' => order.push(oid),
            'c' if t.table_rowtype => return Err(TypeError::TableRowType(t.sql.clone())),
            'c' => order.push(oid),
            'b' => return Err(TypeError::BaseType(t.sql.clone())),
            _ => {}
        }
    }
    Ok(())
}

fn type_ddl(t: &TypeInfo, build: &str) -> Result<String, TypeError> {
    // `t.sql` is the type's name as format_type prints it relative to the
    // source schema: unqualified, already quoted where needed.
    let name = format!("{}.{}", ident(build), t.sql);
    Ok(match t.kind {
        'e' => format!(
            "CREATE TYPE {name} AS ENUM ({})",
            t.labels
                .iter()
                .map(|l| literal(l))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        'd' => {
            let mut s = format!("CREATE DOMAIN {name} AS {}", t.base_sql);
            if let Some(c) = &t.collation {
                s += &format!(" COLLATE {c}");
            }
            if let Some(d) = &t.default {
                s += &format!(" DEFAULT {d}");
            }
            if t.not_null {
                s += " NOT NULL";
            }
            for (n, def) in &t.checks {
                s += &format!(" CONSTRAINT {} {def}", ident(n));
            }
            s
        }
        'c' => format!(
            "CREATE TYPE {name} AS ({})",
            t.attrs
                .iter()
                .map(|(n, ty, _)| format!("{} {ty}", ident(n)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        'r' => {
            let Some(r) = t.range.as_ref() else {
                return Err(TypeError::Kind {
                    name: t.sql.clone(),
                    kind: 'r',
                });
            };
            let mut s = format!("CREATE TYPE {name} AS RANGE (SUBTYPE = {}", r.subtype_sql);
            if let Some(o) = &r.opclass {
                s += &format!(", SUBTYPE_OPCLASS = {o}");
            }
            if let Some(c) = &r.collation {
                s += &format!(", COLLATION = {c}");
            }
            if let Some(d) = &r.subtype_diff {
                s += &format!(", SUBTYPE_DIFF = {d}");
            }
            s + ")"
        }
        other => {
            return Err(TypeError::Kind {
                name: t.sql.clone(),
                kind: other,
            });
        }
    })
}

/// `CREATE SEQUENCE` with the source's parameters (its value is set after the data).
pub fn sequence_ddl(s: &Sequence, build: &str) -> String {
    format!(
        "CREATE SEQUENCE {} AS {}{}",
        qualified(build, &s.name),
        s.type_sql,
        sequence_options(s)
    )
}

fn sequence_options(s: &Sequence) -> String {
    format!(
        " START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} CACHE {}{}",
        s.start,
        s.increment,
        s.min,
        s.max,
        s.cache,
        if s.cycle { " CYCLE" } else { " NO CYCLE" }
    )
}

/// How one target column is declared.
#[derive(Debug, Clone)]
pub struct ColumnDecl<'a> {
    pub column: &'a ColumnInfo,
    /// The default, unless it calls a function that is not copied.
    pub default: Option<&'a str>,
    /// Keep `GENERATED ... STORED` (false: a plain column with the copied values).
    pub generated: bool,
    /// The identity sequence, for identity columns.
    pub identity_sequence: Option<&'a Sequence>,
}

/// `CREATE TABLE` for a copied relation: a plain (or partitioned) table,
/// whatever the source relation was.
pub fn table_ddl(rel: &Relation, build: &str, columns: &[ColumnDecl<'_>]) -> String {
    let defs: Vec<String> = columns.iter().map(|c| column_ddl(c, build)).collect();
    let mut s = format!(
        "CREATE {}TABLE {} ({})",
        if rel.unlogged { "UNLOGGED " } else { "" },
        qualified(build, &rel.name),
        defs.join(", ")
    );
    if let Some(key) = &rel.partition_key {
        s += &format!(" PARTITION BY {key}");
    }
    if !rel.options.is_empty() && rel.kind == super::catalog::RelKind::Table {
        s += &format!(" WITH ({})", rel.options.join(", "));
    }
    s
}

fn column_ddl(c: &ColumnDecl<'_>, build: &str) -> String {
    let col = c.column;
    let mut s = format!("{} {}", ident(&col.name), col.type_sql);
    if let Some(coll) = &col.collation {
        s += &format!(" COLLATE {coll}");
    }
    match (&col.generated, col.identity) {
        (Some(expr), _) if c.generated => s += &format!(" GENERATED ALWAYS AS ({expr}) STORED"),
        (_, Some(identity)) => {
            s += match identity {
                Identity::Always => " GENERATED ALWAYS AS IDENTITY",
                Identity::ByDefault => " GENERATED BY DEFAULT AS IDENTITY",
            };
            if let Some(seq) = c.identity_sequence {
                s += &format!(
                    " (SEQUENCE NAME {}{})",
                    qualified(build, &seq.name),
                    sequence_options(seq)
                );
            }
        }
        _ => {
            if let Some(d) = c.default {
                s += &format!(" DEFAULT {d}");
            }
        }
    }
    if col.not_null {
        s += " NOT NULL";
    }
    s
}

/// `CREATE TABLE ... PARTITION OF ...` for every partition under `root`, parents first.
pub fn partitions_ddl(cat: &Catalog, root: &Relation, build: &str) -> Vec<String> {
    let mut children: HashMap<u32, Vec<&Relation>> = HashMap::new();
    for r in &cat.relations {
        if let Some(p) = r.partition_of {
            children.entry(p).or_default().push(r);
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(parent) = stack.pop() {
        for child in children.get(&parent.oid).into_iter().flatten() {
            let mut s = format!(
                "CREATE {}TABLE {} PARTITION OF {} {}",
                if child.unlogged { "UNLOGGED " } else { "" },
                qualified(build, &child.name),
                qualified(build, &parent.name),
                child.partition_bound.as_deref().unwrap_or("DEFAULT")
            );
            if let Some(key) = &child.partition_key {
                s += &format!(" PARTITION BY {key}");
            }
            out.push(s);
            stack.push(child);
        }
    }
    out
}

/// Every partition under `root`, at any depth.
pub fn descendants(cat: &Catalog, root: u32) -> Vec<&Relation> {
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for r in cat.relations.iter().filter(|r| r.partition_of == Some(p)) {
            out.push(r);
            frontier.push(r.oid);
        }
    }
    out
}
