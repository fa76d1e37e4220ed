//! PostgreSQL access shared by every database command.

mod connect;

pub use connect::{ConnArgs, ConnectError, Dsn, redact};
