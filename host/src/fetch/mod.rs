//! Reading bytes from wherever the user points: local paths, `file://`,
//! `http(s)://`, and object stores (`s3://`, `gs://`, `az://`) through
//! `object_store`, with credentials from the standard environment variables.

use std::sync::Arc;

use futures::stream::{BoxStream, StreamExt};
use object_store::{ObjectStore, path::Path as StorePath};
use url::Url;

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

    /// The location as the user wrote it, for messages (URLs lose any password).
    pub fn display(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
            Location::Remote(u) => {
                let mut u = u.clone();
                if u.password().is_some() {
                    let _ = u.set_password(Some("***"));
                }
                u.to_string()
            }
        }
    }

    fn store(&self) -> Result<(Arc<dyn ObjectStore>, StorePath), FetchError> {
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
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => Arc::new(object_store::local::LocalFileSystem::new()),
            "http" | "https" => {
                let base = format!("{}://{}", url.scheme(), url.authority());
                Arc::new(
                    object_store::http::HttpBuilder::new()
                        .with_url(base)
                        // The user wrote http:// themselves; pins guard plugin integrity.
                        .with_client_options(
                            object_store::ClientOptions::new().with_allow_http(true),
                        )
                        .build()
                        .map_err(err)?,
                )
            }
            "s3" | "s3a" => Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .build()
                    .map_err(err)?,
            ),
            "gs" => Arc::new(
                object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_url(url.as_str())
                    .build()
                    .map_err(err)?,
            ),
            "az" | "azure" | "abfs" | "abfss" => Arc::new(
                object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
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

    /// Reads the whole object (plugins are small; data sources use [`Location::stream`]).
    pub async fn read_all(&self) -> Result<Vec<u8>, FetchError> {
        match self {
            Location::Local(p) => tokio::fs::read(p).await.map_err(|source| FetchError::Io {
                location: self.display(),
                source,
            }),
            Location::Remote(_) => {
                let (store, path) = self.store()?;
                let err = |source| FetchError::Store {
                    location: self.display(),
                    source,
                };
                let got = store.get(&path).await.map_err(err)?;
                Ok(got.bytes().await.map_err(err)?.to_vec())
            }
        }
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
                let (store, path) = self.store()?;
                let got = store.get(&path).await.map_err(|source| FetchError::Store {
                    location: shown.clone(),
                    source,
                })?;
                Ok(got
                    .into_stream()
                    .map(move |r| {
                        r.map_err(|source| FetchError::Store {
                            location: shown.clone(),
                            source,
                        })
                    })
                    .boxed())
            }
        }
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
