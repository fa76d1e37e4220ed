//! The jobs file: named jobs, each a source, a target and the tables to copy
//! with their `where`, `select` and `plugins`.
//!
//! ```toml
//! ["tenant:acme"]
//! source = { database = "env:PROD_URL", schema = "public" }
//! target = { database = "postgresql://app@staging/app", schema = "acme" }
//! subset = "follow"                        # tables referencing a filtered table follow it
//!
//! ["tenant:acme".tables."*"]
//! where = { tenant_id = 42 }               # only on tables that have tenant_id
//!
//! ["tenant:acme".tables.users]
//! where = { tenant_id = 42, created_at = { gte = "2024-01-01" } }
//! select = { email = "lower({column_name})", password_hash = false }
//! plugins = [{ plugin = "anonymize.wasm", params = { key = "env:ANON_KEY", name = "name" } }]
//! allow_uniqueness_loss = ["email"]        # lower() may merge two emails of a unique index
//! ```
//!
//! Three formats, one [`Job`]:
//! - TOML (`*.toml`, and any other name) and JSON (`*.json`): the shape is
//!   pg-xmat's `JOBS` dictionary, with `plugins`, `subset` and
//!   `allow_uniqueness_loss` added. Differences from pg-xmat, on purpose:
//!   `select` never narrows the column list (every column not named is
//!   copied unchanged), an empty `IN` list matches nothing instead of
//!   everything, and unknown keys or operators are errors instead of being ignored.
//! - A pg-xmat jobs module (`*.py`), unmodified: evaluated by Python and read
//!   with pg-xmat's own meaning ([`python`]).
//!
//! Errors name the file, the line where it can be found, the job and the key.

mod lines;
mod model;
mod node;
mod parse;
pub mod python;

use std::path::{Path, PathBuf};

pub use lines::KeyLines;
pub use model::*;
pub use node::{Node, line_of};
pub use parse::{Dialect, OPERATORS, ParseError, Problem};
pub use python::PythonError;

/// A parsed jobs file.
#[derive(Debug, Clone)]
pub struct JobFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Jobs in file order.
    pub jobs: Vec<Job>,
}

/// Why a jobs file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("{}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML or JSON at all.
    #[error("{}{}: {message}", file.display(), line_suffix(*line))]
    Syntax {
        file: PathBuf,
        line: Option<u32>,
        message: String,
    },
    /// Well-formed, but not a valid set of jobs.
    #[error("{}{}: {error}", file.display(), line_suffix(*line))]
    Invalid {
        file: PathBuf,
        line: Option<u32>,
        error: ParseError,
    },
    /// A pg-xmat module that could not be evaluated.
    #[error("{}{}: {source}", file.display(), line_suffix(source.line()))]
    Python { file: PathBuf, source: PythonError },
}

fn line_suffix(line: Option<u32>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

/// The format of a jobs file, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
    /// A pg-xmat jobs module.
    Python,
}

impl Format {
    /// `*.json` is JSON, `*.py` a pg-xmat module, anything else TOML.
    pub fn of(path: &Path) -> Format {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("json") => Format::Json,
            Some("py") => Format::Python,
            _ => Format::Toml,
        }
    }
}

/// How to read a jobs file.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The Python that evaluates a pg-xmat module (default `python3`).
    pub python: Option<PathBuf>,
    /// How long evaluating a module may take.
    pub python_timeout: std::time::Duration,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            python: None,
            python_timeout: python::TIMEOUT,
        }
    }
}

impl JobFile {
    /// Reads and checks a jobs file (its format from its name, see [`Format`]).
    pub fn load(path: &Path) -> Result<JobFile, JobsError> {
        JobFile::load_with(path, &LoadOptions::default())
    }

