//! The translator end to end: request JSON in, SQL text and parameters out.

use serde_json::{Value, json};

use super::paging::encode;
use super::sql::{SqlQuery, build as build_sql};
use super::{SearchError, SearchRequest};

fn build(v: Value) -> SqlQuery {
    SearchRequest::from_json(&v)
        .and_then(|r| build_sql(&r))
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn err(v: Value) -> String {
    match SearchRequest::from_json(&v).and_then(|r| build_sql(&r)) {
        Ok(s) => panic!("{v} was accepted: {}", s.sql),
        Err(e) => e.to_string(),
    }
}

fn params(s: &SqlQuery) -> String {
    format!("{:?}", s.params)
}

const KEYS: &str = "to_char(start_datetime AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), collection, id";
// As in pgstac, the tie-breakers take the first key's direction.
const ORDER: &str =
    "start_datetime DESC NULLS FIRST, collection DESC NULLS FIRST, id DESC NULLS FIRST";

/// pgstac's `to_text` of a property.
fn to_text(j: &str) -> String {
    format!(
        "(CASE WHEN jsonb_typeof({j}) IN ('array', 'object') THEN {j}::text ELSE {j} ->> 0 END)"
    )
}

#[test]
fn empty_request() {
    let s = build(json!({}));
    assert_eq!(
        s.sql,
        format!(
            "SELECT content::text, {KEYS} FROM host.items WHERE TRUE ORDER BY {ORDER} LIMIT $1"
        )
    );
    assert_eq!(params(&s), "[11]");
}

#[test]
fn core_members() {
    let s = build(json!({
        "collections": ["c1"], "ids": ["a", "b"], "bbox": [-86, 30, -85, 31],
        "datetime": "2011-08-01T00:00:00Z/..", "limit": 3
    }));
    assert_eq!(
        s.sql,
        format!(
            "SELECT content::text, {KEYS} FROM host.items WHERE collection = ANY($1::text[]) \
             AND id = ANY($2::text[]) \
             AND ST_Intersects(geometry, ST_MakeEnvelope($3::float8, $4::float8, $5::float8, $6::float8, 4326)) \
             AND (start_datetime <= 'infinity'::timestamptz AND end_datetime >= $7::text::timestamptz) \
             ORDER BY {ORDER} LIMIT $8"
        )
    );
    assert_eq!(
        params(&s),
        r#"[["c1"], ["a", "b"], -86.0, 30.0, -85.0, 31.0, "2011-08-01T00:00:00Z", 4]"#
    );
    let s = build(json!({"bbox": [170, -10, 0, -170, 10, 5]}));
    assert!(
        s.sql
            .contains("ST_Intersects(geometry, ST_Collect(ST_MakeEnvelope("),
        "{}",
        s.sql
    );
    let s = build(json!({"intersects": {"type": "Point", "coordinates": [1, 2]}}));
    assert!(
        s.sql
            .contains("ST_Intersects(geometry, ST_SetSRID(ST_GeomFromGeoJSON($1::text), 4326))")
    );
    // Instants go as UTC text, whatever offset or separator they came with.
    let s = build(json!({"datetime": "2011-08-25 02:00:00+02:00"}));
    assert!(s.sql.contains(
        "(start_datetime <= $2::text::timestamptz AND end_datetime >= $1::text::timestamptz)"
    ));
    assert_eq!(
        params(&s),
        r#"["2011-08-25T00:00:00Z", "2011-08-25T00:00:00Z", 11]"#
    );
}

#[test]
fn comparisons_read_operands_as_pgstac_does() {
    let j = "(content->'properties'->($1::text))";
    // With a number: the property as a number (a numeric string too).
    let s = build(json!({"filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}, 10]}}));
    assert!(
        s.sql
            .contains(&format!("WHERE ((({j} ->> 0)::float8) < $2::text::float8)")),
        "{}",
        s.sql
    );
    assert_eq!(params(&s), r#"["eo:cloud_cover", "10", 11]"#);

    // With a string: as text (a number's text too).
    let s = build(
        json!({"filter": {"op": "=", "args": ["al", {"property": "properties.naip:state"}]}}),
    );
    let j2 = "(content->'properties'->($2::text))";
    assert!(
        s.sql
            .contains(&format!("WHERE ($1::text = {})", to_text(j2))),
        "{}",
        s.sql
    );
    assert_eq!(params(&s), r#"["al", "naip:state", 11]"#);

    // datetime: pgstac's, the start of the range.
    let s = build(
        json!({"filter": {"op": ">=", "args": [{"property": "datetime"}, "2011-08-16T00:00:00Z"]}}),
    );
    assert!(
        s.sql
            .contains("WHERE (start_datetime >= $1::text::timestamptz)"),
        "{}",
        s.sql
    );

    let s = build(json!({"filter": {"op": "=", "args": [{"property": "a"}, {"property": "b"}]}}));
    let b = "(content->'properties'->($2::text))";
    assert!(
        s.sql
            .contains(&format!("WHERE ({} = {})", to_text(j), to_text(b))),
        "{}",
        s.sql
    );

    // A boolean as text: true and "true" alike.
    let s = build(json!({"filter": {"op": "<>", "args": [{"property": "flag"}, true]}}));
    assert!(
        s.sql
            .contains(&format!("WHERE ({} <> $2::text)", to_text(j))),
        "{}",
        s.sql
    );
    assert_eq!(params(&s), r#"["flag", "true", 11]"#);
}

#[test]
fn the_other_predicates() {
    let f = |filter: Value| build(json!({ "filter": filter })).sql;
    let sql = f(json!({"op": "in", "args": [{"property": "id"}, ["a", "b"]]}));
    assert!(sql.contains("WHERE (id IN ($1::text, $2::text))"), "{sql}");
    let sql = f(json!({"op": "between", "args": [{"property": "gsd"}, 0.5, 2]}));
    assert!(
        sql.contains("BETWEEN $2::text::float8 AND $3::text::float8)"),
        "{sql}"
    );
    let sql = f(json!({"op": "like", "args": [{"property": "id"}, "pgstac-%"]}));
    assert!(sql.contains("WHERE (id LIKE $1::text)"), "{sql}");
    let sql = f(json!({"op": "isNull", "args": [{"property": "geometry"}]}));
    assert!(sql.contains("WHERE (geometry IS NULL)"), "{sql}");
    let sql = f(json!({"op": "isNull", "args": [{"property": "x"}]}));
    assert!(
        sql.contains(&format!(
            "WHERE ({} IS NULL)",
            to_text("(content->'properties'->($1::text))")
        )),
        "{sql}"
    );
    let sql = f(json!({"op": "not", "args": [{"op": "or", "args": [true, false]}]}));
    assert!(sql.contains("WHERE (NOT (TRUE OR FALSE))"), "{sql}");
    let sql = f(
        json!({"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [0, 0, 1, 1]}]}),
    );
    assert!(
        sql.contains("WHERE ST_Intersects(geometry, ST_MakeEnvelope("),
        "{sql}"
    );
    let sql = f(
        json!({"op": "s_within", "args": [{"type": "Point", "coordinates": [0, 0]}, {"property": "geometry"}]}),
    );
    assert!(
        sql.contains("WHERE ST_Within(ST_SetSRID(ST_GeomFromGeoJSON($1::text), 4326), geometry)"),
        "{sql}"
    );
    // An item's datetime in a temporal operator is pgstac's: the start of its range.
    let sql = f(
        json!({"op": "t_intersects", "args": [{"property": "datetime"}, {"interval": ["2011-08-01T00:00:00Z", ".."]}]}),
    );
    assert!(sql.contains("WHERE (start_datetime <= 'infinity'::timestamptz AND start_datetime >= $1::text::timestamptz)"), "{sql}");
    let sql = f(
        json!({"op": "t_before", "args": [{"property": "end_datetime"}, {"timestamp": "2011-08-01T00:00:00Z"}]}),
    );
    assert!(
        sql.contains("WHERE (end_datetime < $1::text::timestamptz)"),
        "{sql}"
    );
    let sql = f(json!({"op": "t_during", "args": [{"property": "datetime"}, "2011-08-01"]}));
    assert!(
        sql.contains("WHERE (start_datetime > $1::text::timestamptz AND start_datetime < $2::text::timestamptz)"),
        "{sql}"
    );
}

#[test]
fn user_text_never_reaches_the_sql() {
    let evil = "x'); DROP TABLE host.items; --";
    let s = build(json!({
        "collections": [evil], "ids": [evil],
        "sortby": [{"field": format!("properties.{evil}"), "direction": "desc"}],
        "filter": {"op": "and", "args": [
            {"op": "=", "args": [{"property": evil}, evil]},
            {"op": "like", "args": [{"property": evil}, evil]},
            {"op": "in", "args": [{"property": evil}, [evil, "y"]]},
        ]}
    }));
    assert!(!s.sql.contains("DROP"), "{}", s.sql);
    assert!(!s.sql.contains("x'"), "{}", s.sql);
    assert!(params(&s).contains("DROP TABLE"));
}

#[test]
fn type_errors_name_the_operand() {
    let f = |filter: Value| err(json!({ "filter": filter }));
    for (filter, msg) in [
        (
            json!({"op": "<", "args": [{"property": "id"}, 10]}),
            "filter.args[1]: '<' cannot compare a number with a string",
        ),
        (
            json!({"op": "=", "args": [{"property": "a"}, {"bbox": [0, 0, 1, 1]}]}),
            "filter.args[1]: '=' cannot take a geometry",
        ),
        (
            json!({"op": "=", "args": [{"property": "datetime"}, "soon"]}),
            "filter.args[1]: '=' compares instants: \"soon\" is not an RFC 3339 date-time",
        ),
        (
            json!({"op": "=", "args": [{"property": "datetime"}, {"date": "2011-08-16"}]}),
            "filter.args[1]: '=' compares instants, and a date is a whole day",
        ),
        (
            json!({"op": ">", "args": [{"property": "updated"}, {"timestamp": "2011-08-16T00:00:00Z"}]}),
            "filter.args[1]: '>' reads a property as text, not as a time",
        ),
        (
            json!({"op": "in", "args": [{"property": "a"}, [1, "b"]]}),
            "filter.args[1][1]: 'in' cannot compare a string with a number",
        ),
        (
            json!({"op": "like", "args": [{"property": "a"}, 5]}),
            "filter.args[1]: 'like' compares text, not a number",
        ),
        (
            json!({"op": "like", "args": [{"property": "datetime"}, "2011%"]}),
            "filter.args[0]: 'like' compares text, not a property",
        ),
        (
            json!({"op": "isNull", "args": [5]}),
            "filter.args[0]: 'isNull' needs a property",
        ),
        (
            json!({"op": "s_intersects", "args": [{"property": "footprint"}, {"bbox": [0, 0, 1, 1]}]}),
            "filter.args[0]: only the \"geometry\" property is spatial",
        ),
        (
            json!({"op": "s_intersects", "args": [{"property": "geometry"}, 5]}),
            "filter.args[1]: expected a geometry, got a number",
        ),
        (
            json!({"op": "s_intersects", "args": [{"bbox": [0, 0, 1, 1]}, {"bbox": [0, 0, 2, 2]}]}),
            "filter.args[1]: a spatial operator relates the item's geometry",
        ),
        (
            json!({"op": "t_intersects", "args": [{"property": "datetime"}, 5]}),
            "filter.args[1]: expected a time, got a number",
        ),
        (
            json!({"op": "and", "args": [true, {"op": "foo", "args": []}]}),
            "filter.args[1]: unknown operator 'foo'",
        ),
    ] {
        let e = f(filter);
        assert!(e.starts_with(msg), "{e}\n  wanted: {msg}");
    }
}

#[test]
fn keyset_pagination() {
    let s = build(
        json!({"sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}], "limit": 5}),
    );
    let j = to_text("(content->'properties'->($1::text))");
    assert_eq!(
        s.sql,
        format!(
            "SELECT content::text, {j}, collection, id FROM host.items WHERE TRUE \
             ORDER BY {j} DESC NULLS FIRST, collection DESC NULLS FIRST, id DESC NULLS FIRST LIMIT $2"
        )
    );
    let token = encode(
        &s.keys,
        &[Some("12".into()), Some("c".into()), Some("i".into())],
    );
    let s = build(json!({
        "sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}], "limit": 5, "token": token
    }));
    assert!(
        s.sql.contains(&format!(
            "WHERE (({j} < $2::text) OR ({j} = $2::text AND collection < $3::text) \
             OR ({j} = $2::text AND collection = $3::text AND id < $4::text))"
        )),
        "{}",
        s.sql
    );
    assert_eq!(params(&s), r#"["eo:cloud_cover", "12", "c", "i", 6]"#);

    // After a NULL key in descending order come the non-NULL ones.
    let token = encode(&s.keys, &[None, Some("c".into()), Some("i".into())]);
    let s = build(json!({
        "sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}], "limit": 5, "token": token
    }));
    assert!(
        s.sql.contains(&format!(
            "WHERE (({j} IS NOT NULL) OR ({j} IS NULL AND collection < "
        )),
        "{}",
        s.sql
    );

    let other = err(json!({"token": token}));
    assert!(
        other.starts_with("token: this token is for another sort order"),
        "{other}"
    );
}

#[test]
fn invalid_json() {
    let e = SearchRequest::parse("{\"limit\": ").unwrap_err();
    assert_eq!(e.path, "request");
    assert!(e.message.starts_with("invalid JSON"), "{e}");
    let e: SearchError = SearchRequest::parse("{\"limit\": -1}").unwrap_err();
    assert_eq!(e.path, "limit");
}
