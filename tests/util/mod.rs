//! Shared helpers for the integration tests: the real `host` binary, plugin
//! and fixture paths, and a fresh PostgreSQL database per test.
//!
//! The databases come from the project's local clusters (`scripts/pg start`);
//! `HOST_DSN` and `HOST_DSN2` point at them, with the script's defaults.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `host` binary under test, with a compile cache private to the test run.
pub fn host() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_host"));
    c.env(
        "HOST_CACHE_DIR",
        root().join("target").join("test-plugin-cache"),
    );
    c.env_remove("RUST_LOG");
    c
}

/// Runs `host` with args and returns its output.
pub fn run(args: &[&str]) -> Output {
    host().args(args).output().expect("run host")
}

/// Runs `host` with args and `input` on its stdin, written from another
/// thread so that a large output cannot block the writing.
pub fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut cmd = host();
    cmd.args(args);
    run_cmd_stdin(cmd, input)
}

/// Runs a prepared command with `input` on its stdin (as [`run_stdin`]).
pub fn run_cmd_stdin(cmd: Command, input: &[u8]) -> Output {
    let (child, writer) = spawn_feeding(cmd, input);
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Spawns `cmd` with piped stdio and a thread writing `input` to its stdin
/// (so a child that writes before it reads cannot deadlock us).
fn spawn_feeding(mut cmd: Command, input: &[u8]) -> (Child, std::thread::JoinHandle<()>) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn host");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    (child, writer)
}

/// Runs `host` with args (and `input` on stdin) and returns its output and
/// its peak resident memory in KiB: the high-water mark of its own address
/// space (`VmHWM`), sampled every few milliseconds until it exits.
///
/// Not `wait4`'s `ru_maxrss`: the kernel carries the spawning process's
/// high-water mark across `exec` into it, so it would report this test
/// binary's peak (and that of every test running beside it), not host's.
pub fn run_peak(args: &[&str], input: &[u8]) -> (Output, u64) {
    use std::io::Read;
    let mut cmd = host();
    cmd.args(args);
    let (mut child, writer) = spawn_feeding(cmd, input);
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        // While it runs (or is a zombie, with no VmHWM any more).
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait for host") {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let output = Output {
        status,
        stdout: reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    };
    writer.join().unwrap();
    (output, peak)
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A plugin built by `scripts/build-plugins`.
pub fn wasm(name: &str) -> PathBuf {
    let p = root()
        .join("target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/build-plugins first",
        p.display()
    );
    p
}

/// The SHA-256 of a file, in hex (how pins and policies name a plugin build).
pub fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

/// The records of a reject file (NDJSON); none when it was not written.
pub fn reject_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A file under tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    let p = root().join("tests/fixtures").join(rel);
    assert!(p.exists(), "fixture {} is missing", p.display());
    p
}

/// Connection string of the main local cluster's `host` database.
pub fn admin_dsn() -> String {
    std::env::var("HOST_DSN")
        .unwrap_or_else(|_| "postgresql://host:host@127.0.0.1:55432/host".into())
}

/// Connection string of the second local cluster's `host` database.
pub fn admin_dsn2() -> String {
    std::env::var("HOST_DSN2")
        .unwrap_or_else(|_| "postgresql://host:host@127.0.0.1:55433/host".into())
}

/// A database created for one test and dropped when it goes out of scope.
pub struct TestDb {
    pub name: String,
    /// Connection string for the new database.
    pub dsn: String,
    admin: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    /// A fresh, empty database on the main cluster.
    pub fn new(label: &str) -> TestDb {
        TestDb::on(&admin_dsn(), label)
    }

    /// A fresh, empty database on the second cluster.
    pub fn new2(label: &str) -> TestDb {
        TestDb::on(&admin_dsn2(), label)
    }

    fn on(admin: &str, label: &str) -> TestDb {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!(
            "t_{}_{}_{n}",
            label
                .to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            std::process::id()
        );
        let mut c = postgres::Client::connect(admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot reach {admin}: {e} (run scripts/pg start)"));
        // Two statements: DROP DATABASE cannot run in the implicit transaction of a multi-statement batch.
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let dsn = replace_db(admin, &name);
        TestDb {
            name,
            dsn,
            admin: admin.to_string(),
        }
    }

    /// A synchronous client for assertions.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.dsn, postgres::NoTls).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The same URL with another database name.
pub fn replace_db(dsn: &str, db: &str) -> String {
    let (base, _) = dsn.rsplit_once('/').expect("a postgresql:// URL");
    format!("{base}/{db}")
}
