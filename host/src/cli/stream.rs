//! `host stream` arguments.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{PluginOpts, TenantArgs};
use crate::stream::Lsn;

/// Change data capture subcommands.
#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Check the source, create the logical slot (wal2json) and the target's replication origin.
    #[command(after_help = SETUP_HELP)]
    Setup(SetupArgs),
    /// Set up, copy the job's tables from the slot's snapshot (as xmat does), then --follow the changes.
    #[command(after_help = CLONE_HELP)]
    Clone(CloneArgs),
    /// Spool the slot's changes under --dir, confirming the slot only up to what is on disk.
    #[command(after_help = EXIT_HELP)]
    Receive(ReceiveArgs),
    /// Apply spooled changes to the target through the job's plugins, each source transaction atomically.
    #[command(after_help = EXIT_HELP)]
    Apply(ApplyArgs),
    /// Receive and apply in one process.
    #[command(after_help = EXIT_HELP)]
    Follow(FollowArgs),
    /// Where the stream is: slot, spool, origin, lag in bytes and seconds.
    Status(StatusArgs),
    /// Read or change settings of a running stream (the end position).
    #[command(subcommand)]
    Sentinel(SentinelCommand),
    /// Set the target's sequences to the source's values (done at --endpos by follow).
    SyncSequences(SyncArgs),
    /// Drop the slot, the origin, the DDL trigger (with the last stream) and the spool.
    Cleanup(CleanupArgs),
}

/// The stream directory.
#[derive(Debug, Clone, Args)]
pub struct DirArg {
    /// The stream's directory: its settings, the spool, state files.
    #[arg(long, env = "HOST_STREAM_DIR", value_name = "DIR")]
    pub dir: PathBuf,
}

/// The source database.
#[derive(Debug, Clone, Args)]
pub struct SourceArg {
    /// The source [default: $HOST_SOURCE_PGURI, $PGCOPYDB_SOURCE_PGURI, or the job's source].
    #[arg(long, value_name = "DSN")]
    pub source: Option<String>,
}

/// The target database.
#[derive(Debug, Clone, Args)]
pub struct TargetArg {
    /// The target [default: $HOST_TARGET_PGURI, $PGCOPYDB_TARGET_PGURI, or the job's target].
    #[arg(long, value_name = "DSN")]
    pub target: Option<String>,
}

/// `setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub source: SourceArg,
    #[command(flatten)]
    pub target: TargetArg,
    /// The xmat jobs file whose --job the stream applies (its tables, where, select, plugins).
    #[arg(short = 'c', long = "config", value_name = "FILE", requires = "job")]
    pub file: Option<PathBuf>,
    /// The job's name (exactly one job).
    #[arg(long, value_name = "NAME", requires = "file", conflicts_with_all = ["schema", "target_schema"])]
    pub job: Option<String>,
    /// Without a job: stream every table of this schema.
    #[arg(long, value_name = "SCHEMA", default_value = "public")]
    pub schema: String,
    /// Without a job: the schema on the target [default: the same as --schema].
    #[arg(long, value_name = "SCHEMA")]
    pub target_schema: Option<String>,
    /// The logical replication slot to create on the source.
    #[arg(long, value_name = "NAME", default_value = "host_stream", value_parser = slot_name)]
    pub slot_name: String,
    /// The replication origin to create on the target [default: the slot's name].
    #[arg(long, value_name = "NAME", value_parser = origin_name)]
    pub origin: Option<String>,
    /// Do not install the event trigger that stops the stream at DDL (then DDL is caught at the table's next change).
    #[arg(long)]
    pub no_ddl_trigger: bool,
    /// Stream even where a transform may give two rows of a unique key one value
    /// (as `allow_uniqueness_loss = true` on every table).
    #[arg(long)]
    pub allow_uniqueness_loss: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub opts: PluginOpts,
    #[command(flatten)]
    pub tenant: TenantArgs,
}

/// `clone`.
#[derive(Debug, Args)]
pub struct CloneArgs {
    #[command(flatten)]
    pub setup: SetupArgs,
    /// After the copy, receive and apply the changes made since its snapshot (as `follow`).
    #[arg(long)]
    pub follow: bool,
    /// With --follow: stop after the last transaction committing at or before this LSN.
    #[arg(long, value_name = "LSN", requires = "follow")]
    pub endpos: Option<Lsn>,
    /// Tables copied at the same time.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub table_jobs: u16,
    /// Spool segment size.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = crate::plugin::parse_bytes)]
    pub segment_size: u64,
}

/// `receive`.
#[derive(Debug, Args)]
pub struct ReceiveArgs {
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub source: SourceArg,
    /// Stop after the last transaction committing at or before this LSN.
    #[arg(long, value_name = "LSN")]
    pub endpos: Option<Lsn>,
    #[command(flatten)]
    pub run: RunFlags,
    /// Spool segment size (a new file after a transaction takes the current one past it).
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = crate::plugin::parse_bytes)]
    pub segment_size: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--restart` / `--resume`.
#[derive(Debug, Clone, Args)]
pub struct RunFlags {
    /// Continue a previous run's spool.
    #[arg(long, conflicts_with = "restart")]
    pub resume: bool,
    /// Discard a previous run's spool (refused while it holds changes the target has not applied).
    #[arg(long)]
    pub restart: bool,
}

/// `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub target: TargetArg,
    /// With --endpos, the source too: its sequences are copied once the end position is applied.
    #[command(flatten)]
    pub source: SourceArg,
    /// Stop after the last transaction committing at or before this LSN.
    #[arg(long, value_name = "LSN")]
    pub endpos: Option<Lsn>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub opts: PluginOpts,
    #[command(flatten)]
    pub tenant: TenantArgs,
}

