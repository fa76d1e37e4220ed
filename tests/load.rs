//! `host load`: what each method does with existing and repeated ids, the
//! default collection, and collection extents, against real databases.

#[rustfmt::skip]
mod util;
mod stac_util;

use serde_json::{Value, json};
use stac_util::{
    add_collection, collection, count, counts, fails, item, load, migrated, ndjson, ok, s,
};
use util::{TestDb, stdout};

fn items_in(db: &TestDb, collection: &str) -> i64 {
    db.client()
        .query_one(
            "SELECT count(*) FROM host.items WHERE collection = $1",
            &[&collection],
        )
        .unwrap()
        .get(0)
}

fn content(db: &TestDb, collection: &str, id: &str) -> Value {
    let text: String = db
        .client()
        .query_one(
            "SELECT content::text FROM host.items WHERE collection = $1 AND id = $2",
            &[&collection, &id],
        )
        .unwrap()
        .get(0);
    serde_json::from_str(&text).unwrap()
}

/// The row version of an item: changes whenever the row is rewritten.
fn xmin(db: &TestDb, collection: &str, id: &str) -> String {
    db.client()
        .query_one(
            "SELECT xmin::text FROM host.items WHERE collection = $1 AND id = $2",
            &[&collection, &id],
        )
        .unwrap()
        .get(0)
}

fn titled(id: &str, title: &str) -> Value {
    let mut v = item(id, "c", 1.0, 2.0, 1);
    v["properties"]["title"] = json!(title);
    v
}

#[test]
fn item_methods_have_their_semantics() {
    let db = migrated("load_methods");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let f = ndjson(
        dir.path(),
        "v1.ndjson",
        &[titled("a", "1"), titled("b", "1")],
    );
    counts(
        ok(&load(&db, "items", &[s(&f), "--json"])),
        (2, 2, 0, 0, 0, 0),
    );

    // insert: an existing id fails the whole load, which changes nothing.
    let f = ndjson(
        dir.path(),
        "ins.ndjson",
        &[titled("new", "1"), titled("a", "2")],
    );
    fails(
        &load(&db, "items", &[s(&f)]),
        1,
        &[
            "(collection, id)=(c, a) already exists",
            "insert_ignore, upsert or delsert",
            "no items were loaded",
        ],
    );
    assert_eq!(items_in(&db, "c"), 2);

    // insert_ignore: existing ids are skipped, new ones inserted.
    let f = ndjson(
        dir.path(),
        "ign.ndjson",
        &[titled("a", "2"), titled("c", "1")],
    );
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&f), "--method", "insert_ignore", "--json"],
        )),
        (2, 1, 1, 0, 0, 0),
    );
    assert_eq!(content(&db, "c", "a")["properties"]["title"], "1");
    assert_eq!(items_in(&db, "c"), 3);

    // upsert: changed items replaced, identical ones not even rewritten.
    let (xa, xb) = (xmin(&db, "c", "a"), xmin(&db, "c", "b"));
    let f = ndjson(
        dir.path(),
        "ups.ndjson",
        &[titled("a", "1"), titled("b", "2"), titled("d", "1")],
    );
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&f), "--method", "upsert", "--json"],
        )),
        (3, 2, 0, 1, 0, 0),
    );
    assert_eq!(xmin(&db, "c", "a"), xa, "an identical item was rewritten");
    assert_ne!(xmin(&db, "c", "b"), xb);
    assert_eq!(content(&db, "c", "b")["properties"]["title"], "2");
    assert_eq!(items_in(&db, "c"), 4);

    // delsert: existing ids deleted and inserted again, even when identical.
    let xa = xmin(&db, "c", "a");
    let f = ndjson(
        dir.path(),
        "del.ndjson",
        &[titled("a", "1"), titled("e", "1")],
    );
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&f), "--method", "delsert", "--json"],
        )),
        (2, 2, 0, 0, 0, 0),
    );
    assert_ne!(xmin(&db, "c", "a"), xa);
    assert_eq!(items_in(&db, "c"), 5);
    let geometry_ok: bool = db
        .client()
        .query_one(
            "SELECT ST_Equals(geometry, 'SRID=4326;POINT(1 2)') AND start_datetime = '2020-01-01Z' \
             FROM host.items WHERE collection = 'c' AND id = 'e'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(geometry_ok);
}

