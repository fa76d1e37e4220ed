//! On-disk cache of compiled components.
//!
//! Compiling a component with Cranelift takes tens of milliseconds (seconds for
//! a CPython-based one); loading a compiled one takes a few. Entries are keyed
//! by the SHA-256 of the wasm bytes plus the engine's compatibility hash
//! (wasmtime version, target, and settings such as fuel metering), so a
//! changed engine never reads a stale entry.
//!
//! `Component::deserialize_file` trusts its input completely (it is native
//! code), so only files this host wrote are ever loaded: the cache directory
//! must be owned by the current user and not writable by anyone else, entries
//! must be regular files owned by the user, and each entry `KEY.cwasm` has a
//! sidecar `KEY.sum` with the BLAKE3 digest of its bytes, checked before the
//! entry is mapped (a truncated or corrupted file is recompiled, never
//! loaded). BLAKE3 rather than SHA-256: a CPython plugin's entry is ~36 MB, and
//! checking it must stay well under the 50 ms a cached plugin may take to be
//! ready. The entry is mapped, not copied: its memory images are then mapped
//! copy-on-write straight from the file.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::PluginError;

/// The sidecar's first bytes; then the entry's BLAKE3 digest (32 bytes).
const MAGIC: &[u8; 8] = b"hostcw02";

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

    fn entry(&self, wasm_sha256: &str) -> (PathBuf, PathBuf) {
        let stem = format!("{wasm_sha256}-{}", self.engine_key);
        (
            self.dir.join(format!("{stem}.cwasm")),
            self.dir.join(format!("{stem}.sum")),
        )
    }

    /// Loads a compiled component written earlier by this host, if present and intact.
    pub fn load(&self, engine: &Engine, wasm_sha256: &str) -> Option<Component> {
        let (path, sum) = self.entry(wasm_sha256);
        for p in [&path, &sum] {
            let meta = fs::symlink_metadata(p).ok()?;
            if !meta.is_file() || meta.uid() != current_uid() {
                tracing::warn!(path = %p.display(), "ignoring a cache entry this user does not own");
                return None;
            }
        }
        // Hashed as it is read, in place: no 36 MB copy for a CPython entry.
        let digest = fs::File::open(&path)
            .and_then(|f| blake3::Hasher::new().update_reader(f).map(|h| h.finalize()))
            .ok()?;
        if !sum_matches(&fs::read(&sum).ok()?, &digest) {
            tracing::warn!(path = %path.display(), "ignoring a damaged cache entry; recompiling");
            return None;
        }
        // SAFETY: the file is one this host serialized with an engine of the same
        // compatibility hash (in the file name), in a directory only this user can
        // write, and its digest matches the one written beside it. (Only this user
        // could swap it between the check and the mapping.)
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cache entry refused by the engine; recompiling");
                None
            }
        }
    }

    /// Stores a compiled component; failures only cost a recompile next time.
    pub fn store(&self, wasm_sha256: &str, component: &Component) {
        let (path, sum) = self.entry(wasm_sha256);
        let result = (|| -> std::io::Result<()> {
            let payload = component.serialize().map_err(std::io::Error::other)?;
            let mut digest = MAGIC.to_vec();
            digest.extend_from_slice(blake3::hash(&payload).as_bytes());
            // The entry first, then its sidecar: a reader that sees the new sidecar
            // also sees the new entry; any other mix fails the check and recompiles.
            self.write_atomically(&path, &payload)?;
            self.write_atomically(&sum, &digest)
        })();
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "could not write the compile cache");
        }
    }

    /// Writes a temporary file and renames it over `path`: readers see the old
    /// file, no file, or the whole new one.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode_0600()
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    }
}

/// Whether `sum` (a sidecar) holds `digest`.
fn sum_matches(sum: &[u8], digest: &blake3::Hash) -> bool {
    sum.strip_prefix(MAGIC)
        .is_some_and(|d| d == digest.as_bytes())
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
        let mut sum = MAGIC.to_vec();
        sum.extend_from_slice(blake3::hash(&payload).as_bytes());
        let digest = blake3::hash(&payload);
        assert!(sum_matches(&sum, &digest));
        let mut bad = payload.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(!sum_matches(&sum, &blake3::hash(&bad)));
        assert!(!sum_matches(&sum, &blake3::hash(&payload[..5])));
        assert!(!sum_matches(&sum[..20], &digest));
        assert!(!sum_matches(b"garbage", &digest));
    }
}
