//! `host xmat` against the two local clusters: a fresh source database on
//! one and a fresh target database on the other per test (see `util`).

mod util;
mod xmat_util;

use util::{TestDb, host, stderr, stdout, wasm};
use xmat_util::{Pair, col, failed, ok, rows, schemas};

const PEOPLE: &str = "
CREATE TABLE people (id int PRIMARY KEY, name text, tenant_id int, score numeric(5,2),
                     active boolean, note text, born date);
INSERT INTO people VALUES
  (1, 'O''Brien', 1, 1.50, true,  NULL,     '1990-01-01'),
  (2, 'Ann',      1, 2.00, false, 'x',      '2001-05-05'),
  (3, 'Bob',      2, 3.25, true,  NULL,     '2010-10-10'),
  (4, 'a\\b',     2, 4.00, NULL,  'it''s',  NULL);
CREATE TABLE lookup (code text PRIMARY KEY, label text);
INSERT INTO lookup VALUES ('a', 'A'), ('b', 'B');
";

#[test]
fn every_where_form() {
    let p = Pair::new("where", PEOPLE);
    let mut text = String::new();
    for (name, cond) in [
        ("eq", r#"name = "O'Brien""#),
        ("backslash", r#"name = 'a\b'"#),
        ("in", "id = [1, 3]"),
        ("in_text", r#"name = ["Ann", "Bob", "nobody"]"#),
        ("empty", "id = []"),
        ("range", "score = { gte = 2, lt = 4 }"),
        ("gt_lte", "id = { gt = 1, lte = 3 }"),
        ("bool", "active = true"),
        ("bool_false", "active = false"),
        ("null", "note = { null = true }"),
        ("not_null", "note = { null = false }"),
        ("date", "born = { gte = 2000-01-01 }"),
        ("number_text", r#"id = "2""#),
        ("two", "tenant_id = 1, active = true"),
    ] {
        text += &p.job(
            &format!("w:{name}"),
            &format!("w_{name}"),
            &format!("[\"w:{name}\".tables.people]\nwhere = {{ {cond} }}\n"),
        );
    }
    // A wildcard where applies only to tables that have the column.
    text += &p.job(
        "w:wild",
        "w_wild",
        "[\"w:wild\".tables.\"*\"]\nwhere = { tenant_id = 2 }\n",
    );
    let file = p.file("xmat.toml", &text);
    ok(&p.xmat(&file, &["w:*"]));
    let ids = |schema: &str| {
        col(
            &p.dst,
            &format!("SELECT id FROM {schema}.people ORDER BY id"),
        )
    };
    assert_eq!(ids("w_eq"), ["1"]);
    assert_eq!(ids("w_backslash"), ["4"]);
    assert_eq!(ids("w_in"), ["1", "3"]);
    assert_eq!(ids("w_in_text"), ["2", "3"]);
    assert!(ids("w_empty").is_empty(), "an empty list matches nothing");
    assert_eq!(ids("w_range"), ["2", "3"]);
    assert_eq!(ids("w_gt_lte"), ["2", "3"]);
    assert_eq!(ids("w_bool"), ["1", "3"]);
    assert_eq!(ids("w_bool_false"), ["2"]);
    assert_eq!(ids("w_null"), ["1", "3"]);
    assert_eq!(ids("w_not_null"), ["2", "4"]);
    assert_eq!(ids("w_date"), ["2", "3"]);
    assert_eq!(ids("w_number_text"), ["2"]);
    assert_eq!(ids("w_two"), ["1"]);
    assert_eq!(ids("w_wild"), ["3", "4"]);
    assert_eq!(
        col(&p.dst, "SELECT code FROM w_wild.lookup ORDER BY 1"),
        ["a", "b"],
        "lookup has no tenant_id: copied whole"
    );
}

#[test]
fn where_errors_name_the_problem() {
    let p = Pair::new("where_err", PEOPLE);
    let bad_op = p.file(
        "op.toml",
        &p.job(
            "j",
            "t",
            "[j.tables.people]\nwhere = { name = { like = \"A%\" } }\n",
        ),
    );
    let e = failed(&p.xmat(&bad_op, &["j"]));
    assert!(e.contains("where.name: like: unknown operator"), "{e}");
    let no_col = p.file(
        "col.toml",
        &p.job("j", "t", "[j.tables.people]\nwhere = { nope = 1 }\n"),
    );
    let e = failed(&p.xmat(&no_col, &["j"]));
    assert!(
        e.contains("job j") && e.contains("table people") && e.contains("nope"),
        "{e}"
    );
    assert!(
        schemas(&p.dst).is_empty(),
        "nothing was created: {:?}",
        schemas(&p.dst)
    );
    let e = failed(&p.xmat(&no_col, &["nothing:*"]));
    assert!(
        e.contains("no job") && e.contains("nothing:*") && e.contains("j"),
        "{e}"
    );
}

#[test]
fn json_jobs_with_null_in_lists_and_raw_where() {
    let p = Pair::new("json", PEOPLE);
    let job = |name: &str, schema: &str, tables: &str| {
        format!(
            r#""{name}": {{"source": {{"database": "{}", "schema": "public"}},
                "target": {{"database": "{}", "schema": "{schema}"}}, "tables": {tables}}}"#,
            p.src.dsn, p.dst.dsn
        )
    };
    let text = format!(
        "{{{}, {}, {}}}",
        job(
            "a",
            "j_null",
            r#"{"people": {"where": {"note": [null, "x"], "born": null}}}"#
        ),
        job(
            "b",
            "j_raw",
            r#"{"people": {"where": "score > 3 AND name <> 'Bob'"}}"#
        ),
        job("c", "j_list", r#"["people", "lookup"]"#)
    );
    let file = p.file("jobs.json", &text);
    ok(&p.xmat(&file, &["*"]));
    assert!(col(&p.dst, "SELECT id FROM j_null.people ORDER BY id").is_empty());
    assert_eq!(col(&p.dst, "SELECT id FROM j_raw.people"), ["4"]);
    assert_eq!(col(&p.dst, "SELECT count(*) FROM j_list.lookup"), ["2"]);
}

#[test]
fn select_expressions_and_left_out_columns() {
    let p = Pair::new(
        "select",
        "CREATE TABLE users (id int PRIMARY KEY, email varchar(40) NOT NULL, name text,
                             secret text NOT NULL, n int);
         INSERT INTO users VALUES (1, 'Ann@X.org', 'ann', 's1', 7), (2, 'Bob@Y.org', NULL, 's2', NULL);",
    );
    let file = p.file(
        "xmat.toml",
        &p.job(
            "s",
            "out",
            "[s.tables.users]\n\
             select = { email = \"lower({column_name})\", name = \"coalesce(name, 'n/a') || '''s'\", \
                        secret = false, n = \"{column_name} * 2\", id = true }\n",
        ),
    );
    let dry = p.xmat(&file, &["s", "--dry-run"]);
    ok(&dry);
    assert!(
        stdout(&dry).contains(
            "SELECT \"id\", lower(\"email\") AS \"email\", coalesce(name, 'n/a') || '''s' AS \"name\", \"n\" * 2 AS \"n\" FROM ONLY \"public\".\"users\""
        ),
        "{}",
        stdout(&dry)
    );
    assert!(schemas(&p.dst).is_empty(), "a dry run changes nothing");
    ok(&p.xmat(&file, &["s"]));
    assert_eq!(
        p.dst_rows("SELECT id, email, name, n FROM out.users ORDER BY id"),
        vec![
            vec![
                Some("1".into()),
                Some("ann@x.org".into()),
                Some("ann's".into()),
                Some("14".into())
            ],
            vec![
                Some("2".into()),
                Some("bob@y.org".into()),
                Some("n/a's".into()),
                None
            ],
        ]
    );
    assert_eq!(
        col(
            &p.dst,
            "SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'out.users'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ),
        [
            "id integer",
            "email character varying(40)",
            "name text",
            "n integer"
        ],
        "source column order and types, secret left out"
    );
}

const SCHEMA_OBJECTS: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');
CREATE DOMAIN happy_mood AS mood DEFAULT 'happy' NOT NULL;
CREATE TYPE address AS (street text, zip int, m mood);
CREATE TYPE floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);
CREATE TABLE things (
  id int GENERATED ALWAYS AS IDENTITY (START WITH 100 INCREMENT BY 5) PRIMARY KEY,
  serial_no bigserial,
  m mood NOT NULL DEFAULT 'ok',
  moods mood[],
  hm happy_mood,
  e email,
  home address,
  r floatrange,
  price numeric(8,2) NOT NULL DEFAULT 0,
  doubled numeric GENERATED ALWAYS AS (price * 2) STORED,
  created date DEFAULT CURRENT_DATE,
  label varchar(10) COLLATE "C"
);
INSERT INTO things (m, moods, hm, e, home, r, price, label) VALUES
  ('sad', '{sad,happy}', 'ok', 'a@b.c', ROW('Main', 1, 'ok')::address, '[1.5,2.5)', 3.50, 'x'),
  ('happy', NULL, DEFAULT, NULL, NULL, NULL, 1, NULL);
CREATE TABLE counters (id smallserial PRIMARY KEY, v text);
INSERT INTO counters (v) VALUES ('a'), ('b'), ('c');
CREATE SEQUENCE down_seq INCREMENT BY -1 MINVALUE -1000 MAXVALUE -1 START WITH -1;
CREATE TABLE downs (id int DEFAULT nextval('down_seq') PRIMARY KEY);
INSERT INTO downs DEFAULT VALUES; INSERT INTO downs DEFAULT VALUES;
CREATE VIEW v_things AS SELECT id, m FROM things;
CREATE MATERIALIZED VIEW mv_things AS SELECT id FROM things;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE SERVER nowhere FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '1');
CREATE FOREIGN TABLE remote_things (id int) SERVER nowhere;
CREATE TABLE events (id int, at date NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE events_rest PARTITION OF events DEFAULT PARTITION BY RANGE (id);
CREATE TABLE events_rest_x PARTITION OF events_rest FOR VALUES FROM (0) TO (3);
CREATE TABLE events_rest_other PARTITION OF events_rest DEFAULT;
ALTER TABLE events ADD PRIMARY KEY (id, at);
CREATE INDEX events_what ON events (what);
INSERT INTO events VALUES (1, '2023-05-01', 'a'), (2, '2024-05-01', 'x'), (3, '2025-01-01', 'y');
CREATE TABLE parent_rows (id int);
CREATE TABLE child_rows (extra text) INHERITS (parent_rows);
INSERT INTO parent_rows VALUES (1); INSERT INTO child_rows VALUES (2, 'c');
"#;

#[test]
fn wildcard_copies_tables_types_defaults_identity_and_sequences() {
    let p = Pair::new("types", SCHEMA_OBJECTS);
    let file = p.file("xmat.toml", &p.job("all", "copy", "tables = [\"*\"]\n"));
    let dry = p.xmat(&file, &["all", "--dry-run"]);
    ok(&dry);
    let plan = stdout(&dry);
    for skipped in [
        "view public.v_things",
        "materialized view public.mv_things",
        "foreign table public.remote_things",
    ] {
        assert!(plan.contains(&format!("not copied: {skipped}")), "{plan}");
    }
    ok(&p.xmat(&file, &["all"]));
    assert_eq!(
        col(
            &p.dst,
            "SELECT relname FROM pg_class WHERE relnamespace = 'copy'::regnamespace AND relkind IN ('r','p','v','m','f') ORDER BY 1"
        ),
        [
            "child_rows",
            "counters",
            "downs",
            "events",
            "events_2023",
            "events_rest",
            "events_rest_other",
            "events_rest_x",
            "parent_rows",
            "things"
        ]
    );
    assert_eq!(
        col(
            &p.dst,
            "SELECT attname || ' ' || format_type(atttypid, atttypmod) || coalesce(' default ' || pg_get_expr(adbin, adrelid), '') \
                     || CASE WHEN attnotnull THEN ' not null' ELSE '' END || CASE attidentity WHEN 'a' THEN ' identity always' ELSE '' END \
                     || CASE attgenerated WHEN 's' THEN ' generated' ELSE '' END \
                     || CASE WHEN attcollation = 'pg_catalog.\"C\"'::regcollation THEN ' collate C' ELSE '' END \
                     FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum \
                     WHERE attrelid = 'copy.things'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        ),
        [
            "id integer not null identity always",
            "serial_no bigint default nextval('copy.things_serial_no_seq'::regclass) not null",
            "m copy.mood default 'ok'::copy.mood not null",
            "moods copy.mood[]",
            "hm copy.happy_mood",
            "e copy.email",
            "home copy.address",
            "r copy.floatrange",
            "price numeric(8,2) default 0 not null",
            "doubled numeric default (price * (2)::numeric) generated",
            "created date default CURRENT_DATE",
            "label character varying(10) collate C",
        ]
    );
    assert_eq!(
        p.dst_rows("SELECT id, m, moods, hm, e, home, r, price, doubled, label FROM copy.things ORDER BY id"),
        vec![
            ["100", "sad", "{sad,happy}", "ok", "a@b.c", "(Main,1,ok)", "[1.5,2.5)", "3.50", "7.00", "x"].map(|s| Some(s.to_string())).to_vec(),
            vec![Some("105".into()), Some("happy".into()), None, Some("happy".into()), None, None, None, Some("1.00".into()), Some("2.00".into()), None],
        ]
    );
    // Domain checks and enum labels came along; sequences continue past the copied values.
    assert_eq!(
        col(
            &p.dst,
            "INSERT INTO copy.things DEFAULT VALUES RETURNING id, serial_no"
        ),
        ["110"]
    );
    let mut c = p.dst.client();
    assert!(
        c.batch_execute("INSERT INTO copy.things (e) VALUES ('no-at-sign')")
            .is_err()
    );
    assert_eq!(
        col(&p.dst, "SELECT enum_range(NULL::copy.mood)::text"),
        ["{sad,ok,happy}"]
    );
    assert_eq!(col(&p.dst, "SELECT max(serial_no) FROM copy.things"), ["3"]);
    assert_eq!(
        col(
            &p.dst,
            "INSERT INTO copy.counters (v) VALUES ('d') RETURNING id"
        ),
        ["4"]
    );
    assert_eq!(
        col(&p.dst, "INSERT INTO copy.downs DEFAULT VALUES RETURNING id"),
        ["-3"]
    );
    assert_eq!(
        col(
            &p.dst,
            "SELECT pg_get_serial_sequence('copy.counters', 'id')"
        ),
        ["copy.counters_id_seq"],
        "serial sequences stay owned by their column"
    );
    // Partitions came with their table; rows landed in the right ones.
    assert_eq!(
        col(
            &p.dst,
            "SELECT tableoid::regclass::text || ':' || id FROM copy.events ORDER BY id"
        ),
        [
            "copy.events_2023:1",
            "copy.events_rest_x:2",
            "copy.events_rest_other:3"
        ]
    );
    assert_eq!(
        col(
            &p.dst,
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'copy.events_2023'::regclass ORDER BY 1"
        ),
        ["copy.events_2023_pkey", "copy.events_2023_what_idx"]
    );
    // Table inheritance: each table gets its own rows (FROM ONLY); the copies are not linked.
    assert_eq!(
        col(&p.dst, "SELECT id FROM copy.parent_rows ORDER BY 1"),
        ["1"]
    );
    assert_eq!(
        col(&p.dst, "SELECT id || extra FROM copy.child_rows"),
        ["2c"]
    );
}

const KEYS: &str = "
CREATE TABLE z_customers (id int PRIMARY KEY, email text UNIQUE, region text, CHECK (region <> ''));
CREATE TABLE codes (code text UNIQUE, secret text);
CREATE TABLE a_orders (
  id int PRIMARY KEY,
  customer_id int REFERENCES z_customers(id) DEFERRABLE INITIALLY DEFERRED,
  parent_id int REFERENCES a_orders(id),
  code text REFERENCES codes(code),
  qty int CHECK (qty > 0),
  note text,
  UNIQUE (customer_id, code));
CREATE INDEX a_orders_lower_code ON a_orders (lower(code)) WHERE qty > 1;
CREATE INDEX a_orders_note ON a_orders (note);
CREATE TABLE m_lines (order_id int, line int, PRIMARY KEY (order_id, line),
  FOREIGN KEY (order_id) REFERENCES a_orders(id) ON DELETE CASCADE);
CREATE TABLE not_copied (id int PRIMARY KEY);
CREATE TABLE refs_uncopied (id int PRIMARY KEY, nc int REFERENCES not_copied(id));
INSERT INTO z_customers VALUES (1, 'a@x', 'eu'), (2, 'b@x', 'us');
INSERT INTO codes VALUES ('c1', 's'), ('c2', 's');
INSERT INTO not_copied VALUES (1);
INSERT INTO a_orders VALUES (10, 1, NULL, 'c1', 2, 'n'), (11, 1, 10, 'c2', 1, NULL), (12, 2, 11, 'c1', 5, 'n');
INSERT INTO m_lines VALUES (10, 1), (10, 2), (12, 1);
INSERT INTO refs_uncopied VALUES (1, 1);
";

#[test]
fn constraints_indexes_and_foreign_keys_are_rebuilt() {
    let p = Pair::new("keys", KEYS);
    let file = p.file(
        "xmat.toml",
        &p.job(
            "k",
            "keys",
            "[k.tables.m_lines]\n[k.tables.a_orders]\nselect = { note = false }\n\
             [k.tables.z_customers]\n[k.tables.refs_uncopied]\n\
             [k.tables.codes]\nselect = { code = false }\n",
        ),
    );
    let out = p.xmat(&file, &["k"]);
    ok(&out);
    let log = stderr(&out);
    for warning in [
        "foreign key refs_uncopied_nc_fkey on refs_uncopied: it references not_copied, which is not copied; skipped",
        "index a_orders_note on a_orders: column note is not copied; left out",
        "constraint codes_code_key on codes: column code is not copied; left out",
        "foreign key a_orders_code_fkey on a_orders: the column it references, codes.code, is not copied; skipped",
    ] {
        assert!(
            log.contains(warning.split(", which").next().unwrap()),
            "missing warning {warning}:\n{log}"
        );
    }
    assert_eq!(
        col(
            &p.dst,
            "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE connamespace = 'keys'::regnamespace ORDER BY conrelid::regclass::text, conname"
        ),
        [
            "keys.a_orders a_orders_customer_id_code_key UNIQUE (customer_id, code)",
            "keys.a_orders a_orders_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES keys.z_customers(id) DEFERRABLE INITIALLY DEFERRED",
            "keys.a_orders a_orders_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES keys.a_orders(id)",
            "keys.a_orders a_orders_pkey PRIMARY KEY (id)",
            "keys.a_orders a_orders_qty_check CHECK ((qty > 0))",
            "keys.m_lines m_lines_order_id_fkey FOREIGN KEY (order_id) REFERENCES keys.a_orders(id) ON DELETE CASCADE",
            "keys.m_lines m_lines_pkey PRIMARY KEY (order_id, line)",
            "keys.refs_uncopied refs_uncopied_pkey PRIMARY KEY (id)",
            "keys.z_customers z_customers_email_key UNIQUE (email)",
            "keys.z_customers z_customers_pkey PRIMARY KEY (id)",
            "keys.z_customers z_customers_region_check CHECK ((region <> ''::text))",
        ]
    );
    assert_eq!(
        col(
            &p.dst,
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'keys' AND indexname = 'a_orders_lower_code'"
        ),
        [
            "CREATE INDEX a_orders_lower_code ON keys.a_orders USING btree (lower(code)) WHERE (qty > 1)"
        ]
    );
    // The foreign keys work: a cascade from the copy.
    p.dst
        .client()
        .batch_execute("DELETE FROM keys.a_orders WHERE id = 12")
        .unwrap();
    assert_eq!(col(&p.dst, "SELECT count(*) FROM keys.m_lines"), ["2"]);
    let dry = stdout(&p.xmat(&file, &["k", "--dry-run"]));
    let pos = |s: &str| {
        dry.find(s)
            .unwrap_or_else(|| panic!("{s} not in plan:\n{dry}"))
    };
    assert!(
        pos("ADD CONSTRAINT \"a_orders_customer_id_fkey\"")
            < pos("ADD CONSTRAINT \"m_lines_order_id_fkey\""),
        "a_orders references z_customers and is referenced by m_lines"
    );
}

const USERS: &str = "
CREATE TABLE users (id int PRIMARY KEY, email text UNIQUE, phone varchar(20), name text,
                    active boolean, tenant_id int);
INSERT INTO users SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE 'user' || i || '@corp.example' END,
  '+1 (555) ' || lpad(i::text, 4, '0'), 'Person ' || i, i % 3 <> 0, 1 + i % 4
  FROM generate_series(1, 5000) i;
";

#[test]
fn plugin_chain_is_deterministic_and_keeps_nulls() {
    let p = Pair::new("plugins", USERS);
    let tables = |key_var: &str| {
        format!(
            "plugins = [\n  {{ plugin = \"{}\", params = {{ key = \"env:{key_var}\", email = \"email\", phone = \"phone\", name = \"name\" }} }},\n  \
             {{ plugin = \"{}\", params = {{ \"where.active\" = \"true\" }} }},\n]\n\
             allow_uniqueness_loss = [\"email\"]  # 48-bit pseudonyms of 5000 emails\n",
            wasm("anonymize").display(),
            wasm("where_filter").display()
        )
    };
    let mut text = String::new();
    for (job, schema, var) in [
        ("a:1", "anon1", "XMAT_KEY"),
        ("a:2", "anon2", "XMAT_KEY"),
        ("a:3", "anon3", "XMAT_OTHER_KEY"),
    ] {
        text += &p.job(
            job,
            schema,
            &format!(
                "[\"{job}\".tables.users]\nwhere = {{ tenant_id = [1, 2, 3] }}\n{}",
                tables(var)
            ),
        );
    }
    let file = p.file("xmat.toml", &text);
    // Several plugin threads per table: the same rows come out (in another order).
    let out = host()
        .args(["xmat", "a:*", "--json", "--plugin-threads", "3", "-c"])
        .arg(&file)
        .env("XMAT_KEY", "first secret key")
        .env("XMAT_OTHER_KEY", "second secret key")
        .output()
        .unwrap();
    ok(&out);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON summary");
    let read = col(
        &p.src,
        "SELECT count(*) FROM users WHERE tenant_id IN (1, 2, 3)",
    )[0]
    .parse::<u64>()
    .unwrap();
    let kept = col(
        &p.src,
        "SELECT count(*) FROM users WHERE tenant_id IN (1, 2, 3) AND active",
    )[0]
    .parse::<u64>()
    .unwrap();
    let job = &report["jobs"][0];
    assert_eq!(job["rows_read"], read, "{job}");
    assert_eq!(job["rows_written"], kept);
    assert_eq!(job["dropped"], read - kept);
    assert_eq!(job["rejected"], 0);
    let dump = |s: &str| {
        p.dst_rows(&format!(
            "SELECT id, email, phone, name FROM {s}.users ORDER BY id"
        ))
    };
    let (one, two, three) = (dump("anon1"), dump("anon2"), dump("anon3"));
    assert_eq!(one.len() as u64, kept);
    assert_eq!(one, two, "same key, same output");
    assert_ne!(one, three, "another key, other pseudonyms");
    let original = rows(
        &p.src,
        "SELECT id, email, phone, name FROM users WHERE tenant_id IN (1, 2, 3) AND active ORDER BY id",
    );
    for (a, o) in one.iter().zip(&original) {
        assert_eq!(a[0], o[0]);
        match &o[1] {
            None => assert_eq!(a[1], None, "NULL stays NULL"),
            Some(email) => {
                let e = a[1].as_deref().unwrap();
                assert!(e.ends_with("@example.com") && e != email, "{e}");
            }
        }
        assert_ne!(a[3], o[3]);
        assert_eq!(
            a[2].as_ref().map(String::len),
            o[2].as_ref().map(String::len)
        );
    }
    let secrets = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!secrets.contains("first secret key") && !secrets.contains("second secret key"));
    let dry = host()
        .args(["xmat", "a:1", "--dry-run", "-c"])
        .arg(&file)
        .env("XMAT_KEY", "first secret key")
        .output()
        .unwrap();
    ok(&dry);
    assert!(
        stdout(&dry).contains("key=env:XMAT_KEY"),
        "{}",
        stdout(&dry)
    );
    assert!(!stdout(&dry).contains("first secret key"));
    // Without the variable, the error names it (and nothing runs).
    let e = failed(&p.xmat(&file, &["a:1"]));
    assert!(
        e.contains("XMAT_KEY is not set") && e.contains("job a:1"),
        "{e}"
    );
}

#[test]
fn failed_runs_leave_the_previous_target_intact() {
    let p = Pair::new(
        "fail",
        &format!(
            "{USERS}
        CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users(id), n int);
        INSERT INTO orders SELECT i, 1 + i % 5000, i FROM generate_series(1, 3000) i;"
        ),
    );
    let job =
        |name: &str, tables: &str| p.job(name, "live", &format!("{tables}\n").replace("JOB", name));
    let text = [
        job("good", "[JOB.tables.users]\n[JOB.tables.orders]"),
        job("bad_expr", "[JOB.tables.users]\nselect = { email = \"no_such_function(email)\" }\n[JOB.tables.orders]"),
        // Only some users: orders then reference missing users, and the foreign key fails after the data.
        job("bad_fk", "[JOB.tables.users]\nwhere = { tenant_id = 1 }\n[JOB.tables.orders]"),
        // Text that is not an integer: the target's COPY refuses it mid-stream.
        job("bad_value", "[JOB.tables.users]\n[JOB.tables.orders]\nselect = { n = \"CASE WHEN id > 2000 THEN 'x' ELSE n::text END\" }"),
        job("bad_plugin_param", &format!("[JOB.tables.users]\nplugins = [{{ plugin = \"{}\", params = {{ \"where.id\" = \"abc\" }} }}]",
            wasm("where_filter").display())),
        job("wrong_kind", &format!("[JOB.tables.users]\nplugins = [{{ plugin = \"{}\", params = {{ mode = \"ok\" }} }}]",
            wasm("hostile").display())),
        job("trap", &format!("[JOB.tables.users]\n[JOB.tables.orders]\nplugins = [{{ plugin = \"{}\", params = {{ \"where.n.gte\" = \"0\" }} }}]",
            wasm("where_filter").display())),
    ]
    .concat();
    let file = p.file("xmat.toml", &text);
    ok(&p.xmat(&file, &["good"]));
    let snapshot = || {
        (
            col(
                &p.dst,
                "SELECT count(*) || '/' || sum(hashtext(email)) FROM live.users",
            ),
            col(&p.dst, "SELECT count(*) || '/' || sum(n) FROM live.orders"),
        )
    };
    let before = snapshot();
    assert_eq!(before.0[0].split('/').next(), Some("5000"));
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "bad_expr",
            &[],
            &["job bad_expr", "table users", "no_such_function"],
        ),
        ("bad_fk", &[], &["job bad_fk", "orders_user_id_fkey"]),
        (
            "bad_value",
            &[],
            &[
                "job bad_value",
                "table orders",
                "invalid input syntax for type integer",
            ],
        ),
        (
            "bad_plugin_param",
            &[],
            &[
                "job bad_plugin_param",
                "table users",
                "plugin where_filter",
                "abc",
            ],
        ),
        (
            "wrong_kind",
            &[],
            &["job wrong_kind", "table users", "plugin hostile"],
        ),
        // A CPU budget too small for a batch: the plugin traps mid-copy.
        (
            "trap",
            &["--plugin-fuel", "200000"],
            &["job trap", "table orders", "plugin where_filter", "fuel"],
        ),
    ];
    for (name, extra, expect) in cases {
        let mut args = vec![*name];
        args.extend_from_slice(extra);
        let e = failed(&p.xmat(&file, &args));
        for s in *expect {
            assert!(e.contains(s), "{name}: `{s}` not in:\n{e}");
        }
        assert_eq!(snapshot(), before, "{name} changed the old target");
        assert_eq!(
            schemas(&p.dst),
            ["live"],
            "{name} left a build schema behind"
        );
    }
}

