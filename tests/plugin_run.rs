//! `host plugin run` and `host plugin inspect` end to end: the real binary,
//! the real example plugins on real STAC items and generated rows, and
//! hostile plugins that the sandbox must stop.

mod util;

use std::io::{Read, Write};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::{fixture, host, run_stdin, stderr, stdout, wasm};

fn lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad output line {l}: {e}")))
        .collect()
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

fn naip() -> Vec<u8> {
    std::fs::read(fixture("stac/planetary-computer/naip-items.ndjson")).unwrap()
}

fn input_items(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

// ---------------------------------------------------------------- set_collection

#[test]
fn set_collection_moves_all_naip_items_and_relinks_them() {
    let input = naip();
    let originals = input_items(&input);
    let sc = wasm("set_collection");
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&sc),
            "--plugin-arg",
            "collection=my-naip",
        ],
        &input,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let items = lines(&out);
    assert_eq!(items.len(), originals.len());
    assert_eq!(items.len(), 1000);
    for (got, orig) in items.iter().zip(&originals) {
        assert_eq!(got["id"], orig["id"], "order and ids are kept");
        assert_eq!(got["collection"], "my-naip");
        for link in got["links"].as_array().unwrap() {
            let rel = link["rel"].as_str().unwrap();
            let href = link["href"].as_str().unwrap();
            if rel == "collection" || rel == "parent" {
                assert!(
                    href.ends_with("/collections/my-naip"),
                    "{rel} link not fixed: {href}"
                );
            }
            assert!(
                !href.ends_with("/collections/naip"),
                "a link still points at the old collection: {href}"
            );
        }
        // Everything else is untouched.
        for key in [
            "geometry",
            "bbox",
            "properties",
            "assets",
            "stac_extensions",
            "type",
        ] {
            assert_eq!(got.get(key), orig.get(key), "{key} changed");
        }
    }
    assert!(
        stderr(&out).contains("1000 items read, 1000 kept"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn set_collection_keeps_escapes_byte_for_byte() {
    let item = r#"{"type":"Feature","id":"esc","collection":"c","properties":{"title":"caf\u00e9 \\ \"q\" \ud83d\ude00","datetime":null},"links":[],"assets":{}}"#;
    let sc = wasm("set_collection");
    // Same collection: nothing to change, so the item must come out exactly as it went in.
    let out = run_stdin(
        &["plugin", "run", path(&sc), "--plugin-arg", "collection=c"],
        item.as_bytes(),
    );
    assert_eq!(stdout(&out).trim_end(), item);
    // Another collection: only the collection value changes; the escaped text stays as written.
    let out = run_stdin(
        &["plugin", "run", path(&sc), "--plugin-arg", "collection=d"],
        item.as_bytes(),
    );
    let text = stdout(&out);
    assert!(
        text.contains(r#""title":"caf\u00e9 \\ \"q\" \ud83d\ude00""#),
        "{text}"
    );
    assert!(text.contains(r#""collection":"d""#), "{text}");
}

#[test]
fn set_collection_rejects_items_without_id_and_says_where() {
    let input =
        b"{\"type\":\"Feature\",\"id\":\"a\",\"links\":[]}\n{\"type\":\"Feature\",\"links\":[]}\n";
    let sc = wasm("set_collection");
    let out = run_stdin(
        &["plugin", "run", path(&sc), "--plugin-arg", "collection=x"],
        input,
    );
    assert_eq!(out.status.code(), Some(3), "rejections give exit code 3");
    assert_eq!(lines(&out).len(), 1);
    let err = stderr(&out);
    assert!(err.contains("rejected <stdin>:2"), "{err}");
    assert!(err.contains("set_collection"), "{err}");
    assert!(err.contains("no `id`"), "{err}");
}

#[test]
fn bad_parameters_are_refused_before_anything_runs() {
    let sc = wasm("set_collection");
    let out = run_stdin(&["plugin", "run", path(&sc)], b"{}\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("set_collection refused its parameters"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("collection"), "{}", stderr(&out));
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&sc),
            "--plugin-arg",
            "collection=x",
            "--plugin-arg",
            "colour=red",
        ],
        b"{}\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("colour"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

// ---------------------------------------------------------------- where_filter

#[test]
fn where_filter_keeps_items_by_collection_bbox_and_datetime() {
    let input = naip();
    let originals = input_items(&input);
    let wf = wasm("where_filter");
    // A bbox around part of the data, computed from the data itself.
    let xs: Vec<f64> = originals
        .iter()
        .map(|i| i["bbox"][0].as_f64().unwrap())
        .collect();
    let mid = {
        let mut v = xs.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let bbox = format!("bbox={},-90,180,90", mid);
    let expected: Vec<&Value> = originals
        .iter()
        .filter(|i| i["bbox"][2].as_f64().unwrap() >= mid)
        .collect();
    let out = run_stdin(&["plugin", "run", path(&wf), "--plugin-arg", &bbox], &input);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = lines(&out);
    assert!(!expected.is_empty() && expected.len() < originals.len());
    assert_eq!(got.len(), expected.len());
    assert!(got.iter().zip(expected).all(|(g, e)| g["id"] == e["id"]));

    // Datetime range over the items' own datetimes.
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&wf),
            "--plugin-arg",
            "datetime=2021-01-01T00:00:00Z/..",
        ],
        &input,
    );
    let expected = originals
        .iter()
        .filter(|i| i["properties"]["datetime"].as_str().unwrap() >= "2021-01-01T00:00:00Z")
        .count();
    assert_eq!(lines(&out).len(), expected);
    assert!(expected > 0 && expected < originals.len());

    // Collection: nothing is in "other", everything is in "naip".
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&wf),
            "--plugin-arg",
            "collection=other",
        ],
        &input,
    );
    assert_eq!(lines(&out).len(), 0);
    assert!(stderr(&out).contains("1000 dropped"), "{}", stderr(&out));
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&wf),
            "--plugin-arg",
            "collection=other,naip",
        ],
        &input,
    );
    assert_eq!(lines(&out).len(), 1000);
}

