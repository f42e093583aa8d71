//! `gatehouse-load`: throughput and latency of sign-up, sign-in, refresh, local token
//! verification, bare argon2, permission checks over a ten-deep graph and share-token
//! checks against one node, and (opt-in) sign-in codes sent through a real SMTP server
//! (`sign_in_code`) and local vs forwarded refresh on a 3-node cluster of its own
//! (`cluster_refresh`), printed as one JSON document.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gatehouse_chaos::cluster_refresh::{ClusterRefreshSettings, run_cluster_refresh};
use gatehouse_chaos::email;
use gatehouse_chaos::node::{self, SpawnedNode, Target};
use gatehouse_chaos::procfs::{host_load_average, rss_mb};
use gatehouse_chaos::{ChaosError, LoadReport, LoadSettings, Phase, run_load};
use gatehouse_cluster_tests::SmtpServer;

/// How long a started node may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a node gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Load generator for a Gatehouse node; progress on stderr, the JSON report on stdout.
#[derive(Debug, Parser)]
#[command(name = "gatehouse-load", version)]
struct Args {
    /// gRPC endpoint of a running node (loopback only); without it a node is started.
    #[arg(long, requires_all = ["http", "operator_key_file"])]
    endpoint: Option<String>,
    /// HTTP base URL of the running node, for its JWKS.
    #[arg(long, requires = "endpoint")]
    http: Option<String>,
    /// File holding the running node's operator key.
    #[arg(long, requires = "endpoint")]
    operator_key_file: Option<PathBuf>,
    /// Public URL of the running node, when its token issuer is not the HTTP base URL.
    #[arg(long, requires = "endpoint")]
    public_url: Option<String>,
    /// Pid of the running node, to report its memory.
    #[arg(long, requires = "endpoint")]
    node_pid: Option<u32>,
    /// `gatehouse` binary to start (default: target/release/gatehouse, else the test kit's
    /// lookup: beside this binary, then target/debug); ignored with --endpoint.
    #[arg(long, env = "GATEHOUSE_BIN")]
    gatehouse_bin: Option<PathBuf>,
    /// Seconds each phase runs.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Concurrent request workers (one connection each).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Most operations any one phase may start.
    #[arg(long, default_value_t = 1_000_000)]
    max_operations: u64,
    /// sign_in_code only: send at most this many codes per second in all (paced per
    /// worker), to measure send latency below the SMTP server's capacity; 0 = no cap.
    #[arg(long, default_value_t = 0.0)]
    email_rate: f64,
    /// Phases to run, comma-separated; they run in this order whatever the order given:
    /// sign_up, sign_in, refresh, verify, argon2_bare, has_permission (HasPermission with
    /// the server key over 1,000 permissions in 100 chains 10 deep; untimed setup reported
    /// as has_permission_setup_secs), share_check (ReadThroughShare by share token with
    /// the client key) and, only when listed, passkey_sign_in (BeginPasskeySignIn, the
    /// kit's software authenticator, FinishPasskeySignIn; one user and passkey per worker,
    /// finish alone as final_call), totp_complete (password sign-in answered MFA_REQUIRED,
    /// then CompleteMfa with a TOTP code; a pool of TOTP users per worker, CompleteMfa
    /// alone as final_call), oidc_code_flow (a browser signed in through the hosted page
    /// is answered a code by the OpenID provider's authorize, then the token endpoint
    /// redeems it: one flow), oidc_refresh (the token endpoint's refresh grant),
    /// sign_in_page (GET of the hosted sign-in page, to its response headers), sign_in_code (SendSignInCode to new
    /// addresses; the started node sends through an aiosmtpd server this tool starts,
    /// polling every 20 ms; commit-to-acceptance latency from the delivery log once the
    /// outbox drains; not with --endpoint) and cluster_refresh (a 3-node cluster on a
    /// PostgreSQL it starts; refresh sent to each session's owner vs to a non-owner,
    /// concurrently then serially, each mode for --duration).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "sign_up,sign_in,refresh,verify,argon2_bare,has_permission,share_check"
    )]
    phases: Vec<Phase>,
    /// Threads of the local phases (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match Box::pin(run(args)).await {
        Ok(report) => match serde_json::to_string_pretty(&report) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("gatehouse-load: cannot encode the report: {error}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("gatehouse-load: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<LoadReport, ChaosError> {
    let settings = settings(&args)?;
    let mut report = if settings.phases.iter().any(|phase| !phase.is_cluster()) {
        Box::pin(run_on_one_node(&args, &settings)).await?
    } else {
        LoadReport::without_node(&settings)
    };
    if settings.phases.contains(&Phase::ClusterRefresh) {
        let binary = args
            .gatehouse_bin
            .clone()
            .unwrap_or_else(node::default_binary);
        let binary = binary.canonicalize().map_err(|error| {
            ChaosError::Setting(format!("gatehouse binary {}: {error}", binary.display()))
        })?;
        eprintln!("gatehouse-load: cluster_refresh with {}", binary.display());
        let cluster = ClusterRefreshSettings {
            binary,
            concurrency: settings.concurrency,
            duration: settings.duration,
            max_operations: settings.max_operations,
        };
        report.cluster_refresh = Some(Box::pin(run_cluster_refresh(&cluster)).await?);
        if report.node == "none" {
            report.host_load_1m_end = host_load_average();
        }
    }
    Ok(report)
}

async fn run_on_one_node(args: &Args, settings: &LoadSettings) -> Result<LoadReport, ChaosError> {
    match &args.endpoint {
        Some(endpoint) => {
            let target = external_target(args, endpoint)?;
            target.ensure_loopback()?;
            let idle = target.pid.and_then(rss_mb);
            let mut report = Box::pin(run_load(&target, settings, None)).await?;
            report.node_rss_idle_mb = idle;
            report.node_rss_end_mb = target.pid.and_then(rss_mb);
            Ok(report)
        }
        None => {
            let binary = args
                .gatehouse_bin
                .clone()
                .unwrap_or_else(node::default_binary);
            let smtp = if settings.phases.contains(&Phase::SignInCode) {
                Some(start_smtp_server().await?)
            } else {
                None
            };
            let env = smtp
                .as_ref()
                .map(|smtp| email::node_env(smtp.port()))
                .unwrap_or_default();
            eprintln!("gatehouse-load: starting {}", binary.display());
            let spawned = SpawnedNode::start(&binary, READY_TIMEOUT, &env).await?;
            let target = spawned.target.clone();
            eprintln!(
                "gatehouse-load: node pid {:?} grpc {} http {} in {}",
                target.pid,
                target.grpc_endpoint,
                target.http_base,
                spawned.dir().display()
            );
            let idle = target.pid.and_then(rss_mb);
            let result = Box::pin(run_load(&target, settings, smtp.as_ref())).await;
            let end = target.pid.and_then(rss_mb);
            eprintln!("gatehouse-load: stopping the node");
            let exit = spawned.stop(STOP_GRACE).await;
            let mut report = result?;
            let exit = exit?;
            if exit.killed {
                eprintln!("gatehouse-load: node ignored SIGTERM for {STOP_GRACE:?}; killed");
            }
            eprintln!("gatehouse-load: node exited with {}", exit.status);
            report.node = "spawned";
            report.node_exit_code = exit.status.code();
            report.node_rss_idle_mb = idle;
            report.node_rss_end_mb = end;
            Ok(report)
        }
    }
}

/// The SMTP server the node sends the `sign_in_code` messages to.
async fn start_smtp_server() -> Result<SmtpServer, ChaosError> {
    let smtp = tokio::task::spawn_blocking(SmtpServer::try_start)
        .await
        .map_err(|error| ChaosError::Local(format!("starting the SMTP server panicked: {error}")))?
        .map_err(|error| ChaosError::Node(format!("SMTP server: {error}")))?;
    eprintln!("gatehouse-load: SMTP server on 127.0.0.1:{}", smtp.port());
    Ok(smtp)
}

fn settings(args: &Args) -> Result<LoadSettings, ChaosError> {
    if !(args.duration.is_finite() && args.duration > 0.0) {
        return Err(ChaosError::Setting(
            "--duration must be positive".to_owned(),
        ));
    }
    if args.concurrency == 0 {
        return Err(ChaosError::Setting(
            "--concurrency must be at least 1".to_owned(),
        ));
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Ok(LoadSettings {
        concurrency: args.concurrency,
        duration: Duration::from_secs_f64(args.duration),
        max_operations: args.max_operations,
        email_rate: (args.email_rate > 0.0).then_some(args.email_rate),
        phases: args.phases.clone(),
        cores: args.threads.unwrap_or(cores).max(1),
    })
}

fn external_target(args: &Args, endpoint: &str) -> Result<Target, ChaosError> {
    let (Some(http), Some(key_file)) = (&args.http, &args.operator_key_file) else {
        return Err(ChaosError::Setting(
            "--endpoint needs --http and --operator-key-file".to_owned(),
        ));
    };
    let operator_key = std::fs::read_to_string(key_file)
        .map_err(|error| ChaosError::Setting(format!("{}: {error}", key_file.display())))?
        .trim()
        .to_owned();
    Ok(Target {
        grpc_endpoint: endpoint.to_owned(),
        http_base: http.clone(),
        operator_key,
        pid: args.node_pid,
        public_url: args.public_url.clone(),
    })
}
