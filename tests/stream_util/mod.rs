//! A stream under test: a source database on the main cluster, a target on
//! the second, an xmat jobs file with the job the stream applies (`stream`,
//! into schema `app`) and the same job into schema `oracle`, which a fresh
//! `host xmat` fills to check the invariant: after applying up to an LSN,
//! the target equals what `host xmat` with the same job produces from the
//! source as of that LSN (the tests stop writing first). Every row and
//! field is compared.
//!
//! Slots and origins are cluster-wide: each fixture gets unique names and
//! drops both (and any walsender still holding the slot) when dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::util::{TestDb, host, stderr, stdout};

static N: AtomicU32 = AtomicU32::new(0);

/// The longest any one command of a stream test may take: past it the
/// command is killed and the test fails with its output (a hang is a
/// defect, never a test that waits forever).
pub const LIMIT: Duration = Duration::from_secs(240);

/// Runs a command to its end, or kills it after `limit` and fails the test.
pub trait OutputWithin {
    fn output_within(&mut self, limit: Duration) -> Output;
}

impl OutputWithin for Command {
    fn output_within(&mut self, limit: Duration) -> Output {
        let what = format!("{self:?}");
        let child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        finish_within(child, limit, &what)
    }
}

/// Collects a child's output (its stdout and stderr, if piped), killing it
/// and failing the test if it has not exited within `limit`.
pub fn finish_within(mut child: Child, limit: Duration, what: &str) -> Output {
    use std::io::Read;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut b);
            }
            b
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for a child") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(status) => Output {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "{what} did not finish within {limit:?} and was killed\nstderr: {}\nstdout: {}",
            String::from_utf8_lossy(&stderr),
            String::from_utf8_lossy(&stdout)
        ),
    }
}

pub struct Fixture {
    pub src: TestDb,
    pub dst: TestDb,
    pub dir: tempfile::TempDir,
    pub slot: String,
    pub jobs: PathBuf,
    children: Vec<Child>,
}

/// The tables part of a job, for both jobs (`{job}` is replaced by the job's name).
pub fn job_file(src: &str, dst: &str, tables: &str) -> String {
    let mut out = String::new();
    for (job, schema) in [("stream", "app"), ("oracle", "oracle")] {
        out += &format!(
            "[\"{job}\"]\nsource = {{ database = \"{src}\", schema = \"public\" }}\n\
             target = {{ database = \"{dst}\", schema = \"{schema}\" }}\n{}\n",
            tables.replace("{job}", job)
        );
    }
    out
}

impl Fixture {
    /// Source tables from `ddl` (and any rows it inserts), a job with
    /// `tables` (TOML under `["{job}".tables...]`), and the initial copy made
    /// by `host xmat` before the slot exists (nothing writes in between).
    pub fn new(label: &str, ddl: &str, tables: &str) -> Fixture {
        let f = Fixture::bare(label, ddl, tables);
        f.xmat("stream");
        f
    }

    /// The same without the initial copy (for `stream clone`).
    pub fn bare(label: &str, ddl: &str, tables: &str) -> Fixture {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let src = TestDb::new(&format!("ss_{label}"));
        let dst = TestDb::new2(&format!("st_{label}"));
        src.client().batch_execute(ddl).expect("source DDL");
        let dir = tempfile::tempdir().unwrap();
        let jobs = dir.path().join("jobs.toml");
        std::fs::write(&jobs, job_file(&src.dsn, &dst.dsn, tables)).unwrap();
        let slot: String = format!("t_{}_{}_{n}", label, std::process::id())
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(63)
            .collect();
        Fixture {
            src,
            dst,
            dir,
            slot,
            jobs,
            children: Vec::new(),
        }
    }

    /// The stream directory.
    pub fn sdir(&self) -> PathBuf {
        self.dir.path().join("stream")
    }

    /// Runs `host xmat JOB` with the fixture's jobs file.
    pub fn xmat(&self, job: &str) {
        self.xmat_with(job, &[]);
    }

    /// The same, with more arguments (a tenant's job: `--policy FILE`).
    pub fn xmat_with(&self, job: &str, extra: &[&str]) {
        let o = host()
            .args(["-q", "xmat", job, "-c"])
            .arg(&self.jobs)
            .args(extra)
            .output_within(LIMIT);
        assert!(o.status.success(), "xmat {job}: {}", stderr(&o));
    }

    /// `host stream SUB --dir D [--source S] [--target T] ARGS`.
    pub fn cmd(&self, sub: &str, args: &[&str]) -> Command {
        let mut c = host();
        if sub == "sentinel" {
            // `sentinel get|set endpos` take --dir after the subcommand.
            c.args(["stream", sub])
                .args(args)
                .arg("--dir")
                .arg(self.sdir());
            return c;
        }
        c.args(["stream", sub, "--dir"]).arg(self.sdir());
        c.args(["--source", &self.src.dsn]);
        if sub != "receive" {
            c.args(["--target", &self.dst.dsn]);
        }
        c.args(args);
        c
    }

    pub fn run(&self, sub: &str, args: &[&str]) -> Output {
        self.cmd(sub, args).output_within(LIMIT)
    }

    /// Sets the stream up with the `stream` job.
    pub fn setup(&self, extra: &[&str]) -> Output {
        let mut c = host();
        c.args(["stream", "setup", "--dir"])
            .arg(self.sdir())
            .args(["-c"])
            .arg(&self.jobs)
            .args(["--job", "stream", "--slot-name", &self.slot])
            .args(extra);
        c.output_within(LIMIT)
    }

    pub fn setup_ok(&self) {
        let o = self.setup(&[]);
        assert!(o.status.success(), "setup: {}", stderr(&o));
    }

