//! A chaos run: a mixed workload against a sandbox cluster while nodes are SIGKILLed and
//! SIGSTOPped on a seeded schedule, then invariant checks on the healed cluster.
//!
//! ```text
//! start N nodes ─ tenant ─┬─ workers (budget: duration × max operations) ─┐
//!                         └─ faults (one node down at a time) ────────────┴─ heal ─ checks
//! ```

mod faults;
mod invariants;
mod ledger;
mod pool;
mod report;
mod traffic;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_cluster_tests::ClusterSandbox;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::Instant;

pub use faults::{FaultKind, FaultPlan, FaultRecord, PlannedFault};
pub use invariants::{CheckLimits, normalise};
pub use ledger::{Invariant, SessionState, TrackedSession, Verdict};
pub use report::{ChaosReport, InvariantReport, SignUpCounts};
pub use traffic::Operation;

use self::faults::{heal_all, inject_faults};
use self::invariants::check_invariants;
use self::ledger::Ledger;
use self::pool::NodePool;
use self::report::session_states;
use self::traffic::{Worker, WorkerOutcome};
use crate::budget::Budget;
use crate::error::ChaosError;
use crate::stats::{Tally, round3};
use crate::workload::REQUEST_TIMEOUT;

/// How long the workers may take to finish their last requests after the deadline.
const WORKER_GRACE: Duration = Duration::from_secs(30);

/// What a chaos run does.
#[derive(Debug, Clone)]
pub struct ChaosSettings {
    /// Nodes in the cluster (at least 3 keeps a majority with one down).
    pub nodes: usize,
    /// How long the workload and the faults run.
    pub duration: Duration,
    /// Mean time between the end of one fault and the start of the next.
    pub fault_interval: Duration,
    /// Seed of the fault schedule and of the workers' choices.
    pub seed: u64,
    /// Concurrent workload workers.
    pub concurrency: usize,
    /// Most workload operations started in all.
    pub max_operations: u64,
    /// Spent refresh tokens re-presented at the end, at most.
    pub spent_token_samples: usize,
    /// Time allowed for the final checks.
    pub check_limit: Duration,
    /// The `gatehouse` binary (default: the sandbox's choice, `GATEHOUSE_BIN` first).
    pub binary: Option<PathBuf>,
    /// A directory to copy the nodes' logs into at the end (the sandbox's own is removed).
    pub save_logs: Option<PathBuf>,
}

impl Default for ChaosSettings {
    fn default() -> Self {
        ChaosSettings {
            nodes: 3,
            duration: Duration::from_secs(60),
            fault_interval: Duration::from_secs(8),
            seed: 1,
            concurrency: 4,
            max_operations: 1_000_000,
            spent_token_samples: 200,
            check_limit: Duration::from_secs(120),
            binary: None,
            save_logs: None,
        }
    }
}

