//! Python records as a load source: an iterator of dicts (or of objects with
//! `to_dict()`, like pystac's), each encoded as one JSON object and handed to
//! the load pipeline as a record of its own ([`host::load::Records`]: no
//! splitter scans them again). Records are pulled in batches, holding the
//! GIL only while pulling and encoding: the iterator is never collected, so
//! a generator of any length loads in flat memory.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyIterator};

/// Records pulled per visit to Python.
const BATCH: usize = 256;
/// ... or fewer, once this many bytes are encoded.
const BATCH_BYTES: usize = 4 << 20;

/// What the iterator raised, kept so the load re-raises the caller's own
/// exception (with its traceback) instead of a message about it.
pub type Raised = Arc<Mutex<Option<PyErr>>>;

/// Records encoded from a Python iterator, a batch at a time.
pub struct Records {
    iter: Py<PyIterator>,
    dumps: Py<PyAny>,
    done: bool,
    /// Records pulled so far.
    pulled: u64,
    /// The last record's size, to size the next one's buffer.
    last_len: usize,
    raised: Raised,
}

impl Records {
    pub fn new(iter: Bound<'_, PyIterator>, raised: Raised) -> PyResult<Records> {
        let py = iter.py();
        let json = py.import("json")?;
        let dumps = json.getattr("dumps")?.unbind();
        Ok(Records {
            iter: iter.unbind(),
            dumps,
            done: false,
            pulled: 0,
            last_len: 0,
            raised,
        })
    }

    /// Pulls and encodes the next batch into `out`.
    fn fill(&mut self, out: &mut Vec<Vec<u8>>) -> PyResult<()> {
        Python::attach(|py| {
            let iter = self.iter.bind(py);
            let dumps = self.dumps.bind(py);
            let kwargs = PyDict::new(py);
            kwargs.set_item("separators", (",", ":"))?;
            kwargs.set_item("ensure_ascii", false)?;
            kwargs.set_item("allow_nan", false)?;
            let mut bytes = 0;
            for _ in 0..BATCH {
                let Some(next) = iter.clone().next() else {
                    self.done = true;
                    break;
                };
                let record = next?;
                self.pulled += 1;
                let mut text = Vec::with_capacity(self.last_len + self.last_len / 8);
                encode(&record, dumps, &kwargs, &mut text).inspect_err(|e| {
                    let note = format!(
                        "host: record {} of the iterable could not be read (to_dict() or JSON encoding failed)",
                        self.pulled
                    );
                    let _ = e.value(py).call_method1("add_note", (note,));
                })?;
                self.last_len = text.len();
                bytes += text.len();
                out.push(text);
                if bytes >= BATCH_BYTES {
                    break;
                }
            }
            Ok(())
        })
    }
}

/// Appends one record as JSON text: a dict, or what its `to_dict()`
/// returns; written by [`crate::encode`], or by `json.dumps` where that
/// declines.
fn encode(
    record: &Bound<'_, PyAny>,
    dumps: &Bound<'_, PyAny>,
    kwargs: &Bound<'_, PyDict>,
    out: &mut Vec<u8>,
) -> PyResult<()> {
    let dict = if record.is_instance_of::<PyDict>() {
        record.clone()
    } else if record.hasattr("to_dict")? {
        record.call_method0("to_dict")?
    } else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "a STAC record must be a dict or have to_dict(), not {}",
            record.get_type().name()?
        )));
    };
    let start = out.len();
    if crate::encode::write(&dict, out).is_ok() {
        return Ok(());
    }
    out.truncate(start);
    let text: String = dumps.call((dict,), Some(kwargs))?.extract()?;
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

impl host::load::Records for Records {
    fn next_batch(&mut self, out: &mut Vec<Vec<u8>>) -> std::io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        if let Err(e) = self.fill(out) {
            let message = e.to_string();
            *self.raised.lock().expect("not poisoned") = Some(e);
            self.done = true;
            return Err(std::io::Error::other(format!(
                "after record {}: the iterable raised {message}",
                self.pulled
            )));
        }
        Ok(!out.is_empty())
    }
}
