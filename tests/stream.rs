//! `host stream` on the two local clusters: changes from a source database
//! into a target one through the job's plugins, checked against a fresh
//! `host xmat` of the same job (see `stream_util`).

mod stream_util;
mod util;

use stream_util::{Fixture, assert_fails};
use util::wasm;

const SHOP: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE users (
  id bigint PRIMARY KEY, email text NOT NULL, name text, status text NOT NULL DEFAULT 'active',
  mood mood, tags text[], doc jsonb, avatar bytea, score numeric, big_int bigint, at timestamptz,
  "we""ird col" text);
CREATE TABLE orders (
  id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users(id), amount numeric(12,2) NOT NULL,
  note text);
"#;

#[test]
fn every_kind_of_change_and_value_matches_a_fresh_xmat() {
    let f = Fixture::new("basic", SHOP, "[\"{job}\".tables.\"*\"]\n");
    f.setup_ok();
    f.sql(
        r#"
INSERT INTO users SELECT i, 'user' || i || '@mail.example', 'Name ' || i, 'active',
  (ARRAY['sad','ok','happy'])[1 + i % 3]::mood, ARRAY['a' || i, 'b"q'], jsonb_build_object('i', i, 's', E'tab\there'),
  decode(md5(i::text), 'hex'), i * 1.000001, 9007199254740993 + i, timestamptz '2024-01-01 00:00:00+02' + i * interval '1 hour',
  E'line\nbreak \\ back'
FROM generate_series(1, 300) i;
INSERT INTO users (id, email) VALUES (1000, E'\u00e9\u00e8 \U0001F600 quote''s');
INSERT INTO orders (user_id, amount, note) SELECT 1 + i % 300, i / 7.0, CASE WHEN i % 5 = 0 THEN NULL ELSE 'n' || i END
FROM generate_series(1, 900) i;
UPDATE users SET name = NULL, score = -0.5 WHERE id % 7 = 0;
UPDATE users SET doc = doc || '{"more": [1, 2.50, null]}' WHERE id % 11 = 0;
DELETE FROM orders WHERE id % 4 = 0;
DELETE FROM users WHERE id = 1000;
UPDATE orders SET user_id = 2 WHERE user_id = 3;
DELETE FROM users WHERE id = 3;
INSERT INTO users (id, email) VALUES (7000, 'k'); UPDATE users SET id = 5000 WHERE id = 7000;
BEGIN; INSERT INTO users (id, email) VALUES (6000, 'a'); UPDATE users SET email = 'b' WHERE id = 6000;
  DELETE FROM users WHERE id = 6000; INSERT INTO users (id, email) VALUES (6000, 'c'); COMMIT;
"#,
    );
    f.catch_up_and_check();
    // A second round continues where the first stopped.
    f.sql("UPDATE users SET status = 'gone' WHERE id < 50; INSERT INTO orders (user_id, amount) VALUES (5000, 1);");
    f.catch_up_and_check();
}

#[test]
fn filtered_updates_move_rows_in_and_out_and_anonymized_keys_are_found_again() {
    let anon = wasm("anonymize");
    let filter = wasm("where_filter");
    let tables = format!(
        r#"["{{job}}".tables.people]
allow_uniqueness_loss = ["email"]
plugins = [{{ plugin = "{}", params = {{ "where.status.in" = "active,new" }} }},
           {{ plugin = "{}", params = {{ key = "k3y", email = "email", name = "name" }} }}]
"#,
        filter.display(),
        anon.display()
    );
    let f = Fixture::new(
        "filtered",
        "CREATE TABLE people (email text PRIMARY KEY, name text, status text NOT NULL);
         INSERT INTO people SELECT 'p' || i || '@x.org', 'Name ' || i, CASE WHEN i % 2 = 0 THEN 'active' ELSE 'inactive' END
         FROM generate_series(1, 200) i;",
        &tables,
    );
    f.setup_ok();
    f.sql(
        "UPDATE people SET status = 'inactive' WHERE email IN ('p2@x.org', 'p4@x.org');     -- out of the subset
         UPDATE people SET status = 'new' WHERE email IN ('p1@x.org', 'p3@x.org');          -- into it
         UPDATE people SET name = 'Renamed' WHERE email = 'p6@x.org';                        -- stays in
         UPDATE people SET name = 'Unseen' WHERE email = 'p5@x.org';                         -- stays out
         UPDATE people SET email = 'moved8@x.org' WHERE email = 'p8@x.org';                 -- anonymized key changes
         UPDATE people SET email = 'moved1@x.org', name = 'M' WHERE email = 'p1@x.org';
         DELETE FROM people WHERE email IN ('p10@x.org', 'p11@x.org', 'moved8@x.org');
         INSERT INTO people VALUES ('late@x.org', 'Late', 'active'), ('later@x.org', 'Later', 'gone');",
    );
    f.catch_up_and_check();
    let rows =
        f.dst_rows("SELECT email FROM app.people WHERE email LIKE 'p%' OR email LIKE 'moved%'");
    assert!(
        rows.is_empty(),
        "emails are anonymized on the target: {rows:?}"
    );
}

