//! Issue 14, many tenants in one process: `host load items --policy P`
//! without `--tenant` sends each item through the chain of the one tenant
//! whose scope holds its collection, in that tenant's sandbox; a noisy
//! tenant (looping, allocating, flooding) affects only its own items.

#[rustfmt::skip]
mod util;
mod stac_util;

use std::path::{Path, PathBuf};

use serde_json::Value;
use stac_util::{add_collection, item, migrated, ndjson, s};
use util::{
    TestDb, host, reject_lines as rejects, run_peak, sha256_file as digest, stderr, stdout, wasm,
};

/// A policy allowing `hostile` and `set_collection`, with `tenants` (TOML
/// tables after `[tenants.NAME]` headers, given whole).
fn policy(dir: &Path, budget: &str, tenants: &str) -> PathBuf {
    let hostile = wasm("hostile");
    let set = wasm("set_collection");
    let text = format!(
        "[budget]\nmemory = \"{budget}\"\n\n\
         [plugins.hostile]\nsha256 = \"{}\"\nlocation = \"{}\"\n\n\
         [plugins.set_collection]\nsha256 = \"{}\"\nlocation = \"{}\"\n\n{tenants}",
        digest(&hostile),
        hostile.display(),
        digest(&set),
        set.display(),
    );
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every column of the items of collections matching `like`, as text, in order.
fn rows(db: &TestDb, like: &str) -> Vec<String> {
    db.client()
        .query(
            "SELECT i::text FROM host.items i WHERE collection LIKE $1 ORDER BY collection, id",
            &[&like],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn tenant<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == name)
        .unwrap_or_else(|| panic!("no tenant {name} in {summary}"))
}

#[test]
fn each_item_goes_through_its_own_tenants_chain_or_is_rejected_naming_why() {
    let db = migrated("tenants_route");
    let dir = tempfile::tempdir().unwrap();
    for c in ["a-1", "b-1", "b-2", "nobody", "shared", "s"] {
        add_collection(&db, dir.path(), c);
    }
    let p = policy(
        dir.path(),
        "1GiB",
        r#"[tenants.a]
plugins = ["hostile"]
params.hostile = { mode = "reject-seen" }
scope = { collections = ["a-*", "shared*"] }

[tenants.b]
plugins = ["set_collection"]
params.set_collection = { collection = "b-2" }
scope = { collections = ["b-*", "shared"] }
"#,
    );
    let mut nameless = item("n1", "x", 1.0, 2.0, 1);
    nameless.as_object_mut().unwrap().remove("collection");
    let items = ndjson(
        dir.path(),
        "items.ndjson",
        &[
            item("a1", "a-1", 1.0, 2.0, 1),
            item("b1", "b-1", 1.0, 2.0, 1),
            item("x1", "nobody", 1.0, 2.0, 1),
            item("s1", "shared", 1.0, 2.0, 1),
            nameless,
            item("b2", "b-1", 1.0, 2.0, 2),
        ],
    );
    let rej = dir.path().join("rejects.ndjson");
    let out = host()
        .args([
            "load",
            "items",
            s(&items),
            "--dsn",
            &db.dsn,
            "--policy",
            s(&p),
        ])
        .args(["--reject-file", s(&rej), "--json", "--batch-size", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let summary: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(summary["read"], 6);
    assert_eq!(summary["loaded"], 2);
    assert_eq!(summary["rejected"], 4);
    let a = tenant(&summary, "a");
    assert_eq!(
        (
            a["read"].as_u64(),
            a["written"].as_u64(),
            a["rejected"].as_u64()
        ),
        (Some(1), Some(0), Some(1))
    );
    let b = tenant(&summary, "b");
    assert_eq!(
        (
            b["read"].as_u64(),
            b["written"].as_u64(),
            b["rejected"].as_u64()
        ),
        (Some(2), Some(2), Some(0))
    );
    assert_eq!(b["plugin_failures"], 0);
    let mut seen: Vec<(String, String, String)> = rejects(&rej)
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or("").to_string(),
                r["stage"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let expected: Vec<(String, String, String)> = [
        ("a1", "plugin hostile", "saw a1"),
        (
            "n1",
            "scope",
            "the item names no collection, so no tenant may take it",
        ),
        (
            "s1",
            "scope",
            "collection \"shared\" is in the scope of tenants `a` and `b`: it goes to none of them",
        ),
        (
            "x1",
            "scope",
            "collection \"nobody\" is in no tenant's scope",
        ),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.into(), b.into(), c.into()))
    .collect();
    assert_eq!(seen, expected);
    // b's chain ran on b's items only: both moved into b-2.
    let stored: Vec<String> = db
        .client()
        .query(
            "SELECT collection || '/' || id FROM host.items ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored, ["b-2/b1", "b-2/b2"]);

    // Without a reject file the first turned-away item fails the load: nothing written.
    let db2 = migrated("tenants_route_atomic");
    for c in ["a-1", "b-1", "b-2", "nobody", "shared"] {
        add_collection(&db2, dir.path(), c);
    }
    let out = host()
        .args([
            "load",
            "items",
            s(&items),
            "--dsn",
            &db2.dsn,
            "--policy",
            s(&p),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("saw a1") || stderr(&out).contains("no tenant"),
        "{}",
        stderr(&out)
    );
    assert!(rows(&db2, "%").is_empty());

    // --plugin names one tenant's plugins: a usage error without --tenant.
    let out = host()
        .args([
            "load",
            "items",
            s(&items),
            "--dsn",
            &db2.dsn,
            "--policy",
            s(&p),
        ])
        .args(["--plugin", "hostile"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// The later copy of an id wins whichever tenant's lane wrote it: rows are
/// numbered by their place in the input, not in their lane.
#[test]
fn the_later_copy_wins_across_tenants() {
    let db = migrated("tenants_seq");
    let dir = tempfile::tempdir().unwrap();
    for c in ["a-1", "b-1", "s"] {
        add_collection(&db, dir.path(), c);
    }
    let p = policy(
        dir.path(),
        "1GiB",
        r#"[tenants.a]
plugins = ["set_collection"]
params.set_collection = { collection = "s" }
scope = { collections = ["a-*", "s*"] }

[tenants.b]
plugins = ["set_collection"]
params.set_collection = { collection = "s" }
scope = { collections = ["b-*", "s"] }
"#,
    );
    for (first, second) in [("a-1", "b-1"), ("b-1", "a-1")] {
        let items = ndjson(
            dir.path(),
            "items.ndjson",
            &[
                item("x", first, 1.0, 2.0, 1),
                item("x", second, 3.0, 4.0, 2),
            ],
        );
        let out = host()
            .args([
                "load",
                "items",
                s(&items),
                "--dsn",
                &db.dsn,
                "--policy",
                s(&p),
            ])
            .args(["--method", "upsert", "--batch-size", "1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let x: f64 = db
            .client()
            .query_one("SELECT ST_X(geometry) FROM host.items WHERE id = 'x'", &[])
            .unwrap()
            .get(0);
        assert_eq!(x, 3.0, "the second copy (from {second}) wins");
    }
}

/// Hostile tenants (looping, allocating past their cap, handing back 500 MB,
/// flooding stderr) beside tenant b: b's rows are byte-identical to a solo
/// run, every failure is reported, the run ends in bounded time, and peak
/// memory stays within the policy's budget.
#[test]
fn a_noisy_neighbour_leaves_the_other_tenant_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = [
        ("loop", "loop"),
        ("alloc", "alloc"),
        ("big", "reject-bytes:2000000"),
        ("flood", "stderr:4000000"),
    ];
    let mut tenants = String::from(
        "[tenants.b]\nplugins = [\"set_collection\"]\n\
         params.set_collection = { collection = \"b-out\" }\n\
         scope = { collections = [\"b-*\"] }\nlimits = { memory = \"64MiB\" }\n\n",
    );
    for (name, mode) in hostile {
        tenants += &format!(
            "[tenants.{name}]\nplugins = [\"hostile\"]\nparams.hostile = {{ mode = \"{mode}\" }}\n\
             scope = {{ collections = [\"{name}\"] }}\n\
             limits = {{ memory = \"64MiB\", time = \"300ms\", cpu = \"1s\", output = \"64KiB\" }}\n\n"
        );
    }
    let budget_mib = 512;
    let p = policy(dir.path(), &format!("{budget_mib}MiB"), &tenants);
    let mut mixed = Vec::new();
    let mut solo = Vec::new();
    for i in 0..2000 {
        let b = item(&format!("b{i}"), "b-in", f64::from(i % 90), 1.0, 1 + i % 28);
        solo.push(b.clone());
        mixed.push(b);
        if i % 10 == 0 {
            let (name, _) = hostile[(i / 10) as usize % hostile.len()];
            mixed.push(item(&format!("{name}{i}"), name, 1.0, 2.0, 1));
        }
    }
    let mixed = ndjson(dir.path(), "mixed.ndjson", &mixed);
    let solo = ndjson(dir.path(), "solo.ndjson", &solo);

    let audit = dir.path().join("audit.jsonl");
    let run = |db: &TestDb, input: &Path, rej: &Path| {
        for c in ["b-in", "b-out", "loop", "alloc", "big", "flood"] {
            add_collection(db, dir.path(), c);
        }
        let started = std::time::Instant::now();
        let (out, kib) = run_peak(
            &[
                "load",
                "items",
                s(input),
                "--dsn",
                &db.dsn,
                "--policy",
                s(&p),
                "--reject-file",
                s(rej),
                "--json",
                "--batch-size",
                "16",
                "--audit",
                s(&audit),
            ],
            b"",
        );
        (out, kib, started.elapsed())
    };
    let solo_db = migrated("tenants_noisy_solo");
    let (out, _, _) = run(&solo_db, &solo, &dir.path().join("solo-rejects.ndjson"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let solo_audit = audit_lines(&audit);
    std::fs::remove_file(&audit).unwrap();
    assert!(
        solo_audit
            .iter()
            .all(|l| l["tenant"] == "b" && l["outcome"] == "ok")
    );

    let db = migrated("tenants_noisy");
    let rej = dir.path().join("rejects.ndjson");
    let (out, kib, took) = run(&db, &mixed, &rej);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(took.as_secs() < 120, "took {took:?}");
    assert!(
        kib < budget_mib * 1024,
        "peak {} MiB over the {budget_mib} MiB budget",
        kib / 1024
    );
    // The flood (4 MB a call, 50 calls) is cut to its 64 KiB output limit per call.
    assert!(err.len() < 4 << 20, "{} bytes of stderr", err.len());

    // b: byte-identical rows, every column.
    let b_rows = rows(&db, "b-%");
    assert_eq!(b_rows.len(), 2000);
    assert_eq!(b_rows, rows(&solo_db, "b-%"));
    assert!(rows(&db, "loop").is_empty() && rows(&db, "alloc").is_empty());

    // Every hostile item is in the reject file, with why.
    let summary: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let b = tenant(&summary, "b");
    assert_eq!(
        (
            b["read"].as_u64(),
            b["written"].as_u64(),
            b["rejected"].as_u64()
        ),
        (Some(2000), Some(2000), Some(0))
    );
    assert_eq!(b["plugin_failures"], 0);
    let lines = rejects(&rej);
    // loop, alloc and big: 50 items each (flood's pass through).
    assert_eq!(lines.len(), 150, "{err}");
    assert_eq!(summary["rejected"], 150);
    let reason_of = |prefix: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l["id"].as_str().unwrap().starts_with(prefix))
            .map(|l| l["reason"].as_str().unwrap().to_string())
            .collect()
    };
    let looped = tenant(&summary, "loop");
    assert!(
        looped["limit_hits"]["time"].as_u64().unwrap() >= 1,
        "{looped}"
    );
    assert!(
        looped["limit_hits"]["cpu"].as_u64().unwrap() >= 1,
        "{looped}"
    );
    assert!(
        reason_of("loop")
            .iter()
            .any(|r| r.contains("time limit (300ms, tenant `loop`'s limits.time in policy")),
        "{:?}",
        reason_of("loop")
    );
    assert!(
        reason_of("loop")
            .iter()
            .any(|r| r.contains("plugin CPU time")),
        "{:?}",
        reason_of("loop")
    );
    let alloc = tenant(&summary, "alloc");
    assert!(
        alloc["limit_hits"]["memory"].as_u64().unwrap() >= 1,
        "{alloc}"
    );
    assert!(
        reason_of("alloc")
            .iter()
            .all(|r| r.contains("memory limit")),
        "{:?}",
        reason_of("alloc")
    );
    // Megabytes of reason per item: refused as too much data when a batch's
    // total passes the transfer limit, stopped at the memory cap once the
    // plugin's leaked reasons fill it, else cut to the message limit.
    let big = reason_of("big");
    assert_eq!(big.len(), 50);
    assert!(
        big.iter().all(|r| r.contains("too much data")
            || r.contains("memory limit")
            || (r.starts_with("RRRR") && r.len() < 1200)),
        "{:?}",
        big.iter()
            .filter(|r| !r.starts_with("RRRR"))
            .collect::<Vec<_>>()
    );
    assert_eq!(tenant(&summary, "big")["rejected"], 50);
    // The flood is cut to the output limit; its items pass through untouched.
    let flood = tenant(&summary, "flood");
    assert_eq!(flood["written"], 50, "{flood}");

    // Every batch is audited, every failure with its kind, and the lines
    // add up to each tenant's summary.
    let log = audit_lines(&audit);
    for name in ["b", "loop", "alloc", "big", "flood"] {
        let t = tenant(&summary, name);
        let mine: Vec<&Value> = log.iter().filter(|l| l["tenant"] == name).collect();
        let sum = |key: &str| mine.iter().map(|l| l[key].as_u64().unwrap()).sum::<u64>();
        assert_eq!(sum("records_in"), t["read"].as_u64().unwrap(), "{name}");
        assert_eq!(sum("records_out"), t["written"].as_u64().unwrap(), "{name}");
        assert_eq!(sum("rejected"), t["rejected"].as_u64().unwrap(), "{name}");
        let failed = mine.iter().filter(|l| l["outcome"] != "ok").count() as u64;
        let hits = &t["limit_hits"];
        assert_eq!(
            failed,
            t["plugin_failures"].as_u64().unwrap() + hits["cpu"].as_u64().unwrap(),
            "{name}: {mine:?}"
        );
        for (kind, key) in [("time", "time"), ("memory", "memory"), ("cpu", "cpu")] {
            let n = mine.iter().filter(|l| l["limit"] == kind).count() as u64;
            assert_eq!(n, hits[key].as_u64().unwrap(), "{name} {kind}");
        }
        let digest = if name == "b" {
            digest(&wasm("set_collection"))
        } else {
            digest(&wasm("hostile"))
        };
        for l in &mine {
            assert_eq!(l["plugins"][0]["sha256"], digest.as_str(), "{l}");
            assert!(
                l["peak_memory"].as_u64().unwrap() > 0 || l["limit"] == "cpu",
                "{l}"
            );
            if l["outcome"] != "ok" {
                assert!(l["error"].is_string() || l["limit"] == "cpu", "{l}");
            }
        }
    }
    let b_lines: Vec<&Value> = log.iter().filter(|l| l["tenant"] == "b").collect();
    assert!(b_lines.iter().all(|l| l["outcome"] == "ok"));
    // (Solo, b's batches are whole; mixed, the hostile items split them.)
    assert_eq!(solo_audit.len(), 2000_usize.div_ceil(16));
    let alloc_lines = log.iter().filter(|l| l["tenant"] == "alloc");
    assert!(alloc_lines.clone().all(|l| l["outcome"] == "limit"));
    // The memory an instance held is its cap at most: summed over its memories.
    assert!(
        alloc_lines
            .clone()
            .all(|l| l["peak_memory"].as_u64().unwrap() <= 64 << 20),
        "{:?}",
        alloc_lines.collect::<Vec<_>>()
    );
}

fn audit_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
