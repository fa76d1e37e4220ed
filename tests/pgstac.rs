//! `host migrate --dir` and `host load` against real pgstac: pgstac's own
//! migration files from the pypgstac wheel on PyPI (`scripts/pgstac-migrations`),
//! items read back through pgstac's `search()` and `get_item()`.

#[rustfmt::skip]
mod util;
mod pgstac_util;
mod stac_util;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

use host::catalog::pgstac::dehydrate::strip_nulls;
use pgstac_util::{migrate, migrations, pgstac_db};
use serde_json::{Value, json};
use stac_util::{collection, count, counts, fails, item, load, ndjson, ok, s, summary};
use util::{TestDb, fixture, host, run, stderr, stdout, wasm};

/// Geometry coordinates as numbers: PostGIS writes 1.0 as 1.
fn same_numbers(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Number(n) => *v = json!(n.as_f64().unwrap()),
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    if let Some(c) = v.get_mut("geometry").and_then(|g| g.get_mut("coordinates")) {
        walk(c);
    }
    v
}

fn version(db: &TestDb) -> String {
    db.client()
        .query_one("SELECT pgstac.get_version()", &[])
        .unwrap()
        .get(0)
}

/// The features pgstac's `search()` returns for one collection.
fn search(db: &TestDb, collection: &str) -> Vec<Value> {
    let body = json!({"collections": [collection], "limit": 10000}).to_string();
    let mut c = db.client();
    // pgstac's functions expect its schema on the search path (its roles have it).
    c.batch_execute("SET search_path TO pgstac, public")
        .unwrap();
    let text: String = c
        .query_one("SELECT pgstac.search($1::text::jsonb)::text", &[&body])
        .unwrap()
        .get(0);
    let v: Value = serde_json::from_str(&text).unwrap();
    v["features"].as_array().cloned().unwrap_or_default()
}

/// The records of an NDJSON file, by id, as pgstac returns them (no nulls).
fn originals(path: &Path, collection: Option<&str>) -> HashMap<String, Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if let Some(c) = collection {
                v["collection"] = json!(c);
            }
            (v["id"].as_str().unwrap().to_string(), strip_nulls(v))
        })
        .collect()
}

/// Asserts search() returns exactly `expected`, and get_item() each of them.
fn assert_search_equals(db: &TestDb, collection: &str, expected: &HashMap<String, Value>) {
    let got = search(db, collection);
    assert_eq!(got.len(), expected.len(), "search() count for {collection}");
    for f in &got {
        let id = f["id"].as_str().unwrap();
        let want = expected
            .get(id)
            .unwrap_or_else(|| panic!("search() returned {id}, which was not loaded"));
        assert_eq!(
            same_numbers(f.clone()),
            same_numbers(want.clone()),
            "{collection}/{id} reads back different"
        );
    }
    let mut c = db.client();
    c.batch_execute("SET search_path TO pgstac, public")
        .unwrap();
    for (id, want) in expected.iter().take(20) {
        let text: String = c
            .query_one(
                "SELECT pgstac.get_item($1, $2)::text",
                &[&id.as_str(), &collection],
            )
            .unwrap()
            .get(0);
        let got: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            same_numbers(got),
            same_numbers(want.clone()),
            "get_item({id})"
        );
    }
}

/// xmin of every item row, to see which were rewritten.
fn row_versions(db: &TestDb) -> HashMap<String, String> {
    db.client()
        .query("SELECT id, xmin::text FROM pgstac.items", &[])
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn migrate_installs_pgstac_from_the_wheel_and_is_idempotent() {
    let db = pgstac_db("pgstac_install");
    assert_eq!(version(&db), "0.10.0");
    let dir = migrations("0.10.0");
    let o = ok(&migrate(&["--dir", s(&dir), "--dsn", &db.dsn])).clone();
    assert!(stdout(&o).contains("already at 0.10.0"), "{}", stdout(&o));
    // pgstac's roles and extensions are there, and its queue was drained.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_roles WHERE rolname IN ('pgstac_admin','pgstac_read','pgstac_ingest')"
        ),
        3
    );
    assert_eq!(count(&db, "SELECT count(*) FROM pgstac.query_queue"), 0);
    let o = ok(&run(&["version", "--dir", s(&dir), "--dsn", &db.dsn])).clone();
    assert!(stdout(&o).contains("0.10.0"), "{}", stdout(&o));
}

