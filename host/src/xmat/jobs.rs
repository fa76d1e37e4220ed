//! The jobs file (`xmat.toml`, or JSON): named jobs, each a source, a target
//! and the tables to copy with their `where`, `select` and `plugins`.
//!
//! ```toml
//! ["tenant:acme"]
//! source = { database = "env:PROD_URL", schema = "public" }
//! target = { database = "postgresql://app@staging/app", schema = "acme" }
//!
//! ["tenant:acme".tables."*"]
//! where = { tenant_id = 42 }               # only on tables that have tenant_id
//!
//! ["tenant:acme".tables.users]
//! where = { tenant_id = 42, created_at = { gte = "2024-01-01" } }
//! select = { email = "lower({column_name})", password_hash = false }
//! plugins = [{ plugin = "anonymize.wasm", params = { key = "env:ANON_KEY", name = "name" } }]
//! ```
//!
//! The shape is pg-xmat's `JOBS` dictionary (a JSON dump of one works), with
//! `plugins` added. Differences from pg-xmat, on purpose: `select` never
//! narrows the column list (every column not named is copied unchanged), an
//! empty `IN` list matches nothing instead of everything, and unknown keys or
//! operators are errors instead of being ignored.

use std::path::{Path, PathBuf};

use super::node::Node;

/// A parsed jobs file.
#[derive(Debug, Clone)]
pub struct JobFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Jobs in file order.
    pub jobs: Vec<Job>,
}

/// One job: copy tables from a source schema into a target schema.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub source: Endpoint,
    pub target: Endpoint,
    /// Table entries in file order; `*` stands for every table of the source schema.
    pub tables: Vec<TableEntry>,
}

/// A database and a schema in it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Connection string, or `env:NAME`.
    pub database: Setting,
    pub schema: String,
}

/// A value that may be read from the environment (`env:NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    raw: String,
}

impl Setting {
    /// A setting as written in the file.
    pub fn new(raw: impl Into<String>) -> Setting {
        Setting { raw: raw.into() }
    }

    /// The variable name, for `env:NAME`.
    pub fn env_name(&self) -> Option<&str> {
        self.raw.strip_prefix("env:")
    }

    /// The value: the text itself, or the variable's value for `env:NAME`.
    pub fn resolve(&self) -> Result<String, String> {
        match self.env_name() {
            Some(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(v),
                _ => Err(format!("environment variable {name} is not set")),
            },
            None => Ok(self.raw.clone()),
        }
    }

    /// As written (`env:NAME`, or the literal text). Callers redact secrets.
    pub fn raw(&self) -> &str {
        &self.raw
    }
}

/// One entry of `tables`.
#[derive(Debug, Clone, Default)]
pub struct TableEntry {
    /// The table's name, or `*`.
    pub name: String,
    pub filter: Filter,
    /// Column overrides in file order.
    pub select: Vec<(String, SelectItem)>,
    pub plugins: Vec<PluginRef>,
}

/// Which rows to copy.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Filter {
    /// Every row.
    #[default]
    All,
    /// Every condition must hold: column → condition, in file order.
    Conditions(Vec<(String, Condition)>),
    /// A raw SQL condition (pg-xmat's string form), used as written.
    Sql(String),
}

/// The tests on one column, all of which must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition(pub Vec<Test>);

/// One test on a column's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `=`, `<>`, `>`, `>=`, `<`, `<=` against a value.
    Compare(Cmp, Scalar),
    /// `IN (...)`; an empty list matches nothing; a null in the list matches NULL.
    In(Vec<Scalar>),
    /// `IS NULL` (true) or `IS NOT NULL` (false).
    Null(bool),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "<>",
            Cmp::Gt => ">",
            Cmp::Gte => ">=",
            Cmp::Lt => "<",
            Cmp::Lte => "<=",
        }
    }
}

/// The operator keys a `where` table may use.
pub const OPERATORS: &str = "eq, ne, gt, gte, lt, lte, in, null";

/// A value in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// Text (also dates and times), quoted as a literal of the column's type.
    Text(String),
    /// A number, kept as written, quoted the same way (so `'42'` meets an
    /// integer, numeric or text column alike, as a bound parameter would).
    Number(String),
    Bool(bool),
    Null,
}

/// What `select` says about a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// A SQL expression; `{column_name}` stands for the quoted column.
    Expr(String),
    /// Copy unchanged (`true`; the default for columns not named).
    Keep,
    /// Leave the column out of the target (`false`, or JSON `null`).
    Omit,
}

