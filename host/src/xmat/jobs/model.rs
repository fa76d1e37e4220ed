//! What a job says, once read: the same whatever file format it came from.

/// One job: copy tables from a source schema into a target schema.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub source: Endpoint,
    pub target: Endpoint,
    /// Table entries in file order; `*` stands for every table of the source schema.
    pub tables: Vec<TableEntry>,
    /// What `*` stands for.
    pub wildcard: Wildcard,
    /// Whether the `where` of a table restricts the tables that reference it.
    pub subset: Subset,
    /// What a foreign key whose rows reference rows that were not copied does.
    pub dangling_keys: DanglingKeys,
    /// Things in the file that were accepted but are worth a look (pg-xmat
    /// settings it ignores, which host ignores too).
    pub notes: Vec<Note>,
    /// The tenant the job runs as (`tenant = "acme"`): it runs only under a
    /// policy, bound to that tenant's plugins, data and limits.
    pub tenant: Option<String>,
    /// What the job may read. Never from the file: everything, until
    /// [`crate::xmat::tenant::bind`] narrows it to the tenant's scope.
    pub scope: crate::policy::DataScope,
}

/// A setting that was accepted but deserves a look, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Keys from the job down.
    pub path: Vec<String>,
    /// The line in the jobs file, where known.
    pub line: Option<u32>,
    pub message: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        write!(f, "{}: {}", self.path.join("."), self.message)
    }
}

/// A database and a schema in it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Connection string, or `env:NAME`.
    pub database: Setting,
    pub schema: String,
}

/// A value that may be read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    /// Used as written.
    Text(String),
    /// `env:NAME` in a TOML or JSON file: the variable's value, read when the job runs.
    Env(String),
    /// A policy's secret, read when the job was bound to its tenant: used,
    /// never shown.
    Hidden(crate::policy::Secret),
}

/// An `env:NAME` setting whose variable is not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {name} is not set")]
pub struct UnsetVariable {
    pub name: String,
}

impl Setting {
    /// A setting as written in a TOML or JSON file (`env:NAME`, or text).
    pub fn new(raw: impl Into<String>) -> Setting {
        let raw = raw.into();
        match raw.strip_prefix("env:") {
            Some(name) => Setting::Env(name.to_string()),
            None => Setting::Text(raw),
        }
    }

    /// The variable name, for `env:NAME`.
    pub fn env_name(&self) -> Option<&str> {
        match self {
            Setting::Env(name) => Some(name),
            Setting::Text(_) | Setting::Hidden(_) => None,
        }
    }

    /// The value: the text itself, or the variable's value for `env:NAME`.
    pub fn resolve(&self) -> Result<String, UnsetVariable> {
        match self {
            Setting::Text(t) => Ok(t.clone()),
            Setting::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(v),
                _ => Err(UnsetVariable { name: name.clone() }),
            },
            Setting::Hidden(secret) => Ok(secret.expose().to_string()),
        }
    }

    /// As written (`env:NAME`, or the literal text). Callers redact secrets.
    pub fn raw(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Setting::Text(t) => t.into(),
            Setting::Env(name) => format!("env:{name}").into(),
            Setting::Hidden(_) => "***".into(),
        }
    }
}

/// What a `*` table entry stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wildcard {
    /// Tables and partitioned tables (views and foreign tables are listed as not copied).
    #[default]
    Tables,
    /// Views and foreign tables too, materialized as tables: what pg-xmat's
    /// `*` does (it lists `information_schema.tables`).
    Relations,
}

/// How a `where` reaches other tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Subset {
    /// Each table gets its own `where` and nothing else: a row referencing a
    /// row that was not copied fails the foreign key at the end.
    #[default]
    Off,
    /// `subset = "follow"`: a table keeps only the rows whose referenced rows
    /// are kept (transitively, through every foreign key between copied tables).
    Follow,
    /// `subset = "follow+parents"`: tables without a `where` follow as above;
    /// a table with its own `where` keeps its rows, and the rows they
    /// reference are added to the referenced tables.
    FollowParents,
}