#[test]
fn upgrade_from_0_9_12_through_the_incremental_file_keeps_items() {
    let db = TestDb::new("pgstac_upgrade");
    let dir = migrations("0.10.0");
    ok(&migrate(&[
        "--dir",
        s(&dir),
        "--to",
        "0.9.12",
        "--dsn",
        &db.dsn,
    ]));
    assert_eq!(version(&db), "0.9.12");
    // A version host does not write is refused, naming it.
    let tmp = tempfile::tempdir().unwrap();
    let c = ndjson(tmp.path(), "c.json", &[collection("c")]);
    fails(
        &load(&db, "collections", &[s(&c)]),
        1,
        &["pgstac 0.9.12", "does not know how to work with", "0.10.0"],
    );
    // Items written by pgstac 0.9.12 itself survive the upgrade.
    let mut client = db.client();
    client
        .batch_execute(&format!(
            "SET search_path TO pgstac, public; SELECT create_collection('{}'::jsonb);",
            collection("c")
        ))
        .unwrap();
    for i in 0..5 {
        let it = item(&format!("i{i}"), "c", f64::from(i), 1.0, i + 1);
        client
            .execute(
                "SELECT pgstac.create_item($1::text::jsonb)",
                &[&it.to_string()],
            )
            .unwrap();
    }
    let o = ok(&migrate(&["--dir", s(&dir), "--dry-run", "--dsn", &db.dsn])).clone();
    assert!(
        stdout(&o).contains("pgstac.0.9.12-0.10.0.sql"),
        "{}",
        stdout(&o)
    );
    ok(&migrate(&["--dir", s(&dir), "--dsn", &db.dsn]));
    assert_eq!(version(&db), "0.10.0");
    assert_eq!(search(&db, "c").len(), 5);
    // And host can write to it now.
    let more: Vec<Value> = (5..8)
        .map(|i| item(&format!("i{i}"), "c", f64::from(i), 1.0, i + 1))
        .collect();
    let f = ndjson(tmp.path(), "more.ndjson", &more);
    ok(&load(&db, "items", &[s(&f)]));
    assert_eq!(search(&db, "c").len(), 8);
}

#[test]
fn the_0_9_12_wheel_installs_its_own_version() {
    let db = TestDb::new("pgstac_0912");
    let dir = migrations("0.9.12");
    ok(&migrate(&["--dir", s(&dir), "--dsn", &db.dsn]));
    assert_eq!(version(&db), "0.9.12");
}

