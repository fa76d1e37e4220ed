//! The job's `where` and `select` expressions on changes. They are SQL, so
//! PostgreSQL evaluates them, as `host xmat` has the source do: one query
//! per table per window on a connection of its own to the target, over the
//! new rows given as arrays of text cast to the source columns' types:
//!
//! ```sql
//! SELECT o, (expr or column)::text..., coalesce((where), false)
//! FROM (SELECT r.o, r.c1::type1 AS "col1", ... FROM unnest($1::int8[], $2::text[], ...) r(o, c1, ...)) s
//! ```
//!
//! The target has the source's types (xmat copies them), and its
//! `search_path` is the target schema first, so type names and built-in
//! functions resolve as they did on the source; an expression calling a
//! function of the source schema fails when the statement is prepared,
//! before anything is applied.

use std::collections::HashMap;

use tokio_postgres::{Client, Statement};

use super::super::tables::StreamTable;
use super::super::{StreamError, connect};
use crate::db::Dsn;
use crate::xmat::sql::{describe, ident};

/// Evaluates expressions on the target.
pub struct Evaluator {
    client: Client,
    runtime: tokio::runtime::Handle,
    statements: HashMap<usize, Statement>,
}

/// One row after `where` and `select`: `None` when `where` leaves it out.
pub type Evaluated = Option<Vec<Option<String>>>;

impl Evaluator {
    /// A connection to the target with the target schema first on the path.
    pub async fn connect(target: &Dsn, schema: &str) -> Result<Evaluator, StreamError> {
        let client = connect(target, "target").await?;
        client
            .batch_execute(&format!(
                "SET search_path = {}, public; SET datestyle = ISO; SET intervalstyle = postgres; \
                 SET extra_float_digits = 3; SET bytea_output = hex",
                ident(schema)
            ))
            .await
            .map_err(|e| StreamError::db("target", "setting up the expression session", &e))?;
        Ok(Evaluator {
            client,
            runtime: tokio::runtime::Handle::current(),
            statements: HashMap::new(),
        })
    }

    /// Prepares table `t`'s statement (a bad expression fails here).
    pub async fn prepare(&mut self, t: usize, table: &StreamTable) -> Result<(), String> {
        let sql = statement(table);
        let s = self.client.prepare(&sql).await.map_err(|e| {
            format!(
                "`where`/`select` do not run on the target: {}\n  in: {sql}",
                describe(&e)
            )
        })?;
        self.statements.insert(t, s);
        Ok(())
    }

    /// Evaluates rows of table `t` (each holds every source column, in
    /// column order). Runs on the apply reader's thread.
    pub fn eval(
        &mut self,
        t: usize,
        table: &StreamTable,
        rows: &[Vec<Option<&str>>],
    ) -> Result<Vec<Evaluated>, String> {
        let stmt = self.statements.get(&t).expect("prepared at start").clone();
        let ord: Vec<i64> = (0..rows.len() as i64).collect();
        let columns: Vec<Vec<Option<&str>>> = (0..table.columns.len())
            .map(|c| rows.iter().map(|r| r[c]).collect())
            .collect();
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&ord];
        for c in &columns {
            params.push(c);
        }
        let result = self
            .runtime
            .block_on(self.client.query(&stmt, &params))
            .map_err(|e| {
                format!(
                    "evaluating `where`/`select` on the target: {}",
                    describe(&e)
                )
            })?;
        let n = table.projection.len();
        Ok(result
            .iter()
            .map(|r| {
                let keep: bool = r.get(n + 1);
                keep.then(|| (1..=n).map(|i| r.get::<_, Option<String>>(i)).collect())
            })
            .collect())
    }
}

fn statement(table: &StreamTable) -> String {
    let names: Vec<String> = (0..table.columns.len()).map(|i| format!("c{i}")).collect();
    let casts: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("r.c{i}::{} AS {}", c.type_sql, ident(&c.name)))
        .collect();
    let unnest: Vec<String> = (0..table.columns.len())
        .map(|i| format!("${}::text[]", i + 2))
        .collect();
    let values: Vec<String> = table
        .projection
        .iter()
        .map(|p| match &p.expr {
            Some(e) => format!("({e})::text"),
            None => format!("s.{}::text", ident(&table.columns[p.column].name)),
        })
        .collect();
    format!(
        "SELECT s.o, {}, coalesce(({}), false) FROM (SELECT r.o, {} FROM unnest($1::int8[], {}) AS r(o, {})) s ORDER BY s.o",
        values.join(", "),
        table.filter.as_deref().unwrap_or("true"),
        casts.join(", "),
        unnest.join(", "),
        names.join(", ")
    )
}
