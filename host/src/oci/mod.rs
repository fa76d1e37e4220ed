//! Plugins in OCI registries: pull and push WebAssembly components in the
//! layout the wasm ecosystem uses (the CNCF wasm OCI artifact, what `wkg oci`
//! writes): one layer of media type `application/wasm`, a config of media type
//! `application/vnd.wasm.config.v0+json`, an OCI image manifest.
//!
//! Every byte is checked before anyone compiles it: a pinned manifest digest
//! (`@sha256:...`) against the manifest's bytes, the layer's digest (from the
//! manifest) against the wasm, and sizes against caps. Plain HTTP is used only
//! for registries on loopback, as docker and oras allow; elsewhere HTTPS.

mod auth;
mod reference;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::TryStreamExt;
use reqwest::{Method, RequestBuilder, StatusCode, header};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use auth::{Challenge, Credentials, CredentialsError, credentials};

use crate::fetch::{Bounds, FetchError, Size, collect_bounded};
use crate::terminal::Shown;
pub use reference::{Reference, SCHEME};

/// The manifest media type we read and write.
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The wasm OCI artifact's config media type.
pub const CONFIG_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The wasm OCI artifact's layer media type.
pub const WASM_TYPE: &str = "application/wasm";
/// Largest manifest accepted.
const MAX_MANIFEST: u64 = 4 << 20;
/// Largest token service answer read.
const MAX_TOKEN_ANSWER: u64 = 1 << 20;
/// Most of an error answer's body read (and the first 300 bytes shown).
const MAX_ERROR_BODY: u64 = 64 << 10;

/// What can go wrong talking to a registry; each names the reference.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// Said once, with its causes ("error sending request: ... connection
    /// refused"), so not also a `source` (printing the chain would repeat it).
    #[error("{reference}: {}", chain(.error))]
    Http {
        reference: String,
        error: reqwest::Error,
    },
    #[error("{reference}: {what} answered {status}{}", detail(.body))]
    Status {
        reference: String,
        what: String,
        status: StatusCode,
        body: String,
    },
    #[error("{reference}: authentication failed: {reason}")]
    Auth { reference: String, reason: String },
    #[error("{reference}: registry credentials: {source}")]
    Credentials {
        reference: String,
        #[source]
        source: CredentialsError,
    },
    #[error("{reference} is not a wasm plugin artifact: {reason}")]
    NotWasm { reference: String, reason: String },
    #[error(
        "{reference}: the {what} has digest sha256:{actual}, but sha256:{expected} was expected; refusing to use it"
    )]
    Digest {
        reference: String,
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("{reference}: the {what} is {size} bytes, more than the {limit} allowed")]
    TooLarge {
        reference: String,
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error("{reference}: {reason}")]
    Usage { reference: String, reason: String },
    /// Reading an answer stopped at a bound: the registry went quiet for
    /// longer than the timeout, or sent more than it declared.
    #[error(transparent)]
    Fetch(FetchError),
}

/// An error and its causes on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out += &format!(": {text}");
        }
        cause = c.source();
    }
    out
}

fn detail(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {}", Shown(body))
    }
}

/// An OCI content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A pulled plugin: the wasm bytes, checked against the manifest's digest.
#[derive(Debug)]
pub struct Pulled {
    pub wasm: Vec<u8>,
    /// The manifest's digest (hex), to pin the reference with.
    pub manifest_digest: String,
}

/// `sha256:HEX` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A session with one registry repository: remembers how it authenticated.
pub struct Registry {
    reference: Reference,
    http: reqwest::Client,
    credentials: Option<Credentials>,
    /// The `Authorization` value that worked, once a challenge was answered.
    authorization: Option<String>,
    /// Longest wait to connect, for an answer, and for each next piece of one.
    timeout: Duration,
}

