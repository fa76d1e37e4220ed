//! `setup` and `cleanup`: the slot on the source, the origin on the target,
//! the DDL trigger, the stream directory; and syncing sequences at cutover.

use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::dir::{JobRef, PluginDigest, SourceId, StreamConfig, StreamDir};
use super::lsn::Lsn;
use super::replication::{ReplicationClient, ReplicationError};
use super::{StreamError, connect, tables};
use crate::db::Dsn;
use crate::xmat::catalog;
use crate::xmat::jobs::Job;
use crate::xmat::plan;
use crate::xmat::sql::{Conn, describe, ident, literal, qualified};

/// What `setup` is asked for.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    pub slot: String,
    pub origin: String,
    /// Install the event trigger that writes DDL into the WAL (needs superuser).
    pub ddl_trigger: bool,
}

/// A slot just created, with the snapshot it exported (kept valid while
/// `holder` stays open and idle).
pub struct CreatedSlot {
    pub consistent_point: Lsn,
    pub snapshot: Option<String>,
    pub holder: ReplicationClient,
}

/// What was checked on the source, before anything is created.
#[derive(Debug, Clone)]
pub struct Checked {
    pub source_id: SourceId,
    pub tables: Vec<tables::StreamTable>,
    pub sequences: Vec<String>,
    pub warnings: Vec<String>,
    /// The job planned as `host xmat` plans it (its unique keys, for the
    /// check of transforms on them).
    pub plan: plan::Plan,
}

/// Checks the source can be streamed for this job: logical decoding on,
/// UTF-8, every table keyed (refused by name otherwise). `job` is the job
/// as it runs (bound to its tenant: its tables and rows only), `written`
/// as its file says (whose plugins the stream stores).
pub async fn check_source(source: &Dsn, job: &Job, written: &Job) -> Result<Checked, StreamError> {
    // A subset that follows foreign keys depends on other tables' rows: a
    // change to one row can move rows of other tables in or out, which a
    // stream of row changes cannot see.
    if job.subset != crate::xmat::jobs::Subset::Off {
        return Err(StreamError::Setup(format!(
            "job {}: `subset` follows foreign keys, which a stream of row changes cannot keep \
             (a change to one row moves rows of other tables in or out); stream a job without it",
            job.name
        )));
    }
    let client = connect(source, "source").await?;
    let db = |what: &str, e: &tokio_postgres::Error| StreamError::db("source", what, e);
    let row = client
        .query_one(
            "SELECT current_setting('wal_level'), pg_encoding_to_char(d.encoding), \
                    current_database()::text \
             FROM pg_database d WHERE d.datname = current_database()",
            &[],
        )
        .await
        .map_err(|e| db("reading its settings", &e))?;
    let (wal_level, encoding, database): (String, String, String) =
        (row.get(0), row.get(1), row.get(2));
    if wal_level != "logical" {
        return Err(StreamError::Setup(format!(
            "the source has wal_level = {wal_level}; logical decoding needs wal_level = logical \
             (ALTER SYSTEM SET wal_level = logical, then restart the server)"
        )));
    }
    if encoding != "UTF8" {
        return Err(StreamError::Setup(format!(
            "the source database is encoded in {encoding}; the stream reads wal2json's output as UTF-8, \
             so only UTF8 databases can be streamed"
        )));
    }
    let conn = Conn {
        client,
        label: "source".into(),
    };
    let fail = |e: crate::xmat::sql::StatementError| StreamError::Setup(e.to_string());
    conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(fail)?;
    let cat = catalog::read(&conn, &job.source.schema)
        .await
        .map_err(fail)?
        .ok_or_else(|| {
            StreamError::Setup(format!(
                "source schema {} does not exist in {source}",
                job.source.schema
            ))
        })?;
    const BUILD: &str = "host_stream_plan";
    let plan = plan::build(job, &cat, BUILD)
        .map_err(|e| StreamError::Setup(format!("job {}: {e}", job.name)))?;
    let tables = tables::describe(&conn, written, &cat, &plan)
        .await
        .map_err(|e| {
            StreamError::Setup(format!(
                "job {}: these tables cannot be streamed:\n{e}",
                job.name
            ))
        })?;
    conn.exec("COMMIT").await.map_err(fail)?;
    // The plan names each sequence in its build schema; the stream wants the bare name.
    let prefix = format!("{}.", ident(BUILD));
    let sequences = plan
        .sequences
        .iter()
        .filter_map(|s| s.sequence.strip_prefix(&prefix))
        .map(|q| q[1..q.len() - 1].replace("\"\"", "\""))
        .collect();
    let mut warnings = plan.warnings.clone();
    for t in &tables {
        let floats: Vec<&str> = t
            .projection
            .iter()
            .map(|p| &t.columns[p.column])
            .filter(|c| c.nan_as_null() && !c.not_null)
            .map(|c| c.name.as_str())
            .collect();
        if !floats.is_empty() {
            warnings.push(format!(
                "table {}: wal2json before 2.6 sends NaN and Infinity in {} as null, which the target \
                 cannot tell from NULL",
                t.name,
                floats.join(", ")
            ));
        }
        let toast: Vec<&str> = t
            .projection
            .iter()
            .map(|p| &t.columns[p.column])
            .filter(|c| c.toastable)
            .map(|c| c.name.as_str())
            .collect();
        if !t.plugins.is_empty() && !t.identity_full && !toast.is_empty() {
            warnings.push(format!(
                "table {}: an UPDATE that leaves a large (TOASTed) value of {} unchanged does not carry \
                 it: the target keeps its value, and apply stops at such a row if the plugins' answer \
                 depends on that value or the row enters the copied subset (REPLICA IDENTITY FULL on \
                 the source avoids both)",
                t.name,
                toast.join(", ")
            ));
        }
    }
    let shown = source.to_string();
    Ok(Checked {
        source_id: SourceId {
            system_identifier: String::new(),
            database,
            shown,
        },
        tables,
        sequences,
        warnings,
        plan,
    })
}

