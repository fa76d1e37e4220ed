//! What the jobs of one tenant share in a run: how many plugin instances it
//! may have at once (a table's plugin threads wait for them, other tenants'
//! tables go on), and how much plugin CPU time it may use in all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One tenant's share (or, without a policy, an unlimited one). Cheap to
/// clone; clones share the count.
#[derive(Debug, Clone)]
pub struct Share(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// The tenant, for messages; `None` without a policy.
    tenant: Option<String>,
    instances: Arc<Semaphore>,
    max_instances: usize,
    cpu_cap: Option<Duration>,
    cpu_used_ns: AtomicU64,
}

/// The tenant's plugin CPU time for the run is used up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "tenant `{tenant}` has used the {cap:?} of plugin CPU time its limits (`limits.cpu`) give \
     it for this run"
)]
pub struct CpuExhausted {
    pub tenant: String,
    pub cap: Duration,
}

impl Default for Share {
    fn default() -> Share {
        Share::unlimited()
    }
}

impl Share {
    /// No policy: as many instances as tables ask for, no CPU cap.
    pub fn unlimited() -> Share {
        Share::new(None, Semaphore::MAX_PERMITS, None)
    }

    /// A tenant's: at most `instances` at once, `cpu` in all.
    pub fn tenant(name: &str, instances: u32, cpu: Option<Duration>) -> Share {
        let n = usize::try_from(instances).unwrap_or(usize::MAX).max(1);
        Share::new(Some(name.to_string()), n, cpu)
    }

    fn new(tenant: Option<String>, instances: usize, cpu: Option<Duration>) -> Share {
        let n = instances.min(Semaphore::MAX_PERMITS);
        Share(Arc::new(Inner {
            tenant,
            instances: Arc::new(Semaphore::new(n)),
            max_instances: n,
            cpu_cap: cpu,
            cpu_used_ns: AtomicU64::new(0),
        }))
    }

    /// Waits until `wanted` instances (or the tenant's whole allowance, if
    /// that is fewer) are free; they are the caller's until the permit drops.
    pub async fn instances(&self, wanted: usize) -> (OwnedSemaphorePermit, usize) {
        let n = wanted.clamp(1, self.0.max_instances);
        let permit = self
            .0
            .instances
            .clone()
            .acquire_many_owned(u32::try_from(n).unwrap_or(u32::MAX))
            .await
            .expect("the semaphore is never closed");
        (permit, n)
    }

    /// Adds plugin CPU time; an error once the tenant's cap is reached.
    pub fn charge(&self, cpu: Duration) -> Result<(), CpuExhausted> {
        let ns = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
        let used = self.0.cpu_used_ns.fetch_add(ns, Ordering::Relaxed) + ns;
        self.check_used(used)
    }

    /// An error if the tenant's cap is already reached (before a batch runs).
    pub fn check(&self) -> Result<(), CpuExhausted> {
        self.check_used(self.0.cpu_used_ns.load(Ordering::Relaxed))
    }

    fn check_used(&self, used_ns: u64) -> Result<(), CpuExhausted> {
        match self.0.cpu_cap {
            Some(cap) if Duration::from_nanos(used_ns) >= cap => Err(CpuExhausted {
                tenant: self.0.tenant.clone().unwrap_or_default(),
                cap,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tenant_at_its_cap_waits_and_its_cpu_runs_out() {
        let s = Share::tenant("a", 2, Some(Duration::from_millis(10)));
        let (p1, n1) = s.instances(4).await;
        assert_eq!(n1, 2, "never more than the tenant's instances");
        let waiting = s.clone();
        let mut second = tokio::spawn(async move { waiting.instances(1).await.1 });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            futures::poll!(&mut second).is_pending(),
            "waits while the tenant's instances are taken"
        );
        drop(p1);
        assert_eq!(second.await.unwrap(), 1);

        assert!(s.charge(Duration::from_millis(6)).is_ok());
        let e = s.charge(Duration::from_millis(6)).unwrap_err();
        assert_eq!(e.tenant, "a");
        assert!(s.check().is_err());
        assert!(
            Share::unlimited()
                .charge(Duration::from_secs(1 << 30))
                .is_ok()
        );
    }
}
