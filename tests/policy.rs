//! Issue 14, a multi-tenant policy (first part: one tenant per run): `host
//! policy check` lists every problem with its line; a tenant only runs the
//! builds the operator allowed it, refused before anything is compiled or
//! cached; its plugins only see (and only write) its own collections; its
//! limits are the policy's; its secrets reach no output.

#[rustfmt::skip]
mod util;
mod stac_util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use stac_util::{add_collection, count, item, migrated, ndjson, ok, s};
use util::{host, reject_lines, sha256_file as digest, stderr, stdout, wasm};

const SECRET: &str = "TOPSECRET-4d9a1c7e";

/// A policy with tenants `acme` (collections `acme-*`) and `globex`
/// (`globex`); `tenant_extra` is added to acme's table.
fn write_policy(dir: &Path, acme_plugins: &str, acme_extra: &str) -> PathBuf {
    let hostile = wasm("hostile");
    let set = wasm("set_collection");
    let anon = wasm("anonymize");
    let text = format!(
        r#"[budget]
memory = "1GiB"

[plugins.hostile]
sha256 = "{}"
location = "{}"

[plugins.set_collection]
sha256 = "{}"
location = "{}"

[plugins.anonymize]
sha256 = "{}"
location = "{}"

[tenants.acme]
plugins = {acme_plugins}
scope = {{ collections = ["acme-*"] }}
{acme_extra}

[tenants.globex]
plugins = ["anonymize"]
scope = {{ collections = ["globex"] }}
"#,
        digest(&hostile),
        hostile.display(),
        digest(&set),
        set.display(),
        digest(&anon),
        anon.display(),
    );
    let path = dir.join("policy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `host ARGS` with a compile cache of its own (to see what it compiled).
fn run_cached(args: &[&str], cache: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = host();
    cmd.args(args).env("HOST_CACHE_DIR", cache);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn cache_entries(cache: &Path) -> usize {
    fn walk(p: &Path) -> usize {
        match std::fs::read_dir(p) {
            Err(_) => 0,
            Ok(rd) => rd
                .map(|e| {
                    let e = e.unwrap();
                    if e.file_type().unwrap().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum(),
        }
    }
    walk(cache)
}

#[test]
fn policy_check_lists_every_problem_by_line_and_summarises_without_secret_values() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[plugins.a]\nsha256 = \"xyz\"\n[tenants.t]\nplugins = [\"a\", \"ghost\"]\n\
         params.a = { key = { env = \"HOST_TEST_POLICY_UNSET\" } }\n",
    )
    .unwrap();
    let out = host().args(["policy", "check", s(&bad)]).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(
        lines[0].starts_with(&format!("{}:2: plugin `a`: sha256", bad.display())),
        "{err}"
    );
    assert!(
        lines[1].contains(":4: tenant `t` lists plugin `ghost`"),
        "{err}"
    );
    assert!(
        lines[2].contains(":5: ") && lines[2].contains("HOST_TEST_POLICY_UNSET is not set"),
        "{err}"
    );
    assert!(lines[3].contains("has 3 problems"), "{err}");

    let good = write_policy(
        dir.path(),
        r#"["hostile"]"#,
        "params.hostile = { mode = { env = \"ACME_MODE\" } }",
    );
    let mode = format!("echo:{SECRET}");
    for args in [
        vec!["policy", "check", s(&good)],
        vec!["policy", "check", s(&good), "--json"],
    ] {
        let mut cmd = host();
        cmd.args(&args).env("ACME_MODE", &mode);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!all.contains(SECRET), "{all}");
        assert!(all.contains("ACME_MODE"), "the source is named: {all}");
    }
    let out = host()
        .args(["policy", "check", s(&good), "--json"])
        .env("ACME_MODE", &mode)
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["budget_memory_bytes"], 1u64 << 30);
    assert_eq!(v["tenants"][0]["name"], "acme");
    assert_eq!(
        v["tenants"][0]["plugins"][0]["sha256"],
        digest(&wasm("hostile"))
    );
}

#[test]
fn a_plugin_not_allowed_for_the_tenant_or_with_another_digest_is_refused_before_compiling() {
    let db = migrated("policy_refuse");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "acme-a");
    let items = ndjson(
        dir.path(),
        "items.ndjson",
        &[item("i1", "acme-a", 1.0, 2.0, 1)],
    );
    let cache = dir.path().join("cache");
    let policy = write_policy(dir.path(), r#"["set_collection"]"#, "");
    let audit = dir.path().join("audit.jsonl");

    // anonymize is allowed, but for globex only.
    let out = run_cached(
        &[
            "load",
            "items",
            s(&items),
            "--dsn",
            &db.dsn,
            "--policy",
            s(&policy),
            "--tenant",
            "acme",
            "--plugin",
            "anonymize",
            "--audit",
            s(&audit),
        ],
        &cache,
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("tenant `acme` may not run plugin `anonymize`")
            && err.contains("set_collection"),
        "{err}"
    );
    // A path is not a way around the names.
    let anon = wasm("anonymize");
    let out = run_cached(
        &[
            "load",
            "items",
            s(&items),
            "--dsn",
            &db.dsn,
            "--policy",
            s(&policy),
            "--tenant",
            "acme",
            "--plugin",
            s(&anon),
        ],
        &cache,
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // An unknown tenant.
    let out = run_cached(
        &[
            "load",
            "items",
            s(&items),
            "--dsn",
            &db.dsn,
            "--policy",
            s(&policy),
            "--tenant",
            "initech",
        ],
        &cache,
        &[],
    );
    assert!(
        stderr(&out).contains("no tenant `initech` (it has: acme, globex)"),
        "{}",
        stderr(&out)
    );

    // The policy pins set_collection to anonymize's digest: the bytes are refused.
    let text = std::fs::read_to_string(&policy).unwrap().replacen(
        &digest(&wasm("set_collection")),
        &digest(&anon),
        1,
    );
    std::fs::write(&policy, text).unwrap();
    let out = run_cached(
        &[
            "load",
            "items",
            s(&items),
            "--dsn",
            &db.dsn,
            "--policy",
            s(&policy),
            "--tenant",
            "acme",
            "--audit",
            s(&audit),
        ],
        &cache,
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("sha256") || err.contains("SHA-256"), "{err}");

    // Both refusals are audited as setups that ran nothing.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (l, why) in lines
        .iter()
        .zip(["may not run plugin `anonymize`", "was pinned"])
    {
        assert_eq!(l["command"], "load");
        assert_eq!(l["tenant"], "acme");
        assert_eq!(l["unit"], "setup");
        assert_eq!(l["outcome"], "refused");
        assert!(l["error"].as_str().unwrap().contains(why), "{l}");
    }

    assert_eq!(cache_entries(&cache), 0, "nothing was compiled or cached");
    assert_eq!(count(&db, "SELECT count(*) FROM host.items"), 0);
}

#[test]
fn a_tenants_plugins_see_and_write_only_its_collections() {
    let db = migrated("policy_scope");
    let dir = tempfile::tempdir().unwrap();
    for c in ["acme-a", "acme-b", "globex"] {
        add_collection(&db, dir.path(), c);
    }
    let items = ndjson(
        dir.path(),
        "items.ndjson",
        &[
            item("a1", "acme-a", 1.0, 2.0, 1),
            item("g1", "globex", 1.0, 2.0, 1),
            item("b1", "acme-b", 1.0, 2.0, 1),
            item("g2", "globex", 1.0, 2.0, 2),
        ],
    );
    let policy = write_policy(
        dir.path(),
        r#"["hostile", "set_collection"]"#,
        "params.hostile = { mode = \"reject-seen\" }\n\
         params.set_collection = { collection = \"acme-b\" }\n\
         limits = { instances = 2 }",
    );
    let rejects = dir.path().join("rejects.ndjson");
    let out = host()
        .args([
            "load",
            "items",
            s(&items),
            "--dsn",
            &db.dsn,
            "--policy",
            s(&policy),
            "--tenant",
            "acme",
            "--plugin",
            "hostile",
            "--reject-file",
            s(&rejects),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let seen: BTreeSet<(String, String, String)> = reject_lines(&rejects)
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["stage"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> = [
        ("a1", "plugin hostile", "saw a1"),
        ("b1", "plugin hostile", "saw b1"),
        (
            "g1",
            "scope",
            "collection \"globex\" is outside tenant `acme`'s scope",
        ),
        (
            "g2",
            "scope",
            "collection \"globex\" is outside tenant `acme`'s scope",
        ),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.into(), b.into(), c.into()))
    .collect();
    assert_eq!(seen, expected, "the plugin saw only acme's items");

    // The tenant's whole chain (no --plugin): set_collection moves items into
    // acme-b, which is in scope; into globex, which is not.
    let policy = write_policy(
        dir.path(),
        r#"["set_collection"]"#,
        "params.set_collection = { collection = \"acme-b\" }",
    );
    let acme_only = ndjson(
        dir.path(),
        "acme.ndjson",
        &[
            item("a1", "acme-a", 1.0, 2.0, 1),
            item("a2", "acme-a", 1.0, 2.0, 1),
        ],
    );
    let out = host()
        .args([
            "load",
            "items",
            s(&acme_only),
            "--dsn",
            &db.dsn,
            "--policy",
            s(&policy),
            "--tenant",
            "acme",
            "--json",
        ])
        .output()
        .unwrap();
    ok(&out);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM host.items WHERE collection = 'acme-b'"
        ),
        2
    );
    let policy = write_policy(
        dir.path(),
        r#"["set_collection"]"#,
        "params.set_collection = { collection = \"globex\" }",
    );
    let out = host()
        .args([
            "load",
            "items",
            s(&acme_only),
            "--dsn",
            &db.dsn,
            "--policy",
            s(&policy),
            "--tenant",
            "acme",
            "--method",
            "upsert",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("collection \"globex\" is outside tenant `acme`'s scope"),
        "{err}"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM host.items WHERE collection = 'globex'"
        ),
        0
    );
}

#[test]
fn secrets_reach_no_output_and_the_tenants_limits_apply() {
    let db = migrated("policy_secrets");
    let dir = tempfile::tempdir().unwrap();
    add_collection(&db, dir.path(), "acme-a");
    let items = ndjson(
        dir.path(),
        "items.ndjson",
        &[item("a1", "acme-a", 1.0, 2.0, 1)],
    );
    let policy = write_policy(
        dir.path(),
        r#"["hostile"]"#,
        "params.hostile = { mode = { env = \"ACME_MODE\" } }",
    );
    let rejects = dir.path().join("rejects.ndjson");
    let mode = format!("echo:{SECRET}");
    // The plugin echoes its secret parameter in a reject reason and on stderr.
    for extra in [vec!["--reject-file", s(&rejects)], vec![], vec!["-vv"]] {
        let mut args = vec![
            "load",
            "items",
            s(&items),
            "--dsn",
            &db.dsn,
            "--policy",
            s(&policy),
            "--tenant",
            "acme",
        ];
        args.extend(extra.iter().copied());
        let out = host().args(&args).env("ACME_MODE", &mode).output().unwrap();
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!all.contains(SECRET), "{all}");
        // Shown hidden wherever it surfaces: the plugin's stderr in the log,
        // and (without a reject file) the error naming the rejected item.
        assert!(all.contains("my mode is ***"), "{all}");
    }
    let file = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        file.contains("my mode is ***") && !file.contains(SECRET),
        "{file}"
    );

    // A batch failure that repeats the secret reaches the audit log hidden.
    let audit = dir.path().join("audit.jsonl");
    let out = host()
        .args([
            "load",
            "items",
            s(&items),
            "--dsn",
            &db.dsn,
            "--policy",
            s(&policy),
            "--tenant",
            "acme",
            "--reject-file",
            s(&rejects),
            "--audit",
            s(&audit),
        ])
        .env("ACME_MODE", format!("error-echo:{SECRET}"))
        .output()
        .unwrap();
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(!all.contains(SECRET), "{all}");
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(!log.contains(SECRET), "{log}");
    let line: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(line["tenant"], "acme");
    assert_eq!(line["outcome"], "failed");
    assert_eq!(line["rejected"], 1);
    assert!(
        line["error"].as_str().unwrap().contains("my mode is ***"),
        "{line}"
    );

    // The tenant's memory cap, not the flags' default.
    let policy = write_policy(
        dir.path(),
        r#"["hostile"]"#,
        "params.hostile = { mode = \"alloc\" }\nlimits = { memory = \"32MiB\" }",
    );
    let out = host()
        .args([
            "load",
            "items",
            s(&items),
            "--dsn",
            &db.dsn,
            "--policy",
            s(&policy),
            "--tenant",
            "acme",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // Named where it is set: the policy's key, not a flag the policy forbids.
    assert!(
        err.contains(&format!(
            "memory limit (32MiB, tenant `acme`'s limits.memory in policy {})",
            policy.display()
        )) && !err.contains("--plugin-memory"),
        "{err}"
    );

    // Flags the policy decides are usage errors with it.
    let out = host()
        .args([
            "load",
            "items",
            s(&items),
            "--dsn",
            &db.dsn,
            "--policy",
            s(&policy),
            "--tenant",
            "acme",
            "--plugin-memory",
            "1GiB",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--plugin-memory cannot be combined with --policy"));
    let out = host()
        .args([
            "load",
            "items",
            s(&items),
            "--dsn",
            &db.dsn,
            "--tenant",
            "acme",
        ])
        .env_remove("HOST_POLICY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(count(&db, "SELECT count(*) FROM host.items"), 0);
}
