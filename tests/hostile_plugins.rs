//! Issue 12, plugins that lie, flood, sleep and outlast their limits: the
//! host's memory stays bounded, a call never takes longer than its limit,
//! every message a plugin writes is cut and escaped, and fetching a plugin
//! is bounded too. Each test builds its hostile input (the `hostile` and
//! `stuck` test plugins in tests/plugins) and asserts what a user sees.

mod util;

use std::io::{Read, Write};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{run, run_peak, stderr, stdout, wasm};

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// `n` items `{"id":"iN"}`, as NDJSON.
fn items(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"id\":\"i{i}\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

/// `host plugin run hostile.wasm --plugin-arg mode=MODE EXTRA...` on `input`,
/// with its peak memory in MiB.
fn hostile(mode: &str, extra: &[&str], input: &[u8]) -> (Output, u64) {
    let h = wasm("hostile");
    let mode = format!("mode={mode}");
    let mut args = vec!["plugin", "run", path(&h), "--plugin-arg", &mode];
    args.extend_from_slice(extra);
    let (out, kib) = run_peak(&args, input);
    (out, kib / 1024)
}

fn lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// ---------------------------------------------------------------- 2: bounded messages

/// Before: the 4 MB message was copied once per record: 1.08 GB of host memory.
#[test]
fn a_plugin_error_of_megabytes_is_cut_and_not_copied_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let (out, mib) = hostile(
        "error-bytes:4000000",
        &["--reject-file", path(&rejects)],
        &items(256),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("plugin hostile failed on batch 1 (256 records): EEEE"),
        "{err}"
    );
    assert!(err.contains("... (3998976 more bytes)"), "{err}");
    assert!(err.len() < 4096, "{} bytes of stderr", err.len());
    let file = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(file.lines().count(), 256);
    assert!(file.len() < 400 << 10, "reject file {} bytes", file.len());
    assert!(mib < 150, "peak {mib} MiB");
}

/// Before: 1 MB reasons for 1,000 items made a 1 GB reject file.
#[test]
fn reject_reasons_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let rejects = dir.path().join("rejects.ndjson");
    let (out, mib) = hostile(
        "reject-bytes:200000",
        &["--reject-file", path(&rejects), "--batch-size", "100"],
        &items(1000),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let file = std::fs::read_to_string(&rejects).unwrap();
    let recs: Vec<Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 1000);
    let reason = recs[999]["reason"].as_str().unwrap();
    assert_eq!(
        reason.len(),
        1024 + "... (198976 more bytes)".len(),
        "{reason}"
    );
    assert!(reason.starts_with("RRRR") && reason.ends_with("(198976 more bytes)"));
    assert!(file.len() < 2 << 20, "reject file {} bytes", file.len());
    assert!(mib < 150, "peak {mib} MiB");
}

/// One string's address handed back for every record: the host may not lift
/// more in one call than the plugin may hold (its memory cap).
#[test]
fn the_same_bytes_handed_back_many_times_are_refused() {
    // Reasons are lifted as the plugin hands them: the host's transfer cap
    // stops them. Kept items pass through the SDK, which copies each one
    // inside the plugin: its own memory cap stops it first.
    for (mode, stopped_by) in [
        (
            "reject-bytes:1000000",
            "plugin hostile handed the host something it refused: too much data",
        ),
        (
            "keep-bytes:8000000",
            "plugin hostile exceeded its memory limit (--plugin-memory 64MiB) on batch 1",
        ),
    ] {
        let (out, mib) = hostile(mode, &[], &items(256));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{mode}: {err}");
        assert!(err.contains(stopped_by), "{mode}: {err}");
        assert!(err.contains("256 rejected"), "{err}");
        assert!(stdout(&out).is_empty());
        assert!(mib < 250, "{mode}: peak {mib} MiB");
    }
}

#[test]
fn a_refusal_of_parameters_is_cut() {
    let (out, _) = hostile("configure-error:5000000", &[], &items(1));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("plugin hostile refused its parameters: EEE"),
        "{err}"
    );
    assert!(
        err.contains("(4998976 more bytes)") && err.len() < 4096,
        "{err}"
    );
}

// ---------------------------------------------------------------- 3: time and what a plugin sees

/// Before: a 30 s sleep took 30 s per batch, then was blamed on the CPU limit.
#[test]
fn a_plugin_cannot_sleep_through_its_time_limit() {
    for (mode, what) in [
        ("sleep:30000", "in a batch"),
        ("sleep-forever", "forever"),
        ("configure-sleep:30000", "in configure"),
    ] {
        let started = Instant::now();
        let (out, _) = hostile(mode, &["--batch-size", "1"], &items(3));
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(0), "{mode}: {}", stderr(&out));
        assert_eq!(lines(&out).len(), 3, "{mode}");
        assert!(
            took < Duration::from_secs(10),
            "sleeping {what} held the host {took:?}"
        );
    }
    // Waits end at once, and the plugin's clock moves by what it asked.
    let (out, _) = hostile("sleep:30000", &[], &items(1));
    assert_eq!(lines(&out)[0]["slept"]["monotonic_ms"], 30000);
}

