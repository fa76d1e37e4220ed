//! `host load` into pgstac against pypgstac 0.10.0 as the oracle: for the same
//! input both store the same rows (`collection, id, datetime, end_datetime,
//! geometry, content, private`, compared as text), the same collections and
//! the same partition statistics, and each tool's `upsert` afterwards finds
//! nothing to rewrite in what the other loaded (no row's `xmin` moves).
//!
//! Inputs: the 1,000 real NAIP items, pgstac's own test data, the stac-spec
//! examples, generated Sentinel-2-like items, and items built around numbers
//! that are hard to read and write exactly.

#[rustfmt::skip]
mod util;
mod pgstac_util;
mod stac_util;

use std::path::{Path, PathBuf};
use std::process::Output;

use pgstac_util::{item_rows, item_versions, pgstac_db, pypgstac_load, python};
use serde_json::{Value, json};
use stac_util::{counts, item, load, ok, s};
use util::{TestDb, fixture, root, stderr};

/// Loads `collections` then `items` with host into one pgstac database and
/// with pypgstac into another, and compares everything both store. Keys of
/// collections listed in `unlike` are left out of the collections'
/// comparison (see the NAIP test data's). Returns the two databases.
fn same_as_pypgstac(
    label: &str,
    collections: &Path,
    items: &Path,
    unlike: &[&str],
) -> (TestDb, TestDb) {
    let (by_host, by_pypgstac, _) =
        same_as_pypgstac_by(label, collections, items, unlike, "insert");
    (by_host, by_pypgstac)
}

/// [`same_as_pypgstac`], both tools loading the items with `method` (into
/// empty collections); also returns host's load's output (with `-v`).
fn same_as_pypgstac_by(
    label: &str,
    collections: &Path,
    items: &Path,
    unlike: &[&str],
    method: &str,
) -> (TestDb, TestDb, Output) {
    let by_host = pgstac_db(&format!("{label}_host"));
    let by_pypgstac = pgstac_db(&format!("{label}_pypgstac"));
    ok(&load(&by_host, "collections", &[s(collections)]));
    pypgstac_load(&by_pypgstac, "collections", collections, "insert");
    let loaded = load(
        &by_host,
        "items",
        &[s(items), "--method", method, "--json", "-v"],
    );
    ok(&loaded);
    pypgstac_load(&by_pypgstac, "items", items, method);

    let (h, p) = (item_rows(&by_host), item_rows(&by_pypgstac));
    assert!(!h.is_empty(), "{label}: nothing was loaded");
    assert_eq!(h.len(), p.len(), "{label}: item counts");
    for (a, b) in h.iter().zip(&p) {
        assert_eq!(
            a, b,
            "{label}: host's row (left) differs from pypgstac's (right)"
        );
    }
    assert_eq!(
        collections_of(&by_host, unlike),
        collections_of(&by_pypgstac, unlike),
        "{label}: collections"
    );
    assert_eq!(
        partition_stats(&by_host),
        partition_stats(&by_pypgstac),
        "{label}: partition statistics"
    );

    assert_eq!(
        partitions_of(&by_host),
        partitions_of(&by_pypgstac),
        "{label}: the partitions' definitions"
    );

    // Neither tool's upsert finds anything to rewrite in the other's rows.
    let before = item_versions(&by_host);
    pypgstac_load(&by_host, "items", items, "upsert");
    assert_eq!(
        item_versions(&by_host),
        before,
        "{label}: pypgstac's upsert rewrote rows host loaded"
    );
    let before = item_versions(&by_pypgstac);
    let n = before.len() as u64;
    counts(
        ok(&load(
            &by_pypgstac,
            "items",
            &[s(items), "--method", "upsert", "--json"],
        )),
        (n, 0, 0, n, 0, 0),
    );
    assert_eq!(
        item_versions(&by_pypgstac),
        before,
        "{label}: host's upsert rewrote rows pypgstac loaded"
    );
    (by_host, by_pypgstac, loaded)
}

