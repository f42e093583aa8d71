//! One load run: create a tenant, run the selected phases in order, build the report
//! ([`crate::report`]).
//!
//! Each phase reports the same [`PhaseSummary`]. The authorization phases
//! (`has_permission`, `share_check`) build their data first, untimed, and their CPU use
//! (`cpu_during_phase`) covers only the timed part; the other phases include their small
//! setup (the first sign-ups or sign-ins) in it. `sign_in_code` (see [`crate::email`]) also
//! sets up untimed, and its CPU use includes the wait for its outbox to drain; so do the
//! second-factor phases `passkey_sign_in` and `totp_complete` (see [`crate::factors`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_cluster_tests::SmtpServer;
use gatehouse_protocol::sdk::{Client, Credentials};

use crate::authz::{
    prepare_permission_graph, prepare_share, run_has_permission, run_share_check, server_clients,
};
use crate::budget::Budget;
use crate::email::{prepare_sign_in_code, run_sign_in_code};
use crate::error::ChaosError;
use crate::factors::{
    prepare_passkey_sign_in, prepare_totp_complete, run_passkey_sign_in, run_totp_complete,
    totp_users_per_worker,
};
use crate::hashing::run_argon2_phase;
use crate::node::Target;
use crate::procfs::{CpuSample, CpuUsage, host_load_average, rss_mb};
use crate::report::{LoadReport, PhaseReports};
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
    /// Sign in with a registered passkey (begin, software authenticator, finish); opt-in.
    PasskeySignIn,
    /// Sign in with a password, answered `MFA_REQUIRED`, then complete with a TOTP code;
    /// opt-in.
    TotpComplete,
    /// The OpenID provider: a signed-in browser's authorize answered with a code, then the
    /// token endpoint for it (one flow); opt-in, see [`crate::oidc_flows`].
    OidcCodeFlow,
    /// The OpenID provider's token endpoint refreshing; opt-in.
    OidcRefresh,
    /// The hosted sign-in page, to its response headers; opt-in.
    SignInPage,
    /// Check a user's permissions, nested ten deep, with the server key.
    HasPermission,
    /// Read through an application-resource share by its token, with the client key.
    ShareCheck,
    /// Send sign-in codes to new addresses through a real SMTP server, then measure commit
    /// to acceptance; opt-in, the node must be started with [`crate::email::node_env`].
    SignInCode,
    /// Refresh on a 3-node sandbox cluster of its own, sent to each session's owner and to
    /// a node that forwards to the owner; opt-in, see [`crate::cluster_refresh`].
    ClusterRefresh,
}