/// Creates the logical slot (wal2json) on a replication connection; with
/// `export`, the connection is kept for its snapshot.
pub async fn create_slot(
    source: &Dsn,
    slot: &str,
    export: bool,
) -> Result<(CreatedSlot, String), StreamError> {
    let mut repl = ReplicationClient::connect(source).await?;
    let ident_rows = repl.simple_query("IDENTIFY_SYSTEM").await?;
    let system = ident_rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default();
    let sql = format!(
        "CREATE_REPLICATION_SLOT {} LOGICAL wal2json (SNAPSHOT '{}')",
        ident(slot),
        if export { "export" } else { "nothing" }
    );
    let rows = repl
        .simple_query(&sql)
        .await
        .map_err(|e| slot_error(e, slot))?;
    let row = rows.first().cloned().unwrap_or_default();
    let consistent_point: Lsn = row
        .get(1)
        .cloned()
        .flatten()
        .unwrap_or_default()
        .parse()
        .map_err(|e: super::lsn::LsnError| StreamError::Setup(e.to_string()))?;
    let snapshot = row.get(2).cloned().flatten();
    Ok((
        CreatedSlot {
            consistent_point,
            snapshot,
            holder: repl,
        },
        system,
    ))
}

fn slot_exists(slot: &str) -> StreamError {
    StreamError::Setup(format!(
        "a replication slot named {slot} already exists on the source (another stream, or one not \
         cleaned up): choose another --slot-name, or remove it with `host stream cleanup` \
         (or pg_drop_replication_slot)"
    ))
}

fn origin_exists(origin: &str) -> StreamError {
    StreamError::Setup(format!(
        "a replication origin named {origin} already exists on the target (another stream, or one \
         not cleaned up): choose another --origin, or remove it with `host stream cleanup`"
    ))
}

