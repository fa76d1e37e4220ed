//! `host search` on pgstac against pgstac's own `search()` (what
//! stac-fastapi-pgstac runs) on the same database, and the same requests on
//! host's schema holding the same items: every page holds the same items in
//! the same order, paging included.

#[rustfmt::skip]
mod util;
mod pgstac_util;
mod stac_util;
mod stacdb;

use pgstac_util::{pgstac_db, pgstac_search};
use serde_json::{Value, json};
use stac_util::{migrated, ok, s};
use util::{TestDb, run, stderr};

type Key = (String, String);

/// The same items in both catalogs: pgstac's test items, 1,000 NAIP items
/// and the stac-spec examples (each in a collection of its own).
struct Catalogs {
    pgstac: TestDb,
    host: TestDb,
    items: Vec<Value>,
}

fn loaded(label: &str) -> Catalogs {
    let dir = tempfile::tempdir().unwrap();
    let mut collections: Vec<Value> = stacdb::ndjson("stac/pgstac-testdata/collections.ndjson");
    collections.push(stacdb::json_file(
        "stac/planetary-computer/naip-collection.json",
    ));
    let mut items = stacdb::pgstac_items();
    items.extend(stacdb::ndjson("stac/planetary-computer/naip-items.ndjson"));
    // pgstac stores no item without a geometry: the null-geometry example stays out.
    let spec: Vec<Value> = stacdb::spec_items()
        .into_iter()
        .filter(|i| !i["geometry"].is_null())
        .collect();
    for i in &spec {
        collections.push(json!({"type": "Collection", "id": i["collection"], "stac_version": "1.0.0",
            "description": "test", "license": "other", "links": [],
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[null, null]]}}}));
    }
    items.extend(spec);
    let c = stac_util::ndjson(dir.path(), "collections.ndjson", &collections);
    let it = stac_util::ndjson(dir.path(), "items.ndjson", &items);
    let pgstac = pgstac_db(&format!("{label}_pgstac"));
    let host = migrated(&format!("{label}_host"));
    for db in [&pgstac, &host] {
        ok(&stac_util::load(db, "collections", &[s(&c)]));
        ok(&stac_util::load(db, "items", &[s(&it)]));
    }
    Catalogs {
        pgstac,
        host,
        items,
    }
}

