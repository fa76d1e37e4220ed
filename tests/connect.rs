//! Connecting as libpq does: TLS modes and certificates against the local
//! TLS-only cluster (`scripts/pg`'s `tls`: hostssl only, a certificate for
//! `localhost` from a test CA, `certuser` logging in by client certificate),
//! the `PG*` variables and the password file.

mod util;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use util::*;

/// The TLS cluster's `host` database, by the name its certificate lists.
fn tls_dsn() -> String {
    std::env::var("HOST_DSN_TLS")
        .unwrap_or_else(|_| "postgresql://host:host@localhost:55434/host".into())
}

fn tls_port() -> u16 {
    url::Url::parse(&tls_dsn()).unwrap().port().unwrap()
}

/// The test CA, server, client and unrelated-CA files `scripts/pg` made.
fn cert(name: &str) -> String {
    let dir = std::env::var("HOST_TLS_CERTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".pg/tls/certs"));
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/pg start",
        p.display()
    );
    p.display().to_string()
}

/// `dsn` with more URL query parameters.
fn with(dsn: &str, params: &str) -> String {
    let sep = if dsn.contains('?') { '&' } else { '?' };
    format!("{dsn}{sep}{params}")
}

/// `host pgready` with no `PG*` variables but `env`, and `home` as HOME (so
/// no `~/.postgresql` or `~/.pgpass` of the machine's leaks in).
fn pgready(dsn: &str, env: &[(&str, &str)], home: &Path) -> Output {
    let mut c = host();
    for (k, _) in std::env::vars() {
        if k.starts_with("PG") {
            c.env_remove(k);
        }
    }
    c.env("HOME", home)
        .args(["pgready", "--timeout", "20s", "--dsn", dsn])
        .envs(env.iter().copied())
        .output()
        .expect("run host")
}

fn connected(o: &Output) {
    assert!(
        o.status.success() && stdout(o).contains("accepting connections"),
        "expected a connection:\n{}{}",
        stdout(o),
        stderr(o)
    );
}

/// The command failed and said `what`; it never shows the password.
fn refused(o: &Output, what: &str) -> String {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected a failure, got:\n{}",
        stdout(o)
    );
    assert!(err.contains(what), "expected `{what}` in:\n{err}");
    assert!(!err.contains("host:host@"), "a password shows:\n{err}");
    err
}

