//! One table's plugin chains over a batch of changes (see `shape` for the
//! rules). Two chains per table: every plugin for new rows, the
//! transformers alone for old keys.

use super::super::tables::StreamTable;
use super::super::wal2json::Op as RowOp;
use super::ErrorKind;
use crate::audit::{self, Limit, Outcome};
use crate::copy::text;
use crate::plugin::chain::{BatchOutput, RowChain};
use crate::plugin::{Kind, Plugin, PluginError, Table, Usage};

/// What stands in, in a second pass, for a value wal2json did not send:
/// if the plugins' answer changes with it, their answer depends on a value
/// the stream does not have.
const UNSENT: &str = "\u{1}host: an unchanged TOASTed value\u{1}";

/// One change, as the chains see it.
pub struct RowIn<'a> {
    pub op: RowOp,
    /// The new row in projection order (INSERT, UPDATE).
    pub new: Vec<Option<&'a str>>,
    /// Projection positions wal2json did not send (unchanged TOAST).
    pub missing: &'a [usize],
    /// The source key: old (UPDATE, DELETE) or new (INSERT).
    pub key: Vec<Option<&'a str>>,
    pub key_changed: bool,
}

/// What the chains made of it.
#[derive(Debug, Default, Clone)]
pub struct RowOut {
    /// The new row was dropped (by a where-filter, or a transformer).
    pub dropped: bool,
    /// The new row as the plugins returned it.
    pub new: Option<Vec<Option<String>>>,
    /// The target's key, transformed.
    pub key: Option<Vec<Option<String>>>,
}

/// Why a change cannot go through (index into the batch).
pub struct Refusal {
    pub index: usize,
    pub plugin: String,
    pub kind: ErrorKind,
    pub what: String,
    /// The plugin failed on the batch as a whole (a trap, a limit): `index`
    /// is its first row, not necessarily the one it failed on.
    pub whole_batch: bool,
    /// How the audit log records it.
    pub audit: (Outcome, Option<Limit>),
}

/// How old keys (of UPDATEs and DELETEs) find their target rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// Through the chain's transformers, as the rows' keys went.
    Transformed,
    /// As they are: the plugins must leave key columns alone (a tenant's
    /// stream, whose plugins see no row outside its scope, not even a key).
    AsTheyAre,
}

/// A table's chains.
pub struct Chains {
    full: RowChain,
    keys: Option<RowChain>,
    /// The key chain's first batch ran twice: a plugin whose key output
    /// changes from one call to the next (a counter, a clock, randomness)
    /// is caught there, even where the two chains happen to agree.
    probed: bool,
    /// The transformers' names, for messages.
    key_plugins: String,
    /// Keys are not transformed (a tenant's stream): each row's key must
    /// come out of the plugins as it went in.
    keys_kept: bool,
    /// What the instances used since [`Chains::take_usage`] (for the audit log).
    usage: Usage,
}

