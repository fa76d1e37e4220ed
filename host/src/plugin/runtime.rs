//! The plugin runtime: one shared wasmtime engine, one linker, an epoch
//! ticker, the compile cache, and loading components into [`Plugin`]s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, types::ComponentItem};

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::cache::{CacheOutcome, CompileCache};
use super::instance::Live;
use super::limits::{EPOCH_TICK, Limits};
use super::memory;
use super::model::{Info, Kind};
use super::sandbox::{self, StoreState};
use super::wit::{self, Prepared};
use super::{PluginError, PluginInstance, PluginSpec};
use crate::fetch::{Bounds, FetchError, Location};
use crate::oci;

/// A plugin's bytes from a path, a URL or an OCI registry (`oci://`), read
/// within `bounds` (`--plugin-max-size`, `--fetch-timeout`) and checked
/// against every digest the location carries.
pub async fn fetch(spec: &PluginSpec, bounds: &Bounds) -> Result<Vec<u8>, PluginError> {
    let fetch_err = |reason: String| PluginError::Fetch {
        location: spec.shown(),
        reason,
    };
    // Which flag moves the bound that was hit.
    let flag = |e: &FetchError| match e {
        FetchError::TooLarge { .. } => " (--plugin-max-size)",
        FetchError::TimedOut { .. } => " (--fetch-timeout)",
        _ => "",
    };
    let location = spec.location.as_str();
    if location.starts_with(oci::SCHEME) {
        let reference = oci::Reference::parse(location).map_err(fetch_err)?;
        let mut registry = oci::Registry::new(&reference, bounds.timeout)?;
        let pulled = registry.pull(bounds).await.map_err(|e| match &e {
            oci::OciError::Fetch(f) => fetch_err(format!("{f}{}", flag(f))),
            oci::OciError::TooLarge {
                what: "wasm layer", ..
            } => fetch_err(format!("{e} (--plugin-max-size)")),
            oci::OciError::Http { error, .. } if error.is_timeout() => fetch_err(format!(
                "the registry did not answer within {}s (--fetch-timeout)",
                bounds.timeout.as_secs_f64()
            )),
            _ => PluginError::from(e),
        })?;
        tracing::debug!(%reference, manifest = %pulled.manifest_digest, "pulled");
        return Ok(pulled.wasm);
    }
    let parsed = Location::parse(location).map_err(|e| fetch_err(e.to_string()))?;
    parsed
        .read_bounded(bounds)
        .await
        .map_err(|e| fetch_err(format!("{e}{}", flag(&e))))
}

/// Shared by every plugin of a process: build it once at start-up.
pub struct Runtime {
    pub(crate) shared: Arc<Shared>,
    cache: Option<CompileCache>,
}

/// What instances need from the runtime.
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<StoreState>,
    pub(crate) limits: Limits,
}

impl Runtime {
    /// Builds the engine for these limits. `cache_dir: None` turns the compile cache off.
    pub fn new(
        limits: Limits,
        cache_dir: Option<&std::path::Path>,
    ) -> Result<Runtime, PluginError> {
        let engine = Engine::new(&engine_config(&limits)).map_err(engine_err)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_err)?;
        sandbox::link_virtual_time(&mut linker).map_err(engine_err)?;

        let cache = match cache_dir {
            Some(dir) => Some(CompileCache::open(dir, &engine)?),
            None => None,
        };

        // Epoch interruption needs someone to advance the epoch; a deadline is
        // then honoured to within one tick. The ticker lives exactly as long
        // as the engine: as long as any plugin, instance or store can run.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| PluginError::Engine(format!("cannot start the epoch ticker: {e}")))?;

        Ok(Runtime {
            shared: Arc::new(Shared {
                engine,
                linker,
                limits,
            }),
            cache,
        })
    }

    /// The limits every instance gets.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// The compile cache directory, if caching is on.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache.as_ref().map(|c| c.dir())
    }

    /// Reads a plugin from its location ([`fetch`]) and [loads](Runtime::load) it.
    pub async fn fetch_and_load(
        &self,
        spec: &PluginSpec,
        bounds: &Bounds,
    ) -> Result<Plugin, PluginError> {
        let bytes = fetch(spec, bounds).await?;
        self.load(spec, &bytes)
    }

    /// Verifies, compiles (or loads from cache) and checks a plugin, and asks
    /// it for its name, version and kind.
    pub fn load(&self, spec: &PluginSpec, bytes: &[u8]) -> Result<Plugin, PluginError> {
        let started = Instant::now();
        let sha256 = spec.verify(bytes)?;
        let location = spec.shown();
        let cap = self.shared.limits.memory_bytes;
        if let Some(needs) = memory::declared_minimum(bytes)
            && needs > cap
        {
            return Err(PluginError::MemoryBelowMinimum {
                location,
                needs,
                cap,
                set_by: self.shared.limits.set_by.clone(),
            });
        }

        let (component, cache) = match self
            .cache
            .as_ref()
            .and_then(|c| c.load(&self.shared.engine, &sha256))
        {
            Some(c) => (c, CacheOutcome::Hit),
            None => {
                let c = Component::new(&self.shared.engine, bytes).map_err(|e| {
                    PluginError::Invalid {
                        location: location.clone(),
                        reason: format!("{e:#}"),
                    }
                })?;
                match &self.cache {
                    Some(cache) => {
                        cache.store(&sha256, &c);
                        (c, CacheOutcome::Miss)
                    }
                    None => (c, CacheOutcome::Disabled),
                }
            }
        };

        let ty = component.component_type();
        let engine = &self.shared.engine;
        let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
        let imports: Vec<String> = ty
            .imports(engine)
            .filter(|(_, item)| {
                matches!(
                    item.ty,
                    ComponentItem::ComponentInstance(_) | ComponentItem::ComponentFunc(_)
                )
            })
            .map(|(n, _)| n.to_string())
            .collect();

        let wit::Identified {
            interface,
            version: interface_version,
            kind,
        } = wit::identify(&exports, &location)?;

        let instance_pre = self
            .shared
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::Invalid {
                location: location.clone(),
                reason: format!("it needs imports the sandbox does not provide: {e:#}"),
            })?;
        let pre = interface
            .prepare(kind, instance_pre)
            .map_err(|e| invalid(&location, e))?;
        let mut plugin = Plugin(Arc::new(PluginInner {
            display_name: spec.short_name().to_string(),
            spec: spec.clone(),
            sha256,
            size: bytes.len(),
            interface_version,
            kind,
            info: None,
            imports,
            exports,
            cache,
            load_time: Duration::ZERO,
            pre,
            shared: self.shared.clone(),
        }));

        // Ask the plugin who it is, and hold it to its world.
        let info = plugin.query_info()?;
        if info.kind != kind {
            return Err(PluginError::Contract {
                plugin: plugin.name().to_string(),
                message: format!(
                    "reports kind {} but exports the {} interface",
                    info.kind, kind
                ),
            });
        }
        let inner = Arc::get_mut(&mut plugin.0).expect("not shared yet");
        inner.display_name = info.name.clone();
        inner.info = Some(info);
        // Bytes in hand to a plugin that has answered a call: what "ready" costs.
        inner.load_time = started.elapsed();
        let load_time = inner.load_time;
        tracing::debug!(
            plugin = %plugin.name(), cache = ?cache, ms = load_time.as_secs_f64() * 1e3,
            "plugin ready"
        );
        Ok(plugin)
    }
}

