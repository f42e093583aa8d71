//! One load run: create a tenant, run the selected phases in order, build the report.
//!
//! Each phase reports the same [`PhaseSummary`]. The authorization phases
//! (`has_permission`, `share_check`) build their data first, untimed, and their CPU use
//! (`cpu_during_phase`) covers only the timed part; the other phases include their small
//! setup (the first sign-ups or sign-ins) in it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_protocol::sdk::{Client, Credentials};
use serde::Serialize;

use crate::authz::{
    prepare_permission_graph, prepare_share, run_has_permission, run_share_check, server_clients,
};
use crate::budget::Budget;
use crate::cluster_refresh::ClusterRefreshReport;
use crate::error::ChaosError;
use crate::hashing::run_argon2_phase;
use crate::node::Target;
use crate::procfs::{CpuSample, CpuUsage, host_load_average, rss_mb};
use crate::stats::{PhaseSummary, round3};
use crate::verify::{TokenVerifier, run_verify_phase};
use crate::workload::{REQUEST_TIMEOUT, Workload};

/// Time allowed for untimed setup work such as signing up the users a phase needs.
const SETUP_LIMIT: Duration = Duration::from_secs(120);

/// A load phase; phases always run in the order of [`Phase::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Sign up users with unique emails.
    SignUp,
    /// Sign in users created earlier.
    SignIn,
    /// Refresh one session per worker in a chain.
    Refresh,
    /// Verify access tokens locally against the JWKS.
    Verify,
    /// Hash with the server's argon2id parameters locally, the sign-in ceiling.
    Argon2Bare,
    /// Check a user's permissions, nested ten deep, with the server key.
    HasPermission,
    /// Read through an application-resource share by its token, with the client key.
    ShareCheck,
    /// Refresh on a 3-node sandbox cluster of its own, sent to each session's owner and to
    /// a node that forwards to the owner; opt-in, see [`crate::cluster_refresh`].
    ClusterRefresh,
}

impl Phase {
    /// Every phase, in run order.
    pub const ALL: [Phase; 8] = [
        Phase::SignUp,
        Phase::SignIn,
        Phase::Refresh,
        Phase::Verify,
        Phase::Argon2Bare,
        Phase::HasPermission,
        Phase::ShareCheck,
        Phase::ClusterRefresh,
    ];

    /// Whether the phase starts a cluster of its own instead of loading the one node.
    pub fn is_cluster(self) -> bool {
        self == Phase::ClusterRefresh
    }

    /// The phase's name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Phase::SignUp => "sign_up",
            Phase::SignIn => "sign_in",
            Phase::Refresh => "refresh",
            Phase::Verify => "verify",
            Phase::Argon2Bare => "argon2_bare",
            Phase::HasPermission => "has_permission",
            Phase::ShareCheck => "share_check",
            Phase::ClusterRefresh => "cluster_refresh",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Phase {
    type Err = ChaosError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Phase::ALL
            .into_iter()
            .find(|phase| phase.name() == text.trim())
            .ok_or_else(|| {
                let names: Vec<_> = Phase::ALL.iter().map(|phase| phase.name()).collect();
                ChaosError::Setting(format!(
                    "unknown phase {text:?}; expected one of {}",
                    names.join(",")
                ))
            })
    }
}

/// How hard and how long one run pushes.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// Concurrent request workers (and connections) of the request phases.
    pub concurrency: usize,
    /// Wall time of each phase.
    pub duration: Duration,
    /// Most operations any one phase may start.
    pub max_operations: u64,
    /// Phases to run; run in [`Phase::ALL`] order whatever the order given.
    pub phases: Vec<Phase>,
    /// Threads of the local CPU-bound phases, normally the number of cores.
    pub cores: usize,
}