#[test]
fn where_and_select_of_the_job_apply_to_changes_as_in_xmat() {
    let anon = wasm("anonymize");
    let tables = format!(
        r#"["{{job}}".tables.users]
where = {{ tenant_id = {{ gte = 1, lte = 2 }}, status = ["active", "new"] }}
select = {{ email = "'user' || id || '@example.com'", secret = false, shout = "upper({{column_name}})" }}
plugins = [{{ plugin = "{}", params = {{ key = "k", name = "name" }} }}]
["{{job}}".tables.audit]
where = "kind <> 'noise'"
"#,
        anon.display()
    );
    let f = Fixture::new(
        "expr",
        "CREATE TABLE users (id int PRIMARY KEY, tenant_id int NOT NULL, status text NOT NULL, email text,
                             name text, secret text, shout text);
         CREATE TABLE audit (id bigserial PRIMARY KEY, kind text NOT NULL, at date);
         INSERT INTO users SELECT i, 1 + i % 4, CASE WHEN i % 3 = 0 THEN 'inactive' ELSE 'active' END,
           'u' || i || '@x', 'Name ' || i, 's' || i, 'quiet ' || i FROM generate_series(1, 100) i;",
        &tables,
    );
    f.setup_ok();
    f.sql(
        "UPDATE users SET tenant_id = 3 WHERE id IN (1, 2, 5);            -- out by tenant
         UPDATE users SET tenant_id = 1 WHERE id IN (3, 7);               -- 3 stays out (inactive), 7 in
         UPDATE users SET status = 'new' WHERE id IN (3, 6, 9);           -- in by status
         UPDATE users SET shout = 'louder', secret = 'x' WHERE id % 10 = 4;
         DELETE FROM users WHERE id IN (10, 11, 12);
         INSERT INTO users VALUES (200, 2, 'new', 'e', 'N', 's', 'hi'), (201, 4, 'new', 'e', 'N', 's', 'no');
         INSERT INTO audit (kind, at) SELECT CASE WHEN i % 2 = 0 THEN 'noise' ELSE 'real' END, date '2024-02-28' + i
           FROM generate_series(1, 20) i;
         UPDATE audit SET kind = 'noise' WHERE id = 1;
         UPDATE audit SET kind = 'real' WHERE id = 2;",
    );
    f.catch_up_and_check();
}

const DOCS: &str = "CREATE TABLE docs (id int PRIMARY KEY, small int NOT NULL, big text, other text);
    INSERT INTO docs SELECT i, i, (SELECT string_agg(md5(i::text || g::text), '') FROM generate_series(1, 400) g),
      'other ' || i FROM generate_series(1, 20) i;";

#[test]
fn an_unchanged_toasted_value_survives_an_update_of_another_column() {
    let anon = wasm("anonymize");
    // Without plugins, and with an anonymizer on another column.
    for (label, tables) in [
        ("toast", "[\"{job}\".tables.docs]\n".to_string()),
        (
            "toast_anon",
            format!(
                "[\"{{job}}\".tables.docs]\nplugins = [{{ plugin = \"{}\", params = {{ key = \"k\", other = \"hash\" }} }}]\n",
                anon.display()
            ),
        ),
    ] {
        let f = Fixture::new(label, DOCS, &tables);
        f.setup_ok();
        let big: i64 = f
            .src
            .client()
            .query_one("SELECT min(length(big))::int8 FROM docs", &[])
            .unwrap()
            .get(0);
        assert!(big > 8192, "the big values are TOASTed ({big} bytes)");
        f.sql("UPDATE docs SET small = small + 100 WHERE id <= 10; UPDATE docs SET other = 'changed' WHERE id = 3;");
        f.catch_up_and_check();
        let bigs =
            f.dst_rows("SELECT length(big) FROM app.docs WHERE id <= 10 AND big IS NOT NULL");
        assert_eq!(bigs.len(), 10, "{label}");
    }
}

