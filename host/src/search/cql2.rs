//! CQL2-JSON filters: parsed into a small tree that remembers where each part
//! came from (`filter.args[1].args[0]`), so type errors found while writing
//! SQL can name it too.
//!
//! Supported: `and`, `or`, `not`, `=`, `<>`, `<`, `<=`, `>`, `>=`, `in`,
//! `between`, `like`, `isNull`, the spatial `s_intersects` (and `s_contains`,
//! `s_within`, `s_disjoint`, `s_equals`, `s_touches`, `s_overlaps`, `s_crosses`),
//! the temporal `t_intersects` (and `t_before`, `t_after`, `t_disjoint`,
//! `t_equals`, `t_meets`, `t_metby`, `t_overlaps`, `t_overlappedby`,
//! `t_starts`, `t_startedby`, `t_during`, `t_contains`, `t_finishes`,
//! `t_finishedby`), boolean literals, and as operands: `{"property": ...}`, strings,
//! numbers, booleans, `{"timestamp": ...}`, `{"date": ...}`, `{"interval": [..]}`,
//! `{"bbox": [...]}` and GeoJSON geometries.

use serde_json::{Map, Number, Value};

use super::SearchError;
use super::datetime::{Instant, Interval};
use super::geom::{self, Bbox};

/// A queryable: a column where the schema has one, else an item property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property {
    Id,
    Collection,
    Geometry,
    /// The item's `datetime`: as in pgstac, the start of its range when it
    /// has one.
    Datetime,
    StartDatetime,
    EndDatetime,
    /// `content->'properties'->NAME` (the name is a bind parameter).
    Json(String),
}

impl Property {
    /// Maps a name; a leading `properties.` is dropped (`properties.eo:cloud_cover`).
    pub fn from_name(name: &str) -> Property {
        match name {
            "id" => Property::Id,
            "collection" => Property::Collection,
            "geometry" => Property::Geometry,
            "datetime" | "properties.datetime" => Property::Datetime,
            "start_datetime" | "properties.start_datetime" => Property::StartDatetime,
            "end_datetime" | "properties.end_datetime" => Property::EndDatetime,
            other => Property::Json(
                other
                    .strip_prefix("properties.")
                    .unwrap_or(other)
                    .to_string(),
            ),
        }
    }
}

/// An operand of a predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Property(Property),
    Text(String),
    Number(Number),
    Bool(bool),
    Timestamp(Instant),
    /// A whole UTC day: its first and last microsecond.
    Date(Instant, Instant),
    Interval(Interval),
    /// GeoJSON text, checked.
    Geometry(String),
    Bbox(Bbox),
}

/// An operand and where it was in the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub path: String,
    pub value: Operand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpatialOp {
    Intersects,
    Contains,
    Within,
    Disjoint,
    Equals,
    Touches,
    Overlaps,
    Crosses,
}

