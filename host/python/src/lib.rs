//! `host` from Python: a thin layer over the same library the CLI runs —
//! connect, migrate, version, load (files, URLs, dicts, pystac objects,
//! iterables and generators, streamed), search, delete, update extents.
//!
//! Every call releases the GIL while Rust works, on one tokio runtime shared
//! by the module. While a call runs, the calling thread checks for signals
//! every 100 ms: Ctrl-C drops the operation and its connection, so the
//! server rolls back its transaction and the database is as it was.

mod encode;
mod errors;
mod records;
mod sandbox;
mod search;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

use clap::ValueEnum;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use host::catalog::{
    Catalog, CatalogChoice, ExtentMode, ExtentSelection, Installed, ItemSelection, Method,
};
use host::db::Dsn;
use host::load::{Kind, LoadOptions, SourceSpec};
use host::plugin::{PluginSpec, Runtime};
use sandbox::Sandbox;

/// The runtime every call runs on (two workers: the load pipeline has
/// threads of its own).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("host-py")
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Runs `work` without the GIL; a signal handler that raises (Ctrl-C's
/// KeyboardInterrupt) drops it and raises instead.
fn run<T, F>(py: Python<'_>, work: impl FnOnce() -> F + Send) -> PyResult<T>
where
    F: Future<Output = PyResult<T>>,
    T: Send,
{
    py.detach(move || {
        runtime().block_on(async move {
            let signals = async {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tick.tick().await;
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        return e;
                    }
                }
            };
            tokio::select! {
                r = work() => r,
                e = signals => Err(e),
            }
        })
    })
}

/// A connection's settings and, once used, the connection.
struct Conn {
    dsn: Dsn,
    choice: CatalogChoice,
    client: Mutex<Option<tokio_postgres::Client>>,
}

/// The connection, opened (again) when there is none.
struct Session<'a> {
    guard: MutexGuard<'a, Option<tokio_postgres::Client>>,
    /// Set until the operation finishes: an interrupted one leaves no
    /// connection behind (dropping it rolls back what was open).
    armed: bool,
}

impl Conn {
    async fn session(&self) -> PyResult<Session<'_>> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            *guard = Some(self.dsn.connect().await.map_err(errors::connect)?);
        }
        Ok(Session { guard, armed: true })
    }
}

impl Conn {
    /// The connection and its catalog, opened.
    async fn catalog_session(&self) -> PyResult<(Session<'_>, Catalog)> {
        let mut s = self.session().await?;
        match Catalog::open(s.client(), self.choice).await {
            Ok(c) => Ok((s, c)),
            Err(e) => s.done(Err(errors::catalog(
                &format!("opening the STAC catalog of {}", self.dsn),
                e,
            ))),
        }
    }
}

impl Session<'_> {
    fn client(&mut self) -> &mut tokio_postgres::Client {
        self.guard.as_mut().expect("connected")
    }

    /// The operation finished (well or not): keep the connection.
    fn done<T>(mut self, r: T) -> T {
        self.armed = false;
        r
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if self.armed {
            *self.guard = None;
        }
    }
}

fn choice_of(text: &str) -> PyResult<CatalogChoice> {
    CatalogChoice::from_str(text, true).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "catalog must be 'auto', 'host' or 'pgstac', not {text:?}"
        ))
    })
}

fn method_of(text: &str) -> PyResult<Method> {
    Method::from_str(text, true).map_err(|_| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "method must be 'insert', 'insert_ignore', 'upsert' or 'delsert', not {text:?}"
        ))
    })
}

/// A value serde can write, as the Python value `json.loads` makes of it.
pub(crate) fn to_py<'py>(
    py: Python<'py>,
    value: &impl serde::Serialize,
) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).expect("plain data serializes");
    py.import("json")?.call_method1("loads", (text,))
}

