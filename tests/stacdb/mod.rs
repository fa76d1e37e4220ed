//! STAC database set-up for the search and delete tests: a database
//! prepared by `host migrate` and filled by `host load`, as a user would.
#![allow(dead_code)]

pub mod eval;
pub mod fixture;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::util::{TestDb, fixture, run, run_stdin, stderr};

/// Migrates a test database to the built-in schema and returns a client on it.
pub fn setup(db: &TestDb) -> postgres::Client {
    let o = run(&["migrate", "--dsn", &db.dsn]);
    assert!(o.status.success(), "host migrate: {}", stderr(&o));
    db.client()
}

/// The documents of an NDJSON fixture.
pub fn ndjson(rel: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture(rel))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A JSON fixture.
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

/// Loads documents with `host load KIND -` (NDJSON on stdin).
fn load(db: &TestDb, kind: &str, docs: &[Value]) {
    let ndjson: String = docs.iter().map(|d| format!("{d}\n")).collect();
    let o = run_stdin(
        &["load", kind, "-", "--no-progress", "--dsn", &db.dsn],
        ndjson.as_bytes(),
    );
    assert!(o.status.success(), "host load {kind}: {}", stderr(&o));
}

/// Loads collections (JSON documents with an `id`) with `host load collections`.
pub fn insert_collections(db: &TestDb, collections: &[Value]) {
    load(db, "collections", collections);
}

/// Loads items with `host load items`; collections they name that do not
/// exist yet are loaded first with a minimal document.
pub fn insert_items(db: &TestDb, items: &[Value]) {
    let mut c = db.client();
    let known: BTreeSet<String> = c
        .query("SELECT id FROM host.collections", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let missing: BTreeSet<&str> = items
        .iter()
        .map(|i| i["collection"].as_str().expect("items need a collection"))
        .filter(|c| !known.contains(*c))
        .collect();
    let docs: Vec<Value> = missing
        .into_iter()
        .map(|id| {
            json!({"type": "Collection", "id": id, "stac_version": "1.0.0",
                   "description": "test", "license": "other", "links": [],
                   "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                              "temporal": {"interval": [[null, null]]}}})
        })
        .collect();
    if !docs.is_empty() {
        load(db, "collections", &docs);
    }
    load(db, "items", items);
}

/// `(collection, id)` of an item.
pub fn key(item: &Value) -> (String, String) {
    (
        item["collection"].as_str().unwrap().to_string(),
        item["id"].as_str().unwrap().to_string(),
    )
}
