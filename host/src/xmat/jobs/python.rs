//! pg-xmat jobs modules (`pg_xmat_jobs.py`), unmodified.
//!
//! pg-xmat loads its `-c` file with `importlib` and reads the module's `JOBS`
//! dict; the module is ordinary Python (`os.getenv` for URLs, helper
//! functions, `python-dotenv`). So host does the same: it runs Python
//! (`python3`, or `--python`, e.g. a virtualenv's) on a small
//! program, [`EVALUATE`], that loads the module the way pg-xmat does and
//! prints `JOBS` as JSON together with the line of every dict-literal key
//! and the environment variables the module read but found unset. What the
//! module prints goes to stderr, never into that JSON.
//!
//! The JSON is then read with pg-xmat's meaning ([`super::Dialect::PgXmat`]).
//! A module that runs longer than [`TIMEOUT`] (by default) is killed, and `JOBS` may not
//! exceed [`MAX_OUTPUT`] bytes as JSON: a jobs file must not hang host or
//! fill its memory.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::lines::KeyLines;
use super::node::Node;

/// How long a module may take to evaluate, by default.
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// The largest `JOBS` (as JSON, with its key lines) that is read.
pub const MAX_OUTPUT: u64 = 64 * 1024 * 1024;

/// The program Python runs: `python -c EVALUATE MODULE`.
const EVALUATE: &str = r#"
import ast, datetime, decimal, importlib.util, json, math, os, sys, traceback, uuid

path = sys.argv[1]
out = sys.stdout
sys.stdout = sys.stderr  # the module's prints must not mix with the JSON
unset = []
lines = []
def keys(node, chain):
    if isinstance(node, ast.Dict):
        for k, v in zip(node.keys, node.values):
            if isinstance(k, ast.Constant) and isinstance(k.value, str):
                lines.append([k.lineno, chain + [k.value]])
                keys(v, chain + [k.value])
            else:
                keys(v, [])
        return
    for child in ast.iter_child_nodes(node):
        keys(child, [])
try:
    with open(path, encoding="utf-8") as f:
        keys(ast.parse(f.read()), [])
except Exception:
    pass

_get = os.environ.get
def _tracked_get(key, default=None):
    if key not in os.environ and key not in unset:
        unset.append(key)
    return _get(key, default)
os.environ.get = _tracked_get  # os.getenv calls it too

def emit(obj):
    obj["lines"] = lines
    out.write(json.dumps(obj))
    out.flush()
    sys.exit(0)

def module_line(tb):
    line = None
    for frame in traceback.extract_tb(tb):
        if os.path.abspath(frame.filename) == os.path.abspath(path):
            line = frame.lineno
    return line

try:
    spec = importlib.util.spec_from_file_location("config", path)
    if spec is None or spec.loader is None:
        emit({"error": "load", "message": "Python cannot load it as a module"})
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
except SystemExit as e:
    if e.code not in (None, 0):
        emit({"error": "raised", "message": "it called sys.exit(%r)" % (e.code,), "line": module_line(e.__traceback__)})
    emit({"error": "raised", "message": "it called sys.exit()", "line": module_line(e.__traceback__)})
except BaseException as e:
    line = e.lineno if isinstance(e, SyntaxError) and e.filename and os.path.abspath(e.filename) == os.path.abspath(path) else module_line(e.__traceback__)
    emit({"error": "raised", "message": "%s: %s" % (type(e).__name__, e), "line": line})

if not hasattr(module, "JOBS"):
    emit({"error": "no_jobs"})
jobs = module.JOBS

def conv(v, where):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if isinstance(v, dict):
        d = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise ValueError(where, "a key of type %s (keys must be strings)" % type(k).__name__)
            d[k] = conv(x, where + [k])
        return d
    if isinstance(v, (list, tuple)):
        return [conv(x, where + [str(i)]) for i, x in enumerate(v)]
    if isinstance(v, (datetime.date, datetime.time, decimal.Decimal, uuid.UUID)):
        return str(v)  # as pg-xmat's f-strings put it into SQL
    raise ValueError(where, "a value of type %s" % type(v).__name__)

if not isinstance(jobs, dict):
    emit({"error": "not_a_dict", "found": type(jobs).__name__})
try:
    converted = conv(jobs, [])
except ValueError as e:
    emit({"error": "value", "path": e.args[0], "what": e.args[1]})
except RecursionError:
    emit({"error": "raised", "message": "JOBS is nested too deeply (or contains itself)"})

emit({"jobs": converted, "unset": unset})
"#;

/// A module's `JOBS`, read.
#[derive(Debug)]
pub struct Module {
    pub jobs: Node,
    /// Lines of its dict-literal keys.
    pub lines: KeyLines,
    /// Environment variables it read with `os.getenv` / `os.environ.get` that were not set.
    pub unset: Vec<String>,
}

