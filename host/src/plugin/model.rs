//! The host's own model of plugins and their results. Each WIT version's
//! bindings convert into these types, so the rest of the host never depends
//! on a particular interface version.

use serde::Serialize;

/// The three kinds of plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// STAC items in, rewritten / dropped / rejected items out.
    ItemRewriter,
    /// COPY rows in, transformed / dropped / rejected rows out.
    RowTransformer,
    /// Keep or drop decisions for items and rows.
    WhereFilter,
}

impl Kind {
    /// The WIT world name, as users see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ItemRewriter => "item-rewriter",
            Kind::RowTransformer => "row-transformer",
            Kind::WhereFilter => "where-filter",
        }
    }

    /// Whether plugins of this kind take STAC items.
    pub fn handles_items(self) -> bool {
        matches!(self, Kind::ItemRewriter | Kind::WhereFilter)
    }

    /// Whether plugins of this kind take table rows.
    pub fn handles_rows(self) -> bool {
        matches!(self, Kind::RowTransformer | Kind::WhereFilter)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plugin reports about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Info {
    pub name: String,
    pub version: String,
    pub kind: Kind,
    pub description: String,
}

/// What happens to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Pass on this JSON object.
    Keep(String),
    Drop,
    Reject(String),
}

/// What happens to one row, or a filter's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Keep,
    Drop,
    Reject(String),
}

/// A column of the table rows come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: String,
    /// PostgreSQL type name as `format_type` prints it.
    pub type_name: String,
}

/// The table the following row batches belong to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// A row transformer's answer for one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowBatch {
    /// One per input row.
    pub outcomes: Vec<Outcome>,
    /// The kept rows in COPY text format.
    pub rows: Vec<u8>,
}
