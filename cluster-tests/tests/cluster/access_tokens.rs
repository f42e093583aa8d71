//! A suspension or revocation on one node stops the user's still-unexpired access token on
//! every node within about a second (each node polls the revocation feed), though each node
//! had the token's session cached as live.

use std::time::Duration;

use gatehouse_cluster_tests::{ClusterSandbox, SandboxTenant};
use gatehouse_protocol::ErrorCode;

use crate::support::{PASSWORD, three_nodes, unique_email};

/// How long a node may take to refuse the token; the bound promised is about one second,
/// the slack is for a loaded test machine.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Signs a user up; returns its id, session id and access token.
async fn signed_up(sandbox: &ClusterSandbox, tenant: &SandboxTenant) -> (String, String, String) {
    let reply = sandbox
        .node(0)
        .client(tenant)
        .unwrap()
        .sign_up_with_password(&unique_email("tok"), PASSWORD)
        .await
        .unwrap();
    (reply.user_id, reply.session_id, reply.access_token)
}

/// The token reads its user on every node (twice, so the second answer is a cached one).
async fn accepted_everywhere(sandbox: &ClusterSandbox, tenant: &SandboxTenant, token: &str) {
    for node in sandbox.nodes() {
        let user = node.client(tenant).unwrap().with_access_token(token);
        for _ in 0..2 {
            user.get_current_user().await.unwrap_or_else(|error| {
                panic!("node {} refuses a live token: {error:?}", node.id())
            });
        }
    }
}

/// Asks `index` until it refuses the token (for at most [`REFUSAL_TIMEOUT`]); its code.
async fn refused_by(
    sandbox: &ClusterSandbox,
    index: usize,
    tenant: &SandboxTenant,
    token: &str,
) -> ErrorCode {
    let node = sandbox.node(index);
    let user = node.client(tenant).unwrap().with_access_token(token);
    let deadline = tokio::time::Instant::now() + REFUSAL_TIMEOUT;
    loop {
        match user.get_current_user().await {
            Err(error) => return error.code,
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(_) => panic!("node {} still accepts the token", node.id()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_or_revocation_on_one_node_stops_the_access_token_on_every_node() {
    let sandbox = three_nodes().await;
    let tenant = sandbox.create_tenant("Access tokens").await.unwrap();

    let (user_id, _, token) = signed_up(&sandbox, &tenant).await;
    accepted_everywhere(&sandbox, &tenant, &token).await;
    sandbox
        .node(0)
        .server(&tenant)
        .unwrap()
        .suspend_user(&user_id)
        .await
        .unwrap();
    for index in 0..3 {
        assert_eq!(
            refused_by(&sandbox, index, &tenant, &token).await,
            ErrorCode::UserSuspended,
            "node {}",
            sandbox.node(index).id()
        );
    }

    let (_, session_id, token) = signed_up(&sandbox, &tenant).await;
    accepted_everywhere(&sandbox, &tenant, &token).await;
    sandbox
        .node(1)
        .server(&tenant)
        .unwrap()
        .revoke_session(&session_id)
        .await
        .unwrap();
    for index in [0, 2, 1] {
        assert_eq!(
            refused_by(&sandbox, index, &tenant, &token).await,
            ErrorCode::SessionRevoked,
            "node {}",
            sandbox.node(index).id()
        );
    }
}
