//! Reading something whole into memory, within bounds: a plugin from a path
//! or a URL (and, reusing [`collect_bounded`], any other stream of chunks
//! with a declared length, such as a registry blob).
//!
//! - A declared size (a file's length, `Content-Length`) above the cap is
//!   refused before a byte is read; an answer that grows past the cap while
//!   arriving is refused as soon as it does. Memory never exceeds the cap.
//! - Connecting and the server's first answer are bounded by the timeout,
//!   and so is every wait for the next chunk: a server that stops answering
//!   ends the command with a message naming the URL, not a hang.
//! - On a terminal, a progress line shows what is being fetched; elsewhere
//!   one log line says so.

use std::io::IsTerminal;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};

use super::{FetchError, Location, Size};

/// How much and how long: the limits of one whole read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Most bytes accepted.
    pub max_bytes: u64,
    /// Longest wait for a connection, the first answer, and each next chunk.
    pub timeout: Duration,
}

impl Default for Bounds {
    /// The command line's defaults (`--plugin-max-size 256MiB`, `--fetch-timeout 30s`).
    fn default() -> Bounds {
        Bounds {
            max_bytes: 256 << 20,
            timeout: Duration::from_secs(30),
        }
    }
}

impl Location {
    /// Reads the whole object within `bounds`, with progress on a terminal.
    pub async fn read_bounded(&self, bounds: &Bounds) -> Result<Vec<u8>, FetchError> {
        let shown = self.display();
        match self {
            Location::Local(path) => {
                let io = |source| FetchError::Io {
                    location: shown.clone(),
                    source,
                };
                let file = tokio::fs::File::open(path).await.map_err(io)?;
                let meta = file.metadata().await.map_err(io)?;
                // A regular file declares its size; a pipe or a device does not.
                let declared = meta.is_file().then_some(meta.len());
                let chunks = super::tokio_util_stream(file, shown.clone());
                collect_bounded(&shown, declared, chunks, bounds).await
            }
            Location::Remote(_) => {
                tracing::info!("fetching {}", crate::terminal::Shown(&shown));
                let (got, shown) = self.get(bounds.timeout).await?;
                let declared = got.meta.size;
                let chunks = got.into_stream().map(move |r| {
                    r.map_err(|source| FetchError::Store {
                        location: shown.clone(),
                        source,
                    })
                });
                collect_bounded(&self.display(), Some(declared), chunks, bounds).await
            }
        }
    }
}

/// Collects `chunks` into memory within `bounds`: a `declared` size above the
/// cap is refused before anything is read, and so is the chunk that would
/// take the total past it; each chunk must come within the timeout.
/// `location` names the source in errors and on the progress line.
pub async fn collect_bounded<S>(
    location: &str,
    declared: Option<u64>,
    chunks: S,
    bounds: &Bounds,
) -> Result<Vec<u8>, FetchError>
where
    S: Stream<Item = Result<Bytes, FetchError>> + Send,
{
    let too_large = |size| FetchError::TooLarge {
        location: location.to_string(),
        size,
        max: bounds.max_bytes,
    };
    if let Some(n) = declared
        && n > bounds.max_bytes
    {
        return Err(too_large(Size::Declared(n)));
    }
    let progress = Progress::new(location, declared);
    // `declared` is at most the cap here; a lying server is caught below.
    let mut out = Vec::with_capacity(usize::try_from(declared.unwrap_or(0)).unwrap_or(0));
    let mut chunks = std::pin::pin!(chunks);
    loop {
        let next = tokio::time::timeout(bounds.timeout, chunks.next())
            .await
            .map_err(|_| FetchError::TimedOut {
                location: location.to_string(),
                waiting_for: "data",
                timeout: bounds.timeout,
            })?;
        let Some(chunk) = next else { break };
        let chunk = chunk?;
        if (out.len() + chunk.len()) as u64 > bounds.max_bytes {
            return Err(too_large(Size::MoreThan(bounds.max_bytes)));
        }
        out.extend_from_slice(&chunk);
        progress.set(out.len() as u64);
    }
    progress.finish();
    Ok(out)
}

/// `chunks`, failing with [`FetchError::TimedOut`] when the next one takes
/// longer than `timeout`.
pub(super) fn idle_timeout(
    chunks: BoxStream<'static, Result<Bytes, FetchError>>,
    location: String,
    timeout: Duration,
) -> BoxStream<'static, Result<Bytes, FetchError>> {
    futures::stream::unfold(Some(chunks), move |state| {
        let location = location.clone();
        async move {
            let mut chunks = state?;
            match tokio::time::timeout(timeout, chunks.next()).await {
                Ok(Some(item)) => Some((item, Some(chunks))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(FetchError::TimedOut {
                        location,
                        waiting_for: "data",
                        timeout,
                    }),
                    None,
                )),
            }
        }
    })
    .boxed()
}

/// A progress line on a terminal: what, how much of how much, how long.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(location: &str, declared: Option<u64>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let (bar, template) = match declared {
            Some(n) => (
                indicatif::ProgressBar::new(n),
                "{spinner} fetching {msg} {bytes}/{total_bytes} [{elapsed}]",
            ),
            None => (
                indicatif::ProgressBar::new_spinner(),
                "{spinner} fetching {msg} {bytes} [{elapsed}]",
            ),
        };
        bar.set_style(indicatif::ProgressStyle::with_template(template).expect("a valid template"));
        bar.set_message(crate::terminal::escape(location).into_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress(Some(bar))
    }

    fn set(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(n);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(max: u64) -> Bounds {
        Bounds {
            max_bytes: max,
            timeout: Duration::from_millis(200),
        }
    }

    fn chunks(n: usize) -> impl Stream<Item = Result<Bytes, FetchError>> + Send {
        futures::stream::iter((0..n).map(|_| Ok(Bytes::from_static(b"0123456789"))))
    }

    #[tokio::test]
    async fn sizes_are_checked_before_and_while_reading() {
        let got = collect_bounded("x", Some(30), chunks(3), &bounds(30))
            .await
            .unwrap();
        assert_eq!(got.len(), 30);
        let e = collect_bounded("x", Some(31), chunks(3), &bounds(30))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "x is 31 bytes, more than the 30 allowed");
        // A length that lies, or none at all: stopped at the cap.
        let e = collect_bounded("x", Some(5), chunks(4), &bounds(30))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "x sent more than the 30 bytes allowed");
        let e = collect_bounded("x", None, chunks(4), &bounds(30))
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            FetchError::TooLarge {
                size: Size::MoreThan(30),
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_stalled_stream_times_out() {
        let stalled = chunks(1).chain(futures::stream::pending());
        let e = collect_bounded("http://h/p.wasm", None, stalled, &bounds(100))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "http://h/p.wasm: no data within 0.2s");
    }
}
