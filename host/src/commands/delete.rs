//! `host delete items` and `host delete collection`: each in one transaction.
//! Deleting a whole collection (or every item of one) asks first on a
//! terminal and needs `--yes` anywhere else.

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::json;
use tokio_postgres::{Client, GenericClient};

use super::Status;
use super::search::db_error;
use crate::cli::{DeleteCollectionArgs, DeleteCommand, DeleteItemsArgs};
use crate::db::Dsn;

pub async fn run(cmd: DeleteCommand) -> anyhow::Result<Status> {
    match cmd {
        DeleteCommand::Items(args) => items(args).await,
        DeleteCommand::Collection(args) => collection(args).await,
    }
}

async fn items(args: DeleteItemsArgs) -> anyhow::Result<Status> {
    let ids = if args.all {
        Vec::new()
    } else {
        gather_ids(&args)?
    };
    let dsn = args.conn.dsn()?;
    let mut client = dsn.connect().await?;
    let c = &args.collection;
    let count = item_count(&client, c).await?;
    if args.all {
        confirm(
            args.yes,
            &format!("Delete all {count} items of collection {c:?} in {dsn}?"),
            &format!("delete every item of collection {c:?} ({count} items)"),
        )
        .await?;
    }
    let tx = client
        .transaction()
        .await
        .map_err(|e| db_error(&e, "delete"))?;
    lock_collection(&tx, c).await?;
    let deleted: Vec<String> = if args.all {
        tx.query("DELETE FROM host.items WHERE collection = $1::text RETURNING id", &[c])
            .await
    } else {
        tx.query(
            "DELETE FROM host.items WHERE collection = $1::text AND id = ANY($2::text[]) RETURNING id",
            &[c, &ids],
        )
        .await
    }
    .map_err(|e| db_error(&e, "delete"))?
    .iter()
    .map(|r| r.get(0))
    .collect();
    tx.commit().await.map_err(|e| db_error(&e, "delete"))?;

    let gone: HashSet<&str> = deleted.iter().map(String::as_str).collect();
    let not_found: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|i| !gone.contains(i))
        .collect();
    if args.json {
        let mut v = json!({ "collection": c, "deleted_items": deleted.len() });
        if !args.all {
            v["requested"] = json!(ids.len());
            v["not_found"] = json!(not_found);
        }
        println!("{v}");
    } else {
        let mut line = format!(
            "deleted {} from collection {c:?}",
            plural(deleted.len(), "item")
        );
        if !not_found.is_empty() {
            let shown: Vec<&str> = not_found.iter().take(10).copied().collect();
            line += &format!(
                "; {} of the {} requested ids not found: {}{}",
                not_found.len(),
                ids.len(),
                crate::terminal::Shown(shown.join(", ")),
                if not_found.len() > shown.len() {
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
    let dsn: Dsn = args.conn.dsn()?;
    let mut client: Client = dsn.connect().await?;
    let c = &args.collection;
    let count = item_count(&client, c).await?;
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
    let tx = client
        .transaction()
        .await
        .map_err(|e| db_error(&e, "delete"))?;
    lock_collection(&tx, c).await?;
    // The collection's items are exactly its partition: dropping the
    // partition deletes them without leaving an empty table behind. The
    // count under the collection's lock is what goes away.
    let items = item_count(&tx, c).await?;
    tx.execute("SELECT host.drop_partition($1::text)", &[c])
        .await
        .map_err(|e| db_error(&e, "delete"))?;
    tx.execute("DELETE FROM host.collections WHERE id = $1::text", &[c])
        .await
        .map_err(|e| db_error(&e, "delete"))?;
    tx.commit().await.map_err(|e| db_error(&e, "delete"))?;
    if args.json {
        println!(
            "{}",
            json!({ "collection": c, "deleted_collection": true, "deleted_items": items })
        );
    } else {
        println!(
            "deleted collection {c:?} and its {}",
            plural(items as usize, "item")
        );
    }
    Ok(Status::Success)
}

/// The collection's item count; a clear error when there is no such collection.
async fn item_count(client: &impl GenericClient, c: &str) -> anyhow::Result<i64> {
    let row = client
        .query_opt(
            "SELECT (SELECT count(*) FROM host.items WHERE collection = $1::text) \
             FROM host.collections WHERE id = $1::text",
            &[&c],
        )
        .await
        .map_err(|e| db_error(&e, "delete"))?;
    match row {
        Some(r) => Ok(r.get(0)),
        None => bail!("collection {c:?} does not exist"),
    }
}

/// Holds the collection row for the transaction (concurrent deletes queue up),
/// and fails if it went away since the count.
async fn lock_collection(tx: &impl GenericClient, c: &str) -> anyhow::Result<()> {
    let row = tx
        .query_opt(
            "SELECT 1 FROM host.collections WHERE id = $1::text FOR UPDATE",
            &[&c],
        )
        .await
        .map_err(|e| db_error(&e, "delete"))?;
    if row.is_none() {
        bail!("collection {c:?} does not exist");
    }
    Ok(())
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
