//! `{{name}}`: a host row transformer. It upper-cases one text column.

use host_plugin_sdk::{Outcome, Params, Plugin, Row, RowTransformer, Table};

/// Upper-cases the column named by parameter `column`; NULL stays NULL.
pub struct {{Type}} {
    column: String,
    /// The column's position in the current table.
    index: usize,
}

impl Plugin for {{Type}} {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&["column"])?;
        let column = params.require("column")?.to_owned();
        Ok({{Type}} { column, index: 0 })
    }
}

impl RowTransformer for {{Type}} {
    fn begin_table(&mut self, table: &Table) -> Result<(), String> {
        // Look the column up once per table, not once per row.
        self.index = table.require_column(&self.column)?;
        Ok(())
    }

    fn transform(&mut self, row: &mut Row<'_>) -> Outcome {
        if let Some(value) = row.get(self.index) {
            let upper = value.to_uppercase();
            row.set(self.index, Some(upper));
        }
        Outcome::Keep
    }
}

host_plugin_sdk::export_row_transformer!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use host_plugin_sdk::run::transform_rows;

    #[test]
    fn upper_cases_the_column_and_keeps_nulls() {
        let table = Table::new("public", "users", &[("id", "integer"), ("name", "text")]);
        let mut p = {{Type}}::new(&Params::parse(["column=name"])).unwrap();
        p.begin_table(&table).unwrap();
        let (outcomes, rows) = transform_rows(&mut p, &table, b"1\tada\n2\t\\N\n").unwrap();
        assert_eq!(outcomes, [Outcome::Keep, Outcome::Keep]);
        assert_eq!(rows, b"1\tADA\n2\t\\N\n");
        let mut p = {{Type}}::new(&Params::parse(["column=nope"])).unwrap();
        assert!(p.begin_table(&table).unwrap_err().contains("has no column `nope`"));
    }
}
