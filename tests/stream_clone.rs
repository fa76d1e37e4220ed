//! `host stream clone [--follow]`: the initial copy (xmat, with the job's
//! where, select and plugins) from the snapshot the slot exported, then the
//! stream from exactly that point. Rows changed while the copy runs are
//! neither lost nor applied twice: the writer's changes are not idempotent
//! (an insert applied twice is a duplicate key, a delete applied twice finds
//! no row and stops apply), and the result is compared with a fresh xmat.

mod stream_util;
mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stream_util::{Fixture, assert_fails};
use util::{stderr, wasm};

const TABLES: &str = "
CREATE TABLE t (id bigint PRIMARY KEY, n int NOT NULL, email text, pad text);
INSERT INTO t SELECT i, 0, 'u' || i || '@x.org', repeat(md5(i::text), 8) FROM generate_series(1, 150000) i;
CREATE TABLE log (id bigserial PRIMARY KEY, t_id bigint, what text);";

/// Writes small non-idempotent transactions until stopped; returns how many
/// committed and the WAL position after each (as offsets).
fn writer(f: &Fixture, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<i64>> {
    let mut c = f.src.client();
    std::thread::spawn(move || {
        let mut lsns = Vec::new();
        let mut k: i64 = 1_000_000;
        while !stop.load(Ordering::SeqCst) {
            k += 1;
            c.batch_execute(&format!(
                "BEGIN;
                 INSERT INTO t VALUES ({k}, 0, 'new{k}@x.org', 'p');
                 UPDATE t SET n = n + 1 WHERE id = {};
                 DELETE FROM t WHERE id = {};
                 INSERT INTO log (t_id, what) VALUES ({k}, 'w');
                 COMMIT;",
                k % 150_000 + 1,
                k - 3
            ))
            .unwrap();
            lsns.push(
                c.query_one("SELECT (pg_current_wal_lsn() - '0/0')::int8", &[])
                    .unwrap()
                    .get(0),
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        lsns
    })
}

fn start_lsn(f: &Fixture) -> i64 {
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.sdir().join("stream.json")).unwrap())
            .unwrap();
    let text = cfg["start_lsn"].as_str().expect("start_lsn").to_string();
    let (hi, lo) = text.split_once('/').unwrap();
    (i64::from_str_radix(hi, 16).unwrap() << 32) | i64::from_str_radix(lo, 16).unwrap()
}

fn tables(anon: bool) -> String {
    let mut t = "[\"{job}\".tables.\"*\"]\n".to_string();
    if anon {
        t += &format!(
            "[\"{{job}}\".tables.t]\nplugins = [{{ plugin = \"{}\", params = {{ key = \"k\", email = \"email\" }} }}]\n",
            wasm("anonymize").display()
        );
    }
    t
}

#[test]
fn clone_follow_copies_and_streams_from_one_snapshot_while_the_source_writes() {
    for anon in [false, true] {
        let label = if anon { "clone_anon" } else { "clone" };
        let mut f = Fixture::bare(label, TABLES, &tables(anon));
        let stop = Arc::new(AtomicBool::new(false));
        let w = writer(&f, stop.clone());
        std::thread::sleep(Duration::from_millis(300));
        let jobs = f.jobs.display().to_string();
        let slot = f.slot.clone();
        let mut c = f.cmd(
            "clone",
            &[
                "--follow",
                "-c",
                &jobs,
                "--job",
                "stream",
                "--slot-name",
                &slot,
            ],
        );
        let pid = {
            let child = c
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let id = child.id();
            f.adopt(child);
            id
        };
        // The copy is done when the target schema appears (xmat swaps it in at the end).
        f.eventually(180, "the initial copy", || {
            !f.dst_rows("SELECT 1 FROM pg_namespace WHERE nspname = 'app'")
                .is_empty()
        });
        let dst_lsn = {
            let mut s = f.src.client();
            s.query_one("SELECT (pg_current_wal_lsn() - '0/0')::int8", &[])
                .unwrap()
                .get::<_, i64>(0)
        };
        std::thread::sleep(Duration::from_millis(700));
        stop.store(true, Ordering::SeqCst);
        let lsns = w.join().unwrap();
        let start = start_lsn(&f);
        let during = lsns.iter().filter(|&&l| l > start && l < dst_lsn).count();
        assert!(
            during >= 3,
            "{label}: {during} transactions committed between the slot's snapshot and the end of the copy \
             ({} in all): the copy was too quick to test anything",
            lsns.len()
        );
        assert!(
            lsns.iter().any(|&l| l <= start),
            "{label}: writes before the snapshot too"
        );
        let o = f.run(
            "sentinel",
            &["set", "endpos", "--current", "--source", &f.src.dsn.clone()],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let (code, err) = f.wait(pid);
        assert_eq!(
            code,
            Some(0),
            "{label}: clone --follow stops at the end position: {err}"
        );
        f.assert_matches_oracle();
    }
}

#[test]
fn clone_without_follow_then_follow_later_and_refusals() {
    let f = Fixture::bare("clone_later", TABLES, &tables(false));
    let jobs = f.jobs.display().to_string();
    let o = f.run(
        "clone",
        &[
            "-c",
            &jobs,
            "--job",
            "stream",
            "--slot-name",
            &f.slot,
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(util::stdout(&o).trim()).expect("JSON");
    assert_eq!(v["copy"]["rows_written"].as_u64(), Some(150_000), "{v}");
    f.sql("UPDATE t SET n = 7 WHERE id <= 10; DELETE FROM t WHERE id = 11; INSERT INTO log (what) VALUES ('x')");
    f.catch_up_and_check();
    // The same directory again.
    let o = f.run(
        "clone",
        &[
            "-c",
            &jobs,
            "--job",
            "stream",
            "--slot-name",
            "t_clone_never",
        ],
    );
    assert_fails(&o, 1, &["already holds a stream"]);
}

#[test]
fn a_clone_whose_copy_fails_leaves_nothing_behind() {
    // A copy that fails (here: a plugin rejects a row) leaves no slot,
    // origin or directory. The plugin may touch the unique key: refused up
    // front, before anything is created, unless accepted.
    let tables = format!(
        "[\"{{job}}\".tables.\"*\"]\n[\"{{job}}\".tables.t]\nplugins = [{{ plugin = \"{}\", params = {{ \"reject-on\" = \"u77@x.org\" }} }}]\n",
        wasm("row_hostile").display()
    );
    let f = Fixture::bare("clone_fail", TABLES, &tables);
    let jobs = f.jobs.display().to_string();
    let args = [
        "--follow",
        "-c",
        &jobs,
        "--job",
        "stream",
        "--slot-name",
        &f.slot,
    ];
    let o = f.run("clone", &args);
    assert_fails(
        &o,
        1,
        &["transform(s) on unique keys", "allow_uniqueness_loss"],
    );
    assert!(f.slot_state().is_none(), "no slot was created");
    let o = f.run("clone", &[&args[..], &["--allow-uniqueness-loss"]].concat());
    assert_fails(
        &o,
        1,
        &[
            "the initial copy failed",
            "u77@x.org",
            "the stream is removed",
        ],
    );
    assert!(f.slot_state().is_none(), "the slot is dropped again");
    assert!(
        !f.sdir().join("stream.json").exists(),
        "no stream directory is left"
    );
    let origins: i64 = f
        .dst
        .client()
        .query_one(
            "SELECT count(*) FROM pg_replication_origin WHERE roname = $1",
            &[&f.slot],
        )
        .unwrap()
        .get(0);
    assert_eq!(origins, 0, "the origin is dropped again");
    let triggers: i64 = f
        .src
        .client()
        .query_one(
            "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'host_stream%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(triggers, 0, "the DDL event trigger is dropped again");
}
