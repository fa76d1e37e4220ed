//! `host xmat PATTERN -c pg_xmat_jobs.py`: an unmodified pg-xmat jobs module
//! (the examples of pg-xmat 0.3.0's README, as written there) runs with
//! pg-xmat's meaning. The oracle is pg-xmat 0.3.0 itself (from PyPI, in the
//! project's `.venv`, see `scripts/venv`): each job runs once with pg-xmat
//! into one database and once with host into another, and the two targets
//! must hold the same tables, columns, rows and constraints.

mod util;
mod xmat_util;

use std::path::{Path, PathBuf};
use std::process::Command;

use util::{TestDb, host, root, stderr, stdout};
use xmat_util::{failed, ok, rows};

/// The README's jobs. Its quick start misses a comma (`}} "select"`), which
/// Python refuses; that one character is the only change.
const JOBS_PY: &str = r#"import os

SOURCE_DB_URL = os.getenv("SOURCE_DB_URL")
TARGET_DB_URL = os.getenv("TARGET_DB_URL")
PROD_DB_URL = MAIN_DB_URL = SOURCE_DB_URL
STAGING_DB_URL = TEST_DB_URL = TENANT_DB_URL = TARGET_DB_URL

MIGRATION_JOB = {
    "source": {"database": PROD_DB_URL, "schema": "public"},
    "target": {"database": STAGING_DB_URL, "schema": "public"},
    "tables": {
        "users": {"where": {"created_at": {"gte": "2023-01-01"}}},
        "orders": {"where": {"status": ["completed", "shipped"]}},
        "products": {"where": {"active": True}}
    }
}

ANONYMIZE_JOB = {
    "source": {"database": PROD_DB_URL, "schema": "public"},
    "target": {"database": TEST_DB_URL, "schema": "public"},
    "tables": {
        "users": {
            "select": {
                # Replace real emails with user1@example.com, user2@example.com, etc.
                "email": "'user' || id || '@example.com'",
                # Generate fake phone numbers like +15550000001, +15550000002, etc.
                "phone": "'+1555' || LPAD(id::text, 7, '0')",
                # Replace real names with "Test User 1", "Test User 2", etc.
                "name": "'Test User ' || id"
            }
        }
    }
}

SHIFT_JOB = {
    "source": {"database": PROD_DB_URL, "schema": "events"},
    "target": {"database": TEST_DB_URL, "schema": "events"},
    "tables": {
        "*": {
            "select": {
                "created_at": "{column_name} + (CURRENT_DATE - DATE '2023-06-01')",
                "updated_at": "{column_name} + (CURRENT_DATE - DATE '2023-06-01')"
            }
        }
    }
}

TENANT_EXPORT = {
    "source": {"database": MAIN_DB_URL, "schema": "public"},
    "target": {"database": TENANT_DB_URL, "schema": "tenant_123"},
    "tables": {
        "users": {"where": {"tenant_id": 123}},
        "orders": {"where": {"tenant_id": 123, "status": ["active", "pending"]}},
        "analytics": {"where": {"tenant_id": 123, "date": {"gte": "2023-01-01"}}}
    }
}

JOBS = {
    "export:users": {
        "source": {"database": SOURCE_DB_URL, "schema": "public"},
        "target": {"database": TARGET_DB_URL, "schema": "staging"},
        "tables": {
            "users": {"where": {"active": True}},
            "profiles": {
                "where": {"user_id": [1, 2, 3, 4]},
                "select": { "inserted_at": "current_date" },
            }
        }
    },
    "migrate": MIGRATION_JOB,
    "anonymize": ANONYMIZE_JOB,
    "shift": SHIFT_JOB,
    "tenant": TENANT_EXPORT,
    "wildcard": {
        "source": {"database": MAIN_DB_URL, "schema": "tenantdata"},
        "target": {"database": TENANT_DB_URL, "schema": "wild"},
        "tables": {
            "*": {
                "where": {"tenant_id": 123}  # Applied to all tables that have this column
            }
        }
    },
    # What pg-xmat 0.3.0 ignores: an empty list, operators other than gte/lte.
    "quirks": {
        "source": {"database": SOURCE_DB_URL, "schema": "public"},
        "target": {"database": TARGET_DB_URL, "schema": "quirks"},
        "tables": {"users": {"where": {"id": [], "tenant_id": {"gte": 100, "gt": 200}}}},
    },
}
"#;