/// Every collection's row (content without the keys in `unlike`, base
/// item, partition_trunc), by id.
fn collections_of(db: &TestDb, unlike: &[&str]) -> Vec<(String, String, String)> {
    let unlike: Vec<String> = unlike.iter().map(|k| k.to_string()).collect();
    db.client()
        .query(
            "SELECT id, (content - $1::text[])::text, base_item::text FROM pgstac.collections ORDER BY id",
            &[&unlike],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// pgstac's statistics of every partition, by collection and range (the
/// partitions' names carry collection keys, which depend on load order).
fn partition_stats(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.client()
        .query(
            "SELECT collection, partition_dtrange::text, dtrange::text, edtrange::text, \
                    ST_AsText(spatial), (last_updated IS NOT NULL)::text \
             FROM pgstac.partition_stats ORDER BY 1, 2",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (0..6).map(|i| r.get::<_, Option<String>>(i)).collect())
        .collect()
}

/// How every partition of `pgstac.items` is defined, as PostgreSQL's
/// catalog says: kind, owner, grants, options, partition bound, columns
/// (type, not null, default, storage, compression), constraints, indexes
/// (and which index of the parent each one belongs to) and triggers. Each
/// partition's name is replaced by its collection's id (names carry
/// collection keys, which depend on load order). A host load may make a
/// new collection's partition itself (attached after COPY); it must end up
/// as pgstac's own `check_partition` makes it.
fn partitions_of(db: &TestDb) -> Vec<(String, Vec<String>)> {
    let mut client = db.client();
    let parts = client
        .query(
            "SELECT c.oid::regclass::text, p.relname, ps.collection \
             FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid \
             JOIN pg_class p ON p.oid = i.inhparent \
             JOIN pgstac.partition_stats ps ON ps.partition = c.relname \
             WHERE c.relnamespace = 'pgstac'::regnamespace ORDER BY 3, 1",
            &[],
        )
        .unwrap();
    assert!(!parts.is_empty(), "no partitions");
    let facts = [
        "SELECT concat_ws(' ', relkind, pg_get_userbyid(relowner), coalesce(relacl::text, '-'), \
                relpersistence, coalesce(reloptions::text, '-'), pg_get_expr(relpartbound, oid)) \
         FROM pg_class WHERE oid = $1::text::regclass",
        "SELECT concat_ws(' ', attnum, attname, format_type(atttypid, atttypmod), attnotnull, \
                coalesce(pg_get_expr(d.adbin, d.adrelid), '-'), attstorage, attcompression, \
                attislocal, attinhcount) \
         FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        "SELECT concat_ws(' ', conname, contype, pg_get_constraintdef(oid), conislocal, coninhcount, \
                convalidated) \
         FROM pg_constraint WHERE conrelid = $1::text::regclass ORDER BY conname",
        "SELECT concat_ws(' ', pg_get_indexdef(x.indexrelid), 'parent', \
                coalesce(i.inhparent::regclass::text, '-'), x.indisunique, x.indisprimary, \
                x.indisvalid, x.indisready) \
         FROM pg_index x LEFT JOIN pg_inherits i ON i.inhrelid = x.indexrelid \
         WHERE x.indrelid = $1::text::regclass ORDER BY 1",
        // Internal triggers are named by their OIDs.
        "SELECT regexp_replace(concat_ws(' ', tgname, tgenabled, tgisinternal, pg_get_triggerdef(oid)), \
                'RI_ConstraintTrigger_([a-z])_[0-9]+', 'RI_ConstraintTrigger_\\1', 'g') AS t \
         FROM pg_trigger WHERE tgrelid = $1::text::regclass ORDER BY t",
    ];
    parts
        .iter()
        .map(|r| {
            let (oid, parent, collection): (String, String, String) =
                (r.get(0), r.get(1), r.get(2));
            let name = oid.trim_start_matches("pgstac.").to_string();
            let mut lines = vec![format!("parent {}", parent.replace(&name, "<partition>"))];
            for q in facts {
                for row in client.query(q, &[&oid]).unwrap() {
                    let line: String = row.get(0);
                    lines.push(line.replace(&name, "<partition>"));
                }
            }
            (collection, lines)
        })
        .collect()
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

#[test]
fn naip_items_are_stored_as_pypgstac_stores_them() {
    let (by_host, _) = same_as_pypgstac(
        "oracle_naip",
        &fixture("stac/planetary-computer/naip-collection.json"),
        &fixture("stac/planetary-computer/naip-items.ndjson"),
        &[],
    );
    // The numbers the issue found changed: stored exactly as written.
    let bbox: String = by_host
        .client()
        .query_one(
            "SELECT (content->'properties'->'proj:bbox')::text FROM pgstac.items \
             WHERE content->'properties'->'proj:bbox' @> '[440633.39999999997]'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(bbox.contains("440633.39999999997"), "{bbox}");
}

#[test]
fn pgstac_test_data_is_stored_as_pypgstac_stores_it() {
    // pypgstac un-escapes "\\" in every input line before reading it (its
    // read_json), which turns the collections' "\\n" (a backslash and an n)
    // into a newline: the descriptions are the only text that differs, and
    // host's is the source's.
    let dir = tempfile::tempdir().unwrap();
    let items = root().join("tests/fixtures/stac/pgstac-testdata/items.ndjson");
    let private =
        std::fs::read_to_string(fixture("stac/pgstac-testdata/items_private.ndjson")).unwrap();
    let mut lines: Vec<String> = std::fs::read_to_string(&items)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let private_ids: Vec<String> = private
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    lines.retain(|l| {
        let id = serde_json::from_str::<Value>(l).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        !private_ids.contains(&id)
    });
    lines.extend(private.lines().map(str::to_string));
    let all = write(dir.path(), "items.ndjson", &lines);
    let (by_host, _) = same_as_pypgstac(
        "oracle_pgstac_testdata",
        &fixture("stac/pgstac-testdata/collections.ndjson"),
        &all,
        &["description"],
    );
    assert!(
        stac_util::count(
            &by_host,
            "SELECT count(*) FROM pgstac.items WHERE private IS NOT NULL"
        ) > 0
    );
    let source: Value = serde_json::from_str(
        std::fs::read_to_string(fixture("stac/pgstac-testdata/collections.ndjson"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let stored: String = by_host
        .client()
        .query_one(
            "SELECT content->>'description' FROM pgstac.collections WHERE id = $1",
            &[&source["id"].as_str().unwrap()],
        )
        .unwrap()
        .get(0);
    assert_eq!(stored, source["description"].as_str().unwrap());
}

#[test]
fn stac_spec_examples_are_stored_as_pypgstac_stores_them() {
    let dir = tempfile::tempdir().unwrap();
    let read = |f: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("stac/stac-spec-examples/{f}"))).unwrap(),
        )
        .unwrap()
    };
    let collection = read("collection.json");
    let id = collection["id"].as_str().unwrap().to_string();
    let items: Vec<String> = [
        "simple-item.json",
        "core-item.json",
        "extended-item.json",
        "collectionless-item.json",
    ]
    .iter()
    .enumerate()
    .map(|(i, f)| {
        let mut v = read(f);
        v["collection"] = json!(id);
        v["id"] = json!(format!("{}-{i}", v["id"].as_str().unwrap()));
        v.to_string()
    })
    .collect();
    same_as_pypgstac(
        "oracle_spec",
        &write(dir.path(), "collection.json", &[collection.to_string()]),
        &write(dir.path(), "items.ndjson", &items),
        &[],
    );
}

/// 300 Sentinel-2-like items from `bench/gen_items.py` (ids in increasing
/// byte order) and their collection, written into `dir`: (collection, items).
fn generated_sentinel2(dir: &Path) -> (PathBuf, PathBuf) {
    let o = std::process::Command::new(python())
        .arg(root().join("bench/gen_items.py"))
        .arg("300")
        .output()
        .unwrap();
    assert!(o.status.success(), "gen_items.py failed");
    let items = dir.join("s2.ndjson");
    std::fs::write(&items, &o.stdout).unwrap();
    // The collection's item_assets say "gsd": 10 where items say 10.0 (and
    // Python's 10 == 10.0): both tools leave the value to the base item.
    let bands = [
        ("B01", 60),
        ("B02", 10),
        ("B03", 10),
        ("B04", 10),
        ("B05", 20),
        ("B06", 20),
        ("B07", 20),
        ("B08", 10),
        ("B8A", 20),
        ("B09", 60),
        ("B11", 20),
        ("B12", 20),
    ];
    let mut assets = serde_json::Map::new();
    for (name, gsd) in bands {
        assets.insert(
            name.into(),
            json!({"type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": format!("Band {name} - {gsd}m"), "roles": ["data"], "gsd": gsd}),
        );
    }
    let collection = json!({"type": "Collection", "stac_version": "1.0.0", "id": "sentinel-2-l2a",
        "description": "generated", "license": "CC-BY-4.0", "links": [], "item_assets": assets,
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]},
                   "temporal": {"interval": [["2020-01-01T00:00:00Z", null]]}}});
    (
        write(dir, "collection.json", &[collection.to_string()]),
        items,
    )
}

