//! Gossip membership with chitchat: each node gossips its addresses, status and actor
//! counts; phi-accrual failure detection drops dead nodes within a few seconds.

use crate::error::NodeError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chitchat::transport::UdpTransport;
use chitchat::{
    ChitchatConfig, ChitchatHandle, ChitchatId, FailureDetectorConfig, NodeState, ProtocolVersion,
    spawn_chitchat,
};
use gatehouse_actors::Gatehouse;
use gatehouse_actors::cluster::{Member, MemberStatus, Membership, MembershipPublisher};

/// How often gossip rounds run; failure detection scales with it.
const GOSSIP_INTERVAL: Duration = Duration::from_millis(200);
/// How often this node refreshes its gossiped actor counts and the published membership.
const REFRESH_INTERVAL: Duration = Duration::from_millis(500);

const KEY_GRPC: &str = "grpc_addr";
const KEY_HTTP: &str = "http_addr";
const KEY_STATUS: &str = "status";
const KEY_ACTORS_PREFIX: &str = "actors.";

/// This node's gossip handle.
pub struct Gossip {
    handle: ChitchatHandle,
    node_id: String,
}

impl std::fmt::Debug for Gossip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gossip")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// What this node gossips about itself at start.
#[derive(Debug, Clone)]
pub struct GossipSettings {
    /// Stable node id.
    pub node_id: String,
    /// Where gossip listens (UDP).
    pub gossip_addr: SocketAddr,
    /// Seeds to join through.
    pub seeds: Vec<String>,
    /// Cluster name; others are ignored.
    pub cluster_id: String,
    /// Advertised gRPC address.
    pub grpc_addr: SocketAddr,
    /// Advertised HTTP address.
    pub http_addr: SocketAddr,
}

impl Gossip {
    /// Joins the cluster with status `joining`.
    pub async fn start(settings: GossipSettings) -> Result<Gossip, NodeError> {
        let generation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as u64)
            .unwrap_or(0);
        let config = ChitchatConfig {
            chitchat_id: ChitchatId::new(
                settings.node_id.clone(),
                generation,
                settings.gossip_addr,
            ),
            cluster_id: settings.cluster_id,
            gossip_interval: GOSSIP_INTERVAL,
            listen_addr: settings.gossip_addr,
            seed_nodes: settings.seeds,
            failure_detector_config: FailureDetectorConfig {
                phi_threshold: 8.0,
                sampling_window_size: 1_000,
                max_interval: Duration::from_secs(2),
                initial_interval: GOSSIP_INTERVAL,
                dead_node_grace_period: Duration::from_secs(3600),
            },
            marked_for_deletion_grace_period: Duration::from_secs(3600),
            catchup_callback: None,
            extra_liveness_predicate: None,
            protocol_version: ProtocolVersion::V1,
        };
        let initial = vec![
            (KEY_GRPC.to_owned(), settings.grpc_addr.to_string()),
            (KEY_HTTP.to_owned(), settings.http_addr.to_string()),
            (
                KEY_STATUS.to_owned(),
                MemberStatus::Joining.as_str().to_owned(),
            ),
        ];
        let handle = spawn_chitchat(config, initial, &UdpTransport)
            .await
            .map_err(|error| NodeError::Gossip {
                addr: settings.gossip_addr,
                reason: error.to_string(),
            })?;
        Ok(Gossip {
            handle,
            node_id: settings.node_id,
        })
    }

    /// Gossips a new status.
    pub async fn set_status(&self, status: MemberStatus) {
        let chitchat = self.handle.chitchat();
        let mut chitchat = chitchat.lock().await;
        chitchat.self_node_state().set(KEY_STATUS, status.as_str());
    }

    /// The membership as this node sees it now.
    pub async fn membership(&self) -> Membership {
        let chitchat = self.handle.chitchat();
        let chitchat = chitchat.lock().await;
        let mut members: Vec<Member> = Vec::new();
        for id in chitchat.live_nodes() {
            let Some(state) = chitchat.node_state(id) else {
                continue;
            };
            let Some(member) = member_from_state(id, state) else {
                continue;
            };
            // A restarted node can briefly appear twice: keep its newest generation.
            match members
                .iter_mut()
                .find(|known| known.node_id == member.node_id)
            {
                Some(known) if known.generation < member.generation => *known = member,
                Some(_) => {}
                None => members.push(member),
            }
        }
        members.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        Membership {
            self_id: self.node_id.clone(),
            members,
        }
    }

    /// Keeps `publisher` in step with gossip and gossips this node's actor counts.
    pub fn spawn_refresher(
        self: &Arc<Self>,
        gatehouse: Arc<Gatehouse>,
        publisher: MembershipPublisher,
    ) {
        let gossip = Arc::clone(self);
        tokio::spawn(async move {
            let mut live_nodes = {
                let chitchat = gossip.handle.chitchat();
                let chitchat = chitchat.lock().await;
                chitchat.live_nodes_watcher()
            };
            loop {
                {
                    let chitchat = gossip.handle.chitchat();
                    let mut chitchat = chitchat.lock().await;
                    let state = chitchat.self_node_state();
                    for (kind, count) in gatehouse.active_actors_by_kind() {
                        state.set(format!("{KEY_ACTORS_PREFIX}{kind}"), count);
                    }
                }
                let membership = gossip.membership().await;
                let serving = membership.serving().count();
                if publisher.publish(membership) {
                    tracing::info!(serving, "membership changed");
                }
                metrics::gauge!("gatehouse_cluster_live_members").set(serving as f64);
                let _ = tokio::time::timeout(REFRESH_INTERVAL, live_nodes.changed()).await;
            }
        });
    }

    /// Leaves gossip.
    pub async fn shutdown(self: Arc<Self>) {
        let _ = self.handle.initiate_shutdown();
    }
}

fn member_from_state(id: &ChitchatId, state: &NodeState) -> Option<Member> {
    let status = MemberStatus::parse(state.get(KEY_STATUS)?)?;
    let mut actors: Vec<(String, u64)> = state
        .key_values()
        .filter_map(|(key, value)| {
            let kind = key.strip_prefix(KEY_ACTORS_PREFIX)?;
            Some((kind.to_owned(), value.parse().ok()?))
        })
        .collect();
    actors.sort();
    Some(Member {
        node_id: id.node_id.to_string(),
        generation: id.generation_id,
        grpc_addr: state.get(KEY_GRPC)?.to_owned(),
        http_addr: state.get(KEY_HTTP)?.to_owned(),
        status,
        actors,
    })
}