fn engine_config(limits: &Limits) -> Config {
    let mut cfg = Config::new();
    cfg.epoch_interruption(true);
    cfg.consume_fuel(limits.fuel.is_some());
    // We never run guests concurrently inside one store; this makes each call ~3x cheaper.
    cfg.concurrency_support(false);

    // Instance slots are pre-reserved: instantiation is a few microseconds,
    // and a trapped instance is cheap to replace.
    let n = limits.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n * 8)
        .total_memories(n * 2)
        .total_tables(n * 4)
        .max_memories_per_component(2)
        .max_memory_size(limits.memory_bytes.next_multiple_of(64 << 10) as usize);
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    cfg
}

fn engine_err(e: wasmtime::Error) -> PluginError {
    PluginError::Engine(format!("{e:#}"))
}

fn invalid(location: &str, e: wasmtime::Error) -> PluginError {
    PluginError::Invalid {
        location: location.to_string(),
        reason: format!("{e:#}"),
    }
}

/// A loaded plugin: compiled, linked and checked. Cheap to clone; make a
/// [`PluginInstance`] per pipeline that uses it.
#[derive(Clone)]
pub struct Plugin(pub(crate) Arc<PluginInner>);

pub(crate) struct PluginInner {
    pub(crate) display_name: String,
    pub(crate) spec: PluginSpec,
    pub(crate) sha256: String,
    pub(crate) size: usize,
    pub(crate) interface_version: String,
    pub(crate) kind: Kind,
    pub(crate) info: Option<Info>,
    pub(crate) imports: Vec<String>,
    pub(crate) exports: Vec<String>,
    pub(crate) cache: CacheOutcome,
    pub(crate) load_time: Duration,
    /// Type-checked against its world, in its interface version.
    pub(crate) pre: Box<dyn Prepared>,
    pub(crate) shared: Arc<Shared>,
}

impl Plugin {
    /// The name the plugin reports (its file name until it has reported one).
    pub fn name(&self) -> &str {
        &self.0.display_name
    }
    /// What the user asked for.
    pub fn spec(&self) -> &PluginSpec {
        &self.0.spec
    }
    /// The plugin's kind (from the world it exports).
    pub fn kind(&self) -> Kind {
        self.0.kind
    }
    /// Name, version, kind and description as the plugin reports them.
    pub fn info(&self) -> &Info {
        self.0.info.as_ref().expect("set by Runtime::load")
    }
    /// SHA-256 of the wasm bytes, lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// Size of the wasm bytes.
    pub fn size(&self) -> usize {
        self.0.size
    }
    /// The `host:plugin` interface version it was built against.
    pub fn interface_version(&self) -> &str {
        &self.0.interface_version
    }
    /// The component's imports (all satisfied by the deny-all sandbox).
    pub fn imports(&self) -> &[String] {
        &self.0.imports
    }
    /// The component's exports.
    pub fn exports(&self) -> &[String] {
        &self.0.exports
    }
    /// Whether the compiled code came from the cache.
    pub fn cache(&self) -> CacheOutcome {
        self.0.cache
    }
    /// Time from bytes to a plugin that has answered its first call
    /// (digest check, compile or cache load, linking, instantiation, `info`).
    pub fn load_time(&self) -> Duration {
        self.0.load_time
    }

    /// A fresh instance, configured with the spec's parameters.
    pub fn instantiate(&self) -> Result<PluginInstance, PluginError> {
        PluginInstance::new(self.clone())
    }

    /// Asks a fresh instance who it is, under the same limits as any call.
    fn query_info(&self) -> Result<Info, PluginError> {
        let fault = |during: &str, fault| PluginError::Fault {
            plugin: self.name().to_string(),
            during: during.into(),
            fault,
            set_by: self.0.shared.limits.set_by.clone(),
        };
        let mut live = Live::start(self).map_err(|f| fault("instantiation", f))?;
        live.info(self).map_err(|f| fault("info", f))
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .finish()
    }
}