/// Connects to PostgreSQL: `dsn` is a URL or `key=value` string; what it
/// leaves out (or all of it, when `None`) comes from the `PG*` variables.
/// `catalog`: 'auto' (the one the database holds), 'host' or 'pgstac'.
#[pyfunction]
#[pyo3(signature = (dsn=None, catalog="auto"))]
fn connect(py: Python<'_>, dsn: Option<&str>, catalog: &str) -> PyResult<Client> {
    let choice = choice_of(catalog)?;
    let dsn = match dsn {
        Some(text) => Dsn::parse(text),
        None => Dsn::from_env(),
    }
    .map_err(errors::connect)?;
    let conn = Arc::new(Conn {
        dsn,
        choice,
        client: Mutex::new(None),
    });
    {
        let conn = conn.clone();
        run(py, move || async move {
            let s = conn.session().await?;
            s.done(Ok(()))
        })?;
    }
    Ok(Client { conn })
}

/// A connection to one database's STAC catalog (see `host.connect`).
#[pyclass(module = "host", frozen)]
struct Client {
    conn: Arc<Conn>,
}

/// What a load did: counts (read = loaded + skipped + unchanged + dropped +
/// rejected), bytes, the collections touched, seconds, and where rejected
/// records went.
#[pyclass(module = "host", frozen, get_all)]
struct Summary {
    kind: String,
    method: String,
    catalog: String,
    read: u64,
    loaded: u64,
    skipped: u64,
    unchanged: u64,
    dropped: u64,
    rejected: u64,
    plugin_failures: u64,
    bytes: u64,
    collections: Vec<String>,
    seconds: f64,
    reject_file: Option<PathBuf>,
    line: String,
    json: String,
}

#[pymethods]
impl Summary {
    /// The summary as a dict (what `host load --json` prints).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (&self.json,))
    }

    fn __repr__(&self) -> String {
        format!("<host.Summary {}>", self.line)
    }

    fn __str__(&self) -> String {
        self.line.clone()
    }
}

impl Summary {
    fn new(s: host::load::Summary, reject_file: Option<PathBuf>) -> Summary {
        let name = |v: &dyn erased::Named| v.name();
        Summary {
            kind: s.kind.plural().to_string(),
            method: name(&s.method),
            catalog: s.catalog.as_str().to_string(),
            read: s.read,
            loaded: s.loaded,
            skipped: s.skipped,
            unchanged: s.unchanged,
            dropped: s.dropped,
            rejected: s.rejected,
            plugin_failures: s.plugin_failures,
            bytes: s.bytes,
            collections: s.collections.clone(),
            seconds: s.seconds,
            reject_file,
            line: s.line(),
            json: serde_json::to_string(&s).expect("plain data serializes"),
        }
    }
}

mod erased {
    /// A value enum's name as the CLI spells it.
    pub trait Named {
        fn name(&self) -> String;
    }
    impl<T: clap::ValueEnum> Named for T {
        fn name(&self) -> String {
            self.to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        }
    }
}

/// What a load reads: named sources, or records pulled from Python.
fn sources(
    obj: &Bound<'_, PyAny>,
    raised: &records::Raised,
    what: &str,
) -> PyResult<Vec<SourceSpec>> {
    let path = |o: &Bound<'_, PyAny>| -> PyResult<Option<String>> {
        if o.is_instance_of::<PyString>() {
            return Ok(Some(o.extract()?));
        }
        let os = o.py().import("os")?;
        if o.is_instance(&os.getattr("PathLike")?)? {
            return Ok(Some(os.call_method1("fspath", (o,))?.extract()?));
        }
        Ok(None)
    };
    if let Some(p) = path(obj)? {
        return Ok(vec![SourceSpec::Named(p)]);
    }
    if (obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>()) && obj.len()? > 0 {
        let named: Vec<Option<String>> = obj
            .try_iter()?
            .map(|o| path(&o?))
            .collect::<PyResult<_>>()?;
        if named.iter().all(Option::is_some) {
            return Ok(named.into_iter().flatten().map(SourceSpec::Named).collect());
        }
    }
    // One record, or an iterable of them.
    let iter = if obj.is_instance_of::<PyDict>() || obj.hasattr("to_dict")? {
        PyTuple::new(obj.py(), [obj])?.try_iter()?
    } else {
        obj.try_iter().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "{what}: expected a path, URL, dict, object with to_dict(), or an iterable of those, not {}",
                obj.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            ))
        })?
    };
    let reader = records::Records::new(iter, raised.clone())?;
    Ok(vec![SourceSpec::Records {
        name: format!("<{what}>"),
        records: Box::new(reader),
    }])
}

