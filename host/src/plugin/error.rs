//! Errors from loading and running plugins, with the facts a user needs.
//!
//! How a call into a plugin ended abnormally is a [`Fault`], a type rather
//! than a message: a [`LimitHit`] (time, memory, fuel, each with the limit
//! that was set), a panic, an `exit`, a WebAssembly trap, or something the
//! host refused. Callers (and the multi-tenant host to come) decide on the
//! type; the message is for people.

use std::path::PathBuf;
use std::time::Duration;

use crate::terminal::Shown;

/// A limit a plugin ran into, with the value it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitHit {
    /// The time budget of one call, wall-clock.
    Time(Duration),
    /// The memory cap of one instance (all its memories together), in bytes.
    Memory(u64),
    /// The instruction budget of one call.
    Fuel(u64),
}

impl std::fmt::Display for LimitHit {
    /// The limit as its flag sets it; [`LimitHit::named`] says it as whoever set it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.named(&LimitSource::Flags))
    }
}

impl LimitHit {
    /// "time limit (--plugin-time 1s)", or under a policy "time limit (1s, tenant
    /// `acme`'s limits.time in policy p.toml)": where the user changes it.
    pub fn named(&self, by: &LimitSource) -> String {
        let (what, flag, key, value) = match self {
            LimitHit::Time(d) => ("time", "--plugin-time", "time", format!("{d:?}")),
            LimitHit::Memory(b) => ("memory", "--plugin-memory", "memory", flag_size(*b)),
            LimitHit::Fuel(n) => ("fuel", "--plugin-fuel", "fuel", n.to_string()),
        };
        match by {
            LimitSource::Flags => format!("{what} limit ({flag} {value})"),
            LimitSource::Sandbox => format!("{what} limit ({value}, sandbox[\"{key}\"])"),
            LimitSource::Policy(at) => format!(
                "{what} limit ({value}, tenant `{}`'s limits.{key} in policy {})",
                Shown(&at.tenant),
                at.policy.display()
            ),
        }
    }
}

/// Who set an instance's limits: the command's `--plugin-*` flags, a
/// tenant's `limits` in a policy, or the Python package's `sandbox={...}`.
/// Messages about a limit name it there.
/// (Behind an `Arc`: it rides in every plugin error, which must stay small.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LimitSource {
    #[default]
    Flags,
    Policy(std::sync::Arc<TenantLimitsAt>),
    /// A caller's `sandbox` dict (the Python package), keyed as a policy's limits.
    Sandbox,
}

/// A tenant's limits in a policy file.
#[derive(Debug, PartialEq, Eq)]
pub struct TenantLimitsAt {
    pub tenant: String,
    pub policy: PathBuf,
}

impl LimitSource {
    pub fn policy(tenant: &str, policy: &std::path::Path) -> LimitSource {
        LimitSource::Policy(std::sync::Arc::new(TenantLimitsAt {
            tenant: tenant.to_string(),
            policy: policy.to_path_buf(),
        }))
    }
}

impl LimitSource {
    /// Where the memory cap is raised: `--plugin-memory`, or the tenant's key.
    fn memory(&self) -> String {
        match self {
            LimitSource::Flags => "--plugin-memory".into(),
            LimitSource::Sandbox => "sandbox[\"memory\"]".into(),
            LimitSource::Policy(at) => format!(
                "tenant `{}`'s limits.memory in policy {}",
                Shown(&at.tenant),
                at.policy.display()
            ),
        }
    }
}

/// A size as `--plugin-memory` takes it: `64MiB`, or bytes.
fn flag_size(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{}MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// How a call into a plugin ended abnormally. After any fault the instance
/// is discarded (a trap poisons its whole store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// It ran into one of its limits.
    Limit(LimitHit),
    /// It panicked; the message from its stderr (Rust guests print one).
    Panic(String),
    /// It called `exit` with this status.
    Exit(i32),
    /// A WebAssembly trap (unreachable, out-of-bounds access, stack overflow, ...).
    Trap(wasmtime::Trap),
    /// The host refused what it asked for or handed back (more data than a
    /// call may return, a string that is not UTF-8, a pointer out of bounds).
    Refused(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Limit(l) => write!(f, "exceeded its {l}"),
            Fault::Panic(m) => write!(f, "panicked: {}", Shown(m)),
            Fault::Exit(code) => write!(f, "called exit({code})"),
            Fault::Trap(t) => write!(f, "trapped: {t}"),
            Fault::Refused(m) => write!(f, "handed the host something it refused: {}", Shown(m)),
        }
    }
}

