//! `Client.search(body)`: items as an iterator of dicts, page by page,
//! following each page's `next` token until the last page.

use std::collections::VecDeque;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyString;

use host::search::SearchRequest;

use super::{Conn, errors, run};

/// The items of a search, fetched a page (the body's `limit`) at a time.
#[pyclass(module = "host")]
pub struct Items {
    conn: Arc<Conn>,
    request: SearchRequest,
    page: VecDeque<String>,
    /// The next page's token; `None` after the last page.
    next: Option<String>,
    started: bool,
    /// Pages fetched so far.
    #[pyo3(get)]
    pages: u64,
}

impl Items {
    pub(crate) fn new(
        py: Python<'_>,
        conn: Arc<Conn>,
        body: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Items> {
        let text: String = match body {
            None => "{}".into(),
            Some(b) if b.is_instance_of::<PyString>() => b.extract()?,
            Some(b) => py.import("json")?.call_method1("dumps", (b,))?.extract()?,
        };
        let invalid = |e: host::search::SearchError| {
            errors::SearchError::new_err(format!("invalid search request: {e}"))
        };
        let request = SearchRequest::parse(&text).map_err(invalid)?;
        // What either catalog would refuse is refused before connecting.
        host::search::sql::check(&request).map_err(invalid)?;
        let next = request.token.clone();
        Ok(Items {
            conn,
            request,
            page: VecDeque::new(),
            next,
            started: false,
            pages: 0,
        })
    }

    fn fetch(&mut self, py: Python<'_>) -> PyResult<()> {
        let conn = self.conn.clone();
        let mut request = self.request.clone();
        request.token = self.next.take();
        let page = run(py, move || async move {
            let (mut s, catalog) = conn.catalog_session().await?;
            let r = catalog.search(s.client(), &request).await;
            s.done(r.map_err(|e| errors::catalog("search", e)))
        })?;
        self.started = true;
        self.pages += 1;
        self.page = page.features.into();
        self.next = page.next_token;
        Ok(())
    }
}

#[pymethods]
impl Items {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        loop {
            if let Some(text) = self.page.pop_front() {
                return py.import("json")?.call_method1("loads", (text,)).map(Some);
            }
            if self.started && self.next.is_none() {
                return Ok(None);
            }
            self.fetch(py)?;
        }
    }
}