/// A plugin: `"FILE.wasm"`, `"FILE.wasm#sha256=HEX"`, a URL, or a dict
/// `{"location": ..., "sha256": ..., "params": {KEY: VALUE}}`.
fn plugin_spec(obj: &Bound<'_, PyAny>) -> PyResult<PluginSpec> {
    let bad = |m: String| pyo3::exceptions::PyValueError::new_err(m);
    if let Ok(text) = obj.extract::<String>() {
        return PluginSpec::parse(&text).map_err(bad);
    }
    let d = obj.cast::<PyDict>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(
            "a plugin is a string (path or URL, optionally #sha256=HEX) or a dict with 'location'",
        )
    })?;
    let location: String = d
        .get_item("location")?
        .ok_or_else(|| bad("a plugin dict needs 'location'".into()))?
        .extract()?;
    let mut spec = PluginSpec::parse(&location).map_err(bad)?;
    if let Some(h) = d.get_item("sha256")? {
        spec.pin(&h.extract::<String>()?).map_err(bad)?;
    }
    if let Some(p) = d.get_item("params")? {
        for (k, v) in p.cast::<PyDict>()?.iter() {
            let value = match v.extract::<String>() {
                Ok(s) => s,
                Err(_) => v.str()?.to_string(),
            };
            spec.params.push((k.extract()?, value));
        }
    }
    Ok(spec)
}

#[pymethods]
impl Client {
    /// The connection, without its password.
    #[getter]
    fn dsn(&self) -> String {
        self.conn.dsn.to_string()
    }

    fn __repr__(&self) -> String {
        format!("<host.Client {}>", self.conn.dsn)
    }

    /// Closes the connection (the next call opens a new one).
    fn close(&self, py: Python<'_>) {
        // Without the GIL: a call still running on the connection may need it to finish.
        py.detach(|| *self.conn.client.blocking_lock() = None);
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(&self, py: Python<'_>, _t: Py<PyAny>, _v: Py<PyAny>, _tb: Py<PyAny>) {
        self.close(py);
    }

    /// Brings the schema to `to` (default: the newest): host's own, or
    /// the set in `dir` (pgstac's files from the pypgstac wheel). Returns
    /// the plan as a dict (what `host migrate --json` prints).
    #[pyo3(signature = (dir=None, to=None, dry_run=false, alongside_pgstac=false))]
    fn migrate<'py>(
        &self,
        py: Python<'py>,
        dir: Option<PathBuf>,
        to: Option<&str>,
        dry_run: bool,
        alongside_pgstac: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.conn.clone();
        let to = to
            .map(host::migrate::Version::parse)
            .transpose()
            .map_err(pyo3::exceptions::PyValueError::new_err)?;
        let report = run(py, move || async move {
            let context = format!("migrating {}", conn.dsn);
            let set = match &dir {
                Some(d) => host::migrate::MigrationSet::from_dir(d, None)
                    .map_err(|e| errors::MigrateError::new_err(format!("{context}: {e}")))?,
                None => host::migrate::MigrationSet::builtin(),
            };
            let mut s = conn.session().await?;
            if dir.is_none() && !alongside_pgstac {
                let r = host::commands::migrate::refuse_beside_pgstac(s.client()).await;
                if let Err(e) = r {
                    return s.done(Err(errors::MigrateError::new_err(format!(
                        "{context}: {e:#}"
                    ))));
                }
            }
            let request = host::migrate::Request { to, dry_run };
            let r = host::migrate::migrate(s.client(), &set, &request, |_| {}).await;
            s.done(r.map_err(|e| errors::MigrateError::new_err(format!("{context}: {e}"))))
        })?;
        to_py(py, &report)
    }

    /// The version of the database's catalog.
    fn version(&self, py: Python<'_>) -> PyResult<String> {
        self.catalog_and_version(py).map(|(_, v)| v)
    }

    /// Which catalog the calls use: 'host' or 'pgstac'.
    #[getter]
    fn catalog(&self, py: Python<'_>) -> PyResult<String> {
        self.catalog_and_version(py).map(|(k, _)| k)
    }

