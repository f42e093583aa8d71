//! A node that leaves with SIGTERM and starts again rejoins under a new generation and
//! takes back its share of the actors.

use std::collections::BTreeMap;

use gatehouse_cluster_tests::eventually;

use crate::support::{
    GOSSIP_TIMEOUT, members_by_id, refresh, session_actors_are, session_owner, sessions_owned_by,
    three_nodes,
};

/// Sessions of the rejoining node wanted, so "takes back its share" is not one lucky key.
const REJOINER_SESSIONS: usize = 3;
/// Users signed up at most while looking for them.
const USER_LIMIT: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_rejoins_with_a_new_generation_and_takes_back_its_actors() {
    let mut sandbox = three_nodes().await;
    let tenant = sandbox.create_tenant("Rejoin").await.unwrap();
    let rejoiner = 2;
    let old_generation = sandbox.node(rejoiner).generation();
    let by_owner = sessions_owned_by(
        &sandbox,
        &tenant,
        &["a", "b", "c"],
        &["c"],
        REJOINER_SESSIONS,
        USER_LIMIT,
    )
    .await;
    let mut sessions: Vec<_> = by_owner.into_values().flatten().collect();

    // SIGTERM: the node gossips `leaving`, drains and exits cleanly; the others drop it.
    let exit = sandbox.node_mut(rejoiner).stop().await.unwrap();
    assert!(exit.success(), "SIGTERM exit: {exit}");
    sandbox.wait_until_converged().await.unwrap();

    // Without `c`, `a` and `b` own everything.
    for (turn, session) in sessions.iter_mut().enumerate() {
        refresh(sandbox.node(turn % 2), &tenant, session).await;
    }
    let mut expected = owned_counts(&sandbox, &["a", "b"], &tenant, &sessions).await;
    eventually(GOSSIP_TIMEOUT, || session_actors_are(&sandbox, &expected))
        .await
        .unwrap_or_else(|failure| panic!("while c is down: {failure}"));

    sandbox.node_mut(rejoiner).start().await.unwrap();
    sandbox.wait_until_converged().await.unwrap();
    let new_generation = sandbox.node(rejoiner).generation();
    assert!(
        new_generation > old_generation,
        "generation {new_generation} after restart, {old_generation} before"
    );
    for observer in sandbox.nodes() {
        let status = observer.cluster_status().await.unwrap();
        let member = members_by_id(&status)["c"];
        assert_eq!(
            member.generation,
            new_generation,
            "{} sees {member:?}",
            observer.id()
        );
        assert_eq!(
            member.status,
            "serving",
            "{} sees {member:?}",
            observer.id()
        );
        assert_eq!(
            member.grpc_addr,
            sandbox.node(rejoiner).grpc_addr().unwrap().to_string(),
            "{} sees the restarted process's address",
            observer.id()
        );
    }

    // Refreshing every session again sends `c`'s share back to it, and `a` and `b` stop
    // the actors they no longer own.
    for (turn, session) in sessions.iter_mut().enumerate() {
        refresh(sandbox.node(turn % 2), &tenant, session).await;
    }
    expected = owned_counts(&sandbox, &["a", "b", "c"], &tenant, &sessions).await;
    assert!(expected["c"] >= REJOINER_SESSIONS as u64, "{expected:?}");
    eventually(GOSSIP_TIMEOUT, || session_actors_are(&sandbox, &expected))
        .await
        .unwrap_or_else(|failure| panic!("after c rejoined: {failure}"));
}

/// Session actors per node when exactly `serving` own `sessions`.
async fn owned_counts(
    sandbox: &gatehouse_cluster_tests::ClusterSandbox,
    serving: &[&str],
    tenant: &gatehouse_cluster_tests::SandboxTenant,
    sessions: &[crate::support::TestSession],
) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> =
        serving.iter().map(|id| ((*id).to_owned(), 0)).collect();
    for session in sessions {
        *counts
            .entry(session_owner(sandbox, serving, tenant, &session.session_id).await)
            .or_default() += 1;
    }
    counts
}
