//! The `cluster_refresh` benchmark: refresh latency and throughput on a 3-node sandbox
//! cluster, sent to the node that owns each session (local) and to one that does not
//! (forwarded over the internal service to the owner).
//!
//! Each session's owner is what node `a` answers to `Cluster.GetOwner` (its rendezvous
//! placement over the serving members), confirmed by the session actor counts the nodes
//! gossip after a warm-up refresh of every session through its owner. Each mode runs at the configured concurrency and
//! then serially (one request at a time), which shows the extra hop without queueing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_cluster_tests::{ClusterSandbox, SandboxTenant, eventually};
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::v1;
use serde::Serialize;

use crate::budget::Budget;
use crate::error::ChaosError;
use crate::stats::{PhaseSummary, Tally, round3};

/// Nodes of the benchmark cluster.
pub const NODES: usize = 3;
/// How long the gossiped actor counts may take to match the predicted placement.
const PLACEMENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Password of the benchmark's users.
const PASSWORD: &str = "cluster refresh benchmark password";
/// The metric a node increments for every refresh it forwarded and got an answer to.
const FORWARDED_METRIC: &str = "gatehouse_forwarded_calls_total{";

/// How the benchmark runs.
#[derive(Debug, Clone)]
pub struct ClusterRefreshSettings {
    /// The `gatehouse` binary (a release build for meaningful numbers).
    pub binary: PathBuf,
    /// Concurrent workers of the concurrent modes.
    pub concurrency: usize,
    /// Wall time of each of the four modes (run in two halves each).
    pub duration: Duration,
    /// Most refreshes any one mode may start.
    pub max_operations: u64,
}

/// The benchmark's result, as it appears in the `gatehouse-load` JSON.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterRefreshReport {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// The node binary.
    pub binary: String,
    /// Sessions refreshed in chains (each by one worker at a time).
    pub sessions: usize,
    /// Sessions per owner, as `Cluster.GetOwner` placed them.
    pub owned_sessions_by_node: BTreeMap<String, u64>,
    /// Session actors per node as gossiped after the warm-up.
    pub session_actors_by_node: BTreeMap<String, u64>,
    /// Whether the gossiped actor counts matched the placement `Cluster.GetOwner` gave.
    pub placement_confirmed: bool,
    /// Each request to the session's owner, `concurrency` at a time.
    pub local: PhaseSummary,
    /// Each request to a node that does not own the session, `concurrency` at a time.
    pub forwarded: PhaseSummary,
    /// Each request to the owner, one at a time.
    pub local_serial: PhaseSummary,
    /// Each request to a non-owner, one at a time.
    pub forwarded_serial: PhaseSummary,
    /// Answered forwarded refreshes the nodes counted during each mode (from `/metrics`):
    /// about zero for the local modes, about every operation for the forwarded ones.
    pub forwarded_calls_counted: BTreeMap<&'static str, u64>,
    /// Forwarded p50 minus local p50, serially, in milliseconds: the cost of the hop.
    pub serial_p50_forwarding_cost_ms: Option<f64>,
    /// Forwarded p50 minus local p50 under concurrency, in milliseconds.
    pub concurrent_p50_forwarding_cost_ms: Option<f64>,
    /// Forwarded throughput divided by local throughput under concurrency.
    pub concurrent_throughput_ratio: Option<f64>,
}

/// A session of the benchmark with its owner and the node that forwards to it.
#[derive(Debug, Clone)]
struct BenchSession {
    owner: usize,
    forwarder: usize,
    refresh_token: String,
}

/// Which node a mode sends a session's refreshes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Owner,
    NonOwner,
}

