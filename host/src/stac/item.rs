//! STAC item validation: the rules a record must meet before it is loaded,
//! and the searchable fields it yields.
//!
//! The rules: a JSON object of `"type": "Feature"`; a non-empty string `id`;
//! a known `collection` (or the load's default one); a `geometry` member that
//! is a GeoJSON geometry or `null`; a `bbox` of 4 or 6 numbers overlapping
//! the geometry (containing it, with `strict_bbox`) when there is one, and
//! none when the geometry is `null`; a
//! `properties` object with an RFC 3339 `datetime`, or a `null` datetime and
//! both `start_datetime` and `end_datetime`, start not after end; a `links`
//! array and an `assets` object. Anywhere in it, nothing PostgreSQL's jsonb
//! would refuse (see [`crate::json_check`]); an id of at most
//! [`MAX_ID_BYTES`](super::MAX_ID_BYTES); positions and bbox on Earth (see
//! [`geojson`]).

use std::borrow::Cow;
use std::collections::HashSet;

use super::geojson::{self, Geometry};
use super::time::parse_rfc3339;
use super::{Invalid, Members, check_id, raw_str, read_members};

/// What item checks need to know about the load.
#[derive(Debug, Clone, Copy)]
pub struct ItemContext<'a> {
    /// The collection of items that name none (`--collection`); items naming
    /// another collection are invalid when it is set.
    pub collection: Option<&'a str>,
    /// The collections in the database.
    pub known: &'a HashSet<String>,
    /// Require the bbox to contain the geometry, not just overlap it.
    pub strict_bbox: bool,
}

/// The searchable fields of a valid item.
#[derive(Debug, Clone)]
pub struct ItemFields<'a> {
    pub collection: Cow<'a, str>,
    pub id: Cow<'a, str>,
    /// Whether the item named no collection (the loader adds it to the content).
    pub collection_missing: bool,
    pub geometry: Option<Geometry>,
    pub bbox: Option<Vec<f64>>,
    /// Microseconds since 1970 (UTC).
    pub datetime: Option<i64>,
    pub start: i64,
    pub end: i64,
    /// Whether both `start_datetime` and `end_datetime` were given (then
    /// they, not `datetime`, are the item's range).
    pub ranged: bool,
    /// The item's top-level members as read (so that writing its row needs
    /// no second parse).
    pub members: Members<'a>,
}

/// The members the rules read; each may appear once.
const RULED: [&str; 8] = [
    "type",
    "id",
    "collection",
    "geometry",
    "bbox",
    "properties",
    "links",
    "assets",
];

/// The values of the [`RULED`] members, in that order (`None`: absent;
/// `null` is `Some("null")`), refusing a second one of any.
fn ruled<'a>(members: &Members<'a>) -> Result<[Option<&'a str>; 8], Invalid> {
    let mut found = [None; 8];
    for (k, v) in &members.0 {
        if let Some(i) = RULED.iter().position(|r| r == k) {
            if found[i].is_some() {
                return Err(Invalid::new(
                    None,
                    format!("duplicate \"{k}\" member (each may appear once)"),
                ));
            }
            found[i] = Some(*v);
        }
    }
    Ok(found)
}

/// The time members of `properties` (the text of a checked object), each
/// `None` when absent; a second one of any is refused.
fn times(props: &str) -> Result<[Option<&str>; 3], String> {
    const NAMES: [&str; 3] = ["datetime", "start_datetime", "end_datetime"];
    let members = Members::read(props).map_err(|e| e.to_string())?;
    let mut found = [None; 3];
    for (k, v) in &members.0 {
        if let Some(i) = NAMES.iter().position(|n| n == k) {
            if found[i].is_some() {
                return Err(format!("duplicate \"{k}\" member (each may appear once)"));
            }
            found[i] = Some(*v);
        }
    }
    Ok(found)
}