const SOURCE: &str = "
CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE, phone text,
                    active bool NOT NULL, tenant_id int NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO users SELECT i, 'Name ' || i, 'n' || i || '@mail.example', '+44 20 ' || (7000 + i),
                         i % 4 <> 0, CASE WHEN i % 3 = 0 THEN 123 ELSE 100 + i % 7 END,
                         timestamptz '2022-06-01' + i * interval '1 day'
  FROM generate_series(1, 400) i;
CREATE TABLE profiles (user_id int PRIMARY KEY REFERENCES users, bio text, inserted_at date NOT NULL);
INSERT INTO profiles SELECT i, 'bio ' || i, date '2022-01-01' + i FROM generate_series(1, 400, 2) i;
CREATE TABLE products (id int PRIMARY KEY, name text, active bool NOT NULL);
INSERT INTO products SELECT i, 'product ' || i, i % 5 <> 0 FROM generate_series(1, 30) i;
CREATE TABLE orders (id int PRIMARY KEY, user_id int NOT NULL REFERENCES users, product_id int REFERENCES products,
                     tenant_id int NOT NULL, status text NOT NULL CHECK (status <> ''), amount numeric(10, 2));
INSERT INTO orders SELECT i, u, 1 + i % 30, (SELECT tenant_id FROM users WHERE id = u),
                          (ARRAY['active', 'pending', 'completed', 'shipped'])[1 + i % 4], i * 1.25
  FROM (SELECT i, 1 + (i * 37) % 400 AS u FROM generate_series(1, 1500) i) s;
CREATE TABLE analytics (id int PRIMARY KEY, tenant_id int NOT NULL, date date NOT NULL, hits int);
INSERT INTO analytics SELECT i, CASE WHEN i % 2 = 0 THEN 123 ELSE 7 END, date '2022-10-01' + i, i * 3
  FROM generate_series(1, 300) i;
CREATE SCHEMA events;
-- Dates: the README's shift adds a number of days (date - date), which only dates take.
-- (On a timestamptz column pg-xmat 0.3.0 copies nothing and reports success: its psql
-- export fails, the import reads an empty stream, and the exit code is checked too early.)
CREATE TABLE events.clicks (id int PRIMARY KEY, created_at date NOT NULL, updated_at date);
INSERT INTO events.clicks SELECT i, date '2023-05-01' + i, date '2023-05-02' + i
  FROM generate_series(1, 200) i;
CREATE TABLE events.views (id int PRIMARY KEY, created_at date NOT NULL, updated_at date);
INSERT INTO events.views SELECT i, date '2023-04-01' + i, NULL FROM generate_series(1, 50) i;
CREATE SCHEMA tenantdata;
CREATE TABLE tenantdata.accounts (id int PRIMARY KEY, tenant_id int NOT NULL, name text);
INSERT INTO tenantdata.accounts SELECT i, CASE WHEN i % 2 = 0 THEN 123 ELSE 5 END, 'account ' || i
  FROM generate_series(1, 100) i;
CREATE TABLE tenantdata.entries (id int PRIMARY KEY, tenant_id int NOT NULL, account_id int REFERENCES tenantdata.accounts);
INSERT INTO tenantdata.entries SELECT i, a.tenant_id, a.id FROM generate_series(1, 300) i
  JOIN tenantdata.accounts a ON a.id = 1 + i % 100;
CREATE VIEW tenantdata.account_totals AS
  SELECT a.id, a.tenant_id, count(e.id) AS entries FROM tenantdata.accounts a
  LEFT JOIN tenantdata.entries e ON e.account_id = a.id GROUP BY a.id, a.tenant_id;
