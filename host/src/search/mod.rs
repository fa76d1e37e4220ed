//! STAC API item search over the built-in schema (`host.items`).
//!
//! Pure translation, no database: [`Search::from_json`] checks a request
//! (POST body form, CQL2-JSON filters included) and writes one SQL statement
//! with bind parameters ([`SqlQuery`]); [`Search::page`] turns the rows it
//! returns into a FeatureCollection with a `next` link. [`run`] does both
//! against a connection.
//!
//! - [`request`]: the request members (`collections`, `ids`, `bbox`, `intersects`,
//!   `datetime`, `limit`, `sortby`, `filter`, `token`).
//! - [`cql2`]: CQL2-JSON filters.
//! - [`sql`]: the statement; every value from the request is a bind parameter.
//! - [`paging`]: keyset tokens and the output document.

pub mod cql2;
pub mod datetime;
pub mod geom;
pub mod paging;
pub mod request;
pub mod sql;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use paging::Row;
pub use request::SearchRequest;
pub use sql::SqlQuery;

/// What is wrong with a request, and where: `filter.args[1]: unknown operator 'foo'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SearchError {
    /// The offending member, e.g. `bbox[2]` or `filter.args[0].args[1]`.
    pub path: String,
    pub message: String,
}

impl SearchError {
    pub fn new(path: &str, message: String) -> SearchError {
        SearchError {
            path: path.to_string(),
            message,
        }
    }
}

/// A checked request and its statement.
#[derive(Debug)]
pub struct Search {
    pub request: SearchRequest,
    pub query: SqlQuery,
}

impl Search {
    /// Parses request JSON text.
    pub fn parse(text: &str) -> Result<Search, SearchError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| SearchError::new("request", format!("invalid JSON: {e}")))?;
        Search::from_json(&v)
    }

    /// Checks a request and writes its statement.
    pub fn from_json(v: &Value) -> Result<Search, SearchError> {
        let request = SearchRequest::from_json(v)?;
        let query = sql::build(&request)?;
        Ok(Search { request, query })
    }

    /// The FeatureCollection for the rows the statement returned.
    pub fn page(&self, rows: Vec<Row>) -> String {
        paging::feature_collection(&self.request, &self.query.keys, rows)
    }
}

/// Runs a search and returns the FeatureCollection as JSON text.
pub async fn run(
    client: &tokio_postgres::Client,
    search: &Search,
) -> Result<String, tokio_postgres::Error> {
    let q = &search.query;
    tracing::debug!(sql = %q.sql, params = ?q.params, "search");
    let rows = client.query(q.sql.as_str(), &q.param_refs()).await?;
    let rows = rows
        .iter()
        .map(|r| Row {
            content: r.get(0),
            keys: (1..r.len())
                .map(|i| r.get::<_, Option<String>>(i))
                .collect(),
        })
        .collect();
    Ok(search.page(rows))
}