#[test]
fn fixtures_load_with_each_method_and_read_back_through_search() {
    let db = pgstac_db("pgstac_methods");
    let f = |p: &str| fixture(&format!("stac/pgstac-testdata/{p}"));
    ok(&load(
        &db,
        "collections",
        &[s(&f("collections.ndjson")), "--json"],
    ));
    assert_eq!(count(&db, "SELECT count(*) FROM pgstac.collections"), 2);
    let items = f("items.ndjson");
    let expected = originals(&items, None);
    let c = "pgstac-test-collection";

    counts(
        ok(&load(&db, "items", &[s(&items), "--json"])),
        (100, 100, 0, 0, 0, 0),
    );
    assert_search_equals(&db, c, &expected);
    let before = row_versions(&db);

    // insert refuses an existing id, and changes nothing.
    fails(
        &load(&db, "items", &[s(&items)]),
        1,
        &["already exists", "insert_ignore"],
    );
    // insert_ignore skips them all.
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&items), "--method", "insert_ignore", "--json"],
        )),
        (100, 0, 100, 0, 0, 0),
    );
    // upsert of identical items rewrites none.
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&items), "--method", "upsert", "--json"],
        )),
        (100, 0, 0, 100, 0, 0),
    );
    assert_eq!(row_versions(&db), before, "upsert rewrote identical items");
    assert_search_equals(&db, c, &expected);

    // upsert of one changed item rewrites that one.
    let dir = tempfile::tempdir().unwrap();
    let mut changed: Vec<Value> = std::fs::read_to_string(&items)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    changed[3]["properties"]["title"] = json!("changed");
    let changed_id = changed[3]["id"].as_str().unwrap().to_string();
    let p = ndjson(dir.path(), "changed.ndjson", &changed);
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&p), "--method", "upsert", "--json"],
        )),
        (100, 1, 0, 99, 0, 0),
    );
    let after = row_versions(&db);
    let rewritten: Vec<&String> = after
        .iter()
        .filter(|(id, x)| before.get(*id) != Some(*x))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(rewritten, vec![&changed_id]);
    let mut expected2 = expected.clone();
    expected2.insert(changed_id.clone(), strip_nulls(changed[3].clone()));
    assert_search_equals(&db, c, &expected2);

    // delsert rewrites them all, back to the originals.
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&items), "--method", "delsert", "--json"],
        )),
        (100, 100, 0, 0, 0, 0),
    );
    assert!(
        row_versions(&db)
            .iter()
            .all(|(id, x)| before.get(id) != Some(x))
    );
    assert_search_equals(&db, c, &expected);

    // Items with a private member keep it out of the content (pypgstac's layout).
    let private = f("items_private.ndjson");
    ok(&load(&db, "items", &[s(&private), "--method", "upsert"]));
    assert!(
        count(
            &db,
            "SELECT count(*) FROM pgstac.items WHERE private IS NOT NULL"
        ) > 0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pgstac.items WHERE content ? 'private'"
        ),
        0
    );
}

#[test]
fn naip_items_load_through_set_collection_into_pgstac() {
    let db = pgstac_db("pgstac_naip");
    let dir = tempfile::tempdir().unwrap();
    let mut naip: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("stac/planetary-computer/naip-collection.json")).unwrap(),
    )
    .unwrap();
    naip["id"] = json!("naip-copy");
    let c = ndjson(dir.path(), "naip-copy.json", &[naip]);
    ok(&load(&db, "collections", &[s(&c)]));
    // Monthly partitions, as large catalogs use.
    db.client()
        .execute(
            "UPDATE pgstac.collections SET partition_trunc = 'month' WHERE id = 'naip-copy'",
            &[],
        )
        .unwrap();
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
    assert!(
        count(
            &db,
            "SELECT count(*) FROM pgstac.partitions WHERE collection = 'naip-copy'"
        ) > 1
    );
    // What search() returns is what set_collection made of each item.
    let out = host()
        .args([
            "plugin",
            "run",
            s(&wasm("set_collection")),
            "--plugin-arg",
            "collection=naip-copy",
            s(&items),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let p = dir.path().join("rewritten.ndjson");
    std::fs::write(&p, &out.stdout).unwrap();
    let expected = originals(&p, None);
    assert_eq!(expected.len(), 1000);
    assert_search_equals(&db, "naip-copy", &expected);
    // Items are stored dehydrated: the collection's item_assets are not repeated.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pgstac.items i, jsonb_each(i.content->'assets') a \
             WHERE a.value ? 'roles' AND a.value->'roles' = \
                   (SELECT c.content->'item_assets'->a.key->'roles' FROM pgstac.collections c WHERE c.id = i.collection)"
        ),
        0
    );
}

