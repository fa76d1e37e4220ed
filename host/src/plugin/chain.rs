//! Runs batches of items or rows through several plugins, in the order given.
//!
//! Each stage sees only what the previous one kept. Every input record ends up
//! with exactly one fate (kept, dropped, rejected) so callers can account for
//! all of them. When a stage fails on a batch (trap, limit, broken contract),
//! the records still in flight are rejected with that error, the stage's
//! instance is rebuilt, and the chain goes on with the next batch; callers
//! that must not lose anything (e.g. a load) stop on [`BatchOutput::failure`].
//! The records caught in a failure share its one message ([`Reason::Failed`]):
//! nothing a plugin writes is copied once per record.

use std::sync::Arc;

use super::model::{ItemOutcome, Kind, Outcome, Table};
use super::{Plugin, PluginError, PluginInstance, Usage};
use crate::copy::text;
use crate::json_check::check_object;

/// Why a record did not come out of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Index of the record in the input batch.
    pub index: usize,
    /// The plugin that rejected it (or failed on it).
    pub plugin: String,
    /// Why.
    pub reason: Reason,
}

/// Why a plugin turned a record away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The plugin rejected the record, saying why (cut to
    /// [`MESSAGE_BYTES`](super::MESSAGE_BYTES)).
    Rejected(String),
    /// The plugin failed on the record's batch: the failure, as text, shared
    /// by every record of the batch (the error itself is [`BatchOutput::failure`]).
    Failed(Arc<str>),
}