";

/// pg-xmat 0.3.0 from the project's virtualenv.
fn pg_xmat() -> PathBuf {
    let bin = root().join(".venv/bin/pg-xmat");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/venv (it installs pg-xmat from scripts/requirements.txt)",
        bin.display()
    );
    bin
}

fn tables(db: &TestDb, schema: &str) -> Vec<String> {
    rows(
        db,
        &format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}' ORDER BY 1"
        ),
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}

/// Tables, columns (names and types, in order), every row, and the
/// constraints of `schema` in the two targets. `foreign_keys: false` leaves
/// foreign keys out of the comparison: pg-xmat 0.3.0 adds them only where its
/// constraint text still names the right table (see the test).
fn same_target(pgx: &TestDb, ours: &TestDb, schema: &str, foreign_keys: bool) {
    let names = tables(pgx, schema);
    assert!(!names.is_empty(), "pg-xmat made no tables in {schema}");
    assert_eq!(tables(ours, schema), names, "{schema}: tables");
    for t in &names {
        let cols_sql = format!(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_schema = '{schema}' AND table_name = '{t}' ORDER BY ordinal_position"
        );
        let cols = rows(pgx, &cols_sql);
        assert_eq!(rows(ours, &cols_sql), cols, "{schema}.{t}: columns");
        let order: Vec<String> = (1..=cols.len()).map(|i| i.to_string()).collect();
        let all = format!(
            "SELECT * FROM {schema}.\"{t}\" ORDER BY {}",
            order.join(", ")
        );
        let want = rows(pgx, &all);
        assert_eq!(rows(ours, &all), want, "{schema}.{t}: rows");
    }
    let cons = format!(
        "SELECT r.relname, c.conname, c.contype FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid \
         JOIN pg_namespace n ON n.oid = r.relnamespace WHERE n.nspname = '{schema}' \
         AND c.contype IN ('p', 'u', 'c'{}) ORDER BY 1, 2",
        if foreign_keys { ", 'f'" } else { "" }
    );
    assert_eq!(rows(ours, &cons), rows(pgx, &cons), "{schema}: constraints");
}

struct Run<'a> {
    src: &'a TestDb,
    file: &'a Path,
}

impl Run<'_> {
    fn pg_xmat(&self, job: &str, dst: &TestDb, file: &Path) {
        let o = Command::new(pg_xmat())
            .args([job, "-c"])
            .arg(file)
            .env("SOURCE_DB_URL", &self.src.dsn)
            .env("TARGET_DB_URL", &dst.dsn)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pg-xmat {job} failed\n{}\n{}",
            stdout(&o),
            stderr(&o)
        );
    }

    fn host(&self, job: &str, dst: &TestDb, extra: &[&str]) -> std::process::Output {
        host()
            .args(["xmat", job, "-c"])
            .arg(self.file)
            .args(extra)
            .env("SOURCE_DB_URL", &self.src.dsn)
            .env("TARGET_DB_URL", &dst.dsn)
            .output()
            .unwrap()
    }
}

