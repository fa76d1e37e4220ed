//! A row transformer built against the TEST-ONLY `host:plugin@0.2.0`
//! (`tests/wit/v0.2/plugin.wit`), whose `transform-rows` is handed the table
//! with every batch. It prefixes the column named by `column=NAME` with
//! `schema.table:`, taken from that per-batch table (it keeps no state from
//! `begin-table`), so a test sees that the host spoke 0.2 to it. NULL stays
//! NULL. Only the host's unit tests run it; the shipped host refuses 0.2.

wit_bindgen::generate!({
    world: "row-transformer",
    path: "../../wit/v0.2",
});

use std::cell::RefCell;

use exports::host::plugin::{plugin, row_transform};
use host::plugin::types::{Kind, Outcome, Param, PluginInfo, RowBatch, Table};

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct TableTag;

thread_local! {
    /// The `column` parameter.
    static COLUMN: RefCell<String> = const { RefCell::new(String::new()) };
}

impl plugin::Guest for TableTag {
    fn info() -> PluginInfo {
        PluginInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::RowTransformer,
            description: env!("CARGO_PKG_DESCRIPTION").into(),
        }
    }

    fn configure(params: Vec<Param>) -> Result<(), String> {
        match params.as_slice() {
            [p] if p.key == "column" => {
                COLUMN.with(|c| *c.borrow_mut() = p.value.clone());
                Ok(())
            }
            _ => Err("takes exactly one parameter, column=NAME".into()),
        }
    }
}

impl row_transform::Guest for TableTag {
    fn begin_table(table: Table) -> Result<(), String> {
        position(&table).map(drop)
    }

    fn transform_rows(table: Table, rows: Vec<u8>) -> Result<RowBatch, String> {
        let at = position(&table)?;
        let prefix = escape(&format!("{}.{}:", table.schema, table.name));
        let mut out = Vec::with_capacity(rows.len() + 64);
        let mut outcomes = Vec::new();
        for row in rows.split_inclusive(|&b| b == b'\n') {
            let row = row.strip_suffix(b"\n").unwrap_or(row);
            for (i, field) in row.split(|&b| b == b'\t').enumerate() {
                if i > 0 {
                    out.push(b'\t');
                }
                if i == at && field != b"\\N" {
                    out.extend_from_slice(prefix.as_bytes());
                }
                out.extend_from_slice(field);
            }
            out.push(b'\n');
            outcomes.push(Outcome::Keep);
        }
        Ok(RowBatch {
            outcomes,
            rows: out,
        })
    }
}

/// Where the `column` parameter is in `table`.
fn position(table: &Table) -> Result<usize, String> {
    COLUMN.with(|c| {
        let c = c.borrow();
        table
            .columns
            .iter()
            .position(|col| col.name == *c)
            .ok_or_else(|| format!("table {}.{} has no column `{c}`", table.schema, table.name))
    })
}

/// Text as a COPY text field.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

// Native builds cannot link exports named like `host:plugin/plugin@0.2.0#info`.
#[cfg(target_arch = "wasm32")]
export!(TableTag);