/// `host search BODY` on a database, as JSON.
fn host_search(db: &TestDb, body: &Value) -> Value {
    let o = run(&["search", &body.to_string(), "--dsn", &db.dsn]);
    assert!(o.status.success(), "host search {body}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn keys(page: &Value) -> Vec<Key> {
    page["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["collection"].as_str().unwrap().to_string(),
                f["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every page of a request with `host search`, following `next` links.
fn walk_host(db: &TestDb, body: &Value) -> Vec<Vec<Key>> {
    let mut pages = Vec::new();
    let mut body = body.clone();
    loop {
        let page = host_search(db, &body);
        pages.push(keys(&page));
        assert!(pages.len() < 500, "runaway paging");
        match page["links"].as_array().unwrap().first() {
            Some(next) => body = next["body"].clone(),
            None => return pages,
        }
    }
}

/// Every page of a request with pgstac's `search()`, following its tokens.
fn walk_pgstac(db: &TestDb, body: &Value) -> Vec<Vec<Key>> {
    let mut pages = Vec::new();
    let mut body = body.clone();
    loop {
        let page = pgstac_search(db, &body);
        pages.push(keys(&page));
        assert!(pages.len() < 500, "runaway paging");
        let next = page["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rel"] == "next")
            .map(|l| {
                l["href"]
                    .as_str()
                    .unwrap()
                    .split_once("token=")
                    .unwrap()
                    .1
                    .to_string()
            });
        match next {
            Some(t) => body["token"] = json!(t),
            None => return pages,
        }
    }
}

fn filter(f: Value) -> Value {
    json!({"filter-lang": "cql2-json", "filter": f, "limit": 10000})
}

fn prop(n: &str) -> Value {
    json!({"property": n})
}

#[test]
fn realistic_requests_get_pgstacs_answers_on_both_catalogs() {
    let c = loaded("search_same");
    let poly = json!({"type": "Polygon", "coordinates": [[[-87.9, 30.5], [-87.5, 30.95], [-87.45, 30.55], [-87.9, 30.5]]]});
    let bodies = vec![
        json!({"collections": ["naip"], "limit": 10000}),
        json!({"bbox": [-87.75, 30.6, -87.55, 30.9], "limit": 10000}),
        json!({"intersects": poly, "limit": 10000}),
        json!({"datetime": "2011-08-01T00:00:00Z/2011-08-15T00:00:00Z", "limit": 10000}),
        json!({"datetime": "2021-01-01T00:00:00Z/..", "limit": 10000}),
        json!({"datetime": "../2011-08-16T00:00:00Z", "limit": 10000}),
        json!({"datetime": "2020-12-11T22:38:32.125Z", "limit": 10000}),
        json!({"ids": ["pgstac-test-item-0003", "pgstac-test-item-0050", "20201211_223832_CS2", "nope"]}),
        json!({"collections": ["pgstac-test-collection", "naip"], "sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}], "limit": 10000}),
        json!({"sortby": [{"field": "datetime", "direction": "asc"}, {"field": "id", "direction": "desc"}], "limit": 10000}),
        filter(json!({"op": "or", "args": [
            {"op": "and", "args": [{"op": "<", "args": [prop("eo:cloud_cover"), 10]}, {"op": "=", "args": [prop("naip:state"), "al"]}]},
            {"op": ">", "args": [prop("gsd"), 0.5]}]})),
        filter(json!({"op": "like", "args": [prop("id"), "pgstac-test-item-00%"]})),
        filter(json!({"op": "like", "args": [prop("naip:year"), "201%"]})),
        filter(json!({"op": "in", "args": [prop("naip:year"), ["2011", "2013"]]})),
        filter(json!({"op": "in", "args": [prop("naip:year"), [2013, 2015]]})),
        filter(json!({"op": "between", "args": [prop("eo:cloud_cover"), 10, 20]})),
        // A number against a string property: read as a number (the 2013).
        filter(json!({"op": "=", "args": [prop("naip:year"), 2013]})),
        filter(json!({"op": "=", "args": [prop("naip:year"), "2013"]})),
        filter(json!({"op": ">=", "args": [prop("naip:year"), 2019]})),
        // A string against a number property: read as text.
        filter(json!({"op": "=", "args": [prop("gsd"), "0.6"]})),
        filter(json!({"op": "isNull", "args": [prop("eo:cloud_cover")]})),
        filter(json!({"op": "not", "args": [{"op": "<", "args": [prop("eo:cloud_cover"), 50]}]})),
        filter(
            json!({"op": "t_intersects", "args": [prop("datetime"), {"interval": ["2011-08-15T00:00:00Z", "2011-08-16T00:00:00Z"]}]}),
        ),
        filter(
            json!({"op": "t_before", "args": [prop("datetime"), {"timestamp": "2011-08-16T00:00:00Z"}]}),
        ),
        filter(json!({"op": ">=", "args": [prop("datetime"), "2016-05-03T13:22:30Z"]})),
        filter(json!({"op": "s_intersects", "args": [prop("geometry"), poly]})),
        filter(json!({"op": "and", "args": [
            {"op": "=", "args": [prop("collection"), "naip"]},
            {"op": "<", "args": [prop("naip:state"), "b"]}]})),
    ];
    let total = c.items.len();
    for body in &bodies {
        let raw_page = pgstac_search(&c.pgstac, body);
        let raw = keys(&raw_page);
        let page_on_pgstac = host_search(&c.pgstac, body);
        // Field by field: every feature is pgstac's own, as search() gave it.
        assert_eq!(
            page_on_pgstac["features"], raw_page["features"],
            "host search on pgstac vs pgstac's search() for {body}: features"
        );
        assert_eq!(
            page_on_pgstac["numberReturned"], raw_page["numberReturned"],
            "{body}"
        );
        let on_pgstac = keys(&page_on_pgstac);
        let on_host = keys(&host_search(&c.host, body));
        assert!(
            !raw.is_empty() && (raw.len() < total || body.get("filter").is_none()),
            "{body} matched {} of {total}: pick a request that tells answers apart",
            raw.len()
        );
        assert_eq!(
            on_pgstac, raw,
            "host search on pgstac vs pgstac's search() for {body}"
        );
        assert_eq!(
            on_host, raw,
            "host search on host's schema vs pgstac's search() for {body}"
        );
    }
    // The request (every NAIP year is a string): the 144.
    let n = keys(&pgstac_search(&c.pgstac, &bodies[16])).len();
    assert_eq!(n, 144, "naip:year = 2013");
}

#[test]
fn paging_walks_the_same_pages_on_both_catalogs() {
    let c = loaded("search_pages");
    for body in [
        json!({"limit": 97}),
        json!({"limit": 7, "collections": ["pgstac-test-collection", "spec-simple", "spec-core"],
               "sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}]}),
        json!({"limit": 250, "sortby": [{"field": "gsd", "direction": "asc"}, {"field": "id", "direction": "desc"}]}),
        json!({"limit": 100, "collections": ["naip"], "sortby": [{"field": "datetime", "direction": "asc"}]}),
        json!({"limit": 333, "sortby": [{"field": "properties.naip:year", "direction": "desc"}],
               "filter": {"op": "<>", "args": [{"property": "naip:year"}, "2015"]}}),
        json!({"limit": 50, "bbox": [-88, 30, -85, 35], "sortby": [{"field": "id", "direction": "asc"}]}),
    ] {
        let raw = walk_pgstac(&c.pgstac, &body);
        assert!(raw.len() > 1, "{body} fits one page");
        assert_eq!(walk_host(&c.pgstac, &body), raw, "host on pgstac, {body}");
        assert_eq!(
            walk_host(&c.host, &body),
            raw,
            "host on host's schema, {body}"
        );
    }
}

#[test]
fn what_pgstac_gets_wrong_is_asked_in_words_it_gets_right() {
    let c = loaded("search_rewrites");
    // A bbox across the antimeridian, from 172.96°E east round to 172.90°E:
    // everything between 0° and 40°N but a strip where the stac-spec items
    // lie. pgstac alone makes one box the other way round, only the strip.
    let body = json!({"bbox": [172.96, 0.0, 172.90, 40.0], "limit": 10000});
    let on_pgstac = keys(&host_search(&c.pgstac, &body));
    assert_eq!(on_pgstac, keys(&host_search(&c.host, &body)));
    let in_strip = |k: &Key| k.1 == "20201211_223832_CS2";
    assert!(on_pgstac.iter().any(|k| k.0 == "naip"), "{on_pgstac:?}");
    assert!(!on_pgstac.iter().any(in_strip), "{on_pgstac:?}");
    let raw = keys(&pgstac_search(&c.pgstac, &body));
    assert!(raw.iter().all(in_strip) && raw.len() == 3, "{raw:?}");
    // CQL2's {"bbox": ...} operand, and the geometry second.
    for f in [
        json!({"op": "s_intersects", "args": [prop("geometry"), {"bbox": [-87.9, 30.7, -87.7, 30.8]}]}),
        json!({"op": "s_intersects", "args": [{"bbox": [-87.9, 30.7, -87.7, 30.8]}, prop("geometry")]}),
        json!({"op": "s_within", "args": [{"bbox": [-87.9, 30.0, -87.0, 31.0]}, prop("geometry")]}),
        json!({"op": "s_contains", "args": [{"bbox": [-87.9, 30.0, -87.0, 31.0]}, prop("geometry")]}),
    ] {
        let body = filter(f);
        let on_pgstac = keys(&host_search(&c.pgstac, &body));
        assert_eq!(on_pgstac, keys(&host_search(&c.host, &body)), "{body}");
        assert!(
            !on_pgstac.is_empty() || body["filter"]["op"] == "s_within",
            "{body}"
        );
    }
}

#[test]
fn requests_pgstac_cannot_answer_fail_alike_on_both_catalogs() {
    let c = loaded("search_refusals");
    // A number against a property holding words: pgstac reads every item's
    // as a number and fails; host's schema reads it the same way.
    let body = filter(json!({"op": "=", "args": [prop("naip:state"), 5]}));
    for db in [&c.pgstac, &c.host] {
        let o = run(&["search", &body.to_string(), "--dsn", &db.dsn]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("invalid input syntax for type double precision"),
            "{}",
            stderr(&o)
        );
    }
    // Refused before either runs it, with the same words.
    for (f, msg) in [
        (
            json!({"op": "=", "args": [prop("datetime"), {"date": "2011-08-16"}]}),
            "a date is a whole day",
        ),
        (
            json!({"op": ">", "args": [prop("updated"), {"timestamp": "2011-08-16T00:00:00Z"}]}),
            "reads a property as text, not as a time",
        ),
        (
            json!({"op": "=", "args": [prop("naip:year"), 2013, "x"]}),
            "'=' takes 2 arguments",
        ),
    ] {
        let body = filter(f);
        for db in [&c.pgstac, &c.host] {
            let o = run(&["search", &body.to_string(), "--dsn", &db.dsn]);
            assert_eq!(o.status.code(), Some(1));
            assert!(stderr(&o).contains(msg), "{body}: {}", stderr(&o));
        }
    }
    // A token of one catalog is not the other's.
    let body = json!({"limit": 2});
    let t_pgstac = host_search(&c.pgstac, &body)["links"][0]["body"].clone();
    let t_host = host_search(&c.host, &body)["links"][0]["body"].clone();
    for (db, other) in [(&c.pgstac, &t_host), (&c.host, &t_pgstac)] {
        let o = run(&["search", &other.to_string(), "--dsn", &db.dsn]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("token: not a token returned by host search"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn a_database_without_a_catalog_says_so() {
    let db = TestDb::new("search_nocatalog");
    let o = run(&["search", "{}", "--dsn", &db.dsn]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("holds no STAC catalog") && stderr(&o).contains("host migrate"),
        "{}",
        stderr(&o)
    );
}
