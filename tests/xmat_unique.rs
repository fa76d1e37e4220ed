//! `host xmat` checks transforms on unique keys before copying: `select`
//! expressions and row plugins on columns of a primary key, unique
//! constraint or unique index are reported by `--dry-run` and refused unless
//! the job (or `--allow-uniqueness-loss`) accepts them. The cases that are
//! accepted anyway then fail on the target exactly as the check warned,
//! which shows the check is about real collisions.

mod util;
mod xmat_util;

use util::{stdout, wasm};
use xmat_util::{Pair, col, failed, ok, schemas};

const PEOPLE: &str = "
CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL,
                     code text NOT NULL, note text);
CREATE UNIQUE INDEX people_code_lower ON people (lower(code));
INSERT INTO people SELECT i, 'p' || i || '@example.org', 'Name ' || i, 'C' || i, 'n'
  FROM generate_series(1, 5000) i;
-- Two emails that differ only in case: lower() merges them.
UPDATE people SET email = 'Mixed@Example.org' WHERE id = 1;
UPDATE people SET email = 'mixed@example.org' WHERE id = 2;
";

fn jobs(p: &Pair) -> std::path::PathBuf {
    let anon = wasm("anonymize").display().to_string();
    let upper = wasm("upper").display().to_string();
    let filter = wasm("where_filter").display().to_string();
    let job =
        |name: &str, table: &str| p.job(name, name, &format!("[{name}.tables.people]\n{table}\n"));
    let anonymize = |params: &str| {
        format!("plugins = [{{ plugin = \"{anon}\", params = {{ key = \"k\", {params} }} }}]")
    };
    let text = [
        job("lower", "select = { email = \"lower({column_name})\" }"),
        job(
            "lower_ok",
            "select = { email = \"lower({column_name})\" }\nallow_uniqueness_loss = [\"email\"]",
        ),
        job("note", "select = { note = \"upper({column_name})\", email = \"{column_name}\" }"),
        job("anon_email", &anonymize("email = \"email\"")),
        job("anon_hash", &anonymize("email = \"hash\", id = \"keep\", note = \"null\"")),
        job("anon_code", &anonymize("code = \"name\"")),
        job(
            "upper",
            &format!("plugins = [{{ plugin = \"{upper}\", params = {{ columns = \"note\" }} }}]"),
        ),
        job(
            "upper_ok",
            &format!(
                "plugins = [{{ plugin = \"{upper}\", params = {{ columns = \"note\" }} }}]\nallow_uniqueness_loss = true"
            ),
        ),
        job(
            "filter",
            &format!(
                "plugins = [{{ plugin = \"{filter}\", params = {{ \"where.id.lte\" = \"10\" }} }}]"
            ),
        ),
    ]
    .concat();
    p.file("xmat.toml", &text)
}

#[test]
fn select_expressions_on_unique_keys_are_refused_until_accepted() {
    let p = Pair::new("uniq_select", PEOPLE);
    let file = jobs(&p);
    let dry = p.xmat(&file, &["lower", "--dry-run"]);
    let e = failed(&dry);
    let plan = stdout(&dry);
    assert!(
        plan.contains("REFUSED:  people.email (people_email_key): select expression `lower(\"email\")`, not known to keep distinct values distinct"),
        "{plan}"
    );
    assert!(
        e.contains("job lower: 1 transform(s) on unique keys may give two rows one value")
            && e.contains("allow_uniqueness_loss = [\"email\"] on table people"),
        "{e}"
    );
    let e = failed(&p.xmat(&file, &["lower"]));
    assert!(e.contains("people.email (people_email_key)"), "{e}");
    assert!(
        schemas(&p.dst).is_empty(),
        "nothing was written: {:?}",
        schemas(&p.dst)
    );

    // Accepted: the copy runs, and the key fails exactly as warned.
    let dry = p.xmat(&file, &["lower_ok", "--dry-run"]);
    ok(&dry);
    assert!(
        stdout(&dry).contains("accepted: people.email (people_email_key)"),
        "{}",
        stdout(&dry)
    );
    let e = failed(&p.xmat(&file, &["lower_ok"]));
    assert!(
        e.contains("people_email_key") && e.contains("(SQLSTATE 23505)"),
        "{e}"
    );
    assert!(
        schemas(&p.dst).is_empty(),
        "the failed run left its build schema"
    );

    // A column outside every unique key, and the column copied as itself: no risk.
    let dry = p.xmat(&file, &["note", "--dry-run"]);
    ok(&dry);
    assert!(
        !stdout(&dry).contains("unique keys with transformed columns"),
        "{}",
        stdout(&dry)
    );
    ok(&p.xmat(&file, &["note"]));
    assert_eq!(
        col(&p.dst, "SELECT count(*) FROM note.people WHERE note = 'N'"),
        ["5000"]
    );
}

#[test]
fn plugins_are_checked_by_what_they_declare() {
    let p = Pair::new("uniq_plugins", PEOPLE);
    let file = jobs(&p);
    // anonymize declares email pseudonyms not-guaranteed (48 bits).
    let e = failed(&p.xmat(&file, &["anon_email"]));
    assert!(
        e.contains("people.email (people_email_key): plugin anonymize (email=email), declared not-guaranteed"),
        "{e}"
    );
    // hash is declared preserved, keep unchanged, and note is in no unique key.
    let dry = p.xmat(&file, &["anon_hash", "--dry-run"]);
    ok(&dry);
    assert!(
        !stdout(&dry).contains("unique keys with transformed columns"),
        "{}",
        stdout(&dry)
    );
    ok(&p.xmat(&file, &["anon_hash"]));
    assert_eq!(
        col(
            &p.dst,
            "SELECT count(DISTINCT email) || '/' || count(note) FROM anon_hash.people"
        ),
        ["5000/0"]
    );
    // name picks from 64 × 64 names: lossy, on the columns of an expression index.
    let e = failed(&p.xmat(&file, &["anon_code", "--dry-run"]));
    assert!(
        e.contains("people.code (people_code_lower): plugin anonymize (code=name), declared lossy"),
        "{e}"
    );
    // Accepted on the command line, the 5000 codes cannot fit in 4096 names.
    let e = failed(&p.xmat(&file, &["anon_code", "--allow-uniqueness-loss"]));
    assert!(
        e.contains("people_code_lower") && e.contains("(SQLSTATE 23505)"),
        "{e}"
    );
    // A plugin that declares nothing may change any column: every unique key.
    let e = failed(&p.xmat(&file, &["upper"]));
    for key in [
        "people.id (people_pkey)",
        "people.email (people_email_key)",
        "people.code (people_code_lower)",
    ] {
        assert!(e.contains(key), "{key} in:\n{e}");
    }
    assert!(
        e.contains("plugin upper (it declares nothing about uniqueness"),
        "{e}"
    );
    ok(&p.xmat(&file, &["upper_ok"]));
    // Filters change no value.
    ok(&p.xmat(&file, &["filter"]));
    assert_eq!(col(&p.dst, "SELECT count(*) FROM filter.people"), ["10"]);

    // --json: the risks, and whether the run refuses.
    let o = p.xmat(&file, &["anon_email", "--dry-run", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let job = &v["jobs"][0];
    assert_eq!(job["refused"], true, "{job}");
    assert_eq!(job["unique_risks"][0]["verdict"], "not-guaranteed", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("people_email_key"),
        "{job}"
    );
}
