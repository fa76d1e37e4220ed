//! Connecting the way PostgreSQL tools do: `--dsn` (a `postgresql://` URL or
//! a `key=value` string), else the standard `PGHOST`, `PGPORT`, `PGUSER`,
//! `PGPASSWORD`, `PGDATABASE` variables; `PGAPPNAME`, `PGCONNECT_TIMEOUT`,
//! the password file (`PGPASSFILE`, `~/.pgpass`) and TLS as libpq does it
//! (`sslmode` and friends, see [`super::tls`]). Passwords never appear in
//! messages: every place a connection string is shown goes through [`redact`].

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::Args;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls::{self, TlsOptions};
use super::{conninfo, pgpass};

/// Connection flags for commands that talk to one database.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnArgs {
    /// postgresql://user:pass@host:port/db?sslmode=... or "host=... dbname=..." [default: from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, ...]
    #[arg(long, value_name = "DSN")]
    pub dsn: Option<String>,
}

impl ConnArgs {
    /// The connection settings these flags and the environment describe. A
    /// `--dsn` that does not parse is a usage error (exit 2).
    pub fn dsn(&self) -> anyhow::Result<Dsn> {
        match &self.dsn {
            Some(text) => {
                Dsn::parse(text).map_err(|e| crate::cli::UsageError(format!("--dsn: {e}")).into())
            }
            None => Ok(Dsn::from_env()?),
        }
    }
}

/// Why a connection could not be made. Never contains a password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid connection string {shown}: {reason}")]
    Invalid { shown: String, reason: String },
    #[error("cannot connect to {shown}: {reason}")]
    Connect {
        shown: String,
        reason: String,
        /// Worth trying again (the server is not up yet), unlike a refused
        /// login or a certificate that does not check out.
        transient: bool,
    },
}

impl ConnectError {
    /// Whether waiting and trying again may help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ConnectError::Connect {
                transient: true,
                ..
            }
        )
    }
}

/// Parsed connection settings, with a password-free description for messages.
#[derive(Clone)]
pub struct Dsn {
    config: Config,
    tls: TlsOptions,
    /// Built on first use and shared by every connection of this DSN.
    connector: Arc<OnceLock<Result<Option<MakeRustlsConnect>, String>>>,
    shown: String,
}

impl std::fmt::Debug for Dsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for Dsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Dsn {
    /// Parses a URL or key=value connection string; variables fill what it leaves out.
    pub fn parse(text: &str) -> Result<Dsn, ConnectError> {
        let invalid = |reason: String| ConnectError::Invalid {
            shown: redact(text),
            reason: scrub(&reason, text),
        };
        // tokio-postgres knows neither verify-ca/verify-full nor the
        // certificate options: those are ours.
        let (rest, taken) = conninfo::take(text, tls::KEYS).map_err(invalid)?;
        let mut tls = TlsOptions::default();
        for (k, v) in &taken {
            tls.set(k, v).map_err(invalid)?;
        }
        let mut config: Config = rest
            .parse()
            .map_err(|e: tokio_postgres::Error| invalid(e.to_string()))?;
        fill_from_env(&mut config, &mut tls).map_err(invalid)?;
        Ok(Dsn::from_config(config, tls))
    }

    /// Settings from `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`
    /// and the others (libpq's defaults: local socket or localhost, port
    /// 5432, the OS user).
    pub fn from_env() -> Result<Dsn, ConnectError> {
        let mut config = Config::new();
        let mut tls = TlsOptions::default();
        fill_from_env(&mut config, &mut tls).map_err(|reason| ConnectError::Invalid {
            shown: "(from the environment)".into(),
            reason,
        })?;
        Ok(Dsn::from_config(config, tls))
    }

