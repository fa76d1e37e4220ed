//! Issue 14 for `host stream`: a stream bound to a policy's tenant, by
//! xmat's own binding. Its plugins are the tenant's pinned builds with its
//! secret, refused before anything is compiled when not allowed; only its
//! tables and rows reach them (a change to another tenant's row, or table,
//! never does; an UPDATE moving a row out of its predicate deletes it, into
//! it inserts it); the streamed target equals a fresh tenant-bound `host
//! xmat` of the source; no secret is ever printed, stored or audited.

mod stream_util;
mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use stream_util::{Fixture, LIMIT, OutputWithin, assert_fails, s};
use util::{host, sha256_file as digest, stderr, stdout, wasm};

/// User `g` belongs to tenant `1 + g % 3`. `vault` is the operator's.
const SOURCE: &str = "
CREATE TABLE users (id int PRIMARY KEY, tenant_id int NOT NULL, email text UNIQUE, name text);
INSERT INTO users SELECT g, 1 + g % 3, 'u' || g || '@x.org', 'name ' || g
  FROM generate_series(1, 300) g;
CREATE TABLE vault (id int PRIMARY KEY, tenant_id int, note text);
INSERT INTO vault VALUES (1, 1, 'operator only');
";

/// acme's job: every table it may see (`*`), emails anonymized behind the
/// spy, which rejects any row holding `OUT` — so a row outside acme's
/// scope that reached its plugins would stop the stream.
const TABLES: &str = "tenant = \"acme\"\n[\"{job}\".tables.\"*\"]\n\
    [\"{job}\".tables.users]\n\
    plugins = [\"spy\", { plugin = \"anon\", params = { email = \"email\" } }]\n\
    allow_uniqueness_loss = true\n";

const SECRET: &str = "sekr3t-stream-key-5d2a";

/// `acme`: tenant 1's users, `spy` then `anon` with a secret key; `other`
/// may run only `filter`.
fn policy(dir: &Path, acme_plugins: &str) -> PathBuf {
    let key = dir.join("anon.key");
    std::fs::write(&key, format!("{SECRET}\n")).unwrap();
    let (anon, spy, filter) = (wasm("anonymize"), wasm("row_hostile"), wasm("where_filter"));
    // A policy may not give parameters to a plugin the tenant does not run.
    let anon_params = match acme_plugins.contains("anon") {
        true => format!(
            "params.anon = {{ key = {{ file = \"{}\" }} }}\n",
            key.display()
        ),
        false => String::new(),
    };
    let text = format!(
        "[plugins.anon]\nsha256 = \"{}\"\nlocation = \"{}\"\n\
         [plugins.spy]\nsha256 = \"{}\"\nlocation = \"{}\"\n\
         [plugins.filter]\nsha256 = \"{}\"\nlocation = \"{}\"\n\n\
         [tenants.acme]\nplugins = [{acme_plugins}]\n{anon_params}\
         params.spy = {{ reject-on = \"OUT\" }}\n\
         scope = {{ tables = [\"public.users\"], where = \"tenant_id = 1\" }}\n\
         limits = {{ instances = 2 }}\n\n\
         [tenants.other]\nplugins = [\"filter\"]\nscope = {{ tables = [\"public.*\"] }}\n",
        digest(&anon),
        anon.display(),
        digest(&spy),
        spy.display(),
        digest(&filter),
        filter.display(),
    );
    let path = dir.join(format!("policy-{}.toml", acme_plugins.len()));
    std::fs::write(&path, text).unwrap();
    path
}

/// `host stream SUB --dir D ARGS` (no policy unless `args` give one).
fn stream(f: &Fixture, sub: &str, args: &[&str], cache: &Path) -> Output {
    let mut c: Command = host();
    c.args(["stream", sub, "--dir"])
        .arg(f.sdir())
        .args(args)
        .env("HOST_CACHE_DIR", cache);
    c.output_within(LIMIT)
}

fn clone_args<'a>(f: &'a Fixture, jobs: &'a str, pol: &'a str, audit: &'a str) -> Vec<&'a str> {
    vec![
        "-c",
        jobs,
        "--job",
        "stream",
        "--slot-name",
        &f.slot,
        "--policy",
        pol,
        "--audit",
        audit,
    ]
}

fn no_secret(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "the secret is in {what}:\n{text}");
}

/// Every file under `dir`, as text (lossy).
fn files_text(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out += &files_text(&p);
        } else {
            out += &String::from_utf8_lossy(&std::fs::read(&p).unwrap());
        }
    }
    out
}

fn audit_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn slot_exists(f: &Fixture) -> bool {
    f.src
        .client()
        .query_opt(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
            &[&f.slot],
        )
        .unwrap()
        .is_some()
}

