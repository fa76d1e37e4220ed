//! `host load` with real data and real trouble: the shared fixtures read back
//! equal, NAIP through `set_collection.wasm`, a load killed half-way, and
//! concurrent loads into one collection.

#[rustfmt::skip]
mod util;
mod stac_util;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stac_util::{add_collection, collection, count, counts, item, load, migrated, ndjson, ok, s};
use util::{TestDb, fixture, host, stderr, wasm};

/// The records of a fixture: NDJSON lines, or the one JSON document.
fn records(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    if path.extension().is_some_and(|e| e == "ndjson") {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    } else {
        vec![text]
    }
}

/// Asserts every record of `path` is in the database exactly as written
/// (compared as jsonb), items in `collection` unless they name their own.
fn assert_reads_back(db: &TestDb, path: &Path, kind: &str, collection: Option<&str>) {
    let mut c = db.client();
    for text in records(path) {
        let v: Value = serde_json::from_str(&text).unwrap();
        let id = v["id"].as_str().unwrap();
        let equal: bool = match kind {
            "collections" => c
                .query_one(
                    "SELECT content = $2::text::jsonb FROM host.collections WHERE id = $1",
                    &[&id, &text],
                )
                .unwrap()
                .get(0),
            // Compared with the text as written: numbers such as
            // 428699.69999999995 must survive exactly (an f64 would print 428699.7).
            _ => {
                let coll = v["collection"].as_str().or(collection).unwrap();
                c.query_one(
                    "SELECT content - 'collection' = $3::text::jsonb - 'collection' \
                            AND content->>'collection' = $1 \
                     FROM host.items WHERE collection = $1 AND id = $2",
                    &[&coll, &id, &text],
                )
                .unwrap_or_else(|e| panic!("{}: {id}: {e}", path.display()))
                .get(0)
            }
        };
        assert!(equal, "{}: {id} differs", path.display());
    }
}

#[test]
fn real_fixtures_load_and_read_back_equal() {
    let db = migrated("fixtures");
    let dir = tempfile::tempdir().unwrap();
    let f = |rel: &str| fixture(&format!("stac/{rel}"));
    let collections = [
        f("stac-spec-examples/collection.json"),
        f("stac-spec-examples/collection-only/collection.json"),
        f("stac-spec-examples/extensions-collection/collection.json"),
        f("planetary-computer/collections.ndjson"),
        f("pgstac-testdata/collections.ndjson"),
    ];
    let args: Vec<&str> = collections.iter().map(|p| s(p)).chain(["--json"]).collect();
    counts(ok(&load(&db, "collections", &args)), (8, 8, 0, 0, 0, 0));
    for p in &collections {
        assert_reads_back(&db, p, "collections", None);
    }
    // The same id as collection-only/collection.json, loaded over it.
    let schemas = f("stac-spec-examples/collection-only/collection-with-schemas.json");
    counts(
        ok(&load(
            &db,
            "collections",
            &[s(&schemas), "--method", "upsert", "--json"],
        )),
        (1, 1, 0, 0, 0, 0),
    );
    assert_reads_back(&db, &schemas, "collections", None);
    // proj-example's collection is not among the fixtures.
    add_collection(&db, dir.path(), "landsat-8-l1");

    let items = [
        f("pgstac-testdata/items.ndjson"),
        f("pgstac-testdata/items_duplicate_ids.ndjson"),
        f("planetary-computer/naip-items.ndjson"),
        f("stac-spec-examples/core-item.json"),
        f("stac-spec-examples/extensions-collection/proj-example/proj-example.json"),
    ];
    let args: Vec<&str> = items.iter().map(|p| s(p)).chain(["--json"]).collect();
    counts(ok(&load(&db, "items", &args)), (1104, 1104, 0, 0, 0, 0));
    for p in &items {
        assert_reads_back(&db, p, "items", None);
    }
    // Same ids, other content: each replaces the last.
    for (rel, method, expected) in [
        (
            "stac-spec-examples/simple-item.json",
            "upsert",
            (1, 1, 0, 0, 0, 0),
        ),
        (
            "stac-spec-examples/extended-item.json",
            "upsert",
            (1, 1, 0, 0, 0, 0),
        ),
        (
            "stac-spec-examples/extended-item.json",
            "upsert",
            (1, 0, 0, 1, 0, 0),
        ),
        (
            "pgstac-testdata/items_private.ndjson",
            "upsert",
            (100, 100, 0, 0, 0, 0),
        ),
        (
            "pgstac-testdata/items_for_delsert.ndjson",
            "delsert",
            (6, 6, 0, 0, 0, 0),
        ),
    ] {
        let p = f(rel);
        counts(
            ok(&load(&db, "items", &[s(&p), "--method", method, "--json"])),
            expected,
        );
        assert_reads_back(&db, &p, "items", None);
    }
    let collectionless = f("stac-spec-examples/collectionless-item.json");
    ok(&load(
        &db,
        "items",
        &[s(&collectionless), "--collection", "simple-collection"],
    ));
    assert_reads_back(&db, &collectionless, "items", Some("simple-collection"));
    // Derived columns agree with PostGIS's own reading of the GeoJSON.
    let mismatched = count(
        &db,
        "SELECT count(*) FROM host.items WHERE NOT ST_Equals(geometry, \
           ST_SetSRID(ST_GeomFromGeoJSON(content->>'geometry'), 4326)) \
           OR datetime IS DISTINCT FROM (content->'properties'->>'datetime')::timestamptz",
    );
    assert_eq!(mismatched, 0);
}