#[test]
fn chain_runs_in_order_with_arguments_bound_to_their_plugin() {
    let input = naip();
    let (wf, sc) = (wasm("where_filter"), wasm("set_collection"));
    // The filter sees the original collection; set_collection runs after it.
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&wf),
            "--plugin-arg",
            "collection=naip",
            "--plugin",
            path(&sc),
            "--plugin-arg",
            "collection=renamed",
        ],
        &input,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let items = lines(&out);
    assert_eq!(items.len(), 1000);
    assert!(items.iter().all(|i| i["collection"] == "renamed"));
    // Reversed, the filter sees the new collection and drops everything.
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&sc),
            "--plugin-arg",
            "collection=renamed",
            "--plugin",
            path(&wf),
            "--plugin-arg",
            "collection=naip",
        ],
        &input,
    );
    assert_eq!(lines(&out).len(), 0);
}

// ---------------------------------------------------------------- anonymize (rows)

fn generated_rows(n: usize) -> String {
    let mut s = String::from("id,email,phone,name,note\n");
    for i in 0..n {
        let email = if i % 7 == 0 {
            String::new()
        } else {
            format!("person{i}@corp.example")
        };
        let note = if i % 5 == 0 {
            "\"\"".to_string()
        } else {
            format!("note {i}")
        };
        s += &format!(
            "{i},{email},+1-555-{:04},First{i} Last{i},{note}\n",
            i % 10000
        );
    }
    s
}

fn parse_csv(text: &str) -> Vec<Vec<Option<String>>> {
    // The host writes NULL as an empty unquoted field and '' as "".
    text.lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .map(|f| match f {
                    "" => None,
                    "\"\"" => Some(String::new()),
                    f => Some(f.to_string()),
                })
                .collect()
        })
        .collect()
}