impl Subset {
    /// As written in a job file.
    pub fn name(self) -> &'static str {
        match self {
            Subset::Off => "off",
            Subset::Follow => "follow",
            Subset::FollowParents => "follow+parents",
        }
    }
}

/// A foreign key of the source that the copied rows do not satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DanglingKeys {
    /// The run fails, naming the key and how many rows dangle; the old target stays.
    #[default]
    Fail,
    /// The key is left out of the target, with a warning: what pg-xmat does
    /// (its constraints are added one by one, and one that fails is skipped).
    LeaveOut,
}

/// One entry of `tables`.
#[derive(Debug, Clone, Default)]
pub struct TableEntry {
    /// The table's name, or `*`.
    pub name: String,
    pub filter: Filter,
    pub select: Select,
    pub plugins: Vec<PluginRef>,
    /// Unique keys whose columns may be transformed without proof that
    /// distinct values stay distinct.
    pub allow_uniqueness_loss: AllowLoss,
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

/// The `select` of a table: overrides per column, and what happens to the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Select {
    /// Column overrides in file order.
    pub items: Vec<(String, SelectItem)>,
    pub others: Others,
}

/// What happens to the columns `select` does not name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Others {
    /// Copied unchanged (host's rule, and pg-xmat's with `"*": True`).
    #[default]
    Copied,
    /// Left out: the named expressions are the whole column list (pg-xmat
    /// without `"*"`).
    Left,
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

/// Unique keys whose transformed columns are accepted without proof.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowLoss {
    /// None: a transform that may not keep distinct values distinct, on a
    /// column of a primary key, unique constraint or unique index, refuses the run.
    #[default]
    No,
    /// `allow_uniqueness_loss = true`: every column of the table.
    All,
    /// `allow_uniqueness_loss = ["email", ...]`: these columns.
    Columns(Vec<String>),
}

impl AllowLoss {
    /// Whether the risk on `column` is accepted.
    pub fn covers(&self, column: &str) -> bool {
        match self {
            AllowLoss::No => false,
            AllowLoss::All => true,
            AllowLoss::Columns(c) => c.iter().any(|c| c == column),
        }
    }
}

/// A plugin to run on the table's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    /// As the file names it: under a policy, the name of one of the policy's plugins.
    pub name: String,
    /// Path (relative paths are relative to the jobs file) or URL, with any `#sha256=` pin.
    pub location: String,
    /// Parameters in file order; values may be `env:NAME`.
    pub params: Vec<(String, Setting)>,
}

/// Why a plugin entry cannot be loaded as written.
#[derive(Debug, thiserror::Error)]
pub enum PluginRefError {
    #[error("{0}")]
    Location(String),
    #[error("parameter {key}: {source}")]
    Param { key: String, source: UnsetVariable },
}

impl PluginRef {
    /// The plugin spec to load, with `env:NAME` parameters read now.
    pub fn spec(&self) -> Result<crate::plugin::PluginSpec, PluginRefError> {
        let mut spec =
            crate::plugin::PluginSpec::parse(&self.location).map_err(PluginRefError::Location)?;
        for (k, v) in &self.params {
            let value = v.resolve().map_err(|source| PluginRefError::Param {
                key: k.clone(),
                source,
            })?;
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
                    "***".into()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_the_environment() {
        let s = Setting::new("env:HOST_XMAT_TEST_UNSET_VARIABLE");
        assert_eq!(
            s.resolve().unwrap_err().name,
            "HOST_XMAT_TEST_UNSET_VARIABLE"
        );
        assert_eq!(Setting::new("plain").resolve().unwrap(), "plain");
        // A value a pg-xmat file computed is never read as `env:NAME`.
        let text = Setting::Text("env:NOT_A_VARIABLE".into());
        assert_eq!(text.env_name(), None);
        assert_eq!(text.resolve().unwrap(), "env:NOT_A_VARIABLE");
        assert_eq!(Setting::new("env:K").raw(), "env:K");
    }
}
