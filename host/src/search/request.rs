//! The STAC API item-search request (POST body form), checked member by member.

use serde_json::{Map, Value};

use super::SearchError;
use super::cql2::{self, Expr, Property};
use super::datetime::Interval;
use super::geom::{self, Bbox};

/// Items per page when the request has no `limit`.
pub const DEFAULT_LIMIT: u32 = 10;
/// The largest `limit` accepted.
pub const MAX_LIMIT: u32 = 10_000;

const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";

/// A checked search request.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// Empty: every collection.
    pub collections: Vec<String>,
    /// Empty: any id.
    pub ids: Vec<String>,
    pub bbox: Option<Bbox>,
    /// Checked GeoJSON text.
    pub intersects: Option<String>,
    pub datetime: Option<Interval>,
    pub limit: u32,
    /// The user's sort order (tie-breakers are added when the SQL is written).
    pub sortby: Vec<SortBy>,
    pub filter: Option<Expr>,
    /// A `next` token from an earlier page.
    pub token: Option<String>,
    /// The request as given, to repeat in the `next` link.
    pub body: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortBy {
    pub property: Property,
    pub direction: Direction,
}

impl SortBy {
    /// A stable name for the key, used to check that a token fits the request.
    pub fn name(&self) -> String {
        let field = match &self.property {
            Property::Id => "id".to_string(),
            Property::Collection => "collection".to_string(),
            Property::Geometry => "geometry".to_string(),
            Property::Datetime => "datetime".to_string(),
            Property::StartDatetime => "start_datetime".to_string(),
            Property::EndDatetime => "end_datetime".to_string(),
            Property::Json(name) => format!("properties.{name}"),
        };
        let dir = match self.direction {
            Direction::Asc => "asc",
            Direction::Desc => "desc",
        };
        format!("{field}:{dir}")
    }
}