#[test]
fn a_row_entering_the_subset_without_its_toasted_value_stops_apply_unless_identity_is_full() {
    let filter = wasm("where_filter");
    let tables = format!(
        "[\"{{job}}\".tables.docs]\nplugins = [{{ plugin = \"{}\", params = {{ \"where.small.lte\" = \"10\" }} }}]\n",
        filter.display()
    );
    let f = Fixture::new("toast_in", DOCS, &tables);
    f.setup_ok();
    f.sql(
        "UPDATE docs SET small = 0 WHERE id = 15;  -- enters the subset; big is not sent
           UPDATE docs SET small = 50 WHERE id = 2;  -- leaves it: dropped whatever big is",
    );
    let x = f.lsn();
    let o = f.run("follow", &["--endpos", &x]);
    assert_fails(
        &o,
        1,
        &[
            "table docs",
            "TOASTed",
            "REPLICA IDENTITY FULL",
            "(id)=(15)",
        ],
    );
    // The same with the old row whole on the source.
    let full = Fixture::new(
        "toast_full",
        &format!("{DOCS} ALTER TABLE docs REPLICA IDENTITY FULL;"),
        &tables,
    );
    full.setup_ok();
    full.sql("UPDATE docs SET small = 0 WHERE id = 15; UPDATE docs SET small = 50 WHERE id = 2;");
    full.catch_up_and_check();
    // A plugin whose answer depends on the unsent value is caught.
    let mix = format!(
        "[\"{{job}}\".tables.docs]\nallow_uniqueness_loss = true\nplugins = [{{ plugin = \"{}\", params = {{ mix = \"other:big\" }} }}]\n",
        wasm("row_hostile").display()
    );
    let m = Fixture::new("toast_mix", DOCS, &mix);
    m.setup_ok();
    m.sql("UPDATE docs SET small = 7 WHERE id = 4");
    let x = m.lsn();
    let o = m.run("follow", &["--endpos", &x]);
    assert_fails(
        &o,
        1,
        &["table docs", "depends on it", "REPLICA IDENTITY FULL"],
    );
}

#[test]
fn truncate_of_several_tables_then_inserts_and_sequences_at_cutover() {
    let f = Fixture::new(
        "truncate",
        "CREATE TABLE a (id serial PRIMARY KEY, v text);
         CREATE TABLE b (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a_id int REFERENCES a(id), w text);
         INSERT INTO a (v) SELECT 'v' || i FROM generate_series(1, 50) i;
         INSERT INTO b (a_id, w) SELECT 1 + i % 50, 'w' || i FROM generate_series(1, 80) i;",
        "[\"{job}\".tables.\"*\"]\n",
    );
    f.setup_ok();
    f.sql(
        "INSERT INTO a (v) VALUES ('before');
         BEGIN; TRUNCATE a, b; INSERT INTO a (v) VALUES ('x'), ('y'); INSERT INTO b (a_id, w) SELECT id, v FROM a; COMMIT;
         INSERT INTO a (v) SELECT 'after' || i FROM generate_series(1, 5) i;
         UPDATE b SET w = 'changed' WHERE a_id = (SELECT min(id) FROM a);
         TRUNCATE b; INSERT INTO b (a_id, w) VALUES ((SELECT max(id) FROM a), 'last');",
    );
    f.catch_up_and_check();
    // Sequences (serial and identity) continue where the source's are.
    let src: Vec<String> = ["a_id_seq", "b_id_seq"]
        .iter()
        .map(|s| {
            f.src
                .client()
                .query_one(&format!("SELECT last_value::text FROM {s}"), &[])
                .unwrap()
                .get(0)
        })
        .collect();
    let dst: Vec<String> = ["a_id_seq", "b_id_seq"]
        .iter()
        .map(|s| f.dst_rows(&format!("SELECT last_value FROM app.{s}"))[0].clone())
        .collect();
    assert_eq!(src, dst, "target sequences are the source's after --endpos");
}
