//! Subsets that follow foreign keys (`subset = "follow"`, `"follow+parents"`).
//!
//! Each copied table has its own `where` (or none). With `follow`, a table
//! keeps only the rows whose referenced rows are kept, through every foreign
//! key between copied tables, transitively: `users where tenant_id = 7`
//! makes `orders` keep that tenant's users' orders, `order_items` those
//! orders' items, and so on, without a tenant column on any of them. With
//! `follow+parents`, a table that has its own `where` keeps exactly those
//! rows (it is not restricted further), and the rows they reference are
//! added to the referenced tables (transitively, up): the rows a table keeps
//! never point at rows that were not copied, so every foreign key validates.
//!
//! All of it is SQL in each table's SELECT, read inside the job's snapshot:
//! - a kept row of a referenced table is an `EXISTS` semi join on the key's
//!   columns (every column: multi-column keys; a row with a NULL in its key
//!   references nothing, as `MATCH SIMPLE` says), nested along chains;
//! - a key from a table to itself (a tree: `manager_id`) is a recursive
//!   query from the roots (rows referencing nothing, or themselves) down
//!   through kept rows; rows in a loop that no root reaches are not kept;
//! - rows added for `follow+parents` are an `EXISTS` on the referencing
//!   table's kept rows, and for a key to itself, a recursive query up.
//!
//! Keys around a cycle of two or more tables cannot be followed this way:
//! such a job is refused, naming the keys of the cycle, unless nothing has
//! to be followed around it (no table in it, or before it, has a `where`).
//! So is a table with two keys to itself.

use std::collections::{HashMap, HashSet};

use super::catalog::{Catalog, Relation};
use super::follow::INTEGER_TYPES;
use super::jobs::Subset;
use super::sql::ident;

/// A table as the subset sees it.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    /// The source relation, qualified.
    pub from: String,
    /// `ONLY` (a plain table) or not (a partitioned table).
    pub only: bool,
    /// Its own `where`, as SQL on its unqualified columns.
    pub own: Option<String>,
}

/// A foreign key between two copied tables.
#[derive(Debug, Clone)]
pub struct Edge {
    pub name: String,
    /// Indexes into the tables.
    pub child: usize,
    pub parent: usize,
    /// (referencing column, referenced column) pairs.
    pub columns: Vec<(String, String)>,
    /// Some referencing column may be NULL.
    pub nullable: bool,
    /// One column, an integer on both sides: host can test it itself
    /// ([`super::follow`]).
    pub integer: bool,
}

/// What one table's SELECT gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    /// `WITH RECURSIVE ...` for its recursive queries, if any.
    pub with: Option<String>,
    /// The WHERE condition, if any.
    pub condition: Option<String>,
    /// For the plan: the keys it follows, and the keys through which rows are added to it.
    pub follows: Vec<String>,
    pub added_by: Vec<String>,
    /// With `follow`, for a table that follows integer keys: the same rows
    /// with those keys left for host to test.
    pub host: Option<HostRows>,
}

/// A table's rows with its followed integer keys (to tables other than
/// itself) left out of the SQL: host tests them on the rows it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostRows {
    pub with: Option<String>,
    pub condition: Option<String>,
    /// Whether those still join (keys that are not left to host).
    pub joins: bool,
    pub keys: Vec<HostKey>,
}

/// A followed key host tests: the row's `column` must be NULL or one of the
/// keys `keys_select` reads (the parent's kept rows' referenced column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    pub key: String,
    pub parent: String,
    pub column: String,
    pub keys_select: String,
    /// Whether `keys_select` joins (the parent follows keys of its own).
    pub joins: bool,
}

/// A job whose keys cannot be followed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubsetError {
    #[error(
        "subset = \"{mode}\" cannot follow rows around a cycle of foreign keys: {}; \
         leave subset off for this job and give these tables their own `where`s",
        path.join(" → ")
    )]
    Cycle {
        mode: &'static str,
        path: Vec<String>,
    },
    #[error(
        "subset = \"{mode}\": table {table} has more than one foreign key to itself ({}); \
         only one can be followed",
        keys.join(", ")
    )]
    SelfKeys {
        mode: &'static str,
        table: String,
        keys: Vec<String>,
    },
}