impl SpatialOp {
    /// The operator's CQL2 name.
    pub fn name(self) -> &'static str {
        match self {
            SpatialOp::Intersects => "s_intersects",
            SpatialOp::Contains => "s_contains",
            SpatialOp::Within => "s_within",
            SpatialOp::Disjoint => "s_disjoint",
            SpatialOp::Equals => "s_equals",
            SpatialOp::Touches => "s_touches",
            SpatialOp::Overlaps => "s_overlaps",
            SpatialOp::Crosses => "s_crosses",
        }
    }

    /// The same relation with its operands swapped.
    pub fn mirrored(self) -> SpatialOp {
        match self {
            SpatialOp::Contains => SpatialOp::Within,
            SpatialOp::Within => SpatialOp::Contains,
            other => other,
        }
    }

    /// The PostGIS function.
    pub fn function(self) -> &'static str {
        match self {
            SpatialOp::Intersects => "ST_Intersects",
            SpatialOp::Contains => "ST_Contains",
            SpatialOp::Within => "ST_Within",
            SpatialOp::Disjoint => "ST_Disjoint",
            SpatialOp::Equals => "ST_Equals",
            SpatialOp::Touches => "ST_Touches",
            SpatialOp::Overlaps => "ST_Overlaps",
            SpatialOp::Crosses => "ST_Crosses",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemporalOp {
    Intersects,
    Disjoint,
    Before,
    After,
    Equals,
    Meets,
    MetBy,
    Overlaps,
    OverlappedBy,
    Starts,
    StartedBy,
    During,
    Contains,
    Finishes,
    FinishedBy,
}

impl TemporalOp {
    /// The operator's CQL2 name.
    pub fn name(self) -> &'static str {
        match self {
            TemporalOp::Intersects => "t_intersects",
            TemporalOp::Disjoint => "t_disjoint",
            TemporalOp::Before => "t_before",
            TemporalOp::After => "t_after",
            TemporalOp::Equals => "t_equals",
            TemporalOp::Meets => "t_meets",
            TemporalOp::MetBy => "t_metby",
            TemporalOp::Overlaps => "t_overlaps",
            TemporalOp::OverlappedBy => "t_overlappedby",
            TemporalOp::Starts => "t_starts",
            TemporalOp::StartedBy => "t_startedby",
            TemporalOp::During => "t_during",
            TemporalOp::Contains => "t_contains",
            TemporalOp::Finishes => "t_finishes",
            TemporalOp::FinishedBy => "t_finishedby",
        }
    }
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(bool),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        op: CmpOp,
        left: Arg,
        right: Arg,
    },
    In {
        arg: Arg,
        list: Vec<Arg>,
    },
    Between {
        arg: Arg,
        low: Arg,
        high: Arg,
    },
    Like {
        arg: Arg,
        pattern: Arg,
    },
    IsNull(Arg),
    Spatial {
        op: SpatialOp,
        left: Arg,
        right: Arg,
    },
    Temporal {
        op: TemporalOp,
        left: Arg,
        right: Arg,
    },
}

/// Parses a CQL2-JSON expression found at `path` (e.g. `filter`).
pub fn parse(v: &Value, path: &str) -> Result<Expr, SearchError> {
    match v {
        Value::Bool(b) => Ok(Expr::Literal(*b)),
        Value::Object(obj) => parse_op(obj, path),
        Value::String(_) => Err(SearchError::new(
            path,
            "CQL2 text is not supported; give the filter as CQL2-JSON".to_string(),
        )),
        other => Err(SearchError::new(
            path,
            format!(
                "expected a CQL2-JSON expression ({{\"op\": ..., \"args\": [...]}}), got {other}"
            ),
        )),
    }
}

