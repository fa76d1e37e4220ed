//! `{{name}}`: a host where-filter. Items: keeps those of one collection;
//! rows: keeps those whose column has one value.

use host_plugin_sdk::{Item, Outcome, Params, Plugin, Row, Table, WhereFilter};

/// Parameters: `collection=ID` for items; `column=NAME` and `value=V` for rows.
pub struct {{Type}} {
    collection: Option<String>,
    column: Option<(String, String)>,
    index: usize,
}

impl Plugin for {{Type}} {
    fn new(params: &Params) -> Result<Self, String> {
        params.only(&["collection", "column", "value"])?;
        let column = match (params.get("column")?, params.get("value")?) {
            (Some(c), Some(v)) => Some((c.to_owned(), v.to_owned())),
            (None, None) => None,
            _ => return Err("give `column` and `value` together".into()),
        };
        Ok({{Type}} {
            collection: params.get("collection")?.map(str::to_owned),
            column,
            index: 0,
        })
    }
}

impl WhereFilter for {{Type}} {
    fn keep_item(&mut self, item: &Item) -> Outcome {
        match &self.collection {
            Some(want) => Outcome::keep_if(item.collection().as_deref() == Some(want.as_str())),
            None => Outcome::Reject("no `collection` parameter: this filter cannot judge items".into()),
        }
    }

    fn begin_table(&mut self, table: &Table) -> Result<(), String> {
        let Some((column, _)) = &self.column else {
            return Err("no `column` parameter: this filter cannot judge rows".into());
        };
        self.index = table.require_column(column)?;
        Ok(())
    }

    fn keep_row(&mut self, row: &Row<'_>) -> Outcome {
        let want = self.column.as_ref().map(|(_, v)| v.as_str());
        Outcome::keep_if(row.get(self.index) == want)
    }
}

host_plugin_sdk::export_where_filter!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use host_plugin_sdk::run::{filter_items, filter_rows};

    #[test]
    fn keeps_one_collection_and_one_value() {
        let mut p = {{Type}}::new(&Params::parse(["collection=a", "column=s", "value=on"])).unwrap();
        let items = vec![r#"{"id":"1","collection":"a"}"#.into(), r#"{"id":"2","collection":"b"}"#.into()];
        assert_eq!(filter_items(&mut p, items), [Outcome::Keep, Outcome::Drop]);
        let table = Table::new("public", "t", &[("id", "integer"), ("s", "text")]);
        p.begin_table(&table).unwrap();
        assert_eq!(filter_rows(&mut p, &table, b"1\ton\n2\toff\n").unwrap(), [Outcome::Keep, Outcome::Drop]);
    }
}