#[test]
fn naip_items_load_through_set_collection_into_another_collection() {
    let db = migrated("naip_set_collection");
    let dir = tempfile::tempdir().unwrap();
    let mut naip: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("stac/planetary-computer/naip-collection.json")).unwrap(),
    )
    .unwrap();
    naip["id"] = json!("naip-copy");
    let c = ndjson(dir.path(), "naip-copy.json", &[naip]);
    ok(&load(&db, "collections", &[s(&c)]));
    let items = fixture("stac/planetary-computer/naip-items.ndjson");
    let o = ok(&load(
        &db,
        "items",
        &[
            s(&items),
            "--plugin",
            s(&wasm("set_collection")),
            "--plugin-arg",
            "collection=naip-copy",
            "--json",
        ],
    ))
    .clone();
    counts(&o, (1000, 1000, 0, 0, 0, 0));
    assert_eq!(stac_util::summary(&o)["collections"], json!(["naip-copy"]));
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM host.items WHERE collection = 'naip-copy' AND content->>'collection' = 'naip-copy'"
        ),
        1000
    );
    // Links to the old collection were pointed at the new one.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM host.items, jsonb_array_elements(content->'links') l \
             WHERE l->>'rel' IN ('collection', 'parent') AND l->>'href' LIKE '%/collections/naip'"
        ),
        0
    );
    // Everything else is as it was.
    let mut client = db.client();
    for line in std::fs::read_to_string(&items).unwrap().lines() {
        let id = serde_json::from_str::<Value>(line).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let same: bool = client
            .query_one(
                "SELECT content - 'collection' - 'links' = $2::text::jsonb - 'collection' - 'links' \
                 FROM host.items WHERE collection = 'naip-copy' AND id = $1",
                &[&id, &line],
            )
            .unwrap()
            .get(0);
        assert!(same, "{id}");
    }
}