    /// Loads collections; see `load_items` for `source`. Returns a `Summary`.
    #[pyo3(signature = (source, method="insert", reject_file=None))]
    fn load_collections(
        &self,
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        method: &str,
        reject_file: Option<PathBuf>,
    ) -> PyResult<Summary> {
        let mut opts =
            LoadOptions::new::<String>(Kind::Collections, Vec::new(), method_of(method)?);
        opts.reject_file = reject_file;
        self.load(py, source, opts, Vec::new(), Sandbox::default())
    }

    /// Loads items, in one transaction: all of them or none.
    ///
    /// `source`: a path or URL (NDJSON, JSON arrays, FeatureCollections,
    /// gzip), a list of them, a dict, an object with `to_dict()` (pystac),
    /// or an iterable or generator of those — pulled as the load goes,
    /// never collected. `method`: insert, insert_ignore, upsert, delsert.
    /// `plugins`: run in order (see `plugin_spec`). `sandbox`: a dict of the
    /// limits they run within, as the CLI's `--plugin-*` flags and a
    /// policy's `limits` (`memory`, `time`, `fuel`, `output`; sizes such as
    /// "64MiB" or bytes, durations such as "1s" or seconds), and where they
    /// come from (`max_size`, `fetch_timeout`, `cache`: a directory, or
    /// False to compile every time). `reject_file`: where invalid and
    /// rejected items go instead of failing the load.
    #[pyo3(signature = (source, method="insert", collection=None, plugins=None, reject_file=None,
                        update_extents=None, batch_size=256, strict_bbox=false, sandbox=None))]
    #[allow(clippy::too_many_arguments)]
    fn load_items(
        &self,
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        method: &str,
        collection: Option<String>,
        plugins: Option<Vec<Bound<'_, PyAny>>>,
        reject_file: Option<PathBuf>,
        update_extents: Option<&str>,
        batch_size: usize,
        strict_bbox: bool,
        sandbox: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Summary> {
        let sandbox = Sandbox::from_py(sandbox)?;
        let mut opts = LoadOptions::new::<String>(Kind::Items, Vec::new(), method_of(method)?);
        opts.reject_file = reject_file;
        opts.collection = collection;
        opts.update_extents = update_extents
            .map(|t| {
                ExtentMode::from_str(t, true).map_err(|_| {
                    pyo3::exceptions::PyValueError::new_err(format!(
                        "update_extents must be 'off', 'immediate' or 'deferred', not {t:?}"
                    ))
                })
            })
            .transpose()?;
        opts.batch_size = batch_size;
        opts.strict_bbox = strict_bbox;
        let specs = plugins
            .unwrap_or_default()
            .iter()
            .map(plugin_spec)
            .collect::<PyResult<Vec<_>>>()?;
        self.load(py, source, opts, specs, sandbox)
    }

    /// Items matching a STAC API search body (a dict or JSON text), as an
    /// iterator of dicts that follows `next` tokens page by page.
    #[pyo3(signature = (body=None))]
    fn search(&self, py: Python<'_>, body: Option<&Bound<'_, PyAny>>) -> PyResult<search::Items> {
        search::Items::new(py, self.conn.clone(), body)
    }

    /// How many items `collection` holds.
    fn count(&self, py: Python<'_>, collection: String) -> PyResult<u64> {
        let conn = self.conn.clone();
        run(py, move || async move {
            let (mut s, catalog) = conn.catalog_session().await?;
            let r = catalog.item_count(s.client(), &collection).await;
            s.done(r.map_err(|e| errors::catalog("", e)))
        })
    }

    /// Deletes items of `collection` in one transaction: `ids`, or every
    /// item with `all=True`. Returns {collection, deleted, not_found}.
    #[pyo3(signature = (collection, ids=None, all=false))]
    fn delete_items<'py>(
        &self,
        py: Python<'py>,
        collection: String,
        ids: Option<Vec<String>>,
        all: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let which = match (ids, all) {
            (Some(ids), false) => ItemSelection::Ids(ids),
            (None, true) => ItemSelection::All,
            _ => {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "give either ids or all=True",
                ));
            }
        };
        let conn = self.conn.clone();
        let done = run(py, move || async move {
            let (mut s, catalog) = conn.catalog_session().await?;
            let r = catalog.delete_items(s.client(), &collection, &which).await;
            s.done(r.map_err(|e| errors::catalog("", e)))
        })?;
        to_py(py, &done)
    }

    /// Deletes `collection` and its items in one transaction. Returns
    /// {collection, items}.
    fn delete_collection<'py>(
        &self,
        py: Python<'py>,
        collection: String,
    ) -> PyResult<Bound<'py, PyAny>> {
        let conn = self.conn.clone();
        let done = run(py, move || async move {
            let (mut s, catalog) = conn.catalog_session().await?;
            let r = catalog.delete_collection(s.client(), &collection).await;
            s.done(r.map_err(|e| errors::catalog("", e)))
        })?;
        to_py(py, &done)
    }

    /// Recomputes collection extents: `collections`, or all of them.
    #[pyo3(signature = (collections=None))]
    fn update_extents<'py>(
        &self,
        py: Python<'py>,
        collections: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let which = match collections {
            Some(c) => ExtentSelection::Collections(c),
            None => ExtentSelection::All,
        };
        let conn = self.conn.clone();
        let done = run(py, move || async move {
            let (mut s, catalog) = conn.catalog_session().await?;
            let r = catalog.update_extents(s.client(), &which).await;
            s.done(r.map_err(|e| errors::catalog("", e)))
        })?;
        to_py(py, &done)
    }
}

