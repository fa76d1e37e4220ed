//! `upper`: a row transformer that upper-cases the columns named in
//! `columns=A,B`. Its description declares nothing about uniqueness, which
//! is what the xmat tests need: `host xmat` must then assume it may change
//! any column ('a' and 'A' of a unique column become one value).

use host_plugin_sdk::{Outcome, Params, Plugin, Row, RowTransformer, Table};

/// The columns to upper-case, and their positions in the current table.
pub struct Upper {
    names: Vec<String>,
    positions: Vec<usize>,
}

impl Plugin for Upper {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&["columns"])?;
        let names = params
            .require("columns")?
            .split(',')
            .map(str::to_string)
            .collect();
        Ok(Upper {
            names,
            positions: Vec::new(),
        })
    }
}

impl RowTransformer for Upper {
    fn begin_table(&mut self, table: &Table) -> Result<(), String> {
        self.positions = self
            .names
            .iter()
            .map(|n| table.require_column(n))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    fn transform(&mut self, row: &mut Row<'_>) -> Outcome {
        for &i in &self.positions {
            if let Some(v) = row.get(i) {
                let up = v.to_uppercase();
                row.set(i, Some(up));
            }
        }
        Outcome::Keep
    }
}

host_plugin_sdk::export_row_transformer!(Upper);
