//! `host load` sources and formats: files, stdin, gzip, file:// and http://
//! URLs; NDJSON, a JSON array, a FeatureCollection, one object; and strings
//! with escapes, which must load byte for byte.

#[rustfmt::skip]
mod util;
mod stac_util;

use std::io::{Read, Write};
use std::net::TcpListener;

use serde_json::{Value, json};
use stac_util::{add_collection, counts, fails, item, load, migrated, ndjson, ok, s};
use util::{TestDb, run_stdin, stderr};

/// Whether the database holds exactly this JSON for the item (compared as jsonb).
fn stored_equals(db: &TestDb, collection: &str, id: &str, expected: &str) -> bool {
    db.client()
        .query_one(
            "SELECT content = $3::text::jsonb FROM host.items WHERE collection = $1 AND id = $2",
            &[&collection, &id, &expected],
        )
        .unwrap_or_else(|e| panic!("{collection}/{id}: {e}"))
        .get(0)
}

/// Serves `body` for every GET except paths ending in `missing`, which get 404.
fn serve(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&req)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let head = line.starts_with("HEAD");
            let (status, body) = if path.ends_with("missing") {
                ("404 Not Found", b"not here".to_vec())
            } else {
                ("200 OK", body.clone())
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if !head {
                let _ = conn.write_all(&body);
            }
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[test]
fn every_source_kind_and_format_loads() {
    let db = migrated("sources");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let items: Vec<Value> = (0..12)
        .map(|i| item(&format!("i{i}"), "c", i as f64, 0.0, i + 1))
        .collect();

    // A plain NDJSON file, with blank lines and CRLF endings.
    let f = dir.path().join("plain.ndjson");
    std::fs::write(&f, format!("{}\r\n\r\n{}\r\n", items[0], items[1])).unwrap();
    counts(
        ok(&load(&db, "items", &[s(&f), "--json"])),
        (2, 2, 0, 0, 0, 0),
    );

    // stdin.
    let input = format!("{}\n{}\n", items[2], items[3]);
    let o = run_stdin(
        &["load", "items", "-", "--json", "--dsn", &db.dsn],
        input.as_bytes(),
    );
    counts(ok(&o), (2, 2, 0, 0, 0, 0));

    // Gzip, recognised by content.
    let gz = dir.path().join("items.ndjson.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    write!(enc, "{}\n{}\n", items[4], items[5]).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    counts(
        ok(&load(&db, "items", &[s(&gz), "--json"])),
        (2, 2, 0, 0, 0, 0),
    );

    // A JSON array through a file:// URL, together with a pretty-printed single object.
    let arr = dir.path().join("array.json");
    std::fs::write(
        &arr,
        serde_json::to_string_pretty(&json!([items[6], items[7]])).unwrap(),
    )
    .unwrap();
    let one = dir.path().join("one.json");
    std::fs::write(&one, serde_json::to_string_pretty(&items[8]).unwrap()).unwrap();
    let url = format!("file://{}", arr.display());
    counts(
        ok(&load(&db, "items", &[&url, s(&one), "--json"])),
        (3, 3, 0, 0, 0, 0),
    );

    // A FeatureCollection over http://, gzipped.
    let fc = json!({"type": "FeatureCollection", "features": [items[9], items[10], items[11]],
                    "links": [{"rel": "self", "href": "x"}]});
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(fc.to_string().as_bytes()).unwrap();
    let base = serve(enc.finish().unwrap());
    let o = ok(&load(
        &db,
        "items",
        &[&format!("{base}/stac/items.json.gz"), "--json"],
    ))
    .clone();
    counts(&o, (3, 3, 0, 0, 0, 0));
    assert!(stac_util::summary(&o)["bytes"].as_u64().unwrap() > 0);

    for (i, v) in items.iter().enumerate() {
        assert!(
            stored_equals(&db, "c", &format!("i{i}"), &v.to_string()),
            "i{i}"
        );
    }

    // Sources that cannot be read name themselves, and nothing loads.
    fails(
        &load(&db, "items", &[&format!("{base}/missing")]),
        1,
        &["/missing"],
    );
    fails(
        &load(&db, "items", &[s(&dir.path().join("nope.ndjson"))]),
        1,
        &["nope.ndjson"],
    );
    fails(
        &load(&db, "items", &["ftp://example.invalid/x"]),
        1,
        &["unsupported URL scheme 'ftp'"],
    );
    let torn = dir.path().join("torn.json");
    std::fs::write(&torn, format!("[{},\n{}", items[0], items[1])).unwrap();
    fails(
        &load(&db, "items", &[s(&torn)]),
        1,
        &["torn.json: line 2: input ends inside the array"],
    );
    assert_eq!(stac_util::count(&db, "SELECT count(*) FROM host.items"), 12);
}

#[test]
fn escapes_load_byte_for_byte() {
    let db = migrated("escapes");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    // Written by hand: every kind of escape JSON has, plus raw non-ASCII text.
    let tricky = r#""back\\slash \"quoted\" \/solidus tab\t nl\n cr\r bs\b ff\f é \u00e9 \u4e2d 😀 \ud83d\ude00 \\u0000 not-a-nul \u001f""#;
    let text = format!(
        r#"{{"type":"Feature","stac_version":"1.0.0","id":"esc\\\"aped \u00e9","collection":"c","geometry":null,"properties":{{"datetime":"2020-01-01T00:00:00Z","title":{tricky},"keys":{{"tab\tkey":1,"back\\slash":2}}}},"links":[],"assets":{{}}}}"#
    );
    let f = dir.path().join("escapes.ndjson");
    std::fs::write(&f, format!("{text}\n")).unwrap();
    counts(
        ok(&load(&db, "items", &[s(&f), "--json"])),
        (1, 1, 0, 0, 0, 0),
    );

    let parsed: Value = serde_json::from_str(&text).unwrap();
    let id = parsed["id"].as_str().unwrap();
    assert_eq!(id, "esc\\\"aped é");
    assert!(stored_equals(&db, "c", id, &text));
    // The decoded strings, as PostgreSQL sees them, are exactly serde_json's.
    let mut c = db.client();
    let row = c
        .query_one(
            "SELECT id, content->'properties'->>'title', \
                    (SELECT string_agg(k, '|' ORDER BY k) FROM jsonb_object_keys(content->'properties'->'keys') k) \
             FROM host.items",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), id);
    assert_eq!(
        row.get::<_, String>(1),
        parsed["properties"]["title"].as_str().unwrap()
    );
    assert_eq!(row.get::<_, String>(2), "back\\slash|tab\tkey");

    // \u0000 itself cannot be stored in jsonb: a clear rejection, not a server error.
    let nul = text.replace("\\\\u0000", "\\u0000");
    let f = dir.path().join("nul.ndjson");
    std::fs::write(&f, format!("{nul}\n")).unwrap();
    let o = load(&db, "items", &[s(&f), "--method", "upsert"]);
    fails(&o, 1, &["nul.ndjson:1: invalid item", "\\u0000"]);
    assert!(!stderr(&o).contains("SQLSTATE"), "{}", stderr(&o));
}

#[test]
fn several_sources_in_one_call_are_one_transaction() {
    let db = migrated("sources_atomic");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "c");
    let good = ndjson(dir.path(), "good.ndjson", &[item("a", "c", 0.0, 0.0, 1)]);
    let bad = ndjson(
        dir.path(),
        "bad.ndjson",
        &[json!({"type": "Feature", "id": "b"})],
    );
    fails(
        &load(&db, "items", &[s(&good), s(&bad)]),
        1,
        &["bad.ndjson:1: invalid item (b)"],
    );
    assert_eq!(stac_util::count(&db, "SELECT count(*) FROM host.items"), 0);
    counts(
        ok(&load(
            &db,
            "items",
            &[s(&good), s(&good), "--method", "upsert", "--json"],
        )),
        (2, 1, 1, 0, 0, 0),
    );
}
