//! A client for PostgreSQL's streaming replication protocol, as much of it as
//! logical decoding needs: connect with `replication=database` (TCP or Unix
//! socket, TLS as the rest of the host does it, password/MD5/SCRAM-SHA-256),
//! run replication commands (`IDENTIFY_SYSTEM`, `CREATE_REPLICATION_SLOT`),
//! and `START_REPLICATION ... LOGICAL` with standby status updates.
//!
//! tokio-postgres has no replication support (its connections cannot carry
//! the `replication` startup parameter or the CopyBoth sub-protocol), so this
//! speaks the few messages involved directly, with `postgres-protocol` for
//! the authentication exchanges. Why the protocol rather than the SQL
//! functions over an ordinary connection is explained in [`super`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

use super::lsn::Lsn;
use crate::db::Dsn;

/// Session settings for the walsender: the output plugin formats values with
/// the session's settings, so pin the ones whose defaults a database may
/// change (dates read back the same on any target, floats keep every digit,
/// bytea is hex).
const SESSION_OPTIONS: &str = "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3 \
     -c bytea_output=hex -c TimeZone=UTC";

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("cannot connect to {shown}: {reason}")]
    Connect { shown: String, reason: String },
    #[error("{shown}: {error}")]
    Server { shown: String, error: ServerError },
    #[error("{shown}: the replication connection was lost: {reason}")]
    Lost { shown: String, reason: String },
    #[error("{shown}: unexpected reply from the server: {reason}")]
    Protocol { shown: String, reason: String },
}

