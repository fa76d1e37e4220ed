//! Changes sharing one statement on the target (a run), and where they must
//! not: a run's result is one count for all its changes, which says that
//! each change found its row only when each key can match at most one
//! target row.

mod stream_util;
mod util;

use stream_util::{Fixture, assert_fails};
use util::stderr;

const T: &str = "CREATE TABLE t (id int PRIMARY KEY, v text);";

/// `follow --endpos LSN --json`, which must succeed: its report.
fn follow_json(f: &Fixture, lsn: &str) -> serde_json::Value {
    let o = f.run("follow", &["--endpos", lsn, "--resume", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(util::stdout(&o).trim()).unwrap()
}

#[test]
fn changes_share_statements_and_a_failing_change_in_a_run_is_named() {
    let f = Fixture::new("runs", T, "[\"{job}\".tables.t]\n");
    f.setup_ok();
    f.sql(
        "INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 3000) i;
         UPDATE t SET v = v || '+' WHERE id <= 2000;
         DELETE FROM t WHERE id > 2500;",
    );
    // The same rows twice in a row in one transaction: the second change
    // to a key starts a new statement (one statement would apply only one).
    f.sql(
        "BEGIN; UPDATE t SET v = v || 'a' WHERE id <= 100; UPDATE t SET v = v || 'b' WHERE id <= 100;
         COMMIT;",
    );
    let x = f.lsn();
    let o = f.run("follow", &["--endpos", &x, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(util::stdout(&o).trim()).unwrap();
    assert_eq!(v["apply"]["changes"], 5700, "{v}");
    let statements = v["apply"]["statements"].as_u64().unwrap();
    assert!(statements < 20, "5,700 changes in {statements} statements");
    f.assert_matches_oracle();
    assert_eq!(f.dst_rows("SELECT v FROM app.t WHERE id = 7"), ["v7+ab"]);
    let mut dst = f.dst.client();
    // A row the target has and the source inserts: the run of inserts
    // fails, and apply names the one change.
    dst.batch_execute("INSERT INTO app.t VALUES (6000, 'target only')")
        .unwrap();
    f.sql("INSERT INTO t SELECT i, 'n' || i FROM generate_series(5990, 6010) i");
    let y = f.lsn();
    let o = f.run("follow", &["--endpos", &y, "--resume"]);
    assert_fails(&o, 1, &["table t", "(id)=(6000)", "duplicate key"]);
    dst.batch_execute("DELETE FROM app.t WHERE id = 6000")
        .unwrap();
    f.follow_to(&y);
    f.assert_matches_oracle();
    // Rows gone from the target: a run of updates finds fewer rows than
    // changes; the transaction before it is applied, the change is named.
    dst.batch_execute("DELETE FROM app.t WHERE id IN (1500, 1700)")
        .unwrap();
    f.sql("INSERT INTO t VALUES (7000, 'before')");
    f.sql("UPDATE t SET v = 'again' WHERE id BETWEEN 1000 AND 2000");
    let z = f.lsn();
    let o = f.run("follow", &["--endpos", &z, "--resume"]);
    assert_fails(&o, 1, &["table t", "(id)=(1500)", "diverged"]);
    assert_eq!(
        f.dst_rows("SELECT v FROM app.t WHERE id IN (1000, 7000) ORDER BY id"),
        ["before", "v1000+"],
        "the transaction before is applied, none of the failing one"
    );
}

#[test]
fn where_a_key_can_match_two_target_rows_each_change_is_checked_alone() {
    // Unique keys on the source; on the target, `t` has no unique index (a
    // key may match two rows), `u`'s two-column key is covered by a unique
    // index on one of them (at most one row: runs stay), `w` has only a
    // partial unique index (no such promise).
    let f = Fixture::new(
        "runs_nokey",
        "CREATE TABLE t (id int PRIMARY KEY, v text);
         CREATE TABLE u (a int, b int, v text, PRIMARY KEY (a, b));
         CREATE TABLE w (id int PRIMARY KEY, v text);",
        "[\"{job}\".tables.t]\n[\"{job}\".tables.u]\n[\"{job}\".tables.w]\n",
    );
    f.setup_ok();
    let mut dst = f.dst.client();
    dst.batch_execute(
        "DO $$ DECLARE r record; BEGIN
           FOR r IN SELECT conrelid::regclass AS t, conname FROM pg_constraint
                    WHERE connamespace = 'app'::regnamespace AND contype = 'p' LOOP
             EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname);
           END LOOP; END $$;
         CREATE INDEX ON app.t (id);
         CREATE UNIQUE INDEX ON app.u (a);
         CREATE UNIQUE INDEX ON app.w (id) WHERE id > 0;",
    )
    .unwrap();
    f.sql(
        "INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 100) i;
         INSERT INTO u SELECT i, i, 'v' || i FROM generate_series(1, 100) i;
         INSERT INTO w SELECT i, 'v' || i FROM generate_series(1, 100) i;",
    );
    let v = follow_json(&f, &f.lsn());
    assert_eq!(v["apply"]["changes"], 300, "{v}");
    assert!(v["apply"]["statements"].as_u64().unwrap() <= 3, "{v}");
    // UPDATE and DELETE: one statement per change where a key may match
    // two rows, and `--json` says so.
    f.sql("UPDATE t SET v = v || '+'; UPDATE w SET v = v || '+'; DELETE FROM w WHERE id > 90;");
    let v = follow_json(&f, &f.lsn());
    assert_eq!(v["apply"]["changes"], 210, "{v}");
    assert_eq!(v["apply"]["statements"], 210, "{v}");
    f.sql("UPDATE u SET v = v || '+'; DELETE FROM u WHERE a > 90;");
    let v = follow_json(&f, &f.lsn());
    assert_eq!(v["apply"]["changes"], 110, "{v}");
    assert!(v["apply"]["statements"].as_u64().unwrap() <= 2, "{v}");
    f.assert_matches_oracle();

    // The target diverged: key 5 is on it twice, key 6 not at all. Two
    // changes of one transaction, one matching two rows and one none, touch
    // two rows together: only each change's own count shows the loss.
    let diverge = |dst: &mut postgres::Client, dup: i32, gone: i32| {
        dst.batch_execute(&format!(
            "INSERT INTO app.t VALUES ({dup}, 'target only'); DELETE FROM app.t WHERE id = {gone}"
        ))
        .unwrap();
    };
    diverge(&mut dst, 5, 6);
    f.sql("BEGIN; UPDATE t SET v = 'x' WHERE id = 5; UPDATE t SET v = 'x' WHERE id = 6; COMMIT;");
    let x = f.lsn();
    let o = f.run("follow", &["--endpos", &x, "--resume"]);
    assert_fails(
        &o,
        1,
        &[
            "table t",
            "UPDATE found 2 rows with key (id)=(5)",
            "diverged",
        ],
    );
    assert_eq!(
        f.dst_rows("SELECT id || ':' || v FROM app.t WHERE id IN (5, 6)"),
        ["5:target only", "5:v5+"],
        "nothing of the transaction is applied"
    );
    dst.batch_execute(
        "DELETE FROM app.t WHERE v = 'target only'; INSERT INTO app.t VALUES (6, 'v6+')",
    )
    .unwrap();
    f.follow_to(&x);
    f.assert_matches_oracle();
    // The same for DELETE.
    diverge(&mut dst, 7, 8);
    f.sql("BEGIN; DELETE FROM t WHERE id = 7; DELETE FROM t WHERE id = 8; COMMIT;");
    let x = f.lsn();
    let o = f.run("follow", &["--endpos", &x, "--resume"]);
    assert_fails(
        &o,
        1,
        &[
            "table t",
            "DELETE found 2 rows with key (id)=(7)",
            "diverged",
        ],
    );
    assert_eq!(
        f.dst_rows("SELECT id FROM app.t WHERE id IN (7, 8)"),
        ["7", "7"]
    );
    dst.batch_execute(
        "DELETE FROM app.t WHERE v = 'target only'; INSERT INTO app.t VALUES (8, 'v8+')",
    )
    .unwrap();
    f.follow_to(&x);
    f.assert_matches_oracle();
}

/// `n` source transactions, each its own: inserts of `from..from+n` into
/// `t2` (with the inserting transaction's id in `x`).
fn small_transactions(f: &Fixture, from: i32, n: i32) {
    f.sql(&format!(
        "DO $$ BEGIN FOR i IN {from}..{} LOOP
           INSERT INTO t2 (id, v) VALUES (i, 'v' || i); COMMIT;
         END LOOP; END $$;",
        from + n - 1
    ));
}

const T2: &str = "CREATE TABLE t2 (id int PRIMARY KEY, v text, x bigint DEFAULT txid_current());";

#[test]
fn many_small_source_transactions_share_target_transactions_and_statements() {
    let f = Fixture::new("runs_small", T2, "[\"{job}\".tables.t2]\n");
    f.setup_ok();
    small_transactions(&f, 1, 600);
    // Updates of keys just inserted, each in a transaction of its own, and a
    // transaction touching one key twice: a repeated key starts a new run.
    f.sql(
        "DO $$ BEGIN FOR i IN 1..200 LOOP
           UPDATE t2 SET v = v || '+' WHERE id = i; COMMIT;
         END LOOP; END $$;",
    );
    f.sql(
        "BEGIN; UPDATE t2 SET v = v || 'a' WHERE id = 5; UPDATE t2 SET v = v || 'b' WHERE id = 5; \
         COMMIT;",
    );
    let v = follow_json(&f, &f.lsn());
    let (source, target) = (
        v["apply"]["transactions"].as_u64().unwrap(),
        v["apply"]["target_transactions"].as_u64().unwrap(),
    );
    assert!(source >= 801, "{v}");
    assert!(
        target * 10 <= source,
        "{source} source transactions in {target} target ones: {v}"
    );
    let statements = v["apply"]["statements"].as_u64().unwrap();
    assert!(
        statements < 30,
        "802 changes in {statements} statements: {v}"
    );
    f.assert_matches_oracle();
    assert_eq!(f.dst_rows("SELECT v FROM app.t2 WHERE id = 5"), ["v5+ab"]);
    // What the target itself shows: rows committed together share an xmin.
    let xmins = f.dst_rows("SELECT count(DISTINCT xmin::text)::text FROM app.t2");
    assert!(xmins[0].parse::<u64>().unwrap() <= target, "{xmins:?} {v}");
}

#[test]
fn a_failing_change_inside_a_group_is_named_and_the_transactions_before_it_are_applied() {
    let f = Fixture::new("runs_group_fail", T2, "[\"{job}\".tables.t2]\n");
    f.setup_ok();
    small_transactions(&f, 1, 100);
    f.follow_to(&f.lsn());
    // The target has a row the source will insert in the 150th of 300
    // transactions that would otherwise share target transactions and runs.
    let mut dst = f.dst.client();
    dst.batch_execute("INSERT INTO app.t2 VALUES (250, 'target only', 0)")
        .unwrap();
    small_transactions(&f, 101, 300);
    let y = f.lsn();
    let xid: i64 = f
        .src
        .client()
        .query_one("SELECT x FROM t2 WHERE id = 250", &[])
        .unwrap()
        .get(0);
    let o = f.run("follow", &["--endpos", &y, "--resume"]);
    assert_fails(
        &o,
        1,
        &[
            &format!("before source transaction {xid} "),
            "table t2",
            "(id)=(250)",
            "duplicate key",
        ],
    );
    assert_eq!(
        f.dst_rows("SELECT count(*)::text || ' ' || max(id)::text FROM app.t2 WHERE id <> 250"),
        ["249 249"],
        "every transaction before the failing one is applied, nothing after it"
    );
    // The origin is exactly at the last applied transaction: after the
    // repair, a rerun inserts 250.. once (before it, a duplicate; after
    // it, rows missing from the oracle's comparison).
    dst.batch_execute("DELETE FROM app.t2 WHERE id = 250")
        .unwrap();
    let o = f.run("follow", &["--endpos", &y, "--resume", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(util::stdout(&o).trim()).unwrap();
    assert_eq!(v["apply"]["transactions"], 151, "{v}");
    f.assert_matches_oracle();
}

#[test]
fn a_filtered_table_without_a_unique_key_on_the_target_checks_each_update_or_insert() {
    // A job `where` makes each UPDATE an update-or-insert (the row may be
    // entering the subset). On a target where a key may match two rows, a
    // change that updates two rows is a divergence, alone or in a run.
    let f = Fixture::new(
        "runs_nokey_where",
        "CREATE TABLE t (id int PRIMARY KEY, k boolean, v text);",
        "[\"{job}\".tables.t]\nwhere = { k = true }\n",
    );
    f.setup_ok();
    let mut dst = f.dst.client();
    dst.batch_execute("ALTER TABLE app.t DROP CONSTRAINT t_pkey; CREATE INDEX ON app.t (id);")
        .unwrap();
    f.sql("INSERT INTO t SELECT i, i % 2 = 0, 'v' || i FROM generate_series(1, 100) i;");
    // Rows entering, leaving and staying in the subset.
    f.sql("UPDATE t SET k = NOT k, v = v || '+' WHERE id <= 40; UPDATE t SET v = v || '!' WHERE id > 40;");
    let v = follow_json(&f, &f.lsn());
    assert_eq!(v["apply"]["changes"], 150, "{v}");
    f.assert_matches_oracle();

    // The target diverged: key 50 is on it twice, key 52 not at all (so
    // its update-or-insert inserts it: 3 rows for 2 changes).
    dst.batch_execute(
        "INSERT INTO app.t VALUES (50, true, 'target only'); DELETE FROM app.t WHERE id = 52",
    )
    .unwrap();
    f.sql("BEGIN; UPDATE t SET v = 'x' WHERE id = 50; UPDATE t SET v = 'x' WHERE id = 52; COMMIT;");
    let x = f.lsn();
    let o = f.run("follow", &["--endpos", &x, "--resume"]);
    assert_fails(
        &o,
        1,
        &[
            "table t",
            "UPDATE found 2 rows with key (id)=(50)",
            "diverged",
        ],
    );
    assert_eq!(
        f.dst_rows("SELECT id || ':' || v FROM app.t WHERE id IN (50, 52) ORDER BY v"),
        ["50:target only", "50:v50!"],
        "nothing of the transaction is applied"
    );
    dst.batch_execute(
        "DELETE FROM app.t WHERE v = 'target only'; INSERT INTO app.t VALUES (52, true, 'v52!')",
    )
    .unwrap();
    f.follow_to(&x);
    f.assert_matches_oracle();
    // One change alone in its transaction.
    dst.batch_execute("INSERT INTO app.t VALUES (54, true, 'target only')")
        .unwrap();
    f.sql("UPDATE t SET v = 'y' WHERE id = 54");
    let y = f.lsn();
    let o = f.run("follow", &["--endpos", &y, "--resume"]);
    assert_fails(
        &o,
        1,
        &[
            "table t",
            "UPDATE found 2 rows with key (id)=(54)",
            "diverged",
        ],
    );
    dst.batch_execute("DELETE FROM app.t WHERE v = 'target only'")
        .unwrap();
    f.follow_to(&y);
    f.assert_matches_oracle();
}

const AB: &str = "CREATE TABLE a (id int PRIMARY KEY, v text);
    CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a, v text);
    INSERT INTO a SELECT i, 'a' || i FROM generate_series(1, 1000) i;
    INSERT INTO b SELECT i, i, 'b' || i FROM generate_series(1, 1000) i;";

/// Tiny source transactions alternating tables and kinds (as an
/// application's do): an INSERT into `a` and one into `b`; an UPDATE of
/// each and a DELETE from `b`; now and then changes to keys the same group
/// just inserted (an UPDATE, then a DELETE of both rows), whose order must
/// hold. `n` rounds.
fn alternating(f: &Fixture, n: i32) {
    f.sql(&format!(
        "DO $$ BEGIN FOR i IN 1..{n} LOOP
           INSERT INTO a VALUES (1000 + i, 'new' || i); INSERT INTO b VALUES (1000 + i, 1000 + i, 'new' || i);
           COMMIT;
           UPDATE a SET v = v || '+' WHERE id = i; UPDATE b SET v = v || '+' WHERE id = 500 + i;
           DELETE FROM b WHERE id = i;
           COMMIT;
           IF i % 25 = 0 THEN
             UPDATE a SET v = v || ' again' WHERE id = 1000 + i; COMMIT;
             DELETE FROM b WHERE id = 1000 + i - 1; DELETE FROM a WHERE id = 1000 + i - 1;
             INSERT INTO a VALUES (1000 + i - 1, 'back'); COMMIT;
           END IF;
         END LOOP; END $$;"
    ));
}

#[test]
fn changes_of_tables_alternating_in_tiny_transactions_share_statements_per_table() {
    let f = Fixture::new(
        "runs_alternating",
        AB,
        "[\"{job}\".tables.a]\n[\"{job}\".tables.b]\n",
    );
    f.setup_ok();
    alternating(&f, 400);
    let v = follow_json(&f, &f.lsn());
    let changes = v["apply"]["changes"].as_u64().unwrap();
    assert_eq!(changes, 400 * 5 + 16 * 4, "{v}");
    let statements = v["apply"]["statements"].as_u64().unwrap();
    assert!(
        statements * 10 < changes,
        "{changes} changes in {statements} statements: {v}"
    );
    f.assert_matches_oracle();
    assert_eq!(
        f.dst_rows("SELECT v FROM app.a WHERE id IN (1024, 1025) ORDER BY id"),
        ["back", "new25 again"]
    );
}

#[test]
fn where_the_target_could_see_the_order_changes_keep_it() {
    // `c`'s e-mail is unique on the target too: an UPDATE frees an address
    // that the next transaction's INSERT takes, so INSERTs of `c` must not
    // go ahead of its UPDATEs (a run of them would meet the old address).
    let f = Fixture::new(
        "runs_in_order",
        &format!(
            "{AB} CREATE TABLE c (id int PRIMARY KEY, email text UNIQUE);
             INSERT INTO c SELECT i, 'e' || i FROM generate_series(1, 300) i;"
        ),
        "[\"{job}\".tables.a]\n[\"{job}\".tables.b]\n[\"{job}\".tables.c]\n",
    );
    f.setup_ok();
    f.dst
        .client()
        .batch_execute("CREATE UNIQUE INDEX ON app.c (email)")
        .unwrap();
    f.sql("INSERT INTO c VALUES (5000, 'fresh')");
    f.sql(
        "DO $$ BEGIN FOR i IN 1..300 LOOP
           UPDATE c SET email = 'x' || i WHERE id = i; COMMIT;
           INSERT INTO c VALUES (1000 + i, 'e' || i); COMMIT;
         END LOOP; END $$;",
    );
    // Each change of `c` in its own statement, once: none retried after a
    // run that failed for being sent out of order.
    let v = follow_json(&f, &f.lsn());
    assert_eq!(v["apply"]["changes"], 601, "{v}");
    assert!(v["apply"]["statements"].as_u64().unwrap() <= 601, "{v}");
    f.assert_matches_oracle();

    // A trigger that fires under `replica` (ENABLE ALWAYS) on a streamed
    // table could see the order: every change goes in source order (here,
    // one statement each, as no two consecutive ones share a shape), and
    // the trigger sees `a`'s row before `b`'s that refers to it.
    f.dst
        .client()
        .batch_execute(
            "CREATE TABLE app.seen (b int, a_there boolean);
             CREATE FUNCTION app.seen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
               INSERT INTO app.seen SELECT NEW.id, EXISTS (SELECT FROM app.a WHERE id = NEW.a_id);
               RETURN NEW; END $$;
             CREATE TRIGGER seen AFTER INSERT ON app.b FOR EACH ROW EXECUTE FUNCTION app.seen();
             ALTER TABLE app.b ENABLE ALWAYS TRIGGER seen;",
        )
        .unwrap();
    alternating(&f, 100);
    let v = follow_json(&f, &f.lsn());
    let changes = v["apply"]["changes"].as_u64().unwrap();
    assert_eq!(changes, 100 * 5 + 4 * 4, "{v}");
    assert!(
        v["apply"]["statements"].as_u64().unwrap() * 2 > changes,
        "{v}"
    );
    assert_eq!(
        f.dst_rows("SELECT count(*)::text FROM app.seen WHERE a_there"),
        ["100"]
    );
    f.dst
        .client()
        .batch_execute("DROP TRIGGER seen ON app.b; DROP FUNCTION app.seen(); DROP TABLE app.seen")
        .unwrap();
    f.assert_matches_oracle();
}