#[test]
fn refusals_name_the_problem_and_change_nothing() {
    let db = pgstac_db("pgstac_refusals");
    let dir = tempfile::tempdir().unwrap();
    let c = ndjson(dir.path(), "c.json", &[collection("c")]);
    ok(&load(&db, "collections", &[s(&c)]));

    // An unknown collection.
    let f = ndjson(
        dir.path(),
        "x.ndjson",
        &[item("a", "c", 1.0, 1.0, 1), item("b", "nope", 1.0, 1.0, 1)],
    );
    fails(
        &load(&db, "items", &[s(&f)]),
        1,
        &["x.ndjson:2", "(b)", "\"nope\" does not exist"],
    );
    assert_eq!(count(&db, "SELECT count(*) FROM pgstac.items"), 0);

    // pgstac stores no item without a geometry; with a reject file the rest load.
    let mut g = item("nogeom", "c", 1.0, 1.0, 1);
    g["geometry"] = Value::Null;
    g.as_object_mut().unwrap().remove("bbox");
    let f = ndjson(dir.path(), "g.ndjson", &[item("a", "c", 1.0, 1.0, 1), g]);
    fails(
        &load(&db, "items", &[s(&f)]),
        1,
        &["g.ndjson:2", "nogeom", "without a geometry"],
    );
    let rejects = dir.path().join("rejects.ndjson");
    let o = load(
        &db,
        "items",
        &[s(&f), "--reject-file", s(&rejects), "--json"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    counts(&o, (2, 1, 0, 0, 0, 1));
    assert!(
        std::fs::read_to_string(&rejects)
            .unwrap()
            .contains("nogeom")
    );

    // Twice the same id in one insert load fails it whole; insert_ignore keeps
    // the first copy, upsert the last.
    let copy = |title: &str| {
        let mut v = item("d1", "c", 2.0, 2.0, 2);
        v["properties"]["title"] = json!(title);
        v
    };
    let dup = ndjson(dir.path(), "dup.ndjson", &[copy("first"), copy("second")]);
    let title = || -> String {
        db.client()
            .query_one(
                "SELECT content->'properties'->>'title' FROM pgstac.items WHERE id = 'd1'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    fails(&load(&db, "items", &[s(&dup)]), 1, &["already exists"]);
    assert_eq!(
        count(&db, "SELECT count(*) FROM pgstac.items WHERE id = 'd1'"),
        0
    );
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&dup), "--method", "insert_ignore", "--json"],
        )),
        (2, 1, 1, 0, 0, 0),
    );
    assert_eq!(title(), "first");
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&dup), "--method", "upsert", "--json"],
        )),
        (2, 1, 1, 0, 0, 0),
    );
    assert_eq!(title(), "second");

    // A collection load with an existing id (insert) fails; upsert of the same is unchanged.
    fails(&load(&db, "collections", &[s(&c)]), 1, &["already exists"]);
    counts(
        ok(&load(
            &db,
            "collections",
            &[s(&c), "--method", "upsert", "--json"],
        )),
        (1, 0, 0, 1, 0, 0),
    );
    assert_eq!(count(&db, "SELECT count(*) FROM pgstac.base_items"), 0);

    // Deferred extents are a queue of host's schema; pgstac has none.
    fails(
        &load(&db, "items", &[s(&f), "--update-extents", "deferred"]),
        1,
        &["pgstac has no such queue", "immediate"],
    );

    // A version host does not know is refused.
    db.client()
        .execute("SELECT pgstac.set_version('0.11.0')", &[])
        .unwrap();
    fails(
        &load(&db, "items", &[s(&f)]),
        1,
        &["pgstac 0.11.0", "does not know how to work with"],
    );
    // --target host on a pgstac-only database says what is missing.
    fails(
        &load(&db, "collections", &[s(&c), "--target", "host"]),
        1,
        &["host migrate"],
    );
}

#[test]
fn items_hydrate_against_the_base_item_they_were_loaded_with() {
    let db = pgstac_db("pgstac_base_items");
    let dir = tempfile::tempdir().unwrap();
    let mut col = collection("c");
    col["item_assets"] = json!({"data": {"type": "image/tiff", "roles": ["data"]}});
    let c1 = ndjson(dir.path(), "c1.json", &[col.clone()]);
    ok(&load(&db, "collections", &[s(&c1)]));
    let with_asset = |id: &str| {
        let mut v = item(id, "c", 1.0, 1.0, 1);
        v["assets"] = json!({"data": {"href": "s3://x", "type": "image/tiff", "roles": ["data"]}});
        v
    };
    let f = ndjson(dir.path(), "a.ndjson", &[with_asset("a")]);
    ok(&load(&db, "items", &[s(&f)]));
    // The collection's item_assets change: a new base item.
    col["item_assets"] = json!({"data": {"type": "image/png", "roles": ["overview"]}});
    let c2 = ndjson(dir.path(), "c2.json", &[col]);
    counts(
        ok(&load(
            &db,
            "collections",
            &[s(&c2), "--method", "upsert", "--json"],
        )),
        (1, 1, 0, 0, 0, 0),
    );
    let f = ndjson(dir.path(), "b.ndjson", &[with_asset("b")]);
    ok(&load(&db, "items", &[s(&f)]));
    let expected: HashMap<String, Value> = ["a", "b"]
        .iter()
        .map(|id| (id.to_string(), strip_nulls(with_asset(id))))
        .collect();
    assert_search_equals(&db, "c", &expected);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pgstac.items WHERE content ? 'pgstac:base_item'"
        ),
        1
    );
}

