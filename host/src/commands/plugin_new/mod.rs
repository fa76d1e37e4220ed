//! `host plugin new`: a plugin project that builds with one command, passes
//! its own test and runs under `host plugin run` as it is, wherever it is made.
//!
//! The templates (beside this file) are small on purpose: one plugin, one test.
//! The SDK comes from a checkout of this repository (`--sdk PATH`, by default
//! the one this binary was built from) or from its git URL (`--sdk URL`); both
//! SDKs carry the WIT they need, so a path or git dependency works from any folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::Status;
use crate::cli::{NewArgs, PluginLang};
use crate::plugin::Kind;

/// Where the SDK comes from: a checkout of this repository, or its git URL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sdk {
    Checkout(PathBuf),
    Git(String),
}

/// The repository this binary was built from (its SDKs are there while the checkout is).
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

impl Sdk {
    fn resolve(arg: Option<&str>) -> anyhow::Result<Sdk> {
        let text = match arg {
            Some(t) if t.contains("://") || t.starts_with("git@") => {
                return Ok(Sdk::Git(t.to_string()));
            }
            Some(t) => t,
            None => BUILT_FROM,
        };
        let root = std::fs::canonicalize(text).ok().filter(|r| {
            r.join("plugins/sdk/Cargo.toml").is_file()
                && r.join("plugins/python/pyproject.toml").is_file()
        });
        match (root, arg) {
            (Some(root), _) => Ok(Sdk::Checkout(root)),
            (None, Some(t)) => bail!(
                "--sdk {t}: not a checkout of the host repository (no plugins/sdk and plugins/python in it)"
            ),
            (None, None) => bail!(
                "this host was built from {BUILT_FROM}, which is gone: pass --sdk PATH (a checkout of the host repository) or --sdk GIT_URL"
            ),
        }
    }

    /// The Cargo.toml dependency value for `host-plugin-sdk`.
    fn cargo(&self) -> String {
        match self {
            Sdk::Checkout(root) => format!(
                "{{ path = {} }}",
                toml_string(&root.join("plugins/sdk").display().to_string())
            ),
            Sdk::Git(url) => format!("{{ git = {} }}", toml_string(url)),
        }
    }

    /// The requirements.txt line for the Python SDK.
    fn pip(&self) -> String {
        match self {
            Sdk::Checkout(root) => format!(
                "host-plugin @ file://{}",
                root.join("plugins/python").display()
            ),
            Sdk::Git(url) => {
                let url = url.strip_prefix("git+").unwrap_or(url);
                format!("host-plugin @ git+{url}#subdirectory=plugins/python")
            }
        }
    }
}

/// A TOML basic string: JSON's string escapes are all valid TOML ones.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// Names derived from the project name.
struct Names {
    /// As given (the package name).
    name: String,
    /// `-` as `_`: the crate, the Python module and the .wasm file.
    ident: String,
    /// CamelCase: the plugin's type.
    type_name: String,
}

impl Names {
    fn new(name: &str) -> anyhow::Result<Names> {
        let ok = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            bail!(
                "plugin name '{name}' must start with a letter and hold only letters, digits, '_' and '-'"
            );
        }
        let ident = name.replace('-', "_").to_ascii_lowercase();
        let type_name = ident
            .split('_')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        Ok(Names {
            name: name.to_string(),
            ident,
            type_name,
        })
    }
}