    fn from_config(mut config: Config, tls: TlsOptions) -> Dsn {
        if config.get_application_name().is_none() {
            config.application_name("host");
        }
        // libpq ignores sslmode on Unix-domain sockets (the server offers no TLS there).
        let all_sockets = config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, Host::Unix(_)));
        config.ssl_mode(if all_sockets {
            tokio_postgres::config::SslMode::Disable
        } else {
            tls.mode().driver()
        });
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(s) => s.clone(),
                Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let shown = format!(
            "postgresql://{}@{}:{}/{}",
            config.get_user().unwrap_or(""),
            hosts.join(","),
            port,
            config.get_dbname().unwrap_or("")
        );
        Dsn {
            config,
            tls,
            connector: Arc::new(OnceLock::new()),
            shown,
        }
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or("")
    }

    /// The underlying tokio-postgres settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The same server, another database (tests and `migrate` use this).
    pub fn with_dbname(&self, db: &str) -> Dsn {
        let mut c = self.config.clone();
        c.dbname(db);
        Dsn::from_config(c, self.tls.clone())
    }

    /// The TLS connector these settings call for (`None` with `sslmode=disable`),
    /// built once per DSN; also used by the replication-protocol client.
    pub(crate) fn tls_connector(&self) -> Result<Option<MakeRustlsConnect>, ConnectError> {
        self.connector
            .get_or_init(|| self.tls.connector())
            .clone()
            .map_err(|reason| ConnectError::Connect {
                shown: self.shown.clone(),
                reason,
                transient: false,
            })
    }

    /// Opens a connection; its driver task runs on the current tokio runtime.
    pub async fn connect(&self) -> Result<Client, ConnectError> {
        let connector = self.tls_connector()?;
        let fail = |e: tokio_postgres::Error| ConnectError::Connect {
            shown: self.shown.clone(),
            reason: describe(&e) + &self.tls_hint(&e),
            transient: transient(&e),
        };
        let client = match connector {
            Some(tls) if self.config.get_ssl_mode() != tokio_postgres::config::SslMode::Disable => {
                let (client, connection) = self.config.connect(tls).await.map_err(fail)?;
                tokio::spawn(drive(connection));
                client
            }
            _ => {
                let (client, connection) = self.config.connect(NoTls).await.map_err(fail)?;
                tokio::spawn(drive(connection));
                client
            }
        };
        Ok(client)
    }

    /// What to check when the server's certificate was refused.
    fn tls_hint(&self, e: &tokio_postgres::Error) -> String {
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            // rustls's error arrives wrapped in an io::Error, whose source()
            // skips it: look inside.
            let inner = match s.downcast_ref::<std::io::Error>() {
                Some(io) => io
                    .get_ref()
                    .map(|e| e as &(dyn std::error::Error + 'static)),
                None => Some(s),
            };
            if let Some(rustls::Error::InvalidCertificate(c)) =
                inner.and_then(|e| e.downcast_ref::<rustls::Error>())
            {
                return match c {
                    rustls::CertificateError::UnknownIssuer => format!(
                        " (sslmode={}: no CA in {} signed the server's certificate)",
                        self.tls.mode().name(),
                        self.tls
                            .root_cert
                            .as_deref()
                            .map_or("~/.postgresql/root.crt".into(), |r| format!(
                                "sslrootcert={r}"
                            ))
                    ),
                    rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. } => format!(
                        " (sslmode={} checks the host name; connect with a name the certificate \
                         lists, or use sslmode=verify-ca)",
                        self.tls.mode().name()
                    ),
                    _ => String::new(),
                };
            }
            source = s.source();
        }
        String::new()
    }

    /// Waits until the server accepts connections, or the timeout passes.
    /// Errors that waiting cannot cure (a refused login, a certificate that
    /// does not check out) end the wait at once.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Client, ConnectError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.connect().await {
                Ok(c) => return Ok(c),
                Err(e) if !e.is_transient() || tokio::time::Instant::now() >= deadline => {
                    return Err(e);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

/// Runs a connection's protocol until the client is dropped.
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "connection closed");
    }
}

