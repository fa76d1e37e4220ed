//! `host plugin new`: each kind, in Rust and in Python, made in a fresh folder
//! outside this repository, builds with its one command, passes its own test
//! and runs under `host plugin run` as generated.

mod util;

use std::path::Path;
use std::process::{Command, Output};

use util::{host, root, run_stdin, stderr, stdout};

fn ok(o: Output, what: &str) -> Output {
    assert!(
        o.status.success(),
        "{what} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

fn new_project(dir: &Path, name: &str, kind: &str, lang: &str) {
    let out = host()
        .args([
            "plugin", "new", name, "--kind", kind, "--lang", lang, "--dir",
        ])
        .arg(dir)
        .env_remove("HOST_PLUGIN_SDK")
        .output()
        .unwrap();
    ok(out, "host plugin new");
}

/// Runs the generated plugin the way its README says, and checks what comes out.
fn try_under_host(wasm: &Path, kind: &str) {
    let w = wasm.to_str().unwrap();
    let (args, input, want): (Vec<&str>, &[u8], &str) = match kind {
        "item-rewriter" => (
            vec!["--plugin-arg", "tag=hello"],
            b"{\"id\":\"a\"}\n{\"id\":\"b\",\"x\":[1, 2]}\n",
            "{\"id\":\"a\",\"tag\":\"hello\"}\n{\"id\":\"b\",\"x\":[1, 2],\"tag\":\"hello\"}\n",
        ),
        "row-transformer" => (
            vec!["--rows", "--format", "csv", "--plugin-arg", "column=name"],
            b"id,name\n1,ada\n2,\n",
            "id,name\n1,ADA\n2,\n",
        ),
        _ => (
            vec!["--plugin-arg", "collection=a"],
            b"{\"id\":\"1\",\"collection\":\"a\"}\n{\"id\":\"2\",\"collection\":\"b\"}\n",
            "{\"id\":\"1\",\"collection\":\"a\"}\n",
        ),
    };
    let mut all = vec!["plugin", "run", w];
    all.extend(args);
    let out = ok(run_stdin(&all, input), "host plugin run");
    assert_eq!(stdout(&out), want, "{kind}: {}", stderr(&out));
}

const KINDS: [&str; 3] = ["item-rewriter", "row-transformer", "where-filter"];

#[test]
fn rust_projects_build_test_and_run_outside_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    // One target folder for the three projects: the SDK's dependencies build once.
    let target = root().join("target/plugin-new-test");
    for kind in KINDS {
        let name = format!("my-{kind}");
        let dir = tmp.path().join(&name);
        new_project(&dir, &name, kind, "rust");
        let cargo = |args: &[&str]| {
            Command::new(env!("CARGO"))
                .args(args)
                .current_dir(&dir)
                .env("CARGO_TARGET_DIR", &target)
                .env_remove("RUSTFLAGS")
                .output()
                .unwrap()
        };
        ok(
            cargo(&["build", "--release", "--target", "wasm32-wasip2", "--quiet"]),
            "cargo build",
        );
        ok(cargo(&["test", "--quiet"]), "cargo test");
        let wasm = target.join(format!(
            "wasm32-wasip2/release/my_{}.wasm",
            kind.replace('-', "_")
        ));
        try_under_host(&wasm, kind);
    }
}

#[test]
fn python_projects_build_test_and_run_outside_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    // A fresh virtualenv with what the generated requirements.txt names, as its README says.
    let base = std::env::var("HOST_PYTHON").unwrap_or_else(|_| "python3".into());
    let venv = tmp.path().join("venv");
    ok(
        Command::new(&base)
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .unwrap(),
        "python -m venv",
    );
    let python = venv.join("bin/python");
    for (i, kind) in KINDS.iter().enumerate() {
        let name = format!("py-{kind}");
        let dir = tmp.path().join(&name);
        new_project(&dir, &name, kind, "python");
        if i == 0 {
            let req = std::fs::read_to_string(dir.join("requirements.txt")).unwrap();
            assert!(req.contains("host-plugin @ file://"), "{req}");
            ok(
                Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        "-r",
                        "requirements.txt",
                    ])
                    .current_dir(&dir)
                    .output()
                    .unwrap(),
                "pip install -r requirements.txt",
            );
        }
        let run = |args: &[&str]| {
            Command::new(&python)
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap()
        };
        ok(
            run(&["-m", "host_plugin", "build"]),
            "python -m host_plugin build",
        );
        ok(run(&["-m", "unittest"]), "python -m unittest");
        try_under_host(
            &dir.join(format!("build/py_{}.wasm", kind.replace('-', "_"))),
            kind,
        );
    }
}

#[test]
fn new_refuses_bad_names_and_folders_in_use_and_needs_a_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let out = host()
        .args(["plugin", "new", "9lives", "--kind", "item-rewriter"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("must start with a letter"),
        "{}",
        stderr(&out)
    );

    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/keep.txt"), "mine").unwrap();
    let out = host()
        .args(["plugin", "new", "taken", "--kind", "item-rewriter"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("already exists and is not empty"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("taken/keep.txt")).unwrap(),
        "mine"
    );

    let out = host()
        .args(["plugin", "new", "x"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");

    let out = host()
        .args([
            "plugin",
            "new",
            "x",
            "--kind",
            "where-filter",
            "--sdk",
            "/nonexistent/host",
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a checkout of the host repository"),
        "{}",
        stderr(&out)
    );

    // A git URL is written as a git dependency.
    let out = host()
        .args([
            "plugin",
            "new",
            "g",
            "--kind",
            "where-filter",
            "--sdk",
            "https://example.org/host.git",
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    ok(out, "plugin new --sdk URL");
    let toml = std::fs::read_to_string(tmp.path().join("g/Cargo.toml")).unwrap();
    assert!(
        toml.contains(r#"host-plugin-sdk = { git = "https://example.org/host.git" }"#),
        "{toml}"
    );
}