#[test]
fn the_readme_examples_mean_what_they_mean_to_pg_xmat() {
    let src = TestDb::new("pgx_src");
    src.client().batch_execute(SOURCE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pg_xmat_jobs.py");
    std::fs::write(&file, JOBS_PY).unwrap();
    // pg-xmat 0.3.0 does not replace `{column_name}` (its README says it
    // does); its oracle run gets the column spelled out.
    let spelled = dir.path().join("pg_xmat_jobs_spelled.py");
    std::fs::write(
        &spelled,
        JOBS_PY
            .replace(
                "\"created_at\": \"{column_name}",
                "\"created_at\": \"created_at",
            )
            .replace(
                "\"updated_at\": \"{column_name}",
                "\"updated_at\": \"updated_at",
            ),
    )
    .unwrap();
    let run = Run {
        src: &src,
        file: &file,
    };

    // (job, target schema, host's extra arguments, pg-xmat's module, compare foreign keys)
    for (job, schema, extra, oracle, fks) in [
        ("export:users", "staging", &[][..], &file, true),
        ("migrate", "public", &[][..], &file, true),
        // The expressions keep users' emails unique, which host cannot prove.
        (
            "anonymize",
            "public",
            &["--allow-uniqueness-loss"][..],
            &file,
            true,
        ),
        ("shift", "events", &[][..], &spelled, true),
        // pg-xmat copies `orders_user_id_fkey` as `REFERENCES users(id)`, which the
        // target resolves to public.users, not tenant_123.users: it fails and is
        // skipped. host adds the key between the two copied tables.
        ("tenant", "tenant_123", &[][..], &file, false),
        ("wildcard", "wild", &[][..], &file, true),
        ("quirks", "quirks", &[][..], &file, true),
    ] {
        // Fresh targets per job: what one job leaves in `public` changes how
        // pg-xmat resolves the next one's keys.
        let pgx = TestDb::new2("pgx_theirs");
        let ours = TestDb::new2("pgx_ours");
        run.pg_xmat(job, &pgx, oracle);
        let o = run.host(job, &ours, extra);
        ok(&o);
        same_target(&pgx, &ours, schema, fks);
        let log = stderr(&o);
        if job == "wildcard" {
            // The view under `*` became a table, in both.
            assert!(tables(&ours, "wild").contains(&"account_totals".to_string()));
        }
        match job {
            // pg-xmat leaves out the keys that do not hold; host says so.
            "migrate" => assert!(
                log.contains("orders_user_id_fkey") && log.contains("left out, as pg-xmat does"),
                "{log}"
            ),
            "quirks" => {
                assert!(
                    log.contains(
                        "line 87: tables.users.where.id: an empty list: pg-xmat adds no condition"
                    ),
                    "{log}"
                );
                assert!(
                    log.contains(
                        "tables.users.where.tenant_id.gt: pg-xmat 0.3.0 knows only gte and lte"
                    ),
                    "{log}"
                );
            }
            _ => {}
        }
    }
}

#[test]
fn what_pg_xmat_would_get_wrong_is_refused_with_its_line() {
    let src = TestDb::new("pgx_bad_src");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let head = "import os\nDB = os.getenv(\"SOURCE_DB_URL\")\n";
    let job = |tables: &str| {
        format!(
            "{head}JOBS = {{\"j\": {{\n    \"source\": {{\"database\": DB, \"schema\": \"public\"}},\n    \"target\": {{\"database\": DB, \"schema\": \"t\"}},\n    \"tables\": {tables}}}}}\n"
        )
    };
    let xmat = |file: &Path, env: &[(&str, &str)]| {
        let mut c = host();
        c.args(["xmat", "j", "-c"])
            .arg(file)
            .env_remove("SOURCE_DB_URL");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let env = [("SOURCE_DB_URL", src.dsn.as_str())];
    let e = failed(&xmat(
        &write(
            "none.py",
            &job("{\"u\": {\"where\": {\n        \"x\": None}}}"),
        ),
        &env,
    ));
    assert!(e.contains("none.py:7: job `j`: tables.u.where.x: None: pg-xmat 0.3.0 turns it into the text 'None'"), "{e}");
    let e = failed(&xmat(
        &write("true.py", &job("{\"u\": {\"select\": {\"id\": True}}}")),
        &env,
    ));
    assert!(
        e.contains(
            "true.py:6: job `j`: tables.u.select.id: True: pg-xmat 0.3.0 leaves this column out"
        ),
        "{e}"
    );
    // The module's URL comes from an unset variable: the error says which.
    let e = failed(&xmat(&write("unset.py", &job("{\"u\": {}}")), &[]));
    assert!(
        e.contains("unset.py:4: job `j`: source.database: is None: the jobs module read SOURCE_DB_URL from the environment, and it is not set"),
        "{e}"
    );
}
