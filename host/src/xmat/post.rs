//! What is built after the data: per table, primary key, unique constraints,
//! indexes, exclusion and check constraints (cheaper on a full table than
//! row by row, and run by the worker that loaded it, so they overlap with
//! other tables' copies); then foreign keys, once every table is there.
//!
//! A constraint or index is left out, with a warning, when it needs a
//! column that is not copied, calls a function of the source schema (xmat
//! copies no functions), or (for foreign keys) points at a table, or a key,
//! that is not copied.

use std::collections::{HashMap, HashSet};

use super::catalog::{Catalog, Relation};
use super::ddl::descendants;
use super::jobs::TableEntry;
use super::plan::{ForeignKey, Plan, UniqueKey};
use super::sql::{ident, qualified};

/// Fills each table's `post_data` and the plan's `foreign_keys`.
pub fn add_post_data(
    cat: &Catalog,
    selected: &[(&Relation, &TableEntry)],
    created: &HashMap<u32, HashSet<String>>,
    plan: &mut Plan,
) {
    let build = plan.build_schema.clone();
    let src = plan.source_schema.clone();
    let rels: Vec<&Relation> = selected.iter().map(|(r, _)| *r).collect();
    let root_of = super::plan::roots(cat, &rels);
    // Unique indexes left out (their foreign keys must be too).
    let mut missing_keys: HashSet<u32> = HashSet::new();
    let mut fks = Vec::new();

    for (i, (root, _)) in selected.iter().enumerate() {
        let names = &created[&root.oid];
        let members: Vec<&Relation> = std::iter::once(*root)
            .chain(descendants(cat, root.oid))
            .collect();
        let mut steps: [Vec<String>; 5] = Default::default();
        for &rel in &members {
            let on = qualified(&build, &rel.name);
            let elsewhere = rel.oid != root.oid && rel.schema != src;
            for c in cat
                .constraints
                .iter()
                .filter(|c| c.table == rel.oid && !c.inherited)
            {
                let what = format!("constraint {} on {}", c.name, rel.name);
                let problem = missing_columns(rel, &c.columns, names)
                    .or_else(|| local_function(cat, "pg_constraint", c.oid))
                    .or_else(|| {
                        elsewhere.then(|| format!("partition {} is in another schema", rel.name))
                    });
                if let Some(p) = problem {
                    plan.warnings.push(format!("{what}: {p}; left out"));
                    missing_keys.insert(c.index);
                    continue;
                }
                let sql = format!(
                    "ALTER TABLE {on} ADD CONSTRAINT {} {}",
                    ident(&c.name),
                    c.def
                );
                if matches!(c.kind, 'p' | 'u') {
                    plan.tables[i].unique_keys.push(UniqueKey {
                        name: c.name.clone(),
                        columns: column_names(rel, &c.columns),
                    });
                }
                match c.kind {
                    'p' => steps[0].push(sql),
                    'u' => steps[1].push(sql),
                    'x' => steps[3].push(sql),
                    'c' => steps[4].push(sql),
                    _ => fks.push((root.oid, c, rel, sql)),
                }
            }
            for ix in cat
                .indexes
                .iter()
                .filter(|x| x.table == rel.oid && !x.constraint && !x.inherited)
            {
                let what = format!("index {} on {}", ix.name, rel.name);
                let problem = (!ix.valid)
                    .then(|| "it is invalid in the source".to_string())
                    .or_else(|| missing_columns(rel, &ix.columns, names))
                    .or_else(|| local_function(cat, "pg_class", ix.oid))
                    .or_else(|| {
                        elsewhere.then(|| format!("partition {} is in another schema", rel.name))
                    });
                if let Some(p) = problem {
                    plan.warnings.push(format!("{what}: {p}; left out"));
                    missing_keys.insert(ix.oid);
                    continue;
                }
                if ix.unique {
                    plan.tables[i].unique_keys.push(UniqueKey {
                        name: ix.name.clone(),
                        columns: column_names(rel, &ix.columns),
                    });
                }
                steps[2].push(index_ddl(&ix.def, &ix.table_sql, &on));
            }
        }
        plan.tables[i].post_data = steps.into_iter().flatten().collect();
    }

    // Foreign keys, referenced tables first.
    let index: HashMap<u32, usize> = selected
        .iter()
        .enumerate()
        .map(|(i, (rel, _))| (rel.oid, i))
        .collect();
    let order = fk_order(
        selected,
        &fks.iter()
            .map(|(t, c, _, _)| (*t, c.ref_table))
            .collect::<Vec<_>>(),
        &root_of,
    );
    fks.sort_by_key(|(t, _, _, _)| order.get(t).copied().unwrap_or(usize::MAX));
    for (_, c, rel, sql) in fks {
        let what = format!("foreign key {} on {}", c.name, rel.name);
        let target_root = root_of.get(&c.ref_table).copied();
        let problem = match target_root {
            None => Some(format!(
                "it references {}, which is not copied",
                c.ref_name.as_deref().unwrap_or("another table")
            )),
            Some(r) => missing_columns(rel, &c.columns, &created[&root_of[&rel.oid]])
                .or_else(|| {
                    let refd = cat.relation(c.ref_table)?;
                    missing_columns(refd, &c.ref_columns, &created[&r]).map(|_| {
                        let cols: Vec<String> = c
                            .ref_columns
                            .iter()
                            .filter_map(|n| refd.columns.iter().find(|x| x.num == *n))
                            .map(|x| format!("{}.{}", refd.name, x.name))
                            .collect();
                        format!(
                            "the column it references, {}, is not copied",
                            cols.join(", ")
                        )
                    })
                })
                .or_else(|| {
                    missing_keys
                        .contains(&c.index)
                        .then(|| "the key it references is left out".to_string())
                })
                .or_else(|| local_function(cat, "pg_constraint", c.oid)),
        };
        match (problem, target_root) {
            (Some(p), _) => plan.warnings.push(format!("{what}: {p}; skipped")),
            (None, Some(to)) => plan.foreign_keys.push(ForeignKey {
                name: c.name.clone(),
                sql,
                columns: column_names(rel, &c.columns),
                ref_columns: cat
                    .relation(c.ref_table)
                    .map(|r| column_names(r, &c.ref_columns))
                    .unwrap_or_default(),
                from: index[&root_of[&rel.oid]],
                to: index[&to],
            }),
            (None, None) => unreachable!("a key without its table has a problem"),
        }
    }
}