#[test]
fn anonymize_is_keyed_deterministic_and_keeps_nulls() {
    let input = generated_rows(2000);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("users.csv");
    std::fs::write(&csv, &input).unwrap();
    let an = wasm("anonymize");
    let args = |key: &str| {
        vec![
            "plugin".to_string(),
            "run".into(),
            path(&an).into(),
            "--rows".into(),
            csv.to_str().unwrap().into(),
            "--plugin-arg".into(),
            format!("key={key}"),
            "--plugin-arg".into(),
            "email=email".into(),
            "--plugin-arg".into(),
            "phone=phone".into(),
            "--plugin-arg".into(),
            "name=name".into(),
        ]
    };
    let a1 = host().args(args("k1")).output().unwrap();
    let a2 = host().args(args("k1")).output().unwrap();
    let b = host().args(args("k2")).output().unwrap();
    assert_eq!(a1.status.code(), Some(0), "{}", stderr(&a1));
    assert_eq!(stdout(&a1), stdout(&a2), "same key, same output");
    let (ra, rb, orig) = (
        parse_csv(&stdout(&a1)),
        parse_csv(&stdout(&b)),
        parse_csv(&input),
    );
    assert_eq!(ra.len(), 2000);
    for ((x, y), o) in ra.iter().zip(&rb).zip(&orig) {
        assert_eq!(x[0], o[0], "id kept");
        assert_eq!(x[4], o[4], "note kept, including the empty string");
        match &o[1] {
            None => assert_eq!(x[1], None, "NULL stays NULL"),
            Some(e) => {
                let got = x[1].as_deref().unwrap();
                assert!(
                    got.starts_with("user-") && got.ends_with("@example.com"),
                    "{got}"
                );
                assert_ne!(got, e);
                assert_ne!(x[1], y[1], "another key gives another pseudonym");
            }
        }
        let phone = x[2].as_deref().unwrap();
        assert_eq!(
            phone.len(),
            o[2].as_deref().unwrap().len(),
            "phone keeps its shape"
        );
        assert!(
            phone.starts_with("+") && phone.chars().filter(|c| *c == '-').count() == 2,
            "{phone}"
        );
        assert_ne!(x[3], o[3]);
    }
    // Distinct inputs stay (almost always) distinct.
    let distinct: std::collections::HashSet<_> = ra.iter().filter_map(|r| r[1].clone()).collect();
    assert!(distinct.len() > 1700, "{}", distinct.len());
}

#[test]
fn anonymize_over_copy_text_with_types_and_a_where_filter_chain() {
    // COPY text with escapes and NULLs, typed columns, filter then anonymize.
    let rows = "1\talice@x.org\t\\N\n2\tbob@x.org\tline\\nbreak\n3\t\\N\ttab\\there\n";
    let (an, wf) = (wasm("anonymize"), wasm("where_filter"));
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&wf),
            "--rows",
            "--columns",
            "id:integer,email,note",
            "--plugin-arg",
            "where.id.gte=2",
            "--plugin",
            path(&an),
            "--plugin-arg",
            "key=k",
            "--plugin-arg",
            "email=email",
        ],
        rows.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = stdout(&out);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 2, "{got}");
    assert!(
        lines[0].starts_with("2\tuser-") && lines[0].ends_with("\tline\\nbreak"),
        "{got}"
    );
    assert_eq!(
        lines[1], "3\t\\N\ttab\\there",
        "NULL email stays NULL, escapes kept"
    );

    // A numeric range compares numbers, not text: 10 >= 9.
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&wf),
            "--rows",
            "--columns",
            "n:integer",
            "--plugin-arg",
            "where.n.gte=9",
        ],
        b"10\n8\n9\n",
    );
    assert_eq!(stdout(&out), "10\n9\n");
}

