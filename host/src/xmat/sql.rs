//! Quoting, and running statements so that `-v` shows each one.
//!
//! `COPY (SELECT ...) TO STDOUT` cannot take bind parameters, so every value a
//! job puts into SQL goes through [`literal`], and every name through
//! [`ident`]. Both follow PostgreSQL's own `quote_literal` / `quote_ident`
//! rules, except that identifiers are always quoted (case and odd characters
//! survive, and the output does not depend on the keyword list).

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

/// A double-quoted identifier: `we"ird` becomes `"we""ird"`.
pub fn ident(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push('"');
    for c in name.chars() {
        if c == '"' {
            s.push('"');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", ident(schema), ident(name))
}

/// A string constant of unknown type (PostgreSQL resolves it against the
/// column it meets, as it would a bound parameter): `O'Brien` becomes
/// `'O''Brien'`. Backslashes switch to the `E'...'` form, so the result
/// means the same whatever `standard_conforming_strings` is.
pub fn literal(value: &str) -> String {
    let mut s = String::with_capacity(value.len() + 3);
    if value.contains('\\') {
        s.push('E');
    }
    s.push('\'');
    for c in value.chars() {
        match c {
            '\'' => s.push_str("''"),
            '\\' => s.push_str("\\\\"),
            _ => s.push(c),
        }
    }
    s.push('\'');
    s
}

/// A database error as a user wants to read it: message, SQLSTATE, detail, hint.
pub fn describe(e: &tokio_postgres::Error) -> String {
    use std::error::Error;
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s += &format!("; {d}");
            }
            if let Some(h) = db.hint() {
                s += &format!("; hint: {h}");
            }
            if let Some(w) = db.where_() {
                s += &format!("; {w}");
            }
            s
        }
        None => match e.source() {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        },
    }
}

/// A statement that failed, with the database's reason.
#[derive(Debug, thiserror::Error)]
#[error("{reason}\n  in: {statement}")]
pub struct StatementError {
    /// The statement, shortened for long ones.
    pub statement: String,
    /// What the server (or the connection) said.
    pub reason: String,
    /// The SQLSTATE, when the server sent one.
    pub code: Option<String>,
    /// The server's detail line, when it sent one (`Key (id)=(7) is not present ...`).
    pub detail: Option<String>,
}

impl StatementError {
    /// Wraps a driver error for `statement`.
    pub fn new(statement: &str, e: &tokio_postgres::Error) -> StatementError {
        StatementError {
            statement: shorten(statement),
            reason: describe(e),
            code: e.code().map(|c| c.code().to_string()),
            detail: e
                .as_db_error()
                .and_then(|db| db.detail())
                .map(str::to_string),
        }
    }
}

fn shorten(statement: &str) -> String {
    const MAX: usize = 400;
    let one_line: String = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.len() <= MAX {
        return one_line;
    }
    let mut end = MAX;
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &one_line[..end])
}

/// A client with a label for the log (`source 2`, `target`), logging every statement at debug level.
pub struct Conn {
    /// The connection.
    pub client: Client,
    /// Which connection this is, for `-v`.
    pub label: String,
}

impl Conn {
    /// Logs a statement as it is sent.
    pub fn log(&self, sql: &str) {
        // Followed keys can put a megabyte of keys into one statement.
        const MAX: usize = 4096;
        if sql.len() <= MAX {
            tracing::debug!("{}: {}", self.label, sql);
            return;
        }
        let mut end = MAX;
        while !sql.is_char_boundary(end) {
            end -= 1;
        }
        let more = sql.len() - end;
        tracing::debug!("{}: {}... ({more} more bytes)", self.label, &sql[..end]);
    }

    /// Runs statements without results (simple query protocol: several may be `;`-separated).
    pub async fn exec(&self, sql: &str) -> Result<(), StatementError> {
        self.log(sql);
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| StatementError::new(sql, &e))
    }

    /// Runs a query with parameters.
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StatementError> {
        self.log(sql);
        self.client
            .query(sql, params)
            .await
            .map_err(|e| StatementError::new(sql, &e))
    }

    /// Runs a query that returns exactly one row.
    pub async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StatementError> {
        self.log(sql);
        self.client
            .query_one(sql, params)
            .await
            .map_err(|e| StatementError::new(sql, &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_names_and_values() {
        assert_eq!(ident("users"), "\"users\"");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(qualified("a b", "C"), "\"a b\".\"C\"");
        assert_eq!(literal("O'Brien"), "'O''Brien'");
        assert_eq!(literal("a\\b'"), "E'a\\\\b'''");
        assert_eq!(literal(""), "''");
    }

    #[test]
    fn long_statements_are_shortened_on_one_line() {
        let s = shorten(&format!("SELECT\n  {}", "x, ".repeat(300)));
        assert!(s.len() < 410 && s.ends_with("...") && !s.contains('\n'));
    }
}
