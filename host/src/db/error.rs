//! Turning tokio-postgres errors into messages people can act on: the
//! server's message with its SQLSTATE, detail and hint, or the client-side cause.

use tokio_postgres::error::ErrorPosition;

/// One line describing the error (server message, SQLSTATE, detail, hint).
pub fn describe(e: &tokio_postgres::Error) -> String {
    use std::error::Error;
    let Some(db) = e.as_db_error() else {
        return match e.source() {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        };
    };
    let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
    if let Some(d) = db.detail() {
        s += &format!("; {d}");
    }
    if let Some(h) = db.hint() {
        s += &format!("; hint: {h}");
    }
    s
}

/// The 1-based line of `sql` the error points at, if the server gave a position.
pub fn error_line(e: &tokio_postgres::Error, sql: &str) -> Option<usize> {
    match e.as_db_error()?.position()? {
        ErrorPosition::Original(pos) => {
            // The position counts characters, from 1.
            let upto: String = sql
                .chars()
                .take((*pos as usize).saturating_sub(1))
                .collect();
            Some(upto.matches('\n').count() + 1)
        }
        ErrorPosition::Internal { .. } => None,
    }
}
