//! Issue 12, hostile input: a copy job that names its own source another
//! way, flags that would silently do nothing, items PostgreSQL would refuse
//! in the middle of a COPY, huge and absurd geometries, escape sequences in
//! data, and a misspelt password key. Each test builds its input and
//! asserts what a user sees, and that nothing was written or lost.

mod stac_util;
mod util;

use serde_json::{Value, json};
use stac_util::{add_collection, count, counts, item, load, migrated, ndjson, s};
use util::{TestDb, host, run, run_peak, stderr, stdout};

// ---------------------------------------------------------------- 1: a copy onto its own source

const TABLE: &str = "CREATE TABLE public.t (id int PRIMARY KEY, v int);
    INSERT INTO public.t SELECT g, g % 3 FROM generate_series(1, 1000) g;";

fn xmat(file: &std::path::Path, args: &[&str]) -> std::process::Output {
    host()
        .arg("xmat")
        .args(args)
        .arg("-c")
        .arg(file)
        .output()
        .unwrap()
}

fn schemas(db: &TestDb) -> Vec<String> {
    db.client()
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' \
             AND nspname <> 'information_schema' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A TCP forwarder on a port of its own to `to`, for as long as the test
/// runs: the same server reached on another port.
fn forward(to: u16) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", to)) else {
                continue;
            };
            for (mut from, mut into) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut into);
                    let _ = into.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    port
}

