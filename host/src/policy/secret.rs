//! Secret parameters: where they come from, and a value that does not print.

use std::path::PathBuf;

/// Where a secret's value is read from. Naming the source is fine (it is
/// what the operator wrote); the value never is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the `host` process.
    Env(String),
    /// A file (its whole content, less one trailing newline).
    File(PathBuf),
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(var) => write!(f, "environment variable {var}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// Why a secret could not be read. Carries the source, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{0} is not set")]
    Unset(SecretSource),
    #[error("{0} is not valid UTF-8")]
    NotText(SecretSource),
    #[error("{0} is empty")]
    Empty(SecretSource),
    #[error("cannot read {from}: {error}")]
    Unreadable {
        from: SecretSource,
        error: std::io::Error,
    },
}

impl SecretSource {
    /// Reads the value now.
    pub fn read(&self) -> Result<Secret, SecretError> {
        let value = match self {
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) => v,
                Err(std::env::VarError::NotPresent) => {
                    return Err(SecretError::Unset(self.clone()));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(SecretError::NotText(self.clone()));
                }
            },
            SecretSource::File(path) => match std::fs::read(path) {
                Ok(bytes) => {
                    let mut text =
                        String::from_utf8(bytes).map_err(|_| SecretError::NotText(self.clone()))?;
                    if text.ends_with('\n') {
                        text.pop();
                        if text.ends_with('\r') {
                            text.pop();
                        }
                    }
                    text
                }
                Err(error) => {
                    return Err(SecretError::Unreadable {
                        from: self.clone(),
                        error,
                    });
                }
            },
        };
        if value.is_empty() {
            return Err(SecretError::Empty(self.clone()));
        }
        Ok(Secret(value))
    }
}

/// A secret's value. No `Display`; `Debug` hides it; [`Secret::expose`] is
/// the one way out, used where the value is handed to its plugin.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_secret_loses_one_trailing_newline_and_never_prints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("salt");
        std::fs::write(&path, "s3cr3t-value\n").unwrap();
        let secret = SecretSource::File(path.clone()).read().unwrap();
        assert_eq!(secret.expose(), "s3cr3t-value");
        assert!(!format!("{secret:?}").contains("s3cr3t"));

        std::fs::write(&path, "\n").unwrap();
        let err = SecretSource::File(path.clone()).read().unwrap_err();
        assert!(matches!(err, SecretError::Empty(_)), "{err}");
        let err = SecretSource::File(dir.path().join("missing"))
            .read()
            .unwrap_err();
        assert!(matches!(err, SecretError::Unreadable { .. }), "{err}");
        let err = SecretSource::Env("HOST_TEST_SURELY_UNSET_9d1c".into())
            .read()
            .unwrap_err();
        assert!(matches!(err, SecretError::Unset(_)), "{err}");
    }
}