#[test]
fn sslmodes_against_a_tls_only_server() {
    let home = tempfile::tempdir().unwrap();
    let dsn = tls_dsn();
    // The server rejects connections without TLS, so these prove TLS was used.
    connected(&pgready(&with(&dsn, "sslmode=require"), &[], home.path()));
    connected(&pgready(&dsn, &[], home.path())); // libpq's default: prefer
    connected(&pgready(&with(&dsn, "sslmode=allow"), &[], home.path()));
    // Without TLS the server refuses, and pgready does not wait for a login
    // refusal to go away.
    let started = Instant::now();
    refused(
        &pgready(&with(&dsn, "sslmode=disable"), &[], home.path()),
        "no encryption",
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    // A server without TLS: require fails, prefer falls back.
    let plain = admin_dsn();
    refused(
        &pgready(&with(&plain, "sslmode=require"), &[], home.path()),
        "server does not support TLS",
    );
    connected(&pgready(&with(&plain, "sslmode=prefer"), &[], home.path()));
    // Unknown modes are named.
    refused(
        &pgready(&with(&dsn, "sslmode=verify_full"), &[], home.path()),
        "invalid sslmode `verify_full`",
    );
}

#[test]
fn verify_full_checks_the_ca_and_the_host_name() {
    let home = tempfile::tempdir().unwrap();
    let dsn = tls_dsn();
    let ca = cert("ca.crt");
    connected(&pgready(
        &with(&dsn, &format!("sslmode=verify-full&sslrootcert={ca}")),
        &[],
        home.path(),
    ));
    // The certificate names localhost, not 127.0.0.1: verify-full refuses,
    // verify-ca (the chain only) accepts. key=value form here.
    let by_ip = |mode: &str, root: &str| {
        format!(
            "host=127.0.0.1 port={} user=host password=host dbname=host sslmode={mode} sslrootcert='{root}'",
            tls_port()
        )
    };
    let err = refused(
        &pgready(&by_ip("verify-full", &ca), &[], home.path()),
        "not valid for name \"127.0.0.1\"",
    );
    assert!(err.contains("use sslmode=verify-ca"), "{err}");
    connected(&pgready(&by_ip("verify-ca", &ca), &[], home.path()));
    // A CA that did not sign the server's certificate.
    let other = cert("other-ca.crt");
    for mode in ["verify-full", "verify-ca", "require"] {
        // require checks the chain too when given a root certificate, as libpq.
        let err = refused(
            &pgready(
                &with(&dsn, &format!("sslmode={mode}&sslrootcert={other}")),
                &[],
                home.path(),
            ),
            "UnknownIssuer",
        );
        assert!(err.contains("other-ca.crt"), "{err}");
    }
    // No root certificate anywhere: a clear refusal, before connecting.
    let err = refused(
        &pgready(&with(&dsn, "sslmode=verify-full"), &[], home.path()),
        "sslrootcert",
    );
    assert!(err.contains(".postgresql/root.crt"), "{err}");
    refused(
        &pgready(
            &with(&dsn, "sslmode=verify-full&sslrootcert=/nonexistent/ca.crt"),
            &[],
            home.path(),
        ),
        "/nonexistent/ca.crt",
    );
    // libpq's default file, ~/.postgresql/root.crt.
    std::fs::create_dir(home.path().join(".postgresql")).unwrap();
    std::fs::copy(&ca, home.path().join(".postgresql/root.crt")).unwrap();
    connected(&pgready(
        &with(&dsn, "sslmode=verify-full"),
        &[],
        home.path(),
    ));
    // ... which also makes require check the chain (libpq's rule).
    std::fs::copy(&other, home.path().join(".postgresql/root.crt")).unwrap();
    refused(
        &pgready(&with(&dsn, "sslmode=require"), &[], home.path()),
        "UnknownIssuer",
    );
}

#[test]
fn client_certificates_log_in() {
    let home = tempfile::tempdir().unwrap();
    let ca = cert("ca.crt");
    let dsn = format!(
        "postgresql://certuser@localhost:{}/host?sslmode=verify-full&sslrootcert={ca}",
        tls_port()
    );
    connected(&pgready(
        &with(
            &dsn,
            &format!(
                "sslcert={}&sslkey={}",
                cert("client.crt"),
                cert("client.key")
            ),
        ),
        &[],
        home.path(),
    ));
    refused(
        &pgready(&dsn, &[], home.path()),
        "requires a valid client certificate",
    );
    // From the variables, and from libpq's default files.
    connected(&pgready(
        &dsn,
        &[
            ("PGSSLCERT", &cert("client.crt")),
            ("PGSSLKEY", &cert("client.key")),
        ],
        home.path(),
    ));
    let dir = home.path().join(".postgresql");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(cert("client.crt"), dir.join("postgresql.crt")).unwrap();
    std::fs::copy(cert("client.key"), dir.join("postgresql.key")).unwrap();
    connected(&pgready(&dsn, &[], home.path()));
    // As libpq: without sslkey, the key is ~/.postgresql/postgresql.key
    // wherever sslcert is.
    let elsewhere = home.path().join("mine.crt");
    std::fs::copy(cert("client.crt"), &elsewhere).unwrap();
    connected(&pgready(
        &with(&dsn, &format!("sslcert={}", elsewhere.display())),
        &[],
        home.path(),
    ));
    refused(
        &pgready(&with(&dsn, "sslcert=/nonexistent.crt"), &[], home.path()),
        "/nonexistent.crt",
    );
}

#[test]
fn tls_settings_come_from_the_environment() {
    let home = tempfile::tempdir().unwrap();
    let dsn = tls_dsn();
    let ca = cert("ca.crt");
    connected(&pgready(
        &dsn,
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", &ca)],
        home.path(),
    ));
    refused(
        &pgready(&dsn, &[("PGSSLMODE", "disable")], home.path()),
        "no encryption",
    );
    // The connection string wins over the variable.
    connected(&pgready(
        &with(&dsn, "sslmode=require"),
        &[("PGSSLMODE", "disable")],
        home.path(),
    ));
    refused(
        &pgready(&dsn, &[("PGSSLMODE", "on")], home.path()),
        "PGSSLMODE",
    );
    // With no --dsn at all, every part from the variables.
    let u = url::Url::parse(&dsn).unwrap();
    let o = host()
        .env("HOME", home.path())
        .env("PGHOST", u.host_str().unwrap())
        .env("PGPORT", tls_port().to_string())
        .env("PGUSER", "host")
        .env("PGPASSWORD", "host")
        .env("PGDATABASE", "host")
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &ca)
        .args(["pgready", "--timeout", "20s"])
        .output()
        .unwrap();
    connected(&o);
}

