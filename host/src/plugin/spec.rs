//! What the user asked for: a plugin location, an optional pinned digest and
//! its parameters (`--plugin FILE.wasm#sha256=HEX --plugin-arg K=V`).

use sha2::{Digest, Sha256};

use super::PluginError;

/// One plugin as given on the command line or in a job file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// Path or URL, without any `#sha256=` suffix.
    pub location: String,
    /// Lower-case hex SHA-256 the bytes must have, if pinned.
    pub sha256: Option<String>,
    /// Parameters in the order given.
    pub params: Vec<(String, String)>,
}

impl PluginSpec {
    /// Parses `LOCATION` or `LOCATION#sha256=HEX`.
    pub fn parse(text: &str) -> Result<PluginSpec, String> {
        let (location, sha256) = match text.rsplit_once("#sha256=") {
            Some((loc, hex)) => (loc, Some(normalize_digest(hex)?)),
            None => (text, None),
        };
        if location.is_empty() {
            return Err("empty plugin location".into());
        }
        Ok(PluginSpec {
            location: location.to_string(),
            sha256,
            params: Vec::new(),
        })
    }

    /// Pins the digest (from `--plugin-sha256`); refuses two different pins.
    pub fn pin(&mut self, hex: &str) -> Result<(), String> {
        let hex = normalize_digest(hex)?;
        match &self.sha256 {
            Some(existing) if *existing != hex => Err(format!(
                "plugin {} is pinned twice with different digests",
                self.shown()
            )),
            _ => {
                self.sha256 = Some(hex);
                Ok(())
            }
        }
    }

    /// The location for messages: a URL loses its password and query string
    /// (a presigned URL's signature is a credential).
    pub fn shown(&self) -> String {
        crate::fetch::Location::parse(&self.location)
            .map(|l| l.display())
            .unwrap_or_else(|_| self.location.clone())
    }

    /// The file name without `.wasm`: how we name the plugin before it reports its own name.
    pub fn short_name(&self) -> &str {
        let base = self
            .location
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(&self.location);
        base.strip_suffix(".wasm").unwrap_or(base)
    }

    /// Checks `bytes` against the pin and returns their SHA-256 in hex.
    pub fn verify(&self, bytes: &[u8]) -> Result<String, PluginError> {
        let actual = hex::encode(Sha256::digest(bytes));
        if let Some(expected) = &self.sha256
            && *expected != actual
        {
            return Err(PluginError::DigestMismatch {
                location: self.shown(),
                expected: expected.clone(),
                actual,
            });
        }
        Ok(actual)
    }
}

/// Parses `KEY=VALUE` (the value may contain `=`).
pub fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("plugin argument '{text}' must look like KEY=VALUE")),
    }
}

fn normalize_digest(hex: &str) -> Result<String, String> {
    let hex = hex.trim().to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(format!("'{hex}' is not a SHA-256 digest (64 hex digits)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_pins_and_names() {
        let s = PluginSpec::parse(&format!(
            "dir/set_collection.wasm#sha256={}",
            D.to_uppercase()
        ))
        .unwrap();
        assert_eq!(s.location, "dir/set_collection.wasm");
        assert_eq!(s.sha256.as_deref(), Some(D));
        assert_eq!(s.short_name(), "set_collection");
        assert!(PluginSpec::parse("x.wasm#sha256=abc").is_err());
        let mut s = PluginSpec::parse("https://h/p/x.wasm").unwrap();
        assert_eq!(s.short_name(), "x");
        s.pin(D).unwrap();
        assert!(s.pin(&"0".repeat(64)).is_err());
    }

    #[test]
    fn verify_refuses_a_wrong_digest() {
        let s = PluginSpec::parse(&format!("x.wasm#sha256={D}")).unwrap();
        assert_eq!(s.verify(b"").unwrap(), D);
        assert!(matches!(
            s.verify(b"x"),
            Err(PluginError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        let s = PluginSpec::parse("https://u:secret@h/p.wasm?X-Amz-Signature=abc").unwrap();
        assert_eq!(s.shown(), "https://u:***@h/p.wasm?***");
        assert_eq!(
            PluginSpec::parse("dir/p.wasm").unwrap().shown(),
            "dir/p.wasm"
        );
    }

    #[test]
    fn params_split_on_first_equals() {
        assert_eq!(parse_param("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(parse_param("novalue").is_err());
        assert!(parse_param("=x").is_err());
    }
}