impl Phase {
    /// Every phase, in run order.
    pub const ALL: [Phase; 14] = [
        Phase::SignUp,
        Phase::SignIn,
        Phase::Refresh,
        Phase::Verify,
        Phase::Argon2Bare,
        Phase::PasskeySignIn,
        Phase::TotpComplete,
        Phase::OidcCodeFlow,
        Phase::OidcRefresh,
        Phase::SignInPage,
        Phase::HasPermission,
        Phase::ShareCheck,
        Phase::SignInCode,
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
            Phase::PasskeySignIn => "passkey_sign_in",
            Phase::TotpComplete => "totp_complete",
            Phase::OidcCodeFlow => "oidc_code_flow",
            Phase::OidcRefresh => "oidc_refresh",
            Phase::SignInPage => "sign_in_page",
            Phase::HasPermission => "has_permission",
            Phase::ShareCheck => "share_check",
            Phase::SignInCode => "sign_in_code",
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
    /// `sign_in_code`: the most codes sent per second in all; `None` for as fast as it goes.
    pub email_rate: Option<f64>,
    /// Phases to run; run in [`Phase::ALL`] order whatever the order given.
    pub phases: Vec<Phase>,
    /// Threads of the local CPU-bound phases, normally the number of cores.
    pub cores: usize,
}

/// Creates a tenant on `target` and runs the selected phases against it; `smtp` is the
/// server the node sends to, which `sign_in_code` needs.
pub async fn run_load(
    target: &Target,
    settings: &LoadSettings,
    smtp: Option<&SmtpServer>,
) -> Result<LoadReport, ChaosError> {
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
    workload.sign_up_as_server(&created.secret_server_key);

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
        smtp,
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
        if let Some(delivery) = &summary.email_delivery {
            eprintln!(
                "gatehouse-load: {phase}: {} of {} sent in {} s after the phase, \
                 commit to acceptance p50 {:?} ms p99 {:?} ms",
                delivery.sent,
                delivery.expected,
                delivery.drain_secs,
                delivery.send_p50_ms,
                delivery.send_p99_ms
            );
        }
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
    /// The SMTP server the node sends to, when this tool started both.
    smtp: Option<&'a SmtpServer>,
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
        smtp,
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
        Phase::PasskeySignIn => {
            let setup =
                Box::pin(prepare_passkey_sign_in(workload.connections(), SETUP_LIMIT)).await?;
            meter.setup_done();
            Ok(Box::pin(run_passkey_sign_in(setup, budget())).await)
        }
        Phase::TotpComplete => {
            let users = totp_users_per_worker(
                settings.duration,
                settings.concurrency,
                settings.cores,
                settings.max_operations,
            );
            eprintln!("gatehouse-load: enrolling TOTP for {users} users per worker first");
            let setup = Box::pin(prepare_totp_complete(
                workload.connections(),
                users,
                SETUP_LIMIT,
            ))
            .await?;
            meter.setup_done();
            Ok(Box::pin(run_totp_complete(setup, budget())).await)
        }
        Phase::OidcCodeFlow | Phase::OidcRefresh | Phase::SignInPage => {
            workload
                .ensure_accounts(settings.concurrency, SETUP_LIMIT)
                .await?;
            let server = server_clients(workload.connections(), require_key(server_key)?);
            let server = server
                .first()
                .ok_or_else(|| ChaosError::Local("no connection to set up with".to_owned()))?;
            let mut accounts = workload.accounts();
            accounts.truncate(settings.concurrency);
            let base = target.http_base.trim_end_matches('/');
            let browsers = crate::oidc_flows::prepare(
                base,
                tenant_id,
                &format!("{base}/t/{tenant_id}"),
                server,
                &accounts,
            )
            .await?;
            meter.setup_done();
            match phase {
                Phase::OidcCodeFlow => {
                    Ok(crate::oidc_flows::run_code_flows(browsers, budget()).await)
                }
                Phase::OidcRefresh => crate::oidc_flows::run_refreshes(browsers, budget()).await,
                _ => Ok(crate::oidc_flows::run_sign_in_page(browsers, budget()).await),
            }
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
        Phase::SignInCode => {
            let smtp = smtp.ok_or_else(|| {
                ChaosError::Setting(
                    "sign_in_code needs the SMTP server this tool starts with its node; \
                     it cannot run against --endpoint"
                        .to_owned(),
                )
            })?;
            let setup = prepare_sign_in_code(
                &target.grpc_endpoint,
                &target.operator_key,
                settings.concurrency,
            )
            .await?;
            meter.setup_done();
            run_sign_in_code(&setup, smtp, budget(), settings.email_rate).await
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
    fn run_order_is_the_listed_order_with_authorization_then_email_then_the_cluster_last() {
        let mut sorted = Phase::ALL;
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            Phase::ALL,
            "phases run sorted, so ALL must be sorted"
        );
        assert_eq!(
            Phase::ALL[Phase::ALL.len() - 4..],
            [
                Phase::HasPermission,
                Phase::ShareCheck,
                Phase::SignInCode,
                Phase::ClusterRefresh
            ]
        );
        assert!(Phase::ALL.iter().filter(|phase| phase.is_cluster()).count() == 1);
    }
}
