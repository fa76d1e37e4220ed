//! STAC collection validation.
//!
//! The rules: a JSON object whose `type`, if present, is `"Collection"`
//! (collections written before STAC 1.0 have none); a non-empty string `id`;
//! a `description` and a `license` string; an `extent` with a
//! `spatial.bbox` list of 4- or 6-number boxes and a `temporal.interval` list
//! of `[start, end]` pairs of RFC 3339 times or `null`; a `links` array;
//! an id of at most [`MAX_ID_BYTES`](super::MAX_ID_BYTES), and nothing
//! PostgreSQL's jsonb would refuse.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::geojson::check_bbox_range;
use super::time::parse_rfc3339;
use super::{Invalid, check_id, check_object, check_storable, raw_str};

#[derive(Deserialize)]
struct RawCollection<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    description: Option<&'a RawValue>,
    #[serde(borrow)]
    license: Option<&'a RawValue>,
    #[serde(borrow)]
    extent: Option<&'a RawValue>,
    #[serde(borrow)]
    links: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Extent {
    spatial: Option<Spatial>,
    temporal: Option<Temporal>,
}

#[derive(Deserialize)]
struct Spatial {
    bbox: Option<Vec<Vec<f64>>>,
}

#[derive(Deserialize)]
struct Temporal {
    interval: Option<Vec<Vec<Option<String>>>>,
}

/// Checks one collection (JSON text); returns its id.
pub fn check_collection(text: &str) -> Result<Cow<'_, str>, Invalid> {
    let raw: RawCollection<'_> = check_object(text)?;
    check_storable(text, raw.id.map(RawValue::get))?;
    let id = check_id(raw.id.map(RawValue::get))?;
    let invalid = |reason: String| Invalid::new(Some(&id), reason);
    match raw.kind.map(RawValue::get).map(raw_str) {
        None => {}
        Some(Some(k)) if k == "Collection" => {}
        Some(Some(k)) => return Err(invalid(format!("\"type\" is \"{k}\", not \"Collection\""))),
        Some(None) => return Err(invalid("\"type\" is not a string".into())),
    }
    for (name, value) in [("description", raw.description), ("license", raw.license)] {
        match value.map(RawValue::get).map(raw_str) {
            Some(Some(_)) => {}
            Some(None) => return Err(invalid(format!("\"{name}\" is not a string"))),
            None => return Err(invalid(format!("no \"{name}\""))),
        }
    }
    let extent = raw.extent.ok_or_else(|| invalid("no \"extent\"".into()))?;
    let extent: Extent = serde_json::from_str(extent.get()).map_err(|_| {
        invalid("\"extent\" must hold spatial.bbox (lists of numbers) and temporal.interval (lists of times or null)".into())
    })?;
    let bboxes = extent
        .spatial
        .and_then(|s| s.bbox)
        .ok_or_else(|| invalid("no extent.spatial.bbox".into()))?;
    if let Some(b) = bboxes.iter().find(|b| b.len() != 4 && b.len() != 6) {
        return Err(invalid(format!(
            "extent.spatial.bbox has a box of {} numbers (4 or 6 expected)",
            b.len()
        )));
    }
    for b in &bboxes {
        check_bbox_range(b).map_err(|e| invalid(format!("extent.spatial.{e}")))?;
    }
    let intervals = extent
        .temporal
        .and_then(|t| t.interval)
        .ok_or_else(|| invalid("no extent.temporal.interval".into()))?;
    for interval in &intervals {
        if interval.len() != 2 {
            return Err(invalid(format!(
                "extent.temporal.interval has an interval of {} values ([start, end] expected)",
                interval.len()
            )));
        }
        let times: Vec<Option<i64>> = interval
            .iter()
            .map(|t| t.as_deref().map(parse_rfc3339).transpose())
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(format!("extent.temporal.interval: {e}")))?;
        if let [Some(a), Some(b)] = times[..]
            && a > b
        {
            return Err(invalid(
                "extent.temporal.interval has an interval that ends before it starts".into(),
            ));
        }
    }
    match raw.links {
        Some(l) if l.get().starts_with('[') => {}
        Some(_) => return Err(invalid("\"links\" is not an array".into())),
        None => return Err(invalid("no \"links\" (use [] for none)".into())),
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn collection() -> Value {
        json!({
            "type": "Collection", "id": "c", "description": "d", "license": "MIT",
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                       "temporal": {"interval": [["2020-01-01T00:00:00Z", null]]}},
            "links": []
        })
    }

    #[test]
    fn good_and_bad_collections() {
        assert_eq!(check_collection(&collection().to_string()).unwrap(), "c");
        let mut no_type = collection();
        no_type.as_object_mut().unwrap().remove("type");
        check_collection(&no_type.to_string()).unwrap();
        let bad = |f: &dyn Fn(&mut Value), expected: &str| {
            let mut v = collection();
            f(&mut v);
            let e = check_collection(&v.to_string()).unwrap_err();
            assert!(e.reason.contains(expected), "{v}: {}", e.reason);
        };
        bad(&|v| v["type"] = json!("Catalog"), "not \"Collection\"");
        bad(
            &|v| {
                v.as_object_mut().unwrap().remove("id");
            },
            "no \"id\"",
        );
        bad(
            &|v| {
                v.as_object_mut().unwrap().remove("license");
            },
            "no \"license\"",
        );
        bad(&|v| v["description"] = json!(1), "not a string");
        bad(
            &|v| {
                v.as_object_mut().unwrap().remove("extent");
            },
            "no \"extent\"",
        );
        bad(
            &|v| v["extent"]["spatial"]["bbox"] = json!([[1, 2]]),
            "4 or 6",
        );
        bad(
            &|v| v["extent"]["temporal"]["interval"] = json!([["2020"]]),
            "[start, end]",
        );
        bad(
            &|v| v["extent"]["temporal"]["interval"] = json!([["2020", null]]),
            "RFC 3339",
        );
        bad(
            &|v| {
                v["extent"]["temporal"]["interval"] =
                    json!([["2021-01-01T00:00:00Z", "2020-01-01T00:00:00Z"]])
            },
            "ends before",
        );
        bad(
            &|v| {
                v.as_object_mut().unwrap().remove("links");
            },
            "no \"links\"",
        );
    }
}
