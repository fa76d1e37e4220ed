//! Command-line arguments. Parsing only: commands live in `crate::commands`.

mod plugins;
mod search;
mod stac;
mod stream;
mod xmat;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub use plugins::{PluginChainArgs, PluginOpts, TenantArgs, plugin_specs};
pub use search::{DeleteCollectionArgs, DeleteCommand, DeleteItemsArgs, SearchArgs};
pub use stac::{
    CatalogArgs, LoadArgs, LoadCollectionsArgs, LoadCommand, LoadItemsArgs, MigrateArgs,
    PgreadyArgs, SetArgs, UpdateExtentsArgs, VersionArgs,
};
pub use stream::*;
pub use xmat::XmatArgs;

/// A mistake in the command line that clap cannot see (an argument that
/// would do nothing, a malformed value): reported like clap's own, exit 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl From<String> for UsageError {
    fn from(message: String) -> UsageError {
        UsageError(message)
    }
}

/// Exit codes, for scripts.
pub const EXIT_HELP: &str = "\
Exit codes:
  0  success
  1  error (bad input, database or plugin load failure); nothing was written
  2  usage error
  3  finished, but some records were rejected (see stderr or --reject-file)
  4  finished, but a plugin failed on some batches (those records were rejected)";

#[derive(Debug, Parser)]
#[command(
    name = "host",
    version,
    about = "Move data into and between PostgreSQL databases through sandboxed WebAssembly plugins",
    after_help = EXIT_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect, develop and test plugins without a database.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Search items (host's schema or pgstac): STAC API item search with CQL2-JSON filters, printed as a FeatureCollection.
    Search(SearchArgs),
    /// Delete items, or a collection with its items.
    #[command(subcommand)]
    Delete(DeleteCommand),
    /// Install or upgrade the STAC schema (or another migration set with --dir).
    #[command(after_help = stac::MIGRATE_HELP)]
    Migrate(MigrateArgs),
    /// Print the database's catalog version (--binary: the one this binary installs).
    #[command(after_help = stac::VERSION_HELP)]
    Version(VersionArgs),
    /// Wait until the database accepts connections.
    Pgready(PgreadyArgs),
    /// Load STAC collections or items.
    #[command(subcommand)]
    Load(LoadCommand),
    /// Recompute collection extents (queued ones by default), in host's schema or pgstac.
    UpdateExtents(UpdateExtentsArgs),
    /// Copy tables between PostgreSQL databases as described by jobs in a file (cross-database materialisation).
    Xmat(XmatArgs),
    /// Change data capture: stream one database's changes into another through the job's plugins, exactly once.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Multi-tenant policies: which plugins each tenant may run, on which data, within which limits.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file: every problem with its line, then a summary of tenants, plugins and limits.
    #[command(after_help = POLICY_HELP)]
    Check(PolicyCheckArgs),
}

