//! Plugins in OCI registries: `host plugin push` and `oci://` references,
//! against Debian's docker-registry (the distribution reference registry)
//! started by `scripts/registry` on loopback, and against a fake registry
//! that lies, to prove every digest is checked before anything compiles.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Output;

use serde_json::Value;
use sha2::{Digest, Sha256};
use util::{host, run_stdin, stderr, stdout, wasm};

fn registry() -> String {
    std::env::var("HOST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:55500".into())
}

fn auth_registry() -> String {
    std::env::var("HOST_REGISTRY_AUTH").unwrap_or_else(|_| "127.0.0.1:55501".into())
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// A repository name no other test run uses.
fn repo(label: &str) -> String {
    format!(
        "test/{label}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// GET over plain HTTP/1.0: (status, body).
fn http_get(url: &str, accept: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let mut s = TcpStream::connect(authority).unwrap();
    write!(
        s,
        "GET /{path} HTTP/1.0\r\nHost: {authority}\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, buf[split + 4..].to_vec())
}

fn push(plugin: &std::path::Path, target: &str) -> Output {
    host()
        .args(["plugin", "push", path(plugin), target])
        .output()
        .unwrap()
}

/// The `@sha256:` digest printed by a successful push.
fn pushed_digest(o: &Output) -> String {
    let text = stdout(o);
    let at = text
        .find("@sha256:")
        .unwrap_or_else(|| panic!("no digest in: {text}{}", stderr(o)));
    text[at + 8..at + 8 + 64].to_string()
}

fn items() -> &'static [u8] {
    b"{\"id\":\"a\",\"collection\":\"old\"}\n{\"id\":\"b\"}\n"
}

#[test]
fn push_then_run_by_tag_and_by_digest() {
    let sc = wasm("set_collection");
    let target = format!("oci://{}/{}:v1", registry(), repo("set_collection"));
    let out = push(&sc, &target);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("pushed set_collection 0.1.0 (item-rewriter"),
        "{}",
        stdout(&out)
    );
    let digest = pushed_digest(&out);

    // The manifest is the wasm OCI artifact layout, and its digest is the one printed.
    let name = target
        .trim_start_matches("oci://")
        .split_once('/')
        .unwrap()
        .1
        .rsplit_once(':')
        .unwrap()
        .0
        .to_string();
    let (status, manifest) = http_get(
        &format!("http://{}/v2/{name}/manifests/v1", registry()),
        "application/vnd.oci.image.manifest.v1+json",
    );
    assert_eq!(status, 200);
    assert_eq!(sha256_hex(&manifest), digest);
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    assert_eq!(m["layers"][0]["mediaType"], "application/wasm");
    let wasm_bytes = std::fs::read(&sc).unwrap();
    assert_eq!(
        m["layers"][0]["digest"],
        format!("sha256:{}", sha256_hex(&wasm_bytes))
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.title"],
        "set_collection"
    );
    let (_, config) = http_get(
        &format!(
            "http://{}/v2/{name}/blobs/{}",
            registry(),
            m["config"]["digest"].as_str().unwrap()
        ),
        "*/*",
    );
    let config: Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert_eq!(config["layerDigests"][0], m["layers"][0]["digest"]);

    // Run from the registry: by tag, and pinned by digest; the same output as from the file.
    let from_file = run_stdin(
        &["plugin", "run", path(&sc), "--plugin-arg", "collection=new"],
        items(),
    );
    for reference in [target.clone(), format!("{target}@sha256:{digest}")] {
        let out = run_stdin(
            &[
                "plugin",
                "run",
                &reference,
                "--plugin-arg",
                "collection=new",
            ],
            items(),
        );
        assert_eq!(out.status.code(), Some(0), "{reference}: {}", stderr(&out));
        assert_eq!(out.stdout, from_file.stdout);
    }
    // inspect takes references too, and a wasm pin still applies to the bytes.
    let out = host()
        .args([
            "plugin",
            "inspect",
            "--json",
            &format!("{target}#sha256={}", sha256_hex(&wasm_bytes)),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["name"], "set_collection");

    // A digest the registry does not have: named, nothing runs.
    let wrong = format!("{target}@sha256:{}", "0".repeat(64));
    let out = run_stdin(
        &["plugin", "run", &wrong, "--plugin-arg", "collection=new"],
        items(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn only_plugins_are_pushed_and_references_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm not a component").unwrap();
    let out = push(&junk, &format!("oci://{}/{}:v1", registry(), repo("junk")));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a valid WebAssembly component"),
        "{}",
        stderr(&out)
    );

    let sc = wasm("set_collection");
    for (bad, says) in [
        ("oci://127.0.0.1:55500/Upper/case:v1", "lower-case"),
        ("oci://127.0.0.1:55500/x:v1@sha256:00", "64 hex digits"),
        ("127.0.0.1:55500/x:v1", "oci://"),
    ] {
        let out = push(&sc, bad);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(stderr(&out).contains(says), "{bad}: {}", stderr(&out));
    }
    // A push names a tag; a digest is what comes back.
    let out = push(
        &sc,
        &format!(
            "oci://{}/{}:v1@sha256:{}",
            registry(),
            repo("x"),
            "a".repeat(64)
        ),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("push to a tag"), "{}", stderr(&out));
}

#[test]
fn credentials_come_from_the_environment_or_the_docker_config() {
    let sc = wasm("set_collection");
    let target = format!("oci://{}/{}:v1", auth_registry(), repo("private"));
    let user = std::env::var("HOST_REGISTRY_AUTH_USER").unwrap_or_else(|_| "host".into());
    let password =
        std::env::var("HOST_REGISTRY_AUTH_PASSWORD").unwrap_or_else(|_| "host-registry".into());
    let empty = tempfile::tempdir().unwrap();

    // Anonymous: refused, saying what is missing.
    let out = host()
        .args(["plugin", "push", path(&sc), &target])
        .env("DOCKER_CONFIG", empty.path())
        .env_remove("HOST_OCI_USERNAME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("needs"), "{}", stderr(&out));

    // From the environment.
    let out = host()
        .args(["plugin", "push", path(&sc), &target])
        .env("DOCKER_CONFIG", empty.path())
        .env("HOST_OCI_USERNAME", &user)
        .env("HOST_OCI_PASSWORD", &password)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // From a Docker config, as `docker login` writes it.
    let docker = tempfile::tempdir().unwrap();
    let auth = base64(&format!("{user}:{password}"));
    std::fs::write(
        docker.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            auth_registry()
        ),
    )
    .unwrap();
    let mut cmd = host();
    cmd.args(["plugin", "run", &target, "--plugin-arg", "collection=new"])
        .env("DOCKER_CONFIG", docker.path())
        .env_remove("HOST_OCI_USERNAME");
    let out = util::run_cmd_stdin(cmd, items());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 2);

    // A wrong password: refused, and the password never shows.
    let mut cmd = host();
    cmd.args(["plugin", "run", &target])
        .env("DOCKER_CONFIG", empty.path())
        .env("HOST_OCI_USERNAME", &user)
        .env("HOST_OCI_PASSWORD", "wrong-secret");
    let out = util::run_cmd_stdin(cmd, items());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refused the credentials"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("wrong-secret"));
}

fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A registry that serves whatever it is given, for every path (HTTP/1.1, one request per connection).
fn fake_registry(routes: Vec<(String, &'static str, Vec<u8>)>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, ctype, body) = routes
                .iter()
                .find(|(p, _, _)| path.starts_with(p.as_str()))
                .map(|(_, t, b)| ("200 OK", *t, b.clone()))
                .unwrap_or(("404 Not Found", "text/plain", b"no".to_vec()));
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    addr.to_string()
}

fn manifest(config_type: &str, layer_type: &str, layer_digest: &str, size: usize) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"{config_type}","digest":"sha256:{z}","size":2}},"layers":[{{"mediaType":"{layer_type}","digest":"sha256:{layer_digest}","size":{size}}}]}}"#,
        z = "0".repeat(64)
    )
    .into_bytes()
}