#[test]
fn identifiers_and_values_with_quotes_survive() {
    let setup = r#"
        CREATE SCHEMA "My ""Src"" 'x'";
        CREATE TYPE "My ""Src"" 'x'"."Kind's" AS ENUM ('it''s', 'tab	in', 'back\slash');
        CREATE TABLE "My ""Src"" 'x'"."Order's ""Items""" (
          id int PRIMARY KEY, "Na""me" text, "we ird" "My ""Src"" 'x'"."Kind's", "j" jsonb);
        CREATE INDEX "Idx ""q""" ON "My ""Src"" 'x'"."Order's ""Items""" ("Na""me");
        INSERT INTO "My ""Src"" 'x'"."Order's ""Items""" VALUES
          (1, E'O''Br"ien\ttab\nline\\slash', 'it''s', '{"k": "v''\"\\"}'),
          (2, 'plain', 'tab	in', NULL),
          (3, E'\\N', 'back\slash', '[]'),
          (4, 'ünï€ode ☃', NULL, '{}');"#;
    let p = Pair::new("quotes", setup);
    let src_schema = "My \\\"Src\\\" 'x'";
    let tables = r#"["q:JOB".tables."Order's \"Items\""]
where = { "Na\"me" = { ne = "excluded'\"" } }
"#;
    let mut text = String::new();
    for (job, extra) in [("binary", ""), ("text", ""), ("plugin", "plugin")] {
        let mut t = tables.replace("JOB", job);
        if extra == "plugin" {
            t += &format!(
                "plugins = [{{ plugin = \"{}\", params = {{ \"where.id.gte\" = \"0\" }} }}]\n",
                wasm("where_filter").display()
            );
        }
        text += &format!(
            "[\"q:{job}\"]\nsource = {{ database = \"{}\", schema = \"{src_schema}\" }}\n\
             target = {{ database = \"{}\", schema = \"Tgt \\\"{job}\\\" 'x'\" }}\n{t}\n",
            p.src.dsn, p.dst.dsn
        );
    }
    let file = p.file("xmat.toml", &text);
    ok(&p.xmat(&file, &["q:binary"]));
    ok(&p.xmat(&file, &["q:text", "--text"]));
    ok(&p.xmat(&file, &["q:plugin"]));
    let source = rows(
        &p.src,
        r#"SELECT id, "Na""me", "we ird"::text, j::text FROM "My ""Src"" 'x'"."Order's ""Items""" ORDER BY id"#,
    );
    assert_eq!(source.len(), 4);
    for job in ["binary", "text", "plugin"] {
        let copied = rows(
            &p.dst,
            &format!(
                r#"SELECT id, "Na""me", "we ird"::text, j::text FROM "Tgt ""{job}"" 'x'"."Order's ""Items""" ORDER BY id"#
            ),
        );
        assert_eq!(copied, source, "{job}");
        assert_eq!(
            col(
                &p.dst,
                &format!(
                    r#"SELECT indexname FROM pg_indexes WHERE schemaname = 'Tgt "{job}" ''x''' ORDER BY 1"#
                )
            ),
            ["Idx \"q\"", "Order's \"Items\"_pkey"]
        );
    }
}

