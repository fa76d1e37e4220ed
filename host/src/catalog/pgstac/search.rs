//! Item search on pgstac, by pgstac's own `search()` (what
//! stac-fastapi-pgstac calls), so `host` answers as STAC APIs on the same
//! database do.
//!
//! The request is checked by the same rules as on host's schema (what one
//! catalog refuses, both refuse), then written in the dialect `search()`
//! reads: arrays for `collections`, `ids` and `sortby`, `filter-lang`, and
//! three rewrites of things pgstac would answer wrongly or refuse, into
//! what it answers right:
//! - a bbox across the antimeridian (west edge east of the east edge) as
//!   two boxes: pgstac makes one box spanning the other way round the world;
//! - `{"bbox": [...]}` operands (CQL2's spelling) as the bare array pgstac reads;
//! - spatial operators with the geometry second as the same relation with
//!   it first: pgstac always relates its own geometry column to the second
//!   operand.
//!
//! Instants go as UTC text, read back exactly. pgstac's paging tokens
//! (`next:<hex collection>:<hex id>`) are passed through.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio_postgres::Client;

use super::Pgstac;
use crate::catalog::CatalogError;
use crate::search::cql2::{Arg, Expr, Operand, Property};
use crate::search::datetime::{Instant, Interval};
use crate::search::geom::Bbox;
use crate::search::request::{Direction, SearchRequest};
use crate::search::typing::{self, Mode};
use crate::search::{Page, SearchError};

impl Pgstac {
    pub(in crate::catalog) async fn search(
        &self,
        client: &Client,
        request: &SearchRequest,
    ) -> Result<Page, CatalogError> {
        crate::search::sql::check(request)?;
        if let Some(t) = &request.token {
            check_token(t)?;
        }
        let body = body(request)?.to_string();
        tracing::debug!(%body, "pgstac search");
        let text: String = in_pgstac(client, async {
            Ok(client
                .query_one("SELECT pgstac.search($1::text::jsonb)::text", &[&body])
                .await?
                .get(0))
        })
        .await
        .map_err(CatalogError::db("search (pgstac's search())"))?;
        page(&text)
    }
}

/// Runs `f` in a transaction with pgstac's schema first on the search path,
/// which pgstac's functions expect (its roles have it, pypgstac sets it).
pub(super) async fn in_pgstac<T>(
    client: &Client,
    f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    client
        .batch_execute("BEGIN; SET LOCAL search_path TO pgstac, public")
        .await?;
    match f.await {
        Ok(v) => {
            client.batch_execute("COMMIT").await?;
            Ok(v)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// pgstac's tokens are `next:` or `prev:`, then hex, `:`, hex.
fn check_token(t: &str) -> Result<(), SearchError> {
    let hex = |s: &str| {
        !s.is_empty() && s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit())
    };
    let parts: Vec<&str> = t.split(':').collect();
    match parts.as_slice() {
        [dir, c, i] if (*dir == "next" || *dir == "prev") && hex(c) && hex(i) => Ok(()),
        _ => Err(SearchError::new(
            "token",
            "not a token returned by host search on this pgstac catalog".to_string(),
        )),
    }
}

#[derive(Deserialize)]
struct Collection<'a> {
    #[serde(borrow, default)]
    features: Vec<&'a RawValue>,
    #[serde(default)]
    links: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    rel: String,
    #[serde(default)]
    href: String,
}

/// Our page from what `search()` returned.
fn page(text: &str) -> Result<Page, CatalogError> {
    let c: Collection<'_> = serde_json::from_str(text).map_err(|e| {
        CatalogError::Unsupported(format!("pgstac's search() returned unexpected JSON: {e}"))
    })?;
    let next_token = c
        .links
        .iter()
        .find(|l| l.rel == "next")
        .and_then(|l| l.href.split_once("token=").map(|(_, t)| t.to_string()));
    Ok(Page {
        features: c.features.iter().map(|f| f.get().to_string()).collect(),
        next_token,
    })
}