#[test]
fn the_same_id_twice_in_one_load() {
    let db = migrated("load_dups");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let f = ndjson(
        dir.path(),
        "dups.ndjson",
        &[titled("x", "first"), titled("x", "last")],
    );
    // insert: as if one after the other, the second fails.
    fails(&load(&db, "items", &[s(&f)]), 1, &["(c, x) already exists"]);
    assert_eq!(items_in(&db, "c"), 0);
    // insert_ignore: the first stays, the second is skipped.
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&f), "--method", "insert_ignore", "--json"],
        )),
        (2, 1, 1, 0, 0, 0),
    );
    assert_eq!(content(&db, "c", "x")["properties"]["title"], "first");
    // upsert and delsert: the last one wins.
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&f), "--method", "upsert", "--json"],
        )),
        (2, 1, 1, 0, 0, 0),
    );
    assert_eq!(content(&db, "c", "x")["properties"]["title"], "last");
    let f = ndjson(
        dir.path(),
        "dups2.ndjson",
        &[titled("x", "again"), titled("x", "final")],
    );
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&f), "--method", "delsert", "--json"],
        )),
        (2, 1, 1, 0, 0, 0),
    );
    assert_eq!(content(&db, "c", "x")["properties"]["title"], "final");
    assert_eq!(items_in(&db, "c"), 1);
}

#[test]
fn collection_methods_have_their_semantics() {
    let db = migrated("load_collection_methods");
    let dir = tempfile::tempdir().unwrap();
    let with_title = |id: &str, t: &str| {
        let mut c = collection(id);
        c["title"] = json!(t);
        c
    };
    let f = ndjson(
        dir.path(),
        "c1.ndjson",
        &[with_title("a", "1"), with_title("b", "1")],
    );
    counts(
        ok(&load(&db, "collections", &[s(&f), "--json"])),
        (2, 2, 0, 0, 0, 0),
    );
    // Each collection got its partition with the load.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'host.items'::regclass"
        ),
        2
    );
    fails(
        &load(&db, "collections", &[s(&f)]),
        1,
        &["(id)=(a) already exists"],
    );
    let f = ndjson(
        dir.path(),
        "c2.ndjson",
        &[
            with_title("a", "1"),
            with_title("b", "2"),
            with_title("c", "1"),
        ],
    );
    counts(
        ok(&load(
            &db,
            "collections",
            &[s(&f), "--method", "insert_ignore", "--json"],
        )),
        (3, 1, 2, 0, 0, 0),
    );
    counts(
        ok(&load(
            &db,
            "collections",
            &[s(&f), "--method", "upsert", "--json"],
        )),
        (3, 1, 0, 2, 0, 0),
    );
    // delsert replaces a collection's content and keeps its items.
    ok(&load(
        &db,
        "items",
        &[s(&ndjson(
            dir.path(),
            "i.ndjson",
            &[item("i", "a", 0.0, 0.0, 1)],
        ))],
    ));
    let f = ndjson(dir.path(), "c3.ndjson", &[with_title("a", "3")]);
    counts(
        ok(&load(
            &db,
            "collections",
            &[s(&f), "--method", "delsert", "--json"],
        )),
        (1, 1, 0, 0, 0, 0),
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM host.items WHERE collection = 'a'"
        ),
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM host.collections WHERE content->>'title' = '3'"
        ),
        1
    );
}

#[test]
fn default_collection_fills_in_and_guards() {
    let db = migrated("load_default_collection");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    add_collection(&db, dir.path(), "other");
    let mut orphan = item("orphan", "c", 0.0, 0.0, 1);
    orphan.as_object_mut().unwrap().remove("collection");
    let f = ndjson(dir.path(), "o.ndjson", &[orphan.clone()]);
    counts(
        ok(&load(&db, "items", &[s(&f), "--collection", "c", "--json"])),
        (1, 1, 0, 0, 0, 0),
    );
    let mut expected = orphan;
    expected["collection"] = json!("c");
    assert_eq!(content(&db, "c", "orphan"), expected);
    let f = ndjson(dir.path(), "x.ndjson", &[item("x", "other", 0.0, 0.0, 1)]);
    fails(
        &load(&db, "items", &[s(&f), "--collection", "c"]),
        1,
        &["belongs to collection \"other\", but this load is for \"c\""],
    );
    fails(
        &load(&db, "items", &[s(&f), "--collection", "nope"]),
        1,
        &["collection \"nope\" (--collection) does not exist"],
    );
}