/// Starts the cluster, creates the sessions and measures the four modes.
pub async fn run_cluster_refresh(
    settings: &ClusterRefreshSettings,
) -> Result<ClusterRefreshReport, ChaosError> {
    let sandbox = ClusterSandbox::builder()
        .nodes(NODES)
        .binary(&settings.binary)
        .build()
        .await
        .map_err(|error| ChaosError::Node(format!("start the cluster: {error}")))?;
    let tenant = sandbox
        .create_tenant("cluster-refresh")
        .await
        .map_err(|error| ChaosError::Node(format!("create the tenant: {error}")))?;
    let node_ids: Vec<String> = sandbox.nodes().iter().map(|n| n.id().to_owned()).collect();
    ensure_all_serving(&sandbox).await?;
    let concurrency = settings.concurrency.max(1);
    let count = concurrency.max(2 * NODES);
    eprintln!("gatehouse-load: cluster_refresh: signing up {count} users on {NODES} nodes");
    let mut sessions = create_sessions(&sandbox, &tenant, &node_ids, count).await?;
    let mut owned: BTreeMap<String, u64> = node_ids.iter().map(|id| (id.clone(), 0)).collect();
    for session in &sessions {
        *owned.entry(node_ids[session.owner].clone()).or_default() += 1;
    }

    // Warm-up: one refresh per session through its owner activates its actor there.
    let warm_up = Budget::new(settings.duration.max(Duration::from_secs(30)), u64::MAX);
    let clients = clients_per_node(&sandbox, &tenant)?;
    let (tally, rest) = drive(&clients, sessions, Route::Owner, Arc::new(warm_up), true).await;
    sessions = rest;
    if tally.errors() > 0 || sessions.is_empty() {
        return Err(ChaosError::Local(format!(
            "warm-up refreshes failed: {tally:?}"
        )));
    }
    let (placement_confirmed, session_actors_by_node) = confirm_placement(&sandbox, &owned).await;

    // Each mode runs in two halves in the order A B B A, so drift over the run (a growing
    // database, a warming cache) weighs on local and forwarded alike.
    let half = settings.duration / 2;
    let half_operations = settings.max_operations.div_ceil(2);
    let modes = [
        ("local", Route::Owner, concurrency),
        ("forwarded", Route::NonOwner, concurrency),
        ("forwarded", Route::NonOwner, concurrency),
        ("local", Route::Owner, concurrency),
        ("local_serial", Route::Owner, 1),
        ("forwarded_serial", Route::NonOwner, 1),
        ("forwarded_serial", Route::NonOwner, 1),
        ("local_serial", Route::Owner, 1),
    ];
    let mut measured: BTreeMap<&'static str, (Tally, Duration)> = BTreeMap::new();
    let mut forwarded_calls_counted: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (name, route, workers) in modes {
        eprintln!("gatehouse-load: cluster_refresh {name} for {half:?} on {workers} workers");
        let before = forwarded_refreshes(&sandbox).await;
        let (tally, elapsed, rest) = measure(
            &sandbox,
            &tenant,
            sessions,
            route,
            workers,
            Budget::new(half, half_operations),
        )
        .await?;
        sessions = rest;
        let after = forwarded_refreshes(&sandbox).await;
        *forwarded_calls_counted.entry(name).or_default() += after.saturating_sub(before);
        eprintln!(
            "gatehouse-load: cluster_refresh {name}: {} ok, {} errors in {elapsed:?}",
            tally.operations(),
            tally.errors()
        );
        let entry = measured.entry(name).or_default();
        entry.0.merge(tally);
        entry.1 += elapsed;
        if sessions.is_empty() {
            return Err(ChaosError::Local(format!(
                "every refresh chain broke during {name}"
            )));
        }
    }
    let mut summaries: BTreeMap<&'static str, PhaseSummary> = measured
        .into_iter()
        .map(|(name, (tally, elapsed))| (name, tally.summarize(elapsed)))
        .collect();
    let mut take = |name: &str| summaries.remove(name).unwrap_or_else(empty_summary);
    let (local, forwarded) = (take("local"), take("forwarded"));
    let (local_serial, forwarded_serial) = (take("local_serial"), take("forwarded_serial"));
    let difference = |slow: Option<f64>, fast: Option<f64>| Some(round3(slow? - fast?));
    Ok(ClusterRefreshReport {
        nodes: NODES,
        binary: settings.binary.display().to_string(),
        sessions: count,
        owned_sessions_by_node: owned,
        session_actors_by_node,
        placement_confirmed,
        serial_p50_forwarding_cost_ms: difference(forwarded_serial.p50_ms, local_serial.p50_ms),
        concurrent_p50_forwarding_cost_ms: difference(forwarded.p50_ms, local.p50_ms),
        concurrent_throughput_ratio: (local.throughput_per_sec > 0.0)
            .then(|| round3(forwarded.throughput_per_sec / local.throughput_per_sec)),
        local,
        forwarded,
        local_serial,
        forwarded_serial,
        forwarded_calls_counted,
    })
}