/// Before: the guard compared connection strings; `127.0.0.1` and
/// `localhost` ran, and swapped a filtered copy over the source. Every other
/// way to name the same database is refused too: key=value pairs, a host
/// name in capitals, the unix socket instead of TCP, another port that
/// leads to the same server.
#[test]
fn a_copy_onto_its_own_schema_named_another_way_is_refused_before_any_write() {
    let db = TestDb::new("selfcopy");
    db.client().batch_execute(TABLE).unwrap();
    let url = url::Url::parse(&db.dsn).unwrap();
    let port = url.port().unwrap();
    let (user, password) = (url.username(), url.password().unwrap());
    // Where the server's unix socket is, as the server says.
    let socket_dir: String = db
        .client()
        .query_one(
            "SELECT split_part(current_setting('unix_socket_directories'), ',', 1)",
            &[],
        )
        .unwrap()
        .get(0);
    let forwarded = forward(port);
    let targets = [
        db.dsn.replacen("127.0.0.1", "localhost", 1),
        format!(
            "host=localhost port={port} user={user} password={password} dbname={}",
            db.name
        ),
        format!(
            "host=LOCALHOST port={port} user={user} password={password} dbname={}",
            db.name
        ),
        format!(
            "host={} port={port} user={user} password={password} dbname={}",
            socket_dir.trim(),
            db.name
        ),
        format!(
            "postgresql://{user}:{password}@127.0.0.1:{forwarded}/{}",
            db.name
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for target in &targets {
        let file = dir.path().join("xmat.toml");
        std::fs::write(
            &file,
            format!(
                "[self]\nsource = {{ database = \"{}\", schema = \"public\" }}\n\
                 target = {{ database = \"{target}\", schema = \"public\" }}\n\
                 [self.tables.t]\nwhere = {{ v = 0 }}\n",
                db.dsn
            ),
        )
        .unwrap();
        for args in [&["self", "--dry-run"][..], &["self"][..]] {
            let o = xmat(&file, args);
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{target} {args:?}: {err}");
            assert!(
                err.contains(&format!(
                    "job self: source and target are the same schema public: both reach database {} on one server",
                    db.name
                )),
                "{target}: {err}"
            );
            assert!(
                err.contains("it would replace itself (nothing was written)"),
                "{err}"
            );
            assert!(stdout(&o).is_empty(), "no plan: {}", stdout(&o));
        }
    }
    let n: i64 = db
        .client()
        .query_one("SELECT count(*) FROM public.t", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1000, "nothing lost");
    assert_eq!(schemas(&db), ["public"], "nothing built");
}

/// The same server and the same schema name, but another database: a copy.
#[test]
fn the_same_schema_in_another_database_of_the_same_server_is_copied() {
    let src = TestDb::new("samesrv_src");
    let dst = TestDb::new("samesrv_dst");
    src.client().batch_execute(TABLE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("xmat.toml");
    std::fs::write(
        &file,
        format!(
            "[copy]\nsource = {{ database = \"{}\", schema = \"public\" }}\n\
             target = {{ database = \"{}\", schema = \"public\" }}\n\
             [copy.tables.t]\nwhere = {{ v = 0 }}\n",
            src.dsn,
            dst.dsn.replacen("127.0.0.1", "localhost", 1)
        ),
    )
    .unwrap();
    let o = xmat(&file, &["copy"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let n: i64 = dst
        .client()
        .query_one("SELECT count(*) FROM public.t", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 333);
}

// ---------------------------------------------------------------- 5: usage errors

/// Before: `--plugin-arg` with no `--plugin` loaded the items untransformed
/// and exited 0.
#[test]
fn flags_that_would_do_nothing_are_usage_errors_and_nothing_is_loaded() {
    let db = migrated("usage");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let f = ndjson(dir.path(), "items.ndjson", &[item("a", "c", 1.0, 2.0, 1)]);
    for (flag, value) in [
        ("--plugin-arg", "collection=other"),
        ("--plugin-sha256", &"ab".repeat(32)[..]),
    ] {
        let o = load(&db, "items", &[s(&f), flag, value]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flag}: {err}");
        assert!(
            err.contains(&format!(
                "{flag} {value} is given, but no --plugin to apply it to"
            )),
            "{err}"
        );
        assert!(err.contains("For more information, try '--help'."), "{err}");
    }
    assert_eq!(count(&db, "SELECT count(*) FROM host.items"), 0);
    // Malformed values clap cannot see are usage errors too.
    for args in [
        vec!["plugin", "run", "x.wasm", "--plugin-arg", "novalue"],
        vec!["plugin", "run", "x.wasm#sha256=zz"],
        vec!["plugin", "inspect", "x.wasm#sha256=12"],
        vec!["plugin", "run", "x.wasm", "--rows", "--columns", "a,,b"],
        vec!["plugin", "run", "x.wasm", "--rows", "--table", "public."],
        vec!["version", "--dsn", "host=h port=notaport"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    assert!(stdout(&run(&["--help"])).contains("2  usage error"));
}

/// Before: a misspelt `pasword=` was echoed whole, password included.
#[test]
fn a_misspelt_password_key_is_not_echoed() {
    for dsn in [
        "host=127.0.0.1 pasword=hunter2 dbname=x",
        "postgresql://u@127.0.0.1/x?pasword=hunter2",
    ] {
        let o = run(&["version", "--dsn", dsn]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("pasword=***"), "{err}");
    }
}

// ---------------------------------------------------------------- 6: what PostgreSQL would refuse

/// An item text with `title` set to the raw JSON `value`.
fn with_raw(id: &str, key: &str, raw: &str) -> String {
    let mut v = item(id, "c", 1.0, 2.0, 1);
    v["properties"][key] = json!("PLACEHOLDER");
    v.to_string().replace("\"PLACEHOLDER\"", raw)
}

/// Before: these failed the whole load with a PostgreSQL message naming no
/// file, line or item, even with --reject-file.
#[test]
fn what_postgresql_would_refuse_is_caught_first_and_named() {
    let db = migrated("pg_refuses");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let lone_id = item("PLACEHOLDER", "c", 1.0, 2.0, 1)
        .to_string()
        .replace("PLACEHOLDER", r"x\ud800");
    let cases: Vec<(&str, String, Option<&str>, &str)> = vec![
        (
            "deep",
            with_raw("b", "deep", &deep),
            Some("b"),
            "nesting deeper than 127 levels in properties.deep[0][0]",
        ),
        (
            "surrogate",
            with_raw("b", "title", r#""a\udc00""#),
            Some("b"),
            "a lone surrogate escape (\\ud800-\\udfff without its pair), which PostgreSQL refuses in properties.title",
        ),
        (
            "surrogate-id",
            lone_id.clone(),
            None,
            "a lone surrogate escape (\\ud800-\\udfff without its pair), which PostgreSQL refuses in id",
        ),
        (
            "number",
            with_raw("b", "n", "1e999999"),
            Some("b"),
            "a number outside PostgreSQL's numeric range in properties.n",
        ),
        (
            "nul",
            with_raw("b", "title", r#""a\u0000""#),
            Some("b"),
            "a \\u0000 escape, which PostgreSQL cannot store in jsonb in properties.title",
        ),
    ];
    for (name, bad, id, reason) in &cases {
        // PostgreSQL itself refuses each of them: the oracle.
        assert!(
            db.client()
                .query_one("SELECT $1::text::jsonb IS NOT NULL", &[bad])
                .is_err(),
            "{name}: PostgreSQL accepts it"
        );
        let text = format!(
            "{}\n{bad}\n{}\n",
            item(&format!("a-{name}"), "c", 1.0, 2.0, 1),
            item(&format!("c-{name}"), "c", 1.0, 2.0, 1)
        );
        let f = dir.path().join(format!("{name}.ndjson"));
        std::fs::write(&f, text).unwrap();
        let o = load(&db, "items", &[s(&f)]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        let at = match id {
            Some(id) => format!("{name}.ndjson:2: invalid item ({id}): {reason}"),
            None => format!("{name}.ndjson:2: invalid item: {reason}"),
        };
        assert!(err.contains(&at), "{name}: {err}");
        assert_eq!(
            count(
                &db,
                &format!("SELECT count(*) FROM host.items WHERE id LIKE '%-{name}'")
            ),
            0,
            "{name}"
        );
        // With a reject file, it goes there and the rest loads.
        let rejects = dir.path().join(format!("{name}.rejects"));
        let o = load(
            &db,
            "items",
            &[s(&f), "--reject-file", s(&rejects), "--json"],
        );
        assert_eq!(o.status.code(), Some(3), "{name}: {}", stderr(&o));
        counts(&o, (3, 2, 0, 0, 0, 1));
        let line: Value =
            serde_json::from_str(std::fs::read_to_string(&rejects).unwrap().trim()).unwrap();
        assert_eq!(line["line"], 2);
        assert!(line["reason"].as_str().unwrap().contains(reason), "{line}");
        // The record is kept whole, as a string: readers refuse it as JSON too.
        assert_eq!(line["record"].as_str(), Some(bad.as_str()), "{name}");
    }
    // Their near misses are fine: a surrogate pair, the largest numeric.
    let f = dir.path().join("fine.ndjson");
    std::fs::write(
        &f,
        format!(
            "{}\n{}\n",
            with_raw("pair", "title", r#""\ud83d\ude00""#),
            with_raw("big", "n", "1e131071")
        ),
    )
    .unwrap();
    let o = load(&db, "items", &[s(&f), "--json"]);
    counts(&o, (2, 2, 0, 0, 0, 0));
}

#[test]
fn an_id_too_long_for_the_index_is_named() {
    let db = migrated("long_id");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    // Random-looking, so PostgreSQL could not have compressed it into the index.
    let long: String = (0..3000u32)
        .map(|i| char::from(b'a' + ((i * 7919 + i / 13) % 26) as u8))
        .collect();
    let f = ndjson(
        dir.path(),
        "items.ndjson",
        &[item("a", "c", 1.0, 2.0, 1), item(&long, "c", 1.0, 2.0, 1)],
    );
    let o = load(&db, "items", &[s(&f)]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "items.ndjson:2: invalid item ({}...): \"id\" is 3000 bytes; ids may be at most 1024",
            &long[..64]
        )),
        "{err}"
    );
    assert!(!err.contains(&long), "the whole id is not shown");
}

// ---------------------------------------------------------------- 7: geometries

/// A polygon (a ring around the equator band) of `n` positions with 6 decimals.
fn big_polygon_item(id: &str, n: usize) -> String {
    let mut ring = String::with_capacity(n * 24);
    for i in 0..n {
        let x = -170.0 + 340.0 * i as f64 / n as f64;
        let y = if i % 2 == 0 { 10.123456 } else { 10.654321 };
        ring.push_str(&format!("[{x:.6},{y:.6}],"));
    }
    ring.push_str("[-170.000000,10.123456]");
    format!(
        r#"{{"type":"Feature","stac_version":"1.0.0","id":"{id}","collection":"c","geometry":{{"type":"Polygon","coordinates":[[{ring}]]}},"bbox":[-170,10,170,11],"properties":{{"datetime":"2020-01-01T00:00:00Z"}},"links":[],"assets":{{}}}}"#
    )
}

/// Before: memory was about ten times the geometry's text.
#[test]
fn a_huge_geometry_costs_memory_in_proportion() {
    let db = migrated("big_geometry");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let text = big_polygon_item("big", 1_500_000);
    let mib = (text.len() >> 20) as u64;
    let f = dir.path().join("big.ndjson");
    std::fs::write(&f, &text).unwrap();
    let (o, kib) = run_peak(&["load", "items", s(&f), "--dsn", &db.dsn, "--json"], b"");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    counts(&o, (1, 1, 0, 0, 0, 0));
    let points = count(
        &db,
        "SELECT ST_NPoints(geometry)::int8 FROM host.items WHERE id = 'big'",
    );
    assert_eq!(points, 1_500_001);
    let peak = kib >> 10;
    assert!(
        peak < 4 * mib + 100,
        "peak {peak} MiB for a {mib} MiB geometry"
    );
}

#[test]
fn an_array_too_large_for_jsonb_is_refused_by_name() {
    let db = migrated("jsonb_limit");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    // 30 million zeros: 60 MB of text, more than 256 MiB as jsonb.
    let zeros = vec!["0"; 30_000_000].join(",");
    let bad = with_raw("b", "zeros", &format!("[{zeros}]"));
    let f = dir.path().join("big.ndjson");
    std::fs::write(&f, format!("{bad}\n{}\n", item("a", "c", 1.0, 2.0, 1))).unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let o = load(
        &db,
        "items",
        &[s(&f), "--reject-file", s(&rejects), "--json"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    counts(&o, (2, 1, 0, 0, 0, 1));
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(&rejects)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["id"], "b");
    assert!(
        line["reason"]
            .as_str()
            .unwrap()
            .contains("larger than PostgreSQL's jsonb can hold (its members take more than 256 MiB) in properties.zeros"),
        "{line}"
    );
}

/// Before: ±1e308 was accepted, and the collection's extent with it.
#[test]
fn positions_off_the_earth_are_refused_and_the_extent_stays() {
    let db = migrated("off_earth");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let mut far = item("far", "c", 1.0, 2.0, 1);
    far["geometry"] = json!({"type": "LineString", "coordinates": [[1, 2], [1e308, -1e308]]});
    far["bbox"] = json!([1, -1e308, 1e308, 2]);
    let mut far_bbox = item("far-bbox", "c", 1.0, 2.0, 1);
    far_bbox["bbox"] = json!([1, 2, 1, 1e308]);
    let f = ndjson(
        dir.path(),
        "items.ndjson",
        &[item("a", "c", 1.0, 2.0, 1), far, far_bbox],
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
            "--update-extents",
            "immediate",
        ],
    );
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    counts(&o, (3, 1, 0, 0, 0, 2));
    let reasons: Vec<String> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        reasons,
        [
            // As written in the file (serde_json writes 1e308 so).
            "geometry: LineString coordinates[1]: longitude 1e+308 is outside [-360, 360]",
            "bbox has latitude 1e308, outside [-90, 90]",
        ]
    );
    let extent: String = db
        .client()
        .query_one(
            "SELECT (content->'extent'->'spatial'->'bbox'->0)::text FROM host.collections WHERE id = 'c'",
            &[],
        )
        .unwrap()
        .get(0);
    let extent: Value = serde_json::from_str(&extent).unwrap();
    let extent: Vec<f64> = extent
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(extent, [1.0, 2.0, 1.0, 2.0]);
}

// ---------------------------------------------------------------- 8: data reaching a terminal

/// Before: ids were printed raw.
#[test]
fn an_id_with_escape_sequences_is_shown_escaped() {
    let db = migrated("escapes");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let nasty = "x\u{1b}[2J\u{1b}[31m\nINFO forged\r";
    let f = ndjson(
        dir.path(),
        "items.ndjson",
        &[item(nasty, "nowhere", 1.0, 2.0, 1)],
    );
    let o = load(&db, "items", &[s(&f)]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\r'), "{err:?}");
    assert!(
        err.contains("invalid item (x\\u{1b}[2J\\u{1b}[31m\\nINFO forged\\r)"),
        "{err}"
    );
    assert!(!err.lines().any(|l| l.starts_with("INFO forged")), "{err}");
}
