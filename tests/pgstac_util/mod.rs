//! Helpers for the tests against real pgstac: pgstac's migration files from
//! the pypgstac wheel on PyPI (`scripts/pgstac-migrations`), databases with
//! pgstac installed by `host migrate --dir`, pgstac's own `search()`, and
//! pypgstac itself (`scripts/venv`) as the oracle for what a load stores.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::stac_util::{ok, s};
use crate::util::{TestDb, root, run, stdout};

/// pgstac's migration files from the pypgstac wheel of `version`
/// (`HOST_PGSTAC_MIGRATIONS` overrides the 0.10.0 directory).
pub fn migrations(version: &str) -> PathBuf {
    static DIRS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let dirs = DIRS.get_or_init(Default::default);
    let mut dirs = dirs.lock().unwrap();
    if let Some(d) = dirs.get(version) {
        return d.clone();
    }
    let dir = match std::env::var("HOST_PGSTAC_MIGRATIONS") {
        Ok(d) if version == "0.10.0" => PathBuf::from(d),
        _ => {
            let o = Command::new(root().join("scripts/pgstac-migrations"))
                .arg(version)
                .stderr(Stdio::inherit())
                .output()
                .expect("run scripts/pgstac-migrations");
            assert!(
                o.status.success(),
                "scripts/pgstac-migrations {version} failed"
            );
            PathBuf::from(stdout(&o).trim())
        }
    };
    dirs.insert(version.to_string(), dir.clone());
    dir
}

/// `host migrate ARGS`, one at a time: pgstac's files grant and alter its
/// roles, which are the cluster's, and PostgreSQL fails concurrent changes to
/// one role ("tuple concurrently updated").
pub fn migrate(args: &[&str]) -> Output {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut all = vec!["migrate"];
    all.extend_from_slice(args);
    run(&all)
}

/// A fresh database with pgstac 0.10.0 installed by `host migrate --dir`.
pub fn pgstac_db(label: &str) -> TestDb {
    let db = TestDb::new(label);
    let dir = migrations("0.10.0");
    ok(&migrate(&["--dir", s(&dir), "--dsn", &db.dsn]));
    db
}

/// pgstac's own `search()` for a request body, as JSON.
pub fn pgstac_search(db: &TestDb, body: &Value) -> Value {
    let mut c = db.client();
    // pgstac's functions expect its schema on the search path (its roles have it).
    c.batch_execute("SET search_path TO pgstac, public")
        .unwrap();
    let text: String = c
        .query_one(
            "SELECT pgstac.search($1::text::jsonb)::text",
            &[&body.to_string()],
        )
        .unwrap_or_else(|e| panic!("pgstac search({body}): {e}"))
        .get(0);
    serde_json::from_str(&text).unwrap()
}

/// The project's Python (`HOST_PYTHON`, or the one `scripts/venv` makes),
/// with pypgstac 0.10.0.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| match std::env::var("HOST_PYTHON") {
            Ok(p) => PathBuf::from(p),
            Err(_) => {
                let o = Command::new(root().join("scripts/venv"))
                    .stderr(Stdio::inherit())
                    .output()
                    .expect("run scripts/venv");
                assert!(o.status.success(), "scripts/venv failed");
                PathBuf::from(stdout(&o).trim())
            }
        })
        .clone()
}

/// `pypgstac ARGS` (the CLI installed beside the project's Python).
pub fn pypgstac(args: &[&str]) -> Output {
    let exe = python().parent().unwrap().join("pypgstac");
    Command::new(&exe)
        .args(args)
        .env_remove("PGHOST")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", exe.display()))
}

/// `pypgstac load TABLE FILE --method METHOD --dsn DB`, asserting success.
pub fn pypgstac_load(db: &TestDb, table: &str, file: &Path, method: &str) {
    let o = pypgstac(&["load", table, s(file), "--method", method, "--dsn", &db.dsn]);
    assert!(
        o.status.success(),
        "pypgstac load {table} {} --method {method}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Every item row as text, in (collection, id) order: the columns pypgstac
/// and host write (geometry as EWKB hex, content as jsonb's text).
pub fn item_rows(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.client()
        .query(
            "SELECT collection, id, datetime::text, end_datetime::text, \
                    encode(ST_AsEWKB(geometry), 'hex'), content::text, private::text \
             FROM pgstac.items ORDER BY collection, id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (0..7).map(|i| r.get::<_, Option<String>>(i)).collect())
        .collect()
}

/// xmin of every item row, by (collection, id): which rows a load rewrote.
pub fn item_versions(db: &TestDb) -> HashMap<(String, String), String> {
    db.client()
        .query("SELECT collection, id, xmin::text FROM pgstac.items", &[])
        .unwrap()
        .into_iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect()
}
