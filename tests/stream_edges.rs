//! `host stream` at the edges: end positions, transactions committing in
//! another order than they began, spool segments, DDL, plugins that reject,
//! trap, or break the key rule, and bad input.

mod stream_util;
mod util;

use stream_util::{Fixture, LIMIT, OutputWithin, assert_fails};
use util::{TestDb, host, stderr, wasm};

const T: &str = "CREATE TABLE t (id int PRIMARY KEY, v text);";

fn ids(f: &Fixture) -> Vec<String> {
    f.dst_rows("SELECT id FROM app.t")
}

/// The commit LSN of the transaction with `xid`, as the spool recorded it.
fn commit_lsn(f: &Fixture, xid: i64) -> String {
    let spool = f.sdir().join("spool");
    for entry in std::fs::read_dir(spool).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["action"] == "C" && v["xid"].as_i64() == Some(xid) {
                return v["lsn"].as_str().unwrap().to_string();
            }
        }
    }
    panic!("no COMMIT of transaction {xid} in the spool");
}

fn lsn_minus_one(lsn: &str) -> String {
    let (hi, lo) = lsn.split_once('/').unwrap();
    let v = (u64::from_str_radix(hi, 16).unwrap() << 32 | u64::from_str_radix(lo, 16).unwrap()) - 1;
    format!("{:X}/{:X}", v >> 32, v & 0xFFFF_FFFF)
}

