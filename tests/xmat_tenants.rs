//! Issue 14 for `host xmat`: jobs bound to a policy's tenants. A job runs
//! only its tenant's pinned plugins, reads only its tenant's tables and rows,
//! never shows a secret, and a noisy tenant's job fails alone while another
//! tenant's job, beside it, copies exactly what it copies on its own.

mod util;
mod xmat_util;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use util::{host, sha256_file as digest, stderr, stdout, wasm};
use xmat_util::{Pair, col, failed, ok, schemas};

/// User `g` belongs to tenant `1 + g % 3`; each order to its user's tenant.
/// `vault` is nobody's business but the operator's.
const SOURCE: &str = "
CREATE TABLE users (id int PRIMARY KEY, tenant_id int NOT NULL, email text UNIQUE, name text);
INSERT INTO users SELECT g, 1 + g % 3, 'u' || g || '@x.org', 'name ' || g
  FROM generate_series(1, 3000) g;
CREATE TABLE orders (id int PRIMARY KEY, tenant_id int NOT NULL, user_id int REFERENCES users,
                     total numeric);
INSERT INTO orders SELECT g, 1 + (1 + g % 3000) % 3, 1 + g % 3000, g * 1.5
  FROM generate_series(1, 6000) g;
CREATE TABLE vault (id int PRIMARY KEY, tenant_id int, note text);
INSERT INTO vault VALUES (1, 1, 'operator only');
CREATE VIEW vault_view AS SELECT * FROM vault;
";

const SECRET: &str = "sekr3t-anon-key-7c1e";

/// A policy: `acme` (tenant 1) anonymizes emails with a secret key, behind
/// a spy that rejects any row of user 2 (tenant 3) — so a row outside its
/// scope would fail its table; `noisy` (tenant 2) runs `row_hostile` with
/// `noisy_params` and `noisy_limits`; `other` may run only `where_filter`.
fn policy(dir: &Path, noisy_params: &str, noisy_limits: &str) -> PathBuf {
    let key = dir.join("anon.key");
    std::fs::write(&key, format!("{SECRET}\n")).unwrap();
    let (anon, hostile, filter) = (wasm("anonymize"), wasm("row_hostile"), wasm("where_filter"));
    let text = format!(
        "[plugins.anon]\nsha256 = \"{}\"\nlocation = \"{}\"\n\
         [plugins.spy]\nsha256 = \"{}\"\nlocation = \"{}\"\n\
         [plugins.filter]\nsha256 = \"{}\"\nlocation = \"{}\"\n\n\
         [tenants.acme]\nplugins = [\"spy\", \"anon\"]\n\
         params.anon = {{ key = {{ file = \"{}\" }} }}\n\
         params.spy = {{ reject-on = \"u2@x.org\" }}\n\
         scope = {{ tables = [\"public.users\", \"public.orders\"], where = \"tenant_id = 1\" }}\n\
         limits = {{ instances = 2 }}\n\n\
         [tenants.noisy]\nplugins = [\"spy\"]\nparams.spy = {{ {noisy_params} }}\n\
         scope = {{ tables = [\"public.*\"], where = \"tenant_id = 2\" }}\n\
         limits = {{ {noisy_limits} }}\n\n\
         [tenants.other]\nplugins = [\"filter\"]\nscope = {{ tables = [\"public.*\"] }}\n",
        digest(&anon),
        anon.display(),
        digest(&hostile),
        hostile.display(),
        digest(&filter),
        filter.display(),
        key.display(),
    );
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// acme's job: every table it may see, emails anonymized behind the spy.
fn acme_job(p: &Pair, name: &str, schema: &str) -> String {
    p.job(
        name,
        schema,
        &format!(
            "tenant = \"acme\"\n[\"{name}\".tables.\"*\"]\n\
             [\"{name}\".tables.users]\n\
             plugins = [\"spy\", {{ plugin = \"anon\", params = {{ email = \"email\" }} }}]\n\
             allow_uniqueness_loss = true  # the spy declares nothing\n"
        ),
    )
}

/// noisy's job: users through its misbehaving spy.
fn noisy_job(p: &Pair, name: &str, schema: &str) -> String {
    p.job(
        name,
        schema,
        &format!(
            "tenant = \"noisy\"\n[\"{name}\".tables.users]\nplugins = [\"spy\"]\n\
             allow_uniqueness_loss = true\n"
        ),
    )
}

fn xmat(file: &Path, pattern: &str, policy: &Path, extra: &[&str], cache: &Path) -> Output {
    host()
        .args(["xmat", pattern, "-c"])
        .arg(file)
        .arg("--policy")
        .arg(policy)
        .args(extra)
        .env("HOST_CACHE_DIR", cache)
        .output()
        .unwrap()
}

fn audit_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn no_secret(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "the secret is in {what}:\n{text}");
}