/// `pg_get_indexdef` always qualifies the table (`ON public.users`), unlike
/// the other `pg_get_*` functions, so the table is put back by hand:
/// `CREATE [UNIQUE] INDEX name ON [ONLY] schema.table USING ...` has a fixed
/// shape and `table_sql` is exactly the text it prints. `ONLY` goes too: on a
/// partitioned table the index is then built on every partition at once.
fn index_ddl(def: &str, table_sql: &str, target: &str) -> String {
    for on in [
        format!(" ON ONLY {table_sql} USING "),
        format!(" ON {table_sql} USING "),
    ] {
        if let Some(at) = def.find(&on) {
            return format!("{} ON {target} USING {}", &def[..at], &def[at + on.len()..]);
        }
    }
    def.to_string()
}

/// Column names by attribute number, in the order given.
fn column_names(rel: &Relation, nums: &[i16]) -> Vec<String> {
    nums.iter()
        .filter_map(|n| rel.columns.iter().find(|c| c.num == *n))
        .map(|c| c.name.clone())
        .collect()
}

fn missing_columns(rel: &Relation, nums: &[i16], created: &HashSet<String>) -> Option<String> {
    let missing: Vec<&str> = nums
        .iter()
        .filter_map(|n| rel.columns.iter().find(|c| c.num == *n))
        .map(|c| c.name.as_str())
        .filter(|n| !created.contains(*n))
        .collect();
    (!missing.is_empty()).then(|| format!("column {} is not copied", missing.join(", ")))
}

fn local_function(cat: &Catalog, catalog: &str, oid: u32) -> Option<String> {
    cat.local_function(catalog, oid)
        .map(|f| format!("it calls {f}, which is not copied"))
}

/// Position of each selected table in an order where referenced tables come
/// before the tables that reference them (cycles are cut anywhere).
fn fk_order(
    selected: &[(&Relation, &TableEntry)],
    edges: &[(u32, u32)],
    root_of: &HashMap<u32, u32>,
) -> HashMap<u32, usize> {
    fn visit(
        t: u32,
        edges: &[(u32, u32)],
        root_of: &HashMap<u32, u32>,
        seen: &mut HashSet<u32>,
        out: &mut Vec<u32>,
    ) {
        if !seen.insert(t) {
            return;
        }
        for &(from, to) in edges {
            if from == t
                && let Some(&r) = root_of.get(&to)
            {
                visit(r, edges, root_of, seen, out);
            }
        }
        out.push(t);
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (rel, _) in selected {
        visit(rel.oid, edges, root_of, &mut seen, &mut out);
    }
    out.into_iter().enumerate().map(|(i, t)| (t, i)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_definitions_get_the_target_table() {
        assert_eq!(
            super::index_ddl(
                "CREATE UNIQUE INDEX \"I\" ON ONLY public.\"T\" USING btree (lower(a)) WHERE (b > 0)",
                "public.\"T\"",
                "\"new\".\"T\""
            ),
            "CREATE UNIQUE INDEX \"I\" ON \"new\".\"T\" USING btree (lower(a)) WHERE (b > 0)"
        );
    }
}