    /// [`JobFile::load`] with options.
    pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<JobFile, JobsError> {
        let file = path.to_path_buf();
        let base = path.parent().unwrap_or(Path::new(""));
        let parsed = match Format::of(path) {
            Format::Python => {
                let module = python::evaluate(path, opts.python.as_deref(), opts.python_timeout)
                    .map_err(|source| JobsError::Python {
                        file: file.clone(),
                        source,
                    })?;
                let dialect = Dialect::PgXmat {
                    unset: &module.unset,
                };
                (parse::jobs(&module.jobs, base, dialect), module.lines)
            }
            format => {
                let text = std::fs::read_to_string(path).map_err(|source| JobsError::Read {
                    file: file.clone(),
                    source,
                })?;
                let syntax = |message: String, line: Option<u32>| JobsError::Syntax {
                    file: file.clone(),
                    line,
                    message,
                };
                let (root, lines) = if format == Format::Json {
                    let root: Node = serde_json::from_str(&text).map_err(|e| {
                        let line = u32::try_from(e.line()).ok().filter(|&l| l > 0);
                        syntax(e.to_string(), line)
                    })?;
                    (root, lines::json_keys(&text))
                } else {
                    node::from_toml(&text).map_err(|(m, line)| syntax(m, line))?
                };
                (parse::jobs(&root, base, Dialect::Host), lines)
            }
        };
        let (result, lines) = parsed;
        let mut jobs = result.map_err(|error| JobsError::Invalid {
            file: file.clone(),
            line: lines.find(&error.key_path()),
            error,
        })?;
        for job in &mut jobs {
            for note in &mut job.notes {
                let full: Vec<&str> = std::iter::once(job.name.as_str())
                    .chain(note.path.iter().map(String::as_str))
                    .collect();
                note.line = lines.find(&full);
            }
        }
        Ok(JobFile { path: file, jobs })
    }

