//! `host search`: a STAC API item search against the built-in schema.

use std::io::{Read, Write};

use anyhow::Context;

use super::Status;
use crate::cli::SearchArgs;
use crate::search::{self, Search};

/// Reads the request, checks it before connecting, runs it and prints the page.
pub async fn run(args: SearchArgs) -> anyhow::Result<Status> {
    let text = request_text(args.request.as_deref())?;
    let search = Search::parse(&text).context("invalid search request")?;
    let dsn = args.conn.dsn()?;
    let client = dsn.connect().await?;
    let page = search::run(&client, &search)
        .await
        .map_err(|e| db_error(&e, "search"))?;
    let mut out = std::io::stdout().lock();
    out.write_all(page.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(Status::Success)
}

/// The request: given inline, `@FILE`, `-` for stdin, or `{}` when absent.
fn request_text(arg: Option<&str>) -> anyhow::Result<String> {
    match arg {
        None => Ok("{}".to_string()),
        Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the request from stdin")?;
            Ok(s)
        }
        Some(a) => match a.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the request from {path}")),
            None => Ok(a.to_string()),
        },
    }
}

/// A database error as one clear line, with a hint when the schema is missing.
pub(crate) fn db_error(e: &tokio_postgres::Error, what: &str) -> anyhow::Error {
    match e.as_db_error() {
        Some(db) => {
            let missing = matches!(db.code().code(), "42P01" | "3F000" | "42883");
            let hint = if missing {
                " (is the STAC schema installed? run `host migrate`)"
            } else {
                ""
            };
            anyhow::anyhow!("{what} failed: {}{hint}", db.message())
        }
        None => anyhow::anyhow!("{what} failed: {e}"),
    }
}
