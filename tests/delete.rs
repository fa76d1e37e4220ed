//! `host delete items` and `host delete collection` against a real database.

mod stac_util;
mod stacdb;
mod util;

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;
use util::{TestDb, run, run_stdin, stderr, stdout};

/// pgstac's 100 items and the stac-spec examples (one id in three collections).
fn loaded(label: &str) -> (TestDb, postgres::Client) {
    let db = TestDb::new(label);
    let c = stacdb::setup(&db);
    stacdb::insert_collections(
        &db,
        &stacdb::ndjson("stac/pgstac-testdata/collections.ndjson"),
    );
    let mut items = stacdb::pgstac_items();
    items.extend(stacdb::spec_items());
    stacdb::insert_items(&db, &items);
    (db, c)
}

fn count(c: &mut postgres::Client, collection: &str) -> i64 {
    c.query_one(
        "SELECT count(*) FROM host.items WHERE collection = $1",
        &[&collection],
    )
    .unwrap()
    .get(0)
}

/// Whether the collection's partition of `host.items` exists.
fn has_partition(c: &mut postgres::Client, collection: &str) -> bool {
    c.query_one(
        "SELECT to_regclass(format('host.%I', host.partition_name($1))) IS NOT NULL",
        &[&collection],
    )
    .unwrap()
    .get(0)
}

fn collection_exists(c: &mut postgres::Client, id: &str) -> bool {
    c.query_opt("SELECT 1 FROM host.collections WHERE id = $1", &[&id])
        .unwrap()
        .is_some()
}

const PG: &str = "pgstac-test-collection";