/// A login role with a password on both clusters, dropped afterwards.
struct Role {
    name: String,
    password: String,
    dbs: Vec<(String, String)>,
}

impl Role {
    fn new(p: &Pair) -> Role {
        let name = format!("xmat_pw_{}", std::process::id());
        let password = "Sw0rdf1sh-xmat-PW".to_string();
        for admin in [util::admin_dsn(), util::admin_dsn2()] {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            c.batch_execute(&format!(
                "DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN SUPERUSER PASSWORD '{password}'"
            ))
            .unwrap();
        }
        Role {
            name,
            password,
            dbs: vec![
                (util::admin_dsn(), p.src.dsn.clone()),
                (util::admin_dsn2(), p.dst.dsn.clone()),
            ],
        }
    }

    fn url(&self, dsn: &str, scheme: &str) -> String {
        dsn.replace(
            "postgresql://host:host@",
            &format!("{scheme}://{}:{}@", self.name, self.password),
        )
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        for (admin, db) in &self.dbs {
            if let Ok(mut c) = postgres::Client::connect(db, postgres::NoTls) {
                let _ = c.batch_execute(&format!(
                    "REASSIGN OWNED BY {} TO host; DROP OWNED BY {}",
                    self.name, self.name
                ));
            }
            if let Ok(mut c) = postgres::Client::connect(admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
            }
        }
    }
}

