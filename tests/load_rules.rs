//! `host load` checks: every validation rule, the reject file, plugin
//! rejections and failures, and a database without the schema.

#[rustfmt::skip]
mod util;
mod stac_util;

use serde_json::{Value, json};
use stac_util::{
    add_collection, collection, count, counts, fails, item, load, migrated, ndjson, ok, s, summary,
};
use util::{TestDb, stderr, wasm};

fn items_in(db: &TestDb, collection: &str) -> i64 {
    db.client()
        .query_one(
            "SELECT count(*) FROM host.items WHERE collection = $1",
            &[&collection],
        )
        .unwrap()
        .get(0)
}

/// Every validation rule: the load fails, names the file, line and item,
/// gives the reason, and loads nothing (not even the valid item before it).
#[test]
fn every_validation_rule_fails_the_load_with_a_reason() {
    let db = migrated("load_rules");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    type Edit = fn(&mut Value);
    let cases: &[(&str, Edit, &str)] = &[
        (
            "type",
            |v| v["type"] = json!("Collection"),
            "\"type\" is \"Collection\", not \"Feature\"",
        ),
        (
            "no-type",
            |v| {
                v.as_object_mut().unwrap().remove("type");
            },
            "no \"type\"",
        ),
        (
            "no-id",
            |v| {
                v.as_object_mut().unwrap().remove("id");
            },
            "no \"id\"",
        ),
        ("empty-id", |v| v["id"] = json!(""), "\"id\" is empty"),
        (
            "geometry-missing",
            |v| {
                v.as_object_mut().unwrap().remove("geometry");
            },
            "no \"geometry\"",
        ),
        (
            "geometry-bad",
            |v| v["geometry"] = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}),
            "needs at least 4",
        ),
        (
            "bbox-missing",
            |v| {
                v.as_object_mut().unwrap().remove("bbox");
            },
            "no \"bbox\"",
        ),
        (
            "bbox-elsewhere",
            |v| v["bbox"] = json!([10, 10, 11, 11]),
            "does not overlap the geometry",
        ),
        (
            "bbox-swapped",
            |v| v["bbox"] = json!([2, 1, 2, 1]),
            "does not overlap the geometry",
        ),
        (
            "bbox-short",
            |v| v["bbox"] = json!([1, 2, 1]),
            "must have 4 or 6",
        ),
        (
            "bbox-null-geom",
            |v| v["geometry"] = json!(null),
            "\"bbox\" given but \"geometry\" is null",
        ),
        (
            "no-properties",
            |v| {
                v.as_object_mut().unwrap().remove("properties");
            },
            "no \"properties\"",
        ),
        (
            "no-datetime",
            |v| v["properties"]["datetime"] = json!(null),
            "start_datetime and end_datetime are both required",
        ),
        (
            "start-after-end",
            |v| v["properties"] = json!({"datetime": null, "start_datetime": "2021-01-01T00:00:00Z", "end_datetime": "2020-01-01T00:00:00Z"}),
            "start_datetime is after end_datetime",
        ),
        (
            "not-rfc3339",
            |v| v["properties"]["datetime"] = json!("2020-01-01 00:00:00"),
            "not an RFC 3339 date-time",
        ),
        (
            "no-links",
            |v| {
                v.as_object_mut().unwrap().remove("links");
            },
            "no \"links\"",
        ),
        (
            "no-assets",
            |v| {
                v.as_object_mut().unwrap().remove("assets");
            },
            "no \"assets\"",
        ),
        (
            "unknown-collection",
            |v| v["collection"] = json!("nope"),
            "collection \"nope\" does not exist",
        ),
        (
            "no-collection",
            |v| {
                v.as_object_mut().unwrap().remove("collection");
            },
            "no \"collection\"",
        ),
    ];
    for (name, edit, reason) in cases {
        let mut bad = item("bad-one", "c", 1.0, 2.0, 1);
        edit(&mut bad);
        let f = ndjson(
            dir.path(),
            &format!("{name}.ndjson"),
            &[item("good", "c", 1.0, 2.0, 1), bad],
        );
        let o = load(&db, "items", &[s(&f)]);
        let id = if *name == "no-id" || *name == "empty-id" {
            ""
        } else {
            " (bad-one)"
        };
        let at = format!("{name}.ndjson:2: invalid item{id}: ");
        fails(&o, 1, &[&at, reason, "no items were loaded"]);
        assert_eq!(items_in(&db, "c"), 0, "{name}: something was loaded");
    }
    // Broken JSON names the line too.
    let f = dir.path().join("broken.ndjson");
    std::fs::write(&f, "{\"id\": \"x\",}\n").unwrap();
    fails(
        &load(&db, "items", &[s(&f)]),
        1,
        &["broken.ndjson:1: invalid item: invalid JSON"],
    );
    // In an array, the element is named.
    let f = dir.path().join("array.json");
    let bad = json!({"type": "Feature", "id": "z"});
    std::fs::write(&f, json!([item("ok", "c", 0.0, 0.0, 1), bad]).to_string()).unwrap();
    fails(
        &load(&db, "items", &[s(&f)]),
        1,
        &["array.json:1 (element 1): invalid item (z)"],
    );
}

