//! Python records as a load source: an iterator of dicts (or of objects with
//! `to_dict()`, like pystac's) read as NDJSON, one record per line, so the
//! load pipeline sees a file like any other and streams it. Records are
//! pulled in batches, holding the GIL only while pulling and encoding: the
//! iterator is never collected, so a generator of any length loads in
//! flat memory.

use std::io::Read;
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

/// A blocking reader of NDJSON encoded from a Python iterator.
pub struct Records {
    iter: Py<PyIterator>,
    dumps: Py<PyAny>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
    /// Records pulled so far (the line of the last one).
    pulled: u64,
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
            buf: Vec::new(),
            pos: 0,
            done: false,
            pulled: 0,
            raised,
        })
    }

    /// Pulls and encodes the next batch into `buf`.
    fn fill(&mut self) -> PyResult<()> {
        self.buf.clear();
        self.pos = 0;
        Python::attach(|py| {
            let iter = self.iter.bind(py);
            let dumps = self.dumps.bind(py);
            let kwargs = PyDict::new(py);
            kwargs.set_item("separators", (",", ":"))?;
            kwargs.set_item("ensure_ascii", false)?;
            kwargs.set_item("allow_nan", false)?;
            for _ in 0..BATCH {
                let Some(next) = iter.clone().next() else {
                    self.done = true;
                    break;
                };
                let record = next?;
                self.pulled += 1;
                let text = encode(&record, dumps, &kwargs).inspect_err(|e| {
                    let note = format!(
                        "host: record {} of the iterable could not be read (to_dict() or JSON encoding failed)",
                        self.pulled
                    );
                    let _ = e.value(py).call_method1("add_note", (note,));
                })?;
                self.buf.extend_from_slice(text.as_bytes());
                self.buf.push(b'\n');
                if self.buf.len() >= BATCH_BYTES {
                    break;
                }
            }
            Ok(())
        })
    }
}

/// One record as JSON text: a dict, or what its `to_dict()` returns.
fn encode(
    record: &Bound<'_, PyAny>,
    dumps: &Bound<'_, PyAny>,
    kwargs: &Bound<'_, PyDict>,
) -> PyResult<String> {
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
    dumps.call((dict,), Some(kwargs))?.extract()
}

impl Read for Records {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            if let Err(e) = self.fill() {
                let message = e.to_string();
                *self.raised.lock().expect("not poisoned") = Some(e);
                self.done = true;
                return Err(std::io::Error::other(format!(
                    "after record {}: the iterable raised {message}",
                    self.pulled
                )));
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