impl Client {
    fn catalog_and_version(&self, py: Python<'_>) -> PyResult<(String, String)> {
        let conn = self.conn.clone();
        run(py, move || async move {
            let mut s = conn.session().await?;
            let context = format!("reading the catalog of {}", conn.dsn);
            let r = async {
                let installed = Installed::read(s.client()).await?;
                let (kind, version) = installed.choose(s.client(), conn.choice).await?;
                Ok((kind.as_str().to_string(), version.to_string()))
            }
            .await;
            s.done(r.map_err(|e| errors::catalog(&context, e)))
        })
    }

    fn load(
        &self,
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        mut opts: LoadOptions,
        specs: Vec<PluginSpec>,
        sandbox: Sandbox,
    ) -> PyResult<Summary> {
        let what = opts.kind.plural();
        let raised = records::Raised::default();
        opts.sources = sources(source, &raised, what)?;
        let reject_file = opts.reject_file.clone();
        let conn = self.conn.clone();
        let result = run(py, move || async move {
            let context = format!("no {what} were loaded into {}", conn.dsn);
            // The runtime lives until the load is over (it ticks plugin deadlines).
            let mut plugins = Vec::new();
            let _runtime = if specs.is_empty() {
                None
            } else {
                let rt = Runtime::new(sandbox.limits, sandbox.cache.as_deref())
                    .map_err(|e| errors::PluginError::new_err(format!("{context}: {e}")))?;
                for spec in &specs {
                    let p = rt
                        .fetch_and_load(spec, &sandbox.bounds)
                        .await
                        .map_err(|e| errors::PluginError::new_err(format!("{context}: {e}")))?;
                    plugins.push(p);
                }
                Some(rt)
            };
            let (mut s, catalog) = conn.catalog_session().await?;
            let r = host::load::load(s.client(), &catalog, opts, plugins).await;
            s.done(Ok(r.map_err(|e| (context, e))))
        })?;
        match result {
            Ok(summary) => Ok(Summary::new(summary, reject_file)),
            Err((context, e)) => {
                // The caller's own exception from their iterable, when it raised.
                if let Some(err) = raised.lock().expect("not poisoned").take() {
                    let note = format!("host: {context}");
                    let _ = err.value(py).call_method1("add_note", (note,));
                    return Err(err);
                }
                Err(errors::load(py, &context, e))
            }
        }
    }
}

#[pymodule]
fn _host(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_class::<Client>()?;
    m.add_class::<Summary>()?;
    m.add_class::<search::Items>()?;
    errors::register(m)?;
    Ok(())
}