#[test]
fn anonymize_refuses_unknown_columns_and_wrong_types_naming_the_table() {
    let an = wasm("anonymize");
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&an),
            "--rows",
            "--columns",
            "id,email",
            "--table",
            "app.users",
            "--plugin-arg",
            "key=k",
            "--plugin-arg",
            "emial=email",
        ],
        b"1\ta@b.c\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("app.users") && err.contains("emial"), "{err}");
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&an),
            "--rows",
            "--columns",
            "id:integer,email",
            "--plugin-arg",
            "key=k",
            "--plugin-arg",
            "id=email",
        ],
        b"1\ta@b.c\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("integer"), "{}", stderr(&out));
}

#[test]
fn rows_with_the_wrong_number_of_fields_are_an_error_naming_the_line() {
    let an = wasm("anonymize");
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&an),
            "--rows",
            "--columns",
            "a,b",
            "--plugin-arg",
            "key=k",
            "--plugin-arg",
            "a=keep",
        ],
        b"1\t2\n3\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
}

#[test]
fn a_row_plugin_cannot_take_items_and_says_so() {
    let an = wasm("anonymize");
    let out = run_stdin(
        &["plugin", "run", path(&an), "--plugin-arg", "key=k"],
        b"{}\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("row-transformer"), "{}", stderr(&out));
}

// ---------------------------------------------------------------- hostile plugins

fn three_items() -> &'static [u8] {
    b"{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n"
}

fn hostile(mode: &str, extra: &[&str], input: &[u8]) -> Output {
    let h = wasm("hostile");
    let mode = format!("mode={mode}");
    let mut args = vec!["plugin", "run", path(&h), "--plugin-arg", &mode];
    args.extend_from_slice(extra);
    run_stdin(&args, input)
}

#[test]
fn an_infinite_loop_is_stopped_at_the_deadline_and_the_next_batch_runs() {
    // Warm the compile cache so timing measures the run, not Cranelift.
    assert!(hostile("ok", &[], three_items()).status.success());
    let started = Instant::now();
    let ok = hostile("ok", &["--batch-size", "1"], three_items());
    let baseline = started.elapsed();
    assert!(ok.status.success());

    let started = Instant::now();
    let out = hostile(
        "loop",
        &["--batch-size", "1", "--plugin-time", "300ms"],
        b"{\"id\":\"a\"}\n",
    );
    let looped = started.elapsed();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("plugin hostile exceeded its time limit"),
        "{err}"
    );
    assert!(err.contains("batch 1"), "{err}");
    assert!(
        looped.saturating_sub(baseline) < Duration::from_millis(600),
        "stopped after {looped:?} (baseline {baseline:?}); the deadline is 300ms"
    );

    // Three batches, each stopped; the host keeps going and accounts for every item.
    let out = hostile(
        "loop",
        &["--batch-size", "1", "--plugin-time", "100ms"],
        three_items(),
    );
    let err = stderr(&out);
    assert_eq!(err.matches("exceeded its time limit").count(), 3, "{err}");
    assert!(
        err.contains("3 items read, 0 kept, 0 dropped, 3 rejected"),
        "{err}"
    );
}

#[test]
fn fuel_bounds_the_instructions_of_a_call() {
    let out = hostile(
        "loop",
        &["--plugin-fuel", "5000000", "--plugin-time", "10s"],
        three_items(),
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("plugin hostile exceeded its fuel limit"),
        "{}",
        stderr(&out)
    );
    // Enough fuel for honest work.
    let out = hostile("ok", &["--plugin-fuel", "50000000"], three_items());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lines(&out).len(), 3);
}

#[test]
fn a_panic_is_shown_and_only_its_batch_is_lost() {
    let out = hostile("panic-on-id:b", &["--batch-size", "1"], three_items());
    assert_eq!(out.status.code(), Some(4));
    let ids: Vec<Value> = lines(&out).into_iter().map(|i| i["id"].clone()).collect();
    assert_eq!(
        ids,
        vec!["a", "c"],
        "the batches before and after the panic are kept"
    );
    let err = stderr(&out);
    assert!(err.contains("plugin hostile trapped on batch 2"), "{err}");
    assert!(
        err.contains("hostile plugin panicked on purpose on item b"),
        "{err}"
    );
    assert!(err.contains("1 rejected"), "{err}");
}

