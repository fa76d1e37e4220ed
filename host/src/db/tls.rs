//! TLS the way libpq does it, on rustls: the `sslmode`, `sslrootcert`,
//! `sslcert` and `sslkey` options (or `PGSSLMODE`, `PGSSLROOTCERT`,
//! `PGSSLCERT`, `PGSSLKEY`), with libpq's defaults and files.
//!
//! | sslmode              | TLS                      | certificate chain checked | host name checked |
//! |----------------------|--------------------------|---------------------------|-------------------|
//! | disable              | never                    |                           |                   |
//! | allow, prefer (default) | if the server offers it | no                      | no                |
//! | require              | always                   | only with a root certificate (as libpq) | no  |
//! | verify-ca            | always                   | yes                       | no                |
//! | verify-full          | always                   | yes                       | yes               |
//!
//! The root certificate is `sslrootcert` (a PEM file, or `system` for the
//! system's CAs), else `~/.postgresql/root.crt` if it exists; the client
//! certificate is `sslcert`/`sslkey`, else `~/.postgresql/postgresql.crt`
//! and `.key` if they exist. `allow` is treated as `prefer` (TLS first).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<SslMode, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "invalid sslmode `{other}` (use disable, allow, prefer, require, verify-ca or verify-full)"
                ));
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What the driver is told: whether TLS is off, tried, or required.
    pub fn driver(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as D;
        match self {
            SslMode::Disable => D::Disable,
            SslMode::Allow | SslMode::Prefer => D::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => D::Require,
        }
    }
}

/// The TLS options of one connection string (unset ones take libpq's defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: Option<SslMode>,
    /// A PEM file of trusted CAs, or `system`.
    pub root_cert: Option<String>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// The connection-string keys [`TlsOptions::set`] takes.
pub const KEYS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey"];

impl TlsOptions {
    /// Sets one option from the connection string.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "sslmode" => self.mode = Some(SslMode::parse(value)?),
            "sslrootcert" => self.root_cert = Some(value.to_string()),
            "sslcert" => self.cert = Some(PathBuf::from(value)),
            "sslkey" => self.key = Some(PathBuf::from(value)),
            _ => return Err(format!("`{key}` is not a TLS option")),
        }
        Ok(())
    }

    /// Fills what the connection string left out from `PGSSLMODE`,
    /// `PGSSLROOTCERT`, `PGSSLCERT` and `PGSSLKEY`.
    pub fn fill_from_env(&mut self) -> Result<(), String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if self.mode.is_none()
            && let Some(m) = var("PGSSLMODE")
        {
            self.mode = Some(SslMode::parse(&m).map_err(|e| format!("PGSSLMODE: {e}"))?);
        }
        if self.root_cert.is_none() {
            self.root_cert = var("PGSSLROOTCERT");
        }
        if self.cert.is_none() {
            self.cert = var("PGSSLCERT").map(PathBuf::from);
        }
        if self.key.is_none() {
            self.key = var("PGSSLKEY").map(PathBuf::from);
        }
        Ok(())
    }

    /// The mode in force (libpq's default is `prefer`).
    pub fn mode(&self) -> SslMode {
        self.mode.unwrap_or(SslMode::Prefer)
    }

    /// The rustls connector for these options; `None` for `sslmode=disable`.
    pub fn connector(&self) -> Result<Option<MakeRustlsConnect>, String> {
        let mode = self.mode();
        if mode == SslMode::Disable {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = self.roots()?;
        let chain = match (mode, roots) {
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(format!(
                    "sslmode={} needs the CA that signed the server's certificate: set sslrootcert \
                     (or PGSSLROOTCERT) to its PEM file, or sslrootcert=system for the system's CAs \
                     (there is no {})",
                    mode.name(),
                    default_file("root.crt")
                        .map_or("~/.postgresql/root.crt".into(), |p| p.display().to_string())
                ));
            }
            (SslMode::VerifyFull, Some(roots)) => Some(webpki(roots, &provider)?),
            (SslMode::VerifyCa | SslMode::Require, Some(roots)) => {
                if self.root_cert.as_deref() == Some("system") {
                    return Err(format!(
                        "sslmode={} cannot be used with sslrootcert=system: any public CA could vouch \
                         for any name, so use sslmode=verify-full",
                        mode.name()
                    ));
                }
                Some(webpki(roots, &provider)?)
            }
            (_, _) => None,
        };
        let verifier = Arc::new(ServerCheck {
            chain,
            names: mode == SslMode::VerifyFull,
            algorithms: provider.signature_verification_algorithms,
        });
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match self.identity()? {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Some(MakeRustlsConnect::new(config)))
    }

    /// Trusted CAs: `sslrootcert`, else `~/.postgresql/root.crt` if it exists.
    /// Only the modes that check certificates read them.
    fn roots(&self) -> Result<Option<RootCertStore>, String> {
        if !matches!(
            self.mode(),
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        ) {
            return Ok(None);
        }
        let mut store = RootCertStore::empty();
        match self.root_cert.as_deref() {
            Some("system") => {
                let found = rustls_native_certs::load_native_certs();
                if found.certs.is_empty() {
                    return Err(format!(
                        "sslrootcert=system: no CA certificates found on this system ({:?})",
                        found.errors
                    ));
                }
                store.add_parsable_certificates(found.certs);
            }
            Some(path) => add_pem(&mut store, Path::new(path))?,
            None => match default_file("root.crt").filter(|p| p.exists()) {
                Some(path) => add_pem(&mut store, &path)?,
                None => return Ok(None),
            },
        }
        Ok(Some(store))
    }

    /// The client certificate chain and key: `sslcert`/`sslkey`, else libpq's
    /// default files if the certificate is there.
    fn identity(&self) -> Result<Option<IdentityParts>, String> {
        let cert = match &self.cert {
            Some(p) => p.clone(),
            None => match default_file("postgresql.crt").filter(|p| p.exists()) {
                Some(p) => p,
                None => return Ok(None),
            },
        };
        // libpq's default key is ~/.postgresql/postgresql.key whatever sslcert says.
        let key = match &self.key {
            Some(p) => p.clone(),
            None => default_file("postgresql.key").unwrap_or_else(|| cert.with_extension("key")),
        };
        let chain = CertificateDer::pem_file_iter(&cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("sslcert {}: {e}", cert.display()))?;
        if chain.is_empty() {
            return Err(format!("sslcert {}: no certificate in it", cert.display()));
        }
        let key = PrivateKeyDer::from_pem_file(&key)
            .map_err(|e| format!("sslkey {}: {e}", key.display()))?;
        Ok(Some((chain, key)))
    }
}