impl SearchRequest {
    /// Parses request JSON text.
    pub fn parse(text: &str) -> Result<SearchRequest, SearchError> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| SearchError::new("request", format!("invalid JSON: {e}")))?;
        SearchRequest::from_json(&v)
    }

    /// Parses a request object. Unknown members are errors, not silently ignored.
    pub fn from_json(v: &Value) -> Result<SearchRequest, SearchError> {
        let obj = v.as_object().ok_or_else(|| {
            SearchError::new(
                "request",
                format!("expected a JSON object, got {}", kind_of(v)),
            )
        })?;
        let mut req = SearchRequest {
            collections: Vec::new(),
            ids: Vec::new(),
            bbox: None,
            intersects: None,
            datetime: None,
            limit: DEFAULT_LIMIT,
            sortby: Vec::new(),
            filter: None,
            token: None,
            body: obj.clone(),
        };
        let mut filter_lang_ok = true;
        for (key, value) in obj {
            if value.is_null() {
                continue; // clients send `"bbox": null` for "not given"
            }
            let key = key.as_str();
            match key {
                "collections" => req.collections = strings(value, key)?,
                "ids" => req.ids = strings(value, key)?,
                "bbox" => req.bbox = Some(Bbox::parse(value, key)?),
                "intersects" => req.intersects = Some(geom::geometry(value, key)?),
                "datetime" => {
                    let s = value.as_str().ok_or_else(|| {
                        SearchError::new(key, format!("expected a string, got {}", kind_of(value)))
                    })?;
                    req.datetime = Some(Interval::parse_stac(s, key)?);
                }
                "limit" => req.limit = limit(value)?,
                "sortby" => req.sortby = sortby(value)?,
                "filter" => req.filter = Some(cql2::parse(value, key)?),
                "filter-lang" => filter_lang_ok = value.as_str() == Some("cql2-json"),
                "filter-crs" => {
                    if value.as_str() != Some(CRS84) {
                        return Err(SearchError::new(key, format!("only {CRS84} is supported")));
                    }
                }
                "token" => {
                    let s = value.as_str().ok_or_else(|| {
                        SearchError::new(key, format!("expected a string, got {}", kind_of(value)))
                    })?;
                    req.token = Some(s.to_string());
                }
                "fields" => {
                    if value.as_object().is_none_or(|o| !o.is_empty()) {
                        return Err(SearchError::new(
                            key,
                            "the fields extension is not supported".to_string(),
                        ));
                    }
                }
                other => {
                    return Err(SearchError::new(
                        other,
                        "unknown search parameter (supported: collections, ids, bbox, intersects, \
                         datetime, limit, sortby, filter, filter-lang, filter-crs, token)"
                            .to_string(),
                    ));
                }
            }
        }
        if !filter_lang_ok {
            return Err(SearchError::new(
                "filter-lang",
                format!(
                    "only \"cql2-json\" is supported, got {}",
                    obj["filter-lang"]
                ),
            ));
        }
        if req.bbox.is_some() && req.intersects.is_some() {
            return Err(SearchError::new(
                "request",
                "bbox and intersects cannot both be given".to_string(),
            ));
        }
        Ok(req)
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An array of strings (or one comma-separated string, as in GET requests).
fn strings(v: &Value, key: &str) -> Result<Vec<String>, SearchError> {
    let list: Vec<String> = match v {
        Value::String(s) => s.split(',').map(str::to_string).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_str().map(str::to_string).ok_or_else(|| {
                    SearchError::new(
                        &format!("{key}[{i}]"),
                        format!("expected a string, got {}", kind_of(x)),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(SearchError::new(
                key,
                format!("expected an array of strings, got {}", kind_of(other)),
            ));
        }
    };
    if list.is_empty() {
        return Err(SearchError::new(
            key,
            "must not be empty (leave it out to search all)".to_string(),
        ));
    }
    Ok(list)
}

fn limit(v: &Value) -> Result<u32, SearchError> {
    match v.as_u64() {
        Some(n) if (1..=u64::from(MAX_LIMIT)).contains(&n) => Ok(n as u32),
        _ => Err(SearchError::new(
            "limit",
            format!("expected an integer from 1 to {MAX_LIMIT}, got {v}"),
        )),
    }
}

/// `[{"field": "properties.datetime", "direction": "desc"}, ...]` or `"-datetime,+id"`.
fn sortby(v: &Value) -> Result<Vec<SortBy>, SearchError> {
    let mut out: Vec<SortBy> = Vec::new();
    let mut push = |field: &str, direction: Direction, path: &str| -> Result<(), SearchError> {
        let property = match field {
            "" => return Err(SearchError::new(path, "empty field name".to_string())),
            "geometry" | "bbox" => {
                return Err(SearchError::new(path, format!("cannot sort by {field}")));
            }
            f => Property::from_name(f),
        };
        if !out.iter().any(|s| s.property == property) {
            out.push(SortBy {
                property,
                direction,
            });
        }
        Ok(())
    };
    match v {
        Value::String(s) => {
            for part in s.split(',') {
                let part = part.trim();
                let (dir, field) = match part.as_bytes().first() {
                    Some(b'-') => (Direction::Desc, &part[1..]),
                    Some(b'+') => (Direction::Asc, &part[1..]),
                    _ => (Direction::Asc, part),
                };
                push(field, dir, "sortby")?;
            }
        }
        Value::Array(list) => {
            for (i, item) in list.iter().enumerate() {
                let path = format!("sortby[{i}]");
                let obj = item.as_object().ok_or_else(|| {
                    SearchError::new(
                        &path,
                        format!("expected {{\"field\": ..., \"direction\": ...}}, got {item}"),
                    )
                })?;
                if let Some(extra) = obj.keys().find(|k| *k != "field" && *k != "direction") {
                    return Err(SearchError::new(
                        &path,
                        format!("unexpected member {extra:?}"),
                    ));
                }
                let field = obj.get("field").and_then(Value::as_str).ok_or_else(|| {
                    SearchError::new(&format!("{path}.field"), "expected a string".to_string())
                })?;
                let dir = match obj.get("direction").map(|d| (d, d.as_str())) {
                    None => Direction::Asc,
                    Some((_, Some(d))) if d.eq_ignore_ascii_case("asc") => Direction::Asc,
                    Some((_, Some(d))) if d.eq_ignore_ascii_case("desc") => Direction::Desc,
                    Some((d, _)) => {
                        return Err(SearchError::new(
                            &format!("{path}.direction"),
                            format!("expected \"asc\" or \"desc\", got {d}"),
                        ));
                    }
                };
                push(field, dir, &path)?;
            }
        }
        other => {
            return Err(SearchError::new(
                "sortby",
                format!("expected an array, got {}", kind_of(other)),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn full_request() {
        let r = SearchRequest::from_json(&json!({
            "collections": ["a", "b"], "ids": "x,y", "bbox": [0, 0, 1, 1],
            "datetime": "2011-08-01T00:00:00Z/..", "limit": 5,
            "sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}, {"field": "id"}],
            "filter-lang": "cql2-json", "filter": {"op": "=", "args": [{"property": "a"}, 1]},
            "intersects": null, "fields": {}
        }))
        .unwrap();
        assert_eq!(r.collections, ["a", "b"]);
        assert_eq!(r.ids, ["x", "y"]);
        assert_eq!(r.limit, 5);
        assert_eq!(r.sortby[0].name(), "properties.eo:cloud_cover:desc");
        assert_eq!(r.sortby[1].name(), "id:asc");
        assert!(r.filter.is_some() && r.bbox.is_some() && r.datetime.is_some());
        let r = SearchRequest::from_json(&json!({"sortby": "-properties.datetime,+collection,id"}))
            .unwrap();
        let names: Vec<_> = r.sortby.iter().map(SortBy::name).collect();
        assert_eq!(names, ["datetime:desc", "collection:asc", "id:asc"]);
        let r = SearchRequest::from_json(&json!({})).unwrap();
        assert_eq!(r.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn errors_name_the_member() {
        for (v, msg) in [
            (json!([]), "request: expected a JSON object, got an array"),
            (
                json!({"collection": ["a"]}),
                "collection: unknown search parameter",
            ),
            (json!({"collections": []}), "collections: must not be empty"),
            (
                json!({"ids": [1]}),
                "ids[0]: expected a string, got a number",
            ),
            (
                json!({"limit": 0}),
                "limit: expected an integer from 1 to 10000, got 0",
            ),
            (json!({"limit": "5"}), "limit: expected an integer"),
            (json!({"limit": 2.5}), "limit: expected an integer"),
            (
                json!({"datetime": 5}),
                "datetime: expected a string, got a number",
            ),
            (
                json!({"datetime": "2011/2012"}),
                "datetime: invalid RFC 3339",
            ),
            (
                json!({"sortby": [{"field": "id", "direction": "up"}]}),
                "sortby[0].direction: expected \"asc\" or \"desc\"",
            ),
            (
                json!({"sortby": [{"feld": "id"}]}),
                "sortby[0]: unexpected member \"feld\"",
            ),
            (
                json!({"sortby": [{"field": "geometry"}]}),
                "sortby[0]: cannot sort by geometry",
            ),
            (
                json!({"filter-lang": "cql2-text", "filter": {"op": "=", "args": [1, 1]}}),
                "filter-lang: only \"cql2-json\"",
            ),
            (json!({"filter-crs": "EPSG:3857"}), "filter-crs: only"),
            (
                json!({"fields": {"include": ["id"]}}),
                "fields: the fields extension is not supported",
            ),
            (
                json!({"bbox": [0, 0, 1, 1], "intersects": {"type": "Point", "coordinates": [0, 0]}}),
                "request: bbox and intersects",
            ),
            (json!({"token": 5}), "token: expected a string"),
        ] {
            let e = SearchRequest::from_json(&v).unwrap_err().to_string();
            assert!(e.starts_with(msg), "{e}\n  wanted: {msg}");
        }
    }
}