/// A plugin to run on the table's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    /// Path (relative paths are relative to the jobs file) or URL, with any `#sha256=` pin.
    pub location: String,
    /// Parameters in file order; values may be `env:NAME`.
    pub params: Vec<(String, Setting)>,
}

impl PluginRef {
    /// The plugin spec to load, with `env:NAME` parameters read now.
    pub fn spec(&self) -> Result<crate::plugin::PluginSpec, String> {
        let mut spec = crate::plugin::PluginSpec::parse(&self.location)?;
        for (k, v) in &self.params {
            let value = v.resolve().map_err(|e| format!("parameter {k}: {e}"))?;
            spec.params.push((k.clone(), value));
        }
        Ok(spec)
    }

    /// For plans and logs: `env:NAME` stays as written, and literal values of
    /// parameters named like secrets (`key`, `password`, `secret`, `token`) are masked.
    pub fn display(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| {
                let secret = ["key", "password", "secret", "token"]
                    .iter()
                    .any(|s| k.to_ascii_lowercase().contains(s));
                let shown = if v.env_name().is_some() || !secret {
                    v.raw()
                } else {
                    "***"
                };
                format!("{k}={shown}")
            })
            .collect();
        if params.is_empty() {
            self.location.clone()
        } else {
            format!("{} ({})", self.location, params.join(", "))
        }
    }
}

/// Why a jobs file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct JobsError {
    pub file: String,
    pub message: String,
}

