//! From a jobs document (a [`Node`] tree) to [`Job`]s.
//!
//! Two dialects share the shape, pg-xmat's `JOBS` dictionary with host's
//! additions (`plugins`, `subset`, `allow_uniqueness_loss`):
//! - [`Dialect::Host`], for TOML and JSON files: strict (unknown keys and
//!   operators are errors), `env:NAME` values, `select` overriding columns.
//! - [`Dialect::PgXmat`], for a pg-xmat jobs module as its Python computed
//!   it: what pg-xmat 0.3.0 means by each setting (see [`super::python`]).
//!   Where pg-xmat silently ignores something, so does host, but it says so
//!   in the job's notes; where pg-xmat would write nonsense SQL (`= 'None'`),
//!   host refuses and says why.

use std::path::Path;

use super::model::*;
use super::node::Node;

/// How to read the document.
#[derive(Debug, Clone, Copy)]
pub enum Dialect<'a> {
    Host,
    /// `unset`: environment variables the module read that were not set
    /// (they explain a `None` database).
    PgXmat {
        unset: &'a [String],
    },
}

/// The operator keys a `where` table may use.
pub const OPERATORS: &str = "eq, ne, gt, gte, lt, lte, in, null";

/// Something wrong at a place in the document.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{problem}", place(job.as_deref(), path))]
pub struct ParseError {
    /// The job it is in, if any.
    pub job: Option<String>,
    /// Keys from the job down (`tables`, `users`, `where`, `id`).
    pub path: Vec<String>,
    pub problem: Problem,
}

fn place(job: Option<&str>, path: &[String]) -> String {
    let mut s = String::new();
    if let Some(j) = job {
        s += &format!("job `{j}`: ");
    }
    if !path.is_empty() {
        s += &path.join(".");
        s += ": ";
    }
    s
}

impl ParseError {
    /// The path to look up the line of (the offending key itself, where the problem names one).
    pub fn key_path(&self) -> Vec<String> {
        let mut p: Vec<String> = self.job.iter().cloned().chain(self.path.clone()).collect();
        match &self.problem {
            Problem::UnknownKey { key, .. } | Problem::UnknownOperator { op: key } => {
                p.push(key.clone())
            }
            _ => {}
        }
        p
    }
}

/// What is wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Problem {
    #[error("expected {expected}, found {found}")]
    Expected {
        expected: &'static str,
        found: &'static str,
    },
    #[error("`{0}` is missing")]
    Missing(&'static str),
    #[error("unknown key `{key}` (expected: {})", expected.join(", "))]
    UnknownKey {
        key: String,
        expected: &'static [&'static str],
    },
    #[error("no jobs defined")]
    NoJobs,
    #[error("`tables` is empty")]
    NoTables,
    #[error("table `{0}` is listed twice")]
    TableTwice(String),
    #[error("schema `{0}` is a system schema")]
    SystemSchema(String),
    #[error("{op}: unknown operator (use one of: {OPERATORS})")]
    UnknownOperator { op: String },
    #[error("empty condition (use one of: {OPERATORS})")]
    EmptyCondition,
    #[error("compares with null (use `null = true`)")]
    NullComparison,
    #[error("a value contains a NUL character")]
    Nul,
    #[error("empty expression")]
    EmptyExpression,
    #[error("empty plugin location")]
    EmptyPlugin,
    #[error("unknown subset mode `{0}` (use off, follow or follow+parents)")]
    UnknownSubset(String),
    #[error(
        "None: pg-xmat 0.3.0 turns it into the text 'None' in SQL, which is not what a job means; \
         write the condition as a string (`\"col IS NULL\"`) or use a TOML jobs file (`null = true`)"
    )]
    PgXmatNone,
    #[error(
        "True: pg-xmat 0.3.0 leaves this column out (it copies only string expressions), \
         which is not what True says; write None to leave it out, or \"{{column_name}}\" to copy it"
    )]
    PgXmatTrue,
    #[error("is None{}", unset_hint(.0))]
    PgXmatUnsetDatabase(Vec<String>),
}