#[test]
fn a_lying_registry_is_caught_before_anything_compiles() {
    let wasm_bytes = std::fs::read(wasm("set_collection")).unwrap();
    let real = sha256_hex(&wasm_bytes);
    let good = manifest(
        "application/vnd.wasm.config.v0+json",
        "application/wasm",
        &real,
        wasm_bytes.len(),
    );
    let pin = sha256_hex(&good);
    let other = "1".repeat(64);

    // 1. The manifest is not the pinned one.
    let reg = fake_registry(vec![(
        "/v2/x/manifests/".into(),
        "application/vnd.oci.image.manifest.v1+json",
        good.clone(),
    )]);
    let out = run_stdin(
        &[
            "plugin",
            "inspect",
            &format!("oci://{reg}/x:v1@sha256:{other}"),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "the manifest has digest sha256:{pin}, but sha256:{other} was expected"
        )),
        "{}",
        stderr(&out)
    );

    // 2. The layer is not what the manifest says.
    let lying = manifest(
        "application/vnd.wasm.config.v0+json",
        "application/wasm",
        &other,
        wasm_bytes.len(),
    );
    let reg = fake_registry(vec![
        (
            "/v2/x/manifests/".into(),
            "application/vnd.oci.image.manifest.v1+json",
            lying,
        ),
        (
            "/v2/x/blobs/".into(),
            "application/octet-stream",
            wasm_bytes.clone(),
        ),
    ]);
    let out = run_stdin(&["plugin", "inspect", &format!("oci://{reg}/x:v1")], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "the wasm layer has digest sha256:{real}, but sha256:{other} was expected"
        )),
        "{}",
        stderr(&out)
    );

    // 3. A container image, not a wasm artifact.
    let image = manifest(
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &real,
        10,
    );
    let reg = fake_registry(vec![(
        "/v2/x/manifests/".into(),
        "application/vnd.oci.image.manifest.v1+json",
        image,
    )]);
    let out = run_stdin(&["plugin", "inspect", &format!("oci://{reg}/x:v1")], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "is not a wasm plugin artifact: its config is application/vnd.oci.image.config.v1+json"
        ),
        "{}",
        stderr(&out)
    );

    // 4. A layer larger than the host takes: refused before downloading it.
    let huge = manifest(
        "application/vnd.wasm.config.v0+json",
        "application/wasm",
        &real,
        1 << 40,
    );
    let reg = fake_registry(vec![(
        "/v2/x/manifests/".into(),
        "application/vnd.oci.image.manifest.v1+json",
        huge,
    )]);
    let out = run_stdin(&["plugin", "inspect", &format!("oci://{reg}/x:v1")], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the wasm layer is 1099511627776 bytes, more than the"),
        "{}",
        stderr(&out)
    );

    // And the honest one works, pinned.
    let reg = fake_registry(vec![
        (
            "/v2/x/manifests/".into(),
            "application/vnd.oci.image.manifest.v1+json",
            good,
        ),
        (
            "/v2/x/blobs/".into(),
            "application/octet-stream",
            wasm_bytes,
        ),
    ]);
    let out = run_stdin(
        &[
            "plugin",
            "inspect",
            &format!("oci://{reg}/x:v1@sha256:{pin}"),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
