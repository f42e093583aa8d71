//! Any node serves any request: sign up on `a`, sign in on `b`, refresh on `c`, which
//! forwards the refresh to the session's owner.

use std::collections::BTreeMap;

use gatehouse_cluster_tests::eventually;

use crate::support::{
    GOSSIP_TIMEOUT, PASSWORD, TestSession, refresh, session_actors_are, session_owner, three_nodes,
    unique_email,
};

/// Sessions refreshed on `c` that another node owns, wanted before the actor check.
const FORWARDED_WANTED: usize = 3;
/// Users signed up at most while looking for them.
const USER_LIMIT: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_sign_in_and_refresh_on_different_nodes_forward_to_the_owner() {
    let sandbox = three_nodes().await;
    let tenant = sandbox.create_tenant("Routing").await.unwrap();
    let (a, b, c) = (sandbox.node(0), sandbox.node(1), sandbox.node(2));
    let serving = ["a", "b", "c"];

    let mut expected_actors: BTreeMap<String, u64> =
        serving.iter().map(|id| ((*id).to_owned(), 0)).collect();
    let mut forwarded = 0;
    let mut users = 0;
    while forwarded < FORWARDED_WANTED {
        assert!(
            users < USER_LIMIT,
            "{USER_LIMIT} sessions gave only {forwarded} owned outside node c"
        );
        users += 1;
        let email = unique_email("routing");
        let signed_up = a
            .client(&tenant)
            .unwrap()
            .sign_up_with_password(&email, PASSWORD)
            .await
            .unwrap();
        let signed_in = b
            .client(&tenant)
            .unwrap()
            .sign_in_with_password(&email, PASSWORD)
            .await
            .unwrap();
        assert_eq!(signed_in.user_id, signed_up.user_id, "b finds a's user");
        assert_ne!(signed_in.session_id, signed_up.session_id);

        let mut session = TestSession {
            user_id: signed_in.user_id,
            email,
            session_id: signed_in.session_id,
            refresh_token: signed_in.refresh_token,
        };
        refresh(c, &tenant, &mut session).await;
        let owner = session_owner(&sandbox, &serving, &tenant, &session.session_id).await;
        *expected_actors.entry(owner.clone()).or_default() += 1;
        if owner != c.id() {
            forwarded += 1;
        }

        // The rotated token works on yet another node, and every node verifies the access
        // token it returns (the shared issuer and signing key), whoever minted it.
        let refreshed = a
            .client(&tenant)
            .unwrap()
            .refresh_session(&session.refresh_token)
            .await
            .unwrap();
        for node in [a, b, c] {
            let me = node
                .client(&tenant)
                .unwrap()
                .with_access_token(&refreshed.access_token)
                .get_current_user()
                .await
                .unwrap_or_else(|error| {
                    panic!("node {} rejects the access token: {error:?}", node.id())
                });
            assert_eq!(me.user_id, session.user_id);
        }
    }

    // Only owners hold session actors: the refreshes that landed on `c` for sessions owned
    // elsewhere ran on their owners, and sign-ups and sign-ins activated none.
    eventually(GOSSIP_TIMEOUT, || {
        session_actors_are(&sandbox, &expected_actors)
    })
    .await
    .unwrap_or_else(|failure| {
        panic!("session actors are not where placement puts them ({users} sessions): {failure}")
    });
}