#[test]
fn a_tenants_stream_sees_only_its_rows_and_equals_a_tenant_xmat() {
    let f = Fixture::bare("tenant_rows", SOURCE, TABLES);
    let pol = policy(f.dir.path(), "\"spy\", \"anon\"");
    let cache = f.dir.path().join("cache");
    let audit = f.dir.path().join("audit.jsonl");
    let (jobs, pol_s, audit_s) = (s(&f.jobs), s(&pol), s(&audit));
    let mut said = String::new();

    let out = stream(
        &f,
        "clone",
        &clone_args(&f, &jobs, &pol_s, &audit_s),
        &cache,
    );
    assert!(out.status.success(), "clone: {}", stderr(&out));
    said += &(stdout(&out) + &stderr(&out));

    // Changes inside and outside acme's scope.
    f.sql(
        "UPDATE users SET name = 'OUT' WHERE tenant_id <> 1;
         INSERT INTO users VALUES (1001, 2, 'new2@x.org', 'OUT');
         INSERT INTO users VALUES (1002, 1, 'new1@x.org', 'in');
         UPDATE users SET tenant_id = 2, name = 'OUT' WHERE id = 3;   -- out of acme's rows
         UPDATE users SET tenant_id = 1, name = 'moved in' WHERE id = 4;  -- into them
         DELETE FROM users WHERE id IN (5, 6);                        -- 5 is tenant 3's
         UPDATE users SET email = 'changed@x.org' WHERE id = 9;
         UPDATE vault SET note = 'OUT';                               -- not acme's table
         INSERT INTO vault VALUES (2, 1, 'OUT');",
    );
    let lsn = f.lsn();
    let out = stream(
        &f,
        "follow",
        &[
            "--endpos", &lsn, "--resume", "--policy", &pol_s, "--audit", &audit_s, "--json",
        ],
        &cache,
    );
    assert!(out.status.success(), "follow: {}", stderr(&out));
    said += &(stdout(&out) + &stderr(&out));

    // The oracle: a fresh tenant-bound `host xmat` of the same job.
    f.assert_matches_oracle_with(&["--policy", &pol_s]);
    let ids = f.dst_rows("SELECT id FROM app.users");
    let want = f
        .src
        .client()
        .query(
            "SELECT id::text FROM users WHERE tenant_id = 1 ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>();
    let mut ids_sorted = ids.clone();
    ids_sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(ids_sorted, want_sorted, "exactly tenant 1's users");
    assert!(ids.contains(&"4".to_string()) && !ids.contains(&"3".to_string()));
    assert!(
        f.dst_rows("SELECT email FROM app.users WHERE id = 9")[0] != "changed@x.org",
        "emails are anonymized"
    );
    assert!(
        f.dst_rows(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'app'"
        ) == ["users"],
        "only acme's table"
    );

    // The audit: a line per batch of acme's plugins, as xmat's.
    let lines = audit_lines(&audit);
    let stream_lines: Vec<&Value> = lines.iter().filter(|l| l["command"] == "stream").collect();
    assert!(!stream_lines.is_empty(), "{lines:?}");
    for l in &stream_lines {
        assert_eq!(l["tenant"], "acme", "{l}");
        assert_eq!(l["unit"]["table"]["table"], "users", "{l}");
        assert_eq!(l["plugins"][1]["sha256"], digest(&wasm("anonymize")), "{l}");
        assert_eq!(l["outcome"], "ok", "{l}");
    }
    let records: u64 = stream_lines
        .iter()
        .map(|l| l["records_in"].as_u64().unwrap())
        .sum();
    // 1002 inserted, 4 moved in, 9 updated: only acme's new rows went in
    // (3 moved out and 6 deleted went by their keys, without the plugins;
    // no other tenant's row, not even its key).
    assert_eq!(records, 3, "{stream_lines:?}");

    // The control: the spy does stop the stream on a row of acme's that holds `OUT`.
    f.sql("UPDATE users SET name = 'OUT' WHERE id = 1002");
    let lsn = f.lsn();
    let out = stream(
        &f,
        "follow",
        &[
            "--endpos", &lsn, "--resume", "--policy", &pol_s, "--audit", &audit_s,
        ],
        &cache,
    );
    assert_fails(&out, 3, &["the row holds `OUT`", "table users"]);
    said += &(stdout(&out) + &stderr(&out));
    let last = audit_lines(&audit).pop().unwrap();
    assert_eq!(last["outcome"], "failed", "{last}");
    assert_eq!(last["rejected"], 1, "{last}");

    // The stream is the tenant's: not without its policy, not as another tenant.
    let out = stream(&f, "follow", &["--endpos", &lsn, "--resume"], &cache);
    assert_fails(&out, 1, &["tenant `acme`", "only under a policy"]);
    let out = stream(
        &f,
        "apply",
        &["--endpos", &lsn, "--policy", &pol_s, "--tenant", "other"],
        &cache,
    );
    assert_fails(&out, 1, &["tenant `acme`", "--tenant says `other`"]);
    // Flags the policy decides are refused beside it (a usage error).
    let out = stream(
        &f,
        "apply",
        &[
            "--endpos",
            &lsn,
            "--policy",
            &pol_s,
            "--plugin-memory",
            "1GiB",
        ],
        &cache,
    );
    assert_fails(
        &out,
        2,
        &["--plugin-memory cannot be combined with --policy"],
    );
    // A policy that no longer allows `anon` to acme stops it before compiling.
    let narrowed = policy(f.dir.path(), "\"spy\"");
    let fresh = f.dir.path().join("fresh-cache");
    let out = stream(
        &f,
        "apply",
        &[
            "--endpos",
            &lsn,
            "--policy",
            &s(&narrowed),
            "--audit",
            &audit_s,
        ],
        &fresh,
    );
    assert_fails(&out, 1, &["tenant `acme` may not run plugin `anon`"]);
    assert!(!fresh.exists(), "nothing compiled or cached");
    assert_eq!(audit_lines(&audit).pop().unwrap()["outcome"], "refused");

    // No secret anywhere: output, status, the stream's files, the audit.
    let status = stream(&f, "status", &["--json", "--source", &f.src.dsn], &cache);
    said += &(stdout(&status) + &stderr(&status));
    no_secret("the output", &said);
    no_secret("the stream directory", &files_text(&f.sdir()));
    no_secret("the audit log", &std::fs::read_to_string(&audit).unwrap());

    let out = stream(
        &f,
        "cleanup",
        &["--source", &f.src.dsn, "--target", &f.dst.dsn],
        &cache,
    );
    assert!(out.status.success(), "cleanup: {}", stderr(&out));
    assert!(!slot_exists(&f));
}

#[test]
fn a_stream_of_what_the_tenant_may_not_run_or_see_is_refused_before_anything_exists() {
    let f = Fixture::bare("tenant_refuse", SOURCE, TABLES);
    let pol = policy(f.dir.path(), "\"spy\", \"anon\"");
    let cache = f.dir.path().join("cache");
    let audit = f.dir.path().join("audit.jsonl");
    let (pol_s, audit_s) = (s(&pol), s(&audit));
    let entries = |dir: &Path| std::fs::read_dir(dir).map_or(0, |d| d.count());
    let with = |name: &str, tables: &str| {
        let path = f.dir.path().join(name);
        std::fs::write(&path, stream_util::job_file(&f.src.dsn, &f.dst.dsn, tables)).unwrap();
        s(&path)
    };
    let refused = |jobs: &str, sub: &str| {
        let out = stream(&f, sub, &clone_args(&f, jobs, &pol_s, &audit_s), &cache);
        assert!(!f.sdir().join("stream.json").exists());
        assert!(!slot_exists(&f), "no slot for a refused stream");
        out
    };

    // Allowed for `other`, not for acme: refused with zero compilations.
    let jobs = with(
        "filter.toml",
        "tenant = \"acme\"\n[\"{job}\".tables.users]\nplugins = [\"filter\"]\n",
    );
    for sub in ["setup", "clone"] {
        let out = refused(&jobs, sub);
        assert_fails(
            &out,
            1,
            &["job stream, table users: tenant `acme` may not run plugin `filter`"],
        );
    }
    assert_eq!(entries(&cache), 0, "nothing compiled or cached");
    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for l in &lines {
        assert_eq!(l["command"], "stream");
        assert_eq!(l["outcome"], "refused");
        assert_eq!(l["unit"], "setup");
        assert_eq!(l["tenant"], "acme");
    }

    // A table outside acme's scope, named by the job.
    let jobs = with(
        "vault.toml",
        "tenant = \"acme\"\n[\"{job}\".tables.vault]\n",
    );
    let out = refused(&jobs, "setup");
    assert_fails(
        &out,
        1,
        &["table public.vault is outside tenant `acme`'s scope"],
    );

    // A stream set up without a tenant does not run under a policy.
    let jobs = with("plain.toml", "[\"{job}\".tables.users]\n");
    let out = stream(
        &f,
        "setup",
        &["-c", &jobs, "--job", "stream", "--slot-name", &f.slot],
        &cache,
    );
    assert!(out.status.success(), "setup: {}", stderr(&out));
    let out = stream(
        &f,
        "apply",
        &["--policy", &pol_s, "--target", &f.dst.dsn],
        &cache,
    );
    assert_fails(&out, 1, &["was set up without a tenant"]);
    let out = stream(
        &f,
        "cleanup",
        &["--source", &f.src.dsn, "--target", &f.dst.dsn],
        &cache,
    );
    assert!(out.status.success(), "cleanup: {}", stderr(&out));
    assert!(!slot_exists(&f));
}