/// The JSON document a load run prints.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Concurrent request workers.
    pub concurrency: usize,
    /// Seconds each phase ran for.
    pub duration_secs: f64,
    /// Cores of this machine, and threads of the local phases.
    pub cores: usize,
    /// Most operations a phase may start.
    pub max_operations: u64,
    /// Tenant created for the run.
    pub tenant_id: String,
    /// Summary of each phase that ran.
    pub phases: PhaseReports,
    /// Phases whose setup failed (no users, no JWKS), with the reason.
    pub failed_phases: BTreeMap<&'static str, String>,
    /// Sign-in throughput divided by bare argon2 hashes per second.
    pub sign_in_vs_argon2: Option<f64>,
    /// The same ratio per CPU-second actually used (node's for sign-in, ours for argon2),
    /// which stays comparable when other work shares the machine.
    pub sign_in_vs_argon2_per_cpu_second: Option<f64>,
    /// Verifications per second per verifying thread.
    pub verify_per_core_per_sec: Option<f64>,
    /// Seconds the untimed `has_permission` setup took: defining the 1,000-permission graph,
    /// granting the chain roots and checking them once.
    pub has_permission_setup_secs: Option<f64>,
    /// Node resident memory right after start, MiB.
    pub node_rss_idle_mb: Option<f64>,
    /// Node resident memory after the last phase, MiB.
    pub node_rss_end_mb: Option<f64>,
    /// Node resident memory after each phase, MiB, when the node's pid is known.
    pub node_rss_after_phase_mb: BTreeMap<&'static str, f64>,
    /// Cores used by the node, this tool and the whole host during each phase.
    pub cpu_during_phase: BTreeMap<&'static str, CpuUsage>,
    /// One-minute load average of the host before the first phase.
    pub host_load_1m_start: Option<f64>,
    /// One-minute load average of the host after the last phase.
    pub host_load_1m_end: Option<f64>,
    /// Whether the node was started by this run or was already running.
    pub node: &'static str,
    /// The node's exit code after SIGTERM, when this run started it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_exit_code: Option<i32>,
    /// Local vs forwarded refresh on a 3-node cluster, when `cluster_refresh` ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_refresh: Option<ClusterRefreshReport>,
}

impl LoadReport {
    /// A report of no single-node phase, for a run of the cluster phase alone.
    pub fn without_node(settings: &LoadSettings) -> Self {
        LoadReport {
            concurrency: settings.concurrency,
            duration_secs: settings.duration.as_secs_f64(),
            cores: settings.cores,
            max_operations: settings.max_operations,
            tenant_id: String::new(),
            phases: PhaseReports::default(),
            failed_phases: BTreeMap::new(),
            sign_in_vs_argon2: None,
            sign_in_vs_argon2_per_cpu_second: None,
            verify_per_core_per_sec: None,
            has_permission_setup_secs: None,
            node_rss_idle_mb: None,
            node_rss_end_mb: None,
            node_rss_after_phase_mb: BTreeMap::new(),
            cpu_during_phase: BTreeMap::new(),
            host_load_1m_start: host_load_average(),
            host_load_1m_end: None,
            node: "none",
            node_exit_code: None,
            cluster_refresh: None,
        }
    }
}

/// The summaries of the phases that ran, in run order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseReports {
    /// The `sign_up` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_up: Option<PhaseSummary>,
    /// The `sign_in` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_in: Option<PhaseSummary>,
    /// The `refresh` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<PhaseSummary>,
    /// The `verify` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<PhaseSummary>,
    /// The `argon2_bare` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argon2_bare: Option<PhaseSummary>,
    /// The `has_permission` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_permission: Option<PhaseSummary>,
    /// The `share_check` phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_check: Option<PhaseSummary>,
}

impl PhaseReports {
    /// The summary of `phase`, if it ran (the cluster phase reports elsewhere).
    pub fn get(&self, phase: Phase) -> Option<&PhaseSummary> {
        self.slot(phase)?.as_ref()
    }

    /// Stores the summary of `phase`; ignored for the cluster phase.
    pub fn insert(&mut self, phase: Phase, summary: PhaseSummary) {
        if let Some(slot) = self.slot_mut(phase) {
            *slot = Some(summary);
        }
    }