fn unset_hint(unset: &[String]) -> String {
    match unset {
        [] => String::new(),
        names => format!(
            ": the jobs module read {} from the environment, and {} not set",
            names.join(", "),
            if names.len() == 1 {
                "it is"
            } else {
                "they are"
            }
        ),
    }
}

/// Reads the document: a table of jobs, optionally under a `jobs` key.
/// `base` is the file's directory (plugin paths are relative to it).
pub fn jobs(root: &Node, base: &Path, dialect: Dialect<'_>) -> Result<Vec<Job>, ParseError> {
    let root = match root.get("jobs") {
        Some(jobs @ Node::Map(_)) if jobs.get("source").is_none() => jobs,
        _ => root,
    };
    let fail = |problem| ParseError {
        job: None,
        path: Vec::new(),
        problem,
    };
    let Node::Map(entries) = root else {
        return Err(fail(Problem::Expected {
            expected: "a table of jobs",
            found: root.kind(),
        }));
    };
    if entries.is_empty() {
        return Err(fail(Problem::NoJobs));
    }
    entries
        .iter()
        .map(|(name, node)| {
            let mut p = Parser {
                dialect,
                base,
                notes: Vec::new(),
            };
            p.job(name, node).map_err(|(path, problem)| ParseError {
                job: Some(name.clone()),
                path,
                problem,
            })
        })
        .collect()
}

/// A problem with the path to it, inside one job.
type Fail = (Vec<String>, Problem);

/// The path so far, extended by one key.
fn at(path: &[String], key: &str) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(key.to_string());
    p
}

fn fail<T>(path: &[String], problem: Problem) -> Result<T, Fail> {
    Err((path.to_vec(), problem))
}

fn expected<T>(path: &[String], expected: &'static str, found: &Node) -> Result<T, Fail> {
    fail(
        path,
        Problem::Expected {
            expected,
            found: found.kind(),
        },
    )
}

struct Parser<'a> {
    dialect: Dialect<'a>,
    base: &'a Path,
    notes: Vec<Note>,
}

const JOB_KEYS: &[&str] = &[
    "source",
    "target",
    "tables",
    "description",
    "subset",
    "tenant",
];
const ENDPOINT_KEYS: &[&str] = &["database", "url", "dsn", "schema"];
const TABLE_KEYS: &[&str] = &["where", "select", "plugins", "allow_uniqueness_loss"];
const PLUGIN_KEYS: &[&str] = &["plugin", "path", "url", "sha256", "params"];