/// Every column of a target table, as text, in key order.
fn table(p: &Pair, schema: &str, t: &str) -> Vec<String> {
    col(
        &p.dst,
        &format!("SELECT x::text FROM {schema}.{t} x ORDER BY id"),
    )
}

#[test]
fn a_tenants_job_sees_only_its_tables_and_rows_and_never_shows_its_secret() {
    let p = Pair::new("tenant_scope", SOURCE);
    let pol = policy(p.dir.path(), "upper = \"name\"", "time = \"1s\"");
    let file = p.file("jobs.toml", &acme_job(&p, "acme:copy", "acme"));
    let cache = p.dir.path().join("cache");
    let audit = p.dir.path().join("audit.jsonl");

    // The plan: the tenant, its predicate on every SELECT, the operator's
    // table and view not copied, no secret.
    let plan = xmat(
        &file,
        "acme:*",
        &pol,
        &["--dry-run", "--json", "--audit", audit.to_str().unwrap()],
        &cache,
    );
    ok(&plan);
    no_secret("the --json plan", &stdout(&plan));
    let v: Value = serde_json::from_str(&stdout(&plan)).unwrap();
    let job = &v["jobs"][0];
    assert_eq!(job["tenant"], "acme");
    let tables: Vec<&str> = job["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tables, ["orders", "users"], "{job}");
    for t in job["tables"].as_array().unwrap() {
        assert!(
            t["select"].as_str().unwrap().contains("(tenant_id = 1)"),
            "{t}"
        );
    }
    let skipped = job["skipped"].to_string();
    assert!(
        skipped.contains("vault") && skipped.contains("outside tenant `acme`'s scope"),
        "{skipped}"
    );
    let text = xmat(&file, "acme:*", &pol, &["--dry-run"], &cache);
    ok(&text);
    no_secret("the plan", &(stdout(&text) + &stderr(&text)));
    assert!(stdout(&text).contains("tenant: acme"), "{}", stdout(&text));

    // The run: the spy would reject user 2's row (tenant 3) if it saw it.
    let out = xmat(
        &file,
        "acme:*",
        &pol,
        &["--json", "--audit", audit.to_str().unwrap()],
        &cache,
    );
    ok(&out);
    no_secret("the output", &(stdout(&out) + &stderr(&out)));
    let ids = col(&p.dst, "SELECT id FROM acme.users ORDER BY id");
    assert_eq!(
        ids,
        col(
            &p.src,
            "SELECT id FROM users WHERE tenant_id = 1 ORDER BY id"
        )
    );
    assert_eq!(
        col(&p.dst, "SELECT id FROM acme.orders ORDER BY id"),
        col(
            &p.src,
            "SELECT id FROM orders WHERE tenant_id = 1 ORDER BY id"
        )
    );
    assert!(!schemas(&p.dst).is_empty());
    assert_eq!(
        col(
            &p.dst,
            "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'vault%'"
        ),
        ["0"]
    );
    // Emails anonymized (with the policy's key), names untouched.
    assert_eq!(
        col(
            &p.dst,
            "SELECT count(*) FROM acme.users WHERE email LIKE 'u%@x.org' OR name NOT LIKE 'name %'"
        ),
        ["0"]
    );

    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 2, "a line per table: {lines:?}");
    let users = lines
        .iter()
        .find(|l| l["unit"]["table"]["table"] == "users");
    let users = users.expect("users' line");
    assert_eq!(users["command"], "xmat");
    assert_eq!(users["tenant"], "acme");
    assert_eq!(users["outcome"], "ok");
    assert_eq!(users["records_in"], 1000);
    assert_eq!(users["records_out"], 1000);
    assert_eq!(users["plugins"].as_array().unwrap().len(), 2);
    assert_eq!(
        users["plugins"][1]["sha256"],
        digest(&wasm("anonymize")).as_str()
    );
    assert!(users["peak_memory"].as_u64().unwrap() > 0, "{users}");
    no_secret("the audit log", &std::fs::read_to_string(&audit).unwrap());

    // Named outright, the operator's table is refused, by name.
    let file = p.file(
        "vault.toml",
        &p.job(
            "acme:vault",
            "acme_vault",
            "tenant = \"acme\"\n[\"acme:vault\".tables.vault]\n",
        ),
    );
    let err = failed(&xmat(&file, "acme:*", &pol, &[], &cache));
    assert!(
        err.contains("table public.vault is outside tenant `acme`'s scope"),
        "{err}"
    );
}