fn slot_error(e: ReplicationError, slot: &str) -> StreamError {
    let Some(s) = e.server() else {
        return e.into();
    };
    if s.code == SqlState::DUPLICATE_OBJECT.code() {
        return slot_exists(slot);
    }
    if s.code == SqlState::UNDEFINED_FILE.code() {
        return StreamError::Setup(format!(
            "the source cannot load the wal2json output plugin ({}): install it on the server \
             (Debian: apt install postgresql-15-wal2json)",
            s.message
        ));
    }
    // PostgreSQL 15.19+ refuses an output plugin missing from
    // output_plugin_libraries with insufficient_privilege. The only other
    // privilege this command needs (REPLICATION) is checked when the
    // replication connection starts, so here the code names that refusal.
    if s.code == SqlState::INSUFFICIENT_PRIVILEGE.code() {
        return StreamError::Setup(format!(
            "the source does not allow this role to use the wal2json output plugin ({s}): PostgreSQL \
             15.19 and later only let REPLICATION users create slots with the output plugins listed in \
             output_plugin_libraries (default 'pgoutput, test_decoding'); a superuser adds wal2json: \
             ALTER SYSTEM SET output_plugin_libraries = pgoutput, test_decoding, wal2json (a list, not \
             one quoted string), then SELECT pg_reload_conf() (or ALTER ROLE / ALTER DATABASE ... SET output_plugin_libraries \
             where it is set for this role or database)"
        ));
    }
    e.into()
}

/// Refuses before creating anything when the server restricts output
/// plugins (`output_plugin_libraries`, PostgreSQL 15.19+) and wal2json is
/// not among them. The value read is this session's, so a per-role or
/// per-database setting counts. A role that may not read the setting
/// (neither superuser nor pg_read_all_settings) sees no row here; the
/// slot's creation then refuses with insufficient_privilege, before
/// anything is made (see `slot_error`).
pub async fn check_output_plugin(client: &Client) -> Result<(), StreamError> {
    let row = client
        .query_opt(
            "SELECT setting, source, current_user::text, current_database()::text \
             FROM pg_settings WHERE name = 'output_plugin_libraries'",
            &[],
        )
        .await
        .map_err(|e| StreamError::db("source", "reading output_plugin_libraries", &e))?;
    let Some(row) = row else {
        return Ok(()); // no such setting, or not readable by this role
    };
    let (allowed, source, role, database): (String, String, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let mut names = plugin_list(&allowed);
    if names.iter().any(|n| n == "wal2json") {
        return Ok(());
    }
    // Written as a list: one quoted string would be a single name.
    names.push("wal2json".into());
    let value = names
        .iter()
        .map(|n| {
            if n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                n.clone()
            } else {
                ident(n)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    // Where the value comes from decides where to change it.
    let fix = match source.as_str() {
        "user" => format!(
            "ALTER ROLE {} SET output_plugin_libraries = {value} (it is set for this role)",
            ident(&role)
        ),
        "database" => format!(
            "ALTER DATABASE {} SET output_plugin_libraries = {value} (it is set for this database)",
            ident(&database)
        ),
        "database user" => format!(
            "ALTER ROLE {} IN DATABASE {} SET output_plugin_libraries = {value} \
             (it is set for this role in this database)",
            ident(&role),
            ident(&database)
        ),
        _ => format!(
            "ALTER SYSTEM SET output_plugin_libraries = {value}, then SELECT pg_reload_conf()"
        ),
    };
    Err(StreamError::Setup(format!(
        "the source does not allow the wal2json output plugin: output_plugin_libraries is '{allowed}' \
         (PostgreSQL 15.19 and later only let REPLICATION users create slots with the output plugins \
         listed there); a superuser adds wal2json: {fix}"
    )))
}

/// The names in a list setting as the server splits it: at commas outside
/// double quotes, `""` inside quotes standing for one `"`.
fn plugin_list(value: &str) -> Vec<String> {
    let (mut names, mut name, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                name.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => names.push(std::mem::take(&mut name)),
            c if c.is_whitespace() && !quoted => {}
            c => name.push(c),
        }
    }
    names.push(name);
    names.retain(|n| !n.is_empty());
    names
}

/// Whether the slot's wal2json takes `numeric-data-types-as-string` (2.6+):
/// an unknown option is an error, so asking is the test.
pub async fn numeric_as_string(client: &Client, slot: &str) -> bool {
    client
        .query(
            "SELECT count(*) FROM pg_logical_slot_peek_changes($1, NULL, 1, 'format-version', '2', \
             'numeric-data-types-as-string', '1')",
            &[&slot],
        )
        .await
        .is_ok()
}

/// Creates the replication origin on the target, at the slot's start.
pub async fn create_origin(target: &Dsn, origin: &str, at: Lsn) -> Result<(), StreamError> {
    let client = connect(target, "target").await?;
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_replication_origin WHERE roname = $1",
            &[&origin],
        )
        .await
        .map_err(|e| StreamError::db("target", "looking for the origin", &e))?;
    if exists.is_some() {
        return Err(origin_exists(origin));
    }
    client
        .batch_execute(&format!(
            "SELECT pg_replication_origin_create({0}); SELECT pg_replication_origin_advance({0}, {1})",
            literal(origin),
            literal(&at.to_string())
        ))
        .await
        .map_err(|e| StreamError::db("target", "creating the replication origin", &e))?;
    Ok(())
}

/// The event trigger's function: DDL on tables becomes a transactional
/// logical message in the WAL, so it arrives in order with the data.
const DDL_FUNCTION: &str = r#"
CREATE SCHEMA IF NOT EXISTS host_stream;
CREATE OR REPLACE FUNCTION host_stream.ddl_message() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  IF TG_EVENT = 'sql_drop' THEN
    FOR r IN SELECT * FROM pg_event_trigger_dropped_objects()
             WHERE object_type IN ('table', 'table column') LOOP
      PERFORM pg_logical_emit_message(true, 'host_stream.ddl',
        json_build_object('command', TG_TAG, 'schema', r.schema_name, 'object', r.object_identity)::text);
    END LOOP;
  ELSE
    FOR r IN SELECT * FROM pg_event_trigger_ddl_commands()
             WHERE object_type IN ('table', 'table column') LOOP
      PERFORM pg_logical_emit_message(true, 'host_stream.ddl',
        json_build_object('command', r.command_tag, 'schema', r.schema_name, 'object', r.object_identity)::text);
    END LOOP;
  END IF;
END $$;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'host_stream_ddl') THEN
    CREATE EVENT TRIGGER host_stream_ddl ON ddl_command_end EXECUTE FUNCTION host_stream.ddl_message();
  END IF;
  IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'host_stream_drop') THEN
    CREATE EVENT TRIGGER host_stream_drop ON sql_drop EXECUTE FUNCTION host_stream.ddl_message();
  END IF;