/// A server that is not (yet) listening or is still starting up; not a
/// refused login, a TLS failure or a bad option.
fn transient(e: &tokio_postgres::Error) -> bool {
    use std::io::ErrorKind;
    if let Some(db) = e.as_db_error() {
        return db.code() == &tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::NotFound
                    | ErrorKind::TimedOut
                    | ErrorKind::UnexpectedEof
            );
        }
        source = s.source();
    }
    false
}

fn fill_from_env(config: &mut Config, tls: &mut TlsOptions) -> Result<(), String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if config.get_hosts().is_empty() {
        match var("PGHOST") {
            Some(h) => {
                for h in h.split(',') {
                    config.host(h);
                }
            }
            None => {
                // libpq's default: the local socket if there is one, else localhost.
                if std::path::Path::new("/var/run/postgresql").exists() {
                    config.host_path("/var/run/postgresql");
                } else {
                    config.host("localhost");
                }
            }
        }
    }
    if config.get_ports().is_empty()
        && let Some(p) = var("PGPORT").and_then(|p| p.parse().ok())
    {
        config.port(p);
    }
    if config.get_user().is_none() {
        let user = var("PGUSER")
            .or_else(|| var("USER"))
            .unwrap_or_else(|| "postgres".into());
        config.user(&user);
    }
    if config.get_password().is_none()
        && let Some(p) = var("PGPASSWORD")
    {
        config.password(p);
    }
    if config.get_dbname().is_none() {
        let db = var("PGDATABASE").or_else(|| config.get_user().map(str::to_string));
        if let Some(db) = db {
            config.dbname(&db);
        }
    }
    if config.get_application_name().is_none()
        && let Some(name) = var("PGAPPNAME")
    {
        config.application_name(&name);
    }
    if config.get_connect_timeout().is_none()
        && let Some(secs) = var("PGCONNECT_TIMEOUT")
    {
        let secs: u64 = secs
            .parse()
            .map_err(|_| format!("PGCONNECT_TIMEOUT `{secs}` is not a number of seconds"))?;
        // libpq: 0 means wait forever; less than 2 s counts as 2 s.
        if secs > 0 {
            config.connect_timeout(Duration::from_secs(secs.max(2)));
        }
    }
    tls.fill_from_env()?;
    if config.get_password().is_none()
        && let Some(password) = pgpass::lookup(&pgpass::Target {
            host: &match config.get_hosts().first() {
                Some(Host::Tcp(h)) => h.clone(),
                // libpq looks up the default socket directory as `localhost`.
                Some(Host::Unix(p)) if p == std::path::Path::new("/var/run/postgresql") => {
                    "localhost".into()
                }
                Some(Host::Unix(p)) => p.display().to_string(),
                None => "localhost".into(),
            },
            port: config.get_ports().first().copied().unwrap_or(5432),
            dbname: config.get_dbname().unwrap_or(""),
            user: config.get_user().unwrap_or(""),
        })
    {
        config.password(password);
    }
    Ok(())
}

/// The error's message with its SQLSTATE-free cause; tokio-postgres errors
/// never contain the password, but we scrub anyway where the input is echoed.
fn describe(e: &tokio_postgres::Error) -> String {
    use std::error::Error;
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => match e.source() {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        },
    }
}

fn scrub(message: &str, original: &str) -> String {
    match password_of(original) {
        Some(pw) if !pw.is_empty() => message.replace(&pw, "***"),
        _ => message.to_string(),
    }
}

fn password_of(text: &str) -> Option<String> {
    if let Ok(url) = url::Url::parse(text)
        && matches!(url.scheme(), "postgres" | "postgresql")
    {
        return url.password().map(str::to_string);
    }
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix("password="))
        .map(|v| v.trim_matches('\'').to_string())
}

/// Keys of a connection string whose values may be shown. Anything else
/// (a password, and any key we do not know, like a misspelt `pasword=`) is
/// shown as `***`.
const SHOWN_KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "application_name",
    "fallback_application_name",
    "connect_timeout",
    "client_encoding",
    "options",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslmode",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "sslnegotiation",
    "target_session_attrs",
    "load_balance_hosts",
    "channel_binding",
    "gssencmode",
    "replication",
    "passfile",
];

