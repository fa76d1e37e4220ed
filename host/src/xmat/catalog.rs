//! Reading the source schema's catalog: relations, columns, the types they
//! use, sequences, constraints and indexes.
//!
//! Everything here runs inside the job's snapshot transaction with
//! `search_path` set to the source schema alone. That is the pg_dump trick:
//! `format_type`, `pg_get_expr`, `pg_get_constraintdef` and `pg_get_indexdef`
//! then print names of the schema's own objects unqualified and everything
//! else qualified, so the same text, run on the target with `search_path` set
//! to the new schema, refers to the copies there. No schema name is ever
//! replaced inside SQL text.

use std::collections::{BTreeMap, HashMap};

use super::sql::{Conn, StatementError, ident};

/// What kind of relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelKind {
    Table,
    Partitioned,
    View,
    MatView,
    Foreign,
}

impl RelKind {
    fn from_code(c: &str) -> RelKind {
        match c {
            "r" => RelKind::Table,
            "p" => RelKind::Partitioned,
            "v" => RelKind::View,
            "m" => RelKind::MatView,
            _ => RelKind::Foreign,
        }
    }

    /// For messages.
    pub fn describe(self) -> &'static str {
        match self {
            RelKind::Table => "table",
            RelKind::Partitioned => "partitioned table",
            RelKind::View => "view",
            RelKind::MatView => "materialized view",
            RelKind::Foreign => "foreign table",
        }
    }
}

/// A relation of the source schema (or a partition of one, wherever it lives).
#[derive(Debug, Clone)]
pub struct Relation {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub kind: RelKind,
    pub unlogged: bool,
    /// The partitioned table this is a partition of.
    pub partition_of: Option<u32>,
    /// `FOR VALUES ...` / `DEFAULT`, for partitions.
    pub partition_bound: Option<String>,
    /// `RANGE (col)` etc., for partitioned tables.
    pub partition_key: Option<String>,
    /// Storage parameters (`fillfactor=70`).
    pub options: Vec<String>,
    /// On-disk size (all partitions for a partitioned table), to schedule big tables first.
    pub bytes: i64,
    pub columns: Vec<ColumnInfo>,
}

/// A column.
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    pub num: i16,
    pub name: String,
    /// `format_type` text, relative to the source schema.
    pub type_sql: String,
    pub type_oid: u32,
    pub not_null: bool,
    pub default: Option<String>,
    /// The `pg_attrdef` row of the default or generation expression.
    pub default_oid: Option<u32>,
    pub identity: Option<Identity>,
    /// The expression of a `GENERATED ALWAYS AS (...) STORED` column.
    pub generated: Option<String>,
    /// `COLLATE` clause, when not the type's default.
    pub collation: Option<String>,
}

/// `GENERATED ALWAYS` or `BY DEFAULT AS IDENTITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    Always,
    ByDefault,
}

/// A type used (directly or not) by a copied column.
#[derive(Debug, Clone)]
pub struct TypeInfo {
    pub oid: u32,
    /// Lives in the source schema and is not part of an extension: copied with the tables.
    pub local: bool,
    /// `format_type(oid, NULL)`, relative to the source schema.
    pub sql: String,
    /// `typtype`: b(ase), c(omposite), d(omain), e(num), r(ange), m(ultirange), p(seudo).
    pub kind: char,
    /// Array element type (0 if not an array).
    pub elem: u32,
    /// Domain base type (0 if not a domain).
    pub base: u32,
    pub base_sql: String,
    pub not_null: bool,
    pub default: Option<String>,
    pub collation: Option<String>,
    pub labels: Vec<String>,
    /// Domain CHECK constraints: (name, definition).
    pub checks: Vec<(String, String)>,
    /// Composite attributes: (name, type SQL, type oid).
    pub attrs: Vec<(String, String, u32)>,
    /// A composite type that is a table's row type (not copyable on its own).
    pub table_rowtype: bool,
    pub range: Option<RangeInfo>,
}