    fn slot(&self, phase: Phase) -> Option<&Option<PhaseSummary>> {
        Some(match phase {
            Phase::SignUp => &self.sign_up,
            Phase::SignIn => &self.sign_in,
            Phase::Refresh => &self.refresh,
            Phase::Verify => &self.verify,
            Phase::Argon2Bare => &self.argon2_bare,
            Phase::HasPermission => &self.has_permission,
            Phase::ShareCheck => &self.share_check,
            Phase::ClusterRefresh => return None,
        })
    }

    fn slot_mut(&mut self, phase: Phase) -> Option<&mut Option<PhaseSummary>> {
        Some(match phase {
            Phase::SignUp => &mut self.sign_up,
            Phase::SignIn => &mut self.sign_in,
            Phase::Refresh => &mut self.refresh,
            Phase::Verify => &mut self.verify,
            Phase::Argon2Bare => &mut self.argon2_bare,
            Phase::HasPermission => &mut self.has_permission,
            Phase::ShareCheck => &mut self.share_check,
            Phase::ClusterRefresh => return None,
        })
    }
}

/// Creates a tenant on `target` and runs the selected phases against it.
pub async fn run_load(target: &Target, settings: &LoadSettings) -> Result<LoadReport, ChaosError> {
    let operator = Client::builder(&target.grpc_endpoint)
        .credentials(Credentials::Operator {
            operator_key: target.operator_key.clone(),
        })
        .timeout(REQUEST_TIMEOUT)
        .build()
        .await
        .map_err(|error| ChaosError::api("connect as operator", error))?;
    let created = operator
        .create_tenant("gatehouse-load", None)
        .await
        .map_err(|error| ChaosError::api("create tenant", error))?;
    let tenant_id = created
        .tenant
        .map(|tenant| tenant.tenant_id)
        .ok_or_else(|| ChaosError::Local("create tenant: reply has no tenant".to_owned()))?;
    eprintln!("gatehouse-load: tenant {tenant_id}");
    let workload = Workload::connect(
        &target.grpc_endpoint,
        &tenant_id,
        &created.publishable_client_key,
        settings.concurrency,
    )
    .await?;

    let mut phases = settings.phases.clone();
    phases.retain(|phase| !phase.is_cluster());
    phases.sort_unstable();
    phases.dedup();
    let host_load_1m_start = host_load_average();
    let mut summaries = PhaseReports::default();
    let mut rss_after_phase = BTreeMap::new();
    let mut cpu_during_phase = BTreeMap::new();
    let mut failed_phases = BTreeMap::new();
    let mut has_permission_setup_secs = None;
    let run = RunContext {
        target,
        tenant_id: &tenant_id,
        server_key: &created.secret_server_key,
        workload: &workload,
        settings,
    };
    for phase in phases {
        let workers = match phase {
            Phase::Verify | Phase::Argon2Bare => format!("{} threads", settings.cores),
            _ => format!("concurrency {}", settings.concurrency),
        };
        eprintln!(
            "gatehouse-load: {phase} for {:?} on {workers}",
            settings.duration
        );
        let mut meter = PhaseMeter::start(target.pid);
        let outcome = run_phase(phase, &run, &mut meter).await;
        cpu_during_phase.insert(
            phase.name(),
            CpuSample::take(target.pid).usage_since(&meter.cpu_before),
        );
        if phase == Phase::HasPermission {
            has_permission_setup_secs = meter.setup.map(|setup| round3(setup.as_secs_f64()));
        }
        let summary = match outcome {
            Ok(summary) => summary,
            Err(error) => {
                // A phase that cannot even start is reported; the other phases still run.
                eprintln!("gatehouse-load: {phase} could not run: {error}");
                failed_phases.insert(phase.name(), error.to_string());
                continue;
            }
        };
        eprintln!(
            "gatehouse-load: {phase}: {} ok, {} errors, {}/s",
            summary.operations, summary.errors, summary.throughput_per_sec
        );
        summaries.insert(phase, summary);
        if let Some(mb) = target.pid.and_then(rss_mb) {
            rss_after_phase.insert(phase.name(), mb);
        }
    }

    let rate = |phase: Phase| {
        summaries
            .get(phase)
            .map(|summary| summary.throughput_per_sec)
    };
    let sign_in_vs_argon2 = match (rate(Phase::SignIn), rate(Phase::Argon2Bare)) {
        (Some(sign_in), Some(argon2)) if argon2 > 0.0 => Some(round3(sign_in / argon2)),
        _ => None,
    };
    let per_cpu_second = |phase: Phase, cores: Option<f64>| {
        let cores = cores.filter(|cores| *cores > 0.0)?;
        Some(rate(phase)? / cores)
    };
    let sign_in_vs_argon2_per_cpu_second = per_cpu_second(
        Phase::SignIn,
        cpu_during_phase
            .get(Phase::SignIn.name())
            .and_then(|usage: &CpuUsage| usage.node_cores),
    )
    .zip(per_cpu_second(
        Phase::Argon2Bare,
        cpu_during_phase
            .get(Phase::Argon2Bare.name())
            .and_then(|usage: &CpuUsage| usage.load_generator_cores),
    ))
    .map(|(sign_in, argon2)| round3(sign_in / argon2));
    let verify_per_core_per_sec = summaries.get(Phase::Verify).and_then(|summary| {
        let threads = summary.threads.filter(|threads| *threads > 0)?;
        Some(round3(summary.throughput_per_sec / threads as f64))
    });
    Ok(LoadReport {
        concurrency: settings.concurrency,
        duration_secs: settings.duration.as_secs_f64(),
        cores: settings.cores,
        max_operations: settings.max_operations,
        tenant_id,
        phases: summaries,
        failed_phases,
        sign_in_vs_argon2,
        sign_in_vs_argon2_per_cpu_second,
        verify_per_core_per_sec,
        has_permission_setup_secs,
        node_rss_idle_mb: None,
        node_rss_end_mb: None,
        node_rss_after_phase_mb: rss_after_phase,
        cpu_during_phase,
        host_load_1m_start,
        host_load_1m_end: host_load_average(),
        node: "external",
        node_exit_code: None,
        cluster_refresh: None,
    })
}

