//! Helpers shared by the scenarios: clusters, users and sessions, placement, actor counts.

use std::collections::BTreeMap;
use std::time::Duration;

use gatehouse_cluster_tests::{ClusterSandbox, SandboxNode, SandboxTenant};
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::{ApiError, ErrorCode, v1};

/// A password that passes the policy.
pub const PASSWORD: &str = "correct horse battery staple";

/// How long the scenarios give gossip to spread actor counts and membership changes.
pub const GOSSIP_TIMEOUT: Duration = Duration::from_secs(15);

/// Three nodes `a`, `b`, `c` on one PostgreSQL, all serving.
pub async fn three_nodes() -> ClusterSandbox {
    ClusterSandbox::builder()
        .nodes(3)
        .build()
        .await
        .unwrap_or_else(|error| panic!("cannot start a 3-node cluster: {error}"))
}

/// A unique email for a test.
pub fn unique_email(label: &str) -> String {
    format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// A session as the test tracks it: its id and the latest refresh token.
#[derive(Debug, Clone)]
pub struct TestSession {
    /// The user.
    pub user_id: String,
    /// The email the user signed up with.
    pub email: String,
    /// The session id as the API shows it.
    pub session_id: String,
    /// The refresh token to present next.
    pub refresh_token: String,
}

/// Signs a new user up through `node`; the reply's session is the one returned.
pub async fn sign_up(node: &SandboxNode, tenant: &SandboxTenant, label: &str) -> TestSession {
    let email = unique_email(label);
    let reply = node
        .client(tenant)
        .unwrap()
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap_or_else(|error| panic!("sign-up on node {} failed: {error:?}", node.id()));
    TestSession {
        user_id: reply.user_id,
        email,
        session_id: reply.session_id,
        refresh_token: reply.refresh_token,
    }
}

/// Refreshes `session` through `node`, keeping the new refresh token.
pub async fn refresh(node: &SandboxNode, tenant: &SandboxTenant, session: &mut TestSession) {
    let reply = node
        .client(tenant)
        .unwrap()
        .refresh_session(&session.refresh_token)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "refresh of session {} on node {} failed: {error:?}",
                session.session_id,
                node.id()
            )
        });
    assert_eq!(
        reply.session_id, session.session_id,
        "refresh keeps the session"
    );
    assert_ne!(
        reply.refresh_token, session.refresh_token,
        "refresh rotates the token"
    );
    session.refresh_token = reply.refresh_token;
}

/// The node that owns a session's actor, as every live node answers `Cluster.GetOwner`;
/// the nodes must agree and name one of `serving`.
pub async fn session_owner(
    sandbox: &ClusterSandbox,
    serving: &[&str],
    tenant: &SandboxTenant,
    session_id: &str,
) -> String {
    actor_owner(
        sandbox,
        serving,
        v1::ActorKind::Session,
        &tenant.id,
        session_id,
    )
    .await
}

/// The node that owns `(kind, tenant, entity)`, as every live node answers
/// `Cluster.GetOwner`; the nodes must agree, name one of `serving`, and give the
/// address of that node's current process.
pub async fn actor_owner(
    sandbox: &ClusterSandbox,
    serving: &[&str],
    kind: v1::ActorKind,
    tenant_id: &str,
    entity_id: &str,
) -> String {
    let mut answers = BTreeMap::new();
    for index in sandbox.live_indices() {
        let node = sandbox.node(index);
        let owner = node
            .owner(kind, tenant_id, entity_id)
            .await
            .unwrap_or_else(|error| panic!("GetOwner on node {}: {error}", node.id()));
        assert_eq!(owner.is_self, owner.node_id == node.id(), "{owner:?}");
        answers.insert(node.id().to_owned(), owner);
    }
    let Some(first) = answers.values().next().cloned() else {
        panic!("no live node to ask");
    };
    assert!(
        answers.values().all(|owner| owner.node_id == first.node_id),
        "the nodes disagree on the owner of {kind:?} {tenant_id}/{entity_id}: {answers:?}"
    );
    assert!(
        serving.contains(&first.node_id.as_str()),
        "owner {} is not among {serving:?}",
        first.node_id
    );
    let owner_node = sandbox.node(sandbox.index_of(&first.node_id).unwrap());
    assert_eq!(
        Some(first.grpc_addr.clone()),
        owner_node.grpc_addr().map(|addr| addr.to_string()),
        "GetOwner gives the owner's current gRPC address"
    );
    first.node_id
}

/// Signs users up (round-robin over the nodes) until each node in `owners` owns at least
/// `per_owner` of the new sessions under placement over `serving`; at most `limit` users.
pub async fn sessions_owned_by(
    sandbox: &ClusterSandbox,
    tenant: &SandboxTenant,
    serving: &[&str],
    owners: &[&str],
    per_owner: usize,
    limit: usize,
) -> BTreeMap<String, Vec<TestSession>> {
    let mut by_owner: BTreeMap<String, Vec<TestSession>> = BTreeMap::new();
    let live = sandbox.live_indices();
    for round in 0..limit {
        let enough = owners
            .iter()
            .all(|owner| by_owner.get(*owner).map_or(0, Vec::len) >= per_owner);
        if enough {
            return by_owner;
        }
        let node = sandbox.node(live[round % live.len()]);
        let session = sign_up(node, tenant, "owned").await;
        let owner = session_owner(sandbox, serving, tenant, &session.session_id).await;
        by_owner.entry(owner).or_default().push(session);
    }
    panic!(
        "{limit} sessions did not give each of {owners:?} {per_owner} sessions: {:?}",
        by_owner
            .iter()
            .map(|(owner, sessions)| (owner, sessions.len()))
            .collect::<Vec<_>>()
    );
}

/// Live session actors per node, as `node` sees them through gossip.
pub async fn session_actors(node: &SandboxNode) -> Result<BTreeMap<String, u64>, String> {
    let status = node
        .cluster_status()
        .await
        .map_err(|error| format!("cluster status of node {}: {error}", node.id()))?;
    Ok(status
        .members
        .iter()
        .map(|member| {
            let count = member.actors.get("session").copied().unwrap_or(0);
            (member.node_id.clone(), count)
        })
        .collect())
}

/// Passes when every live node reports exactly `expected` session actors per node.
pub async fn session_actors_are(
    sandbox: &ClusterSandbox,
    expected: &BTreeMap<String, u64>,
) -> Result<(), String> {
    for index in sandbox.live_indices() {
        let node = sandbox.node(index);
        let seen = session_actors(node).await?;
        if &seen != expected {
            return Err(format!(
                "node {} sees session actors {seen:?}, expected {expected:?}",
                node.id()
            ));
        }
    }
    Ok(())
}

/// Whether an error means "not now, try again" rather than a definite answer.
pub fn is_transient(error: &ApiError) -> bool {
    matches!(
        error.code,
        ErrorCode::Unavailable | ErrorCode::DeadlineExceeded
    )
}

/// A tenant client for `node` whose requests may take up to `timeout`.
pub fn patient_client(node: &SandboxNode, tenant: &SandboxTenant, timeout: Duration) -> Client {
    node.client_builder()
        .tenant(&tenant.id)
        .credentials(gatehouse_protocol::sdk::Credentials::Client {
            publishable_key: tenant.publishable_key.clone(),
        })
        .timeout(timeout)
        .build_lazy()
        .unwrap()
}

/// The members of `status`, by node id.
pub fn members_by_id(status: &v1::ClusterStatus) -> BTreeMap<&str, &v1::ClusterMember> {
    status
        .members
        .iter()
        .map(|member| (member.node_id.as_str(), member))
        .collect()
}
