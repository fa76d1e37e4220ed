//! `host migrate`, `host version` and `host pgready` against real databases.

#[rustfmt::skip]
mod util;
mod stac_util;

use std::process::Stdio;

use stac_util::{fails, migrated, ok};
use util::{TestDb, fixture, host, run, stderr, stdout};

fn migrate(db: &TestDb, args: &[&str]) -> std::process::Output {
    let mut all = vec!["migrate", "--dsn", &db.dsn];
    all.extend_from_slice(args);
    run(&all)
}

fn version(db: &TestDb, args: &[&str]) -> String {
    let mut all = vec!["version", "--dsn", &db.dsn];
    all.extend_from_slice(args);
    stdout(ok(&run(&all))).trim().to_string()
}

/// Tables, columns, indexes, constraints, functions and settings of a schema:
/// equal text means an equal schema.
fn schema_signature(db: &TestDb, schema: &str) -> String {
    db.client()
        .query_one(
            "SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
               SELECT format('col %s.%s %s %s %s', table_name, column_name, udt_name, is_nullable, column_default)
                 FROM information_schema.columns WHERE table_schema = $1
               UNION ALL SELECT 'idx ' || indexdef FROM pg_indexes WHERE schemaname = $1
               UNION ALL SELECT format('con %s %s', conrelid::regclass, pg_get_constraintdef(oid))
                 FROM pg_constraint WHERE connamespace = $1::regnamespace
               UNION ALL SELECT format('fn %s %s', p.oid::regprocedure, md5(pg_get_functiondef(p.oid)))
                 FROM pg_proc p WHERE pronamespace = $1::regnamespace
               UNION ALL SELECT format('att %s.%s %s %s', attrelid::regclass, attname, attcompression, attstorage)
                 FROM pg_attribute WHERE attnum > 0 AND attrelid IN
                   (SELECT oid FROM pg_class WHERE relnamespace = $1::regnamespace)
               UNION ALL SELECT format('cls %s %s', relname, relkind) FROM pg_class
                 WHERE relnamespace = $1::regnamespace
             ) s(x)",
            &[&schema],
        )
        .unwrap()
        .get::<_, Option<String>>(0)
        .unwrap_or_default()
}

#[test]
fn fresh_install_then_rerun_is_a_no_op() {
    let db = TestDb::new("migrate_fresh");
    let o = ok(&migrate(&db, &[])).clone();
    let out = stdout(&o);
    assert!(out.contains("host: nothing -> 0.2.0, 1 step"), "{out}");
    assert!(out.contains("host--0.2.0.sql  base install 0.2.0"), "{out}");
    assert!(out.contains("migrated to 0.2.0"), "{out}");
    assert_eq!(version(&db, &[]), "0.2.0");
    let mut c = db.client();
    let row = c
        .query_one(
            "SELECT version, sha256, kind, file FROM host.migrations",
            &[],
        )
        .unwrap();
    let sha = hex_sha256(&std::fs::read(util::root().join("migrations/host--0.2.0.sql")).unwrap());
    assert_eq!(row.get::<_, String>(0), "0.2.0");
    assert_eq!(row.get::<_, String>(1), sha);
    assert_eq!(row.get::<_, String>(2), "base");
    assert_eq!(row.get::<_, String>(3), "host--0.2.0.sql");

    let o = ok(&migrate(&db, &[])).clone();
    assert_eq!(stdout(&o).trim(), "host: already at 0.2.0, nothing to do");
    let n: i64 = c
        .query_one("SELECT count(*) FROM host.migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn dry_run_writes_nothing_and_json_reports_the_plan() {
    let db = TestDb::new("migrate_dry");
    let o = ok(&migrate(&db, &["--dry-run", "--json"])).clone();
    let report: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["applied"], false);
    assert_eq!(report["from"], serde_json::Value::Null);
    assert_eq!(report["steps"][0]["file"], "host--0.2.0.sql");
    let n: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'host'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "a dry run created the schema");
    let o = run(&["version", "--dsn", &db.dsn]);
    fails(&o, 1, &["holds no STAC catalog", "host migrate"]);
}

#[test]
fn to_a_version_then_upgrade_by_increment_gives_the_same_schema_as_the_base() {
    let stepped = TestDb::new("migrate_stepped");
    let o = ok(&migrate(&stepped, &["--to", "0.1.0"])).clone();
    assert!(stdout(&o).contains("host--0.1.0.sql"), "{}", stdout(&o));
    assert_eq!(version(&stepped, &[]), "0.1.0");
    let o = ok(&migrate(&stepped, &[])).clone();
    assert!(
        stdout(&o).contains(
            "host: 0.1.0 -> 0.2.0, 1 step\n  host--0.1.0--0.2.0.sql  incremental 0.1.0 -> 0.2.0"
        ),
        "{}",
        stdout(&o)
    );
    assert_eq!(version(&stepped, &[]), "0.2.0");

    let direct = migrated("migrate_direct");
    let a = schema_signature(&stepped, "host");
    let b = schema_signature(&direct, "host");
    assert!(a.contains("fn ensure_partition(text)"), "{a}");
    assert!(a.contains("att items.content l"), "lz4 content: {a}");
    assert_eq!(a, b, "base 0.2.0 and 0.1.0 + increment differ");
}