#[test]
fn concurrent_loads_into_one_pgstac_collection_neither_deadlock_nor_lose_items() {
    let db = pgstac_db("pgstac_concurrent");
    let dir = tempfile::tempdir().unwrap();
    let c = ndjson(dir.path(), "c.json", &[collection("c")]);
    ok(&load(&db, "collections", &[s(&c)]));
    db.client()
        .execute(
            "UPDATE pgstac.collections SET partition_trunc = 'month' WHERE id = 'c'",
            &[],
        )
        .unwrap();
    // Overlapping halves, in opposite orders, over several months.
    let make = |who: &str, range: std::ops::Range<u32>, reverse: bool| {
        let mut ids: Vec<u32> = range.collect();
        if reverse {
            ids.reverse();
        }
        let values: Vec<Value> = ids
            .iter()
            .map(|i| {
                let mut v = item(&format!("i{i:05}"), "c", f64::from(i % 90), 0.0, 1);
                v["properties"]["datetime"] =
                    json!(format!("2020-{:02}-{:02}T00:00:00Z", i % 6 + 1, i % 28 + 1));
                v["properties"]["title"] = json!(who);
                v
            })
            .collect();
        ndjson(dir.path(), &format!("{who}.ndjson"), &values)
    };
    let a = make("a", 0..3000, false);
    let b = make("b", 1500..4500, true);
    for method in ["insert_ignore", "upsert", "delsert", "upsert"] {
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
        let (oa, ob) = (
            pa.wait_with_output().unwrap(),
            pb.wait_with_output().unwrap(),
        );
        for o in [&oa, &ob] {
            assert!(o.status.success(), "{method}: {}", stderr(o));
            assert_eq!(summary(o)["read"], 3000);
        }
        assert_eq!(
            count(&db, "SELECT count(*) FROM pgstac.items"),
            4500,
            "{method}"
        );
        assert_eq!(
            count(&db, "SELECT count(DISTINCT id) FROM pgstac.items"),
            4500,
            "{method}: duplicates"
        );
        assert_eq!(search(&db, "c").len(), 4500, "{method}");
    }
}

/// Items large enough for PostgreSQL to compress, in collection `c`.
fn compressible_items(dir: &Path, name: &str, ids: std::ops::Range<u32>) -> std::path::PathBuf {
    let values: Vec<Value> = ids
        .map(|i| {
            let mut v = item(&format!("i{i}"), "c", 1.0, 2.0, 1);
            v["properties"]["description"] = json!("a long and repetitive text ".repeat(200));
            v
        })
        .collect();
    ndjson(dir, name, &values)
}

/// The TOAST compression of the stored items' content, and how many have it.
fn content_compression(db: &TestDb) -> Vec<(Option<String>, i64)> {
    db.client()
        .query(
            "SELECT pg_column_compression(content)::text, count(*) FROM pgstac.items GROUP BY 1 ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn loads_compress_with_lz4_unless_the_database_chose_its_compression() {
    let db = pgstac_db("pgstac_lz4");
    let dir = tempfile::tempdir().unwrap();
    let c = ndjson(dir.path(), "c.json", &[collection("c")]);
    ok(&load(&db, "collections", &[s(&c)]));
    let has_lz4: bool = db
        .client()
        .query_one(
            "SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
            &[],
        )
        .unwrap()
        .get(0);
    let first = compressible_items(dir.path(), "a.ndjson", 0..20);
    for method in ["insert", "upsert"] {
        ok(&load(&db, "items", &[s(&first), "--method", method]));
    }
    let expected = if has_lz4 { "lz4" } else { "pglz" };
    assert_eq!(content_compression(&db), [(Some(expected.to_string()), 20)]);
    // A choice someone made (here the database's own setting) is kept.
    db.client()
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET default_toast_compression = pglz",
            db.name
        ))
        .unwrap();
    let more = compressible_items(dir.path(), "b.ndjson", 20..30);
    ok(&load(
        &db,
        "items",
        &[s(&more), "--method", "insert_ignore"],
    ));
    let got = content_compression(&db);
    let pglz = got.iter().find(|(c, _)| c.as_deref() == Some("pglz"));
    assert_eq!(
        pglz.map(|p| p.1),
        Some(if has_lz4 { 10 } else { 30 }),
        "{got:?}"
    );
    // The rows read back as loaded.
    assert_eq!(search(&db, "c").len(), 30);
}

