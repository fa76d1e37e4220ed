//! `host xmat` arguments.

use std::path::PathBuf;

use clap::Args;

use super::{PluginOpts, TenantArgs};

/// Run materialisation jobs from a jobs file.
#[derive(Debug, Args)]
#[command(after_help = XMAT_HELP)]
pub struct XmatArgs {
    /// Glob of job names to run, in file order (`export:*`, `tenant:acme`).
    #[arg(value_name = "PATTERN")]
    pub pattern: String,

    /// The jobs file: TOML, JSON for *.json, or a pg-xmat jobs module for *.py.
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        default_value = "xmat.toml"
    )]
    pub file: PathBuf,

    /// Print the plan (tables, SELECTs, DDL, plugins) and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Tables copied at the same time (each uses one source and one target connection); also how many foreign keys are validated at once.
    #[arg(short = 'j', long, default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,

    /// Plugin threads per table [default: one per two cores, at most 4].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub plugin_threads: Option<u16>,

    /// Always use COPY's text format (by default binary is used where it is safe).
    #[arg(long)]
    pub text: bool,

    /// Print the plan or the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// The Python that evaluates a pg-xmat jobs module (*.py) [default: python3].
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,

    /// Copy even where a transform may give two rows of a unique key one value
    /// (as `allow_uniqueness_loss = true` on every table).
    #[arg(long)]
    pub allow_uniqueness_loss: bool,

    /// With `subset = "follow"`: memory host may hold for one parent table's
    /// kept keys, read once to follow a child's integer foreign key (cheaper
    /// for the source than a semi join); a parent with more kept keys is
    /// followed by the semi join. 0: always the semi join.
    #[arg(long, default_value = "64MiB", value_parser = crate::plugin::parse_bytes, value_name = "SIZE")]
    pub follow_memory: u64,

    /// With `subset = "follow"`: SQL a parent's kept keys may take in a
    /// child's query (a bitmap or a list, which the source tests as it reads);
    /// larger sets are tested by host as the rows pass. 0: never in the query.
    #[arg(long, default_value = "1MiB", value_parser = crate::plugin::parse_bytes, value_name = "SIZE")]
    pub follow_in_query: u64,

    /// Jobs run at the same time (each with its own --jobs tables). A failed
    /// job stops the jobs of its tenant that have not started; other
    /// tenants' jobs go on.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel_jobs: u16,

    #[command(flatten)]
    pub opts: PluginOpts,

    #[command(flatten)]
    pub tenant: TenantArgs,
}

const XMAT_HELP: &str = "\
Examples:
  host xmat 'export:*'                     run every job whose name starts with export:
  host xmat tenant:acme -c jobs.json --dry-run

A job file (xmat.toml):
  [\"tenant:acme\"]
  source = { database = \"env:PROD_URL\", schema = \"public\" }
  target = { database = \"postgresql://app@staging/app\", schema = \"acme\" }
  [\"tenant:acme\".tables.\"*\"]
  where = { tenant_id = 42 }
  [\"tenant:acme\".tables.users]
  where = { tenant_id = 42, created_at = { gte = \"2024-01-01\" } }
  select = { email = \"lower({column_name})\", password_hash = false }
  plugins = [{ plugin = \"anonymize.wasm\", params = { key = \"env:ANON_KEY\", name = \"name\" } }]

The target schema is built under a temporary name and replaces the old one
only when everything succeeded.

Under a policy (--policy FILE or HOST_POLICY), each job runs as a tenant
(`tenant = \"acme\"` in the job, or --tenant): its plugins are named by
their policy names and run pinned to the policy's digests, with the tenant's
parameters and limits; only the tenant's tables are read, each with its row
predicate ANDed to the job's `where`.
  [\"acme:copy\"]
  tenant = \"acme\"
  ...
  [\"acme:copy\".tables.users]
  plugins = [{ plugin = \"anon\", params = { columns = \"email\" } }]

Exit codes:
  0  every matching job succeeded
  1  error: no job matched, or a job failed (the message names job, table and
     plugin; that job's target is left as it was, later jobs do not run)
  2  usage error";
