//! Errors as Python exceptions: one class per kind of failure a caller may
//! want to catch, the CLI's message as the text, and the facts in it
//! (file, line, item id, plugin) as attributes.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::{PyErr, create_exception};

use host::catalog::CatalogError;
use host::load::LoadError;

create_exception!(host, Error, PyException, "Anything host could not do.");
create_exception!(
    host,
    ConnectError,
    Error,
    "Could not connect, or the DSN is invalid."
);
create_exception!(
    host,
    CatalogError_,
    Error,
    "The catalog refused or failed an operation."
);
create_exception!(
    host,
    DuplicateError,
    CatalogError_,
    "method='insert' met an id that is already there."
);
create_exception!(
    host,
    NoSuchCollectionError,
    CatalogError_,
    "The collection does not exist."
);
create_exception!(host, SearchError, Error, "The search request is invalid.");
create_exception!(
    host,
    RecordError,
    Error,
    "A record was invalid or a plugin rejected it (and there is no reject file); \
     attributes: source, line, index, what, id, plugin, reason."
);
create_exception!(
    host,
    PluginError,
    Error,
    "A plugin could not be loaded or failed."
);
create_exception!(host, SourceError, Error, "A source could not be read.");
create_exception!(
    host,
    MigrateError,
    Error,
    "A migration failed or was refused."
);

/// Registers the classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("ConnectError", py.get_type::<ConnectError>())?;
    m.add("CatalogError", py.get_type::<CatalogError_>())?;
    m.add("DuplicateError", py.get_type::<DuplicateError>())?;
    m.add(
        "NoSuchCollectionError",
        py.get_type::<NoSuchCollectionError>(),
    )?;
    m.add("SearchError", py.get_type::<SearchError>())?;
    m.add("RecordError", py.get_type::<RecordError>())?;
    m.add("PluginError", py.get_type::<PluginError>())?;
    m.add("SourceError", py.get_type::<SourceError>())?;
    m.add("MigrateError", py.get_type::<MigrateError>())?;
    Ok(())
}

/// `context: error`, as the CLI prints it.
fn text(context: &str, e: &dyn std::fmt::Display) -> String {
    if context.is_empty() {
        e.to_string()
    } else {
        format!("{context}: {e}")
    }
}

pub fn connect(e: host::db::ConnectError) -> PyErr {
    ConnectError::new_err(e.to_string())
}

pub fn catalog(context: &str, e: CatalogError) -> PyErr {
    let msg = text(context, &e);
    match e {
        CatalogError::Duplicate { .. } => DuplicateError::new_err(msg),
        CatalogError::NoSuchCollection(_) => NoSuchCollectionError::new_err(msg),
        CatalogError::Search(_) => SearchError::new_err(msg),
        CatalogError::Migrate(_) => MigrateError::new_err(msg),
        _ => CatalogError_::new_err(msg),
    }
}

pub fn load(py: Python<'_>, context: &str, e: LoadError) -> PyErr {
    let msg = text(context, &e);
    match e {
        LoadError::Catalog(c) => catalog(context, c),
        LoadError::Record(r) => {
            let err = RecordError::new_err(msg);
            let v = err.value(py);
            // Setting attributes on a fresh exception instance cannot fail.
            let _ = v.setattr("source", &r.at.source);
            let _ = v.setattr("line", r.at.line);
            let _ = v.setattr("index", r.at.index);
            let _ = v.setattr("what", r.what);
            let _ = v.setattr("id", &r.id);
            let _ = v.setattr("plugin", &r.plugin);
            let _ = v.setattr("reason", &r.reason);
            err
        }
        LoadError::Plugin(_) => PluginError::new_err(msg),
        LoadError::Source(_) | LoadError::RejectFile { .. } => SourceError::new_err(msg),
        LoadError::Cancelled | LoadError::Audit(_) => Error::new_err(msg),
    }
}