#[test]
fn the_password_file_is_read_when_no_password_is_given() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let u = url::Url::parse(&admin_dsn()).unwrap();
    let (h, port) = (u.host_str().unwrap(), u.port().unwrap());
    let (user, password) = (u.username(), u.password().unwrap());
    let dsn = format!("host={h} port={port} user={user} dbname=host");
    let file = home.path().join("pgpass");
    let write = |text: &str, mode: u32| {
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let env = [("PGPASSFILE", file.to_str().unwrap())];
    // The first matching line wins; wildcards match.
    write(
        &format!(
            "# test\nother:{port}:*:{user}:wrong\n{h}:{port}:*:{user}:{password}\n*:*:*:*:wrong\n"
        ),
        0o600,
    );
    connected(&pgready(&dsn, &env, home.path()));
    write(&format!("*:*:*:{user}:wrong\n"), 0o600);
    refused(
        &pgready(&dsn, &env, home.path()),
        "password authentication failed",
    );
    // Readable by others: ignored, with a warning, as libpq does.
    write(&format!("*:*:*:*:{password}\n"), 0o644);
    let err = refused(&pgready(&dsn, &env, home.path()), "password");
    assert!(err.contains("group or world access"), "{err}");
    // ~/.pgpass when PGPASSFILE is not set.
    std::fs::rename(&file, home.path().join(".pgpass")).unwrap();
    std::fs::set_permissions(
        home.path().join(".pgpass"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    connected(&pgready(&dsn, &[], home.path()));
}

/// A synchronous client that trusts the test CA (for setting up and checking).
fn tls_client(dsn: &str) -> postgres::Client {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(cert("ca.crt")).unwrap();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    postgres::Client::connect(
        &with(dsn, "sslmode=require"),
        tokio_postgres_rustls::MakeRustlsConnect::new(config),
    )
    .unwrap()
}

#[test]
fn xmat_copies_to_a_server_that_requires_verified_tls() {
    let src = TestDb::new("tls_src");
    src.client()
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, name text);
             INSERT INTO t SELECT i, 'n' || i FROM generate_series(1, 1000) i;",
        )
        .unwrap();
    let schema = format!("tls_copy_{}", std::process::id());
    let target = with(
        &tls_dsn(),
        &format!("sslmode=verify-full&sslrootcert={}", cert("ca.crt")),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("xmat.toml");
    std::fs::write(
        &file,
        format!(
            "[tls]\nsource = {{ database = \"{}\", schema = \"public\" }}\n\
             target = {{ database = \"{target}\", schema = \"{schema}\" }}\ntables = [\"*\"]\n",
            src.dsn
        ),
    )
    .unwrap();
    let o = host()
        .args(["xmat", "tls", "-c"])
        .arg(&file)
        .output()
        .unwrap();
    let mut dst = tls_client(&tls_dsn());
    let count: Option<i64> = dst
        .query_opt(&format!("SELECT count(*) FROM {schema}.t"), &[])
        .ok()
        .flatten()
        .map(|r| r.get(0));
    dst.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(count, Some(1000));
    assert!(!stderr(&o).contains("host:host@"), "{}", stderr(&o));
}
