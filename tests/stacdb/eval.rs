//! Plain Rust answers to the questions the search tests ask the database:
//! times, polygon intersection and sort order over the fixture JSON.
#![allow(dead_code)]

use std::cmp::Ordering;

use serde_json::Value;

/// A fixture time (`...Z`, any fraction) as `YYYY-MM-DDTHH:MM:SS.ffffff`, which orders as text.
pub fn t(s: &str) -> String {
    let s = s
        .strip_suffix('Z')
        .unwrap_or_else(|| panic!("fixture times are UTC: {s}"));
    let (main, frac) = s.split_once('.').unwrap_or((s, ""));
    format!("{main}.{frac:0<6}")
}

/// An item's `[start, end]` (an instant is both).
pub fn span(item: &Value) -> (String, String) {
    let p = &item["properties"];
    let get = |k: &str| p[k].as_str().map(t);
    let dt = get("datetime");
    (
        get("start_datetime").or(dt.clone()).unwrap(),
        get("end_datetime").or(dt).unwrap(),
    )
}

/// pgstac's `datetime` of an item: the start of its range when it has one.
pub fn start(item: &Value) -> String {
    span(item).0
}

/// A property as pgstac's `to_text` reads it: a string, or a number's or
/// boolean's JSON text; `None` when missing or null.
pub fn as_text(item: &Value, name: &str) -> Option<String> {
    match &item["properties"][name] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// `datetime` as normalized text, if the item has one.
pub fn datetime(item: &Value) -> Option<String> {
    item["properties"]["datetime"].as_str().map(t)
}

/// A number property.
pub fn num(item: &Value, name: &str) -> Option<f64> {
    item["properties"][name].as_f64()
}

/// A string property.
pub fn text<'a>(item: &'a Value, name: &str) -> Option<&'a str> {
    item["properties"][name].as_str()
}

pub type Ring = Vec<[f64; 2]>;

/// The outer ring of a Polygon geometry; `None` for a null geometry.
pub fn outer_ring(geometry: &Value) -> Option<Ring> {
    if geometry.is_null() {
        return None;
    }
    assert_eq!(geometry["type"], "Polygon", "fixtures are polygons");
    Some(
        geometry["coordinates"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()])
            .collect(),
    )
}

pub fn rect(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Ring {
    vec![
        [min_x, min_y],
        [max_x, min_y],
        [max_x, max_y],
        [min_x, max_y],
        [min_x, min_y],
    ]
}

/// Ray casting; points on the boundary are avoided by the tests.
pub fn point_in(p: [f64; 2], ring: &Ring) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let ([x1, y1], [x2, y2]) = (w[0], w[1]);
        if (y1 > p[1]) != (y2 > p[1]) && p[0] < (x2 - x1) * (p[1] - y1) / (y2 - y1) + x1 {
            inside = !inside;
        }
    }
    inside
}

fn orient(a: [f64; 2], b: [f64; 2], c: [f64; 2]) -> f64 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

fn on_segment(a: [f64; 2], b: [f64; 2], p: [f64; 2]) -> bool {
    p[0] >= a[0].min(b[0])
        && p[0] <= a[0].max(b[0])
        && p[1] >= a[1].min(b[1])
        && p[1] <= a[1].max(b[1])
}

fn segments_meet(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    let (d1, d2, d3, d4) = (
        orient(c, d, a),
        orient(c, d, b),
        orient(a, b, c),
        orient(a, b, d),
    );
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0))
        && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0))
    {
        return true;
    }
    (d1 == 0.0 && on_segment(c, d, a))
        || (d2 == 0.0 && on_segment(c, d, b))
        || (d3 == 0.0 && on_segment(a, b, c))
        || (d4 == 0.0 && on_segment(a, b, d))
}

/// Whether two simple polygons (outer rings) share any point.
pub fn polygons_intersect(a: &Ring, b: &Ring) -> bool {
    if a.iter().any(|p| point_in(*p, b)) || b.iter().any(|p| point_in(*p, a)) {
        return true;
    }
    a.windows(2)
        .any(|e| b.windows(2).any(|f| segments_meet(e[0], e[1], f[0], f[1])))
}

/// Whether an item's geometry intersects a ring (never for a null geometry).
pub fn item_intersects(item: &Value, ring: &Ring) -> bool {
    outer_ring(&item["geometry"]).is_some_and(|g| polygons_intersect(&g, ring))
}

/// Orders JSON values the way jsonb does for the types in the fixtures
/// (numbers numerically, strings by code point, numbers before strings is not
/// needed here), with a missing value (SQL NULL) after everything.
pub fn cmp_nullable<T: PartialOrd>(a: &Option<T>, b: &Option<T>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.partial_cmp(y).unwrap(),
    }
}