/// Why a module could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error(
        "cannot run {python} (a pg-xmat jobs module is evaluated by Python; name another with --python): {source}"
    )]
    Start {
        python: String,
        source: std::io::Error,
    },
    #[error("evaluating it raised {message}")]
    Raised { message: String, line: Option<u32> },
    #[error("it defines no JOBS dictionary")]
    NoJobs,
    #[error("JOBS is a {0}, not a dict")]
    NotADict(String),
    #[error("JOBS{}: {what}, which a job cannot hold", path.iter().map(|k| format!("[{k:?}]")).collect::<String>())]
    Value {
        path: Vec<String>,
        what: String,
        line: Option<u32>,
    },
    #[error("evaluating it took more than {} s; {python} was stopped", limit.as_secs_f64())]
    Timeout { python: String, limit: Duration },
    #[error("its JOBS is larger than {} MiB as JSON", MAX_OUTPUT >> 20)]
    TooBig,
    #[error("{python} failed ({status}) without saying why (see its messages above)")]
    Failed { python: String, status: String },
    #[error("{python} answered with something that is not the evaluator's JSON: {reason}")]
    Protocol { python: String, reason: String },
}

impl PythonError {
    /// The line of the module the problem is on, where known.
    pub fn line(&self) -> Option<u32> {
        match self {
            PythonError::Raised { line, .. } | PythonError::Value { line, .. } => *line,
            _ => None,
        }
    }
}

/// Evaluates a pg-xmat jobs module with `python` (default `python3`),
/// stopping it after `timeout`.
pub fn evaluate(
    path: &Path,
    python: Option<&Path>,
    timeout: Duration,
) -> Result<Module, PythonError> {
    let python_path = python.unwrap_or(Path::new("python3"));
    let python = python_path.display().to_string();
    let mut child = Command::new(python_path)
        .arg("-B") // no __pycache__ beside the user's file
        .arg("-c")
        .arg(EVALUATE)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| PythonError::Start {
            python: python.clone(),
            source,
        })?;
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout
            .take(MAX_OUTPUT + 1)
            .read_to_end(&mut buf)
            .map(|_| buf)
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PythonError::Timeout {
                    python,
                    limit: timeout,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(source) => return Err(PythonError::Start { python, source }),
        }
    };
    let out = match reader.join() {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(PythonError::Protocol {
                python,
                reason: e.to_string(),
            });
        }
        Err(_) => {
            return Err(PythonError::Protocol {
                python,
                reason: "the reader stopped".into(),
            });
        }
    };
    if out.len() as u64 > MAX_OUTPUT {
        return Err(PythonError::TooBig);
    }
    if out.is_empty() {
        return Err(PythonError::Failed {
            python,
            status: status.to_string(),
        });
    }
    read_answer(&out, &python)
}

fn read_answer(out: &[u8], python: &str) -> Result<Module, PythonError> {
    let protocol = |reason: String| PythonError::Protocol {
        python: python.to_string(),
        reason,
    };
    let answer: Node = serde_json::from_slice(out).map_err(|e| protocol(e.to_string()))?;
    let text = |key: &str| match answer.get(key) {
        Some(Node::Str(s)) => s.clone(),
        _ => String::new(),
    };
    let strings = |node: Option<&Node>| -> Vec<String> {
        match node {
            Some(Node::List(items)) => items
                .iter()
                .map(|i| match i {
                    Node::Str(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut lines = KeyLines::default();
    if let Some(Node::List(entries)) = answer.get("lines") {
        for e in entries {
            if let Node::List(pair) = e
                && let [Node::Int(line), chain] = pair.as_slice()
            {
                lines.add(u32::try_from(*line).unwrap_or(0), strings(Some(chain)));
            }
        }
    }
    let line = match answer.get("line") {
        Some(Node::Int(l)) => u32::try_from(*l).ok(),
        _ => None,
    };
    match answer.get("error") {
        None => {}
        Some(Node::Str(kind)) => {
            return Err(match kind.as_str() {
                "raised" | "load" => PythonError::Raised {
                    message: text("message"),
                    line,
                },
                "no_jobs" => PythonError::NoJobs,
                "not_a_dict" => PythonError::NotADict(text("found")),
                "value" => {
                    let path = strings(answer.get("path"));
                    PythonError::Value {
                        line: lines.find(&path),
                        path,
                        what: text("what"),
                    }
                }
                other => protocol(format!("unknown error kind {other}")),
            });
        }
        Some(other) => return Err(protocol(format!("error is {}", other.kind()))),
    }
    let jobs = answer
        .get("jobs")
        .cloned()
        .ok_or_else(|| protocol("no jobs in the answer".into()))?;
    Ok(Module {
        jobs,
        lines,
        unset: strings(answer.get("unset")),
    })
}
