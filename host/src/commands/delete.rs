//! `host delete items` and `host delete collection`, on host's schema or
//! pgstac: each in one transaction. Deleting a whole collection (or every
//! item of one) asks first on a terminal and needs `--yes` anywhere else.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::json;

use super::{Status, open_catalog};
use crate::catalog::ItemSelection;
use crate::cli::{DeleteCollectionArgs, DeleteCommand, DeleteItemsArgs};

pub async fn run(cmd: DeleteCommand) -> anyhow::Result<Status> {
    match cmd {
        DeleteCommand::Items(args) => items(args).await,
        DeleteCommand::Collection(args) => collection(args).await,
    }
}

async fn items(args: DeleteItemsArgs) -> anyhow::Result<Status> {
    let which = if args.all {
        ItemSelection::All
    } else {
        ItemSelection::Ids(gather_ids(&args)?)
    };
    let dsn = args.conn.dsn()?;
    let (mut client, catalog) = open_catalog(&args.conn, args.catalog.catalog).await?;
    let c = &args.collection;
    let count = catalog.item_count(&client, c).await?;
    if args.all {
        confirm(
            args.yes,
            &format!("Delete all {count} items of collection {c:?} in {dsn}?"),
            &format!("delete every item of collection {c:?} ({count} items)"),
        )
        .await?;
    }
    let done = catalog.delete_items(&mut client, c, &which).await?;
    if args.json {
        let mut v = json!({ "collection": c, "catalog": catalog.kind(), "deleted_items": done.deleted.len() });
        if let ItemSelection::Ids(ids) = &which {
            v["requested"] = json!(ids.len());
            v["not_found"] = json!(done.not_found);
        }
        println!("{v}");
    } else {
        let mut line = format!(
            "deleted {} from collection {c:?}",
            plural(done.deleted.len(), "item")
        );
        if let ItemSelection::Ids(ids) = &which
            && !done.not_found.is_empty()
        {
            let shown: Vec<&str> = done.not_found.iter().take(10).map(String::as_str).collect();
            line += &format!(
                "; {} of the {} requested ids not found: {}{}",
                done.not_found.len(),
                ids.len(),
                crate::terminal::Shown(shown.join(", ")),
                if done.not_found.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                }
            );
        }
        println!("{line}");
    }
    Ok(Status::Success)
}

async fn collection(args: DeleteCollectionArgs) -> anyhow::Result<Status> {
    let dsn = args.conn.dsn()?;
    let (mut client, catalog) = open_catalog(&args.conn, args.catalog.catalog).await?;
    let c = &args.collection;
    let count = catalog.item_count(&client, c).await?;
    confirm(
        args.yes,
        &format!(
            "Delete collection {c:?} and its {} in {dsn}?",
            plural(count as usize, "item")
        ),
        &format!(
            "delete collection {c:?} and its {}",
            plural(count as usize, "item")
        ),
    )
    .await?;
    let done = catalog.delete_collection(&mut client, c).await?;
    if args.json {
        println!(
            "{}",
            json!({ "collection": c, "catalog": catalog.kind(), "deleted_collection": true, "deleted_items": done.items })
        );
    } else {
        println!(
            "deleted collection {c:?} and its {}",
            plural(done.items as usize, "item")
        );
    }
    Ok(Status::Success)
}

/// Asks on a terminal; refuses without one unless `--yes`.
async fn confirm(yes: bool, question: &str, action: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("refusing to {action} without confirmation: stdin is not a terminal; pass --yes");
    }
    let question = question.to_string();
    let answer = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut err = std::io::stderr().lock();
        write!(err, "{question} [y/N] ")?;
        err.flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line)
    })
    .await??;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        bail!("not confirmed; nothing was deleted")
    }
}

/// Ids from --id and --ids-file, first occurrence kept.
fn gather_ids(args: &DeleteItemsArgs) -> anyhow::Result<Vec<String>> {
    let mut ids = args.ids.clone();
    for path in &args.ids_file {
        let reader: Box<dyn BufRead> = if path == Path::new("-") {
            Box::new(std::io::stdin().lock())
        } else {
            let f = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            Box::new(std::io::BufReader::new(f))
        };
        for line in reader.lines() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            let id = line.trim();
            if !id.is_empty() {
                ids.push(id.to_string());
            }
        }
    }
    let mut seen = HashSet::new();
    ids.retain(|i| seen.insert(i.clone()));
    if ids.is_empty() {
        bail!("no item ids given (the ids files were empty)");
    }
    Ok(ids)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