/// Rows that arrive in key order skip the merge's duplicate check and sort;
/// an id seen again anywhere later (another batch, another row thread) must
/// still count as a duplicate, and ids whose byte order is not the
/// database's collation order load all the same.
#[test]
fn ids_repeated_far_apart_in_sorted_input_are_still_duplicates() {
    let db = pgstac_db("pgstac_key_order");
    let dir = tempfile::tempdir().unwrap();
    let c = ndjson(dir.path(), "c.json", &[collection("c")]);
    ok(&load(&db, "collections", &[s(&c)]));
    let titled = |id: &str, title: &str| {
        let mut v = item(id, "c", 1.0, 1.0, 1);
        v["properties"]["title"] = json!(title);
        v
    };
    // Increasing ids, then the first id again, 300 records (and batches) later.
    let mut values: Vec<Value> = (0..300)
        .map(|i| titled(&format!("k{i:04}"), "first"))
        .collect();
    values.push(titled("k0000", "last"));
    let f = ndjson(dir.path(), "again.ndjson", &values);
    let title = || -> String {
        db.client()
            .query_one(
                "SELECT content->'properties'->>'title' FROM pgstac.items WHERE id = 'k0000'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let with = |method: &'static str| [s(&f), "--method", method, "--batch-size", "7", "--json"];
    fails(
        &load(&db, "items", &with("insert")),
        1,
        &["is duplicated", "k0000", "twice in this load"],
    );
    assert_eq!(count(&db, "SELECT count(*) FROM pgstac.items"), 0);
    counts(
        ok(&load(&db, "items", &with("insert_ignore"))),
        (301, 300, 1, 0, 0, 0),
    );
    assert_eq!(title(), "first");
    counts(
        ok(&load(&db, "items", &with("upsert"))),
        (301, 1, 1, 299, 0, 0),
    );
    assert_eq!(title(), "last");

    // Byte order ("B" < "a") against the collation's ("a" < "B"), both ways round.
    let ids = ["B-1", "a-1", "a_1", "b-1"];
    let sorted: Vec<Value> = ids.iter().map(|i| titled(i, "x")).collect();
    let reversed: Vec<Value> = ids.iter().rev().map(|i| titled(i, "y")).collect();
    let fs = ndjson(dir.path(), "sorted.ndjson", &sorted);
    let fr = ndjson(dir.path(), "reversed.ndjson", &reversed);
    counts(
        ok(&load(&db, "items", &[s(&fs), "--json"])),
        (4, 4, 0, 0, 0, 0),
    );
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&fr), "--method", "upsert", "--json"],
        )),
        (4, 4, 0, 0, 0, 0),
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pgstac.items WHERE content->'properties'->>'title' = 'y'"
        ),
        4
    );
}