/// The foreign keys between the copied relations (`roots`: the copied
/// relation each relation belongs to, so a partition's keys count for its table).
pub fn edges(cat: &Catalog, selected: &[&Relation], root_of: &HashMap<u32, u32>) -> Vec<Edge> {
    let index: HashMap<u32, usize> = selected
        .iter()
        .enumerate()
        .map(|(i, r)| (r.oid, i))
        .collect();
    let mut out: Vec<Edge> = Vec::new();
    for c in cat
        .constraints
        .iter()
        .filter(|c| c.kind == 'f' && !c.inherited)
    {
        let (Some(child_root), Some(parent_root)) =
            (root_of.get(&c.table), root_of.get(&c.ref_table))
        else {
            continue;
        };
        let (Some(rel), Some(refd)) = (cat.relation(c.table), cat.relation(c.ref_table)) else {
            continue;
        };
        let col = |r: &Relation, n: &i16| r.columns.iter().find(|x| x.num == *n).cloned();
        let pairs: Option<Vec<_>> = c
            .columns
            .iter()
            .zip(&c.ref_columns)
            .map(|(a, b)| Some((col(rel, a)?, col(refd, b)?)))
            .collect();
        let Some(pairs) = pairs else { continue };
        let integer = |c: &super::catalog::ColumnInfo| INTEGER_TYPES.contains(&c.type_oid);
        out.push(Edge {
            name: c.name.clone(),
            child: index[child_root],
            parent: index[parent_root],
            nullable: pairs.iter().any(|(a, _)| !a.not_null),
            integer: matches!(&pairs[..], [(a, b)] if integer(a) && integer(b)),
            columns: pairs.into_iter().map(|(a, b)| (a.name, b.name)).collect(),
        });
    }
    out
}

/// Each table's rows under `mode`, in table order.
pub fn rows(tables: &[Table], edges: &[Edge], mode: Subset) -> Result<Vec<Rows>, SubsetError> {
    if mode == Subset::Off {
        return Ok(tables
            .iter()
            .map(|t| Rows {
                condition: t.own.clone(),
                ..Rows::default()
            })
            .collect());
    }
    let g = Graph::new(tables, edges, mode)?;
    Ok((0..tables.len())
        .map(|t| {
            let mut sql = Sql::new(&g);
            let main = tables[t].from.clone();
            let condition = match mode {
                Subset::FollowParents => sql.fin(t, &main),
                _ => sql.kept(t, &main),
            };
            let host = (mode == Subset::Follow).then(|| host_rows(&g, t)).flatten();
            Rows {
                with: sql.with(),
                condition,
                follows: g
                    .restricting(t)
                    .map(|e| format!("{} ({})", tables[e.parent].name, e.name))
                    .collect(),
                added_by: g
                    .pulling(t)
                    .map(|e| format!("{} ({})", tables[e.child].name, e.name))
                    .collect(),
                host,
            }
        })
        .collect())
}

/// Table `t`'s rows under `follow` with its followed integer keys to other
/// tables left to host, if it has any: its condition without their semi
/// joins, and for each, the SELECT of the parent's kept keys (which keeps
/// its own semi joins: it runs once, before the table's copy).
fn host_rows(g: &Graph<'_>, t: usize) -> Option<HostRows> {
    let hosted: Vec<&Edge> = g
        .restricting(t)
        .filter(|e| e.parent != t && e.integer)
        .collect();
    if hosted.is_empty() {
        return None;
    }
    let mut sql = Sql::new(g);
    let names: Vec<&str> = hosted.iter().map(|e| e.name.as_str()).collect();
    let condition = sql.kept_but(t, &g.tables[t].from.clone(), &names);
    let keys = hosted
        .iter()
        .map(|e| {
            let p = e.parent;
            let mut sql = Sql::new(g);
            let main = g.tables[p].from.clone();
            let kept = sql.kept(p, &main);
            let mut select = sql.with().map(|w| w + " ").unwrap_or_default();
            select += &format!("SELECT {} FROM {}", ident(&e.columns[0].1), sql.from(p));
            if let Some(c) = kept {
                select += &format!(" WHERE {c}");
            }
            HostKey {
                key: e.name.clone(),
                parent: g.tables[p].name.clone(),
                column: e.columns[0].0.clone(),
                keys_select: select,
                joins: g.restricting(p).next().is_some(),
            }
        })
        .collect();
    Some(HostRows {
        with: sql.with(),
        condition,
        joins: g.restricting(t).count() > hosted.len(),
        keys,
    })
}