/// Starts a cluster, runs the workload under faults, heals the cluster and checks every
/// invariant; an `Err` means the run itself could not proceed (not a violation).
pub async fn run_chaos(settings: &ChaosSettings) -> Result<ChaosReport, ChaosError> {
    if settings.nodes < 3 {
        return Err(ChaosError::Setting(
            "chaos needs at least 3 nodes, so one can be down while a majority serves".to_owned(),
        ));
    }
    let run_started = Instant::now();
    let mut builder = ClusterSandbox::builder().nodes(settings.nodes);
    if let Some(binary) = &settings.binary {
        builder = builder.binary(binary);
    }
    let mut sandbox = builder
        .build()
        .await
        .map_err(|error| ChaosError::Node(format!("start the cluster: {error}")))?;
    let tenant = sandbox
        .create_tenant("chaos")
        .await
        .map_err(|error| ChaosError::Node(format!("create the tenant: {error}")))?;
    let pool = Arc::new(NodePool::new(&sandbox, &tenant)?);
    let ledger = Arc::new(Ledger::default());
    let cluster_start_secs = round3(run_started.elapsed().as_secs_f64());
    eprintln!(
        "chaos: {} nodes up in {cluster_start_secs}s (dir {}); seed {}",
        settings.nodes,
        sandbox.dir().display(),
        settings.seed
    );

    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let started = Instant::now();
    let deadline = started + settings.duration;
    let budget = Arc::new(Budget::until(deadline.into_std(), settings.max_operations));
    let workers: Vec<_> = (0..settings.concurrency.max(1))
        .map(|index| {
            let rng = StdRng::seed_from_u64(worker_seed(settings.seed, index));
            let worker = Worker::new(index, &run_id, rng, pool.clone(), ledger.clone());
            tokio::spawn(worker.run(budget.clone()))
        })
        .collect();
    let mut plan = FaultPlan::new(
        StdRng::seed_from_u64(settings.seed),
        settings.fault_interval,
        settings.nodes,
    );
    let injected = inject_faults(&mut sandbox, &tenant, &pool, &mut plan, started, deadline).await;
    let fault_log = match injected {
        Ok(log) => log,
        Err(error) => {
            workers.iter().for_each(|worker| worker.abort());
            return Err(error);
        }
    };
    let outcomes = join_workers(workers, deadline + REQUEST_TIMEOUT + WORKER_GRACE).await?;

    let heal_started = Instant::now();
    heal_all(&mut sandbox, &tenant, &pool).await?;
    let heal_secs = round3(heal_started.elapsed().as_secs_f64());
    let check_started = Instant::now();
    let mut sessions: Vec<TrackedSession> = Vec::new();
    let mut tallies: BTreeMap<Operation, Tally> = BTreeMap::new();
    let mut messages = WorkerOutcome::default();
    for outcome in outcomes {
        sessions.extend(outcome.sessions);
        for (code, kept) in outcome.error_messages {
            for message in kept {
                messages.keep_message(&code, message);
            }
        }
        for (operation, tally) in outcome.tallies {
            tallies.entry(operation).or_default().merge(tally);
        }
    }
    eprintln!(
        "chaos: workload done; checking {} sessions and {} accounts",
        sessions.len(),
        ledger.accounts().len()
    );
    let limits = CheckLimits {
        spent_token_samples: settings.spent_token_samples,
        time_limit: settings.check_limit,
    };
    let mut check_rng = StdRng::seed_from_u64(settings.seed.wrapping_mul(31).wrapping_add(7));
    check_invariants(&pool, &ledger, &mut sessions, &mut check_rng, &limits).await;
    let check_secs = round3(check_started.elapsed().as_secs_f64());

    let invariants: Vec<InvariantReport> = ledger
        .verdicts()
        .into_iter()
        .map(|(invariant, verdict)| InvariantReport::new(invariant, verdict))
        .collect();
    let passed = invariants.iter().all(|invariant| invariant.passed);
    if let Some(dir) = &settings.save_logs {
        save_logs(&sandbox, dir)?;
    }
    if !passed {
        for node in sandbox.nodes() {
            eprintln!(
                "chaos: end of node {}'s log:\n{}",
                node.id(),
                node.stderr_tail()
            );
        }
    }
    let mut faults: BTreeMap<&'static str, u64> = BTreeMap::new();
    for kind in [FaultKind::Kill, FaultKind::Pause] {
        faults.insert(kind.name(), 0);
    }
    for record in &fault_log {
        *faults.entry(record.kind.name()).or_default() += 1;
    }
    let workload_secs = settings.duration;
    let mut errors_by_code: BTreeMap<String, u64> = BTreeMap::new();
    let operations: BTreeMap<&'static str, _> = tallies
        .into_iter()
        .map(|(operation, tally)| {
            let summary = tally.summarize(workload_secs);
            for (code, count) in &summary.errors_by_code {
                *errors_by_code.entry(code.clone()).or_default() += count;
            }
            (operation.name(), summary)
        })
        .collect();
    let acknowledged = ledger.accounts().len() as u64;
    Ok(ChaosReport {
        passed,
        seed: settings.seed,
        nodes: settings.nodes,
        concurrency: settings.concurrency,
        duration_secs: settings.duration.as_secs_f64(),
        fault_interval_secs: settings.fault_interval.as_secs_f64(),
        cluster_start_secs,
        heal_secs,
        check_secs,
        total_secs: round3(run_started.elapsed().as_secs_f64()),
        faults,
        fault_log,
        operations,
        errors_by_code,
        error_messages: messages.error_messages,
        sign_ups: SignUpCounts {
            acknowledged,
            unknown: ledger.unknown_sign_ups(),
        },
        sessions: session_states(&sessions),
        invariants,
    })
}

/// Copies every node's log (its stderr, across restarts) into `dir`.
fn save_logs(sandbox: &ClusterSandbox, dir: &std::path::Path) -> Result<(), ChaosError> {
    std::fs::create_dir_all(dir)
        .map_err(|error| ChaosError::Local(format!("create {}: {error}", dir.display())))?;
    for node in sandbox.nodes() {
        let target = dir.join(format!("{}.stderr.log", node.id()));
        std::fs::copy(node.stderr_path(), &target).map_err(|error| {
            ChaosError::Local(format!("copy the log of node {}: {error}", node.id()))
        })?;
    }
    eprintln!("chaos: node logs saved in {}", dir.display());
    Ok(())
}

/// The seed of worker `index`'s choices, apart from the fault schedule's `seed`.
fn worker_seed(seed: u64, index: usize) -> u64 {
    seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Waits for every worker, at most until `limit`; on failure the others are aborted.
async fn join_workers(
    workers: Vec<tokio::task::JoinHandle<WorkerOutcome>>,
    limit: Instant,
) -> Result<Vec<WorkerOutcome>, ChaosError> {
    let aborts: Vec<_> = workers.iter().map(|worker| worker.abort_handle()).collect();
    let mut outcomes = Vec::with_capacity(workers.len());
    for worker in workers {
        let failure = match tokio::time::timeout_at(limit, worker).await {
            Ok(Ok(outcome)) => {
                outcomes.push(outcome);
                continue;
            }
            Ok(Err(error)) => format!("a workload worker failed: {error}"),
            Err(_) => "a workload worker was still busy long after the deadline".to_owned(),
        };
        aborts.iter().for_each(tokio::task::AbortHandle::abort);
        return Err(ChaosError::Local(failure));
    }
    Ok(outcomes)
}
