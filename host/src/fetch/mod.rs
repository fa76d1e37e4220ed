//! Reading bytes from wherever the user points: local paths, `file://`,
//! `http(s)://`, and object stores (`s3://`, `gs://`, `az://`) through
//! `object_store`, with credentials from the standard environment variables.
//!
//! Two ways to read: [`Location::stream`] for data of any size (chunks, as
//! they come), and [`Location::read_bounded`] ([`bounded`]) for things that
//! must be held whole, like a plugin: a size cap checked before and while
//! reading, timeouts on connecting and on every wait for more, and progress
//! on a terminal.

pub mod bounded;

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};
use object_store::{ClientOptions, ObjectStore, RetryConfig, path::Path as StorePath};
use url::Url;

pub use bounded::{Bounds, collect_bounded};

/// How long a stream may wait for its next chunk (data sources have no flag).
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed location: a local path or a URL an object store can serve.
#[derive(Debug, Clone)]
pub enum Location {
    /// A path on this machine (no scheme).
    Local(std::path::PathBuf),
    /// A URL with a scheme object_store understands.
    Remote(Url),
}

/// Errors naming the location that failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{location}: {source}")]
    Io {
        location: String,
        source: std::io::Error,
    },
    #[error(
        "{location}: unsupported URL scheme '{scheme}' (use a path, file://, http(s)://, s3://, gs:// or az://)"
    )]
    Scheme { location: String, scheme: String },
    #[error("{location}: {source}")]
    Store {
        location: String,
        source: object_store::Error,
    },
    #[error("{location}: invalid URL: {reason}")]
    Url { location: String, reason: String },
    #[error("{}", too_large(.location, .size, *.max))]
    TooLarge {
        location: String,
        /// What the server declared, or at least what arrived before we stopped.
        size: Size,
        max: u64,
    },
    #[error("{location}: no {waiting_for} within {}s", .timeout.as_secs_f64())]
    TimedOut {
        location: String,
        /// "answer", "connection", "data".
        waiting_for: &'static str,
        timeout: Duration,
    },
}

/// How big something turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// As the server or the file system declared it.
    Declared(u64),
    /// It went past this many bytes while arriving.
    MoreThan(u64),
}

fn too_large(location: &str, size: &Size, max: u64) -> String {
    match size {
        Size::Declared(n) => format!("{location} is {n} bytes, more than the {max} allowed"),
        Size::MoreThan(_) => format!("{location} sent more than the {max} bytes allowed"),
    }
}

impl Location {
    /// Parses user text: anything with `scheme://` is a URL, the rest a path.
    pub fn parse(text: &str) -> Result<Location, FetchError> {
        if text.contains("://") {
            let url = Url::parse(text).map_err(|e| FetchError::Url {
                location: text.to_string(),
                reason: e.to_string(),
            })?;
            Ok(Location::Remote(url))
        } else {
            Ok(Location::Local(text.into()))
        }
    }

    /// The location as the user wrote it, for messages (URLs lose any
    /// password and their query string).
    pub fn display(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
            Location::Remote(u) => {
                let mut u = u.clone();
                if u.password().is_some() {
                    let _ = u.set_password(Some("***"));
                }
                // A query string may be a credential (a presigned URL's signature).
                if u.query().is_some() {
                    u.set_query(Some("***"));
                }
                u.to_string()
            }
        }
    }

    /// The object store serving this URL. `timeout` bounds connecting and
    /// retrying; the reader bounds each wait for data itself.
    fn store(&self, timeout: Duration) -> Result<(Arc<dyn ObjectStore>, StorePath), FetchError> {
        let Location::Remote(url) = self else {
            unreachable!("local paths are read with std::fs")
        };
        let err = |source| FetchError::Store {
            location: self.display(),
            source,
        };
        let path = || {
            StorePath::from_url_path(url.path()).map_err(|e| FetchError::Url {
                location: self.display(),
                reason: e.to_string(),
            })
        };
        let client = ClientOptions::new()
            .with_connect_timeout(timeout)
            // A large download may take long; waits for each chunk are bounded instead.
            .with_timeout_disabled();
        let retry = RetryConfig {
            max_retries: 2,
            retry_timeout: timeout,
            ..RetryConfig::default()
        };
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => Arc::new(object_store::local::LocalFileSystem::new()),
            "http" | "https" => {
                let base = format!("{}://{}", url.scheme(), url.authority());
                Arc::new(
                    object_store::http::HttpBuilder::new()
                        .with_url(base)
                        // The user wrote http:// themselves; pins guard plugin integrity.
                        .with_client_options(client.with_allow_http(true))
                        .with_retry(retry)
                        .build()
                        .map_err(err)?,
                )
            }
            "s3" | "s3a" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .with_client_options(client.clone())
                    .with_retry(retry.clone())
                    .build()
                    .map_err(err)?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .with_client_options(client.clone())
                    .with_retry(retry.clone())
                    .build()
                    .map_err(err)?,
            ),
            "az" | "azure" | "abfs" | "abfss" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .with_client_options(client.clone())
                    .with_retry(retry.clone())
                    .build()
                    .map_err(err)?,
            ),
            other => {
                return Err(FetchError::Scheme {
                    location: self.display(),
                    scheme: other.to_string(),
                });
            }
        };
        Ok((store, path()?))
    }

    /// Streams the object in chunks, so a large source never sits in memory.
    pub async fn stream(
        &self,
    ) -> Result<BoxStream<'static, Result<bytes::Bytes, FetchError>>, FetchError> {
        let shown = self.display();
        match self {
            Location::Local(p) => {
                let file = tokio::fs::File::open(p)
                    .await
                    .map_err(|source| FetchError::Io {
                        location: shown.clone(),
                        source,
                    })?;
                let s = tokio_util_stream(file, shown);
                Ok(s)
            }
            Location::Remote(_) => {
                let (got, shown) = self.get(STREAM_TIMEOUT).await?;
                Ok(bounded::idle_timeout(
                    got.into_stream()
                        .map(move |r| {
                            r.map_err(|source| FetchError::Store {
                                location: shown.clone(),
                                source,
                            })
                        })
                        .boxed(),
                    self.display(),
                    STREAM_TIMEOUT,
                ))
            }
        }
    }
}

impl Location {
    /// Starts a GET: waits at most `timeout` for the server's answer.
    async fn get(
        &self,
        timeout: Duration,
    ) -> Result<(object_store::GetResult, String), FetchError> {
        let shown = self.display();
        let (store, path) = self.store(timeout)?;
        let got = tokio::time::timeout(timeout, store.get(&path))
            .await
            .map_err(|_| FetchError::TimedOut {
                location: shown.clone(),
                waiting_for: "answer",
                timeout,
            })?
            .map_err(|source| FetchError::Store {
                location: shown.clone(),
                source,
            })?;
        Ok((got, shown))
    }
}

/// Turns an async reader into a stream of 256 KiB chunks.
fn tokio_util_stream<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    reader: R,
    shown: String,
) -> BoxStream<'static, Result<bytes::Bytes, FetchError>> {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(Some(reader), move |state| {
        let shown = shown.clone();
        async move {
            let mut reader = state?;
            let mut buf = bytes::BytesMut::with_capacity(256 << 10);
            match reader.read_buf(&mut buf).await {
                Ok(0) => None,
                Ok(_) => Some((Ok(buf.freeze()), Some(reader))),
                Err(source) => Some((
                    Err(FetchError::Io {
                        location: shown,
                        source,
                    }),
                    None,
                )),
            }
        }
    })
    .boxed()
}
