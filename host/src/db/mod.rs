//! PostgreSQL access shared by every database command.

mod connect;
mod conninfo;
mod error;
mod pgpass;
mod tls;

pub use connect::{ConnArgs, ConnectError, Dsn, redact};
pub use error::{describe, error_line};
