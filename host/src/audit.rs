//! The audit log (`--audit FILE`): one JSON line per batch (or table) a
//! tenant's plugins ran on — who, which builds, how many records went in and
//! what became of them, what it cost, and how it ended.
//!
//! Lines are appended (a log outlives one run) and written whole, one
//! `write` each, so concurrent writers never interleave a line. Nothing a
//! plugin wrote reaches the log unredacted: an error's text goes through
//! [`crate::terminal::redact`], which hides every secret of the policy.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::plugin::{Fault, LimitHit, Plugin, PluginError, Usage};

/// Where audit lines go.
#[derive(Debug)]
pub struct Audit {
    path: PathBuf,
    file: Mutex<File>,
}

/// The audit log could not be written: the run stops (an operator who asked
/// for an audit must not get a run that went unaudited).
#[derive(Debug, thiserror::Error)]
#[error("audit log {}: {error}", .path.display())]
pub struct AuditError {
    pub path: PathBuf,
    #[source]
    pub error: std::io::Error,
}

/// A plugin as the audit names it: the name it reports and its build.
#[derive(Debug, Clone, Serialize)]
pub struct PluginRef {
    pub name: String,
    pub sha256: String,
}

impl PluginRef {
    pub fn of(plugin: &Plugin) -> PluginRef {
        PluginRef {
            name: plugin.name().to_string(),
            sha256: plugin.sha256().to_string(),
        }
    }
}

/// How a batch ended for the tenant's plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// It ran into a limit (`limit` says which).
    Limit,
    /// A trap, a panic or an `exit`.
    Trap,
    /// The host refused what it handed back, or it broke the plugin contract,
    /// or the policy refused to run it at all.
    Refused,
    /// The plugin reported an error for the whole batch.
    Failed,
}

/// Which limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    Time,
    Memory,
    Fuel,
    /// The tenant's CPU time for the run was used up; the batch was not run.
    Cpu,
}

/// How a batch ended, from the failure that hit it (if one did).
pub fn outcome(failure: Option<&PluginError>) -> (Outcome, Option<Limit>) {
    let Some(failure) = failure else {
        return (Outcome::Ok, None);
    };
    match failure.fault() {
        Some(Fault::Limit(LimitHit::Time(_))) => (Outcome::Limit, Some(Limit::Time)),
        Some(Fault::Limit(LimitHit::Memory(_))) => (Outcome::Limit, Some(Limit::Memory)),
        Some(Fault::Limit(LimitHit::Fuel(_))) => (Outcome::Limit, Some(Limit::Fuel)),
        Some(Fault::Panic(_) | Fault::Exit(_) | Fault::Trap(_)) => (Outcome::Trap, None),
        Some(Fault::Refused(_)) => (Outcome::Refused, None),
        None if matches!(failure, PluginError::Contract { .. }) => (Outcome::Refused, None),
        None => (Outcome::Failed, None),
    }
}

/// One line of the log.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// The command that ran the plugins (`load`, `xmat`).
    pub command: &'static str,
    /// The tenant, when a policy is in force.
    pub tenant: Option<&'a str>,
    /// The tenant's plugins, in chain order.
    pub plugins: &'a [PluginRef],
    /// What the batch was: a source and batch number, or a table.
    pub unit: Unit<'a>,
    pub records_in: u64,
    pub records_out: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub cpu_seconds: f64,
    /// Fuel used, when fuel is metered.
    pub fuel: Option<u64>,
    /// Bytes of linear memory the tenant's instances held at most.
    pub peak_memory: u64,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// What went wrong, for people (secrets hidden).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What one audit line is about.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit<'a> {
    /// A batch of a load: its source and its number among the tenant's batches.
    Batch { source: &'a str, batch: u64 },
    /// A table of a copy.
    Table { job: &'a str, table: &'a str },
    /// Nothing ran: the policy refused the plugins before they were read.
    Setup,
}

impl<'a> Entry<'a> {
    /// A line about `unit` with nothing counted yet, outcome `ok`.
    pub fn new(
        command: &'static str,
        tenant: Option<&'a str>,
        plugins: &'a [PluginRef],
        unit: Unit<'a>,
    ) -> Entry<'a> {
        Entry {
            command,
            tenant,
            plugins,
            unit,
            records_in: 0,
            records_out: 0,
            dropped: 0,
            rejected: 0,
            cpu_seconds: 0.0,
            fuel: None,
            peak_memory: 0,
            outcome: Outcome::Ok,
            limit: None,
            error: None,
        }
    }

    /// The usage and failure of a batch.
    pub fn with(mut self, usage: Usage, cpu: Duration, failure: Option<&PluginError>) -> Self {
        self.fuel = usage.fuel;
        self.peak_memory = usage.peak_memory;
        self.cpu_seconds = cpu.as_secs_f64();
        (self.outcome, self.limit) = outcome(failure);
        self.error = failure.map(|f| crate::terminal::redact(&f.to_string()).into_owned());
        self
    }
}

#[derive(Serialize)]
struct Line<'a> {
    /// Seconds since the Unix epoch.
    time: f64,
    /// This process, to tell runs apart in one file.
    pid: u32,
    #[serde(flatten)]
    entry: &'a Entry<'a>,
}

impl Audit {
    /// Opens `path` for appending, creating it.
    pub fn open(path: &Path) -> Result<Audit, AuditError> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|error| AuditError {
                path: path.to_path_buf(),
                error,
            })?;
        Ok(Audit {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Appends one line.
    pub fn write(&self, entry: &Entry<'_>) -> Result<(), AuditError> {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let line = Line {
            time,
            pid: std::process::id(),
            entry,
        };
        let mut text = serde_json::to_string(&line).expect("an audit line serialises");
        text.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(text.as_bytes()).map_err(|error| AuditError {
            path: self.path.clone(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_whole_with_the_outcome_typed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
        let audit = Audit::open(&path).unwrap();
        let plugins = [PluginRef {
            name: "p".into(),
            sha256: "ab".into(),
        }];
        let failure = PluginError::Fault {
            plugin: "p".into(),
            during: "batch 1 (2 records)".into(),
            fault: Fault::Limit(LimitHit::Time(Duration::from_millis(200))),
            set_by: crate::plugin::LimitSource::Flags,
        };
        let entry = Entry {
            command: "load",
            tenant: Some("a"),
            plugins: &plugins,
            unit: Unit::Batch {
                source: "x.ndjson",
                batch: 1,
            },
            records_in: 2,
            records_out: 0,
            dropped: 0,
            rejected: 2,
            cpu_seconds: 0.0,
            fuel: None,
            peak_memory: 0,
            outcome: Outcome::Ok,
            limit: None,
            error: None,
        }
        .with(
            Usage {
                fuel: Some(7),
                peak_memory: 1 << 20,
            },
            Duration::from_millis(5),
            Some(&failure),
        );
        audit.write(&entry).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["tenant"], "a");
        assert_eq!(v["plugins"][0]["sha256"], "ab");
        assert_eq!(v["unit"]["batch"]["source"], "x.ndjson");
        assert_eq!(v["outcome"], "limit");
        assert_eq!(v["limit"], "time");
        assert_eq!(v["fuel"], 7);
        assert_eq!(v["peak_memory"], 1 << 20);
        assert!(v["error"].as_str().unwrap().contains("time limit"), "{v}");

        let missing = Audit::open(&dir.path().join("no/such/dir/audit.jsonl")).unwrap_err();
        assert!(missing.to_string().contains("no/such/dir"), "{missing}");
    }
}