/// A connection string with any password, and the value of any key not
/// known to be harmless, replaced by `***`, in URL or key=value form, for
/// logs, errors and `--dry-run` output.
pub fn redact(text: &str) -> String {
    if let Ok(mut url) = url::Url::parse(text)
        && matches!(url.scheme(), "postgres" | "postgresql")
    {
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if SHOWN_KEYS.contains(&k.as_ref()) {
                    v.into_owned()
                } else {
                    "***".to_string()
                };
                (k.into_owned(), v)
            })
            .collect();
        if !pairs.is_empty() {
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        return url.to_string();
    }
    // A URL too broken to parse may still carry a password: user:PASSWORD@;
    // and its query string cannot be read safely: not shown.
    if let Some(scheme_end) = text.find("://")
        && text[..scheme_end].starts_with("postgres")
    {
        let rest = &text[scheme_end + 3..];
        let rest = rest.split_once('?').map_or(rest, |(base, _)| base);
        let auth_end = rest.find('/').unwrap_or(rest.len());
        let base = match rest[..auth_end].rfind('@') {
            Some(at) => match rest[..at].find(':') {
                Some(colon) => format!("{}***{}", &rest[..colon + 1], &rest[at..]),
                None => rest.to_string(),
            },
            None => rest.to_string(),
        };
        let query = if text.contains('?') { "?***" } else { "" };
        return format!("{}{base}{query}", &text[..scheme_end + 3]);
    }
    match conninfo::pairs(text) {
        Ok(pairs) => pairs
            .iter()
            .map(|(k, v)| {
                if SHOWN_KEYS.contains(&k.as_str()) {
                    format!("{k}={}", quote_value(v))
                } else {
                    format!("{k}=***")
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        // Where one value ends is unclear: show none of it.
        Err(_) => "(not shown: it does not parse as key=value pairs)".to_string(),
    }
}

/// A value as libpq's key=value form writes it.
fn quote_value(v: &str) -> String {
    if !v.is_empty() && !v.contains([' ', '\'', '\\']) {
        return v.to_string();
    }
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (input, secret) in [
            ("postgresql://u:s3cr%21t@h:5/db", "s3cr"),
            ("postgres://u:hunter2@h/db?sslmode=disable", "hunter2"),
            ("postgresql://u@h/db?password=qwerty", "qwerty"),
            ("host=h user=u password=hunter2 dbname=d", "hunter2"),
            ("host=h password = 'it\\'s a secret' dbname=d", "secret"),
        ] {
            let r = redact(input);
            assert!(!r.contains(secret), "{input} -> {r}");
            assert!(r.contains("***"), "{input} -> {r}");
        }
        assert_eq!(redact("host=h dbname=d"), "host=h dbname=d");
    }

    #[test]
    fn misspelt_and_unknown_keys_never_show_their_values() {
        assert_eq!(
            redact("host=h pasword=hunter2 user='a b' dbname=d"),
            "host=h pasword=*** user='a b' dbname=d"
        );
        assert_eq!(
            redact("postgresql://u@h/db?pasword=hunter2&sslmode=require"),
            "postgresql://u@h/db?pasword=***&sslmode=require"
        );
        assert!(!redact("host=h pasword='hunter2").contains("hunter2"));
        assert!(!redact("postgresql://u:hunter2@h:x/db?pasword=hunter2").contains("hunter2"));
        let e = Dsn::parse("host=127.0.0.1 pasword=hunter2 dbname=d").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("pasword"), "{e}");
    }

    #[test]
    fn shown_form_has_no_password() {
        let d = Dsn::parse("postgresql://alice:topsecret@127.0.0.1:5999/app").unwrap();
        let shown = d.to_string();
        assert_eq!(shown, "postgresql://alice@127.0.0.1:5999/app");
        assert!(!format!("{d:?}").contains("topsecret"));
        let err = Dsn::parse("postgresql://alice:topsecret@127.0.0.1:notaport/app").unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }
}
