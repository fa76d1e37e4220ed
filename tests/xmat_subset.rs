//! `host xmat` subsets that follow foreign keys (`subset = "follow"` and
//! `"follow+parents"`), and the error of a job that copies dangling keys
//! without them.
//!
//! The oracle: the expected rows of every table are computed here, in Rust,
//! from the source's rows (a breadth-first walk from the roots for the
//! tree of managers, set lookups for the rest), then compared row by row,
//! every column, with what the target got; PostgreSQL then validates every
//! foreign key on the target.

mod util;
mod xmat_util;

use std::collections::{BTreeSet, HashMap, HashSet};

use util::stdout;
use xmat_util::{Pair, col, failed, ok, rows};

const SCHEMA: &str = "
CREATE TABLE tenants (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO tenants SELECT i, 'tenant ' || i FROM generate_series(1, 5) i;
CREATE TABLE users (id int PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants,
                    manager_id int REFERENCES users, email text NOT NULL UNIQUE);
INSERT INTO users SELECT i, 1 + i % 5, NULL, 'u' || i || '@example.org' FROM generate_series(1, 300) i;
-- Roots: no manager (1-5) or themselves (6, 7); everyone else the user five before (same
-- tenant), except every 41st, whose manager is another tenant's: it and those under it drop out.
UPDATE users SET manager_id = CASE WHEN id <= 5 THEN NULL WHEN id IN (6, 7) THEN id
                                   WHEN id % 41 = 0 THEN id - 3 ELSE id - 5 END;
-- Two users of tenant 1 who manage each other: a loop no root reaches.
UPDATE users SET manager_id = 299, tenant_id = 1 WHERE id = 298;
UPDATE users SET manager_id = 298, tenant_id = 1 WHERE id = 299;
CREATE TABLE products (id int PRIMARY KEY, active bool NOT NULL);
INSERT INTO products SELECT i, i % 3 <> 0 FROM generate_series(1, 20) i;
CREATE TABLE orders (id int PRIMARY KEY, user_id int NOT NULL REFERENCES users,
                     product_id int REFERENCES products, created date NOT NULL, note text);
INSERT INTO orders SELECT i, 1 + (i * 7919) % 300, CASE WHEN i % 10 = 0 THEN NULL ELSE 1 + i % 20 END,
                          date '2024-01-01' + (i % 180), 'order ' || i FROM generate_series(1, 2000) i;
-- A chain: items belong to orders, shipments to items (a two-column key, sometimes NULL).
CREATE TABLE items (order_id int REFERENCES orders, line int, qty int NOT NULL, PRIMARY KEY (order_id, line));
INSERT INTO items SELECT o, l, o * l FROM generate_series(1, 2000) o, generate_series(1, 3) l WHERE l <= 1 + o % 3;
CREATE TABLE shipments (id int PRIMARY KEY, order_id int, line int, FOREIGN KEY (order_id, line) REFERENCES items);
INSERT INTO shipments SELECT i, CASE WHEN i % 7 = 0 THEN NULL ELSE 1 + (i * 13) % 2000 END, 1
                      FROM generate_series(1, 1500) i;
CREATE TABLE lookup (code text PRIMARY KEY);
INSERT INTO lookup VALUES ('a'), ('b');
";

/// The source's rows, read once.
struct Source {
    users: Vec<(i64, i64, Option<i64>)>,
    orders: Vec<(i64, i64, Option<i64>, String)>,
    items: Vec<(i64, i64)>,
    shipments: Vec<(i64, Option<i64>, Option<i64>)>,
    products: Vec<(i64, bool)>,
}

fn int(v: &Option<String>) -> Option<i64> {
    v.as_deref().map(|s| s.parse().unwrap())
}

impl Source {
    fn read(p: &Pair) -> Source {
        let r = |sql: &str| rows(&p.src, sql);
        Source {
            users: r("SELECT id, tenant_id, manager_id FROM users")
                .iter()
                .map(|x| (int(&x[0]).unwrap(), int(&x[1]).unwrap(), int(&x[2])))
                .collect(),
            orders: r("SELECT id, user_id, product_id, created FROM orders")
                .iter()
                .map(|x| {
                    (
                        int(&x[0]).unwrap(),
                        int(&x[1]).unwrap(),
                        int(&x[2]),
                        x[3].clone().unwrap(),
                    )
                })
                .collect(),
            items: r("SELECT order_id, line FROM items")
                .iter()
                .map(|x| (int(&x[0]).unwrap(), int(&x[1]).unwrap()))
                .collect(),
            shipments: r("SELECT id, order_id, line FROM shipments")
                .iter()
                .map(|x| (int(&x[0]).unwrap(), int(&x[1]), int(&x[2])))
                .collect(),
            products: r("SELECT id, active FROM products")
                .iter()
                .map(|x| (int(&x[0]).unwrap(), x[1].as_deref() == Some("t")))
                .collect(),
        }
    }

    /// Users passing `keep`, reached from a root (no manager, or
    /// themselves) through users that pass it too: breadth first.
    fn tree(&self, keep: impl Fn(i64, i64) -> bool) -> HashSet<i64> {
        let mut kept: HashSet<i64> = self
            .users
            .iter()
            .filter(|(id, t, m)| keep(*id, *t) && m.is_none_or(|m| m == *id))
            .map(|u| u.0)
            .collect();
        loop {
            let next: Vec<i64> = self
                .users
                .iter()
                .filter(|(id, t, m)| {
                    !kept.contains(id) && keep(*id, *t) && m.is_some_and(|m| kept.contains(&m))
                })
                .map(|u| u.0)
                .collect();
            if next.is_empty() {
                return kept;
            }
            kept.extend(next);
        }
    }

    /// Users and all their managers, up.
    fn with_managers(&self, start: HashSet<i64>) -> HashSet<i64> {
        let manager: HashMap<i64, Option<i64>> = self.users.iter().map(|u| (u.0, u.2)).collect();
        let mut out = HashSet::new();
        let mut todo: Vec<i64> = start.into_iter().collect();
        while let Some(u) = todo.pop() {
            if out.insert(u)
                && let Some(Some(m)) = manager.get(&u)
            {
                todo.push(*m);
            }
        }
        out
    }
}

/// Every row of `table` in both databases, `keep` choosing the source's by
/// their leading key columns: the target must hold exactly those, every column equal.
fn same_rows(
    p: &Pair,
    schema: &str,
    table: &str,
    order: &str,
    keep: impl Fn(&[Option<String>]) -> bool,
) -> usize {
    let want: Vec<Vec<Option<String>>> =
        rows(&p.src, &format!("SELECT * FROM {table} ORDER BY {order}"))
            .into_iter()
            .filter(|r| keep(r))
            .collect();
    let got = rows(
        &p.dst,
        &format!("SELECT * FROM {schema}.{table} ORDER BY {order}"),
    );
    assert_eq!(got.len(), want.len(), "{schema}.{table}: row count");
    assert_eq!(got, want, "{schema}.{table}: rows");
    want.len()
}

fn validated_keys(p: &Pair, schema: &str) -> Vec<String> {
    col(
        &p.dst,
        &format!(
            "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
             WHERE n.nspname = '{schema}' AND contype = 'f' AND convalidated ORDER BY 1"
        ),
    )
}

const ALL_KEYS: [&str; 6] = [
    "items_order_id_fkey",
    "orders_product_id_fkey",
    "orders_user_id_fkey",
    "shipments_order_id_line_fkey",
    "users_manager_id_fkey",
    "users_tenant_id_fkey",
];

#[test]
fn follow_restricts_children_through_chains_trees_and_multi_column_keys() {
    let p = Pair::new("follow", SCHEMA);
    let src = Source::read(&p);
    let text = p.job(
        "follow",
        "f",
        "subset = \"follow\"\n[follow.tables.\"*\"]\n[follow.tables.users]\nwhere = { tenant_id = [1, 2] }\n",
    );
    let file = p.file("xmat.toml", &text);

    // --dry-run shows each table's SELECT and what it follows.
    let dry = p.xmat(&file, &["follow", "--dry-run"]);
    ok(&dry);
    let plan = stdout(&dry);
    assert!(plan.contains("subset: follow"), "{plan}");
    assert!(
        plan.contains("FROM ONLY \"public\".\"orders\" WHERE EXISTS (SELECT 1 FROM ONLY \"public\".\"users\" AS \"users\" WHERE \"users\".\"id\" = \"public\".\"orders\".\"user_id\""),
        "{plan}"
    );
    assert!(
        plan.contains("follows: users (orders_user_id_fkey)"),
        "{plan}"
    );
    assert!(
        plan.contains("follows: orders (items_order_id_fkey)"),
        "{plan}"
    );
    assert!(
        plan.contains("follows: items (shipments_order_id_line_fkey)"),
        "{plan}"
    );
    assert!(
        plan.contains("WITH RECURSIVE"),
        "the tree of managers: {plan}"
    );

    ok(&p.xmat(&file, &["follow"]));
    let users = src.tree(|_, t| t == 1 || t == 2);
    assert!(
        !users.contains(&298) && !users.contains(&299),
        "a loop no root reaches is not kept"
    );
    assert!(
        users.contains(&6),
        "a user who is their own manager is a root"
    );
    let orders: HashSet<i64> = src
        .orders
        .iter()
        .filter(|o| users.contains(&o.1))
        .map(|o| o.0)
        .collect();
    let items: HashSet<(i64, i64)> = src
        .items
        .iter()
        .copied()
        .filter(|i| orders.contains(&i.0))
        .collect();
    let key = |r: &[Option<String>], i: usize| int(&r[i]).unwrap();
    assert_eq!(
        same_rows(&p, "f", "users", "id", |r| users.contains(&key(r, 0))),
        48
    );
    assert!(
        !users.contains(&41) && !users.contains(&46),
        "41's manager is another tenant's"
    );
    assert!(same_rows(&p, "f", "orders", "id", |r| orders.contains(&key(r, 0))) > 100);
    same_rows(&p, "f", "items", "order_id, line", |r| {
        items.contains(&(key(r, 0), key(r, 1)))
    });
    let shipped = same_rows(&p, "f", "shipments", "id", |r| {
        r[1].is_none() || items.contains(&(key(r, 1), key(r, 2)))
    });
    assert!(
        shipped > src.shipments.iter().filter(|s| s.1.is_none()).count(),
        "some followed, some NULL"
    );
    // Tables nothing restricts are copied whole.
    same_rows(&p, "f", "tenants", "id", |_| true);
    same_rows(&p, "f", "products", "id", |_| true);
    same_rows(&p, "f", "lookup", "code", |_| true);
    assert_eq!(validated_keys(&p, "f"), ALL_KEYS);
}

#[test]
fn follow_parents_adds_the_rows_kept_rows_point_to() {
    let p = Pair::new("parents", SCHEMA);
    let src = Source::read(&p);
    let text = p.job(
        "parents",
        "fp",
        "subset = \"follow+parents\"\n\
         [parents.tables.tenants]\n[parents.tables.users]\nwhere = { tenant_id = 1 }\n\
         [parents.tables.products]\nwhere = { active = true }\n\
         [parents.tables.orders]\nwhere = { created = { gte = 2024-05-01 } }\n\
         [parents.tables.items]\n[parents.tables.shipments]\n",
    );
    let file = p.file("xmat.toml", &text);
    let dry = p.xmat(&file, &["parents", "--dry-run"]);
    ok(&dry);
    let plan = stdout(&dry);
    assert!(
        plan.contains(
            "rows added for: users (users_manager_id_fkey), orders (orders_user_id_fkey)"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("rows added for: orders (orders_product_id_fkey)"),
        "{plan}"
    );
    ok(&p.xmat(&file, &["parents"]));

    let orders: Vec<&(i64, i64, Option<i64>, String)> = src
        .orders
        .iter()
        .filter(|o| o.3.as_str() >= "2024-05-01")
        .collect();
    let order_ids: HashSet<i64> = orders.iter().map(|o| o.0).collect();
    let mut users: HashSet<i64> = src.users.iter().filter(|u| u.1 == 1).map(|u| u.0).collect();
    users.extend(orders.iter().map(|o| o.1));
    let users = src.with_managers(users);
    let mut products: HashSet<i64> = src.products.iter().filter(|p| p.1).map(|p| p.0).collect();
    products.extend(orders.iter().filter_map(|o| o.2));
    assert!(
        products.len() > src.products.iter().filter(|p| p.1).count(),
        "inactive products were added"
    );
    assert!(
        users.contains(&298) && users.contains(&299),
        "tenant 1's own rows are kept, loop or not"
    );
    let key = |r: &[Option<String>], i: usize| int(&r[i]).unwrap();
    same_rows(&p, "fp", "users", "id", |r| users.contains(&key(r, 0)));
    same_rows(&p, "fp", "products", "id", |r| {
        products.contains(&key(r, 0))
    });
    same_rows(&p, "fp", "orders", "id", |r| order_ids.contains(&key(r, 0)));
    let items: BTreeSet<(i64, i64)> = src
        .items
        .iter()
        .copied()
        .filter(|i| order_ids.contains(&i.0))
        .collect();
    same_rows(&p, "fp", "items", "order_id, line", |r| {
        items.contains(&(key(r, 0), key(r, 1)))
    });
    same_rows(&p, "fp", "shipments", "id", |r| {
        r[1].is_none() || items.contains(&(key(r, 1), key(r, 2)))
    });
    same_rows(&p, "fp", "tenants", "id", |_| true);
    assert_eq!(validated_keys(&p, "fp"), ALL_KEYS);
}

/// Without `subset`, a copy whose rows reference rows that were not copied
/// fails at the end: the error names the key, the table, how many rows
/// dangle, and the option; the previous target stays.
#[test]
fn dangling_keys_without_subset_say_how_many_and_what_to_do() {
    let p = Pair::new("dangle", SCHEMA);
    let src = Source::read(&p);
    let text = [
        p.job("whole", "d", "tables = [\"tenants\", \"users\", \"orders\"]"),
        p.job(
            "strict",
            "d",
            "[strict.tables.tenants]\n[strict.tables.users]\nwhere = { tenant_id = [1, 2] }\n[strict.tables.orders]\n",
        ),
    ]
    .concat();
    let file = p.file("xmat.toml", &text);
    ok(&p.xmat(&file, &["whole"]));
    let e = failed(&p.xmat(&file, &["strict", "--jobs", "1"]));
    let kept: HashSet<i64> = src
        .users
        .iter()
        .filter(|u| u.1 == 1 || u.1 == 2)
        .map(|u| u.0)
        .collect();
    // Both keys dangle; whichever is checked first is named, with its own count.
    let (key, table, rows) = if e.contains("orders_user_id_fkey") {
        (
            "orders_user_id_fkey",
            "orders",
            src.orders.iter().filter(|o| !kept.contains(&o.1)).count(),
        )
    } else {
        (
            "users_manager_id_fkey",
            "users",
            src.users
                .iter()
                .filter(|u| kept.contains(&u.0) && u.2.is_some_and(|m| !kept.contains(&m)))
                .count(),
        )
    };
    let expect = format!(
        "job strict: table {table}: foreign key {key}: {rows} row(s) of {table} reference users rows that were not copied (Key ("
    );
    assert!(e.contains(&expect), "expected `{expect}` in:\n{e}");
    assert!(e.contains("add `subset = \"follow\"` to the job"), "{e}");
    assert_eq!(
        col(&p.dst, "SELECT count(*) FROM d.orders"),
        ["2000"],
        "the old target stays"
    );
}

#[test]
fn cycles_and_two_keys_to_one_table_are_refused_by_name() {
    let p = Pair::new(
        "cycle",
        "CREATE SCHEMA cyc;
         CREATE TABLE cyc.a (id int PRIMARY KEY, b_id int, keep bool NOT NULL DEFAULT true);
         CREATE TABLE cyc.b (id int PRIMARY KEY, a_id int REFERENCES cyc.a);
         ALTER TABLE cyc.a ADD FOREIGN KEY (b_id) REFERENCES cyc.b;
         CREATE TABLE cyc.t (id int PRIMARY KEY, p int REFERENCES cyc.t, q int REFERENCES cyc.t);
         INSERT INTO cyc.a VALUES (1, NULL), (2, NULL);
         INSERT INTO cyc.b VALUES (1, 1);",
    );
    let job = |name: &str, tables: &str| {
        format!(
            "[{name}]\nsource = {{ database = \"{}\", schema = \"cyc\" }}\ntarget = {{ database = \"{}\", schema = \"c_{name}\" }}\n\
             subset = \"follow\"\n{tables}\n",
            p.src.dsn, p.dst.dsn
        )
    };
    let text = [
        job(
            "cycle",
            "[cycle.tables.a]\nwhere = { keep = true }\n[cycle.tables.b]",
        ),
        job("free", "tables = [\"a\", \"b\"]"),
        job("two", "[two.tables.t]\nwhere = { id = { gt = 0 } }"),
    ]
    .concat();
    let file = p.file("xmat.toml", &text);
    let e = failed(&p.xmat(&file, &["cycle", "--dry-run"]));
    assert!(
        e.contains("subset = \"follow\" cannot follow rows around a cycle of foreign keys: ")
            && e.contains("a_b_id_fkey")
            && e.contains("b_a_id_fkey"),
        "{e}"
    );
    // Nothing to follow: the same cycle is copied whole.
    ok(&p.xmat(&file, &["free"]));
    assert_eq!(col(&p.dst, "SELECT count(*) FROM c_free.a"), ["2"]);
    let e = failed(&p.xmat(&file, &["two"]));
    assert!(
        e.contains("table t has more than one foreign key to itself (t_p_fkey, t_q_fkey)"),
        "{e}"
    );
}

/// Names with quotes, spaces and capitals, on both sides of a followed key
/// and of a key to itself.
#[test]
fn quoted_names_are_followed() {
    let p = Pair::new(
        "quoted",
        r#"CREATE TABLE "Pa""rent" ("I d" int PRIMARY KEY, "Kind" text NOT NULL, "up" int REFERENCES "Pa""rent");
           INSERT INTO "Pa""rent" SELECT i, CASE WHEN i % 3 = 0 THEN 'drop' ELSE 'keep' END,
                                        CASE WHEN i > 10 THEN i - 10 END FROM generate_series(1, 60) i;
           CREATE TABLE "chi ld" (id int PRIMARY KEY, "p""id" int NOT NULL REFERENCES "Pa""rent");
           INSERT INTO "chi ld" SELECT i, 1 + i % 60 FROM generate_series(1, 300) i;"#,
    );
    let text = p.job(
        "q",
        "q",
        "subset = \"follow\"\n[q.tables.\"Pa\\\"rent\"]\nwhere = { Kind = \"keep\" }\n[q.tables.\"chi ld\"]\n",
    );
    let file = p.file("xmat.toml", &text);
    ok(&p.xmat(&file, &["q"]));
    // Kept parents: "keep", and every parent above kept too (up = i - 10).
    let mut kept: HashSet<i64> = HashSet::new();
    for i in 1..=60i64 {
        let keep = i % 3 != 0 && (i <= 10 || kept.contains(&(i - 10)));
        if keep {
            kept.insert(i);
        }
    }
    let key = |r: &[Option<String>], i: usize| int(&r[i]).unwrap();
    assert_eq!(
        same_rows(&p, "q", "\"Pa\"\"rent\"", "1", |r| kept
            .contains(&key(r, 0))),
        kept.len()
    );
    same_rows(&p, "q", "\"chi ld\"", "1", |r| kept.contains(&key(r, 1)));
    assert_eq!(
        validated_keys(&p, "q"),
        ["Pa\"rent_up_fkey", "chi ld_p\"id_fkey"]
    );
}

/// Keys of one integer column are tested by host (the parent's kept keys
/// read first, as a bitmap or a sorted list); PostgreSQL's semi join is the
/// oracle: the same job run with `--follow-memory 0` (always SQL) and with
/// a budget too small for the parents (host falls back to SQL) must give
/// the same rows, every column, and an independent walk of the source
/// must agree on the child.
#[test]
fn keys_tested_by_host_keep_the_rows_the_semi_join_keeps() {
    let p = Pair::new(
        "hostkeys",
        r#"CREATE TABLE p (id bigint PRIMARY KEY, grp int NOT NULL);
           INSERT INTO p SELECT i, i % 4 FROM generate_series(1, 3000) i;
           -- Far apart: a bitmap of p's kept keys would not fit, a list does.
           INSERT INTO p VALUES (-9223372036854775808, 0), (9223372036854775807, 0), (-5, 1), (4000000000, 0);
           CREATE TABLE s (code smallint PRIMARY KEY, grp int NOT NULL);
           INSERT INTO s SELECT i, abs(i) % 2 FROM generate_series(-300, 300) i;
           CREATE TABLE c (id int PRIMARY KEY, p_id bigint REFERENCES p, s_code smallint NOT NULL REFERENCES s,
                           "Odd ""ref""" bigint REFERENCES p, note text);
           INSERT INTO c SELECT i,
               CASE WHEN i % 11 = 0 THEN NULL WHEN i % 13 = 0 THEN 9223372036854775807
                    WHEN i % 17 = 0 THEN -9223372036854775808 WHEN i % 19 = 0 THEN 4000000000
                    ELSE 1 + (i * 7) % 3000 END,
               (i % 601) - 300,
               CASE WHEN i % 5 = 0 THEN NULL ELSE 1 + i % 3000 END,
               repeat(E'\t\\x', i % 300)
             FROM generate_series(1, 20000) i;
           -- A chain: d follows c, whose kept keys are read with c's own semi joins.
           CREATE TABLE d (id int PRIMARY KEY, c_id int NOT NULL REFERENCES c, w text);
           INSERT INTO d SELECT i, 1 + (i * 3) % 20000, 'w' || i FROM generate_series(1, 5000) i;"#,
    );
    let job = |name: &str| {
        p.job(
            name,
            name,
            &format!(
                "subset = \"follow\"\n[{name}.tables.\"*\"]\n[{name}.tables.p]\nwhere = {{ grp = 0 }}\n\
                 [{name}.tables.s]\nwhere = {{ grp = 1 }}\n"
            ),
        )
    };
    let file = p.file(
        "xmat.toml",
        &["h", "k", "m", "x", "y", "q", "t"].map(job).concat(),
    );

    let dry = p.xmat(&file, &["h", "--dry-run"]);
    ok(&dry);
    let plan = stdout(&dry);
    for line in [
        "p_id (c_p_id_fkey) follows the kept keys of p, read first: SELECT \"id\" FROM ONLY \"public\".\"p\" WHERE \"grp\" = '0';",
        "s_code (c_s_code_fkey) follows the kept keys of s",
        "Odd \"ref\" (c_Odd \"ref\"_fkey) follows the kept keys of p",
        "c_id (d_c_id_fkey) follows the kept keys of c, read first: SELECT \"id\" FROM ONLY \"public\".\"c\" WHERE",
    ] {
        assert!(plan.contains(line), "{line}\n{plan}");
    }
    // c's kept keys are read with its semi joins in SQL; d's own read has none.
    let d_read = plan
        .lines()
        .skip_while(|l| !l.contains("c_id (d_c_id_fkey)"))
        .find(|l| l.contains("reading (while"))
        .unwrap();
    assert!(!d_read.contains("EXISTS"), "{d_read}");
    let sql_only = stdout(&p.xmat(&file, &["q", "--dry-run", "--follow-memory", "0"]));
    assert!(!sql_only.contains("follows the kept keys"), "{sql_only}");

    let run = |args: &[&str]| -> (serde_json::Value, String) {
        let out = p.xmat(&file, args);
        ok(&out);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        (v["jobs"][0].clone(), util::stderr(&out))
    };
    let summary = |args: &[&str]| run(args).0;
    let table = |v: &serde_json::Value, table: &str, field: &str| {
        v["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == table)
            .unwrap()[field]
            .as_u64()
    };
    // h: host tests every key; k: every key set goes into the query; m: s's
    // short bitmap goes into the query, p's far-apart keys are tested by
    // host; x: text rows, with every key in the query; y: text rows whose
    // keys do not fit in the query (host cannot cut text), so the semi
    // joins; q: the semi joins; t: the kept keys do not fit in memory, so
    // the semi joins too.
    let h = summary(&["h", "--json", "--follow-in-query", "0"]);
    let k = summary(&["k", "--json"]);
    let m = summary(&["m", "--json", "--follow-in-query", "200"]);
    let x = summary(&["x", "--json", "--text"]);
    let (y, said) = run(&["y", "--json", "--text", "--follow-in-query", "10"]);
    assert!(
        said.contains("host cannot test text rows; following it in the source instead"),
        "{said}"
    );
    let q = summary(&["q", "--json", "--follow-memory", "0"]);
    let t = summary(&["t", "--json", "--follow-memory", "100"]);
    assert!(table(&h, "c", "followed_out").unwrap() > 1000, "{h}");
    assert!(table(&h, "d", "followed_out").unwrap() > 100, "{h}");
    assert_eq!(table(&h, "c", "rows_read"), Some(20000));
    // In the query, the source sends only the kept rows.
    let c_kept = table(&q, "c", "rows_read").unwrap();
    assert!(c_kept < 10000, "{q}");
    for v in [&k, &x, &y, &q, &t] {
        assert_eq!(table(v, "c", "followed_out"), None, "{v}");
        assert_eq!(table(v, "d", "followed_out"), None, "{v}");
        assert_eq!(table(v, "c", "rows_read"), Some(c_kept), "{v}");
    }
    // m: host drops the rows whose p keys are not kept, among the rows whose
    // s key the source kept.
    let m_read = table(&m, "c", "rows_read").unwrap();
    assert!(m_read > c_kept && m_read < 20000, "{m}");
    assert_eq!(
        m_read - table(&m, "c", "followed_out").unwrap(),
        c_kept,
        "{m}"
    );

    for (table, order) in [("p", "id"), ("s", "code"), ("c", "id"), ("d", "id")] {
        let want = p.dst_rows(&format!("SELECT * FROM q.{table} ORDER BY {order}"));
        assert!(!want.is_empty(), "{table}");
        for schema in ["h", "k", "m", "x", "y", "t"] {
            let got = p.dst_rows(&format!("SELECT * FROM {schema}.{table} ORDER BY {order}"));
            assert_eq!(got, want, "{schema}.{table} against the semi join's rows");
        }
    }
    // The child by hand: every key NULL or kept.
    let p_kept: HashSet<i64> = rows(&p.src, "SELECT id FROM p WHERE grp = 0")
        .iter()
        .map(|r| int(&r[0]).unwrap())
        .collect();
    let c_want: Vec<i64> = rows(
        &p.src,
        "SELECT id, p_id, s_code, \"Odd \"\"ref\"\"\" FROM c ORDER BY id",
    )
    .iter()
    .filter(|r| {
        let ok = |v: Option<i64>| v.is_none_or(|k| p_kept.contains(&k));
        ok(int(&r[1])) && int(&r[2]).unwrap().abs() % 2 == 1 && ok(int(&r[3]))
    })
    .map(|r| int(&r[0]).unwrap())
    .collect();
    let c_got: Vec<i64> = p
        .dst_rows("SELECT id FROM h.c ORDER BY id")
        .iter()
        .map(|r| int(&r[0]).unwrap())
        .collect();
    assert_eq!(c_got, c_want);
    assert!(c_got.iter().any(|&i| i % 13 == 0) && c_got.iter().any(|&i| i % 11 == 0));
    for schema in ["h", "k", "m", "x", "y", "q", "t"] {
        assert_eq!(validated_keys(&p, schema).len(), 4, "{schema}");
    }
}

/// The SQL a set of kept keys becomes in a child's query selects exactly the
/// values the set holds, and NULL, in PostgreSQL: bitmaps (bytes and bits in
/// `get_bit`'s order, the range's edges) and lists, at the extremes of
/// bigint and on int and smallint columns.
#[test]
fn kept_keys_in_a_query_select_exactly_the_set() {
    use host::xmat::follow::KeySet;
    let db = util::TestDb::new("keysql");
    let cases: Vec<(&str, Vec<i64>)> = vec![
        ("dense", (0..5000).filter(|k| k % 3 != 1).collect()),
        ("dense, negative", (-700..-100).step_by(7).collect()),
        ("one key", vec![42]),
        ("a byte edge", vec![8, 15, 16, 63, 64, 65]),
        ("sparse", vec![-9, 1 << 20, 5_000_000_000, -4_000_000_000]),
        ("extremes", vec![i64::MIN, -1, 0, i64::MAX]),
        (
            "near the top",
            (i64::MAX - 300..=i64::MAX).step_by(3).collect(),
        ),
        (
            "near the bottom",
            (i64::MIN..i64::MIN + 300).step_by(2).collect(),
        ),
        ("empty", vec![]),
    ];
    for (name, keys) in &cases {
        let set = KeySet::new(keys.clone(), 1 << 20).unwrap();
        let kept: HashSet<i64> = keys.iter().copied().collect();
        // Every key, its neighbours, and some of everything else.
        let mut probes: BTreeSet<i64> = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX]
            .into_iter()
            .collect();
        for &k in keys {
            probes.extend([k.saturating_sub(1), k, k.saturating_add(1)]);
        }
        probes.extend((-100..6000).step_by(13));
        let sql = set.condition("t.v", 1 << 20).unwrap();
        let bitmap = sql.contains("get_bit");
        assert_eq!(
            bitmap,
            matches!(
                *name,
                "dense" | "dense, negative" | "near the top" | "near the bottom"
            ),
            "{name}: {sql}"
        );
        for (ty, lo, hi) in [
            ("bigint", i64::MIN, i64::MAX),
            ("integer", i64::from(i32::MIN), i64::from(i32::MAX)),
            ("smallint", i64::from(i16::MIN), i64::from(i16::MAX)),
        ] {
            let these: Vec<i64> = probes
                .iter()
                .copied()
                .filter(|p| (lo..=hi).contains(p))
                .collect();
            let list = these
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let got: Vec<Option<i64>> = rows(
                &db,
                &format!(
                    "SELECT v FROM unnest(ARRAY[NULL, {list}]::{ty}[]) AS t (v) WHERE {sql} \
                     ORDER BY v NULLS FIRST"
                ),
            )
            .iter()
            .map(|r| r[0].as_ref().map(|v| v.parse().unwrap()))
            .collect();
            let want: Vec<Option<i64>> = std::iter::once(None)
                .chain(these.iter().filter(|p| kept.contains(p)).map(|&p| Some(p)))
                .collect();
            assert_eq!(got, want, "{name} on {ty}: {sql}");
        }
        // Too long for the limit: host tests the set instead.
        if keys.len() > 3 {
            assert_eq!(set.condition("t.v", 10), None, "{name}");
        }
    }
}
