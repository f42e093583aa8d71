//! The nodes as the workload sees them: clients for each node while it serves, none while
//! the fault injector has it down, so requests only start on nodes that can answer.

use std::sync::{PoisonError, RwLock};

use gatehouse_cluster_tests::{ClusterSandbox, SandboxNode, SandboxTenant};
use gatehouse_protocol::sdk::Client;
use rand::Rng;

use crate::error::ChaosError;

/// The clients of one serving node: the tenant's client key and its server key.
#[derive(Debug, Clone)]
pub struct NodeClients {
    /// The node id (`a`, `b`, …).
    pub node_id: String,
    /// Publishable client key: sign-up, sign-in, refresh.
    pub client: Client,
    /// Secret server key: revocations and user listings.
    pub server: Client,
}

impl NodeClients {
    /// Connects lazily to `node` for `tenant`.
    pub fn of(node: &SandboxNode, tenant: &SandboxTenant) -> Result<Self, ChaosError> {
        let sandbox_error = |error| ChaosError::Node(format!("clients of {}: {error}", node.id()));
        Ok(NodeClients {
            node_id: node.id().to_owned(),
            client: node.client(tenant).map_err(sandbox_error)?,
            server: node.server(tenant).map_err(sandbox_error)?,
        })
    }
}

/// One slot per node, `None` while the node is down.
#[derive(Debug)]
pub struct NodePool {
    slots: RwLock<Vec<Option<NodeClients>>>,
}

impl NodePool {
    /// Clients for every live node of `sandbox`.
    pub fn new(sandbox: &ClusterSandbox, tenant: &SandboxTenant) -> Result<Self, ChaosError> {
        let slots = sandbox
            .nodes()
            .iter()
            .map(|node| {
                if node.is_live() {
                    NodeClients::of(node, tenant).map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NodePool {
            slots: RwLock::new(slots),
        })
    }

    /// Stops handing out node `index` (before it is killed or paused).
    pub fn take_down(&self, index: usize) {
        if let Some(slot) = self.write().get_mut(index) {
            *slot = None;
        }
    }

    /// Hands out node `index` again with new clients (a restarted node has new ports).
    pub fn bring_up(&self, index: usize, clients: NodeClients) {
        if let Some(slot) = self.write().get_mut(index) {
            *slot = Some(clients);
        }
    }

    /// Every node currently handed out.
    pub fn live(&self) -> Vec<NodeClients> {
        self.read().iter().flatten().cloned().collect()
    }

    /// A random live node.
    pub fn pick(&self, rng: &mut impl Rng) -> Option<NodeClients> {
        let live = self.live();
        if live.is_empty() {
            return None;
        }
        let index = rng.gen_range(0..live.len());
        live.into_iter().nth(index)
    }

    /// Two random live nodes, distinct when at least two are live.
    pub fn pick_two(&self, rng: &mut impl Rng) -> Option<(NodeClients, NodeClients)> {
        let live = self.live();
        match live.len() {
            0 => None,
            1 => live.first().map(|only| (only.clone(), only.clone())),
            count => {
                let first = rng.gen_range(0..count);
                let second = (first + rng.gen_range(1..count)) % count;
                Some((live[first].clone(), live[second].clone()))
            }
        }
    }

    /// A random live node other than `node_id`, or `node_id` itself if it is the only one.
    pub fn pick_other(&self, node_id: &str, rng: &mut impl Rng) -> Option<NodeClients> {
        let live = self.live();
        let others: Vec<&NodeClients> = live.iter().filter(|n| n.node_id != node_id).collect();
        if others.is_empty() {
            return live.first().cloned();
        }
        Some(others[rng.gen_range(0..others.len())].clone())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Option<NodeClients>>> {
        // Slots are replaced whole, so a poisoned lock still holds consistent data.
        self.slots.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Option<NodeClients>>> {
        self.slots.write().unwrap_or_else(PoisonError::into_inner)
    }
}