/// What `CREATE TYPE ... AS RANGE` needs.
#[derive(Debug, Clone)]
pub struct RangeInfo {
    pub subtype: u32,
    pub subtype_sql: String,
    /// `SUBTYPE_OPCLASS`, when not the default.
    pub opclass: Option<String>,
    pub collation: Option<String>,
    pub subtype_diff: Option<String>,
}

/// A sequence of the source schema.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub oid: u32,
    pub name: String,
    pub type_sql: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    /// The column that owns it (`OWNED BY`, or an identity column).
    pub owner: Option<(u32, i16)>,
    pub identity: bool,
}

/// A table constraint.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub oid: u32,
    pub table: u32,
    pub name: String,
    /// p(rimary key), u(nique), f(oreign key), c(heck), x (exclusion).
    pub kind: char,
    pub def: String,
    pub columns: Vec<i16>,
    pub ref_table: u32,
    pub ref_name: Option<String>,
    pub ref_columns: Vec<i16>,
    /// The unique index a foreign key relies on.
    pub index: u32,
    /// Comes from a parent (partition or inheritance): created with the parent's.
    pub inherited: bool,
}

/// An index that is not behind a constraint.
#[derive(Debug, Clone)]
pub struct Index {
    pub oid: u32,
    pub table: u32,
    pub name: String,
    pub def: String,
    /// The table's name as `pg_get_indexdef` prints it (always schema-qualified).
    pub table_sql: String,
    /// Columns it uses (keys, expressions, predicate).
    pub columns: Vec<i16>,
    pub constraint: bool,
    /// A partition's copy of its parent's index.
    pub inherited: bool,
    pub valid: bool,
    pub unique: bool,
}

/// The source schema as the plan needs it.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub schema: String,
    /// Relations of the schema by name, then partitions living elsewhere.
    pub relations: Vec<Relation>,
    pub types: BTreeMap<u32, TypeInfo>,
    pub sequences: Vec<Sequence>,
    /// (table, column, sequence) for defaults that call `nextval` on a sequence.
    pub default_sequences: Vec<(u32, i16, u32)>,
    pub constraints: Vec<Constraint>,
    pub indexes: Vec<Index>,
    /// Objects whose SQL calls a function of the source schema, which is not
    /// copied: ("pg_attrdef" | "pg_constraint" | "pg_class", oid) → function.
    pub local_functions: HashMap<(String, u32), String>,
}

impl Catalog {
    /// A relation by oid.
    pub fn relation(&self, oid: u32) -> Option<&Relation> {
        self.relations.iter().find(|r| r.oid == oid)
    }

    /// A function of the source schema that this object's SQL calls.
    pub fn local_function(&self, catalog: &str, oid: u32) -> Option<&str> {
        self.local_functions
            .get(&(catalog.to_string(), oid))
            .map(String::as_str)
    }
}