#[test]
fn passwords_never_show_and_env_sources_work() {
    let p = Pair::new("secret", PEOPLE);
    let role = Role::new(&p);
    let src_url = role.url(&p.src.dsn, "postgresql");
    let dst_url = role.url(&p.dst.dsn, "postgres");
    // key=value form for the target.
    let (_, dst_db) = p.dst.dsn.rsplit_once('/').unwrap();
    let dst_kv = format!(
        "host=127.0.0.1 port={} user={} password={} dbname={dst_db}",
        p.dst
            .dsn
            .rsplit_once(':')
            .unwrap()
            .1
            .split('/')
            .next()
            .unwrap(),
        role.name,
        role.password
    );
    let text = format!(
        "[\"p:url\"]\nsource = {{ database = \"{src_url}\", schema = \"public\" }}\n\
         target = {{ database = \"{dst_url}\", schema = \"t1\" }}\ntables = [\"*\"]\n\
         [\"p:env\"]\nsource = {{ database = \"env:XMAT_SRC_URL\", schema = \"public\" }}\n\
         target = {{ database = \"env:XMAT_DST_KV\", schema = \"t2\" }}\n[\"p:env\".tables.people]\nwhere = {{ id = 1 }}\n\
         [\"p:bad\"]\nsource = {{ database = \"{src_url}\", schema = \"public\" }}\n\
         target = {{ database = \"{dst_url}\", schema = \"t1\" }}\n[\"p:bad\".tables.people]\nselect = {{ name = \"nope(\" }}\n\
         [\"p:missing\"]\nsource = {{ database = \"env:XMAT_NOT_SET_ANYWHERE\", schema = \"public\" }}\n\
         target = {{ database = \"{dst_url}\", schema = \"t3\" }}\ntables = [\"*\"]\n\
         [\"p:refused\"]\nsource = {{ database = \"{src_url}\", schema = \"public\" }}\n\
         target = {{ database = \"{}\", schema = \"t4\" }}\ntables = [\"*\"]\n",
        src_url.replace(&role.password, "wrong-password")
    );
    let file = p.file("xmat.toml", &text);
    let run = |args: &[&str]| {
        host()
            .arg("-v")
            .arg("xmat")
            .args(args)
            .arg("-c")
            .arg(&file)
            .env("XMAT_SRC_URL", &src_url)
            .env("XMAT_DST_KV", &dst_kv)
            .output()
            .unwrap()
    };
    let mut all = String::new();
    for args in [
        &["p:url", "--dry-run"][..],
        &["p:url"],
        &["p:env", "--dry-run", "--json"],
        &["p:env"],
        &["p:bad"],
        &["p:missing"],
        &["p:refused"],
    ] {
        let o = run(args);
        all += &stdout(&o);
        all += &stderr(&o);
        match args[0] {
            "p:url" | "p:env" => ok(&o),
            "p:missing" => assert!(failed(&o).contains("XMAT_NOT_SET_ANYWHERE is not set")),
            _ => {
                failed(&o);
            }
        }
    }
    assert!(
        all.contains("source:") && all.contains("SET search_path"),
        "-v logged statements"
    );
    assert!(all.contains("(from $XMAT_SRC_URL)"));
    assert!(!all.contains(&role.password), "a password leaked:\n{all}");
    assert!(!all.contains("wrong-password"), "a password leaked:\n{all}");
    assert_eq!(col(&p.dst, "SELECT count(*) FROM t1.people"), ["4"]);
    assert_eq!(col(&p.dst, "SELECT id FROM t2.people"), ["1"]);
}