fn parse_op(obj: &Map<String, Value>, path: &str) -> Result<Expr, SearchError> {
    let op = match obj.get("op") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(SearchError::new(
                &format!("{path}.op"),
                format!("expected a string, got {other}"),
            ));
        }
        None => {
            return Err(SearchError::new(
                path,
                "expected a CQL2-JSON expression with \"op\" and \"args\"".to_string(),
            ));
        }
    };
    if let Some(extra) = obj.keys().find(|k| *k != "op" && *k != "args") {
        return Err(SearchError::new(
            path,
            format!("unexpected member {extra:?}"),
        ));
    }
    let args = match obj.get("args") {
        Some(Value::Array(a)) => a.as_slice(),
        Some(other) => {
            return Err(SearchError::new(
                &format!("{path}.args"),
                format!("expected an array, got {other}"),
            ));
        }
        None => {
            return Err(SearchError::new(
                path,
                format!("operator '{op}' needs \"args\""),
            ));
        }
    };
    let at = |i: usize| format!("{path}.args[{i}]");
    let arity = |n: usize| -> Result<(), SearchError> {
        if args.len() == n {
            Ok(())
        } else {
            Err(SearchError::new(
                path,
                format!(
                    "'{op}' takes {n} argument{}, got {}",
                    if n == 1 { "" } else { "s" },
                    args.len()
                ),
            ))
        }
    };
    let operand = |i: usize| parse_operand(&args[i], &at(i));
    let two = || -> Result<(Arg, Arg), SearchError> {
        arity(2)?;
        Ok((operand(0)?, operand(1)?))
    };
    let expr = match op.to_ascii_lowercase().as_str() {
        "and" | "or" => {
            if args.is_empty() {
                return Err(SearchError::new(
                    path,
                    format!("'{op}' needs at least one argument"),
                ));
            }
            let list = args
                .iter()
                .enumerate()
                .map(|(i, a)| parse(a, &at(i)))
                .collect::<Result<Vec<_>, _>>()?;
            if op.eq_ignore_ascii_case("and") {
                Expr::And(list)
            } else {
                Expr::Or(list)
            }
        }
        "not" => {
            arity(1)?;
            Expr::Not(Box::new(parse(&args[0], &at(0))?))
        }
        "=" | "<>" | "<" | "<=" | ">" | ">=" => {
            let cmp = match op {
                "=" => CmpOp::Eq,
                "<>" => CmpOp::Ne,
                "<" => CmpOp::Lt,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                _ => CmpOp::Ge,
            };
            let (left, right) = two()?;
            Expr::Compare {
                op: cmp,
                left,
                right,
            }
        }
        "in" => {
            arity(2)?;
            let list_path = at(1);
            let items = args[1].as_array().ok_or_else(|| {
                SearchError::new(
                    &list_path,
                    format!("'in' needs an array of values, got {}", args[1]),
                )
            })?;
            if items.is_empty() {
                return Err(SearchError::new(
                    &list_path,
                    "'in' needs at least one value".to_string(),
                ));
            }
            let list = items
                .iter()
                .enumerate()
                .map(|(i, v)| parse_operand(v, &format!("{list_path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Expr::In {
                arg: operand(0)?,
                list,
            }
        }
        "between" => {
            arity(3)?;
            Expr::Between {
                arg: operand(0)?,
                low: operand(1)?,
                high: operand(2)?,
            }
        }
        "like" => {
            let (arg, pattern) = two()?;
            Expr::Like { arg, pattern }
        }
        "isnull" => {
            arity(1)?;
            Expr::IsNull(operand(0)?)
        }
        s if s.starts_with("s_") => {
            let sop = match s {
                "s_intersects" => SpatialOp::Intersects,
                "s_contains" => SpatialOp::Contains,
                "s_within" => SpatialOp::Within,
                "s_disjoint" => SpatialOp::Disjoint,
                "s_equals" => SpatialOp::Equals,
                "s_touches" => SpatialOp::Touches,
                "s_overlaps" => SpatialOp::Overlaps,
                "s_crosses" => SpatialOp::Crosses,
                _ => return Err(unknown(op, path)),
            };
            let (left, right) = two()?;
            Expr::Spatial {
                op: sop,
                left,
                right,
            }
        }
        s if s.starts_with("t_") => {
            let top = [
                TemporalOp::Intersects,
                TemporalOp::Disjoint,
                TemporalOp::Before,
                TemporalOp::After,
                TemporalOp::Equals,
                TemporalOp::Meets,
                TemporalOp::MetBy,
                TemporalOp::Overlaps,
                TemporalOp::OverlappedBy,
                TemporalOp::Starts,
                TemporalOp::StartedBy,
                TemporalOp::During,
                TemporalOp::Contains,
                TemporalOp::Finishes,
                TemporalOp::FinishedBy,
            ]
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| unknown(op, path))?;
            let (left, right) = two()?;
            Expr::Temporal {
                op: top,
                left,
                right,
            }
        }
        _ => return Err(unknown(op, path)),
    };
    Ok(expr)
}

fn unknown(op: &str, path: &str) -> SearchError {
    SearchError::new(path, format!("unknown operator '{op}'"))
}

