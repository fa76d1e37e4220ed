//! pgstac as a catalog like host's own: `host delete`, `host update-extents`
//! and `host version` on pgstac, pgstac left consistent (its partitions,
//! their statistics, its `search()`), `host migrate` refusing to install a
//! second catalog beside pgstac unless told, and `auto` never choosing an
//! empty catalog over the one that holds the collections.

#[rustfmt::skip]
mod util;
mod pgstac_util;
mod stac_util;

use pgstac_util::{migrate, migrations, pgstac_db, pgstac_search};
use serde_json::{Value, json};
use stac_util::{collection, count, fails, item, load, ndjson, ok, s, summary};
use util::{TestDb, fixture, run, run_stdin, stdout};

const PG: &str = "pgstac-test-collection";

/// pgstac with its test collection (monthly partitions) and 100 items.
fn loaded(label: &str) -> TestDb {
    let db = pgstac_db(label);
    ok(&load(
        &db,
        "collections",
        &[s(&fixture("stac/pgstac-testdata/collections.ndjson"))],
    ));
    db.client()
        .execute(
            "UPDATE pgstac.collections SET partition_trunc = 'month' WHERE id = $1",
            &[&PG],
        )
        .unwrap();
    ok(&load(
        &db,
        "items",
        &[s(&fixture("stac/pgstac-testdata/items.ndjson"))],
    ));
    db
}