#[test]
fn a_plugin_the_tenant_may_not_run_is_refused_before_anything_is_compiled() {
    let p = Pair::new("tenant_refuse", SOURCE);
    let pol = policy(p.dir.path(), "upper = \"name\"", "time = \"1s\"");
    let cache = p.dir.path().join("cache");
    let audit = p.dir.path().join("audit.jsonl");
    let job = |plugin: &str| {
        p.job(
            "acme:x",
            "acme",
            &format!("tenant = \"acme\"\n[\"acme:x\".tables.users]\nplugins = [{plugin}]\n"),
        )
    };
    let entries = |dir: &Path| std::fs::read_dir(dir).map_or(0, |d| d.count());

    // Allowed for `other`, not for acme.
    let file = p.file("a.toml", &job("\"filter\""));
    let out = xmat(
        &file,
        "*",
        &pol,
        &["--audit", audit.to_str().unwrap()],
        &cache,
    );
    let err = failed(&out);
    assert!(
        err.contains("job acme:x, table users: tenant `acme` may not run plugin `filter`"),
        "{err}"
    );
    assert_eq!(entries(&cache), 0, "nothing compiled or cached");
    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["outcome"], "refused");
    assert_eq!(lines[0]["unit"], "setup");
    assert_eq!(lines[0]["tenant"], "acme");

    // Pinned by the job to another build.
    let file = p.file(
        "b.toml",
        &job(&format!(
            "{{ plugin = \"anon\", sha256 = \"{}\" }}",
            "ab".repeat(32)
        )),
    );
    let err = failed(&xmat(&file, "*", &pol, &[], &cache));
    assert!(err.contains("is pinned to sha256:abab"), "{err}");

    // A policy whose digest is not the file's: refused by the loader, uncompiled.
    let text = std::fs::read_to_string(&pol)
        .unwrap()
        .replace(&digest(&wasm("anonymize")), &"cd".repeat(32));
    let bad = p.file("bad-policy.toml", &text);
    let file = p.file(
        "c.toml",
        &job("{ plugin = \"anon\", params = { email = \"email\" } }"),
    );
    let err = failed(&xmat(
        &file,
        "*",
        &bad,
        &["--audit", audit.to_str().unwrap()],
        &cache,
    ));
    assert!(
        err.contains(&format!(
            "but {} was pinned; refusing to run it",
            "cd".repeat(32)
        )),
        "{err}"
    );
    let lines = audit_lines(&audit);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["outcome"], "refused");
    assert!(
        lines[1]["error"].as_str().unwrap().contains("was pinned"),
        "{lines:?}"
    );
    assert_eq!(entries(&cache), 0, "nothing compiled or cached");

    // Setting what the policy sets; a job without a tenant; a tenant without a policy.
    let file = p.file(
        "d.toml",
        &job("{ plugin = \"anon\", params = { key = \"mine\", email = \"email\" } }"),
    );
    let err = failed(&xmat(&file, "*", &pol, &[], &cache));
    assert!(
        err.contains("parameter `key` of plugin `anon` is set by policy"),
        "{err}"
    );
    let file = p.file("e.toml", &p.job("plain", "plain", "tables = [\"users\"]\n"));
    let err = failed(&xmat(&file, "*", &pol, &[], &cache));
    assert!(err.contains("job plain names no tenant"), "{err}");
    let file = p.file("f.toml", &job("\"filter\""));
    let out = host()
        .args(["xmat", "*", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    let err = failed(&out);
    assert!(err.contains("runs only under a policy"), "{err}");
    // A tenant cannot raise its own limits from the command line.
    let out = xmat(&file, "*", &pol, &["--plugin-time", "10s"], &cache);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--plugin-time cannot be combined with --policy"));
}

#[test]
fn a_noisy_tenants_job_fails_alone_beside_another_tenants() {
    let p = Pair::new("tenant_noisy", SOURCE);
    let cache = p.dir.path().join("cache");
    // noisy spins on its rows until its 200 ms per call run out.
    let pol = policy(p.dir.path(), "spin-on = \"2:100000\"", "time = \"200ms\"");
    let audit = p.dir.path().join("audit.jsonl");

    // acme alone: the reference.
    let solo = p.file("solo.toml", &acme_job(&p, "acme:solo", "acme_solo"));
    ok(&xmat(&solo, "*", &pol, &[], &cache));

    // noisy first in the file, a second noisy job after it, acme beside them.
    let text = noisy_job(&p, "noisy:1", "noisy1")
        + &noisy_job(&p, "noisy:2", "noisy2")
        + &acme_job(&p, "acme:beside", "acme_beside");
    let file = p.file("mixed.toml", &text);
    for parallel in ["1", "2"] {
        std::fs::remove_file(&audit).ok();
        p.dst
            .client()
            .batch_execute("DROP SCHEMA IF EXISTS acme_beside CASCADE")
            .unwrap();
        let out = xmat(
            &file,
            "*",
            &pol,
            &[
                "--parallel-jobs",
                parallel,
                "--json",
                "--audit",
                audit.to_str().unwrap(),
            ],
            &cache,
        );
        let err = failed(&out);
        assert!(
            err.contains("noisy:1") && err.contains("time limit"),
            "{err}"
        );
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let jobs = v["jobs"].as_array().unwrap();
        assert_eq!(jobs.len(), 3, "{v}");
        assert!(jobs[0]["error"].as_str().unwrap().contains("time limit"));
        // Run one at a time, noisy's second job never starts; two at a
        // time, it starts beside the first and fails the same way.
        let second = match parallel {
            "1" => jobs[1]["skipped"].as_str(),
            _ => jobs[1]["skipped"].as_str().or(jobs[1]["error"].as_str()),
        };
        assert!(
            second.is_some_and(|s| s.contains("an earlier job of tenant `noisy` failed")
                || s.contains("time limit")),
            "{v}"
        );
        assert_eq!(jobs[2]["job"], "acme:beside");
        assert!(jobs[2]["error"].is_null(), "{v}");

        // acme's copy is the solo one, row for row.
        for t in ["users", "orders"] {
            assert_eq!(
                table(&p, "acme_beside", t),
                table(&p, "acme_solo", t),
                "{t} (--parallel-jobs {parallel})"
            );
        }
        assert!(!schemas(&p.dst).iter().any(|s| s.starts_with("noisy")));
        let lines = audit_lines(&audit);
        let noisy: Vec<&Value> = lines.iter().filter(|l| l["tenant"] == "noisy").collect();
        assert!(!noisy.is_empty(), "{lines:?}");
        for l in noisy {
            assert_eq!(l["outcome"], "limit", "{l}");
            assert_eq!(l["limit"], "time", "{l}");
        }
        let acme: Vec<&Value> = lines.iter().filter(|l| l["tenant"] == "acme").collect();
        assert!(acme.iter().all(|l| l["outcome"] == "ok"), "{acme:?}");
    }
}

#[test]
fn a_tenants_plugin_cpu_for_the_run_is_capped() {
    let p = Pair::new("tenant_cpu", SOURCE);
    let cache = p.dir.path().join("cache");
    // One row of noisy's (user 4) costs far more than the 1 ms the run allows.
    let pol = policy(
        p.dir.path(),
        "spin-on = \"u4@x.org:300\"",
        "time = \"10s\", cpu = \"1ms\"",
    );
    let audit = p.dir.path().join("audit.jsonl");
    let file = p.file("jobs.toml", &noisy_job(&p, "noisy:cpu", "noisy_cpu"));
    let out = xmat(
        &file,
        "*",
        &pol,
        &["--audit", audit.to_str().unwrap()],
        &cache,
    );
    let err = failed(&out);
    assert!(
        err.contains("tenant `noisy` has used the 1ms of plugin CPU time"),
        "{err}"
    );
    let lines = audit_lines(&audit);
    assert_eq!(lines[0]["limit"], "cpu", "{lines:?}");
    assert!(
        lines[0]["cpu_seconds"].as_f64().unwrap() > 0.001,
        "{lines:?}"
    );
}