    /// Runs SQL on the source.
    pub fn sql(&self, sql: &str) {
        self.src
            .client()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// The source's current WAL position.
    pub fn lsn(&self) -> String {
        self.src
            .client()
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .unwrap()
            .get(0)
    }

    /// `follow --endpos LSN`, which must succeed.
    pub fn follow_to(&self, lsn: &str) -> Output {
        let o = self.run("follow", &["--endpos", lsn, "--resume"]);
        assert!(o.status.success(), "follow: {}", stderr(&o));
        o
    }

    /// Writes stopped: follow to the current position, then compare with a fresh xmat.
    pub fn catch_up_and_check(&self) {
        let x = self.lsn();
        self.follow_to(&x);
        self.assert_matches_oracle();
    }

    /// Every table of `app` equals the same table made by a fresh `host xmat`, row for row, field for field.
    pub fn assert_matches_oracle(&self) {
        self.assert_matches_oracle_with(&[]);
    }

    /// The same, the oracle's `host xmat` run with `extra` arguments.
    pub fn assert_matches_oracle_with(&self, extra: &[&str]) {
        self.xmat_with("oracle", extra);
        let mut c = self.dst.client();
        let tables: Vec<String> = c
            .query(
                "SELECT relname::text FROM pg_class WHERE relnamespace = 'oracle'::regnamespace \
                 AND relkind IN ('r', 'p') AND NOT relispartition ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(!tables.is_empty(), "the oracle copied no table");
        for t in tables {
            let rows = |schema: &str, c: &mut postgres::Client| -> Vec<String> {
                c.query(
                    &format!("SELECT x::text FROM {schema}.\"{t}\" x ORDER BY 1"),
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
            };
            let (streamed, oracle) = (rows("app", &mut c), rows("oracle", &mut c));
            if streamed != oracle {
                let only_s: Vec<&String> = streamed
                    .iter()
                    .filter(|r| !oracle.contains(r))
                    .take(5)
                    .collect();
                let only_o: Vec<&String> = oracle
                    .iter()
                    .filter(|r| !streamed.contains(r))
                    .take(5)
                    .collect();
                panic!(
                    "table {t}: {} streamed rows vs {} from xmat\n  only streamed: {only_s:?}\n  only xmat: {only_o:?}",
                    streamed.len(),
                    oracle.len()
                );
            }
        }
    }

    /// Rows of a query on the target, as text (columns joined by `|`), sorted by the first column.
    pub fn dst_rows(&self, sql: &str) -> Vec<String> {
        self.dst
            .client()
            .simple_query(&format!("SELECT * FROM ({sql}) x ORDER BY 1"))
            .unwrap()
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("NULL"))
                        .collect::<Vec<_>>()
                        .join("|"),
                ),
                _ => None,
            })
            .collect()
    }

    /// Starts a stream command in the background (killed with the fixture).
    pub fn spawn(&mut self, sub: &str, args: &[&str], env: &[(&str, &str)]) -> u32 {
        let mut c = self.cmd(sub, args);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let id = child.id();
        self.children.push(child);
        id
    }

    /// Takes a child started elsewhere (killed with the fixture).
    pub fn adopt(&mut self, child: Child) {
        self.children.push(child);
    }

    /// Waits for a background command; returns its stderr and exit code.
    pub fn wait(&mut self, pid: u32) -> (Option<i32>, String) {
        let i = self
            .children
            .iter()
            .position(|c| c.id() == pid)
            .expect("a child");
        let child = self.children.remove(i);
        let o = finish_within(child, LIMIT, &format!("background command {pid}"));
        (o.status.code(), stderr(&o))
    }

    /// `kill -9`.
    pub fn kill9(&mut self, pid: u32) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        let _ = self.wait(pid);
    }

    /// Waits until `f` holds (or fails the test after `secs`).
    pub fn eventually(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The slot's confirmed position and retained WAL bytes.
    pub fn slot_state(&self) -> Option<(String, i64)> {
        self.src
            .client()
            .query_opt(
                "SELECT confirmed_flush_lsn::text, (pg_current_wal_lsn() - restart_lsn)::int8 \
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.slot],
            )
            .unwrap()
            .map(|r| (r.get(0), r.get(1)))
    }

    /// The origin's progress on the target.
    pub fn origin_lsn(&self) -> String {
        self.dst
            .client()
            .query_one(
                "SELECT coalesce(pg_replication_origin_progress($1, false), '0/0')::text",
                &[&self.slot],
            )
            .unwrap()
            .get(0)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Ok(mut c) = postgres::Client::connect(&self.src.dsn, postgres::NoTls) {
            let _ = c.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                 WHERE slot_name = $1 AND active_pid IS NOT NULL",
                &[&self.slot],
            );
            for _ in 0..50 {
                let gone = c
                    .execute(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                         WHERE slot_name = $1 AND NOT active",
                        &[&self.slot],
                    )
                    .is_ok()
                    && c.query_opt(
                        "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
                        &[&self.slot],
                    )
                    .map(|r| r.is_none())
                    .unwrap_or(true);
                if gone {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if let Ok(mut c) = postgres::Client::connect(&self.dst.dsn, postgres::NoTls) {
            let _ = c.execute(
                "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = $1",
                &[&self.slot],
            );
        }
    }
}

/// Asserts a command failed with `code` and a message containing every one of `needles`.
pub fn assert_fails(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "stderr: {err}\nstdout: {}",
        stdout(o)
    );
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
}

/// A path as a string.
pub fn s(p: &Path) -> String {
    p.display().to_string()
}
