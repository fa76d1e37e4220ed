//! `oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]`: where a plugin lives in
//! an OCI registry, as docker and oras write references (with a scheme, so that
//! it cannot be mistaken for a path).

/// A parsed plugin reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`.
    pub registry: String,
    /// `path/to/repo` (lower case, as the distribution spec requires).
    pub repository: String,
    /// The tag, if given (`latest` when neither a tag nor a digest is).
    pub tag: Option<String>,
    /// The pinned manifest digest, lower-case hex of SHA-256, if given.
    pub digest: Option<String>,
}

/// The URL scheme of plugin references.
pub const SCHEME: &str = "oci://";

impl Reference {
    /// Parses `oci://REGISTRY/REPO[:TAG][@sha256:HEX]`.
    pub fn parse(text: &str) -> Result<Reference, String> {
        let bad = |why: &str| {
            format!(
                "'{text}' is not an OCI reference ({why}); use oci://REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST]"
            )
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("no oci:// prefix"))?;
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("the digest must be sha256:HEX"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad("the digest must be 64 hex digits"));
                }
                (r, Some(hex.to_ascii_lowercase()))
            }
            None => (rest, None),
        };
        let (registry, path) = rest.split_once('/').ok_or_else(|| bad("no repository"))?;
        if registry.is_empty() || registry.contains(['?', '#', ' ']) {
            return Err(bad("no registry"));
        }
        // A tag follows the last ':' of the last path segment (a port is in the registry part).
        let (repository, tag) = match path.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
            _ => (path, None),
        };
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|seg| {
                !seg.is_empty()
                    && seg.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            });
        if !repo_ok {
            return Err(bad(
                "a repository is lower-case letters, digits, '.', '_', '-' in '/'-separated parts",
            ));
        }
        if let Some(tag) = tag {
            let tag_ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !tag_ok {
                return Err(bad("a tag is up to 128 letters, digits, '.', '_', '-'"));
            }
        }
        Ok(Reference {
            registry: registry.to_ascii_lowercase(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// What to ask the registry for: the pinned digest, else the tag (default `latest`).
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => format!("sha256:{d}"),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// Whether the registry is on this machine (plain HTTP is allowed only there).
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => self.registry.split(':').next().unwrap_or(""),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// `https://REGISTRY` (or `http://` on loopback).
    pub fn base_url(&self) -> String {
        let scheme = if self.is_loopback() { "http" } else { "https" };
        format!("{scheme}://{}", self.registry)
    }

    /// The same reference pinned to `digest` (hex), for printing after a push.
    pub fn pinned(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@sha256:{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_registry_repository_tag_and_digest() {
        let d = "ab".repeat(32);
        let r = Reference::parse(&format!(
            "oci://127.0.0.1:5000/team/set_collection:1.2@sha256:{d}"
        ))
        .unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "team/set_collection");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.manifest_ref(), format!("sha256:{d}"));
        assert!(r.is_loopback());
        assert_eq!(r.base_url(), "http://127.0.0.1:5000");
        assert_eq!(
            r.to_string(),
            format!("oci://127.0.0.1:5000/team/set_collection:1.2@sha256:{d}")
        );

        let r = Reference::parse("oci://ghcr.io/acme/anonymize").unwrap();
        assert_eq!((r.tag, r.digest), (None, None));
        assert_eq!(
            Reference::parse("oci://ghcr.io/a/b")
                .unwrap()
                .manifest_ref(),
            "latest"
        );
        assert!(!Reference::parse("oci://ghcr.io/a/b").unwrap().is_loopback());
        assert!(
            Reference::parse("oci://[::1]:5000/a:b")
                .unwrap()
                .is_loopback()
        );
        assert!(Reference::parse("oci://localhost/a").unwrap().is_loopback());
        // A loopback look-alike is not loopback.
        assert!(
            !Reference::parse("oci://127.0.0.1.example.org/a")
                .unwrap()
                .is_loopback()
        );
    }

    #[test]
    fn refuses_malformed_references() {
        for bad in [
            "ghcr.io/a/b",
            "oci://ghcr.io",
            "oci://ghcr.io/",
            "oci://ghcr.io/A/b",
            "oci://ghcr.io/a//b",
            "oci://ghcr.io/a:b:c d",
            "oci://ghcr.io/a@sha256:xyz",
            "oci://ghcr.io/a@md5:00",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }
}