END $$;
"#;

/// The DDL event trigger after [`install_ddl_trigger`].
pub enum DdlTrigger {
    /// The user may not create it (event triggers need a superuser).
    Refused,
    /// It was there already (another stream of this database).
    Existed,
    /// Made now.
    Created,
}

/// Installs the DDL event trigger (once per database; the statements run
/// as one transaction), with a warning when the user may not.
pub async fn install_ddl_trigger(client: &Client) -> Result<DdlTrigger, StreamError> {
    let existed = client
        .query_one(
            "SELECT count(*) = 2 FROM pg_event_trigger \
             WHERE evtname IN ('host_stream_ddl', 'host_stream_drop')",
            &[],
        )
        .await
        .map_err(|e| StreamError::db("source", "looking for the DDL event trigger", &e))?
        .get::<_, bool>(0);
    match client.batch_execute(DDL_FUNCTION).await {
        Ok(()) if existed => Ok(DdlTrigger::Existed),
        Ok(()) => Ok(DdlTrigger::Created),
        Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
            tracing::warn!(
                "source: cannot create the DDL event trigger ({}); DDL is then caught at the next change \
                 of the table it altered",
                describe(&e)
            );
            Ok(DdlTrigger::Refused)
        }
        Err(e) => Err(StreamError::db(
            "source",
            "creating the DDL event trigger",
            &e,
        )),
    }
}

