//! STAC API item search: requests checked member by member, CQL2-JSON
//! filters, and the statement host's schema answers them with — the same
//! answers pgstac's own `search()` gives (see [`typing`] and [`sql`]); the
//! catalogs run them ([`crate::catalog::Catalog::search`]).
//!
//! - [`request`]: the request members (`collections`, `ids`, `bbox`, `intersects`,
//!   `datetime`, `limit`, `sortby`, `filter`, `token`).
//! - [`cql2`]: CQL2-JSON filters; [`typing`]: how comparisons read their operands.
//! - [`sql`]: host's schema's statement; every value from the request is a bind parameter.
//! - [`paging`]: keyset tokens and the output document.

pub mod cql2;
pub mod datetime;
pub mod geom;
pub mod paging;
pub mod request;
pub mod sql;
pub mod typing;

#[cfg(test)]
mod tests;

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

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The items, as JSON text.
    pub features: Vec<String>,
    /// The token of the next page, when there is one.
    pub next_token: Option<String>,
}

impl Page {
    /// The page as a GeoJSON FeatureCollection, with a `next` link whose
    /// body is `request` with the next page's token.
    pub fn feature_collection(&self, request: &SearchRequest) -> String {
        paging::feature_collection(request, self)
    }
}