#[test]
fn allocating_a_gigabyte_hits_the_memory_cap() {
    let out = hostile("alloc", &["--batch-size", "2"], three_items());
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(
        err.contains("plugin hostile exceeded its memory limit"),
        "{err}"
    );
    assert_eq!(
        err.matches("exceeded its memory limit").count(),
        2,
        "both batches: {err}"
    );
    assert!(stdout(&out).is_empty());
    // With a cap big enough, the same plugin runs (and time enough to touch a
    // gigabyte on a busy machine: this run is about memory, not the deadline).
    let out = hostile(
        "alloc",
        &[
            "--plugin-memory",
            "1200MiB",
            "--plugin-time",
            "30s",
            "--batch-size",
            "3",
        ],
        three_items(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lines(&out)[0]["allocated_bytes"], 1u64 << 30);
}

#[test]
fn the_sandbox_has_no_files_no_environment_and_no_network() {
    // file
    let out = hostile("file", &[], three_items());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("reading /etc/passwd failed"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("root:"));
    // env and args: set a secret in the host's environment; the plugin must not see it.
    let h = wasm("hostile");
    let mut child = host()
        .args(["plugin", "run", path(&h), "--plugin-arg", "mode=env"])
        .env("HOST_SECRET", "s3cret-value")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(three_items())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("no environment variable and no argument visible"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("s3cret-value"));
    // socket: even to the database port, which is listening here.
    let out = hostile("socket", &[], three_items());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("connecting to 127.0.0.1:55432 failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn broken_contracts_are_caught_and_named() {
    let out = hostile("wrong-count", &[], three_items());
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("returned 2 results for 3 records"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());

    let out = hostile("bad-json", &[], three_items());
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("returned invalid JSON for record 1"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

/// One spoiled item among honest ones is caught, whatever the spoiling: the
/// error names the plugin and the record, the lie never reaches the output,
/// and the next batch runs.
#[test]
fn one_lying_item_is_refused_naming_the_plugin_and_the_record() {
    for (lie, why) in [
        ("non-object", "expected a JSON object"),
        ("two-objects", "trailing characters"),
        ("trailing", "trailing characters"),
        ("truncated", "expected ',' or '}'"),
        ("empty", "expected a JSON object"),
        ("nul", "\\u0000 escape, which PostgreSQL cannot store"),
        ("surrogate", "lone surrogate escape"),
    ] {
        let out = hostile(&format!("lie:{lie}"), &["--batch-size", "2"], three_items());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{lie}: {err}");
        assert!(
            err.contains("plugin hostile")
                && err.contains("returned invalid JSON for record 2 of batch 1 (2 records)")
                && err.contains(why),
            "{lie}: {err}"
        );
        // Batch 1 (a, b) is refused whole; batch 2 (c) is honest.
        assert_eq!(lines(&out), vec![json!({"id": "c"})], "{lie}: {err}");
    }
}

#[test]
fn plugin_output_is_captured_bounded_and_labelled() {
    let out = hostile("stdout", &["--plugin-output", "4KiB"], three_items());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Data on stdout is only the items: the plugin's own stdout never mixes in.
    assert_eq!(lines(&out).len(), 3);
    let err = stderr(&out);
    assert!(
        err.contains("[hostile stderr] hostile plugin wrote 100 KB to stdout"),
        "{err}"
    );
    assert!(err.contains("[hostile stdout] xxxx"), "{err}");
    assert!(err.contains("bytes dropped (output limit)"), "{err}");
    assert!(
        err.len() < 20_000,
        "the capture is bounded: {} bytes of log",
        err.len()
    );
}

#[test]
fn reject_file_gets_each_record_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let out = hostile(
        "panic-on-id:b",
        &[
            "--batch-size",
            "1",
            "--reject-file",
            rejects.to_str().unwrap(),
        ],
        three_items(),
    );
    assert_eq!(out.status.code(), Some(4));
    let text = std::fs::read_to_string(&rejects).unwrap();
    let recs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["record"]["id"], "b");
    assert_eq!(recs[0]["plugin"], "hostile");
    assert_eq!(recs[0]["at"], "<stdin>:2 (item b)");
    assert!(recs[0]["reason"].as_str().unwrap().contains("panicked"));
}

/// Rejected rows reach the reject file as they were read, with their line,
/// in every batch (the host keeps the input rows for reports only when a
/// batch has a rejection); batches without one report nothing.
#[test]
fn reject_file_gets_each_rejected_row_as_read() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let rh = wasm("row_hostile");
    // Batches of 2: (1, 2 bad) (3, 4) (5 bad, 6 bad).
    let rows = "1\tok\n2\tbad\n3\tok\n4\tok\n5\tbad\n6\tbad\n";
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&rh),
            "--rows",
            "--columns",
            "n:integer,v",
            "--plugin-arg",
            "reject-on=bad",
            "--batch-size",
            "2",
            "--reject-file",
            rejects.to_str().unwrap(),
        ],
        rows.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1\tok\n3\tok\n4\tok\n");
    let text = std::fs::read_to_string(&rejects).unwrap();
    let recs: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["at"].as_str().unwrap().into(),
                v["record"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        recs,
        [
            ("<stdin>:2", "2\tbad"),
            ("<stdin>:5", "5\tbad"),
            ("<stdin>:6", "6\tbad")
        ]
        .map(|(a, r)| (a.to_string(), r.to_string()))
    );
}

