//! `Cluster.GetOwner` names the node where the actor really lives: every node gives the same
//! answer, the gossiped actor counts put the actors there, and a refresh sent elsewhere is
//! forwarded to it.

use std::collections::BTreeMap;

use gatehouse_cluster_tests::{ClusterSandbox, eventually};
use gatehouse_protocol::v1;

use crate::support::{
    GOSSIP_TIMEOUT, actor_owner, refresh, session_actors_are, session_owner, sign_up, three_nodes,
};

/// Sessions placed, so every node is likely an owner and a forwarder.
const SESSIONS: usize = 9;

/// Answered forwarded refreshes node `index` has counted (from its `/metrics`).
async fn forwarded_refreshes(sandbox: &ClusterSandbox, index: usize) -> u64 {
    let url = sandbox.node(index).metrics_url();
    let text = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| {
            line.starts_with("gatehouse_forwarded_calls_total{")
                && line.contains("call=\"refresh_session\"")
                && line.contains("outcome=\"answered\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_owner_agrees_with_where_actors_live_and_where_calls_are_forwarded() {
    let sandbox = three_nodes().await;
    let tenant = sandbox.create_tenant("Owners").await.unwrap();
    let serving = ["a", "b", "c"];

    let tenant_owner = actor_owner(&sandbox, &serving, v1::ActorKind::Tenant, &tenant.id, "").await;
    let mut expected: BTreeMap<String, u64> =
        serving.iter().map(|id| ((*id).to_owned(), 0)).collect();
    for turn in 0..SESSIONS {
        let mut session = sign_up(sandbox.node(turn % 3), &tenant, "owner").await;
        let owner = session_owner(&sandbox, &serving, &tenant, &session.session_id).await;
        let owner_index = sandbox.index_of(&owner).unwrap();
        // Sent to a node that does not own the session, so it must be forwarded.
        let forwarder = (owner_index + 1 + turn % 2) % 3;
        let before = forwarded_refreshes(&sandbox, forwarder).await;
        refresh(sandbox.node(forwarder), &tenant, &mut session).await;
        let after = forwarded_refreshes(&sandbox, forwarder).await;
        assert_eq!(
            after,
            before + 1,
            "node {} forwards the refresh of a session GetOwner puts on {owner}",
            sandbox.node(forwarder).id()
        );
        *expected.entry(owner).or_default() += 1;
    }
    // Only the owners named by GetOwner hold the session actors.
    eventually(GOSSIP_TIMEOUT, || session_actors_are(&sandbox, &expected))
        .await
        .unwrap_or_else(|failure| panic!("session actors are not where GetOwner says: {failure}"));

    // The tenant's actor (activated by its creation and the sign-ups) is on its owner only.
    eventually(GOSSIP_TIMEOUT, || async {
        let status = sandbox
            .node(0)
            .cluster_status()
            .await
            .map_err(|e| e.to_string())?;
        let tenants: BTreeMap<String, u64> = status
            .members
            .iter()
            .map(|member| {
                let count = member.actors.get("tenant").copied().unwrap_or(0);
                (member.node_id.clone(), count)
            })
            .collect();
        let elsewhere = tenants
            .iter()
            .any(|(node_id, count)| *node_id != tenant_owner && *count > 0);
        if tenants.get(&tenant_owner) == Some(&1) && !elsewhere {
            Ok(())
        } else {
            Err(format!(
                "tenant actors {tenants:?}, GetOwner says {tenant_owner}"
            ))
        }
    })
    .await
    .unwrap();
}
