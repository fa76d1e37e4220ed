//! Connecting the way PostgreSQL tools do: `--dsn` (a `postgresql://` URL or
//! a `key=value` string), else the standard `PGHOST`, `PGPORT`, `PGUSER`,
//! `PGPASSWORD`, `PGDATABASE` variables. Passwords never appear in messages:
//! every place a connection string is shown goes through [`redact`].

use std::time::Duration;

use clap::Args;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

/// Connection flags for commands that talk to one database.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnArgs {
    /// postgresql://user:pass@host:port/db or "host=... dbname=..." [default: from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE]
    #[arg(long, value_name = "DSN")]
    pub dsn: Option<String>,
}

impl ConnArgs {
    /// The connection settings these flags and the environment describe.
    pub fn dsn(&self) -> Result<Dsn, ConnectError> {
        match &self.dsn {
            Some(text) => Dsn::parse(text),
            None => Ok(Dsn::from_env()),
        }
    }
}

/// Why a connection could not be made. Never contains a password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid connection string {shown}: {reason}")]
    Invalid { shown: String, reason: String },
    #[error("cannot connect to {shown}: {reason}")]
    Connect { shown: String, reason: String },
}

/// Parsed connection settings, with a password-free description for messages.
#[derive(Clone)]
pub struct Dsn {
    config: Config,
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
        let mut config: Config =
            text.parse()
                .map_err(|e: tokio_postgres::Error| ConnectError::Invalid {
                    shown: redact(text),
                    reason: scrub(&e.to_string(), text),
                })?;
        fill_from_env(&mut config);
        Ok(Dsn::from_config(config))
    }

    /// Settings from `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`
    /// (libpq's defaults: local socket or localhost, port 5432, the OS user).
    pub fn from_env() -> Dsn {
        let mut config = Config::new();
        fill_from_env(&mut config);
        Dsn::from_config(config)
    }

    fn from_config(mut config: Config) -> Dsn {
        if config.get_application_name().is_none() {
            config.application_name("host");
        }
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
        Dsn { config, shown }
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
        Dsn::from_config(c)
    }

    /// Opens a connection; its driver task runs on the current tokio runtime.
    pub async fn connect(&self) -> Result<Client, ConnectError> {
        let (client, connection) =
            self.config
                .connect(NoTls)
                .await
                .map_err(|e| ConnectError::Connect {
                    shown: self.shown.clone(),
                    reason: describe(&e),
                })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed");
            }
        });
        Ok(client)
    }

    /// Waits until the server accepts connections, or the timeout passes.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<Client, ConnectError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.connect().await {
                Ok(c) => return Ok(c),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

fn fill_from_env(config: &mut Config) {
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

/// A connection string with any password replaced by `***`, in URL or
/// key=value form, for logs, errors and `--dry-run` output.
pub fn redact(text: &str) -> String {
    if let Ok(mut url) = url::Url::parse(text)
        && matches!(url.scheme(), "postgres" | "postgresql")
    {
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        // ?password=... in the query string
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "***".to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        if !pairs.is_empty() {
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        return url.to_string();
    }
    // A URL too broken to parse may still carry a password: user:PASSWORD@
    if let Some(scheme_end) = text.find("://")
        && text[..scheme_end].starts_with("postgres")
    {
        let rest = &text[scheme_end + 3..];
        let auth_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            return format!(
                "{}{}***{}",
                &text[..scheme_end + 3],
                &rest[..colon + 1],
                &rest[at..]
            );
        }
        return text.to_string();
    }
    // key=value form: replace the value of password=, quoted or not.
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("password") {
        let (before, after) = rest.split_at(pos);
        out.push_str(before);
        let after_key = &after["password".len()..];
        let trimmed = after_key.trim_start();
        if let Some(value) = trimmed.strip_prefix('=') {
            out.push_str("password=***");
            let value = value.trim_start();
            let skip = if let Some(q) = value.strip_prefix('\'') {
                // quoted: up to the closing unescaped quote
                let mut end = q.len();
                let mut esc = false;
                for (i, c) in q.char_indices() {
                    if esc {
                        esc = false;
                    } else if c == '\\' {
                        esc = true;
                    } else if c == '\'' {
                        end = i + 1;
                        break;
                    }
                }
                1 + end
            } else {
                value.find(char::is_whitespace).unwrap_or(value.len())
            };
            rest = &value[skip..];
        } else {
            out.push_str("password");
            rest = after_key;
        }
    }
    out.push_str(rest);
    out
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
    fn shown_form_has_no_password() {
        let d = Dsn::parse("postgresql://alice:topsecret@127.0.0.1:5999/app").unwrap();
        let shown = d.to_string();
        assert_eq!(shown, "postgresql://alice@127.0.0.1:5999/app");
        assert!(!format!("{d:?}").contains("topsecret"));
        let err = Dsn::parse("postgresql://alice:topsecret@127.0.0.1:notaport/app").unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }
}