/// One file of a project: its path in the project and its template.
type File = (String, &'static str);

fn rust_files(kind: Kind) -> Vec<File> {
    vec![
        ("Cargo.toml".into(), include_str!("rust/Cargo.toml")),
        (".gitignore".into(), include_str!("rust/gitignore")),
        ("README.md".into(), include_str!("rust/README.md")),
        (
            "src/lib.rs".into(),
            match kind {
                Kind::ItemRewriter => include_str!("rust/item-rewriter.rs"),
                Kind::RowTransformer => include_str!("rust/row-transformer.rs"),
                Kind::WhereFilter => include_str!("rust/where-filter.rs"),
            },
        ),
    ]
}

fn python_files(kind: Kind, module: &str) -> Vec<File> {
    let (plugin, test) = match kind {
        Kind::ItemRewriter => (
            include_str!("python/item-rewriter.py"),
            include_str!("python/test-item-rewriter.py"),
        ),
        Kind::RowTransformer => (
            include_str!("python/row-transformer.py"),
            include_str!("python/test-row-transformer.py"),
        ),
        Kind::WhereFilter => (
            include_str!("python/where-filter.py"),
            include_str!("python/test-where-filter.py"),
        ),
    };
    vec![
        (
            "pyproject.toml".into(),
            include_str!("python/pyproject.toml"),
        ),
        (
            "requirements.txt".into(),
            include_str!("python/requirements.txt"),
        ),
        (".gitignore".into(), include_str!("python/gitignore")),
        ("README.md".into(), include_str!("python/README.md")),
        (format!("{module}.py"), plugin),
        (format!("test_{module}.py"), test),
    ]
}

/// An example `host plugin run` line for the README.
fn run_example(kind: Kind, wasm: &str) -> String {
    match kind {
        Kind::ItemRewriter => format!("host plugin run {wasm} --plugin-arg tag=hello items.ndjson"),
        Kind::RowTransformer => {
            format!("host plugin run {wasm} --rows --plugin-arg column=name users.csv")
        }
        Kind::WhereFilter => {
            format!("host plugin run {wasm} --plugin-arg collection=my-collection items.ndjson")
        }
    }
}

/// Writes the project.
pub fn run(args: NewArgs) -> anyhow::Result<Status> {
    let names = Names::new(&args.name)?;
    let kind = args.kind;
    let sdk = Sdk::resolve(args.sdk.as_deref())?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", dir.display());
    }
    let (files, wasm, sdk_line) = match args.lang {
        PluginLang::Rust => (
            rust_files(kind),
            format!("target/wasm32-wasip2/release/{}.wasm", names.ident),
            sdk.cargo(),
        ),
        PluginLang::Python => (
            python_files(kind, &names.ident),
            format!("build/{}.wasm", names.ident),
            sdk.pip(),
        ),
    };
    let description = format!("A {kind} made with host plugin new");
    let fill = |template: &str| {
        template
            .replace("{{name}}", &names.name)
            .replace("{{crate}}", &names.ident)
            .replace("{{module}}", &names.ident)
            .replace("{{Type}}", &names.type_name)
            .replace("{{kind}}", kind.as_str())
            .replace("{{description}}", &description)
            .replace("{{sdk}}", &sdk_line)
            .replace("{{run}}", &run_example(kind, &wasm))
    };
    for (rel, template) in &files {
        write(&dir.join(rel), &fill(template))?;
    }
    let (build, test) = match args.lang {
        PluginLang::Rust => (
            "cargo build --release --target wasm32-wasip2".to_string(),
            "cargo test".to_string(),
        ),
        PluginLang::Python => (
            "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt\n  .venv/bin/python -m host_plugin build".to_string(),
            ".venv/bin/python -m unittest".to_string(),
        ),
    };
    println!(
        "Created {} ({kind}, {}) in {}\n\n  cd {}\n  {build}\n  {test}\n  {}",
        names.name,
        match args.lang {
            PluginLang::Rust => "Rust",
            PluginLang::Python => "Python",
        },
        dir.display(),
        dir.display(),
        run_example(kind, &wasm)
    );
    Ok(Status::Success)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_project_name() {
        let n = Names::new("my-tag_plugin2").unwrap();
        assert_eq!(n.ident, "my_tag_plugin2");
        assert_eq!(n.type_name, "MyTagPlugin2");
        assert!(Names::new("2fast").is_err());
        assert!(Names::new("a b").is_err());
        assert!(Names::new("../x").is_err());
    }

    #[test]
    fn sdk_lines_for_paths_and_git() {
        let git = Sdk::resolve(Some("https://example.org/host.git")).unwrap();
        assert_eq!(git.cargo(), r#"{ git = "https://example.org/host.git" }"#);
        assert_eq!(
            git.pip(),
            "host-plugin @ git+https://example.org/host.git#subdirectory=plugins/python"
        );
        let here = Sdk::resolve(None).unwrap();
        assert!(here.cargo().contains("plugins/sdk"), "{}", here.cargo());
        assert!(Sdk::resolve(Some("/nonexistent")).is_err());
    }
}