/// `insert` whose first rows are of one collection kept in one partition
/// COPYs them straight into it (`-v` says so); the load stays one
/// transaction: a duplicate id, in the load or already stored, fails it
/// whole naming the id, and so does a bad item after rows were sent. Rows
/// of other collections that follow still load; partition statistics are
/// filled as for a staged load.
#[test]
fn insert_straight_into_a_partition_is_one_transaction() {
    let db = pgstac_db("pgstac_insert_direct");
    let dir = tempfile::tempdir().unwrap();
    let cs = ndjson(
        dir.path(),
        "c.json",
        &[collection("c"), collection("d"), collection("m")],
    );
    ok(&load(&db, "collections", &[s(&cs)]));
    db.client()
        .execute(
            "UPDATE pgstac.collections SET partition_trunc = 'month' WHERE id = 'm'",
            &[],
        )
        .unwrap();
    let items = |coll: &str, ids: std::ops::Range<u32>, day: u32| -> Vec<Value> {
        ids.map(|i| item(&format!("{coll}{i:04}"), coll, 1.0, 2.0, day))
            .collect()
    };
    let rows = || count(&db, "SELECT count(*) FROM pgstac.items");
    let args = |f: &Path| -> Vec<String> {
        [s(f), "--batch-size", "7", "--json", "-v"]
            .map(String::from)
            .to_vec()
    };
    let run_load = |f: &Path| {
        let a = args(f);
        load(
            &db,
            "items",
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };

    // A bad item after 200 rows went to the partition: nothing stays.
    let mut v = items("c", 0..300, 3);
    v[200] = json!({"type": "Feature", "id": "broken", "collection": "c"});
    let f = ndjson(dir.path(), "bad.ndjson", &v);
    let o = run_load(&f);
    fails(&o, 1, &["bad.ndjson:201", "broken"]);
    assert!(
        stderr(&o).contains("straight into the partition"),
        "{}",
        stderr(&o)
    );
    assert_eq!(rows(), 0);

    // The same id twice, 250 rows apart: fails naming it, nothing stays.
    let mut v = items("c", 0..300, 3);
    v[280] = item("c0010", "c", 1.0, 2.0, 3);
    let f = ndjson(dir.path(), "dup.ndjson", &v);
    fails(
        &run_load(&f),
        1,
        &["is duplicated", "c0010", "twice in this load"],
    );
    assert_eq!(rows(), 0);
    // Both failed loads made the collection's partition themselves (it did
    // not exist): it is gone with them.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'pgstac'::regnamespace \
             AND relname LIKE '\\_items\\_%'"
        ),
        0
    );

    // Loads, and the statistics are those of the rows.
    let f = ndjson(dir.path(), "first.ndjson", &items("c", 0..300, 3));
    let o = run_load(&f);
    counts(ok(&o), (300, 300, 0, 0, 0, 0));
    assert!(stderr(&o).contains("a new table attached after COPY"));
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pgstac.partition_stats WHERE collection = 'c' \
             AND dtrange = tstzrange('2020-01-03T00:00:00Z', '2020-01-03T00:00:00Z', '[]') \
             AND last_updated IS NOT NULL"
        ),
        1
    );

    // An id already stored (and the new rows' times outside the
    // partition's narrowed constraint): fails naming it, nothing added.
    let mut v = items("c", 1000..1300, 9);
    v.push(item("c0299", "c", 1.0, 2.0, 9));
    let f = ndjson(dir.path(), "again.ndjson", &v);
    fails(&run_load(&f), 1, &["already exists", "c0299"]);
    assert_eq!(rows(), 300);
    let f = ndjson(dir.path(), "later.ndjson", &items("c", 1000..1300, 9));
    counts(ok(&run_load(&f)), (300, 300, 0, 0, 0, 0));
    assert_eq!(rows(), 600);

    // Rows of other collections after the first ones (one of them
    // partitioned by month) load too, in the same transaction; a duplicate
    // of a row sent to the partition among them fails the whole load.
    let mut v = items("c", 2000..2100, 4);
    v.extend(items("d", 0..100, 5));
    v.extend(items("m", 0..100, 6));
    v.push(item("c2000", "c", 1.0, 2.0, 4));
    let f = ndjson(dir.path(), "mixed-dup.ndjson", &v);
    fails(&run_load(&f), 1, &["already exists", "c2000"]);
    assert_eq!(rows(), 600);
    v.pop();
    let f = ndjson(dir.path(), "mixed.ndjson", &v);
    counts(ok(&run_load(&f)), (300, 300, 0, 0, 0, 0));
    assert_eq!(rows(), 900);
    for (c, n) in [("c", 700), ("d", 100), ("m", 100)] {
        assert_eq!(search(&db, c).len(), n, "{c}");
    }
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pgstac.partition_stats \
             WHERE collection IN ('d', 'm') AND last_updated IS NOT NULL"
        ),
        2
    );

    // A collection partitioned by time goes through the staging table.
    let f = ndjson(dir.path(), "month.ndjson", &items("m", 100..200, 7));
    let o = run_load(&f);
    ok(&o);
    assert!(!stderr(&o).contains("straight into the partition"));
    assert_eq!(rows(), 1000);
}

