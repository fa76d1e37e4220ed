//! Opening what the user named as a blocking reader: a path, `-` for stdin,
//! or a URL streamed through [`crate::fetch`]. Gzip is recognised by its
//! magic bytes (not the name) and decompressed on the fly.

use std::io::{Cursor, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;

use crate::fetch::{FetchError, Location};

/// A source a load reads, in order with the others.
pub enum SourceSpec {
    /// What the user named: a path, `-` for stdin, or a URL.
    Named(String),
    /// Records the caller supplies already split, each one JSON value's
    /// bytes, with the name messages give the source: the Python package
    /// hands over its dicts this way. No splitter reads them (it would scan
    /// every byte only to find the ends the caller knows); a record's
    /// "line" is its place in the sequence, from 1.
    Records {
        name: String,
        records: Box<dyn Records>,
    },
}

/// A source of records already split ([`SourceSpec::Records`]).
pub trait Records: Send {
    /// Appends the next records to `out`; returns `false` once there are no
    /// more (having appended none).
    fn next_batch(&mut self, out: &mut Vec<Vec<u8>>) -> std::io::Result<bool>;
}

impl std::fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Named(t) => write!(f, "{t:?}"),
            SourceSpec::Records { name, .. } => write!(f, "<records {name}>"),
        }
    }
}

impl From<String> for SourceSpec {
    fn from(text: String) -> SourceSpec {
        SourceSpec::Named(text)
    }
}

/// An open source.
pub struct Source {
    /// How messages name it.
    pub name: String,
    /// Its decompressed bytes.
    pub reader: Box<dyn Read + Send>,
}

/// Opens what the user named (`text`). Must run outside the async workers
/// (it blocks); `handle` runs the network streams. Bytes read (before
/// decompression) are added to `counter`.
pub fn open(
    text: &str,
    handle: &tokio::runtime::Handle,
    counter: Arc<AtomicU64>,
) -> Result<Source, String> {
    let (name, raw): (String, Box<dyn Read + Send>) = if text == "-" {
        ("<stdin>".into(), Box::new(std::io::stdin()))
    } else {
        let location = Location::parse(text).map_err(|e| e.to_string())?;
        let name = location.display();
        match location {
            Location::Local(path) => {
                let f = std::fs::File::open(&path).map_err(|e| format!("{name}: {e}"))?;
                (name, Box::new(f))
            }
            remote @ Location::Remote(_) => {
                let stream = handle
                    .block_on(remote.stream())
                    .map_err(|e| e.to_string())?;
                (name, Box::new(StreamReader::spawn(stream, handle)))
            }
        }
    };
    wrap(name, raw, counter)
}

/// Counts `raw`'s bytes and decompresses it when it is gzip.
fn wrap(
    name: String,
    raw: Box<dyn Read + Send>,
    counter: Arc<AtomicU64>,
) -> Result<Source, String> {
    let counted = Counting {
        inner: raw,
        counter,
    };
    let reader = sniff_gzip(counted).map_err(|e| format!("{name}: {e}"))?;
    Ok(Source { name, reader })
}

/// Wraps the reader in a gzip decoder when it starts with gzip's magic bytes.
fn sniff_gzip<R: Read + Send + 'static>(mut r: R) -> std::io::Result<Box<dyn Read + Send>> {
    let mut head = Vec::with_capacity(2);
    while head.len() < 2 {
        let mut b = [0u8; 2];
        let n = r.read(&mut b[..2 - head.len()])?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&b[..n]);
    }
    let gz = head == [0x1f, 0x8b];
    let whole = Cursor::new(head).chain(r);
    if gz {
        // Multi-member: `cat a.gz b.gz` is valid gzip.
        Ok(Box::new(std::io::BufReader::with_capacity(
            256 << 10,
            flate2::read::MultiGzDecoder::new(whole),
        )))
    } else {
        Ok(Box::new(whole))
    }
}

struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A blocking reader fed by an async byte stream running on the runtime.
struct StreamReader {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, FetchError>>,
    current: Bytes,
}

impl StreamReader {
    fn spawn(
        mut stream: futures::stream::BoxStream<'static, Result<Bytes, FetchError>>,
        handle: &tokio::runtime::Handle,
    ) -> StreamReader {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        handle.spawn(async move {
            while let Some(chunk) = stream.next().await {
                let failed = chunk.is_err();
                // A closed receiver means the load stopped reading: stop too.
                if tx.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        });
        StreamReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_is_recognised_by_content() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"a\":1}\n").unwrap();
        let bytes = gz.finish().unwrap();
        let mut out = String::new();
        sniff_gzip(Cursor::new(bytes))
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "{\"a\":1}\n");
        let mut out = String::new();
        sniff_gzip(Cursor::new(b"{}".to_vec()))
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "{}");
        let mut out = String::new();
        sniff_gzip(Cursor::new(b"x".to_vec()))
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "x");
    }
}