impl Parser<'_> {
    fn pg_xmat(&self) -> bool {
        matches!(self.dialect, Dialect::PgXmat { .. })
    }

    fn note(&mut self, path: &[String], message: impl Into<String>) {
        self.notes.push(Note {
            path: path.to_vec(),
            line: None,
            message: message.into(),
        });
    }

    /// Unknown keys: errors for host files; pg-xmat ignores extra keys
    /// (pydantic's default), so a pg-xmat module's are noted and ignored.
    fn check_keys(
        &mut self,
        path: &[String],
        entries: &[(String, Node)],
        allowed: &'static [&'static str],
    ) -> Result<(), Fail> {
        for (k, _) in entries
            .iter()
            .filter(|(k, _)| !allowed.contains(&k.as_str()))
        {
            if self.pg_xmat() {
                self.note(
                    &at(path, k),
                    "not a setting pg-xmat or host knows; pg-xmat ignores it, and so does host",
                );
            } else {
                return fail(
                    path,
                    Problem::UnknownKey {
                        key: k.clone(),
                        expected: allowed,
                    },
                );
            }
        }
        Ok(())
    }

    fn job(&mut self, name: &str, node: &Node) -> Result<Job, Fail> {
        let root: &[String] = &[];
        let Node::Map(entries) = node else {
            return expected(root, "a job", node);
        };
        self.check_keys(root, entries, JOB_KEYS)?;
        let source = self.endpoint("source", node)?;
        let target = self.endpoint("target", node)?;
        if target.schema.starts_with("pg_") || target.schema == "information_schema" {
            return fail(
                &["target".into()],
                Problem::SystemSchema(target.schema.clone()),
            );
        }
        let tables_path = at(root, "tables");
        let tables = match node.get("tables") {
            None => return fail(root, Problem::Missing("tables")),
            Some(Node::List(names)) => names
                .iter()
                .enumerate()
                .map(|(i, n)| match n {
                    Node::Str(s) => Ok(TableEntry {
                        name: s.clone(),
                        ..TableEntry::default()
                    }),
                    other => expected(&at(&tables_path, &i.to_string()), "a table name", other),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(Node::Map(entries)) => entries
                .iter()
                .map(|(t, n)| self.table(&at(&tables_path, t), t, n))
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => return expected(&tables_path, "a table", other),
        };
        if tables.is_empty() {
            return fail(root, Problem::NoTables);
        }
        for (i, t) in tables.iter().enumerate() {
            if tables[..i].iter().any(|o| o.name == t.name) {
                return fail(&tables_path, Problem::TableTwice(t.name.clone()));
            }
        }
        let subset = match node.get("subset") {
            None => Subset::Off,
            Some(Node::Str(s)) => match s.as_str() {
                "off" => Subset::Off,
                "follow" => Subset::Follow,
                "follow+parents" => Subset::FollowParents,
                other => return fail(&at(root, "subset"), Problem::UnknownSubset(other.into())),
            },
            Some(other) => return expected(&at(root, "subset"), "a string", other),
        };
        let tenant = match node.get("tenant") {
            None => None,
            Some(Node::Str(t)) if !t.is_empty() => Some(t.clone()),
            Some(other) => return expected(&at(root, "tenant"), "a tenant's name", other),
        };
        Ok(Job {
            name: name.to_string(),
            source,
            target,
            tables,
            wildcard: if self.pg_xmat() {
                Wildcard::Relations
            } else {
                Wildcard::Tables
            },
            subset,
            dangling_keys: if self.pg_xmat() {
                DanglingKeys::LeaveOut
            } else {
                DanglingKeys::Fail
            },
            notes: std::mem::take(&mut self.notes),
            tenant,
            scope: Default::default(),
        })
    }

    fn endpoint(&mut self, key: &'static str, job: &Node) -> Result<Endpoint, Fail> {
        let path = vec![key.to_string()];
        let Some(node) = job.get(key) else {
            return fail(&[], Problem::Missing(key));
        };
        let Node::Map(entries) = node else {
            return expected(&path, "{ database = ..., schema = ... }", node);
        };
        self.check_keys(&path, entries, ENDPOINT_KEYS)?;
        let database = ["database", "url", "dsn"]
            .iter()
            .find_map(|k| node.get(k).map(|n| (*k, n)));
        let database = match (database, self.dialect) {
            (None, _) => return fail(&path, Problem::Missing("database")),
            (Some((_, Node::Str(s))), Dialect::Host) => Setting::new(s.clone()),
            // The module computed the value: it is the text itself.
            (Some((_, Node::Str(s))), Dialect::PgXmat { .. }) => Setting::Text(s.clone()),
            (Some((k, Node::Null)), Dialect::PgXmat { unset }) => {
                return fail(&at(&path, k), Problem::PgXmatUnsetDatabase(unset.to_vec()));
            }
            (Some((k, other)), _) => return expected(&at(&path, k), "a string", other),
        };
        let schema = match node.get("schema") {
            Some(Node::Str(s)) if !s.is_empty() => s.clone(),
            Some(other) => return expected(&at(&path, "schema"), "a name", other),
            None => return fail(&path, Problem::Missing("schema")),
        };
        Ok(Endpoint { database, schema })
    }

    fn table(&mut self, path: &[String], name: &str, node: &Node) -> Result<TableEntry, Fail> {
        let entries: &[(String, Node)] = match node {
            Node::Map(m) => m,
            // pg-xmat's `Query` fields are optional: `"users": None` is not valid
            // there, but `{}` is; host takes an empty entry either way.
            other => return expected(path, "a table entry", other),
        };
        self.check_keys(path, entries, TABLE_KEYS)?;
        let filter = match node.get("where") {
            None | Some(Node::Null) => Filter::All,
            Some(Node::Str(sql)) if sql.trim().is_empty() => Filter::All,
            Some(Node::Str(sql)) => Filter::Sql(sql.clone()),
            Some(Node::Map(conds)) => self.conditions(&at(path, "where"), conds)?,
            Some(other) => return expected(&at(path, "where"), "a table", other),
        };
        let select = match node.get("select") {
            None | Some(Node::Null) => Select::default(),
            Some(Node::Map(items)) => self.select(&at(path, "select"), items)?,
            Some(other) => return expected(&at(path, "select"), "a table", other),
        };
        let plugins = match node.get("plugins") {
            None => Vec::new(),
            Some(Node::List(items)) => items
                .iter()
                .enumerate()
                .map(|(i, p)| self.plugin(&at(&at(path, "plugins"), &i.to_string()), p))
                .collect::<Result<_, _>>()?,
            Some(other) => return expected(&at(path, "plugins"), "a list", other),
        };
        let allow_path = at(path, "allow_uniqueness_loss");
        let allow_uniqueness_loss = match node.get("allow_uniqueness_loss") {
            None | Some(Node::Bool(false)) => AllowLoss::No,
            Some(Node::Bool(true)) => AllowLoss::All,
            Some(Node::List(cols)) => AllowLoss::Columns(
                cols.iter()
                    .map(|c| match c {
                        Node::Str(s) => Ok(s.clone()),
                        other => expected(&allow_path, "column names", other),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(other) => return expected(&allow_path, "true or a list of columns", other),
        };
        Ok(TableEntry {
            name: name.to_string(),
            filter,
            select,
            plugins,
            allow_uniqueness_loss,
        })
    }

    fn conditions(&mut self, path: &[String], conds: &[(String, Node)]) -> Result<Filter, Fail> {
        let mut out = Vec::new();
        for (col, v) in conds {
            let p = at(path, col);
            let condition = match self.dialect {
                Dialect::Host => Some(condition(&p, v)?),
                Dialect::PgXmat { .. } => self.pg_xmat_condition(&p, v)?,
            };
            out.extend(condition.map(|c| (col.clone(), c)));
        }
        Ok(if out.is_empty() {
            Filter::All
        } else {
            Filter::Conditions(out)
        })
    }

    /// pg-xmat 0.3.0's `_build_where_clause`: a list is `IN` (an empty one
    /// adds no condition), a dict is `gte`/`lte` (other keys ignored), a
    /// boolean is `= true/false`, anything else `= 'value'`.
    fn pg_xmat_condition(&mut self, path: &[String], v: &Node) -> Result<Option<Condition>, Fail> {
        let value = |n: &Node| match n {
            Node::Null => fail(path, Problem::PgXmatNone),
            n => scalar(path, n),
        };
        Ok(match v {
            Node::List(items) if items.is_empty() => {
                self.note(
                    path,
                    "an empty list: pg-xmat adds no condition for it (every row is copied), and neither does host",
                );
                None
            }
            Node::List(items) => Some(Condition(vec![Test::In(
                items.iter().map(value).collect::<Result<_, _>>()?,
            )])),
            Node::Map(ops) => {
                let mut tests = Vec::new();
                for (op, x) in ops {
                    match op.as_str() {
                        "gte" => tests.push(Test::Compare(Cmp::Gte, value(x)?)),
                        "lte" => tests.push(Test::Compare(Cmp::Lte, value(x)?)),
                        _ => self.note(
                            &at(path, op),
                            "pg-xmat 0.3.0 knows only gte and lte here and ignores this key; so does host",
                        ),
                    }
                }
                (!tests.is_empty()).then_some(Condition(tests))
            }
            Node::Null => return fail(path, Problem::PgXmatNone),
            n => Some(Condition(vec![Test::Compare(Cmp::Eq, value(n)?)])),
        })
    }

    fn select(&mut self, path: &[String], items: &[(String, Node)]) -> Result<Select, Fail> {
        let pg_xmat = self.pg_xmat();
        // pg-xmat: without `"*"` the expressions are the whole column list.
        let others = if pg_xmat && !items.is_empty() && !items.iter().any(|(c, _)| c == "*") {
            Others::Left
        } else {
            Others::Copied
        };
        let items = items
            .iter()
            .filter(|(col, _)| col != "*") // pg-xmat's "all other columns" marker
            .map(|(col, v)| {
                let p = at(path, col);
                let item = match v {
                    Node::Str(e) if e.trim().is_empty() => {
                        return fail(&p, Problem::EmptyExpression);
                    }
                    Node::Str(e) => SelectItem::Expr(e.clone()),
                    Node::Bool(true) if pg_xmat => return fail(&p, Problem::PgXmatTrue),
                    Node::Bool(true) => SelectItem::Keep,
                    Node::Bool(false) | Node::Null => SelectItem::Omit,
                    other => return expected(&p, "a SQL expression or false", other),
                };
                Ok((col.clone(), item))
            })
            .collect::<Result<_, _>>()?;
        Ok(Select { items, others })
    }

    fn plugin(&mut self, path: &[String], node: &Node) -> Result<PluginRef, Fail> {
        let (name, location, params) = match node {
            Node::Str(s) => (s.clone(), s.clone(), Vec::new()),
            Node::Map(entries) => {
                self.check_keys(path, entries, PLUGIN_KEYS)?;
                let location = ["plugin", "path", "url"]
                    .iter()
                    .find_map(|k| node.get(k).map(|n| (*k, n)));
                let name = match location {
                    None => return fail(path, Problem::Missing("plugin")),
                    Some((_, Node::Str(l))) => l.clone(),
                    Some((k, other)) => return expected(&at(path, k), "a path", other),
                };
                let mut location = name.clone();
                match node.get("sha256") {
                    Some(Node::Str(d)) => location = format!("{location}#sha256={d}"),
                    Some(other) => return expected(&at(path, "sha256"), "hex", other),
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
                                    return expected(
                                        &at(&at(path, "params"), k),
                                        "a string",
                                        other,
                                    );
                                }
                            };
                            let setting = match self.dialect {
                                Dialect::Host => Setting::new(text),
                                Dialect::PgXmat { .. } => Setting::Text(text),
                            };
                            Ok((k.clone(), setting))
                        })
                        .collect::<Result<_, _>>()?,
                    Some(other) => return expected(&at(path, "params"), "a table", other),
                };
                (name, location, params)
            }
            other => return expected(path, "a plugin", other),
        };
        if location.is_empty() {
            return fail(path, Problem::EmptyPlugin);
        }
        Ok(PluginRef {
            name,
            location: relative_to(self.base, &location),
            params,
        })
    }
}