/// What the phases of one run share.
struct RunContext<'a> {
    target: &'a Target,
    tenant_id: &'a str,
    /// The tenant's secret server key, for the setup of the authorization phases.
    server_key: &'a str,
    workload: &'a Arc<Workload>,
    settings: &'a LoadSettings,
}

/// Where a phase's CPU use is measured from, and how long its untimed setup took.
struct PhaseMeter {
    pid: Option<u32>,
    started: Instant,
    cpu_before: CpuSample,
    setup: Option<Duration>,
}

impl PhaseMeter {
    fn start(pid: Option<u32>) -> Self {
        PhaseMeter {
            pid,
            started: Instant::now(),
            cpu_before: CpuSample::take(pid),
            setup: None,
        }
    }

    /// Ends the untimed setup: the phase's CPU use is measured from here on.
    fn setup_done(&mut self) {
        self.setup = Some(self.started.elapsed());
        self.cpu_before = CpuSample::take(self.pid);
    }
}

async fn run_phase(
    phase: Phase,
    run: &RunContext<'_>,
    meter: &mut PhaseMeter,
) -> Result<PhaseSummary, ChaosError> {
    let RunContext {
        target,
        tenant_id,
        server_key,
        workload,
        settings,
    } = *run;
    let budget = || Arc::new(Budget::new(settings.duration, settings.max_operations));
    match phase {
        Phase::SignUp => Ok(workload.sign_up(budget()).await),
        Phase::SignIn => {
            workload
                .ensure_accounts(settings.concurrency.max(8), SETUP_LIMIT)
                .await?;
            Ok(workload.sign_in(budget()).await)
        }
        Phase::Refresh => {
            workload
                .ensure_accounts(settings.concurrency, SETUP_LIMIT)
                .await?;
            let limits = (settings.duration, settings.max_operations);
            Ok(workload
                .refresh(move || Budget::new(limits.0, limits.1))
                .await)
        }
        Phase::Verify => {
            if workload.access_tokens().is_empty() {
                workload.ensure_accounts(8, SETUP_LIMIT).await?;
            }
            let tokens = workload.access_tokens();
            let issuer = target.issuer(tenant_id);
            let verifier = TokenVerifier::fetch(&target.http_base, &issuer, tenant_id).await?;
            let threads = settings.cores;
            let budget = budget();
            spawn_blocking(move || run_verify_phase(&verifier, &tokens, threads, &budget)).await
        }
        Phase::Argon2Bare => {
            let threads = settings.cores;
            let budget = budget();
            spawn_blocking(move || run_argon2_phase(threads, &budget)).await
        }
        Phase::HasPermission => {
            let server = server_clients(workload.connections(), require_key(server_key)?);
            let setup = prepare_permission_graph(&server, SETUP_LIMIT).await?;
            meter.setup_done();
            Ok(run_has_permission(&server, &setup, budget()).await)
        }
        Phase::ShareCheck => {
            let connections = workload.connections();
            let server = server_clients(connections, require_key(server_key)?);
            let (Some(server), Some(reader)) = (server.first(), connections.first()) else {
                return Err(ChaosError::Local("no connection to set up with".to_owned()));
            };
            let token = prepare_share(server, reader, SETUP_LIMIT).await?;
            meter.setup_done();
            Ok(run_share_check(connections, &token, budget()).await)
        }
        Phase::ClusterRefresh => Err(ChaosError::Setting(
            "cluster_refresh starts its own cluster; run_load does not run it".to_owned(),
        )),
    }
}

