//! On-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes tens of milliseconds; loading a
//! compiled one takes well under one. Entries are keyed by the SHA-256 of the
//! wasm bytes plus the engine's compatibility hash (wasmtime version, target,
//! and settings such as fuel metering), so a changed engine never reads a
//! stale entry.
//!
//! `Component::deserialize` trusts its input completely (it is native code),
//! so only files this host wrote are ever read: the cache directory must be
//! owned by the current user and not writable by anyone else, entries must be
//! regular files owned by the user, and each entry carries a SHA-256 of its
//! payload that is checked before deserializing (a truncated or corrupted
//! file is recompiled, never loaded).

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::PluginError;

const MAGIC: &[u8; 8] = b"hostcw01";

/// Where compiled plugins are kept.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

/// Whether a component came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheOutcome {
    /// Loaded from a file this host wrote earlier.
    Hit,
    /// Compiled now (and stored for next time).
    Miss,
    /// Compiled now; caching is off.
    Disabled,
}

impl CompileCache {
    /// The default location: `$HOST_CACHE_DIR`, else the user cache dir (`~/.cache/host/plugins`).
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("HOST_CACHE_DIR") {
            return Some(PathBuf::from(d));
        }
        dirs::cache_dir().map(|d| d.join("host").join("plugins"))
    }

    /// Opens (creating with mode 0700) the cache directory for this engine.
    pub fn open(dir: &Path, engine: &Engine) -> Result<CompileCache, PluginError> {
        let err = |reason: String| PluginError::Cache {
            dir: dir.to_path_buf(),
            reason,
        };
        fs::create_dir_all(dir).map_err(|e| err(format!("cannot create: {e}")))?;
        let meta = fs::symlink_metadata(dir).map_err(|e| err(e.to_string()))?;
        if !meta.is_dir() {
            return Err(err("not a directory".into()));
        }
        // Only trust a directory nobody else can write to.
        if meta.uid() != current_uid() {
            return Err(err(
                "owned by another user; refusing to load compiled code from it".into(),
            ));
        }
        if meta.mode() & 0o022 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| err(format!("writable by others and cannot be fixed: {e}")))?;
        }
        Ok(CompileCache {
            dir: dir.to_path_buf(),
            engine_key: engine_key(engine),
        })
    }

    /// The directory entries live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, wasm_sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{wasm_sha256}-{}.cwasm", self.engine_key))
    }

    /// Loads a compiled component written earlier by this host, if present and intact.
    pub fn load(&self, engine: &Engine, wasm_sha256: &str) -> Option<Component> {
        let path = self.entry(wasm_sha256);
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() || meta.uid() != current_uid() {
            tracing::warn!(path = %path.display(), "ignoring a cache entry this user does not own");
            return None;
        }
        let data = fs::read(&path).ok()?;
        let payload = verified_payload(&data);
        if payload.is_none() {
            tracing::warn!(path = %path.display(), "ignoring a damaged cache entry; recompiling");
            return None;
        }
        // SAFETY: the payload is a file this host serialized with an engine of the same
        // compatibility hash (in the file name), in a directory only this user can write,
        // and its checksum matches what was written.
        match unsafe { Component::deserialize(engine, payload?) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cache entry refused by the engine; recompiling");
                None
            }
        }
    }

    /// Stores a compiled component; failures only cost a recompile next time.
    pub fn store(&self, wasm_sha256: &str, component: &Component) {
        let path = self.entry(wasm_sha256);
        let result = (|| -> std::io::Result<()> {
            let payload = component.serialize().map_err(std::io::Error::other)?;
            let tmp = self
                .dir
                .join(format!(".{wasm_sha256}.{}.tmp", std::process::id()));
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode_0600()
                .open(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&Sha256::digest(&payload))?;
            f.write_all(&payload)?;
            f.sync_all()?;
            // rename is atomic: readers see the old entry, no entry, or the whole new one.
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "could not write the compile cache");
        }
    }
}

fn verified_payload(data: &[u8]) -> Option<&[u8]> {
    let rest = data.strip_prefix(MAGIC)?;
    if rest.len() < 32 {
        return None;
    }
    let (sum, payload) = rest.split_at(32);
    (Sha256::digest(payload).as_slice() == sum).then_some(payload)
}

/// A stable short digest of the engine's compatibility hash and our own version.
fn engine_key(engine: &Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            unreachable!("only the digest is read")
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    hex::encode(&h.0.finalize()[..8])
}

/// The effective uid, read from /proc (Linux) to avoid `unsafe` libc calls.
fn current_uid() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

trait OpenOptionsExt600 {
    fn mode_0600(&mut self) -> &mut Self;
}
impl OpenOptionsExt600 for fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_entries_are_not_trusted() {
        let payload = b"compiled code".to_vec();
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&Sha256::digest(&payload));
        data.extend_from_slice(&payload);
        assert_eq!(verified_payload(&data), Some(&payload[..]));
        let mut bad = data.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(verified_payload(&bad), None);
        assert_eq!(verified_payload(&data[..20]), None);
        assert_eq!(verified_payload(b"garbage"), None);
    }
}
