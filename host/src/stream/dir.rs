//! The stream directory (`--dir`): everything a stream keeps on the client.
//!
//! ```text
//! DIR/stream.json     what `setup` decided: source identity, slot, origin, tables, plugins
//! DIR/sentinel.json   endpos, changeable while receive/apply/follow run
//! DIR/receive.json    how far the spool is complete (written by receive)
//! DIR/apply.json      how far apply got (written by apply; the truth is the target's origin)
//! DIR/copy.json       the initial copy of `stream clone`: running, or done
//! DIR/spool/          wal2json messages, see `spool`
//! DIR/receive.lock, DIR/apply.lock   held while a receive or an apply runs
//! ```
//!
//! JSON files are replaced atomically (write, fsync, rename, fsync the directory).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::lsn::Lsn;
use super::tables::StreamTable;

/// The directory's format; a newer one is refused.
pub const FORMAT: u32 = 1;

/// Problems with the stream directory.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{dir} is not a stream directory (no stream.json); run `host stream setup --dir {dir}` first"
    )]
    NotSetUp { dir: PathBuf },
    #[error(
        "{dir}: the initial copy of `host stream clone` did not finish (the process was killed or failed): \
         applying changes onto an incomplete copy would diverge; remove the stream with \
         `host stream cleanup --dir {dir}` and clone again"
    )]
    CopyUnfinished { dir: PathBuf },
    #[error("{dir}: another {what} is running on this stream (it holds {lock})")]
    Busy {
        dir: PathBuf,
        what: &'static str,
        lock: PathBuf,
    },
}

/// What `setup` decided, read by every later command.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamConfig {
    pub format: u32,
    /// The logical replication slot on the source.
    pub slot: String,
    /// The replication origin on the target.
    pub origin: String,
    pub source: SourceId,
    /// The target as shown at setup (no password).
    pub target: String,
    pub source_schema: String,
    pub target_schema: String,
    /// Where the slot started: every transaction committed after it is streamed.
    pub start_lsn: Lsn,
    /// The job the stream applies, for messages and for `-c` consistency checks.
    pub job: JobRef,
    pub tables: Vec<StreamTable>,
    /// The job copies every table of the schema (`*`): a table the stream
    /// does not know is then a new one, which is DDL.
    pub whole_schema: bool,
    /// The wal2json on the source writes NaN/Infinity as strings (2.6's
    /// `numeric-data-types-as-string`); otherwise they arrive as null.
    pub numeric_as_string: bool,
    /// Plugins as loaded at setup (SHA-256 of the wasm, of the resolved
    /// parameters), so a later run with other plugins is refused.
    pub plugin_digests: Vec<PluginDigest>,
    /// The DDL event trigger installed on the source, if any.
    pub ddl_trigger: Option<String>,
    /// Sequences of the streamed tables (set from the source at cutover).
    pub sequences: Vec<String>,
    /// The policy's tenant the stream runs as: its tables and rows were
    /// fixed at setup; every run binds its plugins again under the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<StreamTenant>,
}

/// The tenant a stream runs as, and its scope when the stream was set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamTenant {
    pub name: String,
    /// Its tables (`schema.table` globs): with `*`, a change to a table the
    /// stream does not know is new if here, another tenant's if not.
    pub tables: Vec<String>,
    /// The row predicate its tables hold.
    pub rows: Option<String>,
}

/// Which source this stream reads: a spool directory only ever belongs to one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceId {
    /// `IDENTIFY_SYSTEM`'s system identifier: the cluster.
    pub system_identifier: String,
    pub database: String,
    /// As shown at setup (no password).
    pub shown: String,
}

/// Where the stream's job came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobRef {
    /// A job of an xmat jobs file.
    File { path: PathBuf, name: String },
    /// Every table of a schema, no plugins (`--schema`).
    Schema,
}

/// A plugin's identity at setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginDigest {
    pub table: String,
    pub location: String,
    pub sha256: String,
    /// SHA-256 of its parameters with `env:` values resolved (the values themselves are not kept).
    pub params_sha256: String,
}

/// Settings a running stream re-reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sentinel {
    /// Stop after the last transaction that commits at or before this LSN.
    pub endpos: Option<Lsn>,
}

/// What receive has made durable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReceiveState {
    /// Every transaction committed before this position is in the spool,
    /// durably (the slot is confirmed up to here).
    pub received: Lsn,
    /// When it was written (Unix seconds).
    pub at: f64,
    /// The source's WAL position last seen.
    pub source_lsn: Lsn,
}

/// What apply has done (the origin on the target is the truth; this is for `status`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ApplyState {
    /// End LSN of the last source transaction applied.
    pub applied: Lsn,
    /// Its commit time on the source, as printed by the server.
    pub commit_time: String,
    /// Every spooled transaction before this position was applied when it was written.
    pub caught_up_to: Lsn,
    pub at: f64,
    pub transactions: u64,
    pub changes: u64,
}

