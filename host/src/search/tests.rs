//! The translator end to end: request JSON in, SQL text and parameters out.

use serde_json::{Value, json};

use super::paging::encode;
use super::{Search, SearchError};

fn build(v: Value) -> Search {
    Search::from_json(&v).unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn err(v: Value) -> String {
    match Search::from_json(&v) {
        Ok(s) => panic!("{v} was accepted: {}", s.query.sql),
        Err(e) => e.to_string(),
    }
}

fn params(s: &Search) -> String {
    format!("{:?}", s.query.params)
}

const KEYS: &str = "to_char(start_datetime AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), collection, id";
const ORDER: &str = "start_datetime DESC NULLS FIRST, collection ASC NULLS LAST, id ASC NULLS LAST";

#[test]
fn empty_request() {
    let s = build(json!({}));
    assert_eq!(
        s.query.sql,
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
        s.query.sql,
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
        s.query
            .sql
            .contains("ST_Intersects(geometry, ST_Collect(ST_MakeEnvelope("),
        "{}",
        s.query.sql
    );
    let s = build(json!({"intersects": {"type": "Point", "coordinates": [1, 2]}}));
    assert!(
        s.query
            .sql
            .contains("ST_Intersects(geometry, ST_SetSRID(ST_GeomFromGeoJSON($1::text), 4326))")
    );
    let s = build(json!({"datetime": "2011-08-25T00:00:00Z"}));
    assert!(s.query.sql.contains(
        "(start_datetime <= $2::text::timestamptz AND end_datetime >= $1::text::timestamptz)"
    ));
}

#[test]
fn comparisons_are_typed_by_the_literal() {
    let s = build(json!({"filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}, 10]}}));
    let j = "(content->'properties'->($1::text))";
    assert!(
        s.query.sql.contains(&format!(
            "WHERE ((CASE WHEN jsonb_typeof({j}) = 'number' THEN {j}::numeric END) < $2::text::numeric)"
        )),
        "{}",
        s.query.sql
    );
    assert_eq!(params(&s), r#"["eo:cloud_cover", "10", 11]"#);

    let s = build(
        json!({"filter": {"op": "=", "args": ["al", {"property": "properties.naip:state"}]}}),
    );
    assert!(s.query.sql.contains(
        "($1::text = (CASE WHEN jsonb_typeof((content->'properties'->($2::text))) = 'string' THEN"
    ));
    assert_eq!(params(&s), r#"["al", "naip:state", 11]"#);

    let s = build(
        json!({"filter": {"op": ">=", "args": [{"property": "datetime"}, "2011-08-16T00:00:00Z"]}}),
    );
    assert!(
        s.query
            .sql
            .contains("WHERE (datetime >= $1::text::timestamptz)"),
        "{}",
        s.query.sql
    );

    let s = build(
        json!({"filter": {"op": "=", "args": [{"property": "datetime"}, {"date": "2011-08-16"}]}}),
    );
    assert!(s.query.sql.contains("WHERE ((datetime AT TIME ZONE 'UTC')::date = ($1::text::timestamptz AT TIME ZONE 'UTC')::date)"), "{}", s.query.sql);

    let s = build(json!({"filter": {"op": "=", "args": [{"property": "a"}, {"property": "b"}]}}));
    assert!(s.query.sql.contains(
        "WHERE ((content->'properties'->($1::text)) = (content->'properties'->($2::text)))"
    ));

    let s = build(json!({"filter": {"op": "<>", "args": [{"property": "flag"}, true]}}));
    assert!(
        s.query.sql.contains("::boolean END) <> $2::boolean)"),
        "{}",
        s.query.sql
    );
    assert_eq!(params(&s), r#"["flag", true, 11]"#);
}

#[test]
fn the_other_predicates() {
    let f = |filter: Value| build(json!({ "filter": filter })).query.sql;
    let sql = f(json!({"op": "in", "args": [{"property": "id"}, ["a", "b"]]}));
    assert!(sql.contains("WHERE (id IN ($1::text, $2::text))"), "{sql}");
    let sql = f(json!({"op": "between", "args": [{"property": "gsd"}, 0.5, 2]}));
    assert!(
        sql.contains("BETWEEN $2::text::numeric AND $3::text::numeric)"),
        "{sql}"
    );
    let sql = f(json!({"op": "like", "args": [{"property": "id"}, "pgstac-%"]}));
    assert!(sql.contains("WHERE (id LIKE $1::text)"), "{sql}");
    let sql = f(json!({"op": "isNull", "args": [{"property": "geometry"}]}));
    assert!(sql.contains("WHERE (geometry IS NULL)"), "{sql}");
    let sql = f(json!({"op": "isNull", "args": [{"property": "x"}]}));
    assert!(
        sql.contains("IS NULL OR jsonb_typeof((content->'properties'->($1::text))) = 'null')"),
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
        json!({"op": "s_within", "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [0, 0]}]}),
    );
    assert!(
        sql.contains("WHERE ST_Within(geometry, ST_SetSRID(ST_GeomFromGeoJSON($1::text), 4326))"),
        "{sql}"
    );
    let sql = f(
        json!({"op": "t_intersects", "args": [{"property": "datetime"}, {"interval": ["2011-08-01T00:00:00Z", ".."]}]}),
    );
    assert!(sql.contains("WHERE (start_datetime <= 'infinity'::timestamptz AND end_datetime >= $1::text::timestamptz)"), "{sql}");
    let sql = f(
        json!({"op": "t_before", "args": [{"property": "datetime"}, {"timestamp": "2011-08-01T00:00:00Z"}]}),
    );
    assert!(
        sql.contains("WHERE (end_datetime < $1::text::timestamptz)"),
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
    assert!(!s.query.sql.contains("DROP"), "{}", s.query.sql);
    assert!(!s.query.sql.contains("x'"), "{}", s.query.sql);
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
            "filter.args[1]: invalid RFC 3339 date-time \"soon\"",
        ),
        (
            json!({"op": "in", "args": [{"property": "a"}, [1, "b"]]}),
            "filter.args[1][1]: 'in' cannot compare a string with a number",
        ),
        (
            json!({"op": "like", "args": [{"property": "a"}, 5]}),
            "filter.args[1]: 'like' needs strings, got a number",
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
    let j = "(content->'properties'->($1::text))";
    assert_eq!(
        s.query.sql,
        format!(
            "SELECT content::text, {j}::text, collection, id FROM host.items WHERE TRUE \
             ORDER BY {j} DESC NULLS FIRST, collection ASC NULLS LAST, id ASC NULLS LAST LIMIT $2"
        )
    );
    let token = encode(
        &s.query.keys,
        &[Some("12".into()), Some("c".into()), Some("i".into())],
    );
    let s = build(json!({
        "sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}], "limit": 5, "token": token
    }));
    assert!(
        s.query.sql.contains(&format!(
            "WHERE (({j} < $2::text::jsonb) OR ({j} = $2::text::jsonb AND (collection > $3::text OR collection IS NULL)) \
             OR ({j} = $2::text::jsonb AND collection = $3::text AND (id > $4::text OR id IS NULL)))"
        )),
        "{}",
        s.query.sql
    );
    assert_eq!(params(&s), r#"["eo:cloud_cover", "12", "c", "i", 6]"#);

    // After a NULL key in descending order come the non-NULL ones.
    let token = encode(&s.query.keys, &[None, Some("c".into()), Some("i".into())]);
    let s = build(json!({
        "sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}], "limit": 5, "token": token
    }));
    assert!(
        s.query.sql.contains(&format!(
            "WHERE (({j} IS NOT NULL) OR ({j} IS NULL AND (collection > "
        )),
        "{}",
        s.query.sql
    );

    let other = err(json!({"token": token}));
    assert!(
        other.starts_with("token: this token is for another sort order"),
        "{other}"
    );
}

#[test]
fn invalid_json() {
    let e = Search::parse("{\"limit\": ").unwrap_err();
    assert_eq!(e.path, "request");
    assert!(e.message.starts_with("invalid JSON"), "{e}");
    let e: SearchError = Search::parse("{\"limit\": -1}").unwrap_err();
    assert_eq!(e.path, "limit");
}
