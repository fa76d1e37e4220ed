//! PostgreSQL access shared by every database command.

mod connect;
mod error;

pub use connect::{ConnArgs, ConnectError, Dsn, redact};
pub use error::{describe, error_line};