/// The tables and keys, with what follows what.
struct Graph<'a> {
    tables: &'a [Table],
    edges: &'a [Edge],
    mode: Subset,
    /// Not every row of the table is copied.
    restricted: Vec<bool>,
    /// Rows may be added to the table (`follow+parents`).
    pulled: Vec<bool>,
}

impl<'a> Graph<'a> {
    fn new(tables: &'a [Table], edges: &'a [Edge], mode: Subset) -> Result<Graph<'a>, SubsetError> {
        let mut g = Graph {
            tables,
            edges,
            mode,
            restricted: tables.iter().map(|t| t.own.is_some()).collect(),
            pulled: vec![false; tables.len()],
        };
        // Restriction flows from a referenced table to the tables that
        // follow it, pulled rows from a table to the tables it references:
        // both to a fixpoint (each flag only ever turns on).
        loop {
            let mut changed = false;
            for e in edges {
                if e.child != e.parent
                    && g.follows(e)
                    && g.restricted[e.parent]
                    && !g.restricted[e.child]
                {
                    g.restricted[e.child] = true;
                    changed = true;
                }
            }
            for e in edges {
                if g.pulls(e) && !g.pulled[e.parent] {
                    g.pulled[e.parent] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        g.check()?;
        Ok(g)
    }

    /// Whether `e`'s child keeps only rows whose referenced row is kept.
    fn follows(&self, e: &Edge) -> bool {
        match self.mode {
            Subset::Off => false,
            Subset::Follow => true,
            // A table with its own `where` keeps its rows; their parents are added.
            Subset::FollowParents => self.tables[e.child].own.is_none(),
        }
    }

    /// Whether rows the child copies add their referenced rows to the parent.
    fn pulls(&self, e: &Edge) -> bool {
        self.mode == Subset::FollowParents
            && self.restricted[e.parent]
            && (!self.follows(e) || self.pulled[e.child])
    }

    /// Keys `t` is restricted through (to other tables, and to itself).
    fn restricting(&self, t: usize) -> impl Iterator<Item = &'a Edge> + '_ {
        self.edges
            .iter()
            .filter(move |e| e.child == t && self.follows(e) && self.restricted[e.parent])
    }

    /// Keys through which rows are added to `t`.
    fn pulling(&self, t: usize) -> impl Iterator<Item = &'a Edge> + '_ {
        self.edges
            .iter()
            .filter(move |e| e.parent == t && self.pulls(e))
    }

    /// Refuses what cannot be followed: two keys from a table to itself,
    /// and a cycle of tables that rows must be followed around.
    fn check(&self) -> Result<(), SubsetError> {
        let mode = self.mode.name();
        for t in 0..self.tables.len() {
            let own: Vec<&Edge> = self
                .edges
                .iter()
                .filter(|e| e.child == t && e.parent == t)
                .filter(|e| self.restricted[t] && (self.follows(e) || self.pulls(e)))
                .collect();
            if own.len() > 1 {
                return Err(SubsetError::SelfKeys {
                    mode,
                    table: self.tables[t].name.clone(),
                    keys: own.iter().map(|e| e.name.clone()).collect(),
                });
            }
        }
        // A followed key makes the child's kept rows depend on the parent's;
        // a pulling key the parent's copied rows on the child's (which depend
        // on kept rows only). A cycle in either cannot be written as SQL.
        let follow: Vec<(usize, usize, &Edge)> = self
            .edges
            .iter()
            .filter(|e| e.child != e.parent && self.follows(e) && self.restricted[e.parent])
            .map(|e| (e.child, e.parent, e))
            .collect();
        let pull: Vec<(usize, usize, &Edge)> = self
            .edges
            .iter()
            .filter(|e| e.child != e.parent && self.pulls(e))
            .map(|e| (e.parent, e.child, e))
            .collect();
        for deps in [follow, pull] {
            if let Some(cycle) = find_cycle(self.tables.len(), &deps) {
                let mut path = vec![self.tables[cycle[0].0].name.clone()];
                for (_, to, e) in &cycle {
                    path.push(format!("{} ({})", self.tables[*to].name, e.name));
                }
                return Err(SubsetError::Cycle { mode, path });
            }
        }
        Ok(())
    }
}

/// A cycle in a directed graph, as its edges in order, if there is one.
fn find_cycle<'e>(
    n: usize,
    deps: &[(usize, usize, &'e Edge)],
) -> Option<Vec<(usize, usize, &'e Edge)>> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Open,
        Done,
    }
    fn visit<'e>(
        v: usize,
        deps: &[(usize, usize, &'e Edge)],
        state: &mut [State],
        stack: &mut Vec<(usize, usize, &'e Edge)>,
    ) -> Option<Vec<(usize, usize, &'e Edge)>> {
        state[v] = State::Open;
        for &(a, b, e) in deps.iter().filter(|d| d.0 == v) {
            stack.push((a, b, e));
            match state[b] {
                State::Open => {
                    let start = stack.iter().position(|s| s.0 == b).unwrap_or(0);
                    return Some(stack[start..].to_vec());
                }
                State::New => {
                    if let Some(c) = visit(b, deps, state, stack) {
                        return Some(c);
                    }
                }
                State::Done => {}
            }
            stack.pop();
        }
        state[v] = State::Done;
        None
    }
    let mut state = vec![State::New; n];
    (0..n).find_map(|v| {
        if state[v] == State::New {
            visit(v, deps, &mut state, &mut Vec::new())
        } else {
            None
        }
    })
}

/// Writes the conditions of one table's SELECT, collecting the recursive
/// queries they need (each once per statement).
struct Sql<'g, 'a> {
    g: &'g Graph<'a>,
    ctes: Vec<String>,
    done: HashSet<String>,
}

/// `a AND b AND ...`, or `None` for no condition.
fn all(parts: Vec<String>) -> Option<String> {
    match parts.len() {
        0 => None,
        1 => parts.into_iter().next(),
        _ => Some(
            parts
                .iter()
                .map(|p| format!("({p})"))
                .collect::<Vec<_>>()
                .join(" AND "),
        ),
    }
}

fn col(r: &str, c: &str) -> String {
    format!("{r}.{}", ident(c))
}

/// `(r.a, r.b)`, or `r.a` for one column.
fn tuple(r: &str, cols: &[&str]) -> String {
    match cols {
        [one] => col(r, one),
        many => format!(
            "({})",
            many.iter()
                .map(|c| col(r, c))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl<'g, 'a> Sql<'g, 'a> {
    fn new(g: &'g Graph<'a>) -> Self {
        Sql {
            g,
            ctes: Vec::new(),
            done: HashSet::new(),
        }
    }

    /// `WITH RECURSIVE ...` for the queries collected, if any.
    fn with(&self) -> Option<String> {
        (!self.ctes.is_empty()).then(|| format!("WITH RECURSIVE {}", self.ctes.join(", ")))
    }

    fn table(&self, t: usize) -> &Table {
        &self.g.tables[t]
    }

    fn from(&self, t: usize) -> String {
        let t = self.table(t);
        format!("{}{}", if t.only { "ONLY " } else { "" }, t.from)
    }

    /// Adds a query to the WITH list, once.
    fn cte(&mut self, name: &str, body: impl FnOnce(&mut Self) -> String) {
        if self.done.insert(name.to_string()) {
            let sql = body(self);
            self.ctes.push(sql);
        }
    }

    /// Whether row `r` of table `t` is kept by following (`None`: every row).
    /// `t` must be the innermost FROM item where this is used (its own
    /// `where` names its columns unqualified); `r` qualifies its columns.
    fn kept(&mut self, t: usize, r: &str) -> Option<String> {
        self.kept_but(t, r, &[])
    }

    /// [`Self::kept`] without the keys named in `hosted` (which host tests).
    fn kept_but(&mut self, t: usize, r: &str, hosted: &[&str]) -> Option<String> {
        let mut parts: Vec<String> = self.table(t).own.iter().cloned().collect();
        let edges: Vec<&Edge> = self.g.restricting(t).collect();
        for e in &edges {
            if e.parent != t && !hosted.contains(&e.name.as_str()) {
                parts.push(self.link(e, r));
            }
        }
        if let Some(e) = edges.iter().find(|e| e.parent == t) {
            parts.push(self.tree(e, r));
        }
        all(parts)
    }

    /// Row `r` of `e`'s child references a kept row of its parent (or nothing).
    fn link(&mut self, e: &Edge, r: &str) -> String {
        let p = e.parent;
        let alias = ident(&self.table(p).name);
        let on = e
            .columns
            .iter()
            .map(|(c, k)| format!("{} = {}", col(&alias, k), col(r, c)));
        let kept = self.kept(p, &alias);
        let exists = exists(&self.from(p), &alias, on, kept);
        match e.nullable {
            true => format!("{} OR {exists}", self.any_null(e, r)),
            false => exists,
        }
    }

    fn any_null(&self, e: &Edge, r: &str) -> String {
        e.columns
            .iter()
            .map(|(c, _)| format!("{} IS NULL", col(r, c)))
            .collect::<Vec<_>>()
            .join(" OR ")
    }

    /// Row `r` of a table with a key `e` to itself is reached from a root
    /// through kept rows.
    fn tree(&mut self, e: &Edge, r: &str) -> String {
        let t = e.child;
        let (refs, keys): (Vec<&str>, Vec<&str>) = e
            .columns
            .iter()
            .map(|(c, k)| (c.as_str(), k.as_str()))
            .unzip();
        let ok = ident(&format!("xmat_ok_{t}"));
        let keep = ident(&format!("xmat_keep_{t}"));
        let (ok_name, keep_name) = (ok.clone(), keep.clone());
        self.cte(&keep, |s| {
            let main = s.table(t).from.clone();
            // The rows kept for every other reason, once.
            let mut cols: Vec<&str> = keys.iter().chain(&refs).copied().collect();
            cols.dedup();
            let mut seen = HashSet::new();
            cols.retain(|c| seen.insert(*c));
            let others = {
                let mut parts: Vec<String> = s.table(t).own.iter().cloned().collect();
                let edges: Vec<&Edge> = s.g.restricting(t).filter(|x| x.parent != t).collect();
                for x in edges {
                    parts.push(s.link(x, &main));
                }
                all(parts)
            };
            let ok_sql = format!(
                "{ok_name} AS MATERIALIZED (SELECT {} FROM {}{})",
                cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", "),
                s.from(t),
                others.map(|w| format!(" WHERE {w}")).unwrap_or_default()
            );
            s.ctes.push(ok_sql);
            let names: Vec<String> = (1..=keys.len()).map(|i| format!("k{i}")).collect();
            let roots = format!(
                "{} OR {} = {}",
                refs.iter()
                    .map(|c| format!("{} IS NULL", col("o", c)))
                    .collect::<Vec<_>>()
                    .join(" OR "),
                tuple("o", &refs),
                tuple("o", &keys)
            );
            let join: Vec<String> = refs
                .iter()
                .zip(&names)
                .map(|(c, k)| format!("{} = {}", col("o", c), col("k", k)))
                .collect();
            format!(
                "{keep_name}({}) AS (SELECT {} FROM {ok_name} o WHERE {roots} \
                 UNION ALL SELECT {} FROM {ok_name} o JOIN {keep_name} k ON {} \
                 WHERE {} IS DISTINCT FROM {})",
                names
                    .iter()
                    .map(|n| ident(n))
                    .collect::<Vec<_>>()
                    .join(", "),
                keys.iter()
                    .map(|c| col("o", c))
                    .collect::<Vec<_>>()
                    .join(", "),
                keys.iter()
                    .map(|c| col("o", c))
                    .collect::<Vec<_>>()
                    .join(", "),
                join.join(" AND "),
                row(&refs),
                row(&keys),
            )
        });
        format!(
            "{} OR {} = {} OR {} IN (SELECT * FROM {keep})",
            self.any_null(e, r),
            tuple(r, &refs),
            tuple(r, &keys),
            tuple(r, &refs)
        )
    }

    /// Whether row `r` of `t` is copied under `follow+parents`: kept, or
    /// referenced by a copied row of a table that adds to it.
    fn fin(&mut self, t: usize, r: &str) -> Option<String> {
        let up = self.g.pulling(t).find(|e| e.child == t).cloned();
        let direct = self.fin_others(t, r);
        match up {
            None => direct,
            Some(e) => {
                let direct = direct?;
                Some(format!("({direct}) OR {}", self.ancestors(&e, r)))
            }
        }
    }

    /// `fin` without the rows added through `t`'s key to itself.
    fn fin_others(&mut self, t: usize, r: &str) -> Option<String> {
        let kept = self.kept(t, r);
        let pulls: Vec<Edge> = self
            .g
            .pulling(t)
            .filter(|e| e.child != t)
            .cloned()
            .collect();
        if pulls.is_empty() {
            return kept;
        }
        // Kept rows and added rows; a table with no `where` and nothing to
        // follow keeps every row, and adding changes nothing.
        let kept = kept?;
        let mut any = vec![format!("({kept})")];
        for e in &pulls {
            let c = e.child;
            let alias = ident(&self.table(c).name);
            let on = e
                .columns
                .iter()
                .map(|(fk, k)| format!("{} = {}", col(&alias, fk), col(r, k)));
            let fin = self.fin(c, &alias);
            any.push(exists(&self.from(c), &alias, on, fin));
        }
        Some(any.join(" OR "))
    }

    /// Row `r` is an ancestor, through `e` (a key of the table to itself),
    /// of a row copied for another reason.
    fn ancestors(&mut self, e: &Edge, r: &str) -> String {
        let t = e.child;
        let (refs, keys): (Vec<&str>, Vec<&str>) = e
            .columns
            .iter()
            .map(|(c, k)| (c.as_str(), k.as_str()))
            .unzip();
        let up = ident(&format!("xmat_up_{t}"));
        let up_name = up.clone();
        self.cte(&up, |s| {
            let main = s.table(t).from.clone();
            let seeds = s
                .fin_others(t, &main)
                .map(|w| format!(" WHERE {w}"))
                .unwrap_or_default();
            let k_names: Vec<String> = (1..=keys.len()).map(|i| format!("k{i}")).collect();
            let r_names: Vec<String> = (1..=refs.len()).map(|i| format!("r{i}")).collect();
            let join: Vec<String> = keys
                .iter()
                .zip(&r_names)
                .map(|(k, rn)| format!("{} = {}", col("x", k), col("u", rn)))
                .collect();
            let list = |r: &str| {
                keys.iter()
                    .chain(&refs)
                    .map(|c| col(r, c))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "{up_name}({}) AS (SELECT {} FROM {}{seeds} \
                 UNION SELECT {} FROM {} AS x JOIN {up_name} u ON {})",
                k_names
                    .iter()
                    .chain(&r_names)
                    .map(|n| ident(n))
                    .collect::<Vec<_>>()
                    .join(", "),
                list(&main),
                s.from(t),
                list("x"),
                s.from(t),
                join.join(" AND ")
            )
        });
        let k_names: Vec<String> = (1..=keys.len()).map(|i| ident(&format!("k{i}"))).collect();
        format!(
            "{} IN (SELECT {} FROM {up})",
            tuple(r, &keys),
            k_names.join(", ")
        )
    }
}

/// `ROW(o.a, o.b)` for comparisons that need a row even for one column.
fn row(cols: &[&str]) -> String {
    format!(
        "ROW({})",
        cols.iter()
            .map(|c| col("o", c))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `EXISTS` a row of `from` (as `alias`) matching every `on` equality and,
/// when given, the row's own condition.
fn exists(
    from: &str,
    alias: &str,
    on: impl Iterator<Item = String>,
    condition: Option<String>,
) -> String {
    let mut on: Vec<String> = on.collect();
    on.extend(condition.map(|c| format!("({c})")));
    format!(
        "EXISTS (SELECT 1 FROM {from} AS {alias} WHERE {})",
        on.join(" AND ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, own: Option<&str>) -> Table {
        Table {
            name: name.into(),
            from: format!("\"s\".\"{name}\""),
            only: true,
            own: own.map(str::to_string),
        }
    }

    fn edge(
        name: &str,
        child: usize,
        parent: usize,
        cols: &[(&str, &str)],
        nullable: bool,
    ) -> Edge {
        Edge {
            name: name.into(),
            child,
            parent,
            columns: cols
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            nullable,
            integer: false,
        }
    }

    #[test]
    fn children_follow_through_chains_and_multi_column_keys() {
        let tables = [
            table("users", Some("\"tenant_id\" = '1'")),
            table("orders", None),
            table("items", None),
            table("shipments", None),
            table("lookup", None),
        ];
        let edges = [
            edge("orders_user", 1, 0, &[("user_id", "id")], false),
            edge("items_order", 2, 1, &[("order_id", "id")], false),
            edge(
                "ship_item",
                3,
                2,
                &[("order_id", "order_id"), ("line", "line")],
                true,
            ),
            edge("users_lookup", 0, 4, &[("code", "code")], true),
        ];
        let rows = rows(&tables, &edges, Subset::Follow).unwrap();
        assert_eq!(
            rows[0].condition.as_deref(),
            Some("\"tenant_id\" = '1'"),
            "lookup has no where"
        );
        assert_eq!(rows[4].condition, None);
        assert_eq!(
            rows[1].condition.as_deref(),
            Some(
                "EXISTS (SELECT 1 FROM ONLY \"s\".\"users\" AS \"users\" WHERE \"users\".\"id\" = \"s\".\"orders\".\"user_id\" AND (\"tenant_id\" = '1'))"
            )
        );
        assert_eq!(rows[1].follows, ["users (orders_user)"]);
        let ship = rows[3].condition.as_deref().unwrap();
        assert!(ship.starts_with("\"s\".\"shipments\".\"order_id\" IS NULL OR \"s\".\"shipments\".\"line\" IS NULL OR EXISTS (SELECT 1 FROM ONLY \"s\".\"items\" AS \"items\" WHERE \"items\".\"order_id\" = \"s\".\"shipments\".\"order_id\" AND \"items\".\"line\" = \"s\".\"shipments\".\"line\" AND (EXISTS (SELECT 1 FROM ONLY \"s\".\"orders\" AS \"orders\""), "{ship}");
        assert!(rows.iter().all(|r| r.with.is_none()));
        // Off: each table its own where, nothing else.
        let off = super::rows(&tables, &edges, Subset::Off).unwrap();
        assert_eq!(off[1].condition, None);
    }

    #[test]
    fn integer_keys_to_other_tables_are_left_to_host_with_their_parents_kept_keys() {
        let tables = [
            table("users", Some("\"tenant_id\" = '1'")),
            table("orders", Some("\"open\"")),
            table("items", None),
        ];
        let int = |mut e: Edge| {
            e.integer = true;
            e
        };
        let edges = [
            int(edge("orders_user", 1, 0, &[("user_id", "id")], true)),
            int(edge("items_order", 2, 1, &[("order_id", "id")], false)),
            // Not an integer (or two columns): stays a semi join.
            edge("items_user", 2, 0, &[("uid", "id")], false),
            int(edge("users_boss", 0, 0, &[("boss", "id")], true)),
        ];
        let rows = rows(&tables, &edges, Subset::Follow).unwrap();
        let users = "EXISTS (SELECT 1 FROM ONLY \"s\".\"users\"";
        // orders: its own where stays; the key to users is host's, with users' kept keys.
        let h = rows[1].host.as_ref().unwrap();
        assert_eq!(h.condition.as_deref(), Some("\"open\""));
        assert_eq!(h.keys.len(), 1);
        assert_eq!(
            (h.keys[0].key.as_str(), h.keys[0].column.as_str()),
            ("orders_user", "user_id")
        );
        let k = &h.keys[0].keys_select;
        assert!(k.starts_with("WITH RECURSIVE "), "users' tree: {k}");
        assert!(
            k.contains("SELECT \"id\" FROM ONLY \"s\".\"users\" WHERE "),
            "{k}"
        );
        // items: the integer key to orders is host's, whose kept keys keep
        // the semi join on users; the other key stays in the SQL.
        let h = rows[2].host.as_ref().unwrap();
        assert_eq!(
            h.keys.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(),
            ["items_order"]
        );
        let c = h.condition.as_deref().unwrap();
        assert!(c.contains(users) && !c.contains("\"orders\""), "{c}");
        assert!(
            h.keys[0].keys_select.contains(users),
            "{}",
            h.keys[0].keys_select
        );
        // The full SQL stays for when the keys do not fit.
        assert!(rows[2].condition.as_deref().unwrap().contains("\"orders\""));
        // users follows only itself: nothing for host.
        assert!(rows[0].host.is_none());
        // follow+parents: always SQL.
        let fp = super::rows(&tables, &edges, Subset::FollowParents).unwrap();
        assert!(fp.iter().all(|r| r.host.is_none()));
    }

    #[test]
    fn a_key_to_itself_is_a_recursive_query_from_the_roots() {
        let tables = [table("emp", Some("\"dept\" = '1'"))];
        let edges = [edge("emp_boss", 0, 0, &[("boss", "id")], true)];
        let r = &rows(&tables, &edges, Subset::Follow).unwrap()[0];
        let with = r.with.as_deref().unwrap();
        assert!(with.starts_with("WITH RECURSIVE \"xmat_ok_0\" AS MATERIALIZED (SELECT \"id\", \"boss\" FROM ONLY \"s\".\"emp\" WHERE \"dept\" = '1'), \"xmat_keep_0\"(\"k1\") AS (SELECT o.\"id\" FROM \"xmat_ok_0\" o WHERE o.\"boss\" IS NULL OR o.\"boss\" = o.\"id\" UNION ALL"), "{with}");
        assert_eq!(
            r.condition.as_deref(),
            Some(
                "(\"dept\" = '1') AND (\"s\".\"emp\".\"boss\" IS NULL OR \"s\".\"emp\".\"boss\" = \"s\".\"emp\".\"id\" OR \"s\".\"emp\".\"boss\" IN (SELECT * FROM \"xmat_keep_0\"))"
            )
        );
    }

    #[test]
    fn cycles_and_double_self_keys_are_refused_only_when_followed() {
        let tables = [table("a", Some("x")), table("b", None), table("c", None)];
        let edges = [
            edge("a_b", 0, 1, &[("b_id", "id")], true),
            edge("b_c", 1, 2, &[("c_id", "id")], true),
            edge("c_a", 2, 0, &[("a_id", "id")], true),
        ];
        let e = rows(&tables, &edges, Subset::Follow).unwrap_err();
        assert_eq!(
            e.to_string(),
            "subset = \"follow\" cannot follow rows around a cycle of foreign keys: a → b (a_b) → c (b_c) → a (c_a); leave subset off for this job and give these tables their own `where`s"
        );
        // Nothing restricted: nothing to follow, the cycle is fine.
        let free = [table("a", None), table("b", None), table("c", None)];
        assert!(rows(&free, &edges, Subset::Follow).is_ok());
        let two = [table("t", Some("x"))];
        let keys = [
            edge("t_p", 0, 0, &[("p", "id")], true),
            edge("t_q", 0, 0, &[("q", "id")], true),
        ];
        assert!(matches!(
            rows(&two, &keys, Subset::Follow),
            Err(SubsetError::SelfKeys { .. })
        ));
    }

    #[test]
    fn parents_are_added_for_tables_with_their_own_where() {
        let tables = [
            table("users", Some("\"tenant_id\" = '1'")),
            table("orders", Some("\"created\" > '2024-01-01'")),
            table("notes", None),
        ];
        let edges = [
            edge("orders_user", 1, 0, &[("user_id", "id")], false),
            edge("users_boss", 0, 0, &[("boss", "id")], true),
            edge("notes_order", 2, 1, &[("order_id", "id")], false),
        ];
        let r = rows(&tables, &edges, Subset::FollowParents).unwrap();
        // orders keeps its own rows; notes follow orders.
        assert_eq!(
            r[1].condition.as_deref(),
            Some("\"created\" > '2024-01-01'")
        );
        assert!(
            r[2].condition
                .as_deref()
                .unwrap()
                .starts_with("EXISTS (SELECT 1 FROM ONLY \"s\".\"orders\"")
        );
        // users: its own rows, the users orders reference, and their bosses, up.
        let users = r[0].condition.as_deref().unwrap();
        assert!(users.contains("EXISTS (SELECT 1 FROM ONLY \"s\".\"orders\" AS \"orders\" WHERE \"orders\".\"user_id\" = \"s\".\"users\".\"id\" AND (\"created\" > '2024-01-01'))"), "{users}");
        assert!(
            users.ends_with("OR \"s\".\"users\".\"id\" IN (SELECT \"k1\" FROM \"xmat_up_0\")"),
            "{users}"
        );
        assert_eq!(
            r[0].added_by,
            ["orders (orders_user)", "users (users_boss)"]
        );
        assert!(r[0].with.as_deref().unwrap().contains("UNION SELECT x.\"id\", x.\"boss\" FROM ONLY \"s\".\"users\" AS x JOIN \"xmat_up_0\" u ON x.\"id\" = u.\"r1\""));
    }
}