type IdentityParts = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// `~/.postgresql/NAME`, where libpq looks by default.
fn default_file(name: &str) -> Option<PathBuf> {
    dirs::home_dir().map(|h| h.join(".postgresql").join(name))
}

fn add_pem(store: &mut RootCertStore, path: &Path) -> Result<(), String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "sslrootcert {}: no usable CA certificate in it",
            path.display()
        ));
    }
    Ok(())
}

fn webpki(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("sslrootcert: {e}"))
}

/// What is checked of the server's certificate: with `chain`, that it leads
/// to a trusted CA, and with `names` too, that it was issued for the host
/// (verify-full); without `chain` nothing (prefer, require without a root
/// certificate: encryption without knowing who is at the other end, as
/// libpq). The handshake signature is always checked: the server must hold
/// the certificate's key.
#[derive(Debug)]
struct ServerCheck {
    chain: Option<Arc<WebPkiServerVerifier>>,
    names: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the chain before the name, so a name error means the
        // chain was good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.names => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_map_to_the_driver() {
        use tokio_postgres::config::SslMode as D;
        for (s, d) in [
            ("disable", D::Disable),
            ("allow", D::Prefer),
            ("prefer", D::Prefer),
            ("require", D::Require),
            ("verify-ca", D::Require),
            ("verify-full", D::Require),
        ] {
            let m = SslMode::parse(s).unwrap();
            assert_eq!(m.name(), s);
            assert_eq!(m.driver(), d);
        }
        let e = SslMode::parse("verify_full").unwrap_err();
        assert!(
            e.contains("verify_full") && e.contains("verify-full"),
            "{e}"
        );
    }

    #[test]
    fn verify_modes_need_a_root_certificate() {
        let o = TlsOptions {
            mode: Some(SslMode::VerifyFull),
            root_cert: Some("/nonexistent/ca.crt".into()),
            ..TlsOptions::default()
        };
        let e = o.connector().err().unwrap();
        assert!(e.contains("/nonexistent/ca.crt"), "{e}");
        let o = TlsOptions {
            mode: Some(SslMode::Require),
            root_cert: Some("system".into()),
            ..TlsOptions::default()
        };
        let e = o.connector().err().unwrap();
        assert!(e.contains("verify-full"), "{e}");
        assert!(
            TlsOptions {
                mode: Some(SslMode::Disable),
                ..TlsOptions::default()
            }
            .connector()
            .unwrap()
            .is_none()
        );
    }
}