#[test]
fn reject_file_takes_invalid_and_plugin_rejected_items_and_the_rest_loads() {
    let db = migrated("load_rejects");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let mut no_links = item("no-links", "c", 0.0, 0.0, 1);
    no_links.as_object_mut().unwrap().remove("links");
    let mut numeric_id = item("x", "c", 0.0, 0.0, 1);
    numeric_id["id"] = json!(5);
    let f = ndjson(
        dir.path(),
        "mixed.ndjson",
        &[
            item("a", "c", 0.0, 0.0, 1),
            no_links,
            numeric_id,
            item("far", "c", 50.0, 50.0, 1),
            item("b", "c", 1.0, 1.0, 1),
        ],
    );
    let rejects = dir.path().join("rejects.ndjson");
    let o = load(
        &db,
        "items",
        &[
            s(&f),
            "--reject-file",
            s(&rejects),
            "--json",
            "--plugin",
            s(&wasm("set_collection")),
            "--plugin-arg",
            "collection=c",
            "--plugin",
            s(&wasm("where_filter")),
            "--plugin-arg",
            "bbox=-10,-10,10,10",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    counts(&o, (5, 2, 0, 0, 1, 2));
    assert!(
        stderr(&o).contains("2 rejected items written to"),
        "{}",
        stderr(&o)
    );
    assert_eq!(items_in(&db, "c"), 2);
    let lines: Vec<Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let validation = lines.iter().find(|l| l["stage"] == "validation").unwrap();
    assert_eq!(validation["line"], 2);
    assert_eq!(validation["id"], "no-links");
    assert!(
        validation["source"]
            .as_str()
            .unwrap()
            .ends_with("mixed.ndjson")
    );
    assert!(
        validation["reason"]
            .as_str()
            .unwrap()
            .contains("no \"links\"")
    );
    assert_eq!(validation["record"]["id"], "no-links");
    let plugin = lines
        .iter()
        .find(|l| l["stage"] == "plugin set_collection")
        .unwrap();
    assert_eq!(plugin["line"], 3);
    assert!(
        plugin["reason"]
            .as_str()
            .unwrap()
            .contains("no `id` string"),
        "{plugin}"
    );
    assert_eq!(plugin["record"]["id"], 5);

    // Without a reject file, a plugin's rejection fails the load.
    let o = load(
        &db,
        "items",
        &[
            s(&f),
            "--plugin",
            s(&wasm("set_collection")),
            "--plugin-arg",
            "collection=c",
        ],
    );
    fails(
        &o,
        1,
        &["mixed.ndjson:2: invalid item (no-links): no \"links\""],
    );
    let g = ndjson(
        dir.path(),
        "plugin-rejects.ndjson",
        &[json!({"id": 5, "type": "Feature"})],
    );
    let o = load(
        &db,
        "items",
        &[
            s(&g),
            "--plugin",
            s(&wasm("set_collection")),
            "--plugin-arg",
            "collection=c",
        ],
    );
    fails(
        &o,
        1,
        &["plugin-rejects.ndjson:1: item rejected by plugin set_collection"],
    );
}

#[test]
fn a_plugin_failure_fails_the_load_or_goes_to_the_reject_file() {
    let db = migrated("load_plugin_failure");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let f = ndjson(
        dir.path(),
        "i.ndjson",
        &[item("a", "c", 0.0, 0.0, 1), item("boom", "c", 0.0, 0.0, 1)],
    );
    let hostile = wasm("hostile");
    let args = |extra: &[&str]| {
        let mut v = vec![
            s(&f).to_string(),
            "--plugin".into(),
            s(&hostile).to_string(),
            "--plugin-arg".into(),
            "mode=panic-on-id:boom".into(),
            "--batch-size".into(),
            "1".into(),
        ];
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let a = args(&[]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = load(&db, "items", &a);
    fails(&o, 1, &["hostile", "no items were loaded"]);
    assert_eq!(items_in(&db, "c"), 0);
    let rejects = dir.path().join("r.ndjson");
    let a = args(&["--reject-file", s(&rejects), "--json"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let o = load(&db, "items", &a);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    counts(&o, (2, 1, 0, 0, 0, 1));
    assert_eq!(summary(&o)["plugin_failures"], 1);
    let text = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        text.contains("\"id\":\"boom\"") && text.contains("plugin hostile"),
        "{text}"
    );
}

/// An item rewriter that returns what jsonb refuses (or not JSON at all)
/// for one item: the chain refuses the batch naming the plugin (it checks
/// what rewriters return, and the loader trusts that check: it does not
/// scan those items again), and nothing reaches the database.
#[test]
fn a_lying_rewriter_is_blamed_by_name_and_nothing_is_written() {
    let db = migrated("load_lying_plugin");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let f = ndjson(
        dir.path(),
        "i.ndjson",
        &[
            item("a", "c", 0.0, 0.0, 1),
            item("b", "c", 0.0, 0.0, 1),
            item("c", "c", 0.0, 0.0, 1),
        ],
    );
    let hostile = wasm("hostile");
    for (lie, why) in [
        ("nul", "\\u0000 escape"),
        ("surrogate", "lone surrogate"),
        ("truncated", "expected ',' or '}'"),
        ("two-objects", "trailing characters"),
    ] {
        let mode = format!("mode=lie:{lie}");
        let rejects = dir.path().join(format!("{lie}.ndjson"));
        let base = [
            s(&f),
            "--plugin",
            s(&hostile),
            "--plugin-arg",
            &mode,
            "--batch-size",
            "2",
        ];
        let o = load(&db, "items", &base);
        fails(
            &o,
            1,
            &[
                "plugin hostile: returned invalid JSON for record 2 of batch 1 (2 records)",
                why,
                "no items were loaded",
            ],
        );
        assert_eq!(items_in(&db, "c"), 0, "{lie}");

        // With a reject file: the lying batch (a, b) is blamed on the plugin,
        // the honest one (c) loads.
        let mut a = base.to_vec();
        a.extend(["--reject-file", s(&rejects), "--json"]);
        let o = load(&db, "items", &a);
        assert_eq!(o.status.code(), Some(4), "{lie}: {}", stderr(&o));
        counts(&o, (3, 1, 0, 0, 0, 2));
        assert_eq!(summary(&o)["plugin_failures"], 1, "{lie}");
        let text = std::fs::read_to_string(&rejects).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{lie}: {text}");
        assert!(
            text.contains("plugin hostile") && text.contains(why),
            "{lie}: {text}"
        );
        let ids: Vec<String> = db
            .client()
            .query("SELECT id FROM host.items ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(ids, ["c"], "{lie}");
        db.client().execute("DELETE FROM host.items", &[]).unwrap();
    }
}

#[test]
fn loads_refuse_a_database_without_the_schema() {
    let db = TestDb::new("load_unmigrated");
    let dir = tempfile::tempdir().unwrap();
    let f = ndjson(dir.path(), "c.ndjson", &[collection("c")]);
    fails(
        &load(&db, "collections", &[s(&f)]),
        1,
        &["holds no STAC catalog", "host migrate"],
    );
}

#[test]
fn collection_rules_are_checked_too() {
    let db = migrated("load_collection_rules");
    let dir = tempfile::tempdir().unwrap();
    let mut bad = collection("x");
    bad.as_object_mut().unwrap().remove("license");
    let f = ndjson(dir.path(), "c.ndjson", &[collection("good"), bad]);
    fails(
        &load(&db, "collections", &[s(&f)]),
        1,
        &["c.ndjson:2: invalid collection (x): no \"license\""],
    );
    assert_eq!(count(&db, "SELECT count(*) FROM host.collections"), 0);
    let cat = util::fixture("stac/stac-spec-examples/catalog.json");
    fails(
        &load(&db, "collections", &[s(&cat)]),
        1,
        &["\"type\" is \"Catalog\", not \"Collection\""],
    );
}

#[test]
fn a_bbox_must_overlap_its_geometry_or_with_strict_bbox_contain_it() {
    let db = migrated("load_strict_bbox");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    // A square footprint whose bbox covers only its lower half, as in
    // stac-spec's proj-example.
    let mut cut = item("cut", "c", 0.0, 0.0, 1);
    cut["geometry"] =
        json!({"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]});
    cut["bbox"] = json!([0, 0, 2, 1]);
    let f = ndjson(dir.path(), "cut.ndjson", &[cut]);
    fails(
        &load(&db, "items", &[s(&f), "--strict-bbox"]),
        1,
        &[
            "cut.ndjson:1: invalid item (cut): bbox [0, 0, 2, 1] does not contain the geometry (which spans [0, 0, 2, 2])",
        ],
    );
    counts(
        ok(&load(&db, "items", &[s(&f), "--json"])),
        (1, 1, 0, 0, 0, 0),
    );
}

/// One rule for times: the loader reads an item's times as PostgreSQL reads
/// the same text (a space for the `T`, fractions rounded to the microsecond
/// as PostgreSQL rounds them, ties included), so the columns equal
/// PostgreSQL's own reading of the item.
#[test]
fn times_are_read_as_postgresql_reads_them() {
    let db = migrated("load_times");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let times = [
        "2020-01-01 00:00:00Z",
        "2020-01-01T00:00:00.0000005Z",
        "2020-01-01t00:00:00.0000015z",
        "2020-01-01T00:00:00.0000025Z",
        "2020-01-01T00:00:00.9999995Z",
        "2020-01-01T23:59:59.9999999Z",
        "2016-12-31T23:59:60Z",
        "2020-06-01T05:30:00.1234565+05:30",
        "2020-06-01T00:00:00.12345650000001-00:30",
    ];
    let items: Vec<Value> = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut v = item(&format!("t{i}"), "c", 1.0, 1.0, 1);
            v["properties"]["datetime"] = json!(t);
            v
        })
        .collect();
    let f = ndjson(dir.path(), "times.ndjson", &items);
    ok(&load(&db, "items", &[s(&f)]));
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM host.items \
             WHERE datetime = (content->'properties'->>'datetime')::timestamptz \
               AND start_datetime = datetime AND end_datetime = datetime"
        ),
        times.len() as i64
    );
}

/// A database error is said once: the load's summary of it (message,
/// SQLSTATE, detail, hint), not again as each layer that carried it.
#[test]
fn a_database_error_is_said_once() {
    let db = migrated("load_error_once");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    db.client().batch_execute(
        "CREATE FUNCTION public.boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'boom %', NEW.id USING DETAIL = 'the detail', HINT = 'the hint'; END $$; \
         CREATE TRIGGER boom BEFORE INSERT ON host.items FOR EACH ROW EXECUTE FUNCTION public.boom()",
    )
    .unwrap();
    let file = ndjson(dir.path(), "i.ndjson", &[item("i0", "c", 1.0, 1.0, 1)]);
    for method in ["insert", "upsert"] {
        let o = load(&db, "items", &[s(&file), "--method", method]);
        assert_eq!(o.status.code(), Some(1), "{method}");
        let err = stderr(&o);
        let said = "load: boom i0 (SQLSTATE P0001); the detail; hint: the hint";
        assert!(
            err.starts_with("error: no items were loaded into "),
            "{err}"
        );
        assert!(err.trim_end().ends_with(said), "{method}: {err}");
        assert_eq!(err.matches("boom").count(), 1, "{method}: {err}");
        assert_eq!(items_in(&db, "c"), 0, "{method}");
    }
}
