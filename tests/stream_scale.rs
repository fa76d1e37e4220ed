//! `host stream` at scale: one source transaction of 1,000,000 changes in
//! flat memory, and an idle streamed database beside a busy one on the same
//! server (its slot keeps moving, retained WAL stays flat).

mod stream_util;
mod util;

use stream_util::Fixture;
use util::{TestDb, stderr, stdout};

const T: &str = "CREATE TABLE t (id int PRIMARY KEY, v text);";

/// `follow --endpos LSN --json`: the changes applied and the peak RSS it reports.
fn follow_json(f: &Fixture, lsn: &str) -> (u64, u64) {
    let o = f.run("follow", &["--endpos", lsn, "--resume", "--json"]);
    assert!(o.status.success(), "follow: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON summary");
    (
        v["apply"]["changes"].as_u64().expect("apply.changes"),
        v["peak_rss_bytes"].as_u64().expect("peak_rss_bytes"),
    )
}

#[test]
fn one_transaction_of_a_million_changes_keeps_memory_flat() {
    let f = Fixture::new("million", T, "[\"{job}\".tables.t]\n");
    f.setup_ok();
    f.sql("INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 10000) i");
    let (changes, small) = follow_json(&f, &f.lsn());
    assert_eq!(changes, 10_000);
    f.sql(
        "BEGIN;
         INSERT INTO t SELECT i, 'v' || i FROM generate_series(10001, 760000) i;
         UPDATE t SET v = 'updated' WHERE id <= 250000;
         COMMIT;",
    );
    let (changes, big) = follow_json(&f, &f.lsn());
    assert_eq!(changes, 1_000_000, "one transaction of a million changes");
    let mb = |b: u64| b / (1 << 20);
    assert!(
        big < small + (32 << 20) && big < 100 << 20,
        "peak RSS {} MB for a million changes in one transaction vs {} MB for 10,000 small ones",
        mb(big),
        mb(small)
    );
    f.assert_matches_oracle();
}

#[test]
fn an_idle_streamed_database_beside_a_busy_one_keeps_its_slot_moving() {
    let mut f = Fixture::new("idle", T, "[\"{job}\".tables.t]\n");
    f.setup_ok();
    let busy = TestDb::new("idle_busy_neighbour");
    let mut b = busy.client();
    b.batch_execute("CREATE TABLE noise (id serial PRIMARY KEY, pad text)")
        .unwrap();
    let pid = f.spawn("follow", &[], &[]);
    let lsn = |c: &mut postgres::Client| -> i64 {
        c.query_one("SELECT (pg_current_wal_lsn() - '0/0')::int8", &[])
            .unwrap()
            .get(0)
    };
    let start = lsn(&mut b);
    // The neighbour writes about 64 MB of WAL; the streamed database nothing.
    for _ in 0..32 {
        b.batch_execute(
            "INSERT INTO noise (pad) SELECT repeat(md5(random()::text), 30) FROM generate_series(1, 2000)",
        )
        .unwrap();
    }
    b.batch_execute("CHECKPOINT").unwrap();
    let end = lsn(&mut b);
    let written = end - start;
    assert!(written > 48 << 20, "the neighbour wrote {written} bytes");
    let confirmed = |f: &Fixture| -> i64 {
        f.src
            .client()
            .query_one(
                "SELECT (confirmed_flush_lsn - '0/0')::int8 FROM pg_replication_slots WHERE slot_name = $1",
                &[&f.slot],
            )
            .unwrap()
            .get(0)
    };
    f.eventually(
        60,
        "the idle slot confirmed past the neighbour's WAL",
        || confirmed(&f) >= end,
    );
    f.eventually(
        60,
        "the idle slot's retained WAL to fall below what the neighbour wrote",
        || f.slot_state().unwrap().1 < written / 4,
    );
    // The stream is not behind: status says so.
    let o = f.run("status", &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let lag = s["lag_bytes"].as_u64().expect("lag_bytes");
    assert!(
        lag < (written as u64) / 4,
        "status lag {lag} bytes on an idle stream: {s}"
    );
    // And it still streams what comes.
    f.sql("INSERT INTO t VALUES (1, 'after the quiet')");
    f.eventually(30, "the change to arrive", || {
        f.dst_rows("SELECT id FROM app.t") == ["1"]
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let (code, err) = f.wait(pid);
    assert_eq!(code, Some(0), "follow stops cleanly on SIGTERM: {err}");
    f.assert_matches_oracle();
}