#[test]
fn a_plugin_busy_until_its_deadline_is_stopped_by_wall_clock_time() {
    let started = Instant::now();
    let (out, _) = hostile("loop", &["--plugin-time", "300ms"], &items(1));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("plugin hostile exceeded its time limit (--plugin-time 300ms) on batch 1"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// What a plugin observes is fixed: the wall clock at the epoch, a clock
/// that moves only when it waits, the same random bytes every run.
#[test]
fn what_a_plugin_observes_is_the_same_every_run() {
    let run_once = || {
        let (out, _) = hostile("observe", &["--batch-size", "1"], &items(3));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        lines(&out)
    };
    let first = run_once();
    assert_eq!(first, run_once());
    let seen = &first[0]["observed"];
    assert_eq!(seen["wall_clock_ns"], 0);
    assert_eq!(seen["monotonic_ns_since_configure"], 0);
    assert_eq!(seen["random_bytes"].as_str().unwrap().len(), 32);
    // One instance's sequence goes on from batch to batch.
    assert_ne!(
        first[0]["observed"]["random_bytes"],
        first[1]["observed"]["random_bytes"]
    );
}

// ---------------------------------------------------------------- 4: fetching a plugin

/// A server on loopback that answers every request with `respond`.
fn server(respond: impl Fn(&mut std::net::TcpStream) + Send + Sync + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let respond = std::sync::Arc::new(respond);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let respond = respond.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                respond(&mut s);
            });
        }
    });
    format!("http://{addr}/p.wasm")
}