fn ids(db: &TestDb, collection: &str) -> Vec<String> {
    pgstac_search(db, &json!({"collections": [collection], "limit": 10000}))["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every partition's statistics agree with the rows it holds (the ranges
/// of a partition without rows are empty or unset), and every partition
/// pgstac has is in `partition_stats` and the other way round.
fn assert_consistent(db: &TestDb) {
    let mut c = db.client();
    let parts: Vec<(String, Option<String>, Option<String>)> = c
        .query(
            "SELECT partition, dtrange::text, edtrange::text FROM pgstac.partition_stats ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let tables: Vec<String> = c
        .query(
            "SELECT partition FROM pgstac.partitions_view ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        parts.iter().map(|p| p.0.clone()).collect::<Vec<_>>(),
        tables,
        "partition_stats and the partitions"
    );
    for (p, dtrange, edtrange) in parts {
        let (actual_dt, actual_edt): (Option<String>, Option<String>) = {
            let r = c
                .query_one(
                    &format!(
                        "SELECT CASE WHEN count(*) > 0 THEN tstzrange(min(datetime), max(datetime), '[]')::text END, \
                                CASE WHEN count(*) > 0 THEN tstzrange(min(end_datetime), max(end_datetime), '[]')::text END \
                         FROM pgstac.{p}"
                    ),
                    &[],
                )
                .unwrap();
            (r.get(0), r.get(1))
        };
        if actual_dt.is_some() {
            assert_eq!((dtrange, edtrange), (actual_dt, actual_edt), "{p}");
        }
    }
}

#[test]
fn delete_items_leaves_pgstac_consistent() {
    let db = loaded("pgstac_delete_items");
    assert_consistent(&db);
    let o = ok(&run(&[
        "delete",
        "items",
        "--collection",
        PG,
        "--id",
        "pgstac-test-item-0003",
        "--id",
        "pgstac-test-item-0004",
        "--id",
        "no-such-item",
        "--json",
        "--dsn",
        &db.dsn,
    ]))
    .clone();
    let v = summary(&o);
    assert_eq!(v["deleted_items"], 2);
    assert_eq!(v["catalog"], "pgstac");
    assert_eq!(v["not_found"], json!(["no-such-item"]));
    let left = ids(&db, PG);
    assert_eq!(left.len(), 98);
    assert!(!left.contains(&"pgstac-test-item-0003".to_string()));
    let got: Option<String> = db
        .client()
        .query_one(
            "SELECT pgstac.get_item('pgstac-test-item-0003', $1)::text",
            &[&PG],
        )
        .unwrap()
        .get(0);
    assert_eq!(got, None);
    assert_consistent(&db);
    // Oracle: pgstac's own delete_item on the same items leaves search()
    // answering the same, feature by feature.
    let oracle = loaded("pgstac_delete_items_oracle");
    {
        let mut c = oracle.client();
        c.batch_execute("SET search_path TO pgstac, public")
            .unwrap();
        for id in ["pgstac-test-item-0003", "pgstac-test-item-0004"] {
            c.execute("SELECT pgstac.delete_item($1, $2)", &[&id, &PG])
                .unwrap();
        }
    }
    let all = json!({"collections": [PG], "limit": 10000});
    assert_eq!(
        pgstac_search(&db, &all)["features"],
        pgstac_search(&oracle, &all)["features"],
        "after host delete vs after pgstac's delete_item"
    );

    // Every item of a month: its partition stays, empty, and pgstac still works.
    let august: Vec<String> = db
        .client()
        .query(
            "SELECT id FROM pgstac.items WHERE collection = $1 AND datetime < '2011-08-16' ORDER BY id",
            &[&PG],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!august.is_empty());
    let o = run_stdin(
        &[
            "delete",
            "items",
            "--collection",
            PG,
            "--ids-file",
            "-",
            "--dsn",
            &db.dsn,
        ],
        (august.join("\n") + "\n").as_bytes(),
    );
    ok(&o);
    assert_eq!(ids(&db, PG).len(), 98 - august.len());
    assert_consistent(&db);

    // All of them, then back again: pgstac takes the same items anew.
    ok(&run(&[
        "delete",
        "items",
        "--collection",
        PG,
        "--all",
        "--yes",
        "--dsn",
        &db.dsn,
    ]));
    assert!(ids(&db, PG).is_empty());
    assert_consistent(&db);
    ok(&load(
        &db,
        "items",
        &[s(&fixture("stac/pgstac-testdata/items.ndjson"))],
    ));
    assert_eq!(ids(&db, PG).len(), 100);
    assert_consistent(&db);
}

#[test]
fn delete_collection_drops_what_pgstac_keeps_for_it() {
    let db = loaded("pgstac_delete_collection");
    let key: i64 = db
        .client()
        .query_one("SELECT key FROM pgstac.collections WHERE id = $1", &[&PG])
        .unwrap()
        .get(0);
    // Without --yes on a pipe: refused, nothing deleted.
    fails(
        &run(&["delete", "collection", PG, "--dsn", &db.dsn]),
        1,
        &["without confirmation", "--yes"],
    );
    assert_eq!(ids(&db, PG).len(), 100);
    let o = ok(&run(&[
        "delete",
        "collection",
        PG,
        "--yes",
        "--dsn",
        &db.dsn,
    ]))
    .clone();
    assert_eq!(
        stdout(&o).trim(),
        format!("deleted collection {PG:?} and its 100 items")
    );
    for (what, sql) in [
        (
            "collection",
            "SELECT count(*) FROM pgstac.collections WHERE id = $1",
        ),
        (
            "items",
            "SELECT count(*) FROM pgstac.items WHERE collection = $1",
        ),
        (
            "statistics",
            "SELECT count(*) FROM pgstac.partition_stats WHERE collection = $1",
        ),
        (
            "base items",
            "SELECT count(*) FROM pgstac.base_items WHERE collection = $1",
        ),
    ] {
        let n: i64 = db.client().query_one(sql, &[&PG]).unwrap().get(0);
        assert_eq!(n, 0, "{what} left behind");
    }
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM pg_class WHERE relname LIKE '_items_{key}%'")
        ),
        0,
        "partitions left behind"
    );
    assert!(ids(&db, PG).is_empty());
    assert_consistent(&db);
    fails(
        &run(&["delete", "collection", PG, "--yes", "--dsn", &db.dsn]),
        1,
        &[&format!("collection \"{PG}\" does not exist")],
    );
    // And it can come back.
    ok(&load(
        &db,
        "collections",
        &[
            s(&fixture("stac/pgstac-testdata/collections.ndjson")),
            "--method",
            "insert_ignore",
        ],
    ));
    ok(&load(
        &db,
        "items",
        &[s(&fixture("stac/pgstac-testdata/items.ndjson"))],
    ));
    assert_eq!(ids(&db, PG).len(), 100);
}

#[test]
fn deletes_are_refused_where_pgstac_cannot_take_them() {
    let db = loaded("pgstac_delete_refused");
    db.client()
        .execute(
            "UPDATE pgstac.pgstac_settings SET value = 'true' WHERE name = 'readonly'",
            &[],
        )
        .unwrap();
    fails(
        &run(&[
            "delete",
            "items",
            "--collection",
            PG,
            "--id",
            "pgstac-test-item-0003",
            "--dsn",
            &db.dsn,
        ]),
        1,
        &["pgstac is read-only", "readonly setting"],
    );
    fails(
        &run(&["delete", "collection", PG, "--yes", "--dsn", &db.dsn]),
        1,
        &["pgstac is read-only"],
    );
    assert_eq!(count(&db, "SELECT count(*) FROM pgstac.items"), 100);
    fails(
        &run(&[
            "delete",
            "items",
            "--collection",
            "nope",
            "--id",
            "x",
            "--dsn",
            &db.dsn,
        ]),
        1,
        &["collection \"nope\" does not exist"],
    );
}

/// A collection's spatial extent as numbers.
fn bbox(extent: &Value) -> Vec<f64> {
    extent["spatial"]["bbox"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// The collection's extent as pgstac keeps it.
fn extent(db: &TestDb, id: &str) -> Value {
    let text: String = db
        .client()
        .query_one(
            "SELECT (content->'extent')::text FROM pgstac.collections WHERE id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    serde_json::from_str(&text).unwrap()
}

#[test]
fn extents_and_partition_statistics_follow_the_items() {
    let db = pgstac_db("pgstac_extents");
    let dir = tempfile::tempdir().unwrap();
    let c = ndjson(dir.path(), "c.json", &[collection("a"), collection("b")]);
    ok(&load(&db, "collections", &[s(&c)]));
    let items: Vec<Value> = (0..10)
        .map(|i| {
            item(
                &format!("i{i}"),
                if i < 5 { "a" } else { "b" },
                f64::from(i),
                -f64::from(i),
                i + 1,
            )
        })
        .collect();
    let f = ndjson(dir.path(), "items.ndjson", &items);
    ok(&load(&db, "items", &[s(&f)]));
    // As pypgstac leaves them after a load: ranges and last_updated filled.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pgstac.partition_stats \
             WHERE dtrange IS NULL OR edtrange IS NULL OR last_updated IS NULL"
        ),
        0
    );
    let before = extent(&db, "a");
    ok(&run(&[
        "update-extents",
        "--collection",
        "a",
        "--dsn",
        &db.dsn,
    ]));
    let a = extent(&db, "a");
    assert_eq!(bbox(&a), [0.0, -4.0, 4.0, 0.0]);
    assert_eq!(
        a["temporal"]["interval"],
        json!([["2020-01-01T00:00:00+00:00", "2020-01-05T00:00:00+00:00"]])
    );
    assert_ne!(a, before);
    assert_eq!(extent(&db, "b"), before, "only the collection named");
    let o = ok(&run(&[
        "update-extents",
        "--all",
        "--json",
        "--dsn",
        &db.dsn,
    ]))
    .clone();
    assert_eq!(summary(&o)["collections"], 2);
    assert_eq!(bbox(&extent(&db, "b")), [5.0, -9.0, 9.0, -5.0]);
    // Oracle: pgstac's own update_collection_extents() finds nothing to change.
    let contents = |db: &TestDb| -> Vec<(String, String)> {
        db.client()
            .query(
                "SELECT id, content::text FROM pgstac.collections ORDER BY id",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    let by_host = contents(&db);
    {
        let mut c = db.client();
        c.batch_execute(
            "SET search_path TO pgstac, public; SELECT pgstac.update_collection_extents()",
        )
        .unwrap();
    }
    assert_eq!(
        contents(&db),
        by_host,
        "pgstac's update_collection_extents()"
    );
    fails(
        &run(&["update-extents", "--collection", "nope", "--dsn", &db.dsn]),
        1,
        &["collection \"nope\" does not exist"],
    );

    // A load can update them itself.
    let more = ndjson(dir.path(), "more.ndjson", &[item("j", "a", 20.0, 20.0, 28)]);
    ok(&load(
        &db,
        "items",
        &[s(&more), "--update-extents", "immediate"],
    ));
    assert_eq!(bbox(&extent(&db, "a")), [0.0, -4.0, 20.0, 20.0]);

    // With pgstac's queue on, the statistics wait in it; update-extents runs them.
    db.client()
        .batch_execute("UPDATE pgstac.pgstac_settings SET value = 'true' WHERE name = 'use_queue'")
        .unwrap();
    let late = ndjson(dir.path(), "late.ndjson", &[item("k", "b", 30.0, 30.0, 28)]);
    ok(&load(&db, "items", &[s(&late)]));
    assert!(count(&db, "SELECT count(*) FROM pgstac.query_queue") > 0);
    let o = ok(&run(&["update-extents", "--dsn", &db.dsn])).clone();
    assert!(
        stdout(&o).contains("statement(s) pgstac had queued"),
        "{}",
        stdout(&o)
    );
    assert_eq!(count(&db, "SELECT count(*) FROM pgstac.query_queue"), 0);
}

#[test]
fn version_reports_the_catalog_and_what_this_binary_knows() {
    let db = pgstac_db("pgstac_version");
    assert_eq!(
        stdout(ok(&run(&["version", "--dsn", &db.dsn]))).trim(),
        "0.10.0"
    );
    let v: Value =
        serde_json::from_str(&stdout(ok(&run(&["version", "--json", "--dsn", &db.dsn])))).unwrap();
    assert_eq!(
        v,
        json!({"catalog": "pgstac", "version": "0.10.0", "supported": true})
    );
    assert_eq!(
        stdout(ok(&run(&["version", "--binary", "--catalog", "pgstac"]))).trim(),
        "0.10.0"
    );
    // pypgstac's initversion: the oldest version its files start from.
    let dir = migrations("0.10.0");
    assert_eq!(
        stdout(ok(&run(&[
            "version",
            "--binary",
            "--oldest",
            "--dir",
            s(&dir)
        ])))
        .trim(),
        "0.1.9"
    );
    fails(
        &run(&["version", "--catalog", "host", "--dsn", &db.dsn]),
        1,
        &["holds no host's schema", "host migrate"],
    );
}

#[test]
fn migrate_keeps_one_catalog_unless_told_and_auto_follows_the_collections() {
    let db = pgstac_db("pgstac_one_catalog");
    let dir = tempfile::tempdir().unwrap();
    // Following the old hint would have installed a second, empty catalog.
    fails(
        &migrate(&["--dsn", &db.dsn]),
        1,
        &["runs pgstac 0.10.0", "--dir", "--alongside-pgstac"],
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'host'"
        ),
        0
    );
    // Both empty: auto cannot know.
    let o = migrate(&["--alongside-pgstac", "--dsn", &db.dsn]);
    ok(&o);
    let c = ndjson(dir.path(), "c.json", &[collection("c")]);
    fails(
        &load(&db, "collections", &[s(&c)]),
        1,
        &[
            "holds both host's schema (0 collections) and pgstac (0 collections)",
            "--catalog",
        ],
    );
    ok(&load(&db, "collections", &[s(&c), "--catalog", "pgstac"]));
    // Now auto takes pgstac, which holds the collection, for every command.
    let f = ndjson(dir.path(), "i.ndjson", &[item("a", "c", 1.0, 1.0, 1)]);
    let o = ok(&load(&db, "items", &[s(&f), "--json"])).clone();
    assert_eq!(summary(&o)["catalog"], "pgstac");
    assert_eq!(count(&db, "SELECT count(*) FROM pgstac.items"), 1);
    let v: Value =
        serde_json::from_str(&stdout(ok(&run(&["version", "--json", "--dsn", &db.dsn])))).unwrap();
    assert_eq!(
        v["catalog"], "pgstac",
        "version chooses as the other commands do"
    );
    let page: Value =
        serde_json::from_slice(&ok(&run(&["search", "{}", "--dsn", &db.dsn])).stdout).unwrap();
    assert_eq!(page["numberReturned"], 1);
    ok(&run(&[
        "delete",
        "items",
        "--collection",
        "c",
        "--id",
        "a",
        "--dsn",
        &db.dsn,
    ]));
    assert_eq!(count(&db, "SELECT count(*) FROM pgstac.items"), 0);
    // host's schema stays reachable by name.
    let page: Value = serde_json::from_slice(
        &ok(&run(&[
            "search",
            "{}",
            "--catalog",
            "host",
            "--dsn",
            &db.dsn,
        ]))
        .stdout,
    )
    .unwrap();
    assert_eq!(page["numberReturned"], 0);
    // Upgrading host's schema once it is there needs nothing more; -q prints nothing.
    let o = ok(&run(&["-q", "migrate", "--dsn", &db.dsn])).clone();
    assert_eq!(stdout(&o), "");
    let o = ok(&run(&[
        "-q",
        "migrate",
        "--dir",
        s(&migrations("0.10.0")),
        "--dsn",
        &db.dsn,
    ]))
    .clone();
    assert_eq!(stdout(&o), "");
}

#[test]
fn a_fresh_database_shows_the_plan_and_quiet_shows_nothing() {
    let db = TestDb::new("migrate_quiet");
    let o = ok(&run(&["-q", "migrate", "--dsn", &db.dsn])).clone();
    assert_eq!(stdout(&o), "", "-q printed the plan");
    let db = TestDb::new("migrate_loud");
    let o = ok(&run(&["migrate", "--dsn", &db.dsn])).clone();
    assert!(stdout(&o).contains("install 0.2.0"), "{}", stdout(&o));
}

#[test]
fn a_collection_deleted_during_a_load_waits_for_it_and_leaves_nothing() {
    use std::io::Write;
    use std::process::Stdio;
    let db = pgstac_db("pgstac_delete_during_load");
    let dir = tempfile::tempdir().unwrap();
    let c = ndjson(dir.path(), "c.json", &[collection("c")]);
    ok(&load(&db, "collections", &[s(&c)]));
    // Items on stdin: the load is streaming them (its COPY open) when the
    // collection goes.
    let mut child = util::host()
        .args(["load", "items", "-", "--no-progress", "--dsn", &db.dsn])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..600 {
        writeln!(
            stdin,
            "{}",
            item(&format!("i{i}"), "c", 1.0, 1.0, 1 + i % 28)
        )
        .unwrap();
    }
    stdin.flush().unwrap();
    let copying = || {
        count(
            &db,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND query LIKE 'COPY %' AND pid <> pg_backend_pid()",
        ) > 0
    };
    let started = std::time::Instant::now();
    while !copying() {
        assert!(
            started.elapsed().as_secs() < 60,
            "the load never began its COPY"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // `insert` COPYs straight into the collection's partition, so the
    // delete waits for the load's transaction rather than pulling the
    // collection from under it: the load is whole, then the delete is.
    let dsn = db.dsn.clone();
    let delete =
        std::thread::spawn(move || run(&["delete", "collection", "c", "--yes", "--dsn", &dsn]));
    let waiting = || {
        count(
            &db,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
        ) > 0
    };
    let started = std::time::Instant::now();
    while !waiting() {
        assert!(
            started.elapsed().as_secs() < 60,
            "the delete never waited for the load"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    ok(&o);
    ok(&delete.join().unwrap());
    assert_eq!(count(&db, "SELECT count(*) FROM pgstac.items"), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM pgstac.partition_stats"), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM pgstac.collections"), 0);
}

/// Loads into a new collection by roles that may not act as pgstac's owner
/// the way the load-built partition needs (its table is made `SET LOCAL
/// ROLE` to the owner of pgstac's functions, then COPYed into by the load's
/// own role): each load either works (every item stored, the partition
/// attached as pgstac's own) or fails naming its role, leaving nothing
/// half-written: no stray table in pgstac's schema, no partition, the
/// collection as it was.
#[test]
fn loads_by_roles_without_the_owners_privileges_work_or_fail_cleanly() {
    let db = pgstac_db("pgstac_load_roles");
    let dir = tempfile::tempdir().unwrap();
    let pid = std::process::id();
    let owner: String = db
        .client()
        .query_one(
            "SELECT proowner::regrole::text FROM pg_proc \
             WHERE oid = 'pgstac.check_partition(text, tstzrange, tstzrange)'::regprocedure",
            &[],
        )
        .unwrap()
        .get(0);
    // (role, how it is made, whether it may load at all). Roles are the
    // cluster's: named by this process, dropped at the end.
    let cases: Vec<(String, String, bool)> = vec![
        // A member of the owner role without INHERIT: it may SET ROLE to it
        // (so the load builds the partition) but has none of its rights.
        (
            format!("t_noinherit_{pid}"),
            format!("NOINHERIT; GRANT {owner} TO {{r}}"),
            false,
        ),
        // The owner's rights come only through a role that does not
        // inherit them; pgstac_ingest's through one that does: the load may
        // SET ROLE to the owner, and write as pgstac_ingest.
        (
            format!("t_via_noinherit_{pid}"),
            format!(
                "INHERIT; CREATE ROLE {{r}}_mid NOINHERIT; GRANT {owner} TO {{r}}_mid; \
                 GRANT {{r}}_mid TO {{r}}; GRANT pgstac_ingest TO {{r}}"
            ),
            true,
        ),
        // No membership in the owner role: pgstac's check_partition makes
        // the partition, as for pypgstac.
        (
            format!("t_ingest_{pid}"),
            "INHERIT; GRANT pgstac_ingest TO {r}".to_string(),
            true,
        ),
        // No membership at all.
        (format!("t_nobody_{pid}"), "INHERIT".to_string(), false),
    ];
    let mut admin = db.client();
    let drop_roles = |admin: &mut postgres::Client| {
        for (r, ..) in &cases {
            for sql in [
                format!("DROP OWNED BY {r}"),
                format!("DROP ROLE IF EXISTS {r}"),
                format!("DROP ROLE IF EXISTS {r}_mid"),
            ] {
                let _ = admin.batch_execute(&sql);
            }
        }
    };
    drop_roles(&mut admin);
    for (k, (r, how, may)) in cases.iter().enumerate() {
        let how = how.replace("{r}", r);
        admin
            .batch_execute(&format!("CREATE ROLE {r} LOGIN PASSWORD 'pw' {how}"))
            .unwrap();
        let c = format!("roles-{k}");
        let cfile = ndjson(dir.path(), &format!("c{k}.ndjson"), &[collection(&c)]);
        ok(&load(&db, "collections", &[s(&cfile)]));
        let before: String = admin
            .query_one(
                "SELECT row(c.*)::text FROM pgstac.collections c WHERE id = $1",
                &[&c],
            )
            .unwrap()
            .get(0);
        let tables = |admin: &mut postgres::Client| -> Vec<String> {
            admin
                .query(
                    "SELECT relname::text FROM pg_class \
                     WHERE relnamespace = 'pgstac'::regnamespace AND relkind IN ('r', 'p') \
                     ORDER BY 1",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect()
        };
        let tables_before = tables(&mut admin);
        let items: Vec<Value> = (0..5)
            .map(|i| item(&format!("i{i}"), &c, 1.0, 1.0, i + 1))
            .collect();
        let f = ndjson(dir.path(), &format!("i{k}.ndjson"), &items);
        let (_, rest) = db.dsn.split_once("://").unwrap();
        let (_, at) = rest.split_once('@').unwrap();
        let dsn = format!("postgresql://{r}:pw@{at}");
        let o = run(&["load", "items", s(&f), "--json", "-v", "--dsn", &dsn]);
        let err = util::stderr(&o);
        if *may {
            assert_eq!(o.status.code(), Some(0), "{r}: {err}");
            assert_eq!(
                count(
                    &db,
                    &format!("SELECT count(*) FROM pgstac.items WHERE collection = '{c}'")
                ),
                5,
                "{r}"
            );
            assert_consistent(&db);
        } else {
            assert_eq!(o.status.code(), Some(1), "{r}: {err}");
            assert!(
                err.contains(r.as_str()),
                "{r}: the error does not name the role: {err}"
            );
            assert_eq!(
                tables(&mut admin),
                tables_before,
                "{r}: a stray table or partition"
            );
            assert_eq!(
                count(
                    &db,
                    &format!(
                        "SELECT count(*) FROM pgstac.partition_stats WHERE collection = '{c}'"
                    )
                ),
                0,
                "{r}: a partition was recorded"
            );
            let after: String = admin
                .query_one(
                    "SELECT row(c.*)::text FROM pgstac.collections c WHERE id = $1",
                    &[&c],
                )
                .unwrap()
                .get(0);
            assert_eq!(after, before, "{r}: the collection changed");
        }
    }
    drop_roles(&mut admin);
}