#[test]
fn generated_sentinel2_items_are_stored_as_pypgstac_stores_them() {
    let dir = tempfile::tempdir().unwrap();
    let (collection, items) = generated_sentinel2(dir.path());
    let (by_host, _) = same_as_pypgstac("oracle_s2", &collection, &items, &[]);
    assert_eq!(
        stac_util::count(
            &by_host,
            "SELECT count(*) FROM pgstac.items WHERE content->'assets'->'B02' ? 'gsd'"
        ),
        0,
        "10.0 equals the base item's 10"
    );
}

/// Numbers chosen to be hard, as their text: shortest round-trip doubles,
/// 17 significant digits that are not the shortest, subnormals, the largest
/// double, integers around 2^53 and 2^64, negative zero, exponents.
const HARD: &[&str] = &[
    "440633.39999999997",
    "428699.69999999995",
    "0.1",
    "0.30000000000000004",
    "0.10000000000000001",
    "1.0000000000000002",
    "1.00000000000000022",
    "12345678.900000001",
    "5e-324",
    "4.9406564584124654e-324",
    "2.2250738585072011e-308",
    "2.2250738585072014e-308",
    "1.7976931348623157e308",
    "9007199254740993",
    "9007199254740992.0",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "-0",
    "-0.0",
    "0.0",
    "1e16",
    "1E22",
    "1.5e-7",
    "2.5E+300",
    "1e-400",
    "100",
    "1.0",
    "1.50",
    "-1e-7",
    "0.000001",
    "3.141592653589793238462643383279",
];

