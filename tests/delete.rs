//! `host delete items` and `host delete collection` against a real database.

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
