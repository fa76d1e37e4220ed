//! A stream run as a policy's tenant: its plugins' CPU time counts against
//! the tenant's share (as a `host xmat` job's does), and each batch a
//! table's plugins ran on is a line of the audit log (`--audit`), with the
//! same fields as xmat's table lines. Its tables and rows were fixed when
//! the stream was set up (see [`crate::xmat::tenant`]).

use std::sync::Arc;
use std::time::Duration;

use super::chains::{Refusal, RowOut};
use crate::audit::{Audit, AuditError, Entry, Limit, Outcome, PluginRef, Unit};
use crate::plugin::{Plugin, Usage};
use crate::xmat::share::{CpuExhausted, Share};

/// Who a stream's plugins run for, and where their accounts go.
#[derive(Debug, Clone, Default)]
pub struct Tenancy {
    /// The tenant, under a policy.
    pub tenant: Option<String>,
    /// The job, as audit lines name it.
    pub job: String,
    /// The tenant's CPU time (unlimited without a policy).
    pub share: Share,
    pub audit: Option<Arc<Audit>>,
}

/// A batch the tenant may not (or did not) account for.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Cpu(#[from] CpuExhausted),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// One table's batch, as the audit log counts it.
pub struct Batch<'a> {
    pub table: &'a str,
    pub plugins: &'a [Plugin],
    pub usage: Usage,
    pub cpu: Duration,
    /// The changes whose rows went in, and what became of them (when the
    /// batch went through).
    pub records_in: usize,
    pub results: &'a [RowOut],
}

impl Tenancy {
    /// Before a batch: refused (and audited) once the tenant's CPU time is
    /// used up.
    pub fn before(&self, table: &str, plugins: &[Plugin]) -> Result<(), AccountError> {
        let Err(e) = self.share.check() else {
            return Ok(());
        };
        if let Some(audit) = &self.audit {
            let refs: Vec<PluginRef> = plugins.iter().map(PluginRef::of).collect();
            let mut entry = self.entry(table, &refs);
            entry.outcome = Outcome::Limit;
            entry.limit = Some(Limit::Cpu);
            entry.error = Some(e.to_string());
            audit.write(&entry)?;
        }
        Err(e.into())
    }

    /// After a batch: charges its CPU time and writes its audit line.
    pub fn after(&self, b: Batch<'_>, refused: Option<&Refusal>) -> Result<(), AccountError> {
        let charged = self.share.charge(b.cpu);
        if let Some(audit) = &self.audit {
            let refs: Vec<PluginRef> = b.plugins.iter().map(PluginRef::of).collect();
            let mut entry = self.entry(b.table, &refs);
            entry.records_in = b.records_in as u64;
            entry.cpu_seconds = b.cpu.as_secs_f64();
            entry.fuel = b.usage.fuel;
            entry.peak_memory = b.usage.peak_memory;
            match refused {
                None => {
                    entry.records_out = b.results.iter().filter(|r| r.new.is_some()).count() as u64;
                    entry.dropped = b.results.iter().filter(|r| r.dropped).count() as u64;
                }
                Some(r) => {
                    (entry.outcome, entry.limit) = r.audit;
                    entry.rejected = u64::from(r.kind == super::ErrorKind::Rejected);
                    entry.error = Some(crate::terminal::redact(&r.what).into_owned());
                }
            }
            if let Err(e) = &charged {
                entry.outcome = Outcome::Limit;
                entry.limit = Some(Limit::Cpu);
                entry.error = Some(e.to_string());
            }
            audit.write(&entry)?;
        }
        Ok(charged?)
    }

    fn entry<'a>(&'a self, table: &'a str, refs: &'a [PluginRef]) -> Entry<'a> {
        Entry::new(
            "stream",
            self.tenant.as_deref(),
            refs,
            Unit::Table {
                job: &self.job,
                table,
            },
        )
    }
}