impl Reason {
    /// The reason as text.
    pub fn as_str(&self) -> &str {
        match self {
            Reason::Rejected(r) => r,
            Reason::Failed(f) => f,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of one batch.
#[derive(Debug, Default)]
pub struct BatchOutput<T> {
    /// What came out: items (JSON text, with input index) or a COPY text buffer of rows.
    pub kept: T,
    /// Number of records kept.
    pub kept_count: usize,
    /// Input indexes dropped, with the plugin that dropped each.
    pub dropped: Vec<(usize, String)>,
    /// Input records rejected by a plugin, or caught in a plugin failure.
    pub rejected: Vec<Rejection>,
    /// The plugin failure that hit this batch, if any (its records are in `rejected`).
    pub failure: Option<PluginError>,
    /// What the chain's instances used on it.
    pub usage: Usage,
}

/// What a chain's instances used since it was last asked.
fn take_usage(stages: &mut [PluginInstance]) -> Usage {
    stages
        .iter_mut()
        .fold(Usage::default(), |u, s| u.beside(s.take_usage()))
}

fn batch_label(batch: u64, n: usize) -> String {
    format!("batch {batch} ({n} records)")
}

/// A chain of item plugins (rewriters and where-filters).
pub struct ItemChain {
    stages: Vec<PluginInstance>,
    batches: u64,
}

impl ItemChain {
    /// Instantiates each plugin; refuses plugins that do not take items.
    pub fn new(plugins: &[Plugin]) -> Result<ItemChain, PluginError> {
        let mut stages = Vec::with_capacity(plugins.len());
        for p in plugins {
            if !p.kind().handles_items() {
                return Err(PluginError::WrongKind {
                    plugin: p.name().to_string(),
                    what: "process STAC items",
                    kind: p.kind().as_str(),
                });
            }
            stages.push(p.instantiate()?);
        }
        Ok(ItemChain { stages, batches: 0 })
    }

    /// True when there are no plugins (items pass through untouched).
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// The plugins, in order.
    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        self.stages.iter().map(PluginInstance::plugin)
    }

    /// Runs one batch. `kept` holds `(input index, item JSON)` in input order.
    /// What an item rewriter returned was checked to be one storable JSON
    /// object, so that a plugin that breaks the contract is blamed by name.
    /// The input is borrowed so callers keep the originals (for reject reports)
    /// without copying them.
    pub fn run(&mut self, items: &[String]) -> BatchOutput<Vec<(usize, String)>> {
        let mut out = self.run_stages(items);
        out.usage = take_usage(&mut self.stages);
        out
    }

    fn run_stages(&mut self, items: &[String]) -> BatchOutput<Vec<(usize, String)>> {
        self.batches += 1;
        let mut out = BatchOutput::<Vec<(usize, String)>>::default();
        let mut alive: Vec<usize> = (0..items.len()).collect();
        // The texts still in play: the input's, borrowed, until a stage
        // keeps fewer or a rewriter returns new ones.
        let mut current = Current::Input;

        for stage in &mut self.stages {
            if alive.is_empty() {
                break;
            }
            let plugin = stage.plugin().name().to_string();
            let label = batch_label(self.batches, alive.len());
            let kind = stage.plugin().kind();
            let (texts, result) = current.lend(items, |current| match kind {
                Kind::ItemRewriter => stage
                    .rewrite_items(current, &label)
                    .map(Decisions::Rewritten),
                _ => stage.filter_items(current, &label).map(Decisions::Filtered),
            });
            let decisions = match result.and_then(|d| d.check(&plugin, &label)) {
                Ok(d) => d,
                Err(e) => {
                    fail_all(&mut out, &alive, &plugin, e);
                    return out;
                }
            };
            let mut next_alive = Vec::with_capacity(alive.len());
            let mut verdict = |index: usize, kept: bool, reject: Option<String>| match reject {
                Some(reason) => out.rejected.push(Rejection {
                    index,
                    plugin: plugin.clone(),
                    reason: Reason::Rejected(reason),
                }),
                None if kept => next_alive.push(index),
                None => out.dropped.push((index, plugin.clone())),
            };
            current = match decisions {
                Decisions::Rewritten(outcomes) => {
                    let mut next = Vec::with_capacity(outcomes.len());
                    for (outcome, &index) in outcomes.into_iter().zip(&alive) {
                        match outcome {
                            ItemOutcome::Keep(s) => {
                                next.push(s);
                                verdict(index, true, None);
                            }
                            ItemOutcome::Drop => verdict(index, false, None),
                            ItemOutcome::Reject(r) => verdict(index, false, Some(r)),
                        }
                    }
                    Current::Owned(next)
                }
                Decisions::Filtered(outcomes) => {
                    let keep: Vec<bool> = outcomes.iter().map(|o| *o == Outcome::Keep).collect();
                    for (outcome, &index) in outcomes.into_iter().zip(&alive) {
                        match outcome {
                            Outcome::Keep => verdict(index, true, None),
                            Outcome::Drop => verdict(index, false, None),
                            Outcome::Reject(r) => verdict(index, false, Some(r)),
                        }
                    }
                    texts.keep(items, &keep)
                }
            };
            alive = next_alive;
        }
        out.kept_count = alive.len();
        out.kept = match current {
            Current::Input => alive.into_iter().map(|i| (i, items[i].clone())).collect(),
            Current::Owned(texts) => alive.into_iter().zip(texts).collect(),
        };
        out
    }
}

/// The texts of a batch's records still in play inside the chain.
enum Current {
    /// All of the input, untouched (no stage has run yet).
    Input,
    /// What filters kept of the input, or what a rewriter returned.
    Owned(Vec<String>),
}

impl Current {
    /// Lends the texts to a stage.
    fn lend<R>(self, input: &[String], f: impl FnOnce(&[String]) -> R) -> (Current, R) {
        let r = match &self {
            Current::Input => f(input),
            Current::Owned(texts) => f(texts),
        };
        (self, r)
    }

    /// The texts whose `keep` is true (a filter's verdicts).
    fn keep(self, input: &[String], keep: &[bool]) -> Current {
        Current::Owned(match self {
            Current::Input => (0..input.len())
                .filter(|&i| keep[i])
                .map(|i| input[i].clone())
                .collect(),
            Current::Owned(texts) => texts
                .into_iter()
                .zip(keep)
                .filter_map(|(t, &k)| k.then_some(t))
                .collect(),
        })
    }
}

/// What a stage decided on each record.
enum Decisions {
    Rewritten(Vec<ItemOutcome>),
    Filtered(Vec<Outcome>),
}

impl Decisions {
    /// A rewritten item must still be one JSON object jsonb can store: one
    /// that is not fails the plugin's whole batch (a broken contract).
    fn check(self, plugin: &str, label: &str) -> Result<Decisions, PluginError> {
        if let Decisions::Rewritten(outcomes) = &self {
            for (i, o) in outcomes.iter().enumerate() {
                if let ItemOutcome::Keep(s) = o
                    && let Err(p) = check_object(s)
                {
                    return Err(PluginError::Contract {
                        plugin: plugin.to_string(),
                        message: format!(
                            "returned invalid JSON for record {} of {label}: {p}",
                            i + 1
                        ),
                    });
                }
            }
        }
        Ok(self)
    }
}

fn fail_all<T>(out: &mut BatchOutput<T>, alive: &[usize], plugin: &str, e: PluginError) {
    let reason: Arc<str> = e.to_string().into();
    out.rejected.extend(alive.iter().map(|&index| Rejection {
        index,
        plugin: plugin.to_string(),
        reason: Reason::Failed(reason.clone()),
    }));
    out.failure = Some(e);
}

/// A chain of row plugins (transformers and where-filters) over one table at a time.
pub struct RowChain {
    stages: Vec<PluginInstance>,
    columns: usize,
    batches: u64,
}

impl RowChain {
    /// Instantiates each plugin; refuses plugins that do not take rows.
    pub fn new(plugins: &[Plugin]) -> Result<RowChain, PluginError> {
        let mut stages = Vec::with_capacity(plugins.len());
        for p in plugins {
            if !p.kind().handles_rows() {
                return Err(PluginError::WrongKind {
                    plugin: p.name().to_string(),
                    what: "process table rows",
                    kind: p.kind().as_str(),
                });
            }
            stages.push(p.instantiate()?);
        }
        Ok(RowChain {
            stages,
            columns: 0,
            batches: 0,
        })
    }

    /// True when there are no plugins.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Announces the table the next batches belong to; any stage may refuse it.
    pub fn begin_table(&mut self, table: &Table) -> Result<(), PluginError> {
        self.columns = table.columns.len();
        self.batches = 0;
        for s in &mut self.stages {
            s.begin_table(table)?;
        }
        Ok(())
    }

    /// The plugins, in order.
    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        self.stages.iter().map(PluginInstance::plugin)
    }

    /// Runs one batch of `n_rows` complete COPY-text rows; `kept` is a COPY text buffer.
    pub fn run(&mut self, rows: &[u8], n_rows: usize) -> BatchOutput<Vec<u8>> {
        let mut out = self.run_stages(rows, n_rows);
        out.usage = take_usage(&mut self.stages);
        out
    }

    fn run_stages(&mut self, rows: &[u8], n_rows: usize) -> BatchOutput<Vec<u8>> {
        self.batches += 1;
        let mut out = BatchOutput::<Vec<u8>>::default();
        let mut alive: Vec<usize> = (0..n_rows).collect();
        let mut current: std::borrow::Cow<'_, [u8]> = std::borrow::Cow::Borrowed(rows);

        for stage in &mut self.stages {
            if alive.is_empty() {
                break;
            }
            let plugin = stage.plugin().name().to_string();
            let label = batch_label(self.batches, alive.len());
            let step = match stage.plugin().kind() {
                Kind::RowTransformer => stage
                    .transform_rows(&current, alive.len(), &label)
                    .and_then(|b| {
                        let kept = b.outcomes.iter().filter(|o| **o == Outcome::Keep).count();
                        check_rows(&plugin, &label, &b.rows, kept, self.columns)?;
                        Ok((b.outcomes, Some(b.rows)))
                    }),
                _ => stage
                    .filter_rows(&current, alive.len(), &label)
                    .map(|o| (o, None)),
            };
            let (outcomes, new_rows) = match step {
                Ok(s) => s,
                Err(e) => {
                    fail_all(&mut out, &alive, &plugin, e);
                    return out;
                }
            };
            let mut next_alive = Vec::with_capacity(alive.len());
            // Filters keep the input bytes of kept rows; transformers hand us new bytes.
            let mut filtered = Vec::new();
            let mut input_rows = text::rows(&current);
            for (outcome, index) in outcomes.into_iter().zip(alive) {
                let row = if new_rows.is_none() {
                    input_rows.next()
                } else {
                    None
                };
                match outcome {
                    Outcome::Keep => {
                        next_alive.push(index);
                        if new_rows.is_none()
                            && let Some(r) = row
                        {
                            filtered.extend_from_slice(r);
                            filtered.push(b'\n');
                        }
                    }
                    Outcome::Drop => out.dropped.push((index, plugin.clone())),
                    Outcome::Reject(reason) => out.rejected.push(Rejection {
                        index,
                        plugin: plugin.clone(),
                        reason: Reason::Rejected(reason),
                    }),
                }
            }
            drop(input_rows);
            current = std::borrow::Cow::Owned(new_rows.unwrap_or(filtered));
            alive = next_alive;
        }
        out.kept_count = alive.len();
        out.kept = if alive.is_empty() {
            Vec::new()
        } else {
            current.into_owned()
        };
        out
    }
}

/// Kept rows must be complete rows with exactly the table's columns.
fn check_rows(
    plugin: &str,
    label: &str,
    rows: &[u8],
    kept: usize,
    columns: usize,
) -> Result<(), PluginError> {
    let contract = |message: String| PluginError::Contract {
        plugin: plugin.to_string(),
        message,
    };
    if !rows.is_empty() && rows.last() != Some(&b'\n') {
        return Err(contract(format!(
            "returned rows without a final newline on {label}"
        )));
    }
    let mut n = 0;
    for row in text::rows(rows) {
        n += 1;
        let fields = text::field_count(row);
        if columns > 0 && fields != columns {
            return Err(contract(format!(
                "returned a row with {fields} fields instead of {columns} (row {n} of {label})"
            )));
        }
    }
    if n != kept {
        return Err(contract(format!(
            "kept {kept} rows but returned {n} on {label}"
        )));
    }
    Ok(())
}