#[test]
fn a_set_of_our_own_takes_shortcuts_and_multi_step_paths() {
    let dir = fixture("migrations-demo");
    let dir = dir.to_str().unwrap();
    // From nothing to 2.0.0: the newer base plus one step beats the older base plus the shortcut.
    let db = TestDb::new("migrate_demo_fresh");
    let o = ok(&migrate(&db, &["--dir", dir])).clone();
    let out = stdout(&o);
    assert!(out.contains("demo: nothing -> 2.0.0, 2 steps"), "{out}");
    assert!(
        out.find("demo--1.2.0.sql").unwrap() < out.find("demo--1.2.0--2.0.0.sql").unwrap(),
        "{out}"
    );
    let full = schema_signature(&db, "demo");
    let demo_version = |db: &TestDb| version(db, &["--dir", dir]);
    assert_eq!(demo_version(&db), "2.0.0");

    // 1.0.0 -> 2.0.0: the shortcut, one step.
    let db = TestDb::new("migrate_demo_shortcut");
    ok(&migrate(&db, &["--dir", dir, "--to", "1.0.0"]));
    let o = ok(&migrate(&db, &["--dir", dir])).clone();
    let out = stdout(&o);
    assert!(
        out.contains("demo: 1.0.0 -> 2.0.0, 1 step\n  demo--1.0.0--2.0.0.sql"),
        "{out}"
    );
    assert_eq!(demo_version(&db), "2.0.0");

    // 1.1.0 -> 2.0.0: two increments.
    let db2 = TestDb::new("migrate_demo_steps");
    let o = ok(&migrate(&db2, &["--dir", dir, "--to", "1.1.0"])).clone();
    assert!(
        stdout(&o).contains("demo: nothing -> 1.1.0, 2 steps"),
        "{}",
        stdout(&o)
    );
    let o = ok(&migrate(&db2, &["--dir", dir])).clone();
    let out = stdout(&o);
    assert!(out.contains("demo: 1.1.0 -> 2.0.0, 2 steps"), "{out}");
    assert!(
        out.find("demo--1.1.0--1.2.0.sql").unwrap() < out.find("demo--1.2.0--2.0.0.sql").unwrap(),
        "{out}"
    );
    let n: i64 = db2
        .client()
        .query_one("SELECT count(*) FROM demo.migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 4, "one ledger row per version reached");
    // Every path gives the same tables (the ledgers' rows differ, not their shape).
    assert_eq!(schema_signature(&db, "demo"), full);
    assert_eq!(schema_signature(&db2, "demo"), full);
    // --prefix picks the set explicitly; the built-in set is untouched.
    ok(&migrate(&db2, &["--dir", dir, "--prefix", "demo"]));
    fails(
        &run(&["version", "--dsn", &db2.dsn]),
        1,
        &["holds no STAC catalog"],
    );
}

#[test]
fn pypgstac_style_names_work_too() {
    let db = TestDb::new("migrate_dotted");
    let dir = fixture("migrations-dotted");
    let dir = dir.to_str().unwrap();
    ok(&migrate(&db, &["--dir", dir, "--to", "0.9.0"]));
    let o = ok(&migrate(&db, &["--dir", dir])).clone();
    assert!(
        stdout(&o).contains("dotted: 0.9.0 -> 0.10.0, 1 step\n  dotted.0.9.0-0.10.0.sql"),
        "{}",
        stdout(&o)
    );
    assert_eq!(version(&db, &["--dir", dir]), "0.10.0");
    assert_eq!(
        stdout(ok(&run(&["version", "--binary", "--dir", dir]))).trim(),
        "0.10.0"
    );
}

#[test]
fn refuses_when_there_is_no_path_or_no_such_version() {
    let db = TestDb::new("migrate_gap");
    let dir = fixture("migrations-gap");
    let dir = dir.to_str().unwrap();
    ok(&migrate(&db, &["--dir", dir, "--to", "1.0.0"]));
    fails(
        &migrate(&db, &["--dir", dir]),
        1,
        &["no chain of gap migration files leads from 1.0.0 to 1.2.0"],
    );
    fails(
        &migrate(&db, &["--dir", dir, "--to", "3.0.0"]),
        1,
        &[
            "no gap migration file produces version 3.0.0",
            "known versions: 1.0.0, 1.2.0",
        ],
    );
    let fresh = TestDb::new("migrate_downgrade");
    ok(&migrate(&fresh, &[]));
    fails(
        &migrate(&fresh, &["--to", "0.1.0"]),
        1,
        &["no chain of host migration files leads from 0.2.0 to 0.1.0"],
    );
    assert_eq!(version(&fresh, &[]), "0.2.0");
}

#[test]
fn refuses_a_database_newer_than_the_binary() {
    let db = migrated("migrate_newer");
    db.client()
        .execute(
            "INSERT INTO host.migrations (version, sha256, kind) VALUES ('9.0.0', 'x', 'base')",
            &[],
        )
        .unwrap();
    assert_eq!(version(&db, &[]), "9.0.0");
    fails(
        &migrate(&db, &[]),
        1,
        &["at version 9.0.0, newer than 0.2.0", "use a newer host"],
    );
    // Loads refuse it too: the binary does not know that schema.
    let o = stac_util::load(
        &db,
        "collections",
        &[fixture("stac/stac-spec-examples/collection.json")
            .to_str()
            .unwrap()],
    );
    fails(&o, 1, &["version 9.0.0", "this binary needs 0.2.0"]);
}

#[test]
fn refuses_when_an_applied_file_changed() {
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture("migrations-demo")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
    }
    let dir = tmp.path().to_str().unwrap();
    let db = TestDb::new("migrate_changed");
    ok(&migrate(&db, &["--dir", dir, "--to", "1.0.0"]));
    let f = tmp.path().join("demo--1.0.0.sql");
    let mut text = std::fs::read_to_string(&f).unwrap();
    text.push_str("-- an innocent edit\n");
    std::fs::write(&f, text).unwrap();
    fails(
        &migrate(&db, &["--dir", dir]),
        1,
        &[
            "demo--1.0.0.sql was changed after it was applied",
            "version 1.0.0",
        ],
    );
    // Even a dry run refuses, and nothing moved.
    fails(
        &migrate(&db, &["--dir", dir, "--dry-run"]),
        1,
        &["was changed"],
    );
    assert_eq!(version(&db, &["--dir", dir]), "1.0.0");
}