/// The initial copy `stream clone` makes from the slot's snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum InitialCopy {
    /// Started (Unix seconds); nothing may be applied until it is done.
    Running {
        started: f64,
    },
    Done {
        seconds: f64,
        rows_written: u64,
    },
}

/// A stream directory.
#[derive(Debug, Clone)]
pub struct StreamDir {
    root: PathBuf,
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl StreamDir {
    pub fn new(root: &Path) -> StreamDir {
        StreamDir {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn spool(&self) -> PathBuf {
        self.root.join("spool")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Whether `setup` ran here.
    pub fn is_set_up(&self) -> bool {
        self.path("stream.json").exists()
    }

    pub fn config(&self) -> Result<StreamConfig, DirError> {
        let path = self.path("stream.json");
        if !path.exists() {
            return Err(DirError::NotSetUp {
                dir: self.root.clone(),
            });
        }
        let c: StreamConfig = read_json(&path)?.unwrap_or_else(|| unreachable!());
        if c.format > FORMAT {
            return Err(DirError::Invalid {
                path,
                reason: format!(
                    "written by a newer host (format {}, this one reads {FORMAT})",
                    c.format
                ),
            });
        }
        Ok(c)
    }

    pub fn write_config(&self, c: &StreamConfig) -> Result<(), DirError> {
        write_json(&self.path("stream.json"), c)
    }

    pub fn sentinel(&self) -> Result<Sentinel, DirError> {
        Ok(read_json(&self.path("sentinel.json"))?.unwrap_or_default())
    }

    pub fn write_sentinel(&self, s: &Sentinel) -> Result<(), DirError> {
        write_json(&self.path("sentinel.json"), s)
    }

    pub fn receive_state(&self) -> Result<ReceiveState, DirError> {
        Ok(read_json(&self.path("receive.json"))?.unwrap_or_default())
    }

    pub fn write_receive_state(&self, s: &ReceiveState) -> Result<(), DirError> {
        write_json(&self.path("receive.json"), s)
    }

    pub fn apply_state(&self) -> Result<ApplyState, DirError> {
        Ok(read_json(&self.path("apply.json"))?.unwrap_or_default())
    }

    pub fn write_apply_state(&self, s: &ApplyState) -> Result<(), DirError> {
        write_json(&self.path("apply.json"), s)
    }

    /// The initial copy, for a stream made by `clone` (`None`: set up without one).
    pub fn initial_copy(&self) -> Result<Option<InitialCopy>, DirError> {
        read_json(&self.path("copy.json"))
    }

    pub fn write_initial_copy(&self, c: &InitialCopy) -> Result<(), DirError> {
        write_json(&self.path("copy.json"), c)
    }

    /// Refuses while a clone's initial copy is unfinished: changes only
    /// apply on top of the whole copy.
    pub fn check_copied(&self) -> Result<(), DirError> {
        match self.initial_copy()? {
            Some(InitialCopy::Running { .. }) => Err(DirError::CopyUnfinished {
                dir: self.root.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Takes `DIR/<what>.lock`, or says another process holds it.
    pub fn lock(&self, what: &'static str) -> Result<DirLock, DirError> {
        let path = self.path(&format!("{what}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| DirError::Io {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(DirError::Busy {
                dir: self.root.clone(),
                what,
                lock: path,
            }),
            Err(fs::TryLockError::Error(source)) => Err(DirError::Io { path, source }),
        }
    }

    /// Removes everything the stream wrote here (not the directory itself).
    pub fn remove_all(&self) -> Result<(), DirError> {
        for name in [
            "stream.json",
            "sentinel.json",
            "receive.json",
            "apply.json",
            "copy.json",
            "receive.lock",
            "apply.lock",
        ] {
            let p = self.path(name);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(DirError::Io { path: p, source }),
            }
        }
        let spool = self.spool();
        match fs::remove_dir_all(&spool) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(DirError::Io {
                path: spool,
                source,
            }),
        }
    }
}

/// Seconds since the Unix epoch, for state files.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, DirError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DirError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| DirError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), DirError> {
    let io = |source| DirError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("json.tmp");
    let mut f = File::create(&tmp).map_err(io)?;
    let text = serde_json::to_vec_pretty(value).expect("state serializes");
    f.write_all(&text).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_and_locks() {
        let d = tempfile::tempdir().unwrap();
        let dir = StreamDir::new(d.path());
        assert_eq!(dir.sentinel().unwrap(), Sentinel::default());
        let s = Sentinel {
            endpos: Some(Lsn(42)),
        };
        dir.write_sentinel(&s).unwrap();
        assert_eq!(dir.sentinel().unwrap(), s);
        let held = dir.lock("apply").unwrap();
        assert!(matches!(dir.lock("apply"), Err(DirError::Busy { .. })));
        drop(held);
        dir.lock("apply").unwrap();
        assert!(matches!(dir.config(), Err(DirError::NotSetUp { .. })));
    }
}