#[test]
fn hard_numbers_are_stored_as_pypgstac_stores_them() {
    let dir = tempfile::tempdir().unwrap();
    // The base item holds the numbers too, in another spelling.
    let collection = r#"{"type":"Collection","stac_version":"1.0.0","id":"hard","description":"numbers",
        "license":"CC0-1.0","links":[],
        "item_assets":{"data":{"gsd":10,"scale":5e-1,"offsets":[-0,1.0,2],"roles":["data"]}},
        "extent":{"spatial":{"bbox":[[-180,-90,180,90]]},"temporal":{"interval":[["2020-01-01T00:00:00Z",null]]}}}"#
        .replace('\n', "");
    let all = HARD.join(",");
    let mut items = Vec::new();
    for (i, n) in HARD.iter().enumerate() {
        // Times in one spelling per item, so that pypgstac (which orders
        // them as text) computes the same partition ranges.
        let datetime = match i {
            0 => "2020-01-01 00:00:00.0000005Z".to_string(),
            1 => "2020-01-01T00:00:00.0000015Z".to_string(),
            2 => "2020-01-01T00:00:00.0000025Z".to_string(),
            3 => "2020-01-01T00:00:00.9999995Z".to_string(),
            i => format!("2020-01-{:02}T{:02}:00:00.123456789Z", 2 + i / 24, i % 24),
        };
        let x = if *n == "-0" {
            "-0".to_string()
        } else {
            format!("-86.1234567890123456{}", i % 10)
        };
        items.push(format!(
            r#"{{"type":"Feature","stac_version":"1.0.0","id":"n{i:02}","collection":"hard",
               "geometry":{{"type":"Polygon","coordinates":[[[{x},30.000000000000004],[-86.0,30.000000000000004],[-86.0,30.1],[{x},30.000000000000004]]]}},
               "bbox":[-87,30.000000000000004,0,30.1],
               "properties":{{"datetime":"{datetime}","value":{n},"values":[{all}],"nested":{{"deep":[{{"x":{n}}}]}}}},
               "links":[],"assets":{{"data":{{"href":"s3://b/{i}.tif","gsd":10.0,"scale":0.5,"offsets":[0,1,2.0],"roles":["data"],"extra":{n}}}}}}}"#
        ).replace('\n', ""));
    }
    // The range of an item, across an offset.
    items.push(
        r#"{"type":"Feature","stac_version":"1.0.0","id":"range","collection":"hard",
            "geometry":{"type":"Point","coordinates":[-0,-0.0]},"bbox":[-0,-0.0,-0,-0.0],
            "properties":{"datetime":null,"start_datetime":"2020-01-09T00:00:00Z","end_datetime":"2020-01-10T05:30:00.0000005+05:30"},
            "links":[],"assets":{}}"#
            .replace('\n', ""),
    );
    let (by_host, _) = same_as_pypgstac(
        "oracle_hard",
        &write(dir.path(), "collection.json", &[collection]),
        &write(dir.path(), "items.ndjson", &items),
        &[],
    );
    // Each value read back is the double its text denotes.
    let rows = by_host
        .client()
        .query(
            "SELECT id, content->'properties'->>'value' FROM pgstac.items WHERE id LIKE 'n%' ORDER BY id",
            &[],
        )
        .unwrap();
    for (r, n) in rows.iter().zip(HARD) {
        let stored: String = r.get(1);
        // (jsonb's numeric has no negative zero: -0.0 reads back as 0.0.)
        let (a, b) = (stored.parse::<f64>().unwrap(), n.parse::<f64>().unwrap());
        assert_eq!(a, b, "{n} stored as {stored}");
    }
}