#[test]
fn a_failing_file_rolls_everything_back_and_releases_the_lock() {
    let db = TestDb::new("migrate_broken");
    let dir = fixture("migrations-broken");
    let dir = dir.to_str().unwrap();
    let o = migrate(&db, &["--dir", dir]);
    fails(
        &o,
        1,
        &[
            "broken--1.0.0--1.1.0.sql line 3",
            "type \"no_such_type\" does not exist",
            "nothing was changed",
        ],
    );
    let n: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'broken'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the base file of the same run was rolled back too");
    // The advisory lock went with the transaction: the next run does not wait.
    let started = std::time::Instant::now();
    ok(&migrate(&db, &["--dir", dir, "--to", "1.0.0"]));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn concurrent_runs_do_not_interleave() {
    let db = TestDb::new("migrate_concurrent");
    let children: Vec<_> = (0..4)
        .map(|_| {
            host()
                .args(["migrate", "--dsn", &db.dsn])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut applied = 0;
    for o in &outputs {
        ok(o);
        let out = stdout(o);
        if out.contains("migrated to 0.2.0") {
            applied += 1;
        } else {
            assert!(out.contains("already at 0.2.0"), "{out}");
        }
    }
    assert_eq!(applied, 1, "exactly one run applies the plan");
    let n: i64 = db
        .client()
        .query_one("SELECT count(*) FROM host.migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[test]
fn version_binary_needs_no_database() {
    let o = ok(&run(&[
        "version",
        "--binary",
        "--dsn",
        "postgresql://nobody@127.0.0.1:1/none",
    ]))
    .clone();
    assert_eq!(stdout(&o).trim(), "0.2.0");
}

#[test]
fn connects_with_pg_variables() {
    let db = migrated("migrate_pgvars");
    let url = url::Url::parse(&db.dsn).unwrap();
    let o = host()
        .args(["version"])
        .env("PGHOST", url.host_str().unwrap())
        .env("PGPORT", url.port().unwrap().to_string())
        .env("PGUSER", url.username())
        .env("PGPASSWORD", url.password().unwrap())
        .env("PGDATABASE", &db.name)
        .output()
        .unwrap();
    assert_eq!(stdout(ok(&o)).trim(), "0.2.0");
}

#[test]
fn pgready_waits_and_times_out_without_showing_the_password() {
    let db = TestDb::new("pgready");
    let o = ok(&run(&["pgready", "--dsn", &db.dsn])).clone();
    assert!(
        stdout(&o).contains("accepting connections"),
        "{}",
        stdout(&o)
    );
    assert!(
        !stdout(&o).contains(":host@"),
        "password shown: {}",
        stdout(&o)
    );
    let started = std::time::Instant::now();
    let o = run(&[
        "pgready",
        "--timeout",
        "1s",
        "--dsn",
        "postgresql://someone:sekrit@127.0.0.1:1/none",
    ]);
    fails(&o, 1, &["not ready after"]);
    assert!(!stderr(&o).contains("sekrit"), "{}", stderr(&o));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