impl ReplicationError {
    /// The server's error, if it sent one.
    pub fn server(&self) -> Option<&ServerError> {
        match self {
            ReplicationError::Server { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// An ErrorResponse: SQLSTATE, message, detail, hint.
#[derive(Debug, Clone, Default)]
pub struct ServerError {
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.code)?;
        if let Some(d) = &self.detail {
            write!(f, "; {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "; hint: {h}")?;
        }
        Ok(())
    }
}

impl ServerError {
    fn parse(body: &[u8]) -> ServerError {
        let mut e = ServerError::default();
        for field in body.split(|&b| b == 0).filter(|f| !f.is_empty()) {
            let text = String::from_utf8_lossy(&field[1..]).into_owned();
            match field[0] {
                b'C' => e.code = text,
                b'M' => e.message = text,
                b'D' => e.detail = Some(text),
                b'H' => e.hint = Some(text),
                _ => {}
            }
        }
        e
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A connection in replication mode, between commands.
pub struct ReplicationClient {
    io: Box<dyn Stream>,
    buf: BytesMut,
    shown: String,
}

/// One message of the logical stream.
#[derive(Debug)]
pub enum Event {
    /// Output of the plugin for the WAL record at `start`.
    Data { start: Lsn, data: Bytes },
    /// The server's position; `reply` asks for a status update now.
    Keepalive { end: Lsn, reply: bool },
}

impl ReplicationClient {
    /// Connects to the database of `dsn` in logical replication mode.
    pub async fn connect(dsn: &Dsn) -> Result<ReplicationClient, ReplicationError> {
        let shown = dsn.to_string();
        let fail = |reason: String| ReplicationError::Connect {
            shown: shown.clone(),
            reason,
        };
        let config = dsn.config();
        let timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(60));
        let mut last = String::from("no host to connect to");
        for (i, host) in config.get_hosts().iter().enumerate() {
            let port = config
                .get_ports()
                .get(i)
                .or(config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            let io = tokio::time::timeout(timeout, open(dsn, host, port)).await;
            let io = match io {
                Ok(Ok(io)) => io,
                Ok(Err(e)) => {
                    last = e;
                    continue;
                }
                Err(_) => {
                    last = format!("timed out after {}s", timeout.as_secs());
                    continue;
                }
            };
            let mut client = ReplicationClient {
                io,
                buf: BytesMut::with_capacity(64 * 1024),
                shown: shown.clone(),
            };
            client.startup(dsn).await?;
            return Ok(client);
        }
        Err(fail(last))
    }

    async fn startup(&mut self, dsn: &Dsn) -> Result<(), ReplicationError> {
        let config = dsn.config();
        let user = config.get_user().unwrap_or("postgres").to_string();
        let mut params: Vec<(&str, &str)> = vec![
            ("user", &user),
            ("database", dsn.dbname()),
            ("replication", "database"),
            ("client_encoding", "UTF8"),
            ("options", SESSION_OPTIONS),
        ];
        if let Some(app) = config.get_application_name() {
            params.push(("application_name", app));
        }
        let mut out = BytesMut::new();
        frontend::startup_message(params.iter().copied(), &mut out).map_err(|e| self.lost(e))?;
        self.send(&out).await?;
        let password = config.get_password().map(<[u8]>::to_vec);
        let mut scram: Option<ScramSha256> = None;
        loop {
            let (tag, mut body) = self.frame().await?;
            match tag {
                b'R' => {
                    let code = body.get_i32();
                    let mut out = BytesMut::new();
                    let need_password = || {
                        password.clone().ok_or_else(|| ReplicationError::Connect {
                            shown: self.shown.clone(),
                            reason: "the server asks for a password and none was given \
                                     (in the connection string, PGPASSWORD or the password file)"
                                .into(),
                        })
                    };
                    match code {
                        0 => {}
                        3 => {
                            frontend::password_message(&need_password()?, &mut out)
                                .map_err(|e| self.lost(e))?;
                        }
                        5 => {
                            let salt = [body[0], body[1], body[2], body[3]];
                            let hash = postgres_protocol::authentication::md5_hash(
                                user.as_bytes(),
                                &need_password()?,
                                salt,
                            );
                            frontend::password_message(hash.as_bytes(), &mut out)
                                .map_err(|e| self.lost(e))?;
                        }
                        10 => {
                            let offers_scram = body
                                .split(|&b| b == 0)
                                .any(|m| m == SCRAM_SHA_256.as_bytes());
                            if !offers_scram {
                                return Err(self.protocol(
                                    "the server offers no SASL mechanism this client knows",
                                ));
                            }
                            let s =
                                ScramSha256::new(&need_password()?, ChannelBinding::unsupported());
                            frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out)
                                .map_err(|e| self.lost(e))?;
                            scram = Some(s);
                        }
                        11 => {
                            let s = scram
                                .as_mut()
                                .ok_or_else(|| self.protocol("SASL continue before SASL start"))?;
                            s.update(&body).map_err(|e| self.protocol(&e.to_string()))?;
                            frontend::sasl_response(s.message(), &mut out)
                                .map_err(|e| self.lost(e))?;
                        }
                        12 => {
                            let s = scram
                                .as_mut()
                                .ok_or_else(|| self.protocol("SASL final before SASL start"))?;
                            s.finish(&body).map_err(|e| self.protocol(&e.to_string()))?;
                        }
                        other => {
                            return Err(self.protocol(&format!(
                                "authentication method {other} is not supported here \
                                 (password, md5 and scram-sha-256 are)"
                            )));
                        }
                    }
                    if !out.is_empty() {
                        self.send(&out).await?;
                    }
                }
                b'E' => {
                    return Err(ReplicationError::Connect {
                        shown: self.shown.clone(),
                        reason: ServerError::parse(&body).to_string(),
                    });
                }
                b'Z' => return Ok(()),
                _ => {} // ParameterStatus, BackendKeyData, notices
            }
        }
    }

    /// Runs a replication command; returns its rows as text.
    pub async fn simple_query(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, ReplicationError> {
        tracing::debug!("replication: {sql}");
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).map_err(|e| self.lost(e))?;
        self.send(&out).await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let (tag, mut body) = self.frame().await?;
            match tag {
                b'D' => {
                    let n = body.get_u16();
                    let mut row = Vec::with_capacity(usize::from(n));
                    for _ in 0..n {
                        let len = body.get_i32();
                        if len < 0 {
                            row.push(None);
                        } else {
                            let v = body.split_to(len as usize);
                            row.push(Some(String::from_utf8_lossy(&v).into_owned()));
                        }
                    }
                    rows.push(row);
                }
                b'E' => error = Some(ServerError::parse(&body)),
                b'Z' => break,
                _ => {}
            }
        }
        match error {
            Some(error) => Err(ReplicationError::Server {
                shown: self.shown.clone(),
                error,
            }),
            None => Ok(rows),
        }
    }

    /// Starts streaming the slot's changes from `start` (or the slot's
    /// confirmed position, whichever is later) with the plugin's options.
    pub async fn start_logical(
        mut self,
        slot: &str,
        start: Lsn,
        options: &[(&str, String)],
    ) -> Result<(LogicalReader, LogicalWriter), ReplicationError> {
        let opts: Vec<String> = options
            .iter()
            .map(|(k, v)| format!("\"{}\" '{}'", k.replace('"', "\"\""), v.replace('\'', "''")))
            .collect();
        let sql = format!(
            "START_REPLICATION SLOT \"{}\" LOGICAL {start} ({})",
            slot.replace('"', "\"\""),
            opts.join(", ")
        );
        tracing::debug!("replication: {sql}");
        let mut out = BytesMut::new();
        frontend::query(&sql, &mut out).map_err(|e| self.lost(e))?;
        self.send(&out).await?;
        loop {
            let (tag, body) = self.frame().await?;
            match tag {
                b'W' => break,
                b'E' => {
                    return Err(ReplicationError::Server {
                        shown: self.shown.clone(),
                        error: ServerError::parse(&body),
                    });
                }
                _ => {}
            }
        }
        let shown = self.shown.clone();
        let (read, write) = tokio::io::split(self.io);
        Ok((
            LogicalReader {
                io: read,
                buf: self.buf,
                shown: shown.clone(),
                last_read: 0,
            },
            LogicalWriter { io: write, shown },
        ))
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), ReplicationError> {
        let r = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        }
        .await;
        r.map_err(|e| self.lost(e))
    }

    async fn frame(&mut self) -> Result<(u8, Bytes), ReplicationError> {
        read_frame(&mut self.io, &mut self.buf, &mut 0)
            .await
            .map_err(|e| ReplicationError::Lost {
                shown: self.shown.clone(),
                reason: e.to_string(),
            })
    }

    fn lost(&self, e: impl std::fmt::Display) -> ReplicationError {
        ReplicationError::Lost {
            shown: self.shown.clone(),
            reason: e.to_string(),
        }
    }

    fn protocol(&self, reason: &str) -> ReplicationError {
        ReplicationError::Protocol {
            shown: self.shown.clone(),
            reason: reason.to_string(),
        }
    }
}

/// The receiving half of a logical stream.
pub struct LogicalReader {
    io: tokio::io::ReadHalf<Box<dyn Stream>>,
    buf: BytesMut,
    shown: String,
    /// Bytes the last read from the socket got.
    last_read: usize,
}

impl LogicalReader {
    /// The next message; `None` when the server ended the stream.
    /// Cancel-safe: a partly read message stays in the buffer.
    pub async fn next(&mut self) -> Result<Option<Event>, ReplicationError> {
        loop {
            let read = read_frame(&mut self.io, &mut self.buf, &mut self.last_read).await;
            let (tag, body) = read.map_err(|e| ReplicationError::Lost {
                shown: self.shown.clone(),
                reason: e.to_string(),
            })?;
            if let Some(ev) = self.event(tag, body)? {
                return Ok(ev);
            }
        }
    }

    /// Whether the socket had little to give at the last read (and no
    /// whole message is left in the buffer): the server is sending slower
    /// than it is read, so reading again at once would mostly wait.
    pub fn caught_up(&self) -> bool {
        self.last_read < CAUGHT_UP && !whole_frame(&self.buf)
    }

    /// The next message if it is already read whole (no waiting, no
    /// reading): the server sends many per read, and a caller draining them
    /// here goes through its `select!` once per read rather than once per
    /// message.
    pub fn buffered(&mut self) -> Result<Option<Option<Event>>, ReplicationError> {
        while let Some((tag, body)) =
            take_frame(&mut self.buf).map_err(|e| ReplicationError::Lost {
                shown: self.shown.clone(),
                reason: e.to_string(),
            })?
        {
            if let Some(ev) = self.event(tag, body)? {
                return Ok(Some(ev));
            }
        }
        Ok(None)
    }

    /// A frame as an event: `Some(None)` at the stream's end, `None` for a
    /// frame that says nothing to the caller (a notice, the end's chatter).
    fn event(&self, tag: u8, mut body: Bytes) -> Result<Option<Option<Event>>, ReplicationError> {
        match tag {
            b'd' if body.first() == Some(&b'w') && body.len() >= 25 => {
                body.advance(1);
                let start = Lsn(body.get_u64());
                let _end = body.get_u64();
                let _sent = body.get_i64();
                Ok(Some(Some(Event::Data { start, data: body })))
            }
            b'd' if body.first() == Some(&b'k') && body.len() >= 18 => {
                body.advance(1);
                let end = Lsn(body.get_u64());
                let _sent = body.get_i64();
                let reply = body.get_u8() == 1;
                Ok(Some(Some(Event::Keepalive { end, reply })))
            }
            b'd' => Err(ReplicationError::Protocol {
                shown: self.shown.clone(),
                reason: format!("unknown CopyData message {:?}", body.first()),
            }),
            b'c' => Ok(Some(None)),
            b'E' => Err(ReplicationError::Server {
                shown: self.shown.clone(),
                error: ServerError::parse(&body),
            }),
            b'N' => {
                let n = ServerError::parse(&body);
                tracing::warn!("source: {}", n.message);
                Ok(None)
            }
            _ => Ok(None), // CommandComplete, ReadyForQuery after the end
        }
    }
}

/// The sending half of a logical stream: standby status updates.
pub struct LogicalWriter {
    io: tokio::io::WriteHalf<Box<dyn Stream>>,
    shown: String,
}

impl LogicalWriter {
    /// Tells the server what is written and flushed (safe to forget); with
    /// `reply`, asks for a keepalive in return.
    pub async fn status(&mut self, flushed: Lsn, reply: bool) -> Result<(), ReplicationError> {
        let mut payload = BytesMut::with_capacity(34);
        payload.put_u8(b'r');
        payload.put_u64(flushed.0); // written
        payload.put_u64(flushed.0); // flushed
        payload.put_u64(flushed.0); // applied: not tracked by the slot
        payload.put_i64(pg_now());
        payload.put_u8(u8::from(reply));
        let mut out = BytesMut::new();
        frontend::CopyData::new(&payload[..])
            .map_err(|e| self.lost(e))?
            .write(&mut out);
        let r = async {
            self.io.write_all(&out).await?;
            self.io.flush().await
        }
        .await;
        r.map_err(|e| self.lost(e))
    }

    /// Ends the stream (the server closes the connection after it).
    pub async fn finish(mut self) {
        let mut out = BytesMut::new();
        frontend::copy_done(&mut out);
        frontend::terminate(&mut out);
        let _ = self.io.write_all(&out).await;
        let _ = self.io.flush().await;
        let _ = self.io.shutdown().await;
    }

    fn lost(&self, e: impl std::fmt::Display) -> ReplicationError {
        ReplicationError::Lost {
            shown: self.shown.clone(),
            reason: e.to_string(),
        }
    }
}

/// Microseconds since 2000-01-01, the protocol's clock.
fn pg_now() -> i64 {
    const PG_EPOCH: u64 = 946_684_800;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_micros() as i64) - (PG_EPOCH as i64) * 1_000_000
}

/// Bytes asked of the socket at least per read: a change is a few hundred
/// bytes, and reading only what one message lacks (or the 64 bytes an
/// empty buffer grows by) would cost a system call per message.
const READ_AT_LEAST: usize = 64 * 1024;

/// Reads one backend message: its tag and body. Cancel-safe.
/// A read getting less than this means the socket had been emptied.
const CAUGHT_UP: usize = 16 * 1024;

/// The next frame, reading as needed; `last_read` is set to what each read got.
async fn read_frame<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    last_read: &mut usize,
) -> std::io::Result<(u8, Bytes)> {
    loop {
        if let Some(frame) = take_frame(buf)? {
            return Ok(frame);
        }
        let need = if buf.len() >= 5 {
            frame_len(buf) + 1 - buf.len()
        } else {
            0
        };
        // Frames handed out keep their part of the buffer alive; `reserve`
        // reuses it once they are dropped, or starts a new one.
        buf.reserve(need.max(READ_AT_LEAST));
        *last_read = io.read_buf(buf).await?;
        if *last_read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
    }
}