#[test]
fn extents_follow_loads_immediately_deferred_or_not_at_all() {
    let db = migrated("load_extents");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let extent = |db: &TestDb| -> Value {
        let t: String = db
            .client()
            .query_one(
                "SELECT content->>'extent' FROM host.collections WHERE id = 'c'",
                &[],
            )
            .unwrap()
            .get(0);
        serde_json::from_str(&t).unwrap()
    };
    let before = extent(&db);
    let f = ndjson(
        dir.path(),
        "a.ndjson",
        &[item("a", "c", 1.0, 2.0, 3), item("b", "c", 5.0, -1.0, 9)],
    );
    // The default setting is off.
    ok(&load(&db, "items", &[s(&f)]));
    assert_eq!(extent(&db), before);
    // Deferred: queued, then drained by update-extents.
    let g = ndjson(dir.path(), "b.ndjson", &[item("z", "c", -3.0, 0.0, 20)]);
    db.client()
        .execute(
            "UPDATE host.settings SET value = 'deferred' WHERE key = 'update_extents'",
            &[],
        )
        .unwrap();
    ok(&load(&db, "items", &[s(&g)]));
    assert_eq!(extent(&db), before);
    assert_eq!(count(&db, "SELECT count(*) FROM host.extent_queue"), 1);
    let o = ok(&util::run(&["update-extents", "--dsn", &db.dsn])).clone();
    assert!(
        stdout(&o).contains("updated the extents of 1 queued collection"),
        "{}",
        stdout(&o)
    );
    assert_eq!(count(&db, "SELECT count(*) FROM host.extent_queue"), 0);
    let e = extent(&db);
    assert_eq!(e["spatial"]["bbox"], json!([[-3, -1, 5, 2]]));
    assert_eq!(
        e["temporal"]["interval"],
        json!([["2020-01-03T00:00:00Z", "2020-01-20T00:00:00Z"]])
    );
    // Immediate, chosen for one load: the extent is updated before commit.
    let h = ndjson(dir.path(), "c.ndjson", &[item("far", "c", 100.0, 50.0, 28)]);
    ok(&load(
        &db,
        "items",
        &[s(&h), "--update-extents", "immediate"],
    ));
    assert_eq!(extent(&db)["spatial"]["bbox"], json!([[-3, -1, 100, 50]]));
    assert_eq!(count(&db, "SELECT count(*) FROM host.extent_queue"), 0);
    // And on request, for named collections.
    db.client()
        .execute("DELETE FROM host.items WHERE id = 'far'", &[])
        .unwrap();
    let o = ok(&util::run(&[
        "update-extents",
        "--collection",
        "c",
        "--dsn",
        &db.dsn,
    ]))
    .clone();
    assert!(
        stdout(&o).contains("updated the extents of 1 collection"),
        "{}",
        stdout(&o)
    );
    assert_eq!(extent(&db)["spatial"]["bbox"], json!([[-3, -1, 5, 2]]));
}

/// Thousands of new collections in one load: each gets its partition of
/// `host.items` (in a short transaction of its own), and their items load.
/// Made inside the load's transaction, 3,000 partitions ran the server out
/// of lock slots ("out of shared memory", max_locks_per_transaction) and
/// nothing was loaded.
#[test]
fn thousands_of_new_collections_load_with_their_partitions() {
    let db = migrated("load_many_collections");
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..3000).map(|i| format!("c{i:04}")).collect();
    let records: Vec<Value> = ids.iter().map(|id| collection(id)).collect();
    let f = ndjson(dir.path(), "collections.ndjson", &records);
    let o = load(&db, "collections", &[s(&f), "--json"]);
    counts(ok(&o), (3000, 3000, 0, 0, 0, 0));
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM host.collections c \
             WHERE to_regclass(format('host.%I', host.partition_name(c.id))) IS NOT NULL"
        ),
        3000
    );
    // A load killed after its commit leaves collections without partitions:
    // the next items load makes them.
    db.client()
        .execute("SELECT host.drop_partition('c2999')", &[])
        .unwrap();
    let items: Vec<Value> = ["c0000", "c2999"]
        .iter()
        .map(|c| item(&format!("{c}-i"), c, 1.0, 1.0, 1))
        .collect();
    let f = ndjson(dir.path(), "items.ndjson", &items);
    counts(
        ok(&load(&db, "items", &[s(&f), "--json"])),
        (2, 2, 0, 0, 0, 0),
    );
    assert_eq!(items_in(&db, "c2999"), 1);
}