/// insert_ignore, upsert and delsert into an empty collection COPY the
/// rows straight into its partition (`-v` says so), and store what pypgstac
/// stores with the same method.
#[test]
fn each_method_into_an_empty_collection_goes_straight_and_stores_what_pypgstac_stores() {
    let dir = tempfile::tempdir().unwrap();
    let (collection, items) = generated_sentinel2(dir.path());
    for method in ["insert_ignore", "upsert", "delsert"] {
        let (_, _, o) = same_as_pypgstac_by(
            &format!("oracle_straight_{method}"),
            &collection,
            &items,
            &[],
            method,
        );
        counts(&o, (300, 300, 0, 0, 0, 0));
        assert!(
            stderr(&o).contains("straight into the partition"),
            "{method}: {}",
            stderr(&o)
        );
    }
}

/// An item `k{i:04}` of collection `c` titled `title`.
fn titled(c: &str, i: u32, title: &str) -> serde_json::Value {
    let mut v = item(&format!("k{i:04}"), c, 1.0 + f64::from(i) / 100.0, 2.0, 3);
    v["properties"]["title"] = json!(title);
    v
}

/// The input without earlier copies of an id a later copy repeats: what
/// "the last copy wins" stores. pypgstac's upsert and delsert keep the last
/// copy of ids repeated in different chunks of its input (10,000 items) and
/// fail on ids repeated within one, so this is what they are given.
fn last_copies(values: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<serde_json::Value> = values
        .iter()
        .rev()
        .filter(|v| seen.insert(v["id"].as_str().unwrap().to_string()))
        .cloned()
        .collect();
    out.reverse();
    out
}