/// Drops the slot if it is there (refusing while a receiver uses it).
pub async fn drop_slot(source: &Dsn, slot: &str) -> Result<bool, StreamError> {
    let client = connect(source, "source").await?;
    let row = client
        .query_opt(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .map_err(|e| StreamError::db("source", "reading the slot", &e))?;
    let Some(row) = row else { return Ok(false) };
    if let Some(pid) = row.get::<_, Option<i32>>(0) {
        return Err(StreamError::Setup(format!(
            "replication slot {slot} is in use (server process {pid}): stop the receive or follow first"
        )));
    }
    client
        .query("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(|e| StreamError::db("source", "dropping the slot", &e))?;
    drop_unused_ddl_trigger(&client).await?;
    Ok(true)
}

/// The DDL trigger serves every stream of its database: dropped with the
/// last one (when no wal2json slot of the database is left).
async fn drop_unused_ddl_trigger(client: &Client) -> Result<(), StreamError> {
    let others = client
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE database = current_database() AND plugin = 'wal2json'",
            &[],
        )
        .await
        .map_err(|e| StreamError::db("source", "reading the slots", &e))?
        .get::<_, i64>(0);
    if others == 0 {
        let _ = client
            .batch_execute(
                "DROP EVENT TRIGGER IF EXISTS host_stream_ddl; DROP EVENT TRIGGER IF EXISTS host_stream_drop; \
                 DROP FUNCTION IF EXISTS host_stream.ddl_message(); DROP SCHEMA IF EXISTS host_stream",
            )
            .await;
    }
    Ok(())
}

/// Drops the origin if it is there (refusing while an apply uses it).
pub async fn drop_origin(target: &Dsn, origin: &str) -> Result<bool, StreamError> {
    let client = connect(target, "target").await?;
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_replication_origin WHERE roname = $1",
            &[&origin],
        )
        .await
        .map_err(|e| StreamError::db("target", "looking for the origin", &e))?;
    if exists.is_none() {
        return Ok(false);
    }
    client
        .query("SELECT pg_replication_origin_drop($1)", &[&origin])
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::OBJECT_IN_USE) {
                StreamError::Setup(format!(
                    "replication origin {origin} is in use by a running apply: stop it first"
                ))
            } else {
                StreamError::db("target", "dropping the origin", &e)
            }
        })?;
    Ok(true)
}

/// Sets each target sequence to the source's value (sequences are not in
/// the WAL stream; at cutover the target must continue where the source is).
pub async fn sync_sequences(
    source: &Dsn,
    target: &Dsn,
    cfg: &StreamConfig,
) -> Result<usize, StreamError> {
    if cfg.sequences.is_empty() {
        return Ok(0);
    }
    let src = connect(source, "source").await?;
    let dst = connect(target, "target").await?;
    for name in &cfg.sequences {
        let row = src
            .query_one(
                &format!(
                    "SELECT last_value, is_called FROM {}",
                    qualified(&cfg.source_schema, name)
                ),
                &[],
            )
            .await
            .map_err(|e| StreamError::db("source", &format!("reading sequence {name}"), &e))?;
        let (value, called): (i64, bool) = (row.get(0), row.get(1));
        dst.query(
            "SELECT setval($1::text::regclass, $2, $3)",
            &[&qualified(&cfg.target_schema, name), &value, &called],
        )
        .await
        .map_err(|e| StreamError::db("target", &format!("setting sequence {name}"), &e))?;
    }
    Ok(cfg.sequences.len())
}

/// Everything `setup` does, in order. What exists already (the slot, the
/// origin) is refused before anything is made; on any failure after the
/// first thing made, everything made is removed again (no half-made stream
/// is left behind).
#[allow(clippy::too_many_arguments)]
pub async fn setup(
    dir: &StreamDir,
    job: &Job,
    job_ref: JobRef,
    source: &Dsn,
    target: &Dsn,
    opts: &SetupOptions,
    plugin_digests: Vec<PluginDigest>,
    checked: Checked,
    export: bool,
) -> Result<(StreamConfig, CreatedSlot), StreamError> {
    if dir.is_set_up() {
        let cfg = dir.config()?;
        return Err(StreamError::Setup(format!(
            "{} already holds a stream (slot {}, origin {}): use it, or remove it first with \
             `host stream cleanup --dir {}`",
            dir.root().display(),
            cfg.slot,
            cfg.origin,
            dir.root().display()
        )));
    }
    let client = connect(source, "source").await?;
    check_output_plugin(&client).await?;
    let slot = client
        .query_opt(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1",
            &[&opts.slot],
        )
        .await
        .map_err(|e| StreamError::db("source", "looking for the slot", &e))?;
    if slot.is_some() {
        return Err(slot_exists(&opts.slot));
    }
    let target_client = connect(target, "target").await?;
    let origin = target_client
        .query_opt(
            "SELECT 1 FROM pg_replication_origin WHERE roname = $1",
            &[&opts.origin],
        )
        .await
        .map_err(|e| StreamError::db("target", "looking for the origin", &e))?;
    if origin.is_some() {
        return Err(origin_exists(&opts.origin));
    }
    let mut made = Made {
        dir: !dir.root().exists(),
        ..Made::default()
    };
    let parts = Parts {
        dir,
        job,
        job_ref,
        source,
        target,
        opts,
        plugin_digests,
        checked,
    };
    match make(&parts, &client, export, &mut made).await {
        Ok(done) => Ok(done),
        Err(e) => {
            made.undo(&parts, &client).await;
            Err(e)
        }
    }
}