/// Before: a 2 GB response took 4.2 GB of memory before any check.
#[test]
fn a_plugin_larger_than_the_cap_is_refused_before_it_is_read() {
    let url = server(|s| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\nConnection: close\r\n\r\n"
        );
        // Then a trickle that would take forever.
        for _ in 0..600 {
            if s.write_all(&[0u8; 1024]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let started = Instant::now();
    let (out, kib) = run_peak(&["plugin", "inspect", &url], b"");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is 2147483648 bytes, more than the 268435456 allowed (--plugin-max-size)"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(kib < 100 << 10, "peak {} MiB", kib >> 10);
    // A local file too, by its size; and a device that never ends, as it reads.
    let h = wasm("hostile");
    let out = run(&["plugin", "inspect", path(&h), "--plugin-max-size", "100KiB"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("more than the 102400 allowed (--plugin-max-size)"),
        "{}",
        stderr(&out)
    );
    let (out, kib) = run_peak(
        &[
            "plugin",
            "inspect",
            "/dev/zero",
            "--plugin-max-size",
            "1MiB",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("/dev/zero sent more than the 1048576 bytes allowed (--plugin-max-size)"),
        "{}",
        stderr(&out)
    );
    assert!(kib < 100 << 10, "peak {} MiB", kib >> 10);
}

/// A server that stops in the middle of its answer.
#[test]
fn a_download_that_stalls_is_stopped() {
    let staller = server(|s| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n0123456789"
        );
        std::thread::sleep(Duration::from_secs(60));
    });
    let started = Instant::now();
    let out = run(&["plugin", "inspect", &staller, "--fetch-timeout", "1s"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("p.wasm: no data within 1s (--fetch-timeout)"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Before: a server that never answers hung the command for minutes with
/// nothing on the terminal.
#[test]
fn a_server_that_never_answers_times_out_saying_so() {
    let silent = server(|_| std::thread::sleep(Duration::from_secs(120)));
    let started = Instant::now();
    let out = run(&["plugin", "inspect", &silent, "--fetch-timeout", "1s"]);
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Said as it starts, at the default verbosity, and why it stopped.
    assert!(err.contains(&format!("fetching {silent}")), "{err}");
    assert!(
        err.contains("p.wasm: no answer within 1s (--fetch-timeout)"),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // A registry that never answers: the same bound, said in registry terms.
    let registry = silent
        .replace("http://", "oci://")
        .replace("/p.wasm", "/acme/p:1");
    let started = Instant::now();
    let out = run(&["plugin", "inspect", &registry, "--fetch-timeout", "1s"]);
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("pulling {registry}")), "{err}");
    assert!(
        err.contains(&format!(
            "cannot read plugin {registry}: the registry did not answer within 1s (--fetch-timeout)"
        )),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// A registry on loopback: its manifest declares a wasm layer of
/// `layer_size` bytes, and its blob answer never ends (no length declared).
fn endless_registry(layer_size: u64) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                if request.contains("/manifests/") {
                    let d = format!("sha256:{}", "ab".repeat(32));
                    let manifest = format!(
                        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.wasm.config.v0+json","digest":"{d}","size":2}},"layers":[{{"mediaType":"application/wasm","digest":"{d}","size":{layer_size}}}]}}"#
                    );
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{manifest}",
                        manifest.len()
                    );
                    return;
                }
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                );
                let chunk = vec![0u8; 64 << 10];
                for _ in 0..100_000 {
                    if write!(s, "{:x}\r\n", chunk.len()).is_err()
                        || s.write_all(&chunk).is_err()
                        || s.write_all(b"\r\n").is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    format!("oci://{addr}/acme/p:1")
}

/// Registry pulls are bounded like URLs: a layer declared past the cap is
/// refused before it is read, and a blob longer than its manifest said is
/// stopped as it arrives, in bounded memory.
#[test]
fn registry_layers_are_read_within_the_cap() {
    let declared_big = endless_registry(10 << 20);
    let out = run(&[
        "plugin",
        "inspect",
        &declared_big,
        "--plugin-max-size",
        "1MiB",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "the wasm layer is 10485760 bytes, more than the 1048576 allowed (--plugin-max-size)"
        ),
        "{err}"
    );
    let lying = endless_registry(1000);
    let started = Instant::now();
    let (out, kib) = run_peak(&["plugin", "inspect", &lying], b"");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("(wasm layer) sent more than the 1000 bytes allowed"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(kib < 100 << 10, "peak {} MiB", kib >> 10);
}

// ---------------------------------------------------------------- 8: terminal injection

/// Before: reasons were printed raw: escape sequences cleared the screen,
/// a newline forged a log line.
#[test]
fn what_a_plugin_writes_reaches_the_terminal_escaped_and_uncoloured() {
    let (out, _) = hostile("reject-escapes", &[], &items(2));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\r'), "{err:?}");
    assert!(
        err.contains("\\u{1b}[2J\\u{1b}[31mred\\u{1b}[0m\\nERROR forged log line\\rhidden"),
        "{err}"
    );
    assert!(
        !err.lines().any(|l| l.starts_with("ERROR forged")),
        "a forged line: {err}"
    );
    // A failure's log line: no colour codes when stderr is not a terminal.
    let (out, _) = hostile("panic", &[], &items(1));
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("ERROR plugin hostile trapped"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains('\u{1b}'), "{:?}", stderr(&out));
}

// ---------------------------------------------------------------- 9: where a plugin is first met

/// Before: a trap in `info` showed a raw wasm backtrace, and a plugin that
/// needs much memory a pooling-allocator message.
#[test]
fn a_plugin_stuck_in_info_or_too_big_to_start_is_named_in_flag_terms() {
    let stuck = wasm("stuck");
    let out = run(&["plugin", "inspect", path(&stuck)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("needs at least 97.1 MiB (101777408 bytes) of linear memory at start, but the memory cap (--plugin-memory) is 64.0 MiB"),
        "{err}"
    );
    assert!(!err.contains("pooling"), "{err}");
    let started = Instant::now();
    let out = run(&[
        "plugin",
        "inspect",
        path(&stuck),
        "--plugin-memory",
        "128MiB",
        "--plugin-time",
        "200ms",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(
        err.trim(),
        "error: plugin stuck exceeded its time limit (--plugin-time 200ms) on info; the instance was discarded"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let (out, _) = hostile("exit:0", &[], &items(1));
    assert!(
        stderr(&out).contains("plugin hostile called exit(0) on batch 1"),
        "{}",
        stderr(&out)
    );
}

// ---------------------------------------------------------------- the runtime's facts, as types

/// Limits are types, not messages; and the deadline still holds when the
/// runtime that made a plugin is gone (the ticker lives as long as the engine).
#[test]
fn faults_are_typed_and_deadlines_outlive_the_runtime() {
    use host::plugin::{Fault, LimitHit, Limits, PluginSpec, Runtime};
    let bytes = std::fs::read(wasm("hostile")).unwrap();
    let limits = Limits {
        call_time: Duration::from_millis(200),
        ..Limits::default()
    };
    let runtime = Runtime::new(limits, None).unwrap();
    let mut spec = PluginSpec::parse("hostile.wasm").unwrap();
    spec.params.push(("mode".into(), "loop".into()));
    let plugin = runtime.load(&spec, &bytes).unwrap();
    drop(runtime);
    // A watchdog: without a ticker the call would never return.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut instance = plugin.instantiate().unwrap();
        let _ = tx.send(instance.rewrite_items(&[r#"{"id":"a"}"#.to_string()], "batch 1"));
    });
    let e = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the deadline held after the runtime was dropped")
        .unwrap_err();
    assert_eq!(
        e.fault(),
        Some(&Fault::Limit(LimitHit::Time(Duration::from_millis(200))))
    );

    let mut spec = PluginSpec::parse("hostile.wasm").unwrap();
    spec.params.push(("mode".into(), "alloc".into()));
    let runtime = Runtime::new(Limits::default(), None).unwrap();
    let mut instance = runtime.load(&spec, &bytes).unwrap().instantiate().unwrap();
    let e = instance
        .rewrite_items(&[r#"{"id":"a"}"#.to_string()], "batch 1")
        .unwrap_err();
    assert_eq!(e.fault(), Some(&Fault::Limit(LimitHit::Memory(64 << 20))));
}