fn condition(path: &[String], node: &Node) -> Result<Condition, Fail> {
    let test = match node {
        Node::Null => Test::Null(true),
        Node::List(items) => Test::In(
            items
                .iter()
                .map(|n| scalar(path, n))
                .collect::<Result<_, _>>()?,
        ),
        Node::Map(ops) if ops.is_empty() => return fail(path, Problem::EmptyCondition),
        Node::Map(ops) => {
            return ops
                .iter()
                .map(|(op, v)| test(path, op, v))
                .collect::<Result<_, _>>()
                .map(Condition);
        }
        scalar_node => Test::Compare(Cmp::Eq, scalar(path, scalar_node)?),
    };
    Ok(Condition(vec![test]))
}

fn test(path: &[String], op: &str, value: &Node) -> Result<Test, Fail> {
    let cmp = match op {
        "eq" => Cmp::Eq,
        "ne" => Cmp::Ne,
        "gt" => Cmp::Gt,
        "gte" => Cmp::Gte,
        "lt" => Cmp::Lt,
        "lte" => Cmp::Lte,
        "in" => {
            return match value {
                Node::List(items) => Ok(Test::In(
                    items
                        .iter()
                        .map(|n| scalar(path, n))
                        .collect::<Result<_, _>>()?,
                )),
                other => expected(&at(path, op), "a list", other),
            };
        }
        "null" => {
            return match value {
                Node::Bool(b) => Ok(Test::Null(*b)),
                other => expected(&at(path, op), "true or false", other),
            };
        }
        _ => return fail(path, Problem::UnknownOperator { op: op.to_string() }),
    };
    match scalar(path, value)? {
        Scalar::Null => fail(&at(path, op), Problem::NullComparison),
        s => Ok(Test::Compare(cmp, s)),
    }
}

