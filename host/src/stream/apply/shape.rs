//! Changes into statements, through the job's plugins.
//!
//! v0.1 plugins see rows, not changes, so each change is adapted:
//! - the new row of an INSERT or UPDATE goes through the table's whole
//!   chain (transformers and where-filters, in the job's order), as `host
//!   xmat` would send that row: kept, it is written; dropped by an UPDATE,
//!   the row has left the subset and its old key is deleted;
//! - the old key of an UPDATE or DELETE goes through the chain's
//!   transformers only, as a row whose other columns are NULL, so an
//!   anonymized key column is transformed exactly as it was when the row
//!   was inserted. That only holds for plugins whose key output depends on
//!   the key alone, deterministically: every INSERT and every UPDATE that
//!   keeps its key checks it (the key from the whole row must equal the key
//!   from the key alone), and a plugin that fails the check stops apply
//!   by name instead of leaving rows the target can never find again.
//!   A tenant's stream sends no old key to its plugins (it may be another
//!   tenant's row's): its keys are used as they are, and a plugin that
//!   changes a key column stops apply.
//! - a column wal2json leaves out of an UPDATE (an unchanged TOASTed value)
//!   is left as it is on the target; with REPLICA IDENTITY FULL the old row
//!   supplies it instead. Plugins get NULL for it, and the row again with a
//!   stand-in value: an answer that changes with it stops apply (the
//!   plugins depend on a value the stream does not have).
//! - the job's `where` and `select` run first, as in `host xmat`, on the
//!   target's server ([`super::expr`]); a row `where` leaves out is a
//!   dropped row.
//!
//! Changes are batched across transactions, per table, before each plugin
//! call or expression query (a window of up to [`WINDOW_CHANGES`] changes).

use std::collections::HashMap;
use std::sync::Arc;

use super::super::dir::StreamConfig;
use super::super::tables::{self, StreamTable, TableIndex};
use super::super::wal2json::{self, Message, Op as RowOp, Value};
use super::chains::{Chains, Keys, RowIn, RowOut};
use super::expr::Evaluator;
use super::statements::{Params, Shape, update_columns_iter};
use super::tenancy::{AccountError, Batch, Tenancy};
use super::{ChangeError, ErrorKind, Expect, Txn, Unit, Work};
use crate::plugin::{Plugin, PluginError, Table, thread_cpu};
use crate::policy::Pattern;

/// Changes per window (and per plugin call at most).
pub const WINDOW_CHANGES: usize = 4096;
/// Bytes of spool lines per window.
pub const WINDOW_BYTES: usize = 4 * 1024 * 1024;

/// A window's spool lines, in one buffer (a line is only ever appended,
/// then read until the window is cleared): no allocation per line, and the
/// buffer is reused by the next window.
#[derive(Debug, Default)]
pub struct Lines {
    bytes: Vec<u8>,
    /// Where each line ends in `bytes` (it starts where the previous one ends).
    ends: Vec<usize>,
}