#[test]
fn endpos_before_inside_and_exactly_at_a_commit() {
    let f = Fixture::new("endpos", T, "[\"{job}\".tables.t]\n");
    f.setup_ok();
    let before = f.lsn();
    f.sql("INSERT INTO t VALUES (1, 'one')");
    let mut c = f.src.client();
    let mut tx = c.transaction().unwrap();
    tx.execute("INSERT INTO t VALUES (2, 'two')", &[]).unwrap();
    let xid: i64 = tx.query_one("SELECT txid_current()", &[]).unwrap().get(0);
    let inside: String = tx
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .unwrap()
        .get(0);
    tx.execute("INSERT INTO t VALUES (3, 'three')", &[])
        .unwrap();
    tx.commit().unwrap();
    f.sql("INSERT INTO t VALUES (4, 'four')");
    let end = f.lsn();

    // follow stops before a transaction straddling the end position...
    let o = f.run("follow", &["--endpos", &inside]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        ids(&f),
        ["1"],
        "only the transaction committed before the end position"
    );
    // ...and the next run applies it whole.
    let receive = f.run("receive", &["--endpos", &end, "--resume"]);
    assert!(receive.status.success(), "{}", stderr(&receive));
    let at = commit_lsn(&f, xid);
    let o = f.run("apply", &["--endpos", &lsn_minus_one(&at)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ids(&f), ["1"], "one byte before its commit: not applied");
    let o = f.run("apply", &["--endpos", &at]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        ids(&f),
        ["1", "2", "3"],
        "exactly at its commit: applied, whole"
    );
    f.follow_to(&end);
    f.assert_matches_oracle();

    // An end position before anything changed applies nothing.
    let g = Fixture::new("endpos0", T, "[\"{job}\".tables.t]\n");
    g.setup_ok();
    let start = g.lsn();
    g.sql("INSERT INTO t VALUES (1, 'one')");
    let _ = before;
    let o = g.run("follow", &["--endpos", &lsn_minus_one(&start)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(ids(&g).is_empty());
    // The sentinel moves the end position of a run.
    let o = g.run(
        "sentinel",
        &["set", "endpos", "--current", "--source", &g.src.dsn],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = g.run("follow", &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ids(&g), ["1"]);
}

#[test]
fn transactions_committing_in_another_order_than_they_began_and_many_spool_segments() {
    let f = Fixture::new("interleaved", T, "[\"{job}\".tables.t]\n");
    f.setup_ok();
    let (mut c1, mut c2, mut c3) = (f.src.client(), f.src.client(), f.src.client());
    c1.batch_execute("BEGIN; INSERT INTO t VALUES (1, 'first begun')")
        .unwrap();
    c2.batch_execute("BEGIN; INSERT INTO t VALUES (2, 'second begun')")
        .unwrap();
    c3.batch_execute("BEGIN; INSERT INTO t SELECT i, 'big' FROM generate_series(100, 2099) i")
        .unwrap();
    c2.batch_execute("COMMIT").unwrap();
    c1.batch_execute(
        "UPDATE t SET v = 'seen second' WHERE id = 2; INSERT INTO t VALUES (3, 'x'); COMMIT",
    )
    .unwrap();
    c3.batch_execute("DELETE FROM t WHERE id = 1; COMMIT")
        .unwrap();
    for i in 0..50 {
        f.sql(&format!(
            "INSERT INTO t VALUES ({}, 'small'); UPDATE t SET v = v || '+' WHERE id = 3",
            5000 + i
        ));
    }
    let x = f.lsn();
    let o = f.run("receive", &["--endpos", &x, "--segment-size", "2KiB"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let segments = std::fs::read_dir(f.sdir().join("spool")).unwrap().count();
    assert!(segments > 10, "{segments} segments");
    // Killed mid-way through the segments, then resumed.
    let o = f
        .cmd("apply", &["--endpos", &x])
        .env("HOST_STREAM_CRASH", "apply-sent:1000")
        .output_within(LIMIT);
    assert_eq!(o.status.code(), None, "{}", stderr(&o));
    let o = f.run("apply", &["--endpos", &x]);
    assert!(o.status.success(), "{}", stderr(&o));
    f.assert_matches_oracle();
    let left = std::fs::read_dir(f.sdir().join("spool")).unwrap().count();
    assert!(
        left < segments,
        "applied segments are removed ({left} of {segments} left)"
    );
}

#[test]
fn ddl_on_a_streamed_table_stops_apply_by_name() {
    for (label, trigger) in [("ddl", true), ("ddl_notrigger", false)] {
        let f = Fixture::new(label, T, "[\"{job}\".tables.\"*\"]\n");
        let o = f.setup(if trigger { &[] } else { &["--no-ddl-trigger"] });
        assert!(o.status.success(), "{}", stderr(&o));
        f.sql("INSERT INTO t VALUES (1, 'a')");
        f.sql("ALTER TABLE t ADD COLUMN extra int; INSERT INTO t VALUES (2, 'b', 42)");
        let x = f.lsn();
        let o = f.run("follow", &["--endpos", &x]);
        if trigger {
            assert_fails(&o, 5, &["DDL", "ALTER TABLE", "public.t"]);
        } else {
            assert_fails(
                &o,
                5,
                &["table t", "column extra is not in the table", "DDL"],
            );
        }
        assert_eq!(
            ids(&f),
            ["1"],
            "{label}: what came before the DDL is applied"
        );
        // A rerun stops at the same place.
        let o = f.run("follow", &["--endpos", &x, "--resume"]);
        assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    }
    // DDL that no change follows is caught by the trigger alone; so is a new table.
    let f = Fixture::new("ddl_quiet", T, "[\"{job}\".tables.\"*\"]\n");
    f.setup_ok();
    f.sql("ALTER TABLE t RENAME COLUMN v TO w");
    let x = f.lsn();
    assert_fails(&f.run("follow", &["--endpos", &x]), 5, &["DDL", "public.t"]);
    let g = Fixture::new("ddl_new", T, "[\"{job}\".tables.\"*\"]\n");
    let o = g.setup(&["--no-ddl-trigger"]);
    assert!(o.status.success(), "{}", stderr(&o));
    g.sql("CREATE TABLE t2 (id int PRIMARY KEY); INSERT INTO t2 VALUES (1)");
    let x = g.lsn();
    assert_fails(
        &g.run("follow", &["--endpos", &x]),
        5,
        &["table t2", "does not know"],
    );
}

fn hostile(params: &str) -> String {
    format!(
        "[\"{{job}}\".tables.t]\nallow_uniqueness_loss = true\n\
         plugins = [{{ plugin = \"{}\", params = {{ {params} }} }}]\n",
        wasm("row_hostile").display()
    )
}

#[test]
fn a_plugin_that_rejects_or_traps_stops_apply_before_that_transaction() {
    let f = Fixture::new(
        "reject",
        T,
        &hostile("\"reject-on\" = \"BAD\", \"trap-on\" = \"BOOM\""),
    );
    f.setup_ok();
    f.sql("INSERT INTO t VALUES (1, 'ok'); INSERT INTO t VALUES (2, 'ok');");
    let mut c = f.src.client();
    let mut tx = c.transaction().unwrap();
    tx.execute("INSERT INTO t VALUES (3, 'fine'), (4, 'BAD')", &[])
        .unwrap();
    let xid: i64 = tx.query_one("SELECT txid_current()", &[]).unwrap().get(0);
    tx.commit().unwrap();
    let x = f.lsn();
    let o = f.run("follow", &["--endpos", &x]);
    assert_fails(
        &o,
        3,
        &[
            &format!("transaction {xid}"),
            "table t",
            "plugin row_hostile",
            "rejected",
            "BAD",
        ],
    );
    assert_eq!(
        ids(&f),
        ["1", "2"],
        "the transactions before it are applied, none of it"
    );
    // A rerun retries it (and stops again).
    assert_fails(&f.run("follow", &["--endpos", &x, "--resume"]), 3, &["BAD"]);
    // A trap.
    let g = Fixture::new("trap", T, &hostile("\"trap-on\" = \"BOOM\""));
    g.setup_ok();
    // Two transactions (one query string of several statements is one).
    g.sql("INSERT INTO t VALUES (1, 'ok')");
    g.sql("INSERT INTO t VALUES (2, 'BOOM')");
    let x = g.lsn();
    assert_fails(
        &g.run("follow", &["--endpos", &x]),
        4,
        &["plugin row_hostile", "trapped", "table t"],
    );
    assert_eq!(ids(&g), ["1"]);
}

#[test]
fn a_slow_plugin_past_its_time_limit_stops_apply_and_a_rerun_with_more_time_goes_on() {
    let f = Fixture::new("slow", T, &hostile("\"spin-on\" = \"SLOW:3000\""));
    f.setup_ok();
    for (id, v) in [(1, "ok"), (2, "SLOW"), (3, "ok")] {
        f.sql(&format!("INSERT INTO t VALUES ({id}, '{v}')"));
    }
    let x = f.lsn();
    let o = f.run("follow", &["--endpos", &x, "--plugin-time", "200ms"]);
    assert_fails(&o, 4, &["plugin row_hostile", "table t"]);
    assert_eq!(ids(&f), ["1"]);
    let o = f.run(
        "follow",
        &["--endpos", &x, "--resume", "--plugin-time", "60s"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ids(&f), ["1", "2", "3"]);
}

#[test]
fn a_key_plugin_that_is_not_a_function_of_the_key_alone_is_refused() {
    for (label, params) in [("counter", "counter = \"v\""), ("mix", "mix = \"v:n\"")] {
        let f = Fixture::new(
            label,
            "CREATE TABLE t (v text PRIMARY KEY, n int);",
            &hostile(params),
        );
        f.setup_ok();
        f.sql("INSERT INTO t VALUES ('a', 1)");
        let x = f.lsn();
        let o = f.run("follow", &["--endpos", &x]);
        assert_fails(
            &o,
            4,
            &["key column v", "depend on that column only", "row_hostile"],
        );
    }
    // One that is (upper-casing the key) streams, key updates included.
    let f = Fixture::new(
        "upper",
        "CREATE TABLE t (v text PRIMARY KEY, n int);",
        &hostile("upper = \"v\""),
    );
    f.setup_ok();
    f.sql("INSERT INTO t VALUES ('a', 1), ('b', 2); UPDATE t SET v = 'c' WHERE v = 'a'; DELETE FROM t WHERE v = 'b';
           UPDATE t SET n = 5 WHERE v = 'c';");
    f.catch_up_and_check();
}

#[test]
fn bad_input_gets_a_clear_refusal() {
    let f = Fixture::new(
        "bad",
        "CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE nokey (v text);",
        "[\"{job}\".tables.t]\n",
    );
    // A table without a key, by name.
    let keyless = TestDb::new("bad_nokey");
    keyless
        .client()
        .batch_execute("CREATE TABLE nokey (v text); CREATE TABLE fine (id int PRIMARY KEY);")
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    let o = host()
        .args(["stream", "setup", "--dir"])
        .arg(d.path().join("s"))
        .args([
            "--source",
            &keyless.dsn,
            "--target",
            &f.dst.dsn,
            "--slot-name",
            "t_bad_never",
        ])
        .output_within(LIMIT);
    assert_fails(
        &o,
        1,
        &["table nokey", "no primary key or replica identity"],
    );
    // An unreachable source.
    let o = host()
        .args(["stream", "setup", "--dir"])
        .arg(d.path().join("u"))
        .args([
            "--source",
            "postgresql://host:host@127.0.0.1:1/nothing",
            "--target",
            &f.dst.dsn,
        ])
        .output_within(LIMIT);
    assert_fails(&o, 1, &["cannot connect", "127.0.0.1:1"]);
    // No source at all.
    let o = host()
        .args(["stream", "setup", "--dir"])
        .arg(d.path().join("n"))
        .env_remove("HOST_SOURCE_PGURI")
        .env_remove("PGCOPYDB_SOURCE_PGURI")
        .output_within(LIMIT);
    assert_fails(
        &o,
        1,
        &["no source database", "--source", "HOST_SOURCE_PGURI"],
    );
    // A usage error.
    assert_fails(
        &f.run("follow", &["--endpos", "not-an-lsn"]),
        2,
        &["not a WAL position"],
    );

    f.setup_ok();
    // The same directory twice; the same slot from another directory.
    assert_fails(&f.setup(&[]), 1, &["already holds a stream"]);
    let o = host()
        .args(["stream", "setup", "--dir"])
        .arg(d.path().join("again"))
        .args(["-c"])
        .arg(&f.jobs)
        .args([
            "--job",
            "stream",
            "--slot-name",
            &f.slot,
            "--origin",
            "t_bad_other_origin",
        ])
        .output_within(LIMIT);
    assert_fails(&o, 1, &["slot", &f.slot, "already exists"]);
    assert!(!d.path().join("again/stream.json").exists());
    // A spool directory belongs to one source.
    let other = TestDb::new("bad_other");
    other.client().batch_execute(T).unwrap();
    let o = host()
        .args(["stream", "receive", "--dir"])
        .arg(f.sdir())
        .args(["--source", &other.dsn, "--endpos", "0/1"])
        .output_within(LIMIT);
    assert_fails(&o, 1, &["belongs to database", &f.src.name, &other.name]);
    // A target without the origin.
    f.dst
        .client()
        .execute("SELECT pg_replication_origin_drop($1)", &[&f.slot])
        .unwrap();
    f.sql("INSERT INTO t VALUES (1)");
    let x = f.lsn();
    assert_fails(
        &f.run("follow", &["--endpos", &x]),
        1,
        &["no replication origin", &f.slot],
    );
}

#[test]
fn the_lifecycle_status_sentinel_restart_and_cleanup() {
    // A generated column (never written by apply) beside an identity column.
    let f = Fixture::new(
        "life",
        "CREATE TABLE t (id int PRIMARY KEY, v text, twice int GENERATED ALWAYS AS (id * 2) STORED,
                         n bigint GENERATED BY DEFAULT AS IDENTITY);",
        &format!(
            "[\"{{job}}\".tables.t]\nplugins = [{{ plugin = \"{}\", params = {{ \"where.v.in\" = \"keep\" }} }}]\n",
            wasm("where_filter").display()
        ),
    );
    f.setup_ok();
    f.sql("INSERT INTO t (id, v) VALUES (1, 'keep'), (2, 'drop'); UPDATE t SET v = 'keep' WHERE id = 2;");
    let x = f.lsn();
    let o = f.run("receive", &["--endpos", &x]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A second receive neither guesses nor discards.
    assert_fails(
        &f.run("receive", &["--endpos", &x]),
        1,
        &["--resume", "--restart"],
    );
    assert_fails(
        &f.run("receive", &["--endpos", &x, "--restart"]),
        1,
        &["would discard spooled changes the target has not applied"],
    );
    let o = f.run("apply", &["--endpos", &x, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    f.assert_matches_oracle();
    // Only dropped changes: the origin still moves past their transaction.
    let before = f.origin_lsn();
    f.sql("INSERT INTO t (id, v) VALUES (3, 'drop')");
    let y = f.lsn();
    let o = f.run("follow", &["--endpos", &y, "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(
        f.origin_lsn(),
        before,
        "a transaction whose changes all dropped still advances the origin"
    );
    assert_eq!(ids(&f), ["1", "2"]);
    // Everything applied: --restart may discard the spool now.
    let o = f.run("receive", &["--endpos", &y, "--restart"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // status and sentinel, as JSON.
    let o = f.run("status", &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(util::stdout(&o).trim()).unwrap();
    assert_eq!(s["slot"], f.slot.as_str());
    assert_eq!(s["apply_lag_bytes"], 0, "{s}");
    assert!(s["lag_seconds"].as_f64().is_some(), "{s}");
    let o = f.run("sentinel", &["set", "endpos", &y]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.run("sentinel", &["get", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(util::stdout(&o).contains(&y), "{}", util::stdout(&o));
    // cleanup removes the slot, the origin and the spool.
    let o = f.run("cleanup", &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(f.slot_state().is_none(), "slot dropped");
    let origins: i64 = f
        .dst
        .client()
        .query_one(
            "SELECT count(*) FROM pg_replication_origin WHERE roname = $1",
            &[&f.slot],
        )
        .unwrap()
        .get(0);
    assert_eq!(origins, 0, "origin dropped");
    assert!(!f.sdir().join("stream.json").exists());
    assert_fails(&f.run("status", &[]), 1, &["not a stream directory"]);
}

#[test]
fn setup_refuses_a_transform_on_a_unique_key_before_creating_anything() {
    let tables = format!(
        "[\"{{job}}\".tables.t]\nplugins = [{{ plugin = \"{}\", params = {{ key = \"k\", v = \"email\" }} }}]\n",
        wasm("anonymize").display()
    );
    let ddl = "CREATE TABLE t (id int PRIMARY KEY, v text UNIQUE);";
    // (Not copied first: the copy, `host xmat`, refuses the same way.)
    let f = Fixture::bare("unique_refused", ddl, &tables);
    let o = f.setup(&[]);
    assert_fails(
        &o,
        1,
        &[
            "t.v (t_v_key)",
            "plugin anonymize (v=email)",
            "allow_uniqueness_loss = [\"v\"] on table t",
        ],
    );
    assert_eq!(f.slot_state(), None, "no slot was created");
    assert!(!f.sdir().join("stream.json").exists());
    // Accepted on the command line, or by the job.
    let o = f.setup(&["--allow-uniqueness-loss"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let g = Fixture::new(
        "unique_accepted",
        ddl,
        &tables.replace("\nplugins", "\nallow_uniqueness_loss = [\"v\"]\nplugins"),
    );
    g.setup_ok();
}

/// What a stream leaves in its databases, read from their catalogs: the
/// DDL event triggers and their schema on the source, wal2json slots of the
/// source database, slots named `f.slot`, origins named `f.slot` on the target.
fn made(f: &Fixture) -> [i64; 5] {
    let s = f
        .src
        .client()
        .query_one(
            "SELECT (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'host_stream%'), \
                    (SELECT count(*) FROM pg_namespace WHERE nspname = 'host_stream'), \
                    (SELECT count(*) FROM pg_replication_slots \
                     WHERE database = current_database() AND plugin = 'wal2json'), \
                    (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)",
            &[&f.slot],
        )
        .unwrap();
    let origins: i64 = f
        .dst
        .client()
        .query_one(
            "SELECT count(*) FROM pg_replication_origin WHERE roname = $1",
            &[&f.slot],
        )
        .unwrap()
        .get(0);
    [s.get(0), s.get(1), s.get(2), s.get(3), origins]
}

#[test]
fn a_setup_that_fails_leaves_nothing_behind() {
    let f = Fixture::new("setup_undo", T, "[\"{job}\".tables.t]\n");
    assert_eq!(made(&f), [0; 5]);
    // A slot of that name is there already (another tool's).
    f.src
        .client()
        .query(
            "SELECT pg_create_logical_replication_slot($1, 'test_decoding')",
            &[&f.slot],
        )
        .unwrap();
    let o = f.setup(&[]);
    assert_fails(
        &o,
        1,
        &["replication slot named", &f.slot, "already exists"],
    );
    assert_eq!(made(&f), [0, 0, 0, 1, 0], "only the other slot");
    assert!(!f.sdir().exists());
    f.src
        .client()
        .query("SELECT pg_drop_replication_slot($1)", &[&f.slot])
        .unwrap();
    // An origin of that name is there already.
    f.dst
        .client()
        .query("SELECT pg_replication_origin_create($1)", &[&f.slot])
        .unwrap();
    let o = f.setup(&[]);
    assert_fails(
        &o,
        1,
        &["replication origin named", &f.slot, "already exists"],
    );
    assert_eq!(made(&f), [0, 0, 0, 0, 1], "only the other origin");
    assert!(!f.sdir().exists());
    f.dst
        .client()
        .query("SELECT pg_replication_origin_drop($1)", &[&f.slot])
        .unwrap();
    // The last step fails (the directory cannot be made, under a file):
    // the trigger, slot and origin made before it are removed.
    let file = f.dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let o = host()
        .args(["stream", "setup", "--dir"])
        .arg(file.join("stream"))
        .args(["-c"])
        .arg(&f.jobs)
        .args(["--job", "stream", "--slot-name", &f.slot])
        .output_within(LIMIT);
    assert_fails(&o, 1, &["a-file"]);
    assert_eq!(made(&f), [0; 5]);
    // Then it works, and cleanup removes all of it.
    f.setup_ok();
    assert_eq!(made(&f), [2, 1, 1, 1, 1]);
    let o = f.run("cleanup", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(made(&f), [0; 5]);
    // The same with the DSNs in pgcopydb's variables only.
    let pgcopydb = |sub: &str, args: &[&str]| {
        host()
            .args(["stream", sub, "--dir"])
            .arg(f.sdir())
            .args(args)
            .env_remove("HOST_SOURCE_PGURI")
            .env_remove("HOST_TARGET_PGURI")
            .env("PGCOPYDB_SOURCE_PGURI", &f.src.dsn)
            .env("PGCOPYDB_TARGET_PGURI", &f.dst.dsn)
            .output_within(LIMIT)
    };
    let o = pgcopydb("setup", &["--slot-name", &f.slot, "--target-schema", "app"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(made(&f), [2, 1, 1, 1, 1]);
    f.sql("INSERT INTO t VALUES (1, 'from the variables')");
    let x = f.lsn();
    let o = pgcopydb("follow", &["--endpos", &x, "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(f.dst_rows("SELECT v FROM app.t"), ["from the variables"]);
    let o = pgcopydb("cleanup", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(made(&f), [0; 5]);
}

#[test]
fn setup_refuses_to_stream_a_schema_into_itself() {
    let db = TestDb::new("stream_self");
    db.client()
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    // The same database named the same way, and another way.
    let sep = if db.dsn.contains('?') { '&' } else { '?' };
    let other = format!("{}{sep}application_name=other", db.dsn);
    for target in [db.dsn.as_str(), other.as_str()] {
        let o = host()
            .args(["stream", "setup", "--dir"])
            .arg(d.path().join("s"))
            .args(["--source", &db.dsn, "--target", target])
            .args(["--slot-name", &format!("self_{}", std::process::id())])
            .output_within(LIMIT);
        assert_fails(&o, 1, &["same schema public", "would replace itself"]);
        assert!(!d.path().join("s/stream.json").exists());
        let slots: i64 = db
            .client()
            .query_one(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1",
                &[&format!("self_{}", std::process::id())],
            )
            .unwrap()
            .get(0);
        assert_eq!(slots, 0, "no slot was created");
    }
}

/// A login role made for one test (cluster-wide, so uniquely named), dropped
/// with whatever it was granted in `db` when the test ends, passing or not.
struct Role {
    name: String,
    db: String,
}

impl Role {
    fn new(label: &str, db: &TestDb) -> Role {
        let name = format!("t_{label}_{}", std::process::id());
        db.client()
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN REPLICATION PASSWORD 'pw'"
            ))
            .unwrap();
        Role {
            name,
            db: db.dsn.clone(),
        }
    }

    /// `dsn` with this role as its user.
    fn dsn(&self, dsn: &str) -> String {
        let (scheme, rest) = dsn.split_once("://").unwrap();
        let (_, at) = rest.split_once('@').unwrap();
        format!("{scheme}://{}:pw@{at}", self.name)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.db, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP OWNED BY {0}; DROP ROLE IF EXISTS {0}",
                self.name
            ));
        }
    }
}

#[test]
fn a_wal2json_the_servers_output_plugin_libraries_does_not_allow_is_refused_before_creating_anything()
 {
    let src = TestDb::new("ss_opl");
    let dst = TestDb::new2("st_opl");
    let mut admin = src.client();
    let has_setting = admin
        .query_opt(
            "SELECT 1 FROM pg_settings WHERE name = 'output_plugin_libraries'",
            &[],
        )
        .unwrap()
        .is_some();
    if !has_setting {
        eprintln!(
            "skipped: server has no output_plugin_libraries (PostgreSQL before 15.19 loads every \
             installed output plugin)"
        );
        return;
    }
    let role = Role::new("opl", &src);
    let r = &role.name;
    admin
        .batch_execute(&format!(
            "CREATE TABLE t (id int PRIMARY KEY, v text); GRANT SELECT ON t TO {r}; \
             ALTER ROLE {r} SET output_plugin_libraries = 'pgoutput'"
        ))
        .unwrap();
    let slot = format!("t_opl_{}", std::process::id());
    let d = tempfile::tempdir().unwrap();
    let setup = || {
        host()
            .args(["stream", "setup", "--dir"])
            .arg(d.path().join("s"))
            .args(["--source", &role.dsn(&src.dsn), "--target", &dst.dsn])
            .args(["--slot-name", &slot])
            .output_within(LIMIT)
    };
    let slot_exists = |admin: &mut postgres::Client| {
        admin
            .query_opt(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .unwrap()
            .is_some()
    };
    let origin_exists = || {
        dst.client()
            .query_opt(
                "SELECT 1 FROM pg_replication_origin WHERE roname = $1",
                &[&slot],
            )
            .unwrap()
            .is_some()
    };
    let refused_and_nothing_made = |o: &std::process::Output, admin: &mut postgres::Client| {
        assert!(!slot_exists(admin), "no slot after a refusal");
        assert!(!origin_exists(), "no origin after a refusal");
        assert!(
            !d.path().join("s/stream.json").exists(),
            "no stream directory after a refusal"
        );
        let err = stderr(o);
        assert!(!err.contains("panicked"), "{err}");
    };

    // A role that may not read the setting: the server's refusal, named.
    let o = setup();
    assert_fails(
        &o,
        1,
        &[
            "does not allow this role to use the wal2json output plugin",
            "output_plugin_libraries",
            "ALTER SYSTEM SET output_plugin_libraries = pgoutput, test_decoding, wal2json",
            "ALTER ROLE",
        ],
    );
    refused_and_nothing_made(&o, &mut admin);

    // A role that may read it: refused before the slot, with the value and
    // the exact command for where it is set (here: on the role).
    admin
        .batch_execute(&format!("GRANT pg_read_all_settings TO {r}"))
        .unwrap();
    let o = setup();
    assert_fails(
        &o,
        1,
        &[
            "output_plugin_libraries is 'pgoutput'",
            &format!(
                "ALTER ROLE \"{r}\" SET output_plugin_libraries = pgoutput, wal2json (it is set for this role)"
            ),
        ],
    );
    refused_and_nothing_made(&o, &mut admin);

    // The trap: one quoted string is one name ("pgoutput, wal2json"), not
    // two, and the server refuses wal2json; so does the check.
    admin
        .batch_execute(&format!(
            "ALTER ROLE {r} SET output_plugin_libraries = 'pgoutput, wal2json'"
        ))
        .unwrap();
    let o = setup();
    assert_fails(
        &o,
        1,
        &[
            "output_plugin_libraries is '\"pgoutput, wal2json\"'",
            "SET output_plugin_libraries = \"pgoutput, wal2json\", wal2json",
        ],
    );
    refused_and_nothing_made(&o, &mut admin);

    // Allowed for the role: the same setup goes through.
    admin
        .batch_execute(&format!(
            "REVOKE pg_read_all_settings FROM {r}; \
             ALTER ROLE {r} SET output_plugin_libraries = pgoutput, wal2json"
        ))
        .unwrap();
    let o = setup();
    let made = slot_exists(&mut admin);
    // Drop what it made before asserting, so a failure leaves nothing behind.
    if made {
        let _ = admin.execute("SELECT pg_drop_replication_slot($1)", &[&slot]);
    }
    if origin_exists() {
        let _ = dst
            .client()
            .execute("SELECT pg_replication_origin_drop($1)", &[&slot]);
    }
    assert!(o.status.success(), "setup: {}", stderr(&o));
    assert!(made, "the slot was created");
}