/// `follow`.
#[derive(Debug, Args)]
pub struct FollowArgs {
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub source: SourceArg,
    #[command(flatten)]
    pub target: TargetArg,
    /// Stop after the last transaction committing at or before this LSN (then sequences are synced).
    #[arg(long, value_name = "LSN")]
    pub endpos: Option<Lsn>,
    #[command(flatten)]
    pub run: RunFlags,
    /// Spool segment size.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = crate::plugin::parse_bytes)]
    pub segment_size: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub opts: PluginOpts,
    #[command(flatten)]
    pub tenant: TenantArgs,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub source: SourceArg,
    #[command(flatten)]
    pub target: TargetArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `sentinel`.
#[derive(Debug, Subcommand)]
pub enum SentinelCommand {
    /// Print the sentinel (the end position).
    Get(SentinelGetArgs),
    /// Change it; running receive/apply/follow pick it up within a second.
    #[command(subcommand)]
    Set(SentinelSet),
}

/// `sentinel get`.
#[derive(Debug, Args)]
pub struct SentinelGetArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `sentinel set`.
#[derive(Debug, Subcommand)]
pub enum SentinelSet {
    /// The end position: stop after the last transaction committing at or before it.
    Endpos(EndposArgs),
}

/// `sentinel set endpos`.
#[derive(Debug, Args)]
pub struct EndposArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// The LSN.
    #[arg(value_name = "LSN", required_unless_present_any = ["current", "clear"])]
    pub lsn: Option<Lsn>,
    /// The source's current WAL position (for a cutover: stop writing to the source first).
    #[arg(long, conflicts_with_all = ["lsn", "clear"])]
    pub current: bool,
    /// Remove the end position.
    #[arg(long, conflicts_with = "lsn")]
    pub clear: bool,
    #[command(flatten)]
    pub source: SourceArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `sync-sequences`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub source: SourceArg,
    #[command(flatten)]
    pub target: TargetArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub dir: DirArg,
    #[command(flatten)]
    pub source: SourceArg,
    #[command(flatten)]
    pub target: TargetArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn slot_name(s: &str) -> Result<String, String> {
    if s.is_empty()
        || s.len() > 63
        || !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err("a slot name is 1 to 63 lowercase letters, digits or underscores".into());
    }
    Ok(s.to_string())
}

fn origin_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 512 {
        return Err("an origin name is 1 to 512 characters".into());
    }
    Ok(s.to_string())
}

const SETUP_HELP: &str = "\
Examples:
  host stream setup --dir /var/lib/host/acme --source \"$PROD\" --target \"$STAGING\" --slot-name acme
  host stream setup --dir d -c xmat.toml --job staging:acme --slot-name acme   # the job's plugins on every change
  host stream follow --dir d --resume                                          # then receive + apply

DSNs come from --source/--target, else HOST_SOURCE_PGURI/HOST_TARGET_PGURI
(or PGCOPYDB_SOURCE_PGURI/PGCOPYDB_TARGET_PGURI), else the job.

Exit codes:
  0  done
  1  error (the message says what to do; nothing was created)
  2  usage error";

const CLONE_HELP: &str = "\
The slot is created with an exported snapshot; the copy reads that snapshot, so
every change committed after it is streamed and none before it: nothing is lost
or applied twice between the copy and the stream. If the copy fails, the slot,
origin and directory are removed again.

Examples:
  host stream clone --dir d -c xmat.toml --job staging:acme --slot-name acme --follow
  host stream clone --dir d --source \"$PROD\" --target \"$STAGING\" --slot-name acme   # copy only
  host stream follow --dir d --resume                                                  # follow later
  host stream sentinel set endpos --dir d --current      # cutover: follow stops there

Exit codes: as for follow (0 done, 1 error, 2 usage, 3-5 apply stopped).";

const EXIT_HELP: &str = "\
DSNs come from --source/--target, else HOST_SOURCE_PGURI/HOST_TARGET_PGURI
(or PGCOPYDB_SOURCE_PGURI/PGCOPYDB_TARGET_PGURI), else the job given at setup.
Ctrl-C stops at the next transaction boundary; a rerun with --resume continues.

Exit codes:
  0  stopped at --endpos or on request
  1  error (connection, refused setup, target refused a change)
  2  usage error
  3  a plugin rejected a change: apply stopped before its transaction (a rerun retries it)
  4  a plugin failed on a change (trap, limit, broken key rule): stopped before its transaction
  5  DDL on a streamed table: stopped before the transaction that changed it";
