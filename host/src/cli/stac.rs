//! Arguments of the STAC database commands: migrate, version, pgready, load,
//! update-extents.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{PluginChainArgs, PluginOpts, TenantArgs};
use crate::catalog::{CatalogChoice, ExtentMode, Method};
use crate::db::ConnArgs;
use crate::migrate::Version;
use crate::plugin::parse_duration;

/// Which migration set: the built-in schema, or files from a directory.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Migration set")]
pub struct SetArgs {
    /// Use the migration files in DIR instead of the built-in schema
    /// (named PREFIX--VERSION.sql and PREFIX--FROM--TO.sql, or PREFIX.VERSION.sql and PREFIX.FROM-TO.sql).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The file-name prefix of the set in DIR [default: inferred from the file names].
    #[arg(long, requires = "dir", value_name = "PREFIX")]
    pub prefix: Option<String>,
}

pub const MIGRATE_HELP: &str = "\
Examples:
  host migrate                       install or upgrade to the newest version
  host migrate --dry-run             print the plan only
  host migrate --to 0.1.0            stop at a given version
  host migrate --dir sql/ --json     another set of files, machine-readable report

The database's version is read from PREFIX.migrations; the shortest chain of files
from it to the target is applied in one transaction, under an advisory lock.

A database that runs pgstac is migrated with pgstac's own files (--dir); installing
host's schema beside it needs --alongside-pgstac.";

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The version to reach [default: the newest the set has].
    #[arg(long, value_name = "VERSION")]
    pub to: Option<Version>,

    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print the plan and outcome as JSON.
    #[arg(long)]
    pub json: bool,

    /// Install host's own schema even though the database runs pgstac (the
    /// two are separate catalogs; commands then need --catalog).
    #[arg(long)]
    pub alongside_pgstac: bool,

    #[command(flatten)]
    pub set: SetArgs,

    #[command(flatten)]
    pub conn: ConnArgs,
}

/// Which catalog a command works on.
#[derive(Debug, Clone, Args)]
pub struct CatalogArgs {
    /// The catalog: host's schema or pgstac [default: auto, the one the
    /// database holds; with both, the one that holds collections].
    #[arg(long, value_enum, default_value_t = CatalogChoice::Auto, value_name = "CATALOG", alias = "target")]
    pub catalog: CatalogChoice,
}

pub const VERSION_HELP: &str = "\
Examples:
  host version                          the database's catalog version (host's schema or pgstac)
  host version --catalog pgstac --json  {\"catalog\":\"pgstac\",\"version\":\"0.10.0\",...}
  host version --binary                 the host schema version this binary installs
  host version --binary --catalog pgstac
                                        the pgstac versions this binary works with
  host version --binary --dir DIR       the newest version of the set in DIR
  host version --binary --dir DIR --oldest
                                        the oldest version DIR can install or upgrade from
                                        (pypgstac initversion)";

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print the version this binary (or --dir) would install, without connecting.
    #[arg(long)]
    pub binary: bool,

    /// With --binary: the oldest version the set can install or upgrade from.
    #[arg(long, requires = "binary")]
    pub oldest: bool,

    /// Print as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub catalog: CatalogArgs,

    #[command(flatten)]
    pub set: SetArgs,

    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Args)]
pub struct PgreadyArgs {
    /// How long to keep trying while the server starts (e.g. 30, 30s, 500ms); a refused login or certificate fails at once.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "S")]
    pub timeout: std::time::Duration,

    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Subcommand)]
pub enum LoadCommand {
    /// Load STAC collections.
    #[command(after_help = LOAD_HELP)]
    Collections(LoadCollectionsArgs),
    /// Load STAC items, through plugins if given.
    #[command(after_help = LOAD_HELP)]
    Items(Box<LoadItemsArgs>),
}

pub const LOAD_HELP: &str = "\
Sources: paths, - for stdin, file://, http(s)://, s3://, gs://, az:// URLs.
Formats: NDJSON, one JSON object, a JSON array, a FeatureCollection; .gz is decompressed.

Methods:
  insert         fail if an id already exists (the default)
  insert_ignore  skip ids that already exist
  upsert         replace items that changed, leave identical ones untouched
  delsert        delete the existing items with those ids, then insert

Into pgstac (detected, or --catalog pgstac): items are dehydrated against their
collection's base item and written to pgstac's partitions, row for row what
pypgstac writes; the methods keep pgstac's semantics (upsert leaves identical
items untouched), and pgstac's partition statistics are refreshed afterwards.

Examples:
  host load collections collection.json
  host load items items.ndjson.gz --method upsert
  host load items s3://bucket/items.ndjson --plugin set_collection.wasm \\
       --plugin-arg collection=my-collection --reject-file rejects.ndjson

Exit codes:
  0  everything read was loaded, skipped, unchanged or dropped by a plugin
  1  error; nothing was loaded
  3  some items were rejected (written to --reject-file); the rest were loaded
  4  a plugin failed on some batches (those items are in --reject-file)";

/// Flags shared by `load collections` and `load items`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Files or URLs to read, in order (`-` is stdin).
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,

    /// What to do with ids that already exist.
    #[arg(long, value_enum, default_value_t = Method::Insert)]
    pub method: Method,

    /// Write invalid and plugin-rejected records here (NDJSON, with reasons) and
    /// load the rest; without it, the first such record fails the whole load.
    #[arg(long, value_name = "FILE")]
    pub reject_file: Option<PathBuf>,

    #[command(flatten)]
    pub catalog: CatalogArgs,

    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub conn: ConnArgs,
}

#[derive(Debug, Args)]
pub struct LoadCollectionsArgs {
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Args)]
pub struct LoadItemsArgs {
    #[command(flatten)]
    pub load: LoadArgs,

    /// The collection of items that name none; items naming another one are rejected.
    #[arg(long, value_name = "ID")]
    pub collection: Option<String>,

    /// Update the extents of the collections loaded into [default: the
    /// catalog's setting: host's `update_extents`, pgstac's `update_collection_extent`].
    #[arg(long, value_enum, value_name = "MODE")]
    pub update_extents: Option<ExtentMode>,

    /// Require each bbox to contain its geometry (the STAC definition); by
    /// default it need only overlap it, as some published examples' bboxes cut
    /// their geometry.
    #[arg(long)]
    pub strict_bbox: bool,

    /// Items per plugin call.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub batch_size: usize,

    #[command(flatten)]
    pub chain: PluginChainArgs,

    #[command(flatten)]
    pub opts: PluginOpts,

    #[command(flatten)]
    pub tenant: TenantArgs,
}

#[derive(Debug, Args)]
pub struct UpdateExtentsArgs {
    /// Recompute these collections' extents now [default: what is queued: in
    /// host's schema the collections `update_extents = deferred` loads queued,
    /// in pgstac its query queue (as `pypgstac runqueue`)].
    #[arg(long = "collection", value_name = "ID")]
    pub collections: Vec<String>,

    /// Every collection.
    #[arg(long, conflicts_with = "collections")]
    pub all: bool,

    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub catalog: CatalogArgs,

    #[command(flatten)]
    pub conn: ConnArgs,
}
