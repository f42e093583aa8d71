//! Losing a session's owner: SIGKILL, and SIGSTOP/SIGCONT.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gatehouse_cluster_tests::{ClusterSandbox, POLL_INTERVAL, SandboxTenant, eventually};
use gatehouse_protocol::v1;

use crate::support::{
    GOSSIP_TIMEOUT, TestSession, is_transient, patient_client, refresh, session_actors,
    session_owner, sign_up, three_nodes,
};

/// The bound from SIGKILL to a successful refresh on a survivor.
const FAILOVER_BOUND: Duration = Duration::from_secs(10);
/// How long the test keeps retrying at all, so a slow failover is measured, not hung on.
const RETRY_LIMIT: Duration = Duration::from_secs(30);

/// A session created through `a` and the index of its owner among `a`, `b`, `c`.
async fn session_with_owner(
    sandbox: &ClusterSandbox,
    tenant: &SandboxTenant,
) -> (TestSession, usize) {
    let session = sign_up(sandbox.node(0), tenant, "failover").await;
    let owner = session_owner(sandbox, &["a", "b", "c"], tenant, &session.session_id).await;
    let index = sandbox.index_of(&owner).unwrap();
    (session, index)
}

/// Refreshes through the survivors in turn, retrying only "unavailable" answers; returns
/// the reply and how many attempts it took.
async fn refresh_on_survivors(
    sandbox: &ClusterSandbox,
    tenant: &SandboxTenant,
    survivors: &[usize],
    session: &TestSession,
    since: Instant,
) -> (v1::RefreshSessionReply, usize) {
    let clients: Vec<_> = survivors
        .iter()
        .map(|&index| {
            let node = sandbox.node(index);
            (
                node.id().to_owned(),
                patient_client(node, tenant, RETRY_LIMIT),
            )
        })
        .collect();
    let mut attempts = 0;
    loop {
        let (node_id, client) = &clients[attempts % clients.len()];
        attempts += 1;
        match client.refresh_session(&session.refresh_token).await {
            Ok(reply) => return (reply, attempts),
            Err(error) if is_transient(&error) && since.elapsed() < RETRY_LIMIT => {
                println!(
                    "attempt {attempts} on node {node_id} after {:?}: {error:?}",
                    since.elapsed()
                );
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            Err(error) => panic!(
                "refresh on node {node_id} failed after {:?} and {attempts} attempts: {error:?}",
                since.elapsed()
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_succeeds_on_a_survivor_within_10s_of_killing_the_owner() {
    let mut sandbox = three_nodes().await;
    let tenant = sandbox.create_tenant("Failover").await.unwrap();
    let (mut session, owner) = session_with_owner(&sandbox, &tenant).await;
    let survivors: Vec<usize> = (0..3).filter(|&index| index != owner).collect();
    let owner_id = sandbox.node(owner).id().to_owned();

    // A first refresh through a survivor puts the session's actor on its owner.
    refresh(sandbox.node(survivors[0]), &tenant, &mut session).await;
    eventually(GOSSIP_TIMEOUT, || async {
        let actors = session_actors(sandbox.node(owner)).await?;
        if actors.get(&owner_id) == Some(&1) {
            Ok(())
        } else {
            Err(format!(
                "owner {owner_id} does not hold the actor: {actors:?}"
            ))
        }
    })
    .await
    .unwrap();

    sandbox.node_mut(owner).kill().await.unwrap();
    let killed_at = Instant::now();
    let (reply, attempts) =
        refresh_on_survivors(&sandbox, &tenant, &survivors, &session, killed_at).await;
    let failover = killed_at.elapsed();
    println!("refresh succeeded {failover:?} after SIGKILL of {owner_id}, {attempts} attempt(s)");
    assert!(
        failover < FAILOVER_BOUND,
        "the first successful refresh came {failover:?} after SIGKILL of the owner"
    );
    assert_eq!(reply.session_id, session.session_id);
    session.refresh_token = reply.refresh_token;

    // The session lives on: the next rotation works through the other survivor, and the
    // survivors agree that the killed node is gone and who owns the session now.
    refresh(sandbox.node(survivors[1]), &tenant, &mut session).await;
    sandbox.wait_until_converged().await.unwrap();
    let survivor_ids: Vec<&str> = survivors
        .iter()
        .map(|&index| sandbox.node(index).id())
        .collect();
    let new_owner = session_owner(&sandbox, &survivor_ids, &tenant, &session.session_id).await;
    eventually(GOSSIP_TIMEOUT, || async {
        let actors = session_actors(sandbox.node(survivors[0])).await?;
        if actors.get(&new_owner) == Some(&1) && !actors.contains_key(&owner_id) {
            Ok(())
        } else {
            Err(format!(
                "new owner {new_owner} should hold the actor: {actors:?}"
            ))
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_is_routed_around_and_serves_again_after_resume() {
    let mut sandbox = three_nodes().await;
    let tenant = sandbox.create_tenant("Pause").await.unwrap();
    let (mut session, owner) = session_with_owner(&sandbox, &tenant).await;
    let survivors: Vec<usize> = (0..3).filter(|&index| index != owner).collect();
    let owner_id = sandbox.node(owner).id().to_owned();
    refresh(sandbox.node(survivors[0]), &tenant, &mut session).await;

    // While the owner is frozen (its actor cached), the survivors drop it and a survivor
    // takes the session over.
    sandbox.node_mut(owner).pause().unwrap();
    let paused_at = Instant::now();
    sandbox.wait_until_converged().await.unwrap();
    println!(
        "survivors dropped paused {owner_id} after {:?}",
        paused_at.elapsed()
    );
    let (reply, _) =
        refresh_on_survivors(&sandbox, &tenant, &survivors, &session, Instant::now()).await;
    session.refresh_token = reply.refresh_token;

    // Resumed, the old owner owns the session again while its cached copy is stale: the
    // next refresh must still accept the latest token, exactly once.
    sandbox.node_mut(owner).resume().unwrap();
    sandbox.wait_until_converged().await.unwrap();
    refresh(sandbox.node(survivors[1]), &tenant, &mut session).await;
    refresh(sandbox.node(survivors[0]), &tenant, &mut session).await;

    let expected: BTreeMap<String, u64> = sandbox
        .nodes()
        .iter()
        .map(|node| (node.id().to_owned(), u64::from(node.id() == owner_id)))
        .collect();
    eventually(GOSSIP_TIMEOUT, || async {
        let actors = session_actors(sandbox.node(owner)).await?;
        if actors == expected {
            Ok(())
        } else {
            Err(format!(
                "expected {expected:?}, node {owner_id} sees {actors:?}"
            ))
        }
    })
    .await
    .unwrap();
}
