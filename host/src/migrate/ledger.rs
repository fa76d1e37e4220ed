//! Where a database records the versions of a set that were applied.
//!
//! The built-in set and sets given with `--dir` keep a table
//! `PREFIX.migrations (version text primary key, sha256 text not null, kind
//! text, file text, applied_at timestamptz default now())`, created by their
//! base files and filled by `migrate` ([`Ledger::own`]). A set whose files
//! record their own version (pgstac calls `set_version` itself) describes its
//! table with [`Ledger::new`] and no record statement.

use tokio_postgres::Transaction;

use super::{MigrateError, Version};

/// How to read (and maybe write) a set's applied versions.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// The schema the set installs. If it exists without `table`, the
    /// schema was not made by this set and `migrate` refuses to touch it.
    pub schema: String,
    /// The bookkeeping table, schema-qualified (e.g. `host.migrations`).
    pub table: String,
    /// A query returning `(version text, sha256 text, file text)` for each
    /// applied version; `sha256` and `file` may be NULL.
    pub applied_sql: String,
    /// A statement recording one applied file: `$1` version, `$2` SHA-256,
    /// `$3` kind (`base`/`incremental`), `$4` file name. `None` when the
    /// files record their version themselves.
    pub record_sql: Option<String>,
}

/// One version the ledger says was applied.
#[derive(Debug, Clone)]
pub struct Applied {
    pub version: Version,
    pub sha256: Option<String>,
    pub file: Option<String>,
}

impl Ledger {
    /// A ledger for a set that keeps no checksums: `applied_sql` must return
    /// `(version text, sha256 text, file text)` rows (NULLs allowed).
    pub fn new(schema: &str, table: &str, applied_sql: &str) -> Ledger {
        Ledger {
            schema: schema.to_string(),
            table: table.to_string(),
            applied_sql: applied_sql.to_string(),
            record_sql: None,
        }
    }

    /// The ledger `migrate` keeps itself, in `SCHEMA.migrations`. The schema
    /// name is the set's prefix, so it must be a plain lower-case identifier.
    pub fn own(schema: &str) -> Result<Ledger, MigrateError> {
        let plain = !schema.is_empty()
            && schema.len() <= 63
            && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain {
            return Err(MigrateError::Prefix(schema.to_string()));
        }
        let table = format!("{schema}.migrations");
        Ok(Ledger {
            applied_sql: format!("SELECT version, sha256, file FROM {table}"),
            record_sql: Some(format!(
                "INSERT INTO {table} (version, sha256, kind, file) VALUES ($1, $2, $3, $4)"
            )),
            schema: schema.to_string(),
            table,
        })
    }

    /// pgstac's own ledger: `pgstac.migrations (version, datetime)`, filled
    /// by its files through `set_version`. It keeps no checksums.
    pub fn pgstac() -> Ledger {
        Ledger::new(
            "pgstac",
            "pgstac.migrations",
            "SELECT version, NULL::text, NULL::text FROM pgstac.migrations",
        )
    }

    /// The applied versions, or `None` when the set is not installed.
    pub async fn read(&self, tx: &Transaction<'_>) -> Result<Option<Vec<Applied>>, MigrateError> {
        let row = tx
            .query_one(
                "SELECT to_regnamespace($1::text) IS NOT NULL, to_regclass($2::text) IS NOT NULL",
                &[&self.schema, &self.table],
            )
            .await?;
        let (schema, table): (bool, bool) = (row.get(0), row.get(1));
        match (schema, table) {
            (false, _) => return Ok(None),
            (true, false) => {
                return Err(MigrateError::Foreign {
                    schema: self.schema.clone(),
                    reason: format!("it has no {} table", self.table),
                });
            }
            (true, true) => {}
        }
        let mut applied = Vec::new();
        for row in tx.query(&self.applied_sql, &[]).await? {
            let version: String = row.get(0);
            let version = Version::parse(&version).map_err(|reason| MigrateError::Foreign {
                schema: self.schema.clone(),
                reason: format!("{} holds a bad version: {reason}", self.table),
            })?;
            applied.push(Applied {
                version,
                sha256: row.get(1),
                file: row.get(2),
            });
        }
        if applied.is_empty() {
            return Err(MigrateError::Foreign {
                schema: self.schema.clone(),
                reason: format!("{} records no version", self.table),
            });
        }
        Ok(Some(applied))
    }
}

/// The newest applied version.
pub fn current(applied: &[Applied]) -> Option<&Version> {
    applied.iter().map(|a| &a.version).max()
}