/// Ids repeated in one load into an empty collection (next to each other
/// within a batch, across a batch boundary, far apart, and an identical
/// copy): the load takes the straight path for the rows before the repeat
/// and the method's merge from there; insert_ignore keeps the first copy
/// (as pypgstac does), upsert and delsert the last (as pypgstac does across
/// its chunks; it fails on repeats within one); each repeat counts as
/// skipped. A second load into the now non-empty collection merges
/// (nothing goes straight) and stores what pypgstac stores.
#[test]
fn ids_repeated_in_a_load_into_an_empty_collection_keep_the_copy_pypgstac_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, usize, u32, &str); 4] = [
        // (collection, where the repeat goes, the id repeated, its title)
        ("adjacent", 11, 10, "second"),
        ("boundary", 14, 13, "second"),
        ("far", 40, 0, "second"),
        ("identical", 40, 5, "first"),
    ];
    let collections: Vec<serde_json::Value> = cases
        .iter()
        .map(|(c, ..)| stac_util::collection(c))
        .collect();
    let cfile = write(
        dir.path(),
        "collections.ndjson",
        &collections
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>(),
    );
    for method in ["insert_ignore", "upsert", "delsert"] {
        let by_host = pgstac_db(&format!("oracle_repeat_{method}_host"));
        let by_pypgstac = pgstac_db(&format!("oracle_repeat_{method}_pypgstac"));
        ok(&load(&by_host, "collections", &[s(&cfile)]));
        pypgstac_load(&by_pypgstac, "collections", &cfile, "insert");
        let oracle_input = |values: &[serde_json::Value]| {
            if method == "insert_ignore" {
                values.to_vec()
            } else {
                last_copies(values)
            }
        };
        for (c, at, id, title) in cases {
            let mut values: Vec<serde_json::Value> =
                (0..40).map(|i| titled(c, i, "first")).collect();
            values.insert(at, titled(c, id, title));
            let name = format!("{method}-{c}");
            let f = write(
                dir.path(),
                &format!("{name}.ndjson"),
                &values.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            );
            // Batches of 7 rows: ids 7..13 are one batch, 14 starts the next.
            let o = load(
                &by_host,
                "items",
                &[
                    s(&f),
                    "--method",
                    method,
                    "--batch-size",
                    "7",
                    "--json",
                    "-v",
                ],
            );
            counts(&o, (41, 40, 1, 0, 0, 0));
            assert!(
                stderr(&o).contains("straight into the partition"),
                "{name}: {}",
                stderr(&o)
            );
            let kept: String = by_host
                .client()
                .query_one(
                    "SELECT content->'properties'->>'title' FROM pgstac.items WHERE collection = $1 AND id = $2",
                    &[&c, &format!("k{id:04}")],
                )
                .unwrap()
                .get(0);
            let expected = if method == "insert_ignore" {
                "first"
            } else {
                title
            };
            assert_eq!(kept, expected, "{name}");
            let p = write(
                dir.path(),
                &format!("{name}-oracle.ndjson"),
                &oracle_input(&values)
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>(),
            );
            pypgstac_load(&by_pypgstac, "items", &p, method);

            // Again, into the collection that now has items: half of them
            // and 20 new, changed, one of them twice.
            let mut again: Vec<serde_json::Value> =
                (20..60).map(|i| titled(c, i, "again")).collect();
            again.insert(30, titled(c, 49, "again twice"));
            let f = write(
                dir.path(),
                &format!("{name}-again.ndjson"),
                &again.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
            );
            let o = load(
                &by_host,
                "items",
                &[
                    s(&f),
                    "--method",
                    method,
                    "--batch-size",
                    "7",
                    "--json",
                    "-v",
                ],
            );
            let expected = match method {
                "insert_ignore" => (41, 20, 21, 0, 0, 0),
                _ => (41, 40, 1, 0, 0, 0),
            };
            counts(&o, expected);
            assert!(
                !stderr(&o).contains("straight into the partition"),
                "{name} again: {}",
                stderr(&o)
            );
            let p = write(
                dir.path(),
                &format!("{name}-again-oracle.ndjson"),
                &oracle_input(&again)
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>(),
            );
            pypgstac_load(&by_pypgstac, "items", &p, method);
        }
        let (h, p) = (item_rows(&by_host), item_rows(&by_pypgstac));
        assert_eq!(h.len(), 4 * 60, "{method}");
        assert_eq!(
            h, p,
            "{method}: host's rows (left) differ from pypgstac's (right)"
        );
        assert_eq!(
            partition_stats(&by_host),
            partition_stats(&by_pypgstac),
            "{method}: partition statistics"
        );
    }
}