impl Lines {
    /// Appends a line; its index is the `len()` before.
    pub fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Line `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Empties it, keeping its buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}

/// One entry of a window, in spool order.
#[derive(Debug)]
pub enum Item {
    Begin(Arc<Txn>),
    /// A line of the spool (index into the window's lines).
    Line(usize),
    Commit(Arc<Txn>),
}

/// The DDL messages the source's event trigger writes (see `setup`).
pub const DDL_PREFIX: &str = "host_stream.ddl";

/// What a change to a table the stream does not know means.
#[derive(Debug, Clone)]
pub enum Unknown {
    /// The job names its tables: another table is none of its business.
    Ignored,
    /// The job copies every table of the schema (`*`): it is new (DDL).
    New,
    /// A tenant's `*`: new if in its scope (`schema.table` matches one of
    /// `tables`), another tenant's (ignored) if not.
    NewInScope {
        schema: String,
        tables: Vec<Pattern>,
    },
}

impl Unknown {
    /// As the stream was set up.
    pub fn of(cfg: &StreamConfig) -> Unknown {
        match (&cfg.tenant, cfg.whole_schema) {
            (_, false) => Unknown::Ignored,
            (None, true) => Unknown::New,
            (Some(t), true) => Unknown::NewInScope {
                schema: cfg.source_schema.clone(),
                tables: t.tables.iter().map(|p| Pattern::new(p)).collect(),
            },
        }
    }

    fn is_new(&self, table: &str) -> bool {
        match self {
            Unknown::Ignored => false,
            Unknown::New => true,
            Unknown::NewInScope { schema, tables } => {
                let name = format!("{schema}.{table}");
                tables.iter().any(|p| p.matches(&name))
            }
        }
    }
}

/// Turns windows of changes into units of work.
pub struct Shaper {
    tables: Arc<Vec<StreamTable>>,
    index: TableIndex,
    /// What a change to a table the stream does not know means.
    unknown: Unknown,
    /// wal2json writes NaN/Infinity as text (2.6+); before, as null.
    numeric_as_string: bool,
    chains: Vec<Option<Chains>>,
    /// For tables with `where` or `select` expressions.
    evaluator: Option<Evaluator>,
    /// Scratch: the change's columns mapped onto the table's.
    mapping: Vec<usize>,
    /// Per table: its key's positions in the projection.
    key_pos: Vec<Vec<usize>>,
    /// Per table: copied as it is (every column in order, no expression),
    /// so a change's new row is its projection.
    plain: Vec<bool>,
    /// The last failure was a plugin failing on a whole batch (see
    /// [`super::chains::Refusal::whole_batch`]).
    whole_batch_failed: bool,
    /// Each table's plugins, for the audit log.
    plugins: Vec<Vec<Plugin>>,
    /// How old keys find their rows (as they are, for a tenant).
    keys: Keys,
    tenancy: Arc<Tenancy>,
}

impl Shaper {
    /// Instantiates each table's plugins (`plugins[i]` for table `i`) and
    /// announces the table to them. Tables with expressions need an
    /// [`Evaluator`] (prepared for them).
    pub fn new(
        tables: Arc<Vec<StreamTable>>,
        source_schema: &str,
        unknown: Unknown,
        numeric_as_string: bool,
        plugins: &[Vec<Plugin>],
        evaluator: Option<Evaluator>,
        tenancy: Arc<Tenancy>,
    ) -> Result<Shaper, Box<(String, PluginError)>> {
        let keys = match tenancy.tenant {
            Some(_) => Keys::AsTheyAre,
            None => Keys::Transformed,
        };
        let mut chains = Vec::with_capacity(tables.len());
        for (t, ps) in tables.iter().zip(plugins) {
            if ps.is_empty() {
                chains.push(None);
                continue;
            }
            let announce = Table {
                schema: source_schema.to_string(),
                name: t.name.clone(),
                columns: t.plugin_columns(),
            };
            chains.push(Some(
                Chains::new(ps, &announce, keys).map_err(|e| Box::new((t.name.clone(), e)))?,
            ));
        }
        Ok(Shaper {
            index: TableIndex::new(&tables),
            key_pos: tables.iter().map(|t| t.key_in_projection()).collect(),
            plain: tables
                .iter()
                .map(|t| {
                    !t.has_expressions()
                        && t.projection.len() == t.columns.len()
                        && t.projection.iter().enumerate().all(|(i, p)| p.column == i)
                })
                .collect(),
            tables,
            unknown,
            numeric_as_string,
            chains,
            evaluator,
            mapping: Vec::new(),
            whole_batch_failed: false,
            plugins: plugins.to_vec(),
            keys,
            tenancy,
        })
    }

    /// The units for one window. On a bad change (DDL, a plugin's reject or
    /// failure, a value that cannot be written) the units end with a
    /// [`Unit::Fail`] for that change's transaction. A plugin that failed
    /// on a batch holding several transactions' rows (a trap, a limit) does
    /// not say on which row: the failure then names the first one's
    /// transaction and asks for the window again one transaction at a time.
    /// `open` is the transaction already open when the window starts.
    pub fn shape(&mut self, open: Option<Arc<Txn>>, items: &[Item], lines: &Lines) -> Vec<Unit> {
        let mut failure: Option<(usize, ChangeError)> = None;
        let mut parsed: Vec<Parsed<'_>> = Vec::new();
        let mut txn: Option<Arc<Txn>> = open;
        for (i, item) in items.iter().enumerate() {
            match item {
                Item::Begin(t) => txn = Some(t.clone()),
                Item::Commit(_) => {}
                Item::Line(l) => {
                    let t = txn.clone().expect("lines come inside a transaction");
                    match self.parse(lines.get(*l), &t) {
                        Ok(Some(p)) => parsed.push(Parsed { item: i, txn: t, p }),
                        Ok(None) => {}
                        Err(e) => {
                            failure = Some((i, e));
                            break;
                        }
                    }
                }
            }
        }
        let mut outcomes: Vec<RowOut> = parsed.iter().map(|_| RowOut::default()).collect();
        let mut narrow = None;
        self.whole_batch_failed = false;
        if let Err((at, e)) = self.run_tables(&parsed, &mut outcomes) {
            let item = parsed[at].item;
            if failure.as_ref().is_none_or(|(i, _)| item < *i) {
                // Every transaction in the window, up to the last one's end.
                let last = items
                    .iter()
                    .filter_map(|it| match it {
                        Item::Begin(t) | Item::Commit(t) => Some(t.end_lsn),
                        Item::Line(_) => None,
                    })
                    .max();
                let failing = parsed[at].txn.end_lsn;
                narrow = last
                    .filter(|&l| self.whole_batch_failed && l != failing)
                    .map(|l| l.max(failing));
                failure = Some((item, e));
            }
        }
        let stop_at = failure.as_ref().map_or(items.len(), |(i, _)| *i);

        let mut units = Vec::new();
        let mut work: Vec<Work> = Vec::new();
        let mut next = 0;
        for (i, item) in items.iter().enumerate().take(stop_at) {
            match item {
                Item::Begin(t) => units.push(Unit::Begin(t.clone())),
                Item::Commit(t) => {
                    if !work.is_empty() {
                        units.push(Unit::Work(std::mem::take(&mut work)));
                    }
                    units.push(Unit::Commit(t.clone()));
                }
                Item::Line(_) => {
                    while next < parsed.len() && parsed[next].item < i {
                        next += 1;
                    }
                    if next < parsed.len() && parsed[next].item == i {
                        self.statements(&parsed[next], &outcomes[next], &mut work);
                    }
                }
            }
        }
        if !work.is_empty() {
            units.push(Unit::Work(work));
        }
        if let Some((_, e)) = failure {
            units.push(Unit::Fail(e, narrow));
        }
        units
    }

    /// A line as a change of a streamed table (`None`: not ours).
    fn parse<'a>(&mut self, line: &'a [u8], txn: &Txn) -> Result<Option<Change<'a>>, ChangeError> {
        let err = |kind, lsn, table: Option<&str>, what: String| ChangeError {
            xid: txn.xid,
            commit_lsn: txn.commit_lsn,
            lsn,
            table: table.map(str::to_string),
            plugin: None,
            kind,
            what,
        };
        let text = std::str::from_utf8(line).map_err(|e| {
            err(
                ErrorKind::Data,
                txn.commit_lsn,
                None,
                format!("the spool holds invalid UTF-8: {e}"),
            )
        })?;
        let msg = wal2json::parse(text)
            .map_err(|e| err(ErrorKind::Data, txn.commit_lsn, None, e.to_string()))?;
        match msg {
            Message::Begin(_) | Message::Commit(_) => Ok(None),
            Message::Message {
                prefix,
                content,
                lsn,
                ..
            } => {
                if prefix == DDL_PREFIX {
                    return Err(err(
                        ErrorKind::Ddl,
                        lsn,
                        None,
                        format!(
                            "DDL on the source: {content}. The stream does not replay schema changes; \
                             apply stopped before this transaction so the target does not diverge \
                             (make the same change on the target and run `host stream setup` again, \
                             or re-clone)"
                        ),
                    ));
                }
                Ok(None)
            }
            Message::Truncate { lsn, table, .. } => match self.table(&table) {
                Some(t) => Ok(Some(Change::Truncate { table: t, lsn })),
                None if self.unknown.is_new(&table) => Err(err(
                    ErrorKind::Ddl,
                    lsn,
                    Some(&table),
                    "a table the stream does not know (created or renamed after setup)".into(),
                )),
                None => Ok(None),
            },
            Message::Change(c) => {
                let Some(t) = self.table(&c.table) else {
                    if self.unknown.is_new(&c.table) {
                        return Err(err(
                            ErrorKind::Ddl,
                            c.lsn,
                            Some(&c.table),
                            "a table the stream does not know (created or renamed after setup)"
                                .into(),
                        ));
                    }
                    return Ok(None);
                };
                let table = &self.tables[t];
                let fail = |kind, what: String| err(kind, c.lsn, Some(&table.name), what);
                let ddl = |m: tables::Mismatch| {
                    fail(
                        ErrorKind::Ddl,
                        format!(
                            "{m}: the table's definition changed on the source (DDL); the stream does \
                             not replay schema changes, so apply stopped before this transaction"
                        ),
                    )
                };
                // The old key, straight into `key` (in `table.key` order;
                // `Null` until found: a key column without a value fails
                // below). Only REPLICA IDENTITY FULL keeps the whole old row,
                // by column: it supplies unchanged TOASTed values.
                let mut key: Vec<Value<'a>> = vec![Value::Null; table.key.len()];
                let mut old: Vec<Option<Value<'a>>> = Vec::new();
                if c.op != RowOp::Insert {
                    if table.identity_full {
                        old = vec![None; table.columns.len()];
                    }
                    for v in c.identity {
                        let idx = table.columns.iter().position(|d| d.name == v.name).ok_or_else(|| {
                            ddl(tables::Mismatch(format!(
                                "the old key has column {}, which is not in the table as it was at setup",
                                v.name
                            )))
                        })?;
                        if table.identity_full {
                            old[idx] = Some(v.value);
                        } else if let Some(j) = table.key.iter().position(|&k| k == idx) {
                            key[j] = v.value;
                        }
                    }
                    if table.identity_full {
                        for (j, &k) in table.key.iter().enumerate() {
                            key[j] = old[k].clone().unwrap_or(Value::Null);
                        }
                    }
                }
                // The new row by column; `None`: not sent (unchanged TOAST),
                // which the whole old row supplies with REPLICA IDENTITY FULL.
                let mut full: Vec<Option<Value<'a>>> = Vec::new();
                let mut new: Vec<Option<Value<'a>>> = Vec::new();
                let mut missing = Vec::new();
                let key_pos = &self.key_pos[t];
                if c.op != RowOp::Delete {
                    tables::match_columns(table, c.op, &c.columns, &mut self.mapping)
                        .map_err(ddl)?;
                    full = vec![None; table.columns.len()];
                    for (v, &idx) in c.columns.into_iter().zip(&self.mapping) {
                        full[idx] = Some(v.value);
                    }
                    if table.identity_full {
                        for (f, o) in full.iter_mut().zip(&old) {
                            if f.is_none() {
                                f.clone_from(o);
                            }
                        }
                    }
                    if self.plain[t] {
                        // Every column, in order, no expressions: the row is
                        // the projection (and `full` is not needed).
                        new = std::mem::take(&mut full);
                    } else {
                        new = table
                            .projection
                            .iter()
                            .map(|p| full[p.column].clone())
                            .collect();
                        if !table.has_expressions() {
                            full.clear();
                        }
                    }
                    missing = (0..new.len()).filter(|&p| new[p].is_none()).collect();
                    if c.op == RowOp::Insert {
                        for (j, &p) in key_pos.iter().enumerate() {
                            key[j] = new[p].clone().unwrap_or(Value::Null);
                        }
                    }
                }
                if let Some(j) = key.iter().position(|v| matches!(v, Value::Null)) {
                    return Err(fail(
                        ErrorKind::Data,
                        format!(
                            "key column {} has no value in the {}",
                            table.columns[table.key[j]].name,
                            c.op.as_str()
                        ),
                    ));
                }
                if !self.numeric_as_string {
                    for (p, v) in new.iter().enumerate() {
                        let def = &table.columns[table.projection[p].column];
                        if matches!(v, Some(Value::Null)) && def.not_null && def.nan_as_null() {
                            return Err(fail(
                                ErrorKind::Data,
                                format!(
                                    "column {} is NOT NULL but arrived as null: wal2json before 2.6 writes \
                                     NaN and Infinity of {} columns as null, so the value cannot be \
                                     copied exactly (upgrade wal2json on the source to 2.6 or later)",
                                    def.name, def.type_sql
                                ),
                            ));
                        }
                    }
                }
                let key_changed = c.op == RowOp::Update && {
                    key_pos.iter().zip(&key).any(|(&p, k)| match &new[p] {
                        Some(v) => v != k,
                        None => false,
                    })
                };
                Ok(Some(Change::Row(Row {
                    table: t,
                    op: c.op,
                    lsn: c.lsn,
                    full,
                    new,
                    missing,
                    key,
                    key_changed,
                })))
            }
        }
    }

    fn table(&self, name: &str) -> Option<usize> {
        self.index.get(name)
    }

    /// Runs each table's expressions and plugins over the window's rows,
    /// batched per table. Fails with the first change (in window order)
    /// that cannot go through.
    fn run_tables(
        &mut self,
        parsed: &[Parsed<'_>],
        out: &mut [RowOut],
    ) -> Result<(), (usize, ChangeError)> {
        let mut per_table: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, p) in parsed.iter().enumerate() {
            if let Change::Row(r) = &p.p
                && self.tables[r.table].is_shaped()
            {
                per_table.entry(r.table).or_default().push(i);
            }
        }
        let mut first: Option<(usize, ChangeError)> = None;
        let mut tables: Vec<_> = per_table.into_iter().collect();
        tables.sort();
        for (t, changes) in tables {
            if let Err(e) = self.run_table(t, parsed, &changes, out)
                && first.as_ref().is_none_or(|(i, _)| e.0 < *i)
            {
                first = Some(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn run_table(
        &mut self,
        t: usize,
        parsed: &[Parsed<'_>],
        changes: &[usize],
        out: &mut [RowOut],
    ) -> Result<(), (usize, ChangeError)> {
        let table = &self.tables[t];
        let rows: Vec<&Row<'_>> = changes
            .iter()
            .map(|&i| match &parsed[i].p {
                Change::Row(r) => r,
                Change::Truncate { .. } => unreachable!("only rows are batched"),
            })
            .collect();
        let refuse = |n: usize, plugin: Option<String>, kind: ErrorKind, what: String| {
            let i = changes[n];
            (
                i,
                ChangeError {
                    xid: parsed[i].txn.xid,
                    commit_lsn: parsed[i].txn.commit_lsn,
                    lsn: rows[n].lsn,
                    table: Some(table.name.clone()),
                    plugin: plugin.filter(|p| !p.is_empty()),
                    kind,
                    what,
                },
            )
        };
        // `where` and `select` first, as the source's SELECT does in xmat.
        let mut evaluated: Vec<Option<Vec<Option<String>>>> = vec![None; rows.len()];
        if table.has_expressions() {
            let with_new: Vec<usize> = (0..rows.len())
                .filter(|&n| rows[n].op != RowOp::Delete)
                .collect();
            if let Some(&n) = with_new.iter().find(|&&n| !rows[n].missing.is_empty()) {
                return Err(refuse(
                    n,
                    None,
                    ErrorKind::Data,
                    "the UPDATE leaves a large (TOASTed) value unchanged, which wal2json does not send,                      and the job's `where`/`select` would see NULL instead; set REPLICA IDENTITY FULL on                      the source table so the old row carries it"
                        .into(),
                ));
            }
            let input: Vec<Vec<Option<&str>>> = with_new
                .iter()
                .map(|&n| {
                    rows[n]
                        .full
                        .iter()
                        .map(|v| v.as_ref().and_then(Value::as_text))
                        .collect()
                })
                .collect();
            let ev = self
                .evaluator
                .as_mut()
                .expect("an evaluator for tables with expressions");
            let result = ev
                .eval(t, table, &input)
                .map_err(|e| refuse(with_new[0], None, ErrorKind::Target, e))?;
            for (&n, r) in with_new.iter().zip(result) {
                match r {
                    Some(v) => evaluated[n] = Some(v),
                    None => out[changes[n]].dropped = true,
                }
            }
        }
        let Some(chains) = self.chains[t].as_mut() else {
            for (n, e) in evaluated.into_iter().enumerate() {
                out[changes[n]].new = e;
            }
            return Ok(());
        };
        let input: Vec<RowIn<'_>> = rows
            .iter()
            .enumerate()
            .map(|(n, r)| RowIn {
                // A row `where` left out only has its old key left to transform.
                op: if out[changes[n]].dropped {
                    RowOp::Delete
                } else {
                    r.op
                },
                new: match &evaluated[n] {
                    Some(v) => v.iter().map(|x| x.as_deref()).collect(),
                    None => r
                        .new
                        .iter()
                        .map(|v| v.as_ref().and_then(Value::as_text))
                        .collect(),
                },
                missing: &r.missing,
                key: r.key.iter().map(Value::as_text).collect(),
                key_changed: r.key_changed,
            })
            .collect();
        // What reaches the plugins: the new rows, and (unless a tenant's)
        // every old key.
        let records_in = match self.keys {
            Keys::Transformed => input.len(),
            Keys::AsTheyAre => input.iter().filter(|r| r.op != RowOp::Delete).count(),
        };
        if records_in == 0 {
            return Ok(());
        }
        let plugins = &self.plugins[t];
        let first_plugin = || plugins.first().map(|p| p.name().to_string());
        let account = |e: AccountError| {
            let kind = match e {
                AccountError::Cpu(_) => ErrorKind::PluginFailed,
                AccountError::Audit(_) => ErrorKind::Target,
            };
            refuse(0, first_plugin(), kind, e.to_string())
        };
        self.tenancy.before(&table.name, plugins).map_err(account)?;
        let mut results = vec![RowOut::default(); rows.len()];
        let started = thread_cpu();
        let ran = chains.run(table, &input, &mut results);
        let batch = Batch {
            table: &table.name,
            plugins,
            usage: chains.take_usage(),
            cpu: thread_cpu().saturating_sub(started),
            records_in,
            results: &results,
        };
        let accounted = self.tenancy.after(batch, ran.as_ref().err());
        if let Err(r) = ran {
            let failed = refuse(r.index, Some(r.plugin), r.kind, r.what);
            self.whole_batch_failed = r.whole_batch;
            return Err(failed);
        }
        accounted.map_err(account)?;
        for (n, r) in results.into_iter().enumerate() {
            let o = &mut out[changes[n]];
            o.dropped |= r.dropped;
            o.new = r.new;
            o.key = r.key;
        }
        Ok(())
    }

    /// The statements for one change.
    fn statements(&self, parsed: &Parsed<'_>, outcome: &RowOut, work: &mut Vec<Work>) {
        let row = match &parsed.p {
            Change::Truncate { table, lsn } => {
                // One source TRUNCATE of several tables comes as consecutive messages.
                if let Some(Work::Truncate { tables, lsn: l, .. }) = work.last_mut()
                    && *l == *lsn
                {
                    if !tables.contains(table) {
                        tables.push(*table);
                    }
                } else {
                    work.push(Work::Truncate {
                        tables: vec![*table],
                        lsn: *lsn,
                        txn: parsed.txn.clone(),
                    });
                }
                return;
            }
            Change::Row(r) => r,
        };
        let table = &self.tables[row.table];
        let partial = table.filter.is_some() || !table.plugins.is_empty();
        // Values after plugins (or as they came), and the target's old key
        // (read in place: this runs for every change).
        let value = |i: usize| -> Option<&str> {
            match &outcome.new {
                Some(v) => v[i].as_deref(),
                None => row.new[i].as_ref().and_then(Value::as_text),
            }
        };
        let n_values = outcome.new.as_ref().map_or(row.new.len(), Vec::len);
        let values = || (0..n_values).map(value);
        let key_at = |j: usize| -> Option<&str> {
            match &outcome.key {
                Some(k) => k[j].as_deref(),
                None => row.key[j].as_text(),
            }
        };
        let key_len = outcome.key.as_ref().map_or(row.key.len(), Vec::len);
        let key = || (0..key_len).map(key_at);
        let push = |work: &mut Vec<Work>, shape: Shape, params: Params, expect: Expect| {
            work.push(Work::Row(super::Op {
                table: row.table,
                shape,
                params,
                expect,
                lsn: row.lsn,
                txn: parsed.txn.clone(),
            }));
        };
        // Each statement's values in one buffer sized for them at once.
        let bytes =
            |v: &mut dyn Iterator<Item = Option<&str>>| v.map(|x| x.map_or(0, str::len)).sum();
        match (row.op, outcome.dropped) {
            (RowOp::Insert, true) => {}
            (RowOp::Insert, false) => {
                let mut p = Params::with_capacity(n_values, bytes(&mut values()));
                values().for_each(|v| p.push(v));
                push(work, Shape::Insert, p, Expect::One);
            }
            (RowOp::Update, false) => {
                let missing = !row.missing.is_empty();
                if partial && !missing {
                    let mut p = Params::with_capacity(
                        n_values + key_len,
                        bytes(&mut values()) + bytes(&mut key()),
                    );
                    values().for_each(|v| p.push(v));
                    key().for_each(|v| p.push(v));
                    push(work, Shape::Upsert, p, Expect::One);
                } else {
                    let present: Option<Vec<usize>> = missing
                        .then(|| (0..n_values).filter(|i| !row.missing.contains(i)).collect());
                    let cols = || update_columns_iter(table, present.as_deref());
                    let mut p = Params::with_capacity(
                        cols().count() + key_len,
                        bytes(&mut cols().map(value)) + bytes(&mut key()),
                    );
                    cols().for_each(|i| p.push(value(i)));
                    key().for_each(|v| p.push(v));
                    // Without the whole row, a row that is not on the target
                    // (entering the subset) cannot be inserted: Expect::One
                    // stops apply there rather than lose it.
                    let expect = if missing {
                        Expect::OneKeepingToast
                    } else {
                        Expect::One
                    };
                    push(work, Shape::Update(present), p, expect);
                }
            }
            (RowOp::Update, true) | (RowOp::Delete, _) => {
                let mut p = Params::with_capacity(key_len, bytes(&mut key()));
                key().for_each(|v| p.push(v));
                let expect = if partial {
                    Expect::AtMostOne
                } else {
                    Expect::One
                };
                push(work, Shape::Delete, p, expect);
            }
        }
    }
}

/// A parsed change with where it came from.
struct Parsed<'a> {
    item: usize,
    txn: Arc<Txn>,
    p: Change<'a>,
}

enum Change<'a> {
    Row(Row<'a>),
    Truncate {
        table: usize,
        lsn: super::super::Lsn,
    },
}

struct Row<'a> {
    table: usize,
    op: RowOp,
    lsn: super::super::Lsn,
    /// Every column of the new row, for `where`/`select` (empty for other tables).
    full: Vec<Option<Value<'a>>>,
    /// The new row in projection order (`None`: not sent, an unchanged TOASTed value).
    new: Vec<Option<Value<'a>>>,
    /// Projection positions of the new row wal2json did not send.
    missing: Vec<usize>,
    /// The source key: old (UPDATE, DELETE) or new (INSERT).
    key: Vec<Value<'a>>,
    key_changed: bool,
}

#[cfg(test)]
mod tests {
    use super::Lines;

    #[test]
    fn lines_share_one_buffer_and_come_back_whole() {
        let mut l = Lines::default();
        for line in ["{\"action\":\"I\"}", "", "é\"x"] {
            l.push(line.as_bytes());
        }
        assert_eq!(l.len(), 3);
        assert_eq!(
            (l.get(0), l.get(1), l.get(2)),
            (&b"{\"action\":\"I\"}"[..], &b""[..], "é\"x".as_bytes())
        );
        let capacity = l.bytes.capacity();
        l.clear();
        assert!(l.is_empty());
        l.push(b"next");
        assert_eq!(l.get(0), b"next");
        assert_eq!(l.bytes.capacity(), capacity, "the buffer is kept");
    }
}
