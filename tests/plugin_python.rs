//! Python plugins (plugins/python, built by scripts/build-plugins with
//! componentize-py) through the real binary: the same output as the Rust
//! example plugins, byte for byte, and the same sandbox.

mod util;

use std::process::Output;

use util::{fixture, host, run_stdin, stderr, stdout, wasm};

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// `host plugin run PLUGIN ARGS...` over `input`.
fn run_plugin(plugin: &str, args: &[&str], input: &[u8]) -> Output {
    let p = wasm(plugin);
    let mut all = vec!["plugin", "run", path(&p)];
    all.extend_from_slice(args);
    run_stdin(&all, input)
}

/// Runs the Rust and the Python plugin the same way; both must succeed the
/// same way and write the same bytes.
fn same_output(rust: &str, python: &str, args: &[&str], input: &[u8]) -> Output {
    let r = run_plugin(rust, args, input);
    let p = run_plugin(python, args, input);
    assert_eq!(
        r.status.code(),
        p.status.code(),
        "rust: {}\npython: {}",
        stderr(&r),
        stderr(&p)
    );
    assert!(!r.stdout.is_empty(), "{}", stderr(&r));
    assert!(
        r.stdout == p.stdout,
        "outputs differ:\nrust:   {}\npython: {}",
        first_difference(&r.stdout, &p.stdout).0,
        first_difference(&r.stdout, &p.stdout).1
    );
    // The same records kept, dropped and rejected: the summary lines agree.
    let summary = |o: &Output| {
        let e = stderr(o);
        let line = e
            .lines()
            .rev()
            .find(|l| l.contains(" read, "))
            .unwrap_or_default()
            .to_string();
        line.split(" in ").next().unwrap().to_string()
    };
    assert_eq!(summary(&r), summary(&p));
    p
}

fn first_difference(a: &[u8], b: &[u8]) -> (String, String) {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let show = |s: &[u8]| {
        String::from_utf8_lossy(&s[at.saturating_sub(40)..(at + 80).min(s.len())]).into_owned()
    };
    (show(a), show(b))
}

// ---------------------------------------------------------------- byte-identical to Rust

#[test]
fn python_set_collection_writes_what_rust_writes() {
    let mut input = std::fs::read(fixture("stac/planetary-computer/naip-items.ndjson")).unwrap();
    input.extend(std::fs::read(fixture("stac/pgstac-testdata/items.ndjson")).unwrap());
    // Escapes, odd spacing, already in the collection, no collection, percent-encoded
    // links, a key with escapes, and records both must reject.
    input.extend_from_slice(
        br#"{ "id" : "e\u00e9\"1", "collection":"old" , "links":[ {"rel":"self","href":"https://x/collections/old/items/e1?x=1#f"},{"rel":"parent", "href":"../old/collection.json"}, {"rel":"collection","href":"https://x/collections/o%6cd/"} ] ,"k\\ey":[1, 2.50e3] }
{"id":"same","collection":"moved here","links":[{"rel":"collection","href":"x/old"}]}
{"id":"nocoll","links":[{"rel":"self","href":"https://x/collections/old/items/nocoll"}]}
{"id":"weird","collection":"old","links":[{"rel":"collection"},{"href":"x"},"notalink-but-kept?",{"rel":"self","href":"/collections/old/items/weird"}]}
{"collection":"old"}
{"id":"badlinks","collection":"old","links":{"rel":"x"}}
"#,
    );
    let out = same_output(
        "set_collection",
        "py_set_collection",
        &["--plugin-arg", "collection=moved here"],
        &input,
    );
    let text = stdout(&out);
    assert!(text.contains(r#""collection":"moved here""#));
    assert!(
        text.contains("https://x/collections/moved%20here/items/e1?x=1#f"),
        "{text}"
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "two records are rejected: {}",
        stderr(&out)
    );
}

/// Rows with NULLs, empty strings, escapes, non-ASCII and values long enough to
/// take BLAKE3 through its chunk tree (over 1 KiB and over 2 KiB).
fn tricky_rows() -> Vec<u8> {
    let mut s = String::new();
    let long1 = "x".repeat(1500);
    let long2 = "é".repeat(1600);
    let specials = [
        r"a\\b\tc\nd",
        r"\N",
        "",
        "Zoë Ångström",
        "+44 (0)20 7946-0958 ext. 12",
        &long1,
        &long2,
        "☃ snow@example.com",
    ];
    for i in 0..600 {
        let email = if i % 9 == 0 {
            r"\N".to_string()
        } else {
            format!("person{i}@corp.example")
        };
        let pick = specials[i % specials.len()];
        s += &format!(
            "{i}\t{email}\t+1-555-{:04}\t{pick}\t{pick}\tkeep {i}\n",
            i * 7 % 10000
        );
    }
    s.into_bytes()
}

#[test]
fn python_anonymize_makes_the_pseudonyms_rust_makes() {
    let input = tricky_rows();
    for algorithm in ["blake3", "hmac-sha256"] {
        let alg = format!("algorithm={algorithm}");
        let out = same_output(
            "anonymize",
            "py_anonymize",
            &[
                "--rows",
                // Pure-Python BLAKE3 over multi-KiB values is slow: small batches, a long deadline.
                "--batch-size",
                "50",
                "--plugin-time",
                "30s",
                "--columns",
                "id:integer,email,phone,name:character varying(40),note,keep",
                "--plugin-arg",
                "key=s3cret ключ",
                "--plugin-arg",
                &alg,
                "--plugin-arg",
                "email=email",
                "--plugin-arg",
                "phone=phone",
                "--plugin-arg",
                "name=name",
                "--plugin-arg",
                "column:note=hash",
                "--plugin-arg",
                "keep=null",
            ],
            &input,
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(!text.contains("corp.example"), "{algorithm}");
        assert!(
            text.lines().all(|l| l.ends_with("\t\\N")),
            "{algorithm}: keep=null"
        );
    }
}

#[test]
fn python_anonymize_refuses_what_rust_refuses() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--plugin-arg", "email=email"],
            "missing required parameter `key`",
        ),
        (
            &["--plugin-arg", "key=k", "--plugin-arg", "email=bogus"],
            "unknown treatment `bogus`",
        ),
        (
            &["--plugin-arg", "key=k", "--plugin-arg", "nope=email"],
            "has no column `nope`",
        ),
        (
            &["--plugin-arg", "key=k", "--plugin-arg", "id=email"],
            "column `id` is integer: treatment `email` needs a text column",
        ),
        (
            &[
                "--plugin-arg",
                "key=k",
                "--plugin-arg",
                "email=name",
                "--plugin-arg",
                "column:email=hash",
            ],
            "column `email` is given more than once",
        ),
    ];
    for (extra, message) in cases {
        for plugin in ["anonymize", "py_anonymize"] {
            let mut args = vec!["--rows", "--columns", "id:integer,email"];
            args.extend_from_slice(extra);
            let out = run_plugin(plugin, &args, b"1\ta@b.c\n");
            assert_eq!(out.status.code(), Some(1), "{plugin}: {}", stderr(&out));
            assert!(stderr(&out).contains(message), "{plugin}: {}", stderr(&out));
        }
    }
}

