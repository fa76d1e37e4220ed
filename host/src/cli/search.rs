//! Flags of `host search` and `host delete`.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand};

use super::stac::CatalogArgs;
use crate::db::ConnArgs;

pub const SEARCH_HELP: &str = "\
The request is a STAC API item-search body (POST form):
  collections, ids, bbox (2D or 3D), intersects (GeoJSON geometry),
  datetime (instant, a/b, ../b, a/..), limit (default 10, at most 10000),
  sortby ([{\"field\": \"properties.datetime\", \"direction\": \"desc\"}]; default: datetime desc),
  filter (CQL2-JSON: = <> < <= > >= and or not in between like isNull s_intersects
  t_intersects ...), token (from the previous page's next link).

Examples:
  host search '{\"collections\": [\"naip\"], \"bbox\": [-86, 30, -85, 31], \"limit\": 100}'
  host search '{\"filter\": {\"op\": \"<\", \"args\": [{\"property\": \"eo:cloud_cover\"}, 10]}}'
  host search @request.json | jq '.features[].id'
  host search \"$(host search @request.json | jq -c '.links[0].body')\"   # the next page

Prints a GeoJSON FeatureCollection: the items, numberReturned, and a `next` link
(whose body is the request with its token) when there are more.

Both catalogs answer a request the same way: on pgstac, pgstac's own search()
runs it; on host's schema, a statement that reads it as pgstac does. A property
compared with a number is read as a number (\"2013\" matches 2013), compared with
a string as text; properties sort as text; datetime is the start of an item's
range. Requests pgstac cannot answer are refused on both.";

#[derive(Debug, Args)]
#[command(after_help = SEARCH_HELP)]
pub struct SearchArgs {
    /// The request as JSON, `@FILE` to read it from a file, or `-` for stdin [default: {}].
    #[arg(value_name = "REQUEST")]
    pub request: Option<String>,

    #[command(flatten)]
    pub catalog: CatalogArgs,

    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Subcommand)]
pub enum DeleteCommand {
    /// Delete items of one collection by id (or all of them with --all).
    Items(DeleteItemsArgs),
    /// Delete a collection and all its items.
    Collection(DeleteCollectionArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).multiple(true).args(["ids", "ids_file", "all"])))]
pub struct DeleteItemsArgs {
    /// The collection the items are in.
    #[arg(long, value_name = "COLLECTION")]
    pub collection: String,

    /// An item id (repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,

    /// A file of item ids, one per line (`-` for stdin); blank lines are skipped.
    #[arg(long, value_name = "FILE")]
    pub ids_file: Vec<PathBuf>,

    /// Delete every item of the collection (keeps the collection); asks first.
    #[arg(long, conflicts_with_all = ["ids", "ids_file"])]
    pub all: bool,

    /// Do not ask for confirmation (only --all asks).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub catalog: CatalogArgs,

    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Args)]
pub struct DeleteCollectionArgs {
    /// The collection id.
    #[arg(value_name = "COLLECTION")]
    pub collection: String,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub catalog: CatalogArgs,

    #[command(flatten)]
    pub conn: ConnArgs,
}