/// Parses one operand at `path`.
pub fn parse_operand(v: &Value, path: &str) -> Result<Arg, SearchError> {
    let value = match v {
        Value::String(s) => Operand::Text(s.clone()),
        Value::Number(n) => Operand::Number(n.clone()),
        Value::Bool(b) => Operand::Bool(*b),
        Value::Null => {
            return Err(SearchError::new(
                path,
                "null is not a value here; use isNull".to_string(),
            ));
        }
        Value::Array(_) => {
            return Err(SearchError::new(
                path,
                "arrays are only allowed as the list of 'in'".to_string(),
            ));
        }
        Value::Object(obj) => object_operand(obj, v, path)?,
    };
    Ok(Arg {
        path: path.to_string(),
        value,
    })
}

fn object_operand(obj: &Map<String, Value>, v: &Value, path: &str) -> Result<Operand, SearchError> {
    let single = |key: &str| -> Result<&Value, SearchError> {
        if obj.len() != 1 {
            return Err(SearchError::new(
                path,
                format!("{{\"{key}\": ...}} must have no other members"),
            ));
        }
        Ok(&obj[key])
    };
    let string = |key: &str| -> Result<&str, SearchError> {
        single(key)?.as_str().ok_or_else(|| {
            SearchError::new(
                &format!("{path}.{key}"),
                format!("expected a string, got {}", obj[key]),
            )
        })
    };
    if obj.contains_key("property") {
        let name = string("property")?;
        if name.is_empty() {
            return Err(SearchError::new(
                &format!("{path}.property"),
                "empty property name".to_string(),
            ));
        }
        return Ok(Operand::Property(Property::from_name(name)));
    }
    if obj.contains_key("timestamp") {
        let t = string("timestamp")?;
        return Ok(Operand::Timestamp(Instant::parse(
            t,
            &format!("{path}.timestamp"),
        )?));
    }
    if obj.contains_key("date") {
        let d = string("date")?;
        let (a, b) = Instant::day(d, &format!("{path}.date"))?;
        return Ok(Operand::Date(a, b));
    }
    if obj.contains_key("interval") {
        let p = format!("{path}.interval");
        let ends = single("interval")?
            .as_array()
            .filter(|a| a.len() == 2)
            .ok_or_else(|| SearchError::new(&p, "expected an array of two ends".to_string()))?;
        let mut texts = Vec::with_capacity(2);
        for (i, e) in ends.iter().enumerate() {
            let s = e.as_str().ok_or_else(|| {
                SearchError::new(
                    &format!("{p}[{i}]"),
                    format!("expected a date-time, a date or \"..\", got {e}"),
                )
            })?;
            // A date as an end stands for the whole day.
            texts.push(match (s.len(), i) {
                (10, 0) => Instant::day(s, &format!("{p}[{i}]"))?.0.text,
                (10, _) => Instant::day(s, &format!("{p}[{i}]"))?.1.text,
                _ => s.to_string(),
            });
        }
        return Ok(Operand::Interval(Interval::from_ends(
            &texts[0], &texts[1], &p,
        )?));
    }
    if obj.contains_key("bbox") {
        return Ok(Operand::Bbox(Bbox::parse(
            single("bbox")?,
            &format!("{path}.bbox"),
        )?));
    }
    if obj.contains_key("type") {
        return Ok(Operand::Geometry(geom::geometry(v, path)?));
    }
    if let Some(op) = obj.get("op") {
        let op = op.as_str().unwrap_or_default();
        return Err(match op.to_ascii_lowercase().as_str() {
            "and" | "or" | "not" | "=" | "<>" | "<" | "<=" | ">" | ">=" | "in" | "between"
            | "like" | "isnull" => {
                SearchError::new(path, format!("'{op}' is a predicate, not a value"))
            }
            s if s.starts_with("s_") || s.starts_with("t_") => {
                SearchError::new(path, format!("'{op}' is a predicate, not a value"))
            }
            _ => unknown(op, path),
        });
    }
    Err(SearchError::new(
        path,
        format!(
            "expected a property, a literal, a timestamp, a date, an interval, a bbox or a geometry, got {v}"
        ),
    ))
}

#[cfg(test)]
#[path = "cql2_tests.rs"]
mod tests;
