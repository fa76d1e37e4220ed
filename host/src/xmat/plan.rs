//! From a job and the source catalog to a plan: which relations, the exact
//! SELECT for each, the DDL before the data, the constraints and indexes
//! after it, the foreign keys last, and which sequences to move on.
//!
//! Building a plan touches no database, so `--dry-run` shows exactly what a
//! run executes, and the rules here are unit-testable.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use super::catalog::{Catalog, RelKind, Relation};
use super::ddl::{self, ColumnDecl, TypeError};
use super::follow::{FollowedKey, HostFollow};
use super::jobs::{AllowLoss, DanglingKeys, Job, Others, PluginRef, Subset, TableEntry, Wildcard};
use super::select::{self, ColumnError, Projected, SourceColumn};
use super::sql::{ident, qualified};
use super::subset::{self, SubsetError};
use crate::plugin::Column;
use crate::policy::DataScope;

/// A job that does not fit the source's catalog.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlanError {
    #[error("table {table}: there is no table or view {schema}.{table}")]
    NoSuchTable { schema: String, table: String },
    #[error(
        "table {table}: it is a partition of {parent}, which is copied too; configure {parent} instead"
    )]
    PartitionOfCopied { table: String, parent: String },
    #[error("table {table}: {source}")]
    Columns { table: String, source: ColumnError },
    #[error("table {table}: no column is left to copy")]
    NoColumns { table: String },
    #[error("{0}")]
    Type(#[from] TypeError),
    #[error("{0}")]
    Subset(#[from] SubsetError),
    #[error("table {schema}.{table} is outside tenant `{tenant}`'s scope")]
    OutOfScope {
        schema: String,
        table: String,
        tenant: String,
    },
    #[error(
        "table {table}: a {kind} runs a query of its own, which may read outside tenant \
         `{tenant}`'s scope; only tables are copied for a tenant"
    )]
    NotATable {
        table: String,
        kind: &'static str,
        tenant: String,
    },
}

/// Everything a run does, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub job: String,
    /// The tenant the job runs as, under a policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub source_schema: String,
    pub target_schema: String,
    /// Where the new target is built before the swap.
    pub build_schema: String,
    /// Types, sequences and tables (run with `search_path` = the build schema).
    pub pre_data: Vec<String>,
    pub tables: Vec<TablePlan>,
    /// Each added once both its tables are loaded, referenced tables first.
    pub foreign_keys: Vec<ForeignKey>,
    pub sequences: Vec<SequenceReset>,
    /// How `where`s reach other tables.
    #[serde(serialize_with = "subset_name")]
    pub subset: Subset,
    #[serde(skip)]
    pub dangling_keys: DanglingKeys,
    /// Relations of the source schema that `*` does not copy, and why.
    pub skipped: Vec<String>,
    /// Things left out (constraints, defaults) with the reason.
    pub warnings: Vec<String>,
}

fn subset_name<S: serde::Serializer>(s: &Subset, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.name())
}

/// A foreign key added after the data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForeignKey {
    /// The constraint's name, for progress and errors.
    #[serde(skip)]
    pub name: String,
    pub sql: String,
    /// The referencing columns, and the columns of the referenced table they point at.
    #[serde(skip)]
    pub columns: Vec<String>,
    #[serde(skip)]
    pub ref_columns: Vec<String>,
    /// The referencing and the referenced table (indexes into `Plan::tables`).
    #[serde(skip)]
    pub from: usize,
    #[serde(skip)]
    pub to: usize,
}