// ---------------------------------------------------------------- loading, pinning, caching

#[test]
fn a_pinned_plugin_with_the_wrong_digest_is_refused() {
    let sc = wasm("set_collection");
    let good = util::sha256_file(&sc);
    let bad = "0".repeat(64);
    let pinned = format!("{}#sha256={bad}", path(&sc));
    let out = run_stdin(
        &["plugin", "run", &pinned, "--plugin-arg", "collection=x"],
        three_items(),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("has SHA-256 {good}")) && err.contains("refusing to run"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    let out = run_stdin(
        &[
            "plugin",
            "run",
            path(&sc),
            "--plugin-sha256",
            &bad,
            "--plugin-arg",
            "collection=x",
        ],
        three_items(),
    );
    assert_eq!(out.status.code(), Some(1));
    // The right digest runs.
    let pinned = format!("{}#sha256={good}", path(&sc));
    let out = run_stdin(
        &["plugin", "run", &pinned, "--plugin-arg", "collection=x"],
        three_items(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn the_second_run_hits_the_compile_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let sc = wasm("set_collection");
    let inspect = || {
        let o = host()
            .args([
                "plugin",
                "inspect",
                "--json",
                path(&sc),
                "--plugin-cache",
                cache.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<Value>(&stdout(&o)).unwrap()
    };
    assert_eq!(inspect()["compile"]["cache"], "miss");
    assert_eq!(inspect()["compile"]["cache"], "hit");
    // A damaged entry (or checksum) is never loaded: it is recompiled.
    let file = |ext: &str| {
        std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap_or_else(|| panic!("no .{ext} file in the cache"))
    };
    for (ext, back) in [("cwasm", 100), ("sum", 1)] {
        let entry = file(ext);
        let mut bytes = std::fs::read(&entry).unwrap();
        let n = bytes.len();
        bytes[n - back] ^= 0xff;
        std::fs::write(&entry, bytes).unwrap();
        assert_eq!(inspect()["compile"]["cache"], "miss", "damaged .{ext}");
        assert_eq!(inspect()["compile"]["cache"], "hit");
    }
    // Cache off.
    let o = host()
        .args([
            "plugin",
            "inspect",
            "--json",
            "--no-plugin-cache",
            path(&sc),
        ])
        .output()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&o)).unwrap()["compile"]["cache"],
        "disabled"
    );
}

#[test]
fn inspect_shows_kind_interface_identity_imports_size_and_digest() {
    let sc = wasm("set_collection");
    let o = host()
        .args(["plugin", "inspect", "--json", path(&sc)])
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["name"], "set_collection");
    assert_eq!(v["kind"], "item-rewriter");
    assert_eq!(v["interface"], "host:plugin@0.1.0");
    assert_eq!(v["sha256"], util::sha256_file(&sc));
    assert_eq!(v["size"], std::fs::metadata(&sc).unwrap().len());
    assert!(v["version"].as_str().unwrap().starts_with("0."));
    assert!(
        v["imports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i.as_str().unwrap().starts_with("wasi:")
                || i.as_str().unwrap().starts_with("host:plugin/types"))
    );
    let o = host()
        .args([
            "plugin",
            "inspect",
            path(&wasm("anonymize")),
            path(&wasm("where_filter")),
        ])
        .output()
        .unwrap();
    let text = stdout(&o);
    assert!(
        text.contains("anonymize") && text.contains("(row-transformer)"),
        "{text}"
    );
    assert!(
        text.contains("where_filter") && text.contains("(where-filter)"),
        "{text}"
    );
}

#[test]
fn a_later_interface_version_is_refused_naming_both_versions() {
    // 0.3.0, and the 0.2.0 that only the host's unit tests know: the shipped
    // host claims 0.1 alone.
    for (plugin, version) in [("future_version", "0.3.0"), ("table_tag", "0.2.0")] {
        let p = wasm(plugin);
        for args in [
            vec!["plugin", "inspect", path(&p)],
            vec!["plugin", "run", path(&p), "--plugin-arg", "column=a"],
        ] {
            let o = run_stdin(&args, b"");
            assert_eq!(o.status.code(), Some(1));
            assert_eq!(
                stderr(&o).trim_end(),
                format!(
                    "error: {} was built against plugin interface host:plugin@{version}, which this host does not support; supported: 0.1.x. Rebuild it with an SDK for a supported version.",
                    path(&p)
                )
            );
        }
    }
}

/// A plugin built against a later 0.1.x WIT (here 0.1.1, which adds a
/// function the host never calls) is a 0.1 plugin: it loads and runs.
#[test]
fn a_patch_release_plugin_runs() {
    let pv = wasm("patch_version");
    let o = host()
        .args(["plugin", "inspect", "--json", path(&pv)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    assert_eq!(v["interface"], "host:plugin@0.1.1");
    assert_eq!(v["kind"], "item-rewriter");
    let input = b"{\"type\":\"Feature\",\"id\":\"a\"}\n{}\n";
    let o = run_stdin(&["plugin", "run", path(&pv)], input);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "{\"interface\":\"0.1.1\",\"type\":\"Feature\",\"id\":\"a\"}\n{\"interface\":\"0.1.1\"}\n"
    );
    // Its parameters go through 0.1's configure like any plugin's.
    let o = run_stdin(&["plugin", "run", path(&pv), "--plugin-arg", "x=1"], input);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("plugin patch_version refused its parameters: takes no parameters, got `x`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_file_that_is_not_a_plugin_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm not really").unwrap();
    let o = host()
        .args(["plugin", "inspect", junk.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("junk.wasm is not a valid WebAssembly component"),
        "{}",
        stderr(&o)
    );
    let o = host()
        .args(["plugin", "inspect", "/nonexistent/x.wasm"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/x.wasm"), "{}", stderr(&o));
}

/// Serves one file over HTTP on loopback, for as many requests as come.
fn serve(body: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]);
            let head = req.starts_with("HEAD");
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/wasm\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if !head {
                let _ = s.write_all(&body);
            }
        }
    });
    format!("http://{addr}")
}

