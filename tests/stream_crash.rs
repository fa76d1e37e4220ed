//! `kill -9` at every stage of a stream: nothing lost, nothing applied twice.
//! Crash points (`HOST_STREAM_CRASH=POINT:N`) make the process SIGKILL
//! itself at an exact place; a SIGKILL from outside at arbitrary moments
//! covers the rest. The workload is not idempotent: a change applied twice
//! fails (a duplicate key, a DELETE of a row already gone) or shows in the
//! comparison with a fresh `host xmat`.

mod stream_util;
mod util;

use std::time::Duration;

use stream_util::{Fixture, LIMIT, OutputWithin};
use util::stderr;

const TABLES: &str = "CREATE TABLE t (id bigint PRIMARY KEY, n int NOT NULL, v text);
                      CREATE TABLE log (id bigserial PRIMARY KEY, t_id bigint, what text);";

/// A big transaction among many small ones; returns the end position.
fn workload(f: &Fixture, big: i64) -> String {
    f.sql(&format!(
        "INSERT INTO t SELECT i, 0, 'v' || i FROM generate_series(1, {big}) i"
    ));
    for i in 0..60 {
        f.sql(&format!(
            "BEGIN; UPDATE t SET n = n + 1, v = v || '.' WHERE id % 60 = {i};
             INSERT INTO log (t_id, what) VALUES ({i}, 'bump');
             DELETE FROM t WHERE id = {};
             COMMIT;",
            big - i
        ));
    }
    f.sql(&format!("UPDATE t SET n = -n WHERE id <= {}", big / 2));
    f.lsn()
}

fn crashing(f: &Fixture, sub: &str, args: &[&str], point: &str) -> (Option<i32>, String) {
    let o = f
        .cmd(sub, args)
        .env("HOST_STREAM_CRASH", point)
        .output_within(LIMIT);
    (o.status.code(), stderr(&o))
}

#[test]
fn kill_during_receive_then_resume_loses_nothing() {
    let f = Fixture::new("crash_receive", TABLES, "[\"{job}\".tables.\"*\"]\n");
    f.setup_ok();
    let x = workload(&f, 20_000);
    // Mid big transaction, before anything is synced.
    let (code, err) = crashing(&f, "receive", &["--endpos", &x], "receive-written:5000");
    assert_eq!(code, None, "killed by a signal: {err}");
    assert!(err.contains("crash point receive-written"), "{err}");
    // Synced but the slot not told: the server sends it again.
    let (code, err) = crashing(
        &f,
        "receive",
        &["--endpos", &x, "--resume"],
        "receive-synced:1",
    );
    assert_eq!(code, None, "{err}");
    // The same spool, resumed, more than once. A resumed run is sent again
    // only what the slot was not told of, which varies with when feedback
    // went out: both points are within what any rerun receives.
    for n in [300, 1_000] {
        let (code, err) = crashing(
            &f,
            "receive",
            &["--endpos", &x, "--resume"],
            &format!("receive-written:{n}"),
        );
        assert_eq!(code, None, "{err}");
    }
    let o = f.run("receive", &["--endpos", &x, "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.run("apply", &["--endpos", &x]);
    assert!(o.status.success(), "{}", stderr(&o));
    f.assert_matches_oracle();
}

#[test]
fn kill_inside_an_apply_transaction_and_after_its_commit() {
    let f = Fixture::new("crash_apply", TABLES, "[\"{job}\".tables.\"*\"]\n");
    f.setup_ok();
    let x = workload(&f, 8_000);
    // Between spool and apply: everything spooled, nothing applied.
    let o = f.run("receive", &["--endpos", &x]);
    assert!(o.status.success(), "{}", stderr(&o));
    // In the middle of the big transaction, then of a group of small ones.
    for point in ["apply-sent:3000", "apply-sent:8100", "apply-sent:50"] {
        let (code, err) = crashing(&f, "apply", &["--endpos", &x], point);
        assert_eq!(code, None, "{point}: {err}");
    }
    // After the target committed, before anything else happened: each run
    // commits one group and dies; the next starts after it.
    let mut kills = 0;
    loop {
        let before = f.origin_lsn();
        let (code, err) = crashing(&f, "apply", &["--endpos", &x], "apply-committed:1");
        if code == Some(0) {
            break;
        }
        assert_eq!(code, None, "{err}");
        assert_ne!(
            f.origin_lsn(),
            before,
            "the commit before the kill stays: {err}"
        );
        kills += 1;
        assert!(kills < 20, "apply never finished");
    }
    assert!(kills >= 1, "no kill after a commit happened");
    f.assert_matches_oracle();
}

#[test]
fn sigkill_from_outside_at_arbitrary_moments_of_follow() {
    let mut f = Fixture::new("crash_follow", TABLES, "[\"{job}\".tables.\"*\"]\n");
    f.setup_ok();
    let x = workload(&f, 30_000);
    for wait_ms in [150u64, 400, 700, 1000, 1500] {
        let pid = f.spawn("follow", &["--endpos", &x, "--resume"], &[]);
        std::thread::sleep(Duration::from_millis(wait_ms));
        f.kill9(pid);
    }
    f.follow_to(&x);
    f.assert_matches_oracle();
}