/// Two loads with the same method into one empty collection at once, ids
/// overlapping by half: exactly one COPYs straight into the partition (it
/// holds the partition until it commits); the other waits, finds the
/// collection no longer empty and merges after it. Both succeed, no id is
/// lost or stored twice, and the overlap holds the copy the method says:
/// the first load's for insert_ignore, the second's for upsert and delsert.
#[test]
fn concurrent_loads_into_one_empty_collection_one_goes_straight_the_other_merges() {
    let db = pgstac_db("pgstac_concurrent_empty");
    let dir = tempfile::tempdir().unwrap();
    let methods = ["insert_ignore", "upsert", "delsert"];
    let cs: Vec<Value> = methods.iter().map(|m| collection(m)).collect();
    let c = ndjson(dir.path(), "c.json", &cs);
    ok(&load(&db, "collections", &[s(&c)]));
    for method in methods {
        let make = |who: &str, range: std::ops::Range<u32>| {
            let values: Vec<Value> = range
                .map(|i| {
                    let mut v = item(&format!("i{i:05}"), method, f64::from(i % 90), 0.0, 1);
                    v["properties"]["title"] = json!(who);
                    v
                })
                .collect();
            ndjson(dir.path(), &format!("{method}-{who}.ndjson"), &values)
        };
        let (a, b) = (make("a", 0..3000), make("b", 1500..4500));
        let spawn = |f: &Path| {
            host()
                .args([
                    "load",
                    "items",
                    s(f),
                    "--method",
                    method,
                    "--json",
                    "-v",
                    "--dsn",
                    &db.dsn,
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (pa, pb) = (spawn(&a), spawn(&b));
        let outputs = [
            pa.wait_with_output().unwrap(),
            pb.wait_with_output().unwrap(),
        ];
        for o in &outputs {
            assert!(o.status.success(), "{method}: {}", stderr(o));
        }
        let straight: Vec<bool> = outputs
            .iter()
            .map(|o| stderr(o).contains("straight into the partition"))
            .collect();
        assert_eq!(
            straight.iter().filter(|s| **s).count(),
            1,
            "{method}: exactly one load goes straight: {straight:?}"
        );
        let (first, second) = if straight[0] { ("a", "b") } else { ("b", "a") };
        let titles = |range: &str| -> Vec<(String, i64)> {
            db.client()
                .query(
                    &format!(
                        "SELECT content->'properties'->>'title', count(*) FROM pgstac.items \
                         WHERE collection = $1 AND id {range} GROUP BY 1 ORDER BY 1"
                    ),
                    &[&method],
                )
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        };
        let overlap = if method == "insert_ignore" {
            first
        } else {
            second
        };
        assert_eq!(titles("< 'i01500'"), [("a".to_string(), 1500)], "{method}");
        assert_eq!(
            titles("BETWEEN 'i01500' AND 'i02999'"),
            [(overlap.to_string(), 1500)],
            "{method}"
        );
        assert_eq!(titles("> 'i02999'"), [("b".to_string(), 1500)], "{method}");
        assert_eq!(
            count(
                &db,
                &format!(
                    "SELECT count(DISTINCT id) FROM pgstac.items WHERE collection = '{method}'"
                )
            ),
            4500,
            "{method}"
        );
        assert_eq!(search(&db, method).len(), 4500, "{method}");
        // The straight load loaded all its rows; the merging one its new
        // ones, and for upsert and delsert also those it replaced.
        let merged = &outputs[usize::from(straight[0])];
        let expected = if method == "insert_ignore" {
            (3000, 1500, 1500, 0, 0, 0)
        } else {
            (3000, 3000, 0, 0, 0, 0)
        };
        counts(merged, expected);
        counts(
            &outputs[usize::from(!straight[0])],
            (3000, 3000, 0, 0, 0, 0),
        );
    }
}