impl JobFile {
    /// Reads and checks a jobs file: JSON for `*.json`, TOML otherwise.
    pub fn load(path: &Path) -> Result<JobFile, JobsError> {
        let err = |message: String| JobsError {
            file: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let root: Node = if json {
            serde_json::from_str(&text).map_err(|e| err(e.to_string()))?
        } else {
            toml::from_str(&text).map_err(|e| err(e.to_string().trim_end().to_string()))?
        };
        let base = path.parent().unwrap_or(Path::new(""));
        let jobs = parse_jobs(&root, base).map_err(err)?;
        Ok(JobFile {
            path: path.to_path_buf(),
            jobs,
        })
    }

    /// The jobs whose names match a glob (`*`, `?`, `[...]`), in file order.
    pub fn matching(&self, pattern: &str) -> Vec<&Job> {
        self.jobs
            .iter()
            .filter(|j| glob_match(pattern, &j.name))
            .collect()
    }
}

/// Parses the root document: a table of jobs, optionally under a `jobs` key.
pub fn parse_jobs(root: &Node, base: &Path) -> Result<Vec<Job>, String> {
    let root = match root.get("jobs") {
        Some(jobs @ Node::Map(_)) if root.get("jobs").and_then(|j| j.get("source")).is_none() => {
            jobs
        }
        _ => root,
    };
    let Node::Map(entries) = root else {
        return Err(format!("expected a table of jobs, found {}", root.kind()));
    };
    if entries.is_empty() {
        return Err("no jobs defined".into());
    }
    entries
        .iter()
        .map(|(name, node)| parse_job(name, node, base).map_err(|e| format!("job `{name}`: {e}")))
        .collect()
}

fn parse_job(name: &str, node: &Node, base: &Path) -> Result<Job, String> {
    let entries = map_of(node, "a job")?;
    check_keys(entries, &["source", "target", "tables", "description"])?;
    let endpoint = |key: &str| -> Result<Endpoint, String> {
        let n = node.get(key).ok_or_else(|| format!("`{key}` is missing"))?;
        parse_endpoint(n).map_err(|e| format!("{key}: {e}"))
    };
    let (source, target) = (endpoint("source")?, endpoint("target")?);
    if target.schema.starts_with("pg_") || target.schema == "information_schema" {
        return Err(format!(
            "target: schema `{}` is a system schema",
            target.schema
        ));
    }
    let tables = match node.get("tables") {
        None => return Err("`tables` is missing".into()),
        Some(Node::List(names)) => names
            .iter()
            .map(|n| match n {
                Node::Str(s) => Ok(TableEntry {
                    name: s.clone(),
                    ..TableEntry::default()
                }),
                other => Err(format!(
                    "tables: expected table names, found {}",
                    other.kind()
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Node::Map(entries)) => entries
            .iter()
            .map(|(t, n)| parse_table(t, n, base).map_err(|e| format!("tables.{t}: {e}")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(format!("tables: expected a table, found {}", other.kind())),
    };
    if tables.is_empty() {
        return Err("`tables` is empty".into());
    }
    for (i, t) in tables.iter().enumerate() {
        if tables[..i].iter().any(|o| o.name == t.name) {
            return Err(format!("table `{}` is listed twice", t.name));
        }
    }
    Ok(Job {
        name: name.to_string(),
        source,
        target,
        tables,
    })
}

fn parse_endpoint(node: &Node) -> Result<Endpoint, String> {
    let entries = map_of(node, "{ database = ..., schema = ... }")?;
    check_keys(entries, &["database", "url", "dsn", "schema"])?;
    let database = ["database", "url", "dsn"]
        .iter()
        .find_map(|k| node.get(k))
        .ok_or("`database` is missing")?;
    let Node::Str(database) = database else {
        return Err(format!(
            "database: expected a string, found {}",
            database.kind()
        ));
    };
    let schema = match node.get("schema") {
        Some(Node::Str(s)) if !s.is_empty() => s.clone(),
        Some(other) => return Err(format!("schema: expected a name, found {}", other.kind())),
        None => return Err("`schema` is missing".into()),
    };
    Ok(Endpoint {
        database: Setting::new(database.clone()),
        schema,
    })
}

fn parse_table(name: &str, node: &Node, base: &Path) -> Result<TableEntry, String> {
    let entries = map_of(node, "a table entry")?;
    check_keys(entries, &["where", "select", "plugins"])?;
    let filter = match node.get("where") {
        None => Filter::All,
        Some(Node::Str(sql)) if sql.trim().is_empty() => Filter::All,
        Some(Node::Str(sql)) => Filter::Sql(sql.clone()),
        Some(Node::Map(conds)) if conds.is_empty() => Filter::All,
        Some(Node::Map(conds)) => Filter::Conditions(
            conds
                .iter()
                .map(|(col, v)| {
                    parse_condition(v)
                        .map(|c| (col.clone(), c))
                        .map_err(|e| format!("where.{col}: {e}"))
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(other) => return Err(format!("where: expected a table, found {}", other.kind())),
    };
    let select = match node.get("select") {
        None => Vec::new(),
        Some(Node::Map(items)) => items
            .iter()
            .filter(|(col, _)| col != "*") // pg-xmat's "all other columns" marker: always so here
            .map(|(col, v)| {
                let item = match v {
                    Node::Str(e) if e.trim().is_empty() => {
                        return Err(format!("select.{col}: empty expression"));
                    }
                    Node::Str(e) => SelectItem::Expr(e.clone()),
                    Node::Bool(true) => SelectItem::Keep,
                    Node::Bool(false) | Node::Null => SelectItem::Omit,
                    other => {
                        return Err(format!(
                            "select.{col}: expected a SQL expression or false, found {}",
                            other.kind()
                        ));
                    }
                };
                Ok((col.clone(), item))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("select: expected a table, found {}", other.kind())),
    };
    let plugins = match node.get("plugins") {
        None => Vec::new(),
        Some(Node::List(items)) => items
            .iter()
            .enumerate()
            .map(|(i, p)| parse_plugin(p, base).map_err(|e| format!("plugins[{i}]: {e}")))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("plugins: expected a list, found {}", other.kind())),
    };
    Ok(TableEntry {
        name: name.to_string(),
        filter,
        select,
        plugins,
    })
}

fn parse_condition(node: &Node) -> Result<Condition, String> {
    let test = match node {
        Node::Null => Test::Null(true),
        Node::List(items) => Test::In(scalars(items)?),
        Node::Map(ops) if ops.is_empty() => {
            return Err(format!("empty condition (use one of: {OPERATORS})"));
        }
        Node::Map(ops) => {
            return ops
                .iter()
                .map(|(op, v)| parse_test(op, v).map_err(|e| format!("{op}: {e}")))
                .collect::<Result<_, _>>()
                .map(Condition);
        }
        scalar => Test::Compare(Cmp::Eq, scalar_of(scalar)?),
    };
    Ok(Condition(vec![test]))
}

fn parse_test(op: &str, value: &Node) -> Result<Test, String> {
    let cmp = match op {
        "eq" => Cmp::Eq,
        "ne" => Cmp::Ne,
        "gt" => Cmp::Gt,
        "gte" => Cmp::Gte,
        "lt" => Cmp::Lt,
        "lte" => Cmp::Lte,
        "in" => {
            return match value {
                Node::List(items) => Ok(Test::In(scalars(items)?)),
                other => Err(format!("expected a list, found {}", other.kind())),
            };
        }
        "null" => {
            return match value {
                Node::Bool(b) => Ok(Test::Null(*b)),
                other => Err(format!("expected true or false, found {}", other.kind())),
            };
        }
        _ => return Err(format!("unknown operator (use one of: {OPERATORS})")),
    };
    match scalar_of(value)? {
        Scalar::Null => Err("compares with null (use `null = true`)".into()),
        s => Ok(Test::Compare(cmp, s)),
    }
}

fn scalars(items: &[Node]) -> Result<Vec<Scalar>, String> {
    items.iter().map(scalar_of).collect()
}

fn scalar_of(node: &Node) -> Result<Scalar, String> {
    Ok(match node {
        Node::Null => Scalar::Null,
        Node::Bool(b) => Scalar::Bool(*b),
        Node::Int(i) => Scalar::Number(i.to_string()),
        Node::Float(f) if f.is_nan() => Scalar::Number("NaN".into()),
        Node::Float(f) if f.is_infinite() => {
            Scalar::Number(if *f > 0.0 { "Infinity" } else { "-Infinity" }.into())
        }
        // Debug prints the shortest text that reads back as the same f64.
        Node::Float(f) => Scalar::Number(format!("{f:?}")),
        Node::Str(s) if s.contains('\0') => return Err("a value contains a NUL character".into()),
        Node::Str(s) => Scalar::Text(s.clone()),
        other => return Err(format!("expected a value, found {}", other.kind())),
    })
}

fn parse_plugin(node: &Node, base: &Path) -> Result<PluginRef, String> {
    let (location, params) = match node {
        Node::Str(s) => (s.clone(), Vec::new()),
        Node::Map(entries) => {
            check_keys(entries, &["plugin", "path", "url", "sha256", "params"])?;
            let location = ["plugin", "path", "url"]
                .iter()
                .find_map(|k| node.get(k))
                .ok_or("`plugin` (its path or URL) is missing")?;
            let Node::Str(location) = location else {
                return Err(format!(
                    "plugin: expected a path, found {}",
                    location.kind()
                ));
            };
            let mut location = location.clone();
            match node.get("sha256") {
                Some(Node::Str(d)) => location = format!("{location}#sha256={d}"),
                Some(other) => return Err(format!("sha256: expected hex, found {}", other.kind())),
                None => {}
            }
            let params = match node.get("params") {
                None => Vec::new(),
                Some(Node::Map(ps)) => ps
                    .iter()
                    .map(|(k, v)| {
                        let text = match v {
                            Node::Str(s) => s.clone(),
                            Node::Bool(b) => b.to_string(),
                            Node::Int(i) => i.to_string(),
                            Node::Float(f) => f.to_string(),
                            other => {
                                return Err(format!(
                                    "params.{k}: expected a string, found {}",
                                    other.kind()
                                ));
                            }
                        };
                        Ok((k.clone(), Setting::new(text)))
                    })
                    .collect::<Result<_, String>>()?,
                Some(other) => {
                    return Err(format!("params: expected a table, found {}", other.kind()));
                }
            };
            (location, params)
        }
        other => return Err(format!("expected a plugin, found {}", other.kind())),
    };
    if location.is_empty() {
        return Err("empty plugin location".into());
    }
    Ok(PluginRef {
        location: relative_to(base, &location),
        params,
    })
}

/// Plugin paths in a jobs file are relative to the file, like Cargo's paths.
fn relative_to(base: &Path, location: &str) -> String {
    if location.contains("://") || Path::new(location).is_absolute() || base.as_os_str().is_empty()
    {
        return location.to_string();
    }
    base.join(location).display().to_string()
}

fn map_of<'a>(node: &'a Node, what: &str) -> Result<&'a [(String, Node)], String> {
    match node {
        Node::Map(m) => Ok(m),
        other => Err(format!("expected {what}, found {}", other.kind())),
    }
}

fn check_keys(entries: &[(String, Node)], allowed: &[&str]) -> Result<(), String> {
    match entries.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(format!(
            "unknown key `{k}` (expected: {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

/// Shell-style glob as pg-xmat's `fnmatch`: `*` any text, `?` one character,
/// `[abc]`, `[a-z]`, `[!abc]` one of (or none of) a set.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with one backtrack point for the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, len)) = class_match(&p[pi..], n[ni]) {
                        if matched {
                            pi += len;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against a `[...]` class at the start of `p`: (matched, class length),
/// or `None` when there is no closing bracket (then `[` is literal).
fn class_match(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(1), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut matched = false;
    while i < p.len() && (p[i] != ']' || i == start) {
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            matched |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            matched |= p[i] == c;
            i += 1;
        }
    }
    (i < p.len()).then_some((matched != negate, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(toml_text: &str) -> Result<Vec<Job>, String> {
        parse_jobs(&toml::from_str(toml_text).unwrap(), Path::new("/jobs"))
    }

    const BASE: &str = r#"
["export:users"]
source = { database = "env:SRC", schema = "public" }
target = { database = "postgresql://u@h/db", schema = "staging" }
"#;

    #[test]
    fn globs_match_like_fnmatch() {
        for (p, n, want) in [
            ("export:*", "export:users", true),
            ("export:*", "import:users", false),
            ("*", "", true),
            ("a?c", "abc", true),
            ("a[bx]c", "axc", true),
            ("a[!b]c", "abc", false),
            ("t[0-9]", "t7", true),
            ("*:*s", "export:users", true),
            ("a[b", "a[b", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} vs {n}");
        }
    }

    #[test]
    fn parses_every_where_form() {
        let j = jobs(&format!(
            r#"{BASE}
["export:users".tables.users]
where = {{ status = "O'Brien", id = [1, 2], none = [], at = {{ gte = 2024-01-01, lt = "2025-01-01" }}, active = true, gone = {{ null = true }}, n = 1.5 }}
"#
        ))
        .unwrap();
        let Filter::Conditions(c) = &j[0].tables[0].filter else {
            panic!()
        };
        let names: Vec<&str> = c.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["status", "id", "none", "at", "active", "gone", "n"]);
        assert_eq!(
            c[0].1.0,
            vec![Test::Compare(Cmp::Eq, Scalar::Text("O'Brien".into()))]
        );
        assert_eq!(c[2].1.0, vec![Test::In(vec![])]);
        assert_eq!(
            c[3].1.0,
            vec![
                Test::Compare(Cmp::Gte, Scalar::Text("2024-01-01".into())),
                Test::Compare(Cmp::Lt, Scalar::Text("2025-01-01".into()))
            ]
        );
        assert_eq!(c[4].1.0, vec![Test::Compare(Cmp::Eq, Scalar::Bool(true))]);
        assert_eq!(c[5].1.0, vec![Test::Null(true)]);
        assert_eq!(
            c[6].1.0,
            vec![Test::Compare(Cmp::Eq, Scalar::Number("1.5".into()))]
        );
    }

    #[test]
    fn refuses_unknown_operators_and_keys() {
        let e = jobs(&format!(
            "{BASE}\n[\"export:users\".tables.users]\nwhere = {{ name = {{ like = \"a%\" }} }}\n"
        ))
        .unwrap_err();
        assert!(e.contains("where.name: like: unknown operator"), "{e}");
        let e = jobs(&format!(
            "{BASE}\n[\"export:users\".tables.users]\nwehre = {{}}\n"
        ))
        .unwrap_err();
        assert!(e.contains("unknown key `wehre`"), "{e}");
    }

    #[test]
    fn select_plugins_and_json() {
        let json = r#"{"jobs": {"j": {
            "source": {"database": "env:S", "schema": "public"},
            "target": {"url": "postgresql://h/d", "schema": "t"},
            "tables": {"users": {
                "select": {"*": true, "email": "lower({column_name})", "secret": null, "id": true},
                "plugins": ["a.wasm", {"plugin": "https://x/b.wasm", "params": {"key": "env:K", "n": 3}}]
            }, "*": {"where": "id > 3"}}}}}"#;
        let j = parse_jobs(&serde_json::from_str(json).unwrap(), Path::new("/etc/x")).unwrap();
        let t = &j[0].tables[0];
        assert_eq!(
            t.select,
            vec![
                (
                    "email".into(),
                    SelectItem::Expr("lower({column_name})".into())
                ),
                ("secret".into(), SelectItem::Omit),
                ("id".into(), SelectItem::Keep)
            ]
        );
        assert_eq!(t.plugins[0].location, "/etc/x/a.wasm");
        assert_eq!(t.plugins[1].location, "https://x/b.wasm");
        assert_eq!(t.plugins[1].params[0].1.env_name(), Some("K"));
        assert_eq!(t.plugins[1].params[1].1.raw(), "3");
        assert_eq!(j[0].tables[1].filter, Filter::Sql("id > 3".into()));
    }

    #[test]
    fn settings_read_the_environment() {
        let s = Setting::new("env:HOST_XMAT_TEST_UNSET_VARIABLE");
        assert!(
            s.resolve()
                .unwrap_err()
                .contains("HOST_XMAT_TEST_UNSET_VARIABLE")
        );
        assert_eq!(Setting::new("plain").resolve().unwrap(), "plain");
    }
}
