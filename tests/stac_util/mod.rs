//! Helpers for the STAC tests: a migrated database, small valid records,
//! and running `host load`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use crate::util::{TestDb, run, stderr, stdout};

/// A fresh database with the built-in schema installed.
pub fn migrated(label: &str) -> TestDb {
    let db = TestDb::new(label);
    ok(&run(&["migrate", "--dsn", &db.dsn]));
    db
}

/// Asserts the command succeeded and returns its output.
pub fn ok(o: &Output) -> &Output {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    o
}

/// Asserts the command failed with `code` and stderr containing each of `parts`.
pub fn fails(o: &Output, code: i32, parts: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {err}",
        stdout(o)
    );
    for p in parts {
        assert!(err.contains(p), "stderr lacks {p:?}: {err}");
    }
}

/// `host load KIND ARGS... --dsn DB`.
pub fn load(db: &TestDb, kind: &str, args: &[&str]) -> Output {
    let mut all = vec!["load", kind];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--dsn", &db.dsn]);
    run(&all)
}

/// The `--json` summary a load printed.
pub fn summary(o: &Output) -> Value {
    serde_json::from_str(stdout(o).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// Asserts summary counts: (read, loaded, skipped, unchanged, dropped, rejected).
pub fn counts(o: &Output, expected: (u64, u64, u64, u64, u64, u64)) {
    let s = summary(o);
    let got = (
        s["read"].as_u64().unwrap(),
        s["loaded"].as_u64().unwrap(),
        s["skipped"].as_u64().unwrap(),
        s["unchanged"].as_u64().unwrap(),
        s["dropped"].as_u64().unwrap(),
        s["rejected"].as_u64().unwrap(),
    );
    assert_eq!(
        got, expected,
        "(read, loaded, skipped, unchanged, dropped, rejected) in {s}"
    );
}

/// A minimal valid collection.
pub fn collection(id: &str) -> Value {
    json!({
        "type": "Collection", "stac_version": "1.0.0", "id": id,
        "description": "test collection", "license": "CC0-1.0",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                   "temporal": {"interval": [["2020-01-01T00:00:00Z", null]]}},
        "links": []
    })
}

/// A minimal valid item: a point at (x, y), at 2020-01-01 plus `day` days.
pub fn item(id: &str, collection: &str, x: f64, y: f64, day: u32) -> Value {
    json!({
        "type": "Feature", "stac_version": "1.0.0", "id": id, "collection": collection,
        "geometry": {"type": "Point", "coordinates": [x, y]},
        "bbox": [x, y, x, y],
        "properties": {"datetime": format!("2020-01-{:02}T00:00:00Z", day.clamp(1, 28))},
        "links": [], "assets": {}
    })
}

/// Writes values as NDJSON.
pub fn ndjson(dir: &Path, name: &str, values: &[Value]) -> PathBuf {
    let p = dir.join(name);
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&p, text).unwrap();
    p
}

/// Loads one collection, asserting success.
pub fn add_collection(db: &TestDb, dir: &Path, id: &str) {
    let p = ndjson(dir, &format!("collection-{id}.json"), &[collection(id)]);
    ok(&load(db, "collections", &[p.to_str().unwrap()]));
}

/// One integer from a query.
pub fn count(db: &TestDb, sql: &str) -> i64 {
    db.client().query_one(sql, &[]).unwrap().get(0)
}

/// Path as &str.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