#[test]
fn delete_items_by_id_and_from_a_file() {
    let (db, mut c) = loaded("delete_items");
    let o = run(&[
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
        "--dsn",
        &db.dsn,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        "deleted 2 items from collection \"pgstac-test-collection\"; 1 of the 3 requested ids not found: no-such-item"
    );
    assert_eq!(count(&mut c, PG), 98);

    // From a file (blank lines and repeats ignored), and stdin, with --json.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ids.txt");
    std::fs::write(&file, "pgstac-test-item-0005\n\n  pgstac-test-item-0006  \npgstac-test-item-0005\npgstac-test-item-0003\n").unwrap();
    let o = run_stdin(
        &[
            "delete",
            "items",
            "--collection",
            PG,
            "--ids-file",
            file.to_str().unwrap(),
            "--ids-file",
            "-",
            "--json",
            "--dsn",
            &db.dsn,
        ],
        b"pgstac-test-item-0007\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({"collection": PG, "catalog": "host", "deleted_items": 3, "requested": 4, "not_found": ["pgstac-test-item-0003"]})
    );
    assert_eq!(count(&mut c, PG), 95);

    // An id is only deleted from the collection named.
    let o = run(&[
        "delete",
        "items",
        "--collection",
        "spec-core",
        "--id",
        "20201211_223832_CS2",
        "--dsn",
        &db.dsn,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(count(&mut c, "spec-core"), 0);
    assert_eq!(count(&mut c, "spec-simple"), 1);
    assert_eq!(count(&mut c, "spec-extended"), 1);
    assert!(
        collection_exists(&mut c, "spec-core"),
        "deleting items keeps the collection"
    );
}

#[test]
fn delete_every_item_needs_confirmation() {
    let (db, mut c) = loaded("delete_all_items");
    let o = run(&[
        "delete",
        "items",
        "--collection",
        PG,
        "--all",
        "--dsn",
        &db.dsn,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("refusing to delete every item of collection \"pgstac-test-collection\" (100 items) without confirmation: stdin is not a terminal; pass --yes"),
        "{}",
        stderr(&o)
    );
    assert_eq!(count(&mut c, PG), 100);
    let o = run(&[
        "delete",
        "items",
        "--collection",
        PG,
        "--all",
        "--yes",
        "--json",
        "--dsn",
        &db.dsn,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({"collection": PG, "catalog": "host", "deleted_items": 100})
    );
    assert_eq!(count(&mut c, PG), 0);
    assert!(collection_exists(&mut c, PG));
}

#[test]
fn delete_collection_with_its_items() {
    let (db, mut c) = loaded("delete_collection");
    // Without a terminal and without --yes: refused, nothing changes.
    let o = run(&["delete", "collection", PG, "--dsn", &db.dsn]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("refusing to delete collection \"pgstac-test-collection\" and its 100 items without confirmation: stdin is not a terminal; pass --yes"),
        "{}",
        stderr(&o)
    );
    assert_eq!(count(&mut c, PG), 100);
    assert!(has_partition(&mut c, PG));

    let o = run(&["delete", "collection", PG, "--yes", "--dsn", &db.dsn]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).trim(),
        "deleted collection \"pgstac-test-collection\" and its 100 items"
    );
    assert_eq!(count(&mut c, PG), 0);
    assert!(!collection_exists(&mut c, PG));
    assert!(
        !has_partition(&mut c, PG),
        "no empty partition is left behind"
    );
    // Other collections are untouched; a collection without items goes too.
    assert!(collection_exists(&mut c, "pgstac-test-collection2"));
    assert_eq!(count(&mut c, "spec-core"), 1);
    let o = run(&[
        "delete",
        "collection",
        "pgstac-test-collection2",
        "-y",
        "--json",
        "--dsn",
        &db.dsn,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        summary,
        serde_json::json!({"collection": "pgstac-test-collection2", "catalog": "host", "deleted_collection": true, "deleted_items": 0})
    );

    // The search sees none of it.
    let o = run(&[
        "search",
        r#"{"collections": ["pgstac-test-collection"]}"#,
        "--dsn",
        &db.dsn,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(page["numberReturned"], 0);
}

#[test]
fn unknown_collections_are_clear_errors() {
    let (db, _c) = loaded("delete_unknown");
    for args in [
        vec!["delete", "collection", "nope", "--yes"],
        vec!["delete", "collection", "nope"],
        vec!["delete", "items", "--collection", "nope", "--id", "x"],
        vec!["delete", "items", "--collection", "nope", "--all"],
    ] {
        let o = run(&[args.as_slice(), &["--dsn", &db.dsn]].concat());
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&o).trim(),
            "error: collection \"nope\" does not exist",
            "{args:?}"
        );
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn a_failed_delete_changes_nothing() {
    let (db, mut c) = loaded("delete_atomic");
    // The collection row cannot go: the items deleted before that must come back.
    c.batch_execute(
        "CREATE FUNCTION host.no_delete() RETURNS trigger LANGUAGE plpgsql AS $$ \
           BEGIN RAISE EXCEPTION 'collection % is protected', OLD.id; END $$; \
         CREATE TRIGGER protect BEFORE DELETE ON host.collections FOR EACH ROW EXECUTE FUNCTION host.no_delete();",
    )
    .unwrap();
    let o = run(&["delete", "collection", PG, "--yes", "--dsn", &db.dsn]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("collection pgstac-test-collection is protected"),
        "{}",
        stderr(&o)
    );
    assert_eq!(count(&mut c, PG), 100);
    assert!(collection_exists(&mut c, PG));
}

#[test]
fn usage_errors() {
    // No ids at all, --all with ids, no collection: clap refuses (exit 2).
    for args in [
        vec!["delete", "items", "--collection", "c"],
        vec!["delete", "items", "--collection", "c", "--all", "--id", "x"],
        vec!["delete", "collection"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    let o = run(&[
        "delete",
        "items",
        "--collection",
        "c",
        "--ids-file",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no item ids given"), "{}", stderr(&o));
}

/// On a terminal the command asks; `script` (util-linux) gives it one.
#[test]
fn confirmation_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` command to provide a terminal");
        return;
    }
    let (db, mut c) = loaded("delete_tty");
    let bin = env!("CARGO_BIN_EXE_host");
    let on_tty = |args: &str, answer: &str| {
        let mut child = std::process::Command::new("script")
            .args([
                "-qec",
                &format!("{bin} {args} --dsn {}", db.dsn),
                "/dev/null",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        (o.status.code(), stdout(&o))
    };
    let (code, out) = on_tty(&format!("delete collection {PG}"), "n\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("Delete collection \"pgstac-test-collection\" and its 100 items in"),
        "{out}"
    );
    assert!(out.contains("not confirmed; nothing was deleted"), "{out}");
    assert!(collection_exists(&mut c, PG));
    assert_eq!(count(&mut c, PG), 100);

    let (code, out) = on_tty(&format!("delete collection {PG}"), "y\n");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("deleted collection \"pgstac-test-collection\" and its 100 items"),
        "{out}"
    );
    assert!(!collection_exists(&mut c, PG));
}

/// Starts `host ARGS` with its output captured.
fn spawn(args: &[&str]) -> std::process::Child {
    util::host()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Opens a transaction that holds collection `id`'s row `FOR UPDATE`, as
/// `host delete collection` does first.
fn hold_collection<'a>(c: &'a mut postgres::Client, id: &str) -> postgres::Transaction<'a> {
    let mut tx = c.transaction().unwrap();
    tx.execute(
        "SELECT 1 FROM host.collections WHERE id = $1 FOR UPDATE",
        &[&id],
    )
    .unwrap();
    tx
}

/// Waits until a backend of `db` other than `c`'s waits as `condition` says
/// (on `pg_stat_activity`), for up to 60 s.
fn wait_for_backend(c: &mut postgres::Client, condition: &str) {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND {condition}"
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while c.query_one(&sql, &[]).unwrap().get::<_, i64>(0) == 0 {
        assert!(
            std::time::Instant::now() < until,
            "no backend with {condition}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `host delete collection` while a load is writing that collection's items,
/// with either way a load writes (COPY straight into `host.items` for
/// `insert`, a merge from staging for `upsert`): the delete waits for the
/// load and takes its items with it. They used to deadlock (the delete
/// locked the collection, then `host.items`; the load the other way round),
/// and the load failed saying another load had written the same items.
#[test]
fn deleting_a_collection_while_a_load_writes_it_waits_for_the_load() {
    use stac_util::{add_collection, item, ndjson, s};
    let db = stac_util::migrated("delete_during_load");
    let mut c = db.client();
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<Value> = (0..3)
        .map(|i| item(&format!("i{i}"), "c", 10.0 + i as f64, 50.0, 1 + i))
        .collect();
    let file = ndjson(dir.path(), "items.ndjson", &items);
    // Holds the load with its rows half written: in COPY for insert, in the
    // merge for upsert (the staging table has no trigger).
    c.batch_execute(
        "CREATE FUNCTION public.pause() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.id = 'i1' THEN PERFORM pg_sleep(1.5); END IF; RETURN NEW; END $$; \
         CREATE TRIGGER pause BEFORE INSERT ON host.items \
         FOR EACH ROW EXECUTE FUNCTION public.pause()",
    )
    .unwrap();
    for method in ["insert", "upsert"] {
        add_collection(&db, dir.path(), "c");
        let load = spawn(&[
            "load",
            "items",
            s(&file),
            "--method",
            method,
            "--json",
            "--dsn",
            &db.dsn,
        ]);
        wait_for_backend(&mut c, "wait_event = 'PgSleep'");
        let deleted = run(&["delete", "collection", "c", "--yes", "--dsn", &db.dsn]);
        let load = load.wait_with_output().unwrap();
        assert!(load.status.success(), "{method}: {}", stderr(&load));
        assert_eq!(
            stac_util::summary(&load)["loaded"],
            3,
            "{method}: {}",
            stdout(&load)
        );
        assert!(deleted.status.success(), "{method}: {}", stderr(&deleted));
        assert_eq!(
            stdout(&deleted).trim(),
            "deleted collection \"c\" and its 3 items",
            "{method}"
        );
        assert!(!collection_exists(&mut c, "c"), "{method}");
        assert_eq!(count(&mut c, "c"), 0, "{method}");
        assert!(!has_partition(&mut c, "c"), "{method}");
    }

    // The other order: a delete holds the collection (as it does first)
    // when the load begins; the load waits, then finds it gone and says so,
    // writing nothing.
    add_collection(&db, dir.path(), "c");
    let mut tx = hold_collection(&mut c, "c");
    let load = spawn(&["load", "items", s(&file), "--dsn", &db.dsn]);
    let mut watcher = db.client();
    wait_for_backend(&mut watcher, "wait_event_type = 'Lock'");
    tx.batch_execute(
        "SELECT host.drop_partition('c'); DELETE FROM host.collections WHERE id = 'c'",
    )
    .unwrap();
    tx.commit().unwrap();
    let load = load.wait_with_output().unwrap();
    assert_eq!(load.status.code(), Some(1), "{}", stderr(&load));
    assert!(
        stderr(&load).contains("invalid item (i0): collection \"c\" does not exist"),
        "{}",
        stderr(&load)
    );
    assert_eq!(count(&mut c, "c"), 0);

    // A delete that waits says what for, then goes on when the load ends.
    add_collection(&db, dir.path(), "c");
    let mut tx = c.transaction().unwrap();
    tx.execute("SELECT 1 FROM host.collections FOR KEY SHARE", &[])
        .unwrap();
    let delete = spawn(&["delete", "collection", "c", "--yes", "--dsn", &db.dsn]);
    wait_for_backend(&mut watcher, "wait_event_type = 'Lock'");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    tx.commit().unwrap();
    let delete = delete.wait_with_output().unwrap();
    assert!(delete.status.success(), "{}", stderr(&delete));
    assert!(
        stderr(&delete)
            .contains("waiting for collection \"c\": a load or another delete is using it"),
        "{}",
        stderr(&delete)
    );
    assert!(!collection_exists(&mut c, "c"));
}

/// A collections load that makes a partition for a new collection and
/// replaces one that a delete is taking: the load waits for the delete
/// (then writes the collection anew, with its partition) instead of the
/// two deadlocking (the load made the new partition in its transaction, so
/// it held `host.items` while it waited for the collection; the delete held
/// the collection while it waited for `host.items`).
#[test]
fn a_collections_load_waits_for_a_delete_of_one_of_them() {
    use stac_util::{collection, ndjson, s};
    let db = stac_util::migrated("delete_during_collections_load");
    let mut c = db.client();
    let dir = tempfile::tempdir().unwrap();
    stac_util::add_collection(&db, dir.path(), "x");
    let file = ndjson(
        dir.path(),
        "c.ndjson",
        &[collection("new"), collection("x")],
    );
    // As `host delete collection x` does: the collection first, ...
    let mut tx = hold_collection(&mut c, "x");
    let load = spawn(&[
        "load",
        "collections",
        s(&file),
        "--method",
        "upsert",
        "--dsn",
        &db.dsn,
    ]);
    let mut watcher = db.client();
    wait_for_backend(&mut watcher, "wait_event_type = 'Lock'");
    // ... then its partition, which needs host.items to itself.
    tx.batch_execute(
        "SELECT host.drop_partition('x'); DELETE FROM host.collections WHERE id = 'x'",
    )
    .unwrap();
    tx.commit().unwrap();
    let load = load.wait_with_output().unwrap();
    assert!(load.status.success(), "{}", stderr(&load));
    for id in ["new", "x"] {
        assert!(collection_exists(&mut c, id), "{id}");
        assert!(has_partition(&mut c, id), "{id}");
    }
}