// ---------------------------------------------------------------- the sandbox

fn three_items() -> &'static [u8] {
    b"{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n"
}

fn hostile(mode: &str, extra: &[&str]) -> Output {
    let h = wasm("py_hostile");
    let mode = format!("mode={mode}");
    let mut args = vec!["plugin", "run", path(&h), "--plugin-arg", &mode];
    args.extend_from_slice(extra);
    let mut cmd = host();
    cmd.args(&args).env("HOST_SECRET", "s3cret-value");
    util::run_cmd_stdin(cmd, three_items())
}

#[test]
fn a_python_plugin_sees_no_file_no_environment_and_no_network() {
    let out = hostile("file", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("reading /etc/passwd failed"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("root:"));

    let out = hostile("env", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no environment variable and no argument visible"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("s3cret-value"));

    let out = hostile("socket", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("connecting to 127.0.0.1:55432 failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_python_plugin_that_loops_or_allocates_is_stopped_and_the_run_goes_on() {
    let out = hostile("loop", &["--batch-size", "1", "--plugin-time", "200ms"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("plugin py_hostile exceeded its time limit (--plugin-time 200ms)")
            .count(),
        3,
        "{err}"
    );
    assert!(
        err.contains("3 items read, 0 kept, 0 dropped, 3 rejected"),
        "{err}"
    );

    let out = hostile("alloc", &["--batch-size", "2"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("plugin py_hostile exceeded its memory limit")
            .count(),
        2,
        "{err}"
    );
    assert!(stdout(&out).is_empty());

    // An exception fails its batch with the exception and where it was raised.
    let out = hostile("raise", &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("plugin py_hostile failed on batch 1 (3 records): KeyError: 'no such key' (at hostile.py:"), "{}", stderr(&out));
}

#[test]
fn a_memory_cap_below_a_plugins_minimum_names_both_numbers() {
    let out = hostile("ok", &["--plugin-memory", "8MiB"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("py_hostile.wasm needs at least 1"), "{err}");
    assert!(
        err.contains("MiB (") && err.contains("bytes) of linear memory at start"),
        "{err}"
    );
    assert!(
        err.contains("the memory cap (--plugin-memory) is 8.0 MiB (8388608 bytes)"),
        "{err}"
    );
    // At the minimum it runs.
    let out = hostile("ok", &["--plugin-memory", "16MiB"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 3);
}