/// Waits until `f` holds, or panics after `secs`.
fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_load_killed_half_way_leaves_nothing() {
    let db = migrated("killed");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let mut child = host()
        .args(["load", "items", "-", "--dsn", &db.dsn])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // An endless input: the load can only be stopped by killing it.
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0u64.. {
            let v = item(
                &format!("k{i:09}"),
                "c",
                (i % 360) as f64 - 180.0,
                0.0,
                (i % 28) as u32 + 1,
            );
            if writeln!(stdin, "{v}").is_err() {
                return i;
            }
        }
        unreachable!()
    });
    let mut c = db.client();
    wait_for(120, "COPY to take 20,000 rows", || {
        let n: i64 = c
            .query_one(
                "SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy \
                 WHERE datname = current_database()",
                &[],
            )
            .unwrap()
            .get(0);
        n >= 20_000
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let written = writer.join().unwrap();
    assert!(written >= 20_000);
    // The server notices the connection is gone and rolls the transaction back.
    wait_for(60, "the load's backend to end", || {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                &[],
            )
            .unwrap()
            .get(0);
        n == 0
    });
    assert_eq!(count(&db, "SELECT count(*) FROM host.items"), 0);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'host_load_%'"
        ),
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM host.collections"), 1);
    // And the database takes the next load as if nothing happened.
    let f = ndjson(
        dir.path(),
        "after.ndjson",
        &[item("k000000001", "c", 0.0, 0.0, 1)],
    );
    counts(
        ok(&load(&db, "items", &[s(&f), "--json"])),
        (1, 1, 0, 0, 0, 0),
    );
}

#[test]
fn concurrent_loads_into_one_collection_neither_deadlock_nor_lose_items() {
    let db = migrated("concurrent");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    db.client()
        .execute(
            "UPDATE host.settings SET value = 'immediate' WHERE key = 'update_extents'",
            &[],
        )
        .unwrap();
    // Overlapping halves, in opposite orders; their titles say who wrote them.
    let make = |who: &str, range: std::ops::Range<u32>, reverse: bool| {
        let mut ids: Vec<u32> = range.collect();
        if reverse {
            ids.reverse();
        }
        let values: Vec<Value> = ids
            .iter()
            .map(|i| {
                let mut v = item(&format!("i{i:05}"), "c", f64::from(i % 90), 0.0, i % 28 + 1);
                v["properties"]["title"] = json!(who);
                v
            })
            .collect();
        ndjson(dir.path(), &format!("{who}.ndjson"), &values)
    };
    let a = make("a", 0..6000, false);
    let b = make("b", 3000..9000, true);
    for method in ["upsert", "delsert", "insert_ignore", "upsert"] {
        let spawn = |f: &Path| {
            host()
                .args([
                    "load",
                    "items",
                    s(f),
                    "--method",
                    method,
                    "--json",
                    "--dsn",
                    &db.dsn,
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (pa, pb) = (spawn(&a), spawn(&b));
        // A collection load at the same time creates a partition while items go in.
        let other = ndjson(
            dir.path(),
            &format!("other-{method}.json"),
            &[collection(&format!("other-{method}"))],
        );
        let oc = load(&db, "collections", &[s(&other), "--method", "upsert"]);
        let (oa, ob) = (
            pa.wait_with_output().unwrap(),
            pb.wait_with_output().unwrap(),
        );
        ok(&oc);
        for o in [&oa, &ob] {
            assert!(o.status.success(), "{method}: {}", stderr(o));
            assert_eq!(stac_util::summary(o)["read"], 6000);
        }
        assert_eq!(
            count(&db, "SELECT count(*) FROM host.items"),
            9000,
            "{method}"
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM host.items WHERE content->'properties'->>'title' = 'a' AND id < 'i03000'"
            ),
            3000
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM host.items WHERE content->'properties'->>'title' = 'b' AND id >= 'i06000'"
            ),
            3000
        );
    }
    // Plain inserts of different ids at once (straight COPY into host.items).
    let (d1, d2) = (
        make("d1", 10000..13000, false),
        make("d2", 13000..16000, true),
    );
    let spawn = |f: &Path| {
        host()
            .args(["load", "items", s(f), "--json", "--dsn", &db.dsn])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (p1, p2) = (spawn(&d1), spawn(&d2));
    for o in [
        p1.wait_with_output().unwrap(),
        p2.wait_with_output().unwrap(),
    ] {
        counts(&o, (3000, 3000, 0, 0, 0, 0));
    }
    assert_eq!(count(&db, "SELECT count(*) FROM host.items"), 15000);
    // The extent covers every item (each load saw the other's committed items).
    let extent: String = db
        .client()
        .query_one(
            "SELECT content->'extent'->'spatial'->>'bbox' FROM host.collections WHERE id = 'c'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(extent, "[[0, 0, 89, 0]]");
}
