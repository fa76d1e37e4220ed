//! `where_filter`: keeps the items and rows matching every condition. See README.md.

use std::cmp::Ordering::{self, Equal, Greater, Less};

use host_plugin_sdk::pg::{self, TypeClass};
use host_plugin_sdk::serde_json::{self, Value};
use host_plugin_sdk::stac::{Bbox, Interval, item_bbox, properties_interval};
use host_plugin_sdk::{Item, Outcome, Params, Plugin, Row, Table, WhereFilter};

/// A row condition: `where.COLUMN[.OP]=VALUE`.
struct Cond {
    column: String,
    op: &'static str,
    values: Vec<String>,
}

/// Item conditions and row conditions, all of which must hold.
#[derive(Default)]
pub struct Filter {
    collections: Option<Vec<String>>,
    bbox: Option<Bbox>,
    datetime: Option<Interval>,
    properties: Vec<(String, String)>,
    rows: Vec<Cond>,
    /// The current table's column positions and classes, one per row condition.
    columns: Vec<(usize, TypeClass)>,
}

const OPS: [&str; 6] = ["eq", "in", "gte", "gt", "lte", "lt"];

impl Plugin for Filter {
    fn new(params: &Params) -> Result<Self, String> {
        let mut f = Filter::default();
        for (key, value) in params.iter() {
            match key {
                "collection" if value.split(',').any(str::is_empty) => {
                    return Err(format!("collection `{value}` has an empty id"));
                }
                "collection" => f.collections = Some(value.split(',').map(str::to_owned).collect()),
                "bbox" => f.bbox = Some(Bbox::parse(value)?),
                "datetime" => f.datetime = Some(Interval::parse(value)?),
                _ if key.starts_with("property.") => {
                    f.properties.push((key[9..].to_owned(), value.to_owned()))
                }
                _ if key.starts_with("where.") => {
                    let rest = &key[6..];
                    let (column, op) = rest
                        .rsplit_once('.')
                        .and_then(|(c, op)| OPS.iter().find(|o| **o == op).map(|op| (c, *op)))
                        .unwrap_or((rest, "eq"));
                    let values = if op == "in" {
                        value.split(',').map(str::to_owned).collect()
                    } else {
                        vec![value.to_owned()]
                    };
                    f.rows.push(Cond {
                        column: column.to_owned(),
                        op,
                        values,
                    });
                }
                _ => {
                    return Err(format!(
                        "unknown parameter `{key}` (this plugin accepts: collection, bbox, datetime, \
                    property.NAME, where.COLUMN, where.COLUMN.in|gte|gt|lte|lt)"
                    ));
                }
            }
        }
        if params.is_empty() {
            return Err("no condition given".into());
        }
        Ok(f)
    }
}

impl WhereFilter for Filter {
    fn keep_item(&mut self, item: &Item) -> Outcome {
        if self.collections.is_none()
            && self.bbox.is_none()
            && self.datetime.is_none()
            && self.properties.is_empty()
        {
            return Outcome::Reject("this filter has only row conditions (where.*)".into());
        }
        self.matches(item)
            .map_or_else(Outcome::Reject, Outcome::keep_if)
    }

    fn begin_table(&mut self, table: &Table) -> Result<(), String> {
        if self.rows.is_empty() {
            return Err("this filter has no row condition (where.COLUMN=VALUE)".into());
        }
        self.columns.clear();
        for c in &self.rows {
            let i = table.require_column(&c.column)?;
            let (ty, class) = (
                &table.columns[i].type_name,
                pg::type_class(&table.columns[i].type_name),
            );
            for v in &c.values {
                pg::check_value(class, v)
                    .map_err(|e| format!("where.{}: {e}, and the column is {ty}", c.column))?;
            }
            self.columns.push((i, class));
        }
        Ok(())
    }

    fn keep_row(&mut self, row: &Row<'_>) -> Outcome {
        Outcome::keep_if(self.rows.iter().zip(&self.columns).all(|(c, &(i, class))| {
            let Some(v) = row.get(i) else { return false }; // NULL never matches
            let cmp = |want: &String| pg::compare(class, v, want);
            let is = |want: &String, ok: &[Ordering]| cmp(want).is_some_and(|o| ok.contains(&o));
            match c.op {
                "eq" | "in" => c.values.iter().any(|w| is(w, &[Equal])),
                "gt" => is(&c.values[0], &[Greater]),
                "gte" => is(&c.values[0], &[Greater, Equal]),
                "lt" => is(&c.values[0], &[Less]),
                _ => is(&c.values[0], &[Less, Equal]),
            }
        }))
    }
}

impl Filter {
    fn matches(&self, item: &Item) -> Result<bool, String> {
        if let Some(ids) = &self.collections
            && !item
                .collection()
                .is_some_and(|c| ids.iter().any(|id| *id == c))
        {
            return Ok(false);
        }
        if let Some(bbox) = &self.bbox
            && !item_bbox(item)?.is_some_and(|b| b.intersects(bbox))
        {
            return Ok(false);
        }
        if self.datetime.is_none() && self.properties.is_empty() {
            return Ok(true);
        }
        let props = item.properties()?.unwrap_or_default();
        if let Some(iv) = &self.datetime
            && !properties_interval(&props)?.is_some_and(|(s, e)| iv.overlaps(s, e))
        {
            return Ok(false);
        }
        Ok(self
            .properties
            .iter()
            .all(|(name, want)| match props.get_raw(name) {
                // A JSON number or boolean compares as JSON, anything else as a string.
                Some(raw) => match serde_json::from_str::<Value>(want) {
                    Ok(Value::Bool(_)) => raw == want,
                    Ok(Value::Number(_)) => pg::compare_numbers(raw, want) == Some(Equal),
                    _ => props.get_str(name).is_some_and(|s| s == *want),
                },
                None => false,
            }))
    }
}

host_plugin_sdk::export_where_filter!(Filter);

#[cfg(test)]
mod tests;