impl Chains {
    /// Instantiates the plugins and announces the table to them. For a
    /// tenant (`keys` is [`Keys::AsTheyAre`]) no old key goes through the
    /// plugins: an old key may be another tenant's row's.
    pub fn new(plugins: &[Plugin], table: &Table, keys: Keys) -> Result<Chains, PluginError> {
        let mut full = RowChain::new(plugins)?;
        full.begin_table(table)?;
        let transformers: Vec<Plugin> = plugins
            .iter()
            .filter(|p| p.kind() == Kind::RowTransformer)
            .cloned()
            .collect();
        let keys_kept = keys == Keys::AsTheyAre && !transformers.is_empty();
        let keys = if transformers.is_empty() || keys_kept {
            None
        } else {
            let mut k = RowChain::new(&transformers)?;
            k.begin_table(table)?;
            Some(k)
        };
        Ok(Chains {
            full,
            keys,
            probed: false,
            keys_kept,
            usage: Usage::default(),
            key_plugins: transformers
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// What the instances used since the last call.
    pub fn take_usage(&mut self) -> Usage {
        std::mem::take(&mut self.usage)
    }

    /// Runs a batch (`rows[i]` fills `out[i]`).
    pub fn run(
        &mut self,
        table: &StreamTable,
        rows: &[RowIn<'_>],
        out: &mut [RowOut],
    ) -> Result<(), Refusal> {
        let with_new: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].op != RowOp::Delete)
            .collect();
        let result = self
            .full
            .run(&encode(&with_new, |i| rows[i].new.clone()), with_new.len());
        let outcome = outcomes(tally(&mut self.usage, result), "")?;
        for (n, o) in outcome.into_iter().enumerate() {
            let i = with_new[n];
            match o {
                None => out[i].dropped = true,
                Some(f) => out[i].new = Some(f),
            }
        }
        self.check_unsent(rows, &with_new, out)?;
        self.keys(table, rows, out)
    }

    /// Rows with values wal2json did not send go through again with a
    /// stand-in for those values: the answer must not change.
    fn check_unsent(
        &mut self,
        rows: &[RowIn<'_>],
        with_new: &[usize],
        out: &[RowOut],
    ) -> Result<(), Refusal> {
        let partial: Vec<usize> = with_new
            .iter()
            .copied()
            .filter(|&i| !rows[i].missing.is_empty())
            .collect();
        if partial.is_empty() {
            return Ok(());
        }
        let buf = encode(&partial, |i| {
            let mut v = rows[i].new.clone();
            for &m in rows[i].missing {
                v[m] = Some(UNSENT);
            }
            v
        });
        let again = outcomes(
            tally(&mut self.usage, self.full.run(&buf, partial.len())),
            "",
        )
        .map_err(|r| Refusal {
            index: partial[r.index],
            ..r
        })?;
        for (n, second) in again.into_iter().enumerate() {
            let i = partial[n];
            let first = &out[i].new;
            let same = match (first, &second) {
                (None, None) => true,
                (Some(a), Some(b)) => (0..a.len())
                    .filter(|p| !rows[i].missing.contains(p))
                    .all(|p| a[p] == b[p]),
                _ => false,
            };
            if !same {
                return Err(Refusal {
                    index: i,
                    plugin: String::new(),
                    kind: ErrorKind::Data,
                    whole_batch: false,
                    // The host refused what the plugin answered.
                    audit: (Outcome::Refused, None),
                    what: "the UPDATE leaves a large (TOASTed) value unchanged, which wal2json does \
                           not send, and the plugins' answer depends on it; set REPLICA IDENTITY FULL \
                           on the source table so the old row carries it"
                        .into(),
                });
            }
        }
        Ok(())
    }

    /// Old keys (and INSERTs' keys, to check them) through the transformers.
    fn keys(
        &mut self,
        table: &StreamTable,
        rows: &[RowIn<'_>],
        out: &mut [RowOut],
    ) -> Result<(), Refusal> {
        let key_pos = table.key_in_projection();
        let Some(keys) = self.keys.as_mut() else {
            return match self.keys_kept {
                true => self.check_keys_kept(table, &key_pos, rows, out),
                false => Ok(()),
            };
        };
        let all: Vec<usize> = (0..rows.len()).collect();
        let buf = encode(&all, |i| {
            let mut row = vec![None; table.projection.len()];
            for (k, &p) in rows[i].key.iter().zip(&key_pos) {
                row[p] = *k;
            }
            row
        });
        const ON_KEY: &str = " on the old key (given as a row whose other columns are NULL)";
        let keyed = outcomes(tally(&mut self.usage, keys.run(&buf, rows.len())), ON_KEY)?;
        if !self.probed {
            self.probed = true;
            let again = outcomes(tally(&mut self.usage, keys.run(&buf, rows.len())), ON_KEY)?;
            if let Some(i) = (0..rows.len()).find(|&i| keyed[i] != again[i]) {
                let shown = |r: &Option<Vec<Option<String>>>| match r {
                    None => "(dropped)".to_string(),
                    Some(f) => format!(
                        "{:?}",
                        key_pos
                            .iter()
                            .map(|&p| f[p].as_deref().unwrap_or("NULL"))
                            .collect::<Vec<_>>()
                    ),
                };
                return Err(Refusal {
                    index: i,
                    plugin: self.key_plugins.clone(),
                    kind: ErrorKind::PluginFailed,
                    whole_batch: false,
                    // The host refused what the plugin answered.
                    audit: (Outcome::Refused, None),
                    what: format!(
                        "key column {} came out as {}, then as {} from the same key: a plugin's output \
                         for a key column must depend on that column only, deterministically (no clock, \
                         no randomness, no counter), or rows could not be found again to update or delete",
                        table
                            .key
                            .iter()
                            .map(|&k| table.columns[k].name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        shown(&keyed[i]),
                        shown(&again[i]),
                    ),
                });
            }
        }
        for (i, k) in keyed.into_iter().enumerate() {
            let Some(f) = k else {
                return Err(Refusal {
                    index: i,
                    plugin: self.key_plugins.clone(),
                    kind: ErrorKind::PluginFailed,
                    whole_batch: false,
                    // The host refused what the plugin answered.
                    audit: (Outcome::Refused, None),
                    what:
                        "a transformer dropped the old key (given as a row whose other columns are \
                           NULL); it must keep it so the target row can be found"
                            .into(),
                });
            };
            let key: Vec<Option<String>> = key_pos.iter().map(|&p| f[p].clone()).collect();
            let r = &rows[i];
            // The same key from the whole row and from the key alone, or
            // the target could never find this row again.
            if let Some(new) = &out[i].new
                && (r.op == RowOp::Insert || (r.op == RowOp::Update && !r.key_changed))
            {
                for (n, &p) in key_pos.iter().enumerate() {
                    if new[p] != key[n] {
                        return Err(Refusal {
                            index: i,
                            plugin: self.key_plugins.clone(),
                            kind: ErrorKind::PluginFailed,
                            whole_batch: false,
                            // The host refused what the plugin answered.
                            audit: (Outcome::Refused, None),
                            what: format!(
                                "key column {} came out as {:?} from the whole row but {:?} from the key \
                                 alone: a plugin's output for a key column must depend on that column \
                                 only, deterministically (no clock, no randomness), or rows could not be \
                                 found again to update or delete",
                                table.columns[table.key[n]].name,
                                new[p].as_deref().unwrap_or("NULL"),
                                key[n].as_deref().unwrap_or("NULL"),
                            ),
                        });
                    }
                }
            }
            out[i].key = Some(key);
        }
        Ok(())
    }
}

/// COPY text of the rows `idx` picks.
fn encode<'a>(idx: &[usize], row: impl Fn(usize) -> Vec<Option<&'a str>>) -> Vec<u8> {
    let mut buf = Vec::new();
    for &i in idx {
        text::encode_row(&mut buf, row(i).into_iter().map(|v| v.map(str::as_bytes)));
    }
    buf
}

impl Chains {
    /// Without a key chain: every key column as it went in, or the target
    /// could not find the row by its source key.
    fn check_keys_kept(
        &self,
        table: &StreamTable,
        key_pos: &[usize],
        rows: &[RowIn<'_>],
        out: &[RowOut],
    ) -> Result<(), Refusal> {
        for (i, (r, o)) in rows.iter().zip(out).enumerate() {
            let Some(new) = &o.new else { continue };
            for (n, &p) in key_pos.iter().enumerate() {
                if new[p].as_deref() != r.new[p] {
                    return Err(Refusal {
                        index: i,
                        plugin: self.key_plugins.clone(),
                        kind: ErrorKind::PluginFailed,
                        whole_batch: false,
                        // The host refused what the plugin answered.
                        audit: (Outcome::Refused, None),
                        what: format!(
                            "key column {} came out as {:?} from {:?}: in a tenant's stream no old \
                             key goes through the plugins (it may be another tenant's row), so they \
                             must leave key columns as they are",
                            table.columns[table.key[n]].name,
                            new[p].as_deref().unwrap_or("NULL"),
                            r.new[p].unwrap_or("NULL"),
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Adds what a chain's batch used to `usage`.
fn tally(usage: &mut Usage, out: BatchOutput<Vec<u8>>) -> BatchOutput<Vec<u8>> {
    *usage = usage.then(out.usage);
    out
}

/// Each input row's fate: its fields, or `None` when dropped; a failure or
/// a rejection refuses the batch at its first row.
fn outcomes(
    result: BatchOutput<Vec<u8>>,
    on: &str,
) -> Result<Vec<Option<Vec<Option<String>>>>, Refusal> {
    if let Some(failure) = result.failure {
        return Err(Refusal {
            index: result.rejected.iter().map(|r| r.index).min().unwrap_or(0),
            plugin: failure_plugin(&failure),
            audit: audit::outcome(Some(&failure)),
            kind: ErrorKind::PluginFailed,
            whole_batch: true,
            what: format!("the plugin failed{on}: {failure}"),
        });
    }
    if let Some(r) = result.rejected.iter().min_by_key(|r| r.index) {
        return Err(Refusal {
            index: r.index,
            plugin: r.plugin.clone(),
            kind: ErrorKind::Rejected,
            audit: (Outcome::Failed, None),
            whole_batch: false,
            what: format!("the plugin rejected the row{on}: {}", r.reason),
        });
    }
    let n = result.kept_count + result.dropped.len();
    let mut out = vec![None; n];
    let mut kept = text::rows(&result.kept);
    for (i, slot) in out.iter_mut().enumerate() {
        if !result.dropped.iter().any(|(d, _)| *d == i) {
            *slot = Some(fields(
                kept.next().expect("the chain checked the kept count"),
            ));
        }
    }
    Ok(out)
}

fn failure_plugin(e: &PluginError) -> String {
    match e {
        PluginError::Table { plugin, .. }
        | PluginError::Configure { plugin, .. }
        | PluginError::Failed { plugin, .. }
        | PluginError::Fault { plugin, .. }
        | PluginError::Contract { plugin, .. }
        | PluginError::WrongKind { plugin, .. } => plugin.clone(),
        _ => "?".into(),
    }
}

/// A COPY text row's fields, decoded.
fn fields(row: &[u8]) -> Vec<Option<String>> {
    text::raw_fields(row)
        .map(|f| text::decode(f).map(|c| String::from_utf8_lossy(&c).into_owned()))
        .collect()
}
