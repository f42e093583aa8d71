//! A revocation acknowledged by one node is refused by every node, with no wait between.

use gatehouse_protocol::ErrorCode;

use crate::support::{refresh, sessions_owned_by, three_nodes};

/// Users signed up at most while looking for a session owned by each node.
const USER_LIMIT: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_node_is_refused_on_every_node_at_once() {
    let sandbox = three_nodes().await;
    let tenant = sandbox.create_tenant("Revocation").await.unwrap();
    let ids = ["a", "b", "c"];
    let by_owner = sessions_owned_by(&sandbox, &tenant, &ids, &ids, 1, USER_LIMIT).await;

    // One session per owner, so the owner is in turn each node; the revocation goes
    // through a node that is not the owner (it forwards), then each of the other two
    // nodes (the owner among them) is asked to refresh right after it returns.
    for (owner, sessions) in &by_owner {
        let mut session = sessions[0].clone();
        let owner_index = sandbox.index_of(owner).unwrap();
        let revoker = (owner_index + 1) % 3;
        // A refresh first, so the owner's actor is active with the session cached.
        refresh(sandbox.node(owner_index), &tenant, &mut session).await;

        sandbox
            .node(revoker)
            .server(&tenant)
            .unwrap()
            .revoke_session(&session.session_id)
            .await
            .unwrap();
        for index in (1..3).map(|offset| (revoker + offset) % 3) {
            let node = sandbox.node(index);
            let refused = node
                .client(&tenant)
                .unwrap()
                .refresh_session(&session.refresh_token)
                .await
                .expect_err("a revoked session must not refresh");
            assert_eq!(
                refused.code,
                ErrorCode::SessionRevoked,
                "node {} (owner {owner}, revoked via {}): {refused:?}",
                node.id(),
                sandbox.node(revoker).id()
            );
        }
        for node in sandbox.nodes() {
            let listed = node
                .server(&tenant)
                .unwrap()
                .list_sessions(&session.user_id, true)
                .await
                .unwrap();
            let record = listed
                .iter()
                .find(|listed| listed.session_id == session.session_id)
                .unwrap_or_else(|| panic!("node {} lists no {}", node.id(), session.session_id));
            assert!(record.revoked, "node {} lists {record:?}", node.id());
            assert_eq!(record.revoked_reason, "admin");
        }
    }
}