/// What [`setup`] works from.
struct Parts<'a> {
    dir: &'a StreamDir,
    job: &'a Job,
    job_ref: JobRef,
    source: &'a Dsn,
    target: &'a Dsn,
    opts: &'a SetupOptions,
    plugin_digests: Vec<PluginDigest>,
    checked: Checked,
}

/// What [`setup`] made so far.
#[derive(Default)]
struct Made {
    /// The stream directory did not exist before.
    dir: bool,
    trigger: bool,
    slot: bool,
    origin: bool,
}

impl Made {
    /// Removes what was made, newest first; each step is tried whatever
    /// the others do (the first failure is what the user sees).
    async fn undo(&self, p: &Parts<'_>, client: &Client) {
        if self.dir {
            let _ = std::fs::remove_dir_all(p.dir.root());
        }
        if self.origin {
            let _ = drop_origin(p.target, &p.opts.origin).await;
        }
        if self.slot {
            let _ = drop_slot_quietly(p.source, &p.opts.slot).await;
        }
        if self.trigger {
            let _ = drop_unused_ddl_trigger(client).await;
        }
    }
}

/// The writes of [`setup`], recording each in `made` as it is done.
async fn make(
    p: &Parts<'_>,
    client: &Client,
    export: bool,
    made: &mut Made,
) -> Result<(StreamConfig, CreatedSlot), StreamError> {
    // The trigger before the slot: DDL from the slot's first position on
    // is in the WAL.
    let ddl_trigger = if p.opts.ddl_trigger {
        let t = install_ddl_trigger(client).await?;
        made.trigger = matches!(t, DdlTrigger::Created);
        (!matches!(t, DdlTrigger::Refused)).then(|| "host_stream_ddl".to_string())
    } else {
        None
    };
    let (created, system) = create_slot(p.source, &p.opts.slot, export).await?;
    made.slot = true;
    let numeric = numeric_as_string(client, &p.opts.slot).await;
    create_origin(p.target, &p.opts.origin, created.consistent_point).await?;
    made.origin = true;
    let cfg = StreamConfig {
        format: super::dir::FORMAT,
        slot: p.opts.slot.clone(),
        origin: p.opts.origin.clone(),
        source: SourceId {
            system_identifier: system,
            ..p.checked.source_id.clone()
        },
        target: p.target.to_string(),
        source_schema: p.job.source.schema.clone(),
        target_schema: p.job.target.schema.clone(),
        start_lsn: created.consistent_point,
        job: p.job_ref.clone(),
        tables: p.checked.tables.clone(),
        whole_schema: p.job.tables.iter().any(|t| t.name == "*"),
        numeric_as_string: numeric,
        plugin_digests: p.plugin_digests.clone(),
        ddl_trigger,
        sequences: p.checked.sequences.clone(),
        tenant: match &p.job.scope {
            crate::policy::DataScope::Tenant(t) => Some(super::dir::StreamTenant {
                name: t.tenant.clone(),
                tables: t
                    .scope
                    .tables
                    .iter()
                    .map(|p| p.as_str().to_string())
                    .collect(),
                rows: t.scope.rows.clone(),
            }),
            crate::policy::DataScope::Everything => None,
        },
    };
    p.dir.write_config(&cfg)?;
    Ok((cfg, created))
}

pub async fn drop_slot_quietly(source: &Dsn, slot: &str) -> Result<(), StreamError> {
    // A slot's creating connection may still hold it for a moment.
    for _ in 0..20 {
        match drop_slot(source, slot).await {
            Ok(_) => return Ok(()),
            Err(StreamError::Setup(_)) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
