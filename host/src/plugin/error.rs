//! Errors from loading and running plugins, with the facts a user needs.

use std::path::PathBuf;

/// Which limit a plugin ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The per-call time budget (`--plugin-time`).
    Time,
    /// The per-instance memory cap (`--plugin-memory`).
    Memory,
    /// The per-call instruction budget (`--plugin-fuel`).
    Fuel,
}

impl std::fmt::Display for LimitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LimitKind::Time => "CPU time limit (--plugin-time)",
            LimitKind::Memory => "memory limit (--plugin-memory)",
            LimitKind::Fuel => "fuel limit (--plugin-fuel)",
        })
    }
}

/// Everything that can go wrong with a plugin. `plugin` is the name the user
/// knows it by (its reported name, or its file name before it has reported one).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot read plugin {location}: {reason}")]
    Fetch { location: String, reason: String },

    /// Pulling from an OCI registry failed (the error names the reference).
    #[error("cannot pull plugin: {0}")]
    Registry(#[from] crate::oci::OciError),

    #[error(
        "plugin {location} has SHA-256 {actual}, but {expected} was pinned; refusing to run it"
    )]
    DigestMismatch {
        location: String,
        expected: String,
        actual: String,
    },

    #[error("{location} is not a valid WebAssembly component: {reason}")]
    Invalid { location: String, reason: String },

    #[error(
        "{location} is not a host plugin: it exports none of the host:plugin interfaces (it exports: {exports})"
    )]
    NotAPlugin { location: String, exports: String },

    #[error(
        "{location} was built against plugin interface host:plugin@{found}, which this host does not support; supported: {supported}. Rebuild it with an SDK for a supported version."
    )]
    UnsupportedVersion {
        location: String,
        found: String,
        supported: String,
    },

    #[error(
        "{location} needs at least {} of linear memory at start, but the memory cap (--plugin-memory) is {}; raise --plugin-memory to at least {}",
        mib(*needs), mib(*cap), mib(needs.next_multiple_of(1 << 20))
    )]
    MemoryBelowMinimum {
        location: String,
        /// Bytes the component's largest memory starts with.
        needs: u64,
        /// The per-instance memory cap, in bytes.
        cap: u64,
    },

    #[error(
        "{location} exports more than one plugin kind ({kinds}); a plugin must target exactly one world"
    )]
    AmbiguousKind { location: String, kinds: String },

    #[error("plugin {plugin}: {message}")]
    Contract { plugin: String, message: String },

    #[error("plugin {plugin} refused its parameters: {message}")]
    Configure { plugin: String, message: String },

    #[error("plugin {plugin} refused table {table}: {message}")]
    Table {
        plugin: String,
        table: String,
        message: String,
    },

    #[error("plugin {plugin} failed on {during}: {message}")]
    Failed {
        plugin: String,
        during: String,
        message: String,
    },

    #[error("plugin {plugin} exceeded its {limit} on {during}; the instance was discarded")]
    Limit {
        plugin: String,
        limit: LimitKind,
        during: String,
    },

    #[error("plugin {plugin} trapped on {during}: {message}; the instance was discarded")]
    Trap {
        plugin: String,
        during: String,
        message: String,
    },

    #[error("plugin {plugin} cannot {what}: it is a {kind}")]
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
            PluginError::Failed { .. }
                | PluginError::Limit { .. }
                | PluginError::Trap { .. }
                | PluginError::Contract { .. }
        )
    }
}