/// One relation to copy.
#[derive(Debug, Clone, Serialize)]
pub struct TablePlan {
    pub name: String,
    #[serde(skip)]
    pub oid: u32,
    /// The SELECT that reads its rows.
    pub select: String,
    /// Its own rows: the job's `where` and the tenant's row predicate, as
    /// SQL on the source columns (what a stream checks every change against).
    #[serde(skip)]
    pub filter: Option<String>,
    /// With `subset`: the tables (and keys) whose kept rows it follows, and
    /// those whose copied rows add the rows they reference to it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub follows: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added_by: Vec<String>,
    /// With `follow`, binary COPY: the SELECT without the semi joins of its
    /// followed integer keys, which host tests instead (see [`super::follow`]);
    /// `select` is what runs if a parent's kept keys do not fit in memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_follow: Option<HostFollow>,
    /// The source relation (qualified), and whether `ONLY` reads it (tables:
    /// not their inheritance children; partitioned tables: every partition).
    #[serde(skip)]
    pub from: String,
    #[serde(skip)]
    pub only: bool,
    #[serde(skip)]
    pub projection: Vec<Projected>,
    /// The copied columns with their types (what plugins are told).
    pub columns: Vec<Column>,
    #[serde(skip)]
    pub column_type_oids: Vec<u32>,
    /// Every column's type allows binary COPY (the expressions are checked later).
    #[serde(skip)]
    pub binary_safe: bool,
    /// Binary COPY was chosen (no plugins, binary-safe types, expressions of the column's type).
    pub binary: bool,
    /// `COPY ... FREEZE` (a plain table, truncated in the loading transaction).
    pub freeze: bool,
    /// The table in the build schema.
    pub target: String,
    /// Primary key, unique constraints, indexes, exclusion and check constraints.
    pub post_data: Vec<String>,
    #[serde(skip)]
    pub plugins: Vec<PluginRef>,
    /// Unique keys (primary key, unique constraints, unique indexes) built on it.
    pub unique_keys: Vec<UniqueKey>,
    /// Which of its unique-key columns may be transformed without proof.
    #[serde(skip)]
    pub allow_uniqueness_loss: AllowLoss,
    /// On-disk size in the source, to start big tables first.
    pub bytes: i64,
}

/// A primary key, unique constraint or unique index of a copied table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UniqueKey {
    pub name: String,
    /// The columns it covers (for an expression or partial index, every
    /// column its expressions and predicate use).
    pub columns: Vec<String>,
}

impl TablePlan {
    /// `COPY (SELECT ...) TO STDOUT`.
    pub fn copy_out(&self) -> String {
        self.copy_out_of(&self.select)
    }

    /// The table's SELECT with another WITH list and condition.
    pub fn select_with(&self, with: Option<&str>, condition: Option<&str>) -> String {
        select::select_statement(with, &self.projection, &self.from, self.only, condition)
    }

    /// `COPY (select) TO STDOUT`, in the table's format.
    pub fn copy_out_of(&self, select: &str) -> String {
        format!(
            "COPY ({select}) TO STDOUT{}",
            if self.binary { " (FORMAT binary)" } else { "" }
        )
    }

    /// `COPY table (columns) FROM STDIN`.
    pub fn copy_in(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(|c| ident(&c.name)).collect();
        let mut opts = Vec::new();
        if self.binary {
            opts.push("FORMAT binary");
        }
        if self.freeze {
            opts.push("FREEZE");
        }
        format!(
            "COPY {} ({}) FROM STDIN{}",
            self.target,
            cols.join(", "),
            if opts.is_empty() {
                String::new()
            } else {
                format!(" ({})", opts.join(", "))
            }
        )
    }
}

/// A sequence moved past the copied values of the columns it feeds.
#[derive(Debug, Clone, Serialize)]
pub struct SequenceReset {
    pub sequence: String,
    /// (qualified table, column).
    pub columns: Vec<(String, String)>,
    /// A descending sequence goes below the smallest value instead.
    pub descending: bool,
}

impl SequenceReset {
    /// One statement: `setval` to the extreme copied value, if any row was copied.
    pub fn sql(&self) -> String {
        let agg = if self.descending { "min" } else { "max" };
        let parts: Vec<String> = self
            .columns
            .iter()
            .map(|(t, c)| format!("SELECT {agg}({})::int8 AS v FROM {t}", ident(c)))
            .collect();
        format!(
            "SELECT setval('{}', v) FROM (SELECT {agg}(v) AS v FROM ({}) u) m WHERE v IS NOT NULL",
            self.sequence.replace('\'', "''"),
            parts.join(" UNION ALL ")
        )
    }
}