/// Reads the catalog. `conn` must be in the snapshot transaction; this sets
/// `search_path` for the rest of the transaction (`SET LOCAL`).
pub async fn read(conn: &Conn, schema: &str) -> Result<Option<Catalog>, StatementError> {
    let Some(row) = conn
        .query(
            "SELECT oid FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let ns: u32 = row.get(0);
    // The catalog queries' row estimates are poor (recursive CTEs), and the
    // planner would spend most of a second JIT-compiling them.
    conn.exec(&format!(
        "SET LOCAL search_path = {}; SET LOCAL jit = off",
        ident(schema)
    ))
    .await?;

    let mut cat = Catalog {
        schema: schema.to_string(),
        ..Catalog::default()
    };
    read_relations(conn, ns, &mut cat).await?;
    let oids: Vec<u32> = cat.relations.iter().map(|r| r.oid).collect();
    read_columns(conn, &oids, &mut cat).await?;
    read_types(conn, ns, &oids, &mut cat).await?;
    read_sequences(conn, ns, &oids, &mut cat).await?;
    read_constraints(conn, &oids, &mut cat).await?;
    read_indexes(conn, &oids, &mut cat).await?;
    read_local_functions(conn, ns, &mut cat).await?;
    Ok(Some(cat))
}

async fn read_relations(conn: &Conn, ns: u32, cat: &mut Catalog) -> Result<(), StatementError> {
    // The schema's relations, plus partitions (at any depth) of its
    // partitioned tables that live in other schemas.
    let sql = "WITH RECURSIVE rels(oid) AS ( \
           SELECT c.oid FROM pg_class c WHERE c.relnamespace = $1 AND c.relkind IN ('r','p','v','m','f') \
           UNION \
           SELECT i.inhrelid FROM rels JOIN pg_inherits i ON i.inhparent = rels.oid \
             JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relispartition AND c.relkind IN ('r','p','f')) \
         SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relpersistence = 'u', \
           (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition), \
           CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END, \
           CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END, \
           coalesce(c.reloptions, '{}')::text[], \
           CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_relation_size(t.relid)), 0)::int8 \
                                            FROM pg_partition_tree(c.oid) t) \
                ELSE pg_relation_size(c.oid) END \
         FROM rels JOIN pg_class c ON c.oid = rels.oid JOIN pg_namespace n ON n.oid = c.relnamespace \
         ORDER BY c.relnamespace <> $1, c.relname";
    for r in conn.query(sql, &[&ns]).await? {
        let kind: String = r.get(3);
        cat.relations.push(Relation {
            oid: r.get(0),
            schema: r.get(1),
            name: r.get(2),
            kind: RelKind::from_code(&kind),
            unlogged: r.get(4),
            partition_of: r.get(5),
            partition_bound: r.get(6),
            partition_key: r.get(7),
            options: r.get(8),
            bytes: r.get(9),
            columns: Vec::new(),
        });
    }
    Ok(())
}

async fn read_columns(conn: &Conn, oids: &[u32], cat: &mut Catalog) -> Result<(), StatementError> {
    let sql = "SELECT a.attrelid, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), \
           a.atttypid, a.attnotnull, pg_get_expr(d.adbin, d.adrelid), d.oid, a.attidentity::text, \
           a.attgenerated::text, \
           CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN \
             (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co \
              JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attrelid, a.attnum";
    for r in conn.query(sql, &[&oids]).await? {
        let rel: u32 = r.get(0);
        let identity: String = r.get(8);
        let generated: String = r.get(9);
        let expr: Option<String> = r.get(6);
        let col = ColumnInfo {
            num: r.get(1),
            name: r.get(2),
            type_sql: r.get(3),
            type_oid: r.get(4),
            not_null: r.get(5),
            default: if generated.is_empty() {
                expr.clone()
            } else {
                None
            },
            default_oid: r.get(7),
            identity: match identity.as_str() {
                "a" => Some(Identity::Always),
                "d" => Some(Identity::ByDefault),
                _ => None,
            },
            generated: if generated.is_empty() { None } else { expr },
            collation: r.get(10),
        };
        if let Some(rel) = cat.relations.iter_mut().find(|x| x.oid == rel) {
            rel.columns.push(col);
        }
    }
    Ok(())
}

async fn read_types(
    conn: &Conn,
    ns: u32,
    oids: &[u32],
    cat: &mut Catalog,
) -> Result<(), StatementError> {
    // Every type reachable from the columns: array elements, domain bases,
    // range subtypes, composite attributes.
    let sql = "WITH RECURSIVE used(oid) AS ( \
           SELECT DISTINCT a.atttypid FROM pg_attribute a \
             WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
           UNION \
           SELECT x.oid FROM used u JOIN pg_type t ON t.oid = u.oid, LATERAL ( \
             SELECT nullif(t.typelem, 0) UNION ALL SELECT nullif(t.typbasetype, 0) \
             UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid \
             UNION ALL SELECT a.atttypid FROM pg_attribute a \
               WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped \
           ) x(oid) WHERE x.oid IS NOT NULL) \
         SELECT t.oid, t.typnamespace = $2 AND NOT EXISTS (SELECT 1 FROM pg_depend e \
             WHERE e.classid = 'pg_type'::regclass AND e.objid = t.oid AND e.deptype = 'e'), \
           format_type(t.oid, NULL), t.typtype::text, t.typelem, t.typbasetype, \
           CASE WHEN t.typbasetype <> 0 THEN format_type(t.typbasetype, t.typtypmod) ELSE '' END, \
           t.typnotnull, pg_get_expr(t.typdefaultbin, 0), \
           CASE WHEN t.typcollation <> 0 AND t.typbasetype <> 0 AND t.typcollation <> \
                  (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype) THEN \
             (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co \
              JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = t.typcollation) END, \
           array(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder), \
           array(SELECT c.conname::text FROM pg_constraint c WHERE c.contypid = t.oid ORDER BY c.conname), \
           array(SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.contypid = t.oid ORDER BY c.conname), \
           array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 \
                 AND NOT a.attisdropped ORDER BY a.attnum), \
           array(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = t.typrelid \
                 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
           array(SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 \
                 AND NOT a.attisdropped ORDER BY a.attnum), \
           coalesce((SELECT c.relkind <> 'c' FROM pg_class c WHERE c.oid = t.typrelid), false), \
           r.rngsubtype, CASE WHEN r.rngsubtype IS NOT NULL THEN format_type(r.rngsubtype, NULL) END, \
           CASE WHEN r.rngsubtype IS NOT NULL AND NOT oc.opcdefault THEN \
             quote_ident(ocn.nspname) || '.' || quote_ident(oc.opcname) END, \
           CASE WHEN r.rngcollation <> 0 THEN (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) \
             FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = r.rngcollation) END, \
           CASE WHEN r.rngsubdiff <> 0 THEN r.rngsubdiff::regproc::text END \
         FROM used JOIN pg_type t ON t.oid = used.oid \
         LEFT JOIN pg_range r ON r.rngtypid = t.oid \
         LEFT JOIN pg_opclass oc ON oc.oid = r.rngsubopc \
         LEFT JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace";
    for r in conn.query(sql, &[&oids, &ns]).await? {
        let kind: String = r.get(3);
        let names: Vec<String> = r.get(11);
        let defs: Vec<String> = r.get(12);
        let attr_names: Vec<String> = r.get(13);
        let attr_types: Vec<String> = r.get(14);
        let attr_oids: Vec<u32> = r.get(15);
        let subtype: Option<u32> = r.get(17);
        let t = TypeInfo {
            oid: r.get(0),
            local: r.get(1),
            sql: r.get(2),
            kind: kind.chars().next().unwrap_or('b'),
            elem: r.get(4),
            base: r.get(5),
            base_sql: r.get(6),
            not_null: r.get(7),
            default: r.get(8),
            collation: r.get(9),
            labels: r.get(10),
            checks: names.into_iter().zip(defs).collect(),
            attrs: attr_names
                .into_iter()
                .zip(attr_types)
                .zip(attr_oids)
                .map(|((n, t), o)| (n, t, o))
                .collect(),
            table_rowtype: r.get(16),
            range: subtype.map(|s| RangeInfo {
                subtype: s,
                subtype_sql: r.get(18),
                opclass: r.get(19),
                collation: r.get(20),
                subtype_diff: r.get(21),
            }),
        };
        cat.types.insert(t.oid, t);
    }
    Ok(())
}