impl Registry {
    /// Connects lazily; reads credentials for the reference's registry now.
    /// `timeout` (`--fetch-timeout`) bounds connecting and every wait for the
    /// registry: one that stops answering ends the command, naming it.
    pub fn new(reference: &Reference, timeout: Duration) -> Result<Registry, OciError> {
        let shown = reference.to_string();
        let credentials =
            credentials(&reference.registry).map_err(|source| OciError::Credentials {
                reference: shown.clone(),
                source,
            })?;
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .user_agent(concat!("host/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| OciError::Http {
                reference: shown,
                error,
            })?;
        Ok(Registry {
            reference: reference.clone(),
            http,
            credentials,
            authorization: None,
            timeout,
        })
    }

    fn shown(&self) -> String {
        self.reference.to_string()
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}/v2/{}/{path}",
            self.reference.base_url(),
            self.reference.repository
        )
    }

    /// Sends a request; on 401 answers the registry's challenge once and resends.
    async fn send(
        &mut self,
        actions: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<reqwest::Response, OciError> {
        let attempt = |auth: Option<&String>| {
            let rb = build(&self.http);
            match auth {
                Some(a) => rb.header(header::AUTHORIZATION, a),
                None => rb,
            }
        };
        let shown = self.shown();
        let http_err = |error| OciError::Http {
            reference: shown.clone(),
            error,
        };
        let resp = attempt(self.authorization.as_ref())
            .send()
            .await
            .map_err(http_err)?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse)
            .ok_or_else(|| OciError::Auth {
                reference: shown.clone(),
                reason: "the registry asks for authentication without a usable WWW-Authenticate challenge".into(),
            })?;
        self.authorization = Some(self.answer(&challenge, actions).await?);
        attempt(self.authorization.as_ref())
            .send()
            .await
            .map_err(http_err)
            .and_then(|r| {
                if r.status() == StatusCode::UNAUTHORIZED {
                    Err(OciError::Auth {
                        reference: shown.clone(),
                        reason: match &self.credentials {
                            Some(_) => "the registry refused the credentials".into(),
                            None => "the registry needs credentials (docker login, or HOST_OCI_USERNAME and HOST_OCI_PASSWORD)".into(),
                        },
                    })
                } else {
                    Ok(r)
                }
            })
    }

    /// The `Authorization` header value that answers `challenge`.
    async fn answer(&self, challenge: &Challenge, actions: &str) -> Result<String, OciError> {
        let auth_err = |reason: String| OciError::Auth {
            reference: self.shown(),
            reason,
        };
        let basic = |c: &Credentials| match c {
            Credentials::Basic { username, password } => {
                use base64::Engine as _;
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"))
                ))
            }
            Credentials::IdentityToken(_) => None,
        };
        match challenge {
            Challenge::Basic => self
                .credentials
                .as_ref()
                .and_then(basic)
                .ok_or_else(|| auth_err("the registry needs a user name and password (docker login, or HOST_OCI_USERNAME and HOST_OCI_PASSWORD)".into())),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope.clone().unwrap_or_else(|| {
                    format!("repository:{}:{actions}", self.reference.repository)
                });
                let mut rb = match &self.credentials {
                    Some(Credentials::IdentityToken(token)) => {
                        let mut form = vec![
                            ("grant_type", "refresh_token".to_string()),
                            ("refresh_token", token.clone()),
                            ("scope", scope.clone()),
                            ("client_id", "host".to_string()),
                        ];
                        if let Some(s) = service {
                            form.push(("service", s.clone()));
                        }
                        self.http.post(realm).form(&form)
                    }
                    _ => {
                        let mut query = vec![("scope", scope.clone())];
                        if let Some(s) = service {
                            query.push(("service", s.clone()));
                        }
                        self.http.get(realm).query(&query)
                    }
                };
                if let Some(b) = self.credentials.as_ref().and_then(basic) {
                    rb = rb.header(header::AUTHORIZATION, b);
                }
                let resp = rb.send().await.map_err(|e| auth_err(format!("token service {realm}: {e}")))?;
                if !resp.status().is_success() {
                    return Err(auth_err(format!("token service {realm} answered {}", resp.status())));
                }
                #[derive(Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let body = self
                    .body(resp, "token service answer", MAX_TOKEN_ANSWER)
                    .await
                    .map_err(|e| auth_err(format!("token service {realm}: {e}")))?;
                let t: Token = serde_json::from_slice(&body)
                    .map_err(|e| auth_err(format!("token service {realm}: {e}")))?;
                let token = t.token.or(t.access_token).ok_or_else(|| {
                    auth_err(format!("token service {realm} sent no token"))
                })?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    async fn check(
        &self,
        resp: reqwest::Response,
        what: &str,
    ) -> Result<reqwest::Response, OciError> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        // A registry may say why; not at any length, nor in any bytes.
        let body = self
            .body(resp, "error answer", MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body);
        let mut end = body.len().min(300);
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        Err(OciError::Status {
            reference: self.shown(),
            what: what.to_string(),
            status,
            body: body[..end].trim().to_string(),
        })
    }

    /// Reads a response body within `limit` bytes and the timeout (each
    /// next chunk must come within it), with progress on a terminal.
    async fn body(
        &self,
        resp: reqwest::Response,
        what: &'static str,
        limit: u64,
    ) -> Result<Vec<u8>, OciError> {
        let location = format!("{} ({what})", self.shown());
        let declared = resp.content_length();
        let chunks = resp.bytes_stream().map_err({
            let location = location.clone();
            move |e| FetchError::Io {
                location: location.clone(),
                source: std::io::Error::other(e),
            }
        });
        let bounds = Bounds {
            max_bytes: limit,
            timeout: self.timeout,
        };
        collect_bounded(&location, declared, chunks, &bounds)
            .await
            .map_err(|e| match e {
                FetchError::TooLarge {
                    size: Size::Declared(size),
                    ..
                } => OciError::TooLarge {
                    reference: self.shown(),
                    what,
                    size,
                    limit,
                },
                e => OciError::Fetch(e),
            })
    }

    /// Pulls the wasm layer within `bounds`, checking the pinned manifest
    /// digest, the layer's digest and size before returning a byte of it.
    pub async fn pull(&mut self, bounds: &Bounds) -> Result<Pulled, OciError> {
        let max_bytes = bounds.max_bytes;
        tracing::info!("pulling {}", Shown(self.shown()));
        let url = self.url(&format!("manifests/{}", self.reference.manifest_ref()));
        let resp = self
            .send("pull", |c| {
                c.get(&url).header(
                    header::ACCEPT,
                    format!("{MANIFEST_TYPE}, application/vnd.oci.image.index.v1+json;q=0.5"),
                )
            })
            .await?;
        let resp = self.check(resp, "the manifest request").await?;
        let bytes = self.body(resp, "manifest", MAX_MANIFEST).await?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if let Some(expected) = &self.reference.digest
            && *expected != actual
        {
            return Err(OciError::Digest {
                reference: self.shown(),
                what: "manifest",
                expected: expected.clone(),
                actual,
            });
        }
        let not_wasm = |reason: String| OciError::NotWasm {
            reference: self.shown(),
            reason,
        };
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| not_wasm(format!("its manifest is not an OCI image manifest ({e})")))?;
        if manifest.config.media_type != CONFIG_TYPE {
            return Err(not_wasm(format!(
                "its config is {}, not {CONFIG_TYPE}",
                manifest.config.media_type
            )));
        }
        let layer = match manifest.layers.as_slice() {
            [l] if l.media_type == WASM_TYPE => l.clone(),
            layers => {
                return Err(not_wasm(format!(
                    "it needs exactly one {WASM_TYPE} layer, it has: {}",
                    layers
                        .iter()
                        .map(|l| l.media_type.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        if layer.size > max_bytes {
            return Err(OciError::TooLarge {
                reference: self.shown(),
                what: "wasm layer",
                size: layer.size,
                limit: max_bytes,
            });
        }
        let expected = layer
            .digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| not_wasm(format!("its layer digest {} is not sha256", layer.digest)))?
            .to_ascii_lowercase();
        let url = self.url(&format!("blobs/{}", layer.digest));
        let resp = self.send("pull", |c| c.get(&url)).await?;
        let resp = self.check(resp, "the wasm layer request").await?;
        let wasm = self
            .body(resp, "wasm layer", layer.size.min(max_bytes))
            .await?;
        let actual = hex::encode(Sha256::digest(&wasm));
        if actual != expected {
            return Err(OciError::Digest {
                reference: self.shown(),
                what: "wasm layer",
                expected,
                actual,
            });
        }
        Ok(Pulled {
            wasm,
            manifest_digest: hex::encode(Sha256::digest(&bytes)),
        })
    }

    /// Uploads one blob unless the registry has it already.
    async fn push_blob(&mut self, bytes: &[u8], media_type: &str) -> Result<Descriptor, OciError> {
        let digest = digest_of(bytes);
        let descriptor = Descriptor {
            media_type: media_type.into(),
            digest: digest.clone(),
            size: bytes.len() as u64,
            annotations: BTreeMap::new(),
        };
        let url = self.url(&format!("blobs/{digest}"));
        let head = self.send("pull,push", |c| c.head(&url)).await?;
        if head.status().is_success() {
            return Ok(descriptor);
        }
        let start = self.url("blobs/uploads/");
        let resp = self.send("pull,push", |c| c.post(&start)).await?;
        let resp = self.check(resp, "the upload request").await?;
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| OciError::Usage {
                reference: self.shown(),
                reason: "the registry started an upload without a Location".into(),
            })?
            .to_string();
        let mut put = reqwest::Url::parse(&location)
            .or_else(|_| reqwest::Url::parse(&self.reference.base_url())?.join(&location))
            .map_err(|e| OciError::Usage {
                reference: self.shown(),
                reason: format!("the upload Location {location} is not a URL: {e}"),
            })?;
        put.query_pairs_mut().append_pair("digest", &digest);
        let body = bytes::Bytes::copy_from_slice(bytes);
        let resp = self
            .send("pull,push", |c| {
                c.request(Method::PUT, put.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
            })
            .await?;
        self.check(resp, "the blob upload").await?;
        Ok(descriptor)
    }

    /// Pushes `wasm` with its config as the wasm OCI artifact under the
    /// reference's tag; returns the manifest's digest (hex).
    pub async fn push(
        &mut self,
        wasm: &[u8],
        config: &serde_json::Value,
        annotations: BTreeMap<String, String>,
    ) -> Result<String, OciError> {
        if self.reference.digest.is_some() {
            return Err(OciError::Usage {
                reference: self.shown(),
                reason: "push to a tag (oci://REGISTRY/REPO:TAG); the digest is printed afterwards"
                    .into(),
            });
        }
        let config_bytes = serde_json::to_vec(config).expect("JSON values serialize");
        let config = self.push_blob(&config_bytes, CONFIG_TYPE).await?;
        let layer = self.push_blob(wasm, WASM_TYPE).await?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MANIFEST_TYPE.into()),
            artifact_type: Some(CONFIG_TYPE.into()),
            config,
            layers: vec![layer],
            annotations,
        };
        let body = serde_json::to_vec(&manifest).expect("manifests serialize");
        let digest = hex::encode(Sha256::digest(&body));
        let url = self.url(&format!("manifests/{}", self.reference.manifest_ref()));
        let body = bytes::Bytes::from(body);
        let resp = self
            .send("pull,push", |c| {
                c.put(&url)
                    .header(header::CONTENT_TYPE, MANIFEST_TYPE)
                    .body(body.clone())
            })
            .await?;
        self.check(resp, "the manifest upload").await?;
        Ok(digest)
    }
}
