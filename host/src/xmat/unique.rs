//! Transforms on unique keys, checked before anything is copied.
//!
//! A primary key, unique constraint or unique index is rebuilt on the target
//! after its table's data: a transform that maps two distinct values to one
//! (an anonymizer's short pseudonyms, `lower(email)`) fails it there, at the
//! end of a long copy. So every column of such a key that a `select`
//! expression or a row plugin changes is checked first, the way pgstream's
//! `validate rules` checks its transformers against unique indexes:
//! - a `select` expression: unknown (host cannot prove an expression keeps
//!   values distinct), except the column itself;
//! - a row plugin: what it declares for the treatment its parameters give
//!   the column ([`crate::plugin::Declaration`]); a plugin that declares
//!   nothing may change every column; a where-filter changes none.
//!
//! Anything but `preserved` refuses the run unless the table's
//! `allow_uniqueness_loss` accepts the column; `--dry-run` lists them all.

use serde::Serialize;

use super::plan::Plan;
use super::sql::ident;
use crate::plugin::{Declaration, Effect, Kind, Plugin, Uniqueness};

/// One transformed column of a unique key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Risk {
    pub table: String,
    /// The key (constraint or index) and the column.
    pub key: String,
    pub column: String,
    /// What changes the column: `select expression ...`, or `plugin NAME (...)`.
    pub transform: String,
    pub verdict: Verdict,
    /// The table's `allow_uniqueness_loss` (or the command line's) covers the column.
    pub accepted: bool,
}

/// What is known about a transform and distinct values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Declared: distinct values may meet (a birthday bound).
    NotGuaranteed,
    /// Declared: distinct values meet by construction.
    Lossy,
    /// Nothing is known (a `select` expression, a plugin that declares nothing).
    Unknown,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::NotGuaranteed => "declared not-guaranteed: distinct values may map to one",
            Verdict::Lossy => "declared lossy: distinct values map to one",
            Verdict::Unknown => "not known to keep distinct values distinct",
        })
    }
}

impl std::fmt::Display for Risk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{} ({}): {}, {}{}",
            self.table,
            self.column,
            self.key,
            self.transform,
            self.verdict,
            if self.accepted {
                "; accepted by allow_uniqueness_loss"
            } else {
                ""
            }
        )
    }
}

/// Every transformed unique-key column of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UniqueRisks(pub Vec<Risk>);

impl UniqueRisks {
    /// The risks the job did not accept.
    pub fn refused(&self) -> impl Iterator<Item = &Risk> {
        self.0.iter().filter(|r| !r.accepted)
    }

    /// Whether the run must refuse.
    pub fn refuses(&self) -> bool {
        self.refused().next().is_some()
    }
}

impl std::fmt::Display for UniqueRisks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let refused: Vec<&Risk> = self.refused().collect();
        writeln!(
            f,
            "{} transform(s) on unique keys may give two rows one value, which fails the key on the \
             target after the copy:",
            refused.len()
        )?;
        for r in &refused {
            writeln!(f, "  {r}")?;
        }
        let mut tables: Vec<(&str, Vec<&str>)> = Vec::new();
        for r in &refused {
            match tables.iter_mut().find(|(t, _)| *t == r.table) {
                Some((_, cols)) if !cols.contains(&r.column.as_str()) => cols.push(&r.column),
                Some(_) => {}
                None => tables.push((&r.table, vec![&r.column])),
            }
        }
        let fixes: Vec<String> = tables
            .iter()
            .map(|(t, cols)| {
                let cols: Vec<String> = cols.iter().map(|c| format!("{c:?}")).collect();
                format!("allow_uniqueness_loss = [{}] on table {t}", cols.join(", "))
            })
            .collect();
        write!(
            f,
            "  to copy anyway, accept the risk with {} (or --allow-uniqueness-loss), or use a transform \
             that preserves uniqueness",
            fixes.join(" and ")
        )
    }
}

/// Checks every table of the plan with its loaded plugins (`plugins[i]`
/// for table `i`; `accept_all`: the command line accepted every risk).
pub fn check(plan: &Plan, plugins: &[Vec<Plugin>], accept_all: bool) -> UniqueRisks {
    let mut risks = Vec::new();
    for (i, t) in plan.tables.iter().enumerate() {
        for key in &t.unique_keys {
            for column in &key.columns {
                let mut found = Vec::new();
                if let Some(expr) = t
                    .projection
                    .iter()
                    .find(|p| &p.name == column)
                    .and_then(|p| p.expr.as_deref())
                    .filter(|e| e.trim() != ident(column))
                {
                    found.push((format!("select expression `{expr}`"), Verdict::Unknown));
                }
                for p in plugins.get(i).map_or(&[][..], Vec::as_slice) {
                    found.extend(plugin_verdict(p, column));
                }
                risks.extend(found.into_iter().map(|(transform, verdict)| Risk {
                    table: t.name.clone(),
                    key: key.name.clone(),
                    column: column.clone(),
                    transform,
                    verdict,
                    accepted: accept_all || t.allow_uniqueness_loss.covers(column),
                }));
            }
        }
    }
    UniqueRisks(risks)
}

/// What `p` does to `column`, if it may change it and not provably keep it unique.
fn plugin_verdict(p: &Plugin, column: &str) -> Option<(String, Verdict)> {
    if p.kind() == Kind::WhereFilter {
        return None;
    }
    let name = p.name();
    let declaration = match Declaration::parse(&p.info().description) {
        None => {
            return Some((
                format!(
                    "plugin {name} (it declares nothing about uniqueness, so it may change any column)"
                ),
                Verdict::Unknown,
            ));
        }
        Some(Err(e)) => {
            return Some((
                format!("plugin {name} (its uniqueness declaration does not parse: {e})"),
                Verdict::Unknown,
            ));
        }
        Some(Ok(d)) => d,
    };
    let effect = declaration
        .columns(&p.spec().params)
        .into_iter()
        .find(|c| c.column == column)?;
    let shown = format!("plugin {name} ({}={})", column, effect.treatment);
    match effect.effect {
        None => Some((
            format!("{shown}, a treatment its declaration does not list"),
            Verdict::Unknown,
        )),
        Some(Effect::Unchanged | Effect::Changed(Uniqueness::Preserved)) => None,
        Some(Effect::Changed(Uniqueness::NotGuaranteed)) => Some((shown, Verdict::NotGuaranteed)),
        Some(Effect::Changed(Uniqueness::Lossy)) => Some((shown, Verdict::Lossy)),
    }
}