/// Checks one item (JSON text) against the rules above. The whole text is
/// checked (grammar, what jsonb refuses) in the same pass that reads its
/// top level, which every item needs, so no text is worth trusting unread.
pub fn check_item<'a>(text: &'a str, ctx: &ItemContext<'_>) -> Result<ItemFields<'a>, Invalid> {
    let members = read_members(text)?;
    let [
        kind,
        id,
        collection,
        geometry,
        bbox,
        properties,
        links,
        assets,
    ] = ruled(&members)?;
    // From here on, errors can name the item.
    let id = check_id(id)?;
    let invalid = |reason: String| Invalid::new(Some(&id), reason);

    match kind.map(raw_str) {
        Some(Some(k)) if k == "Feature" => {}
        Some(Some(k)) => return Err(invalid(format!("\"type\" is \"{k}\", not \"Feature\""))),
        Some(None) => return Err(invalid("\"type\" is not a string".into())),
        None => return Err(invalid("no \"type\" (must be \"Feature\")".into())),
    }

    let named = match collection.map(raw_str) {
        Some(Some(c)) => Some(c),
        Some(None) => return Err(invalid("\"collection\" is not a string".into())),
        None => None,
    };
    let collection_missing = named.is_none();
    let collection = match (named, ctx.collection) {
        (Some(c), Some(default)) if c != default => {
            return Err(invalid(format!(
                "it belongs to collection \"{c}\", but this load is for \"{default}\" (--collection)"
            )));
        }
        (Some(c), _) => c,
        (None, Some(default)) => Cow::Owned(default.to_string()),
        (None, None) => {
            return Err(invalid(
                "no \"collection\" (give one with --collection, or set it with a plugin)".into(),
            ));
        }
    };
    if !ctx.known.contains(collection.as_ref()) {
        return Err(invalid(format!(
            "collection \"{collection}\" does not exist (load it first with `host load collections`)"
        )));
    }

    let geometry = match geometry {
        None => return Err(invalid("no \"geometry\" (use null for none)".into())),
        Some("null") => None,
        Some(g) => Some(geojson::to_ewkb(g).map_err(|e| invalid(format!("geometry: {e}")))?),
    };

    let bbox = match bbox {
        None => None,
        Some("null") => None,
        Some(b) => Some(
            serde_json::from_str::<Vec<f64>>(b)
                .map_err(|_| invalid("\"bbox\" is not an array of numbers".into()))?,
        ),
    };
    match (&geometry, &bbox) {
        (Some(g), Some(b)) => geojson::check_bbox(b, g.bounds, ctx.strict_bbox).map_err(invalid)?,
        (Some(_), None) => {
            return Err(invalid(
                "no \"bbox\" (required when there is a geometry)".into(),
            ));
        }
        (None, Some(_)) => return Err(invalid("\"bbox\" given but \"geometry\" is null".into())),
        (None, None) => {}
    }

    let props = properties.ok_or_else(|| invalid("no \"properties\"".into()))?;
    if !props.starts_with('{') {
        return Err(invalid("\"properties\" is not an object".into()));
    }
    let [datetime, start, end] = times(props).map_err(|e| invalid(format!("properties: {e}")))?;
    let time = |name: &str, raw: Option<&str>| -> Result<Option<i64>, Invalid> {
        match raw {
            None | Some("null") => Ok(None),
            Some(r) => match raw_str(r) {
                Some(s) => parse_rfc3339(&s)
                    .map(Some)
                    .map_err(|e| invalid(format!("properties.{name}: {e}"))),
                None => Err(invalid(format!("properties.{name} is not a string"))),
            },
        }
    };
    let datetime = time("datetime", datetime)?;
    let start = time("start_datetime", start)?;
    let end = time("end_datetime", end)?;
    let ranged = start.is_some() && end.is_some();
    let (start, end) = match (datetime, start, end) {
        (_, Some(s), Some(e)) => (s, e),
        (Some(d), s, e) => (s.unwrap_or(d), e.unwrap_or(d)),
        (None, _, _) => {
            return Err(invalid(
                "properties.datetime is null, so start_datetime and end_datetime are both required"
                    .into(),
            ));
        }
    };
    if start > end {
        return Err(invalid(
            "properties.start_datetime is after end_datetime".into(),
        ));
    }

    match links {
        Some(l) if l.starts_with('[') => {}
        Some(_) => return Err(invalid("\"links\" is not an array".into())),
        None => return Err(invalid("no \"links\" (use [] for none)".into())),
    }
    match assets {
        Some(a) if a.starts_with('{') => {}
        Some(_) => return Err(invalid("\"assets\" is not an object".into())),
        None => return Err(invalid("no \"assets\" (use {} for none)".into())),
    }
    Ok(ItemFields {
        collection,
        id,
        collection_missing,
        geometry,
        bbox,
        datetime,
        start,
        end,
        ranged,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn known() -> HashSet<String> {
        ["c1".to_string(), "c2".to_string()].into()
    }

    fn item() -> Value {
        json!({
            "type": "Feature", "stac_version": "1.0.0", "id": "a", "collection": "c1",
            "geometry": {"type": "Point", "coordinates": [1, 2]},
            "bbox": [1, 2, 1, 2],
            "properties": {"datetime": "2020-01-01T00:00:00Z"},
            "links": [], "assets": {}
        })
    }

    fn check(v: &Value, default: Option<&str>) -> Result<(), String> {
        let k = known();
        let ctx = ItemContext {
            collection: default,
            known: &k,
            strict_bbox: true,
        };
        let text = v.to_string();
        check_item(&text, &ctx).map(|_| ()).map_err(|e| e.reason)
    }

    fn with(path: &[&str], value: Option<Value>) -> Value {
        let mut v = item();
        let mut at = &mut v;
        for p in &path[..path.len() - 1] {
            at = at.get_mut(*p).unwrap();
        }
        let obj = at.as_object_mut().unwrap();
        match value {
            Some(x) => {
                obj.insert(path[path.len() - 1].to_string(), x);
            }
            None => {
                obj.remove(path[path.len() - 1]);
            }
        }
        v
    }

    #[test]
    fn a_good_item_yields_its_fields() {
        let k = known();
        let ctx = ItemContext {
            collection: None,
            known: &k,
            strict_bbox: true,
        };
        let text = item().to_string();
        let f = check_item(&text, &ctx).unwrap();
        assert_eq!(f.id, "a");
        assert_eq!(f.collection, "c1");
        assert_eq!(f.start, f.end);
        assert_eq!(f.datetime, Some(f.start));
        assert!(!f.collection_missing);
    }

    #[test]
    fn every_rule_has_a_reason() {
        let cases: Vec<(Value, Option<&str>, &str)> = vec![
            (json!([1]), None, "not a JSON object"),
            (
                with(&["type"], Some(json!("Collection"))),
                None,
                "not \"Feature\"",
            ),
            (with(&["type"], None), None, "no \"type\""),
            (with(&["id"], None), None, "no \"id\""),
            (with(&["id"], Some(json!(""))), None, "empty"),
            (with(&["id"], Some(json!(7))), None, "not a string"),
            (with(&["collection"], None), None, "--collection"),
            (
                with(&["collection"], Some(json!("nope"))),
                None,
                "does not exist",
            ),
            (item(), Some("c2"), "this load is for \"c2\""),
            (with(&["geometry"], None), None, "no \"geometry\""),
            (
                with(&["geometry"], Some(json!({"type": "Point"}))),
                None,
                "geometry:",
            ),
            (with(&["bbox"], None), None, "no \"bbox\""),
            (
                with(&["bbox"], Some(json!([5, 5, 6, 6]))),
                None,
                "does not contain",
            ),
            (with(&["bbox"], Some(json!("x"))), None, "array of numbers"),
            (with(&["properties"], None), None, "no \"properties\""),
            (
                with(&["properties"], Some(json!([]))),
                None,
                "not an object",
            ),
            (
                with(&["properties", "datetime"], Some(json!(null))),
                None,
                "both required",
            ),
            (
                with(&["properties", "datetime"], None),
                None,
                "both required",
            ),
            (
                with(&["properties", "datetime"], Some(json!("2020-01-01"))),
                None,
                "RFC 3339",
            ),
            (
                with(&["properties", "datetime"], Some(json!(5))),
                None,
                "not a string",
            ),
            (with(&["links"], None), None, "no \"links\""),
            (with(&["links"], Some(json!({}))), None, "not an array"),
            (with(&["assets"], None), None, "no \"assets\""),
            (with(&["assets"], Some(json!([]))), None, "not an object"),
            (
                with(&["properties", "title"], Some(json!("a\u{0}b"))),
                None,
                "\\u0000",
            ),
            (
                with(&["id"], Some(json!("x".repeat(1025)))),
                None,
                "\"id\" is 1025 bytes; ids may be at most 1024",
            ),
            (
                with(&["bbox"], Some(json!([1, 2, 1e308, 2]))),
                None,
                "bbox has longitude 1e308",
            ),
        ];
        for (v, default, expected) in cases {
            let e = check(&v, default).expect_err(&v.to_string());
            assert!(e.contains(expected), "{v}: {e} (expected {expected})");
        }
        let mut v = with(&["geometry"], Some(json!(null)));
        v.as_object_mut().unwrap().remove("bbox");
        check(&v, None).unwrap();
        v["bbox"] = json!([1, 2, 1, 2]);
        assert!(check(&v, None).unwrap_err().contains("geometry\" is null"));
    }

    #[test]
    fn time_ranges() {
        let mut v = item();
        v["properties"] = json!({"datetime": null,
            "start_datetime": "2020-01-02T00:00:00Z", "end_datetime": "2020-01-01T00:00:00Z"});
        assert!(check(&v, None).unwrap_err().contains("after"));
        v["properties"]["end_datetime"] = json!("2020-01-03T00:00:00Z");
        check(&v, None).unwrap();
        v["properties"]["end_datetime"] = json!(null);
        assert!(check(&v, None).unwrap_err().contains("both required"));
    }

    #[test]
    fn default_collection_fills_in() {
        let v = with(&["collection"], None);
        let k = known();
        let ctx = ItemContext {
            collection: Some("c2"),
            known: &k,
            strict_bbox: true,
        };
        let text = v.to_string();
        let f = check_item(&text, &ctx).unwrap();
        assert_eq!(f.collection, "c2");
        assert!(f.collection_missing);
    }

    #[test]
    fn what_postgresql_refuses_is_named_with_the_item() {
        let k = known();
        let ctx = ItemContext {
            collection: None,
            known: &k,
            strict_bbox: true,
        };
        let mut v = item();
        v["properties"]["title"] = json!("placeholder");
        let text = v.to_string().replace("placeholder", r"a\ud800b");
        let e = check_item(&text, &ctx).unwrap_err();
        assert_eq!(e.id.as_deref(), Some("a"));
        assert!(
            e.reason.contains("lone surrogate") && e.reason.contains("properties.title"),
            "{}",
            e.reason
        );
        // In the id itself: no id to name, but the path says where.
        let text = item()
            .to_string()
            .replace(r#""id":"a""#, r#""id":"\ud800""#);
        let e = check_item(&text, &ctx).unwrap_err();
        assert_eq!(e.id, None);
        assert!(
            e.reason.contains("lone surrogate") && e.reason.contains(" id "),
            "{}",
            e.reason
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let text = item()
            .to_string()
            .replace(r#""datetime""#, &format!(r#""deep":{deep},"datetime""#));
        let e = check_item(&text, &ctx).unwrap_err();
        assert_eq!(e.id.as_deref(), Some("a"));
        assert!(
            e.reason.contains("deeper than 127") && e.reason.contains("properties.deep"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let text = r#"{"id":"a","id":"b"}"#;
        let k = known();
        let ctx = ItemContext {
            collection: None,
            known: &k,
            strict_bbox: true,
        };
        assert!(
            check_item(text, &ctx)
                .unwrap_err()
                .reason
                .contains("duplicate")
        );
    }
}