/// The request as `search()` reads it.
pub fn body(req: &SearchRequest) -> Result<Value, SearchError> {
    let mut b = Map::new();
    if !req.collections.is_empty() {
        b.insert("collections".into(), json!(req.collections));
    }
    if !req.ids.is_empty() {
        b.insert("ids".into(), json!(req.ids));
    }
    if let Some(bbox) = &req.bbox {
        match bbox_value(bbox) {
            v @ Value::Array(_) => b.insert("bbox".into(), v),
            v => b.insert("intersects".into(), v),
        };
    }
    if let Some(g) = &req.intersects {
        b.insert("intersects".into(), geojson(g));
    }
    if let Some(i) = &req.datetime {
        b.insert("datetime".into(), Value::String(interval_text(i)));
    }
    if let Some(f) = &req.filter {
        b.insert("filter-lang".into(), json!("cql2-json"));
        b.insert("filter".into(), expr(f)?);
    }
    if !req.sortby.is_empty() {
        let keys: Vec<Value> = req
            .sortby
            .iter()
            .map(|k| {
                json!({"field": property_name(&k.property), "direction": match k.direction {
                    Direction::Asc => "asc",
                    Direction::Desc => "desc",
                }})
            })
            .collect();
        b.insert("sortby".into(), Value::Array(keys));
    }
    b.insert("limit".into(), json!(req.limit));
    if let Some(t) = &req.token {
        b.insert("token".into(), json!(t));
    }
    Ok(Value::Object(b))
}

fn geojson(text: &str) -> Value {
    serde_json::from_str(text).expect("checked GeoJSON is JSON")
}

/// A bbox pgstac reads right: the bare array, or across the antimeridian a
/// MultiPolygon of its two halves.
fn bbox_value(bbox: &Bbox) -> Value {
    let envs = bbox.envelopes();
    if let [[a, b, c, d]] = envs.as_slice() {
        return json!([a, b, c, d]);
    }
    let polygons: Vec<Value> = envs
        .iter()
        .map(|[a, b, c, d]| json!([[[a, b], [c, b], [c, d], [a, d], [a, b]]]))
        .collect();
    json!({"type": "MultiPolygon", "coordinates": polygons})
}

fn interval_text(i: &Interval) -> String {
    let end = |e: &Option<Instant>| e.as_ref().map_or("..".to_string(), |t| t.text.clone());
    match (&i.start, &i.end) {
        (Some(a), Some(b)) if a == b => a.text.clone(),
        _ => format!("{}/{}", end(&i.start), end(&i.end)),
    }
}

fn property_name(p: &Property) -> String {
    match p {
        Property::Id => "id".into(),
        Property::Collection => "collection".into(),
        Property::Geometry => "geometry".into(),
        Property::Datetime => "datetime".into(),
        Property::StartDatetime => "start_datetime".into(),
        Property::EndDatetime => "end_datetime".into(),
        Property::Json(name) => name.clone(),
    }
}

fn op(name: &str, args: Vec<Value>) -> Value {
    json!({"op": name, "args": args})
}

fn expr(e: &Expr) -> Result<Value, SearchError> {
    let list = |xs: &[Expr]| xs.iter().map(expr).collect::<Result<Vec<_>, _>>();
    Ok(match e {
        Expr::Literal(b) => Value::Bool(*b),
        Expr::And(xs) => op("and", list(xs)?),
        Expr::Or(xs) => op("or", list(xs)?),
        Expr::Not(x) => op("not", vec![expr(x)?]),
        Expr::Compare { op: o, left, right } => {
            let mode = typing::mode(&[left, right], o.sql())?;
            op(o.sql(), vec![operand(left, mode), operand(right, mode)])
        }
        Expr::In { arg, list } => {
            let mut all: Vec<&Arg> = vec![arg];
            all.extend(list);
            let mode = typing::mode(&all, "in")?;
            let values: Vec<Value> = list.iter().map(|a| operand(a, mode)).collect();
            op("in", vec![operand(arg, mode), Value::Array(values)])
        }
        Expr::Between { arg, low, high } => {
            let mode = typing::mode(&[arg, low, high], "between")?;
            op(
                "between",
                vec![operand(arg, mode), operand(low, mode), operand(high, mode)],
            )
        }
        Expr::Like { arg, pattern } => op(
            "like",
            vec![operand(arg, Mode::Text), operand(pattern, Mode::Text)],
        ),
        Expr::IsNull(arg) => op("isNull", vec![operand(arg, Mode::Text)]),
        Expr::Spatial { op: o, left, right } => {
            // pgstac relates its geometry column to the second operand.
            let (o, other) = match left.value {
                Operand::Property(Property::Geometry) => (*o, right),
                _ => (o.mirrored(), left),
            };
            let shape = match &other.value {
                Operand::Geometry(g) => geojson(g),
                Operand::Bbox(b) => bbox_value(b),
                _ => unreachable!("checked by sql::check"),
            };
            op(o.name(), vec![json!({"property": "geometry"}), shape])
        }
        Expr::Temporal { op: o, left, right } => op(o.name(), vec![time(left), time(right)]),
    })
}