/// Everything that can go wrong with a plugin. `plugin` is the name the user
/// knows it by (its reported name, or its file name before it has reported one).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read plugin {}: {reason}", Shown(.location))]
    Fetch { location: String, reason: String },

    /// Pulling from an OCI registry failed (the error names the reference).
    #[error("cannot pull plugin: {0}")]
    /// (Not a `source`: the message says it whole, and a chain would repeat it.)
    Registry(crate::oci::OciError),

    #[error(
        "plugin {} has SHA-256 {actual}, but {expected} was pinned; refusing to run it",
        Shown(.location)
    )]
    DigestMismatch {
        location: String,
        expected: String,
        actual: String,
    },

    #[error("{} is not a valid WebAssembly component: {reason}", Shown(.location))]
    Invalid { location: String, reason: String },

    #[error(
        "{} is not a host plugin: it exports none of the host:plugin interfaces (it exports: {})",
        Shown(.location), Shown(.exports)
    )]
    NotAPlugin { location: String, exports: String },

    #[error(
        "{} was built against plugin interface host:plugin@{}, which this host does not support; supported: {supported}. Rebuild it with an SDK for a supported version.",
        Shown(.location), Shown(.found)
    )]
    UnsupportedVersion {
        location: String,
        found: String,
        supported: String,
    },

    #[error(
        "{} exports two versions of the plugin interface ({}); a plugin is built against one",
        Shown(.location), Shown(.versions)
    )]
    MixedVersions { location: String, versions: String },

    #[error(
        "{} needs at least {} of linear memory at start, but the memory cap ({}) is {}; raise {} to at least {}",
        Shown(.location), mib(*needs), .set_by.memory(), mib(*cap), .set_by.memory(),
        mib(needs.next_multiple_of(1 << 20))
    )]
    MemoryBelowMinimum {
        location: String,
        /// Bytes the component's largest memory starts with.
        needs: u64,
        /// The per-instance memory cap, in bytes.
        cap: u64,
        set_by: LimitSource,
    },

    #[error(
        "{} exports more than one plugin kind ({kinds}); a plugin must target exactly one world",
        Shown(.location)
    )]
    AmbiguousKind { location: String, kinds: String },

    #[error("plugin {}: {message}", Shown(.plugin))]
    Contract { plugin: String, message: String },

    #[error("plugin {} refused its parameters: {}", Shown(.plugin), Shown(.message))]
    Configure { plugin: String, message: String },

    #[error("plugin {} refused table {}: {}", Shown(.plugin), Shown(.table), Shown(.message))]
    Table {
        plugin: String,
        table: String,
        message: String,
    },

    #[error("plugin {} failed on {during}: {}", Shown(.plugin), Shown(.message))]
    Failed {
        plugin: String,
        during: String,
        message: String,
    },

    #[error(
        "plugin {} {}; the instance was discarded",
        Shown(.plugin),
        fault_on(.fault, .during, .set_by)
    )]
    Fault {
        plugin: String,
        during: String,
        fault: Fault,
        /// Who set the limits it ran under (named when it hit one).
        set_by: LimitSource,
    },

    #[error("plugin {} cannot {what}: it is a {kind}", Shown(.plugin))]
    WrongKind {
        plugin: String,
        what: &'static str,
        kind: &'static str,
    },

    #[error("plugin cache {}: {reason}", dir.display())]
    Cache { dir: PathBuf, reason: String },

    #[error("wasmtime: {0}")]
    Engine(String),
}

impl From<crate::oci::OciError> for PluginError {
    fn from(e: crate::oci::OciError) -> PluginError {
        PluginError::Registry(e)
    }
}

/// "exceeded its time limit (...) on batch 3", "trapped on batch 3: ...".
fn fault_on(fault: &Fault, during: &str, set_by: &LimitSource) -> String {
    match fault {
        Fault::Limit(l) => format!("exceeded its {} on {during}", l.named(set_by)),
        Fault::Trap(t) => format!("trapped on {during}: {t}"),
        Fault::Panic(_) => format!("trapped on {during}: {fault}"),
        other => format!("{other} on {during}"),
    }
}

/// `14155776` as `13.5 MiB (14155776 bytes)`.
fn mib(bytes: u64) -> String {
    format!(
        "{:.1} MiB ({bytes} bytes)",
        bytes as f64 / (1u64 << 20) as f64
    )
}

impl PluginError {
    /// True when the error came from running the plugin on a batch (the host
    /// can carry on with the next batch on a fresh instance).
    pub fn is_batch_failure(&self) -> bool {
        matches!(
            self,
            PluginError::Failed { .. } | PluginError::Fault { .. } | PluginError::Contract { .. }
        )
    }

    /// The plugin the error is about, by the name the user knows it by,
    /// when the error happened while it ran.
    pub fn plugin(&self) -> Option<&str> {
        match self {
            PluginError::Contract { plugin, .. }
            | PluginError::Configure { plugin, .. }
            | PluginError::Table { plugin, .. }
            | PluginError::Failed { plugin, .. }
            | PluginError::Fault { plugin, .. }
            | PluginError::WrongKind { plugin, .. } => Some(plugin),
            _ => None,
        }
    }

    /// The fault that ended a call, if that is what this is.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            PluginError::Fault { fault, .. } => Some(fault),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_as_sentences() {
        let e = PluginError::Fault {
            plugin: "p".into(),
            during: "batch 2 (3 records)".into(),
            fault: Fault::Limit(LimitHit::Memory(64 << 20)),
            set_by: LimitSource::Flags,
        };
        assert_eq!(
            e.to_string(),
            "plugin p exceeded its memory limit (--plugin-memory 64MiB) on batch 2 (3 records); the instance was discarded"
        );
        let e = PluginError::Fault {
            plugin: "p".into(),
            during: "batch 2 (3 records)".into(),
            fault: Fault::Limit(LimitHit::Time(Duration::from_millis(300))),
            set_by: LimitSource::policy("acme", std::path::Path::new("p.toml")),
        };
        assert_eq!(
            e.to_string(),
            "plugin p exceeded its time limit (300ms, tenant `acme`'s limits.time in policy p.toml) on batch 2 (3 records); the instance was discarded"
        );
        let e = PluginError::Fault {
            plugin: "p\u{1b}[2J".into(),
            during: "info".into(),
            fault: Fault::Exit(3),
            set_by: LimitSource::Flags,
        };
        assert_eq!(
            e.to_string(),
            "plugin p\\u{1b}[2J called exit(3) on info; the instance was discarded"
        );
    }
}