    /// The jobs whose names match a glob (as pg-xmat's `fnmatch`), in file order.
    pub fn matching(&self, pattern: &str) -> Vec<&Job> {
        self.jobs
            .iter()
            .filter(|j| super::glob::matches(pattern, &j.name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str, text: &str) -> Result<JobFile, JobsError> {
        let dir = std::env::temp_dir().join(format!("host-jobs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        JobFile::load(&p)
    }

    #[test]
    fn errors_name_file_and_line() {
        let toml = "[a]\nsource = { database = \"x\", schema = \"s\" }\ntarget = { database = \"y\", schema = \"t\" }\n\n[a.tables.users]\nwhere = { id = { like = 1 } }\n";
        let e = load("lines.toml", toml).unwrap_err().to_string();
        assert!(e.ends_with("lines.toml:6: job `a`: tables.users.where.id: like: unknown operator (use one of: eq, ne, gt, gte, lt, lte, in, null)"), "{e}");
        let json = "{\"a\": {\n \"source\": {\"database\": \"x\", \"schema\": \"s\"},\n \"target\": {\"database\": \"y\", \"schema\": \"t\"},\n \"tables\": {\"u\": {\n   \"wehre\": {}}}}}";
        let e = load("lines.json", json).unwrap_err();
        assert!(matches!(e, JobsError::Invalid { line: Some(5), .. }), "{e}");
        let e = load("syntax.json", "{\"a\": \n,}").unwrap_err();
        assert!(matches!(e, JobsError::Syntax { line: Some(2), .. }), "{e}");
        let e = load("syntax.toml", "a = 1\n[b\n").unwrap_err();
        assert!(matches!(e, JobsError::Syntax { line: Some(2), .. }), "{e}");
    }

    /// pg-xmat modules are evaluated by the system's `python3`.
    #[test]
    fn pg_xmat_modules_are_evaluated() {
        let module = r#"import os, datetime
print("the module's own output goes to stderr")
SRC = os.getenv("HOST_JOBS_TEST_UNSET_A")

def job(schema):
    return {
        "source": {"database": "postgresql://h/src", "schema": "public"},
        "target": {"database": os.environ.get("HOST_JOBS_TEST_UNSET_B", "postgresql://h/dst"), "schema": schema},
        "tables": {"users": {"where": {"born": {"gte": datetime.date(2001, 2, 3)}, "ids": (1, 2)}}},
    }

JOBS = {"a:1": job("a"), "a:2": job("b")}
"#;
        let f = load("jobs.py", module).unwrap();
        assert_eq!(f.jobs.len(), 2);
        assert_eq!(f.jobs[1].target.schema, "b");
        assert_eq!(
            f.jobs[0].target.database,
            Setting::Text("postgresql://h/dst".into())
        );
        let Filter::Conditions(c) = &f.jobs[0].tables[0].filter else {
            panic!()
        };
        assert_eq!(
            c[0].1.0,
            vec![Test::Compare(Cmp::Gte, Scalar::Text("2001-02-03".into()))]
        );
        assert_eq!(
            c[1].1.0,
            vec![Test::In(vec![
                Scalar::Number("1".into()),
                Scalar::Number("2".into())
            ])]
        );

        let unset = "import os\nJOBS = {\"j\": {\n  \"source\": {\"database\": os.getenv(\"HOST_JOBS_TEST_UNSET_C\"), \"schema\": \"s\"},\n  \"target\": {\"database\": \"x\", \"schema\": \"t\"}, \"tables\": {\"u\": {}}}}\n";
        let e = load("unset.py", unset).unwrap_err().to_string();
        assert!(e.ends_with("unset.py:3: job `j`: source.database: is None: the jobs module read HOST_JOBS_TEST_UNSET_C from the environment, and it is not set"), "{e}");

        let raises = "import os\n\nJOBS = {\"j\": os.environ[\"HOST_JOBS_TEST_UNSET_D\"]}\n";
        let e = load("raises.py", raises).unwrap_err();
        assert!(
            matches!(
                &e,
                JobsError::Python {
                    source: PythonError::Raised { line: Some(3), .. },
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().contains("KeyError: 'HOST_JOBS_TEST_UNSET_D'"),
            "{e}"
        );

        let e = load("syntax.py", "JOBS = {\n  'a': [\n").unwrap_err();
        assert!(
            matches!(
                &e,
                JobsError::Python {
                    source: PythonError::Raised { line: Some(2), .. },
                    ..
                }
            ),
            "{e}"
        );
        let e = load("nojobs.py", "X = 1\n").unwrap_err();
        assert!(
            matches!(
                &e,
                JobsError::Python {
                    source: PythonError::NoJobs,
                    ..
                }
            ),
            "{e}"
        );
        let e = load("object.py", "JOBS = {\n 'j': {'source': object()}}\n")
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("object.py:2: JOBS[\"j\"][\"source\"]: a value of type object, which a job cannot hold"), "{e}");
        let e = load("exit.py", "import sys\nsys.exit(3)\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("exit.py:2: evaluating it raised it called sys.exit(3)"),
            "{e}"
        );
        let missing = JobFile::load_with(
            Path::new("/nonexistent/x.py"),
            &LoadOptions {
                python: Some("/nonexistent/python3".into()),
                ..LoadOptions::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                &missing,
                JobsError::Python {
                    source: PythonError::Start { .. },
                    ..
                }
            ),
            "{missing}"
        );
    }

    /// A module that never finishes is stopped; one whose JOBS would fill
    /// memory is refused at the size limit.
    #[test]
    fn modules_cannot_hang_or_flood() {
        let dir = std::env::temp_dir().join(format!("host-jobs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spin = dir.join("spin.py");
        std::fs::write(&spin, "while True:\n    pass\n").unwrap();
        let started = std::time::Instant::now();
        let e = JobFile::load_with(
            &spin,
            &LoadOptions {
                python_timeout: std::time::Duration::from_millis(700),
                ..LoadOptions::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                &e,
                JobsError::Python {
                    source: PythonError::Timeout { .. },
                    ..
                }
            ),
            "{e}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let big = load("big.py", "JOBS = {\"j\": \"x\" * (65 * 1024 * 1024)}\n").unwrap_err();
        assert!(
            matches!(
                &big,
                JobsError::Python {
                    source: PythonError::TooBig,
                    ..
                }
            ),
            "{big}"
        );
    }
}