/// The length field of the frame at the start of `buf` (at least 5 bytes).
fn frame_len(buf: &[u8]) -> usize {
    u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize
}

/// Whether `buf` starts with a whole frame.
fn whole_frame(buf: &[u8]) -> bool {
    buf.len() >= 5 && buf.len() > frame_len(buf)
}

/// A whole frame from the start of `buf` (tag and body), if it is all there.
fn take_frame(buf: &mut BytesMut) -> std::io::Result<Option<(u8, Bytes)>> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = frame_len(buf);
    if len < 4 {
        return Err(std::io::Error::other("invalid message length"));
    }
    if buf.len() <= len {
        return Ok(None);
    }
    let mut frame = buf.split_to(len + 1).freeze();
    let tag = frame[0];
    frame.advance(5);
    Ok(Some((tag, frame)))
}

/// Opens the socket (and TLS, as `sslmode` says) to one host.
async fn open(dsn: &Dsn, host: &Host, port: u16) -> Result<Box<dyn Stream>, String> {
    match host {
        Host::Unix(dir) => {
            let path = dir.join(format!(".s.PGSQL.{port}"));
            let s = tokio::net::UnixStream::connect(&path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(Box::new(s))
        }
        Host::Tcp(name) => {
            let mut tcp = tokio::net::TcpStream::connect((name.as_str(), port))
                .await
                .map_err(|e| format!("{name}:{port}: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let mode = dsn.config().get_ssl_mode();
            let connector = dsn.tls_connector().map_err(|e| e.to_string())?;
            let Some(mut connector) = connector.filter(|_| mode != SslMode::Disable) else {
                return Ok(Box::new(tcp));
            };
            let mut req = BytesMut::new();
            frontend::ssl_request(&mut req);
            tcp.write_all(&req).await.map_err(|e| e.to_string())?;
            let mut answer = [0u8; 1];
            tcp.read_exact(&mut answer)
                .await
                .map_err(|e| e.to_string())?;
            if answer[0] != b'S' {
                if mode == SslMode::Require {
                    return Err(
                        "the server does not accept TLS connections (sslmode requires TLS)".into(),
                    );
                }
                return Ok(Box::new(tcp));
            }
            let tls = <_ as MakeTlsConnect<tokio::net::TcpStream>>::make_tls_connect(
                &mut connector,
                name,
            )
            .map_err(|e| e.to_string())?;
            let stream = tls.connect(tcp).await.map_err(|e| format!("TLS: {e}"))?;
            Ok(Box::new(stream))
        }
    }
}