/// Collection ids SQL must quote (quotes, double quotes, backslashes,
/// spaces, dots, upper case, non-ASCII), each loaded into its new, empty
/// collection: the load builds the partition itself (`CREATE TABLE ...
/// LIKE`, COPY, `ATTACH PARTITION ... FOR VALUES IN (id)`, `check_partition`),
/// stores what pypgstac stores (rows, collections, partition statistics and
/// definitions), and both host's and pgstac's search find the items.
#[test]
fn awkward_collection_ids_through_the_load_built_partition_store_what_pypgstac_stores() {
    let dir = tempfile::tempdir().unwrap();
    let ids = [
        "it's \"a\" coll.\\ Ünï",
        "UPPER.Case dots.",
        "back\\\\slash\\'s \"\"",
        "%I %L $1 ; DROP TABLE x; --",
        "日本語 コレクション",
    ];
    // pypgstac cannot read a JSON backslash escape in a file (its reader
    // turns `\\` into `\` before parsing): those ids are host's only, checked
    // by search and by their rows' ids below.
    let oracle = |c: &str| !c.contains('\\');
    let collections = |ids: &mut dyn Iterator<Item = &&str>| -> Vec<String> {
        ids.map(|c| stac_util::collection(c).to_string()).collect()
    };
    let cfile = write(
        dir.path(),
        "collections.ndjson",
        &collections(&mut ids.iter()),
    );
    let ofile = write(
        dir.path(),
        "oracle.ndjson",
        &collections(&mut ids.iter().filter(|c| oracle(c))),
    );
    let by_host = pgstac_db("oracle_awkward_host");
    let by_pypgstac = pgstac_db("oracle_awkward_pypgstac");
    ok(&load(&by_host, "collections", &[s(&cfile)]));
    pypgstac_load(&by_pypgstac, "collections", &ofile, "insert");
    for (k, c) in ids.iter().enumerate() {
        let values: Vec<String> = (0..5)
            .map(|i| item(&format!("i{i}"), c, 1.0 + f64::from(i), 2.0, i + 1).to_string())
            .collect();
        let f = write(dir.path(), &format!("items{k}.ndjson"), &values);
        let o = load(&by_host, "items", &[s(&f), "--json", "-v"]);
        counts(&o, (5, 5, 0, 0, 0, 0));
        assert!(
            stderr(&o).contains("a new table attached after COPY"),
            "{c}: the load did not build the partition: {}",
            stderr(&o)
        );
        if oracle(c) {
            pypgstac_load(&by_pypgstac, "items", &f, "insert");
        }
    }
    let of_oracle = |rows: Vec<Vec<Option<String>>>| -> Vec<Vec<Option<String>>> {
        rows.into_iter()
            .filter(|r| oracle(r[0].as_deref().unwrap()))
            .collect()
    };
    assert_eq!(of_oracle(item_rows(&by_host)), item_rows(&by_pypgstac));
    assert_eq!(item_rows(&by_host).len(), 5 * ids.len());
    let hc: Vec<_> = collections_of(&by_host, &[])
        .into_iter()
        .filter(|c| oracle(&c.0))
        .collect();
    assert_eq!(hc, collections_of(&by_pypgstac, &[]));
    let ps: Vec<_> = partition_stats(&by_host)
        .into_iter()
        .filter(|r| oracle(r[0].as_deref().unwrap()))
        .collect();
    assert_eq!(ps, partition_stats(&by_pypgstac));
    let pd: Vec<_> = partitions_of(&by_host)
        .into_iter()
        .filter(|p| oracle(&p.0))
        .collect();
    assert_eq!(pd, partitions_of(&by_pypgstac));
    for c in ids {
        let body = json!({"collections": [c], "limit": 100});
        let o = util::run(&["search", &body.to_string(), "--dsn", &by_host.dsn]);
        assert!(o.status.success(), "host search {body}: {}", stderr(&o));
        let page: Value = serde_json::from_slice(&o.stdout).unwrap();
        let found = |page: &Value| -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = page["features"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["collection"].as_str().unwrap().to_string(),
                        f["id"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        let expected: Vec<(String, String)> =
            (0..5).map(|i| (c.to_string(), format!("i{i}"))).collect();
        assert_eq!(found(&page), expected, "host search in {c}");
        assert_eq!(
            found(&pgstac_util::pgstac_search(&by_host, &body)),
            expected,
            "pgstac search in {c}"
        );
    }
}