async fn read_sequences(
    conn: &Conn,
    ns: u32,
    oids: &[u32],
    cat: &mut Catalog,
) -> Result<(), StatementError> {
    let sql = "SELECT s.seqrelid, c.relname::text, format_type(s.seqtypid, NULL), s.seqstart, \
           s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle, d.refobjid, d.refobjsubid::int2, \
           coalesce(d.deptype = 'i', false) \
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
         LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid \
           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0 \
         WHERE c.relnamespace = $1 OR d.refobjid = ANY($2) ORDER BY c.relname";
    for r in conn.query(sql, &[&ns, &oids]).await? {
        let owner_rel: Option<u32> = r.get(9);
        let owner_col: Option<i16> = r.get(10);
        cat.sequences.push(Sequence {
            oid: r.get(0),
            name: r.get(1),
            type_sql: r.get(2),
            start: r.get(3),
            increment: r.get(4),
            min: r.get(5),
            max: r.get(6),
            cache: r.get(7),
            cycle: r.get(8),
            owner: owner_rel.zip(owner_col),
            identity: r.get(11),
        });
    }
    let sql = "SELECT ad.adrelid, ad.adnum, d.refobjid FROM pg_attrdef ad \
         JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid \
           AND d.refclassid = 'pg_class'::regclass \
         JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S' WHERE ad.adrelid = ANY($1)";
    for r in conn.query(sql, &[&oids]).await? {
        cat.default_sequences.push((r.get(0), r.get(1), r.get(2)));
    }
    Ok(())
}

