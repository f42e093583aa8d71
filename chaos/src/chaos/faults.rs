//! The fault schedule: SIGKILL a node and start it again later, or SIGSTOP it and SIGCONT
//! it later; one node at a time, and the cluster converges before the next fault.

use std::time::Duration;

use gatehouse_cluster_tests::{ClusterSandbox, SandboxTenant};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use tokio::time::Instant;

use super::pool::{NodeClients, NodePool};
use crate::error::ChaosError;
use crate::stats::round3;

/// Attempts at starting a killed node again before the run gives up.
const START_ATTEMPTS: u32 = 3;
/// Shortest outage, so a fault lasts long enough to matter.
const MIN_OUTAGE: Duration = Duration::from_millis(500);

/// The kinds of fault injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL, then a new process with the same id and data directory.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
}

impl FaultKind {
    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
        }
    }
}

/// One injected fault, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    /// What was done.
    pub kind: FaultKind,
    /// To which node.
    pub node_id: String,
    /// Seconds since the workload started.
    pub at_secs: f64,
    /// How long the node was down (killed until started again, or paused).
    pub down_secs: f64,
    /// How long the cluster took to agree on its membership again afterwards.
    pub converged_after_secs: Option<f64>,
    /// What went wrong while healing, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A fault chosen by the schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFault {
    /// What to do.
    pub kind: FaultKind,
    /// To which node.
    pub node: usize,
    /// Wait before injecting it.
    pub delay: Duration,
    /// How long the node stays down.
    pub outage: Duration,
}

/// A seeded fault schedule: every pair of faults holds one kill and one pause in a random
/// order, so even a short run sees both; nodes, delays and outages are random.
#[derive(Debug)]
pub struct FaultPlan {
    rng: StdRng,
    interval: Duration,
    nodes: usize,
    pending: Vec<FaultKind>,
}

impl FaultPlan {
    /// A schedule over `nodes` nodes with a fault about every `interval`.
    pub fn new(rng: StdRng, interval: Duration, nodes: usize) -> Self {
        FaultPlan {
            rng,
            interval,
            nodes: nodes.max(1),
            pending: Vec::new(),
        }
    }

    /// The next fault: wait `interval` × U(0.5, 1.5), then keep a random node down for
    /// `interval` × U(0.3, 0.7).
    pub fn next_fault(&mut self) -> PlannedFault {
        if self.pending.is_empty() {
            self.pending = vec![FaultKind::Kill, FaultKind::Pause];
            self.pending.shuffle(&mut self.rng);
        }
        let kind = self.pending.pop().unwrap_or(FaultKind::Kill);
        let node = self.rng.gen_range(0..self.nodes);
        let delay = self.interval.mul_f64(self.rng.gen_range(0.5..1.5));
        let outage = self
            .interval
            .mul_f64(self.rng.gen_range(0.3..0.7))
            .max(MIN_OUTAGE);
        PlannedFault {
            kind,
            node,
            delay,
            outage,
        }
    }
}

/// Injects faults from `plan` until `deadline`, healing each before the next; the
/// workload's `pool` never hands out a node while it is down.
pub async fn inject_faults(
    sandbox: &mut ClusterSandbox,
    tenant: &SandboxTenant,
    pool: &NodePool,
    plan: &mut FaultPlan,
    started: Instant,
    deadline: Instant,
) -> Result<Vec<FaultRecord>, ChaosError> {
    let mut records = Vec::new();
    loop {
        let fault = plan.next_fault();
        let at = Instant::now() + fault.delay;
        // An outage must end before the deadline, so the workload ends on a whole cluster.
        if at + fault.outage >= deadline {
            break;
        }
        tokio::time::sleep_until(at).await;
        let node_id = sandbox.node(fault.node).id().to_owned();
        eprintln!(
            "chaos: {} node {node_id} for {:.1}s",
            fault.kind.name(),
            fault.outage.as_secs_f64()
        );
        pool.take_down(fault.node);
        let down_at = Instant::now();
        let node = sandbox.node_mut(fault.node);
        match fault.kind {
            FaultKind::Kill => node.kill().await,
            FaultKind::Pause => node.pause(),
        }
        .map_err(|error| ChaosError::Node(format!("{} {node_id}: {error}", fault.kind.name())))?;
        tokio::time::sleep_until(down_at + fault.outage).await;
        heal(sandbox, tenant, pool, fault.node).await?;
        let down_secs = down_at.elapsed().as_secs_f64();
        let healed_at = Instant::now();
        let converged = sandbox.wait_until_converged().await;
        records.push(FaultRecord {
            kind: fault.kind,
            node_id,
            at_secs: round3(down_at.duration_since(started).as_secs_f64()),
            down_secs: round3(down_secs),
            converged_after_secs: converged
                .as_ref()
                .ok()
                .map(|()| round3(healed_at.elapsed().as_secs_f64())),
            error: converged.err().map(|error| error.to_string()),
        });
    }
    Ok(records)
}

/// Brings node `index` back: SIGCONT when paused, a new process when not running.
pub async fn heal(
    sandbox: &mut ClusterSandbox,
    tenant: &SandboxTenant,
    pool: &NodePool,
    index: usize,
) -> Result<(), ChaosError> {
    let node = sandbox.node_mut(index);
    let node_id = node.id().to_owned();
    if node.is_paused() {
        node.resume()
            .map_err(|error| ChaosError::Node(format!("resume {node_id}: {error}")))?;
    } else if !node.is_running() {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match node.start().await {
                Ok(()) => break,
                Err(error) if attempt < START_ATTEMPTS => {
                    eprintln!("chaos: starting node {node_id} again failed ({error}); retrying");
                }
                Err(error) => {
                    return Err(ChaosError::Node(format!(
                        "node {node_id} did not start again after {START_ATTEMPTS} attempts: {error}"
                    )));
                }
            }
        }
    }
    pool.bring_up(index, NodeClients::of(sandbox.node(index), tenant)?);
    Ok(())
}

/// Brings every node back and waits until the cluster agrees on its membership.
pub async fn heal_all(
    sandbox: &mut ClusterSandbox,
    tenant: &SandboxTenant,
    pool: &NodePool,
) -> Result<(), ChaosError> {
    for index in 0..sandbox.nodes().len() {
        if !sandbox.node(index).is_live() {
            heal(sandbox, tenant, pool, index).await?;
        }
    }
    sandbox
        .wait_until_converged()
        .await
        .map_err(|error| ChaosError::Node(format!("the healed cluster did not converge: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_pair_of_faults_kills_once_and_pauses_once() {
        let mut plan = FaultPlan::new(StdRng::seed_from_u64(7), Duration::from_secs(4), 3);
        for _ in 0..5 {
            let mut kinds = [plan.next_fault().kind, plan.next_fault().kind];
            kinds.sort_unstable();
            assert_eq!(kinds, [FaultKind::Kill, FaultKind::Pause]);
        }
    }

    #[test]
    fn faults_stay_within_their_bounds_and_repeat_with_the_seed() {
        let interval = Duration::from_secs(4);
        let mut plan = FaultPlan::new(StdRng::seed_from_u64(1), interval, 3);
        let mut again = FaultPlan::new(StdRng::seed_from_u64(1), interval, 3);
        for _ in 0..50 {
            let fault = plan.next_fault();
            assert_eq!(fault, again.next_fault());
            assert!(fault.node < 3);
            assert!(fault.delay >= interval / 2 && fault.delay <= interval * 3 / 2);
            assert!(fault.outage >= MIN_OUTAGE && fault.outage <= interval);
        }
    }
}