#[test]
fn plugins_load_from_http_urls_with_a_pin() {
    let sc = wasm("set_collection");
    let base = serve(std::fs::read(&sc).unwrap());
    let url = format!(
        "{base}/plugins/set_collection.wasm#sha256={}",
        util::sha256_file(&sc)
    );
    let out = run_stdin(
        &["plugin", "run", &url, "--plugin-arg", "collection=web"],
        three_items(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(lines(&out).iter().all(|i| i["collection"] == "web"));
    let bad = format!(
        "{base}/plugins/set_collection.wasm#sha256={}",
        "1".repeat(64)
    );
    let out = run_stdin(
        &["plugin", "run", &bad, "--plugin-arg", "collection=web"],
        three_items(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("refusing to run"), "{}", stderr(&out));
}

#[test]
fn items_come_from_files_as_well_as_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let f1 = dir.path().join("a.ndjson");
    let f2 = dir.path().join("b.ndjson");
    std::fs::write(&f1, "{\"id\":\"1\"}\n\n{\"id\":\"2\"}").unwrap();
    std::fs::write(&f2, "{\"id\":\"3\"}\n").unwrap();
    let sc = wasm("set_collection");
    let out = host()
        .args([
            "plugin",
            "run",
            path(&sc),
            f1.to_str().unwrap(),
            f2.to_str().unwrap(),
            "--plugin-arg",
            "collection=z",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lines(&out).len(), 3);
    let summary: Value = serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["read"], 3);
    assert_eq!(summary["summary"]["kept"], 3);
}

#[test]
fn items_are_read_as_load_reads_them_gzip_arrays_collections_and_urls() {
    let dir = tempfile::tempdir().unwrap();
    let sc = wasm("set_collection");
    let items = [
        r#"{"id":"1","collection":"a"}"#,
        r#"{"id":"2"}"#,
        r#"{"id":"3","collection":"a"}"#,
    ];
    let ndjson = items.join("\n") + "\n";
    let array = format!("[\n  {},\n  {}, {}\n]", items[0], items[1], items[2]);
    let collection = format!(
        r#"{{"type":"FeatureCollection","features":[{},{},{}],"links":[]}}"#,
        items[0], items[1], items[2]
    );
    let gz = {
        use flate2::write::GzEncoder;
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(ndjson.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let files = [
        ("items.ndjson", ndjson.as_bytes().to_vec()),
        ("items.json", array.into_bytes()),
        ("collection.geojson", collection.into_bytes()),
        ("items.ndjson.gz", gz.clone()),
    ];
    let want = r#"{"id":"1","collection":"z"}
{"id":"2","collection":"z"}
{"id":"3","collection":"z"}
"#;
    for (name, bytes) in &files {
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        let out = host()
            .args([
                "plugin",
                "run",
                path(&sc),
                f.to_str().unwrap(),
                "--plugin-arg",
                "collection=z",
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert_eq!(stdout(&out), want, "{name}");
    }
    // From a URL, gzipped, and from stdin: the same.
    let url = format!("{}/items.ndjson.gz", serve(gz));
    let out = host()
        .args([
            "plugin",
            "run",
            path(&sc),
            &url,
            "--plugin-arg",
            "collection=z",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), want);
    let out = run_stdin(
        &["plugin", "run", path(&sc), "--plugin-arg", "collection=z"],
        files[2].1.as_slice(),
    );
    assert_eq!(stdout(&out), want);

    // A reject inside an array names the line and the element.
    let f = dir.path().join("bad.json");
    std::fs::write(&f, "[\n {\"id\":\"ok\"},\n {\"collection\":\"x\"}\n]").unwrap();
    let out = host()
        .args([
            "plugin",
            "run",
            path(&sc),
            f.to_str().unwrap(),
            "--plugin-arg",
            "collection=z",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("bad.json:3 (element 1): set_collection: the item has no `id` string"),
        "{}",
        stderr(&out)
    );

    // Broken input is an error naming the file and line, and nothing half-written.
    let f = dir.path().join("broken.ndjson");
    std::fs::write(&f, "{\"id\":\"1\"}\n{\"id\":\n").unwrap();
    let out = host()
        .args([
            "plugin",
            "run",
            path(&sc),
            f.to_str().unwrap(),
            "--plugin-arg",
            "collection=z",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("broken.ndjson"), "{}", stderr(&out));
}
