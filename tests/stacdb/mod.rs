//! Test-only STAC database set-up for the search and delete tests: a stand-in
//! schema (tests/fixtures/sql/host_schema_for_search.sql) and a plain loader
//! (one INSERT per item). Once `host migrate` and `host load` are merged,
//! these tests should use them instead.
#![allow(dead_code)]

pub mod eval;
pub mod fixture;

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::util::{TestDb, fixture};

/// Creates the schema in a test database and returns a client on it.
pub fn setup(db: &TestDb) -> postgres::Client {
    let mut c = db.client();
    let sql = std::fs::read_to_string(fixture("sql/host_schema_for_search.sql")).unwrap();
    c.batch_execute(&sql).unwrap();
    c
}

/// The items of an NDJSON fixture.
pub fn ndjson(rel: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture(rel))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// One JSON fixture.
pub fn json_file(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(rel)).unwrap()).unwrap()
}

/// The stac-spec example items, each in a collection of its own (three of them share
/// an id), plus one with a null geometry made from `simple-item.json`.
pub fn spec_items() -> Vec<Value> {
    let mut out = Vec::new();
    for (file, collection) in [
        ("simple-item.json", "spec-simple"),
        ("core-item.json", "spec-core"),
        ("extended-item.json", "spec-extended"),
        ("collectionless-item.json", "spec-collectionless"),
    ] {
        let mut item = json_file(&format!("stac/stac-spec-examples/{file}"));
        item["collection"] = json!(collection);
        out.push(item);
    }
    let mut nowhere = out[0].clone();
    nowhere["id"] = json!("null-geometry-item");
    nowhere["collection"] = json!("spec-null");
    nowhere["geometry"] = Value::Null;
    nowhere.as_object_mut().unwrap().remove("bbox");
    out.push(nowhere);
    out
}

/// pgstac's 100 NAIP test items.
pub fn pgstac_items() -> Vec<Value> {
    ndjson("stac/pgstac-testdata/items.ndjson")
}

/// Inserts collections (JSON documents with an `id`).
pub fn insert_collections(c: &mut postgres::Client, collections: &[Value]) {
    for col in collections {
        let id = col["id"].as_str().unwrap().to_string();
        c.execute(
            "INSERT INTO host.collections (id, content) VALUES ($1, $2::text::jsonb) ON CONFLICT DO NOTHING",
            &[&id, &col.to_string()],
        )
        .unwrap();
    }
}

/// Inserts items; collections they name that do not exist yet get a minimal document.
pub fn insert_items(c: &mut postgres::Client, items: &[Value]) {
    let mut tx = c.transaction().unwrap();
    let mut seen = HashSet::new();
    for item in items {
        let collection = item["collection"]
            .as_str()
            .expect("items need a collection")
            .to_string();
        if seen.insert(collection.clone()) {
            let doc = json!({"type": "Collection", "id": collection, "stac_version": "1.0.0",
                             "description": "test", "license": "other", "links": [],
                             "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                                        "temporal": {"interval": [[null, null]]}}});
            tx.execute(
                "INSERT INTO host.collections (id, content) VALUES ($1, $2::text::jsonb) ON CONFLICT DO NOTHING",
                &[&collection, &doc.to_string()],
            )
            .unwrap();
            tx.execute("SELECT host.ensure_partition($1)", &[&collection])
                .unwrap();
        }
        let p = &item["properties"];
        let datetime = p["datetime"].as_str().map(str::to_string);
        let start = p["start_datetime"]
            .as_str()
            .map(str::to_string)
            .or(datetime.clone())
            .unwrap();
        let end = p["end_datetime"]
            .as_str()
            .map(str::to_string)
            .or(datetime.clone())
            .unwrap();
        let geometry = (!item["geometry"].is_null()).then(|| item["geometry"].to_string());
        let bbox: Option<Vec<f64>> = item["bbox"]
            .as_array()
            .map(|b| b.iter().map(|x| x.as_f64().unwrap()).collect());
        tx.execute(
            "INSERT INTO host.items (collection, id, geometry, bbox, datetime, start_datetime, end_datetime, content) \
             VALUES ($1, $2, ST_SetSRID(ST_GeomFromGeoJSON($3::text), 4326), $4, $5::text::timestamptz, \
                     $6::text::timestamptz, $7::text::timestamptz, $8::text::jsonb)",
            &[
                &collection,
                &item["id"].as_str().unwrap(),
                &geometry,
                &bbox,
                &datetime,
                &start,
                &end,
                &item.to_string(),
            ],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// `(collection, id)` of an item.
pub fn key(item: &Value) -> (String, String) {
    (
        item["collection"].as_str().unwrap().to_string(),
        item["id"].as_str().unwrap().to_string(),
    )
}