const POLICY_HELP: &str = "\
A policy (TOML):

  [budget]
  memory = \"1GiB\"                    # all tenants' plugin instances together

  [plugins.anonymize]
  sha256 = \"<64 hex digits>\"
  location = \"oci://registry.example/anonymize:1.0\"   # or a path or URL

  [tenants.acme]
  plugins = [\"anonymize\"]            # what it may run (load: its chain, in order)
  scope = { collections = [\"acme-*\"], tables = [\"public.*\"], where = \"tenant_id = 42\" }
  limits = { memory = \"64MiB\", time = \"1s\", fuel = 1000000000, output = \"16KiB\", instances = 2, cpu = \"60s\" }
  params.anonymize = { key = { env = \"ACME_KEY\" }, email = \"email\" }   # secrets: { env = ... } or { file = ... }

Exit codes:
  0  the policy is valid
  1  the policy has problems (each printed with its line) or cannot be read
  2  usage error";

#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// The policy file [default: $HOST_POLICY].
    #[arg(value_name = "FILE", env = "HOST_POLICY")]
    pub file: PathBuf,

    /// Print the summary as JSON (secret values are never printed; their sources are).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Show a plugin's kind, interface version, reported name and version, imports, size and SHA-256.
    Inspect(InspectArgs),
    /// Run plugins over items (as `load items` reads them) or rows (COPY text or CSV), writing to stdout.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Push a plugin to an OCI registry (oci://REGISTRY/REPO:TAG), as the wasm OCI artifact.
    #[command(after_help = PUSH_HELP)]
    Push(PushArgs),
    /// Make a new plugin project (Rust or Python) that builds, tests and runs as it is.
    #[command(after_help = NEW_HELP)]
    New(NewArgs),
}

const NEW_HELP: &str = "\
Examples:
  host plugin new tagger --kind item-rewriter
  host plugin new scrub --kind row-transformer --lang python
  host plugin new only-east --kind where-filter --dir plugins/only-east --sdk https://example.org/host.git

The project depends on the SDK of a checkout of the host repository (--sdk PATH; by default
the one this binary was built from) or of its git URL (--sdk URL).";

const PUSH_HELP: &str = "\
Examples:
  host plugin push target/wasm32-wasip2/release/set_collection.wasm oci://ghcr.io/acme/set_collection:0.1.0
  host plugin run oci://ghcr.io/acme/set_collection:0.1.0@sha256:<digest printed by push> items.ndjson

Credentials: HOST_OCI_USERNAME and HOST_OCI_PASSWORD, else the Docker config ($DOCKER_CONFIG or
~/.docker/config.json: auths, credHelpers, credsStore, as `docker login` writes them).
Registries on loopback are spoken to over plain HTTP; all others over HTTPS.";

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The plugin to push (`FILE.wasm`, a URL, or another oci:// reference; `#sha256=HEX` pins it).
    #[arg(value_name = "PLUGIN")]
    pub plugin: String,

    /// Where to push it: oci://REGISTRY/REPOSITORY:TAG.
    #[arg(value_name = "oci://REGISTRY/REPO:TAG")]
    pub target: String,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub opts: PluginOpts,
}

/// The language of a new plugin project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PluginLang {
    /// Rust with host-plugin-sdk (cargo build --target wasm32-wasip2).
    Rust,
    /// Python with the host_plugin SDK (componentize-py).
    Python,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The plugin's name (letters, digits, '_' and '-'); also the project folder's.
    pub name: String,

    /// What the plugin does.
    #[arg(long, value_enum)]
    pub kind: crate::plugin::Kind,

    /// The language to write it in.
    #[arg(long, value_enum, default_value = "rust")]
    pub lang: PluginLang,

    /// Where to create the project [default: ./NAME]; must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The SDK: a checkout of the host repository, or its git URL.
    #[arg(long, value_name = "PATH|URL", env = "HOST_PLUGIN_SDK")]
    pub sdk: Option<String>,
}

const RUN_HELP: &str = "\
Examples:
  host plugin run set_collection.wasm --plugin-arg collection=naip < items.ndjson > out.ndjson
  host plugin run where_filter.wasm --plugin-arg bbox=-80,30,-70,40 \\
       --plugin set_collection.wasm --plugin-arg collection=east items.ndjson
  host plugin run anonymize.wasm --plugin-arg key=s3cret --plugin-arg email=email --rows users.csv

--plugin-arg applies to the nearest plugin before it (the first one when none is before it).

Exit codes:
  0  every record was kept or dropped
  1  error (bad input or a plugin could not be loaded or configured)
  2  usage error
  3  some records were rejected (reasons on stderr or in --reject-file)
  4  a plugin failed on some batches (it was restarted; those records were rejected)";

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Plugin files or URLs (`FILE.wasm#sha256=HEX` pins a digest).
    #[arg(required = true, value_name = "PLUGIN")]
    pub plugins: Vec<String>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub opts: PluginOpts,
}

/// What `plugin run` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RowFormat {
    /// PostgreSQL COPY text format (tab-separated, \N for NULL).
    Copy,
    /// CSV with a header row (unquoted empty = NULL, "" = empty string).
    Csv,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The first plugin (`FILE.wasm`, `FILE.wasm#sha256=HEX`, or an http(s)/s3/gs/az URL).
    #[arg(value_name = "PLUGIN")]
    pub first_plugin: String,

    /// Inputs, read as `load items` reads them: files, `-` (stdin, the default), http(s)://,
    /// s3://, gs://, az:// or file:// URLs; NDJSON, JSON arrays or FeatureCollections; .gz or not.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    #[command(flatten)]
    pub chain: PluginChainArgs,

    /// Process table rows instead of STAC items.
    #[arg(long)]
    pub rows: bool,

    /// Row input format (default: csv for *.csv files, else copy).
    #[arg(long, value_enum, requires = "rows")]
    pub format: Option<RowFormat>,

    /// Column names and types for rows, e.g. `id:integer,email,phone:text` (types default to text).
    /// For CSV the header names the columns; this only adds types.
    #[arg(
        long,
        value_delimiter = ',',
        requires = "rows",
        value_name = "NAME[:TYPE]"
    )]
    pub columns: Vec<String>,

    /// The table name plugins are told, as SCHEMA.NAME.
    #[arg(long, default_value = "public.input", requires = "rows")]
    pub table: String,

    /// Records per plugin call (default: 256 items or 1024 rows).
    #[arg(long)]
    pub batch_size: Option<usize>,

    /// Write rejected records, with reasons, as NDJSON to this file instead of stderr.
    #[arg(long, value_name = "FILE")]
    pub reject_file: Option<PathBuf>,

    /// Print the end-of-run summary as JSON (on stderr; stdout carries the data).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub opts: PluginOpts,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