fn require_key(server_key: &str) -> Result<&str, ChaosError> {
    if server_key.is_empty() {
        Err(ChaosError::Local(
            "the tenant was created without a secret server key".to_owned(),
        ))
    } else {
        Ok(server_key)
    }
}

async fn spawn_blocking<F>(work: F) -> Result<PhaseSummary, ChaosError>
where
    F: FnOnce() -> Result<PhaseSummary, ChaosError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ChaosError::Local(format!("local phase panicked: {error}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_parse_by_report_name() {
        for phase in Phase::ALL {
            assert_eq!(phase.name().parse::<Phase>().ok(), Some(phase));
        }
        assert!("sign-in".parse::<Phase>().is_err());
    }

    #[test]
    fn run_order_is_the_listed_order_with_authorization_then_the_cluster_last() {
        let mut sorted = Phase::ALL;
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            Phase::ALL,
            "phases run sorted, so ALL must be sorted"
        );
        assert_eq!(
            Phase::ALL[Phase::ALL.len() - 3..],
            [
                Phase::HasPermission,
                Phase::ShareCheck,
                Phase::ClusterRefresh
            ]
        );
        assert!(Phase::ALL.iter().filter(|phase| phase.is_cluster()).count() == 1);
        let mut reports = PhaseReports::default();
        reports.insert(
            Phase::ShareCheck,
            crate::stats::Tally::default().summarize(Duration::from_secs(1)),
        );
        assert!(reports.get(Phase::ShareCheck).is_some());
        assert!(reports.get(Phase::HasPermission).is_none());
        reports.insert(
            Phase::ClusterRefresh,
            crate::stats::Tally::default().summarize(Duration::from_secs(1)),
        );
        assert!(reports.get(Phase::ClusterRefresh).is_none());
        let json = serde_json::to_value(&reports).unwrap_or_default();
        assert!(json["share_check"].is_object(), "{json}");
    }
}
