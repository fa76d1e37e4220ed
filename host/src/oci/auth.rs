//! Registry credentials, found where docker and oras keep them, and the
//! registry's authentication challenge (`WWW-Authenticate`).
//!
//! Credentials, first found wins: `HOST_OCI_USERNAME` / `HOST_OCI_PASSWORD`;
//! then the Docker config (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`): a `credHelpers` entry for the registry or the
//! `credsStore` (run as `docker-credential-NAME get`), then an `auths` entry
//! (`auth`: base64 `user:password`, or `username`/`password`; `identitytoken`).
//! No credentials means anonymous access.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

/// What to authenticate with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and password (or token used as a password).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (Docker's `identitytoken`).
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, even in debug logs.
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(***)"),
        }
    }
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },
    #[error("credential helper docker-credential-{helper} for {registry}: {reason}")]
    Helper {
        helper: String,
        registry: String,
        reason: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The credentials for `registry` (`host[:port]`), or `None` for anonymous access.
pub fn credentials(registry: &str) -> Result<Option<Credentials>, CredentialsError> {
    if let (Ok(username), Ok(password)) = (
        std::env::var("HOST_OCI_USERNAME"),
        std::env::var("HOST_OCI_PASSWORD"),
    ) {
        return Ok(Some(Credentials::Basic { username, password }));
    }
    let Some(path) = docker_config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CredentialsError::Config {
                path,
                reason: e.to_string(),
            });
        }
    };
    let config: DockerConfig =
        serde_json::from_str(&text).map_err(|e| CredentialsError::Config {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    let helper = config
        .cred_helpers
        .get(registry)
        .or(config.creds_store.as_ref());
    if let Some(helper) = helper
        && let Some(c) = from_helper(helper, registry)?
    {
        return Ok(Some(c));
    }
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| auth_key_host(key) == registry)
        .map(|(_, e)| e);
    let Some(entry) = entry else { return Ok(None) };
    from_entry(entry).map_err(|reason| CredentialsError::Config { path, reason })
}

fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => dirs::home_dir().map(|h| h.join(".docker/config.json")),
    }
}

/// `https://index.docker.io/v1/` or `registry:5000` as `host[:port]`.
fn auth_key_host(key: &str) -> &str {
    let k = key.split_once("://").map_or(key, |(_, rest)| rest);
    k.split('/').next().unwrap_or(k)
}

fn from_entry(e: &AuthEntry) -> Result<Option<Credentials>, String> {
    if let Some(token) = e.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::IdentityToken(token.clone())));
    }
    if let Some(auth) = e.auth.as_ref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "an `auth` entry is not base64".to_string())?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| "an `auth` entry is not UTF-8".to_string())?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or("an `auth` entry is not base64 of user:password")?;
        return Ok(Some(Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }));
    }
    match (&e.username, &e.password) {
        (Some(u), Some(p)) => Ok(Some(Credentials::Basic {
            username: u.clone(),
            password: p.clone(),
        })),
        _ => Ok(None),
    }
}

/// Asks `docker-credential-HELPER get` (the docker credential helper protocol).
fn from_helper(helper: &str, registry: &str) -> Result<Option<Credentials>, CredentialsError> {
    let err = |reason: String| CredentialsError::Helper {
        helper: helper.into(),
        registry: registry.into(),
        reason,
    };
    let mut child = match Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        // A configured helper that is not installed: go on as docker does.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        // "credentials not found in native keychain": anonymous, as docker does.
        return Ok(None);
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Helped {
        username: String,
        secret: String,
    }
    let h: Helped = serde_json::from_slice(&out.stdout).map_err(|e| err(e.to_string()))?;
    Ok(Some(if h.username == "<token>" {
        Credentials::IdentityToken(h.secret)
    } else {
        Credentials::Basic {
            username: h.username,
            password: h.secret,
        }
    }))
}

/// A registry's answer to an unauthenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send user and password with every request.
    Basic,
    /// Get a token from `realm` (for `service` and `scope`) and send it.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses a `WWW-Authenticate` header value.
    pub fn parse(header: &str) -> Option<Challenge> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut realm = None;
        let mut service = None;
        let mut scope = None;
        for (k, v) in auth_params(params) {
            match k.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(v),
                "service" => service = Some(v),
                "scope" => scope = Some(v),
                _ => {}
            }
        }
        Some(Challenge::Bearer {
            realm: realm?,
            service,
            scope,
        })
    }
}

/// `k="v", k2=v2` pairs (values may be quoted and hold commas).
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            (
                quoted[..end].to_string(),
                &quoted[(end + 1).min(quoted.len())..],
            )
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((key, value));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn docker_config_entries() {
        let e = AuthEntry {
            auth: Some(base64::engine::general_purpose::STANDARD.encode("me:p:w")),
            ..AuthEntry::default()
        };
        assert_eq!(
            from_entry(&e).unwrap(),
            Some(Credentials::Basic {
                username: "me".into(),
                password: "p:w".into()
            })
        );
        let bad = AuthEntry {
            auth: Some("***".into()),
            ..AuthEntry::default()
        };
        assert!(from_entry(&bad).is_err());
        assert_eq!(
            auth_key_host("https://index.docker.io/v1/"),
            "index.docker.io"
        );
        assert_eq!(auth_key_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert!(
            !format!(
                "{:?}",
                Credentials::Basic {
                    username: "u".into(),
                    password: "secret".into()
                }
            )
            .contains("secret")
        );
    }
}