/// Fails unless node `a` sees all [`NODES`] members serving.
async fn ensure_all_serving(sandbox: &ClusterSandbox) -> Result<(), ChaosError> {
    let status = sandbox
        .node(0)
        .cluster_status()
        .await
        .map_err(|error| ChaosError::Node(format!("cluster status: {error}")))?;
    let serving = status
        .members
        .iter()
        .filter(|member| member.status == "serving")
        .count();
    if serving == NODES {
        Ok(())
    } else {
        Err(ChaosError::Node(format!(
            "{serving} of {NODES} members serve"
        )))
    }
}

/// The node that owns `session_id` of `tenant`, as node `a` answers `Cluster.GetOwner`.
pub async fn session_owner(
    sandbox: &ClusterSandbox,
    tenant_id: &str,
    session_id: &str,
) -> Result<String, ChaosError> {
    let owner = sandbox
        .node(0)
        .owner(v1::ActorKind::Session, tenant_id, session_id)
        .await
        .map_err(|error| ChaosError::Node(format!("owner of session {session_id}: {error}")))?;
    Ok(owner.node_id)
}

/// Signs up `count` users round-robin over the nodes and places their sessions.
async fn create_sessions(
    sandbox: &ClusterSandbox,
    tenant: &SandboxTenant,
    node_ids: &[String],
    count: usize,
) -> Result<Vec<BenchSession>, ChaosError> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut sessions = Vec::with_capacity(count);
    for number in 0..count {
        let node = sandbox.node(number % NODES);
        let client = node
            .client(tenant)
            .map_err(|error| ChaosError::Node(error.to_string()))?;
        let email = format!("bench-{}-{number}@example.com", &run[..12]);
        let reply = client
            .sign_up_with_password(&email, PASSWORD)
            .await
            .map_err(|error| ChaosError::api(format!("sign up {email}"), error))?;
        let owner_id = session_owner(sandbox, &tenant.id, &reply.session_id).await?;
        let owner = node_ids
            .iter()
            .position(|id| *id == owner_id)
            .ok_or_else(|| ChaosError::Local(format!("unknown owner {owner_id}")))?;
        // Alternate between the two other nodes, so both forward.
        let forwarder = (owner + 1 + number % (NODES - 1)) % NODES;
        sessions.push(BenchSession {
            owner,
            forwarder,
            refresh_token: reply.refresh_token,
        });
    }
    Ok(sessions)
}

/// Waits (bounded) until node `a` sees exactly the predicted session actors per node.
async fn confirm_placement(
    sandbox: &ClusterSandbox,
    owned: &BTreeMap<String, u64>,
) -> (bool, BTreeMap<String, u64>) {
    let node = sandbox.node(0);
    let seen = std::sync::Mutex::new(BTreeMap::new());
    let matched = eventually(PLACEMENT_TIMEOUT, || async {
        let status = node.cluster_status().await.map_err(|e| e.to_string())?;
        let actors: BTreeMap<String, u64> = status
            .members
            .iter()
            .map(|member| {
                let count = member.actors.get("session").copied().unwrap_or(0);
                (member.node_id.clone(), count)
            })
            .collect();
        let matches = &actors == owned;
        if let Ok(mut seen) = seen.lock() {
            *seen = actors;
        }
        if matches {
            Ok(())
        } else {
            Err("gossiped actor counts differ from the placement".to_owned())
        }
    })
    .await
    .is_ok();
    let seen = seen.into_inner().unwrap_or_default();
    (matched, seen)
}

/// One client per node, each on its own connection.
fn clients_per_node(
    sandbox: &ClusterSandbox,
    tenant: &SandboxTenant,
) -> Result<Vec<Client>, ChaosError> {
    sandbox
        .nodes()
        .iter()
        .map(|node| {
            node.client(tenant)
                .map_err(|error| ChaosError::Node(error.to_string()))
        })
        .collect()
}