async fn read_constraints(
    conn: &Conn,
    oids: &[u32],
    cat: &mut Catalog,
) -> Result<(), StatementError> {
    let sql = "SELECT con.oid, con.conrelid, con.conname::text, con.contype::text, \
           pg_get_constraintdef(con.oid), coalesce(con.conkey, '{}'), con.confrelid, \
           CASE WHEN con.confrelid <> 0 THEN con.confrelid::regclass::text END, \
           coalesce(con.confkey, '{}'), con.conindid, con.conparentid <> 0 OR NOT con.conislocal \
         FROM pg_constraint con WHERE con.conrelid = ANY($1) AND con.contype IN ('p','u','f','c','x') \
         ORDER BY con.conrelid, con.conname";
    for r in conn.query(sql, &[&oids]).await? {
        let kind: String = r.get(3);
        cat.constraints.push(Constraint {
            oid: r.get(0),
            table: r.get(1),
            name: r.get(2),
            kind: kind.chars().next().unwrap_or('c'),
            def: r.get(4),
            columns: r.get(5),
            ref_table: r.get(6),
            ref_name: r.get(7),
            ref_columns: r.get(8),
            index: r.get(9),
            inherited: r.get(10),
        });
    }
    Ok(())
}

async fn read_indexes(conn: &Conn, oids: &[u32], cat: &mut Catalog) -> Result<(), StatementError> {
    let sql = "SELECT i.indexrelid, i.indrelid, ic.relname::text, pg_get_indexdef(i.indexrelid), \
           array(SELECT DISTINCT k FROM unnest(i.indkey::int2[] || array(SELECT d.refobjsubid::int2 \
             FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid \
             AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid > 0)) k \
             WHERE k > 0 ORDER BY k), \
           EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid \
             AND con.conrelid = i.indrelid AND con.contype IN ('p','u','x')), \
           EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid), \
           i.indisvalid, quote_ident(tn.nspname) || '.' || quote_ident(t.relname), i.indisunique \
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
         JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace \
         WHERE i.indrelid = ANY($1) ORDER BY i.indrelid, ic.relname";
    for r in conn.query(sql, &[&oids]).await? {
        cat.indexes.push(Index {
            oid: r.get(0),
            table: r.get(1),
            name: r.get(2),
            def: r.get(3),
            columns: r.get(4),
            constraint: r.get(5),
            inherited: r.get(6),
            valid: r.get(7),
            table_sql: r.get(8),
            unique: r.get(9),
        });
    }
    Ok(())
}

async fn read_local_functions(
    conn: &Conn,
    ns: u32,
    cat: &mut Catalog,
) -> Result<(), StatementError> {
    let sql = "SELECT d.classid::regclass::text, d.objid, p.oid::regprocedure::text \
         FROM pg_depend d JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass AND p.oid = d.refobjid \
         WHERE p.pronamespace = $1 AND d.classid IN ('pg_attrdef'::regclass, 'pg_constraint'::regclass, \
           'pg_class'::regclass) \
           AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass \
             AND e.objid = p.oid AND e.deptype = 'e')";
    for r in conn.query(sql, &[&ns]).await? {
        cat.local_functions.insert((r.get(0), r.get(1)), r.get(2));
    }
    Ok(())
}