fn scalar(path: &[String], node: &Node) -> Result<Scalar, Fail> {
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
        Node::Str(s) if s.contains('\0') => return fail(path, Problem::Nul),
        Node::Str(s) => Scalar::Text(s.clone()),
        other => return expected(path, "a value", other),
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

#[cfg(test)]
mod tests {
    use super::super::node::from_toml;
    use super::*;

    fn host(toml_text: &str) -> Result<Vec<Job>, ParseError> {
        jobs(
            &from_toml(toml_text).unwrap().0,
            Path::new("/jobs"),
            Dialect::Host,
        )
    }

    fn pg_xmat(json: &str) -> Result<Vec<Job>, ParseError> {
        let root: Node = serde_json::from_str(json).unwrap();
        jobs(
            &root,
            Path::new("/jobs"),
            Dialect::PgXmat {
                unset: &["SRC_URL".into()],
            },
        )
    }

    const BASE: &str = r#"
["export:users"]
source = { database = "env:SRC", schema = "public" }
target = { database = "postgresql://u@h/db", schema = "staging" }
"#;

    #[test]
    fn parses_every_where_form() {
        let j = host(&format!(
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
        assert_eq!(j[0].subset, Subset::Off);
        assert_eq!(j[0].wildcard, Wildcard::Tables);
    }

    #[test]
    fn errors_name_the_job_and_the_path() {
        let e = host(&format!(
            "{BASE}\n[\"export:users\".tables.users]\nwhere = {{ name = {{ like = \"a%\" }} }}\n"
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "job `export:users`: tables.users.where.name: like: unknown operator (use one of: eq, ne, gt, gte, lt, lte, in, null)"
        );
        assert_eq!(
            e.key_path(),
            ["export:users", "tables", "users", "where", "name", "like"]
        );
        let e = host(&format!(
            "{BASE}\n[\"export:users\".tables.users]\nwehre = {{}}\n"
        ))
        .unwrap_err();
        assert!(
            matches!(&e.problem, Problem::UnknownKey { key, .. } if key == "wehre"),
            "{e}"
        );
        let e = host(&format!(
            "{BASE}\nsubset = \"sideways\"\ntables = [\"a\"]\n"
        ))
        .unwrap_err();
        assert!(matches!(e.problem, Problem::UnknownSubset(_)), "{e}");
        let e = host(&format!("{BASE}\ntables = [\"a\", \"a\"]\n")).unwrap_err();
        assert!(matches!(e.problem, Problem::TableTwice(_)), "{e}");
    }

    #[test]
    fn select_plugins_subset_and_json() {
        let json = r#"{"jobs": {"j": {
            "source": {"database": "env:S", "schema": "public"},
            "target": {"url": "postgresql://h/d", "schema": "t"},
            "subset": "follow+parents",
            "tables": {"users": {
                "select": {"*": true, "email": "lower({column_name})", "secret": null, "id": true},
                "plugins": ["a.wasm", {"plugin": "https://x/b.wasm", "params": {"key": "env:K", "n": 3}}],
                "allow_uniqueness_loss": ["email"]
            }, "*": {"where": "id > 3", "allow_uniqueness_loss": true}}}}}"#;
        let j = jobs(
            &serde_json::from_str(json).unwrap(),
            Path::new("/etc/x"),
            Dialect::Host,
        )
        .unwrap();
        let t = &j[0].tables[0];
        assert_eq!(
            t.select.items,
            vec![
                (
                    "email".into(),
                    SelectItem::Expr("lower({column_name})".into())
                ),
                ("secret".into(), SelectItem::Omit),
                ("id".into(), SelectItem::Keep)
            ]
        );
        assert_eq!(t.select.others, Others::Copied);
        assert_eq!(t.plugins[0].location, "/etc/x/a.wasm");
        assert_eq!(t.plugins[1].location, "https://x/b.wasm");
        assert_eq!(t.plugins[1].params[0].1.env_name(), Some("K"));
        assert_eq!(t.plugins[1].params[1].1.raw(), "3");
        assert_eq!(
            t.allow_uniqueness_loss,
            AllowLoss::Columns(vec!["email".into()])
        );
        assert_eq!(j[0].tables[1].filter, Filter::Sql("id > 3".into()));
        assert_eq!(j[0].tables[1].allow_uniqueness_loss, AllowLoss::All);
        assert_eq!(j[0].subset, Subset::FollowParents);
    }

    #[test]
    fn pg_xmat_means_what_pg_xmat_means() {
        let j = pg_xmat(
            r#"{"a": {
            "source": {"database": "postgresql://h/s", "schema": "public"},
            "target": {"database": "env:NOT_READ", "schema": "t", "comment": "ignored"},
            "tables": {
              "users": {"where": {"ids": [], "n": {"gt": 1, "gte": 2}, "s": "x", "b": false},
                        "select": {"email": "lower({column_name})", "name": null}},
              "orders": {"select": {"*": true, "note": false}}}}}"#,
        )
        .unwrap();
        let a = &j[0];
        assert_eq!(a.wildcard, Wildcard::Relations);
        assert_eq!(a.target.database, Setting::Text("env:NOT_READ".into()));
        let users = &a.tables[0];
        assert_eq!(
            users.filter,
            Filter::Conditions(vec![
                (
                    "n".into(),
                    Condition(vec![Test::Compare(Cmp::Gte, Scalar::Number("2".into()))])
                ),
                (
                    "s".into(),
                    Condition(vec![Test::Compare(Cmp::Eq, Scalar::Text("x".into()))])
                ),
                (
                    "b".into(),
                    Condition(vec![Test::Compare(Cmp::Eq, Scalar::Bool(false))])
                ),
            ])
        );
        assert_eq!(users.select.others, Others::Left);
        assert_eq!(a.tables[1].select.others, Others::Copied);
        assert_eq!(
            a.tables[1].select.items,
            vec![("note".into(), SelectItem::Omit)]
        );
        let notes: Vec<String> = a.notes.iter().map(|n| n.path.join(".")).collect();
        assert_eq!(
            notes,
            [
                "target.comment",
                "tables.users.where.ids",
                "tables.users.where.n.gt"
            ]
        );

        let bad = |tables: &str| {
            pg_xmat(&format!(
                r#"{{"a": {{"source": {{"database": "x", "schema": "s"}}, "target": {{"database": "y", "schema": "t"}}, "tables": {tables}}}}}"#
            ))
            .unwrap_err()
            .problem
        };
        assert!(matches!(
            bad(r#"{"u": {"where": {"x": null}}}"#),
            Problem::PgXmatNone
        ));
        assert!(matches!(
            bad(r#"{"u": {"where": {"x": [1, null]}}}"#),
            Problem::PgXmatNone
        ));
        assert!(matches!(
            bad(r#"{"u": {"select": {"x": true}}}"#),
            Problem::PgXmatTrue
        ));
        let e = pg_xmat(r#"{"a": {"source": {"database": null, "schema": "s"}, "target": {"database": "y", "schema": "t"}, "tables": {"u": {}}}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "job `a`: source.database: is None: the jobs module read SRC_URL from the environment, and it is not set"
        );
    }
}