/// Runs one mode: `workers` workers, each refreshing its share of the sessions in turn;
/// returns what they measured and how long they took.
async fn measure(
    sandbox: &ClusterSandbox,
    tenant: &SandboxTenant,
    sessions: Vec<BenchSession>,
    route: Route,
    workers: usize,
    budget: Budget,
) -> Result<(Tally, Duration, Vec<BenchSession>), ChaosError> {
    let budget = Arc::new(budget);
    let mut shares: Vec<Vec<BenchSession>> = vec![Vec::new(); workers.max(1)];
    for (index, session) in sessions.into_iter().enumerate() {
        shares[index % workers.max(1)].push(session);
    }
    let started = Instant::now();
    let mut handles = Vec::with_capacity(shares.len());
    for share in shares {
        let clients = clients_per_node(sandbox, tenant)?;
        let budget = budget.clone();
        handles.push(tokio::spawn(async move {
            drive(&clients, share, route, budget, false).await
        }));
    }
    let mut total = Tally::default();
    let mut remaining = Vec::new();
    for handle in handles {
        match handle.await {
            Ok((tally, sessions)) => {
                total.merge(tally);
                remaining.extend(sessions);
            }
            Err(_) => total.merge(Tally::panicked()),
        }
    }
    Ok((total, started.elapsed(), remaining))
}

/// Refreshes `sessions` in turn through `route` until `budget` runs out (or, with
/// `once`, after one refresh of each); a chain that fails is dropped.
async fn drive(
    clients: &[Client],
    mut sessions: Vec<BenchSession>,
    route: Route,
    budget: Arc<Budget>,
    once: bool,
) -> (Tally, Vec<BenchSession>) {
    let mut tally = Tally::default();
    let mut next = 0;
    let mut done = 0;
    while !sessions.is_empty() && (!once || done < sessions.len()) && budget.claim() {
        let index = next % sessions.len();
        let session = &mut sessions[index];
        let node = match route {
            Route::Owner => session.owner,
            Route::NonOwner => session.forwarder,
        };
        let started = Instant::now();
        match clients[node].refresh_session(&session.refresh_token).await {
            Ok(reply) => {
                tally.success(started.elapsed());
                session.refresh_token = reply.refresh_token;
                next += 1;
                done += 1;
            }
            Err(error) => {
                tally.error(error.code.as_str());
                // The token may be spent: this chain cannot go on.
                sessions.remove(index);
            }
        }
    }
    (tally, sessions)
}

/// Answered forwarded refreshes counted by all nodes so far (0 for a node that cannot
/// be scraped).
async fn forwarded_refreshes(sandbox: &ClusterSandbox) -> u64 {
    let Ok(http) = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
    else {
        return 0;
    };
    let mut total = 0.0;
    for node in sandbox.nodes() {
        let url = node.metrics_url();
        let Ok(response) = http.get(&url).send().await else {
            continue;
        };
        let Ok(text) = response.text().await else {
            continue;
        };
        total += forwarded_refreshes_in(&text);
    }
    total as u64
}

/// Sums the answered `refresh_session` samples of the forwarded-calls counter.
pub fn forwarded_refreshes_in(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| {
            line.starts_with(FORWARDED_METRIC)
                && line.contains("call=\"refresh_session\"")
                && line.contains("outcome=\"answered\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn empty_summary() -> PhaseSummary {
    Tally::default().summarize(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_answered_forwarded_refreshes() {
        let metrics = "\
# TYPE gatehouse_forwarded_calls_total counter
gatehouse_forwarded_calls_total{call=\"refresh_session\",outcome=\"answered\"} 12
gatehouse_forwarded_calls_total{call=\"refresh_session\",outcome=\"unreachable\"} 3
gatehouse_forwarded_calls_total{call=\"revoke_session\",outcome=\"answered\"} 5
gatehouse_forwarded_call_seconds_count{call=\"refresh_session\"} 15";
        assert_eq!(forwarded_refreshes_in(metrics), 12.0);
        assert_eq!(forwarded_refreshes_in(""), 0.0);
    }
}