/// Builds the plan; errors name the table.
pub fn build(job: &Job, cat: &Catalog, build_schema: &str) -> Result<Plan, PlanError> {
    let src = job.source.schema.as_str();
    let mut plan = Plan {
        job: job.name.clone(),
        tenant: job.scope.tenant().map(str::to_string),
        source_schema: src.to_string(),
        target_schema: job.target.schema.clone(),
        build_schema: build_schema.to_string(),
        pre_data: vec![
            format!("CREATE SCHEMA {}", ident(build_schema)),
            format!("SET search_path = {}", ident(build_schema)),
        ],
        tables: Vec::new(),
        foreign_keys: Vec::new(),
        sequences: Vec::new(),
        subset: job.subset,
        dangling_keys: job.dangling_keys,
        skipped: Vec::new(),
        warnings: Vec::new(),
    };
    let selected = select_relations(job, cat, &mut plan.skipped)?;
    // A tenant's row predicate is part of every table's own `where`, so
    // following keys sees the same rows the copy does.
    let tenant_rows = match &job.scope {
        DataScope::Tenant(t) => t.scope.rows.as_ref().map(|r| format!("({r})")),
        DataScope::Everything => None,
    };
    // Each table's own `where`, and what it reads from.
    let mut filters: Vec<Option<String>> = Vec::with_capacity(selected.len());

    // Columns created per selected relation (by name), for constraint checks.
    let mut created: HashMap<u32, HashSet<String>> = HashMap::new();
    let mut used_types: Vec<u32> = Vec::new();
    let mut tables_ddl: Vec<String> = Vec::new();
    let mut owned_by: Vec<String> = Vec::new();
    let mut seq_columns: HashMap<u32, Vec<(String, String)>> = HashMap::new();

    for (rel, entry) in &selected {
        let wildcard = entry.name == "*";
        let fail = |source: ColumnError| PlanError::Columns {
            table: rel.name.clone(),
            source,
        };
        // A generated column calling a function of the source schema cannot be
        // recreated; it becomes a plain column holding the copied values.
        let plain_generated: HashSet<&str> = rel
            .columns
            .iter()
            .filter(|c| c.generated.is_some())
            .filter_map(|c| {
                let f = cat.local_function("pg_attrdef", c.default_oid?)?;
                plan.warnings.push(format!(
                    "{}.{}: generated with {f}, which is not copied; copied as a plain column",
                    rel.name, c.name
                ));
                Some(c.name.as_str())
            })
            .collect();
        let source_columns: Vec<SourceColumn<'_>> = rel
            .columns
            .iter()
            .map(|c| SourceColumn {
                name: &c.name,
                generated: c.generated.is_some() && !plain_generated.contains(c.name.as_str()),
            })
            .collect();
        let projection =
            select::projection(&source_columns, &entry.select, wildcard).map_err(fail)?;
        if projection.is_empty() {
            return Err(PlanError::NoColumns {
                table: rel.name.clone(),
            });
        }
        let own = select::where_sql(
            &entry.filter,
            |c| rel.columns.iter().any(|x| x.name == c),
            wildcard,
        )
        .map_err(fail)?;
        let filter = and(own, tenant_rows.clone());
        filters.push(filter.clone());

        let keep: HashSet<&str> = projection.iter().map(|p| p.name.as_str()).collect();
        // The target's columns: the source's order, or the order named when
        // only the named columns are copied.
        let ordered: Vec<&super::catalog::ColumnInfo> = match entry.select.others {
            Others::Copied => rel.columns.iter().collect(),
            Others::Left => projection
                .iter()
                .filter_map(|p| rel.columns.iter().find(|c| c.name == p.name))
                .collect(),
        };
        let mut decls = Vec::new();
        for c in ordered {
            // Generated columns are computed again by the target, unless the
            // columns are only those named (pg-xmat without `"*"`).
            let generated = c.generated.is_some()
                && !plain_generated.contains(c.name.as_str())
                && entry.select.others == Others::Copied;
            if !keep.contains(c.name.as_str()) && !generated {
                continue;
            }
            let default = match (&c.default, c.default_oid) {
                (Some(d), Some(oid)) => match cat.local_function("pg_attrdef", oid) {
                    Some(f) => {
                        plan.warnings.push(format!(
                            "{}.{}: default {d} calls {f}, which is not copied; left out",
                            rel.name, c.name
                        ));
                        None
                    }
                    None => Some(d.as_str()),
                },
                _ => None,
            };
            let identity_sequence = cat
                .sequences
                .iter()
                .find(|s| s.identity && s.owner == Some((rel.oid, c.num)));
            if let Some(seq) = identity_sequence {
                seq_columns
                    .entry(seq.oid)
                    .or_default()
                    .push((qualified(build_schema, &rel.name), c.name.clone()));
            }
            used_types.push(c.type_oid);
            decls.push(ColumnDecl {
                column: c,
                default,
                generated,
                identity_sequence,
            });
        }
        // Sequences behind kept defaults, and those the columns own.
        for c in decls.iter().filter(|d| !d.generated) {
            let by_default = cat
                .default_sequences
                .iter()
                .filter(|(t, n, _)| *t == rel.oid && *n == c.column.num && c.default.is_some())
                .map(|(_, _, s)| *s);
            let owned = cat
                .sequences
                .iter()
                .filter(|s| !s.identity && s.owner == Some((rel.oid, c.column.num)))
                .map(|s| s.oid);
            for seq in by_default.chain(owned).collect::<BTreeSet<_>>() {
                seq_columns
                    .entry(seq)
                    .or_default()
                    .push((qualified(build_schema, &rel.name), c.column.name.clone()));
            }
        }
        for s in cat.sequences.iter().filter(|s| !s.identity) {
            if let Some((t, n)) = s.owner
                && t == rel.oid
                && let Some(c) = decls.iter().find(|d| d.column.num == n)
            {
                owned_by.push(format!(
                    "ALTER SEQUENCE {} OWNED BY {}.{}",
                    qualified(build_schema, &s.name),
                    qualified(build_schema, &rel.name),
                    ident(&c.column.name)
                ));
            }
        }
        tables_ddl.push(ddl::table_ddl(rel, build_schema, &decls));
        if rel.kind == RelKind::Partitioned {
            tables_ddl.extend(ddl::partitions_ddl(cat, rel, build_schema));
        }
        created.insert(
            rel.oid,
            decls.iter().map(|d| d.column.name.clone()).collect(),
        );

        let by_name: HashMap<&str, &super::catalog::ColumnInfo> =
            rel.columns.iter().map(|c| (c.name.as_str(), c)).collect();
        let columns: Vec<Column> = projection
            .iter()
            .map(|p| Column {
                name: p.name.clone(),
                type_name: by_name[p.name.as_str()].type_sql.clone(),
            })
            .collect();
        let column_type_oids: Vec<u32> = projection
            .iter()
            .map(|p| by_name[p.name.as_str()].type_oid)
            .collect();
        plan.tables.push(TablePlan {
            name: rel.name.clone(),
            oid: rel.oid,
            select: String::new(), // below, once every table's rows are known
            filter,
            follows: Vec::new(),
            added_by: Vec::new(),
            host_follow: None,
            from: qualified(&rel.schema, &rel.name),
            only: rel.kind == RelKind::Table,
            binary_safe: column_type_oids.iter().all(|&t| ddl::binary_safe(cat, t)),
            columns,
            column_type_oids,
            projection,
            binary: false,
            freeze: rel.kind != RelKind::Partitioned,
            target: qualified(build_schema, &rel.name),
            post_data: Vec::new(),
            plugins: entry.plugins.clone(),
            unique_keys: Vec::new(),
            allow_uniqueness_loss: entry.allow_uniqueness_loss.clone(),
            bytes: rel.bytes,
        });
    }
    // Each table's rows: its own `where`, and what following keys adds.
    let rels: Vec<&Relation> = selected.iter().map(|(r, _)| *r).collect();
    let edges = subset::edges(cat, &rels, &roots(cat, &rels));
    let subset_tables: Vec<subset::Table> = plan
        .tables
        .iter()
        .zip(filters)
        .map(|(t, own)| subset::Table {
            name: t.name.clone(),
            from: t.from.clone(),
            only: t.only,
            own,
        })
        .collect();
    let rows = subset::rows(&subset_tables, &edges, job.subset)?;
    for (t, r) in plan.tables.iter_mut().zip(rows) {
        // `follow+parents` adds rows with an OR beside the table's own
        // `where`: the tenant's predicate then holds only if it is outside.
        let condition = match job.subset {
            Subset::FollowParents => and(r.condition, tenant_rows.clone()),
            Subset::Off | Subset::Follow => r.condition,
        };
        t.select = select::select_statement(
            r.with.as_deref(),
            &t.projection,
            &t.from,
            t.only,
            condition.as_deref(),
        );
        t.follows = r.follows;
        t.added_by = r.added_by;
        t.host_follow = r.host.and_then(|h| {
            // Host reads the column as the source has it: not under a `select` expression.
            let keys = h
                .keys
                .into_iter()
                .map(|k| {
                    let field = t
                        .projection
                        .iter()
                        .position(|p| p.name == k.column && p.expr.is_none())?;
                    Some(FollowedKey {
                        key: k.key,
                        parent: k.parent,
                        column_ref: format!("{}.{}", t.from, ident(&k.column)),
                        column: k.column,
                        field,
                        keys_select: k.keys_select,
                        joins: k.joins,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            Some(HostFollow {
                select: t.select_with(h.with.as_deref(), h.condition.as_deref()),
                with: h.with,
                condition: h.condition,
                joins: h.joins,
                keys,
            })
        });
    }

    plan.pre_data
        .extend(ddl::types_ddl(cat, build_schema, &used_types)?);
    for s in &cat.sequences {
        if !s.identity && seq_columns.contains_key(&s.oid) {
            plan.pre_data.push(ddl::sequence_ddl(s, build_schema));
        }
    }
    plan.pre_data.extend(tables_ddl);
    plan.pre_data.extend(owned_by);
    for s in &cat.sequences {
        if let Some(cols) = seq_columns.remove(&s.oid) {
            plan.sequences.push(SequenceReset {
                sequence: qualified(build_schema, &s.name),
                columns: cols,
                descending: s.increment < 0,
            });
        }
    }
    super::post::add_post_data(cat, &selected, &created, &mut plan);
    Ok(plan)
}

/// Both conditions, where there are two.
fn and(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a} AND {b}")),
        (a, b) => a.or(b),
    }
}

/// Every relation (a copied one, or a partition at any depth under one) →
/// the copied relation it belongs to.
pub(super) fn roots(cat: &Catalog, selected: &[&Relation]) -> HashMap<u32, u32> {
    let mut root_of = HashMap::new();
    for rel in selected {
        root_of.insert(rel.oid, rel.oid);
        for d in ddl::descendants(cat, rel.oid) {
            root_of.insert(d.oid, rel.oid);
        }
    }
    root_of
}

/// The relations to copy, each with the entry that configures it: named
/// entries in file order, and where `*` stands, every other table and
/// partitioned table of the schema (views and foreign tables are listed in
/// `skipped`, unless the job's `*` takes them, as pg-xmat's does). A named
/// entry replaces `*` for its table, as in pg-xmat.
fn select_relations<'a>(
    job: &'a Job,
    cat: &'a Catalog,
    skipped: &mut Vec<String>,
) -> Result<Vec<(&'a Relation, &'a TableEntry)>, PlanError> {
    let src = job.source.schema.as_str();
    let in_schema = |name: &str| {
        cat.relations
            .iter()
            .find(|r| r.schema == src && r.name == name)
    };
    let named: HashSet<&str> = job
        .tables
        .iter()
        .filter(|t| t.name != "*")
        .map(|t| t.name.as_str())
        .collect();
    // A partition goes with its partitioned table when that is copied.
    let covered = |r: &Relation| r.partition_of.is_some_and(|p| cat.relation(p).is_some());
    let tenant = match &job.scope {
        DataScope::Tenant(t) => Some(t),
        DataScope::Everything => None,
    };
    // Under a tenant: only tables of its scope, and no views (their queries
    // read what they like).
    let refuse = |rel: &Relation| -> Option<PlanError> {
        let t = tenant?;
        if !t.scope.holds_table(src, &rel.name) {
            return Some(PlanError::OutOfScope {
                schema: src.to_string(),
                table: rel.name.clone(),
                tenant: t.tenant.clone(),
            });
        }
        match rel.kind {
            RelKind::Table | RelKind::Partitioned => None,
            kind => Some(PlanError::NotATable {
                table: rel.name.clone(),
                kind: kind.describe(),
                tenant: t.tenant.clone(),
            }),
        }
    };
    let mut out: Vec<(&Relation, &TableEntry)> = Vec::new();
    for entry in &job.tables {
        if entry.name != "*" {
            let rel = in_schema(&entry.name).ok_or_else(|| PlanError::NoSuchTable {
                schema: src.to_string(),
                table: entry.name.clone(),
            })?;
            if let Some(e) = refuse(rel) {
                return Err(e);
            }
            out.push((rel, entry));
            continue;
        }
        for rel in cat.relations.iter().filter(|r| r.schema == src) {
            if named.contains(rel.name.as_str()) || covered(rel) {
                continue;
            }
            if let Some(e) = refuse(rel) {
                skipped.push(format!("{} {src}.{} ({e})", rel.kind.describe(), rel.name));
                continue;
            }
            match (rel.kind, job.wildcard) {
                (RelKind::Table | RelKind::Partitioned, _) => out.push((rel, entry)),
                // pg-xmat's `*` is `information_schema.tables`: views and foreign tables too.
                (RelKind::View | RelKind::Foreign, Wildcard::Relations) => out.push((rel, entry)),
                (k, _) => skipped.push(format!(
                    "{} {src}.{} (only tables are copied by *)",
                    k.describe(),
                    rel.name
                )),
            }
        }
    }
    let oids: HashSet<u32> = out.iter().map(|(r, _)| r.oid).collect();
    for (rel, _) in &out {
        let mut parent = rel.partition_of;
        while let Some(p) = parent {
            if oids.contains(&p) {
                let pname = cat.relation(p).map_or("?", |r| r.name.as_str());
                return Err(PlanError::PartitionOfCopied {
                    table: rel.name.clone(),
                    parent: pname.to_string(),
                });
            }
            parent = cat.relation(p).and_then(|r| r.partition_of);
        }
    }
    Ok(out)
}