/// A comparison operand; instants in `Time` mode as UTC text.
fn operand(a: &Arg, mode: Mode) -> Value {
    match (&a.value, mode) {
        (Operand::Property(p), _) => json!({"property": property_name(p)}),
        (Operand::Text(s), Mode::Time) => {
            json!(Instant::parse(s, &a.path).expect("checked").text)
        }
        (Operand::Text(s), _) => json!(s),
        (Operand::Number(n), _) => Value::Number(n.clone()),
        (Operand::Bool(b), _) => Value::Bool(*b),
        (Operand::Timestamp(t), _) => json!({"timestamp": t.text}),
        (other, _) => unreachable!("checked by sql::check: {other:?}"),
    }
}

/// A temporal operand.
fn time(a: &Arg) -> Value {
    match &a.value {
        Operand::Property(p) => json!({"property": property_name(p)}),
        Operand::Timestamp(t) => json!({"timestamp": t.text}),
        Operand::Date(first, _) => json!({"date": &first.text[..10]}),
        Operand::Interval(i) => {
            let end = |e: &Option<Instant>| e.as_ref().map_or("..".to_string(), |t| t.text.clone());
            json!({"interval": [end(&i.start), end(&i.end)]})
        }
        Operand::Text(s) => json!(s),
        other => unreachable!("checked by sql::check: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: Value) -> Value {
        body(&SearchRequest::from_json(&v).unwrap()).unwrap()
    }

    #[test]
    fn requests_in_pgstacs_dialect() {
        assert_eq!(
            b(json!({"ids": "a,b", "sortby": "-properties.eo:cloud_cover",
                     "datetime": "2020-01-01T01:00:00+01:00/.."})),
            json!({"ids": ["a", "b"], "limit": 10, "datetime": "2020-01-01T00:00:00Z/..",
                   "sortby": [{"field": "eo:cloud_cover", "direction": "desc"}]})
        );
        assert_eq!(
            b(json!({"bbox": [170, -10, -170, 10]}))["intersects"]["coordinates"][1],
            json!([[
                [-180.0, -10.0],
                [-170.0, -10.0],
                [-170.0, 10.0],
                [-180.0, 10.0],
                [-180.0, -10.0]
            ]])
        );
        let f = b(
            json!({"filter": {"op": "s_within", "args": [{"bbox": [0, 0, 1, 1]}, {"property": "geometry"}]}}),
        );
        assert_eq!(
            f["filter"],
            json!({"op": "s_contains", "args": [{"property": "geometry"}, [0.0, 0.0, 1.0, 1.0]]})
        );
        let f = b(
            json!({"filter": {"op": "=", "args": [{"property": "datetime"}, "2020-01-01 00:00:00.0000005z"]}}),
        );
        assert_eq!(f["filter"]["args"][1], json!("2020-01-01T00:00:00Z"));
    }

    #[test]
    fn tokens_are_pgstacs() {
        assert!(check_token("next:6162:6364").is_ok());
        assert!(check_token("prev:61:62").is_ok());
        for bad in [
            "next:7b22",
            "next:zz:aa",
            "up:61:62",
            "next::61",
            "next:616:62",
        ] {
            assert!(check_token(bad).is_err(), "{bad}");
        }
        let p = page(r#"{"features":[{"id":"a"}],"links":[{"rel":"next","href":"./search?token=next:61:62"}]}"#).unwrap();
        assert_eq!(p.next_token.as_deref(), Some("next:61:62"));
        assert_eq!(p.features, [r#"{"id":"a"}"#]);
    }
}
