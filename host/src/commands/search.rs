//! `host search`: a STAC API item search on the database's catalog.

use std::io::{Read, Write};

use anyhow::Context;

use super::{Status, open_catalog};
use crate::cli::SearchArgs;
use crate::search::SearchRequest;

/// Reads the request, checks it before connecting, runs it and prints the page.
pub async fn run(args: SearchArgs) -> anyhow::Result<Status> {
    let text = request_text(args.request.as_deref())?;
    let request = SearchRequest::parse(&text).context("invalid search request")?;
    // What either catalog would refuse is refused before connecting.
    crate::search::sql::check(&request).context("invalid search request")?;
    let (client, catalog) = open_catalog(&args.conn, args.catalog.catalog).await?;
    let page = catalog
        .search(&client, &request)
        .await
        .map_err(|e| match e {
            crate::catalog::CatalogError::Search(e) => {
                anyhow::Error::new(e).context("invalid search request")
            }
            e => anyhow::Error::new(e),
        })?;
    let mut out = std::io::stdout().lock();
    out.write_all(page.feature_collection(&request).as_bytes())?;
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