#[test]
fn same_database_copies_and_refuses_to_replace_itself() {
    let db = TestDb::new2("same");
    db.client().batch_execute(PEOPLE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("xmat.toml");
    std::fs::write(
        &file,
        format!(
            "[copy]\nsource = {{ database = \"{0}\", schema = \"public\" }}\n\
             target = {{ database = \"{0}\", schema = \"public_copy\" }}\ntables = [\"*\"]\n\
             [self]\nsource = {{ database = \"{0}\", schema = \"public\" }}\n\
             target = {{ database = \"{0}\", schema = \"public\" }}\ntables = [\"*\"]\n",
            db.dsn
        ),
    )
    .unwrap();
    let run = |job: &str| {
        host()
            .args(["xmat", job, "-c"])
            .arg(&file)
            .output()
            .unwrap()
    };
    ok(&run("copy"));
    ok(&run("copy"));
    assert_eq!(col(&db, "SELECT count(*) FROM public_copy.people"), ["4"]);
    let e = failed(&run("self"));
    assert!(e.contains("would replace itself"), "{e}");
    assert_eq!(col(&db, "SELECT count(*) FROM public.people"), ["4"]);
}

#[test]
fn a_schema_other_schemas_depend_on_is_not_dropped() {
    let p = Pair::new("deps", PEOPLE);
    let file = p.file("xmat.toml", &p.job("d", "shared", "tables = [\"*\"]\n"));
    ok(&p.xmat(&file, &["d"]));
    // Things in the old target that nothing outside uses go with it...
    p.dst
        .client()
        .batch_execute("CREATE TABLE shared.scratch (x int)")
        .unwrap();
    ok(&p.xmat(&file, &["d"]));
    assert!(col(&p.dst, "SELECT to_regclass('shared.scratch')::text") == ["NULL"]);
    // ...but a view in another schema is never dropped by the swap.
    p.dst
        .client()
        .batch_execute("CREATE SCHEMA reports; CREATE VIEW reports.people_count AS SELECT count(*) FROM shared.people")
        .unwrap();
    let e = failed(&p.xmat(&file, &["d"]));
    assert!(
        e.contains("view reports.people_count") && e.contains("cannot be replaced"),
        "{e}"
    );
    // Two runs never build the same target at once.
    let mut holder = p.dst.client();
    holder
        .batch_execute("SELECT pg_advisory_lock(hashtext('host xmat'), hashtext('shared'))")
        .unwrap();
    let e = failed(&p.xmat(&file, &["d"]));
    assert!(
        e.contains("another host xmat run is writing schema shared"),
        "{e}"
    );
    drop(holder);
    assert_eq!(col(&p.dst, "SELECT * FROM reports.people_count"), ["4"]);
    assert_eq!(schemas(&p.dst), ["reports", "shared"]);
}

/// Foreign keys between big tables are validated with a merge join (see
/// `xmat/foreign_keys.rs`): the check must still find a single dangling row.
#[test]
fn big_foreign_keys_are_checked_too() {
    let p = Pair::new(
        "bigfk",
        "CREATE TABLE parents (id int PRIMARY KEY, keep bool NOT NULL);
         INSERT INTO parents SELECT i, i <> 77777 FROM generate_series(1, 150000) i;
         CREATE TABLE children (id int PRIMARY KEY, parent int NOT NULL REFERENCES parents(id));
         INSERT INTO children SELECT i, 1 + (i * 7919) % 150000 FROM generate_series(1, 150000) i;",
    );
    let text = [
        p.job("all", "big", "[all.tables.parents]\n[all.tables.children]"),
        // Parent 77777 is left out, and exactly one child points at it.
        p.job(
            "holes",
            "big",
            "[holes.tables.parents]\nwhere = { keep = true }\n[holes.tables.children]",
        ),
    ]
    .concat();
    let file = p.file("xmat.toml", &text);
    ok(&p.xmat(&file, &["all"]));
    assert_eq!(
        col(
            &p.dst,
            "SELECT count(*) FROM pg_constraint WHERE conname = 'children_parent_fkey' AND convalidated"
        ),
        ["1"]
    );
    let err = failed(&p.xmat(&file, &["holes"]));
    assert!(
        err.contains("job holes") && err.contains("children_parent_fkey"),
        "{err}"
    );
    assert!(err.contains("(parent)=(77777)"), "{err}");
    // The first run's copy is still there, whole.
    assert_eq!(col(&p.dst, "SELECT count(*) FROM big.parents"), ["150000"]);
}

/// With `--jobs`, foreign keys are added several at a time, never two on one
/// table at once: keys both ways between two tables (which would deadlock),
/// a self-reference and a chain all arrive validated; one dangling row among
/// them fails the run, names its key, and leaves the old target whole.
#[test]
fn foreign_keys_are_added_in_parallel_without_deadlocks() {
    let p = Pair::new(
        "parfk",
        "CREATE TABLE a (id int PRIMARY KEY, b_id int, parent int REFERENCES a(id), keep bool NOT NULL DEFAULT true);
         CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a(id));
         ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b(id) DEFERRABLE INITIALLY DEFERRED;
         CREATE TABLE c (id int PRIMARY KEY, b_id int REFERENCES b(id));
         CREATE TABLE d (id int PRIMARY KEY, c_id int REFERENCES c(id), a_id int REFERENCES a(id));
         BEGIN;
         INSERT INTO a SELECT i, i, NULLIF(i - 1, 0) FROM generate_series(1, 2000) i;
         INSERT INTO b SELECT i, i FROM generate_series(1, 2000) i;
         COMMIT;
         INSERT INTO c SELECT i, i FROM generate_series(1, 2000) i;
         INSERT INTO d SELECT i, i, i FROM generate_series(1, 2000) i;
         UPDATE a SET keep = false WHERE id = 1500;
         UPDATE d SET a_id = NULL WHERE a_id = 1500;",
    );
    let text = [
        p.job("all", "web", "tables = [\"*\"]"),
        // a 1500 is left out: b 1500 and a 1501 still point at it.
        p.job(
            "holes",
            "web",
            "[holes.tables.\"*\"]\n[holes.tables.a]\nwhere = { keep = true }",
        ),
    ]
    .concat();
    let file = p.file("xmat.toml", &text);
    let o = p.xmat(&file, &["all", "--jobs", "4", "-v"]);
    ok(&o);
    assert_eq!(
        col(
            &p.dst,
            "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
             WHERE n.nspname = 'web' AND contype = 'f' AND convalidated"
        ),
        ["6"]
    );
    // Every key was added on a worker's own connection (`target N: ALTER
    // ...`), as soon as its tables were loaded. Which workers take them is
    // the scheduler's choice: on a fast run one worker can take all six
    // (seen in CI), so the test does not ask for more than one.
    let log = stderr(&o);
    let key_adds: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("FOREIGN KEY") && l.contains("ADD CONSTRAINT"))
        .filter_map(|l| l.split(": ALTER TABLE").next()?.rsplit_once("target "))
        .map(|(_, n)| n)
        .collect();
    assert_eq!(key_adds.len(), 6, "{key_adds:?}\n{log}");
    let err = failed(&p.xmat(&file, &["holes", "--jobs", "4"]));
    assert!(err.contains("job holes"), "{err}");
    assert!(
        err.contains("b_a_id_fkey") || err.contains("a_parent_fkey"),
        "{err}"
    );
    assert_eq!(col(&p.dst, "SELECT count(*) FROM web.a"), ["2000"]);
}
