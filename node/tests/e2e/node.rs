//! The node process: first start, restart durability, SIGTERM, and the operator CLI.

use std::os::unix::fs::PermissionsExt;

use gatehouse_protocol::ErrorCode;
use gatehouse_protocol::v1::ListUsersRequest;
use serde_json::Value;

use crate::testkit::{PASSWORD, TestNode, unique_email};

#[tokio::test]
async fn first_start_writes_a_private_operator_key_and_says_where() {
    let mut node = TestNode::start().await;
    let path = node.data_dir.join("operator.key");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(node.operator_key.starts_with("gop_"));
    assert!(
        node.stdout
            .iter()
            .any(|line| line.contains(&path.display().to_string())),
        "{:?}",
        node.stdout
    );
    assert!(
        !node
            .stdout
            .iter()
            .any(|line| line.contains(&node.operator_key)),
        "key printed"
    );
    let status = node.stop().await;
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
}

#[tokio::test]
async fn users_and_sessions_survive_a_restart() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let email = unique_email("nina");
    let signed_up = node
        .client(&tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let rotated = node
        .client(&tenant)
        .await
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap();
    let old_key = node.operator_key.clone();

    let node = node.restart().await;
    assert_eq!(
        node.operator_key, old_key,
        "the operator key is not replaced"
    );
    let client = node.client(&tenant).await;
    let refreshed = client
        .refresh_session(&rotated.refresh_token)
        .await
        .unwrap();
    assert_eq!(refreshed.session_id, signed_up.session_id);
    // Spent tokens are still remembered after the restart.
    assert_eq!(
        client
            .refresh_session(&signed_up.refresh_token)
            .await
            .unwrap_err()
            .code,
        ErrorCode::RefreshTokenReused
    );
    client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let users = node
        .server(&tenant)
        .await
        .list_users(ListUsersRequest::default())
        .await
        .unwrap();
    assert_eq!(users.users.len(), 1);
    assert_eq!(users.users[0].email, email);
    let tenants = node.operator().await.list_tenants(10, "").await.unwrap();
    assert_eq!(tenants.tenants.len(), 1);
}

#[tokio::test]
async fn the_operator_cli_manages_tenants_users_and_sessions() {
    let node = TestNode::start().await;
    let (ok, stdout, stderr) = node.admin(&["tenant", "create", "Acme", "--json"]);
    assert!(ok, "{stderr}");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let tenant_id = created["tenant_id"].as_str().unwrap().to_owned();
    assert!(
        created["publishable_client_key"]
            .as_str()
            .unwrap()
            .starts_with("pck_")
    );
    assert!(
        created["secret_server_key"]
            .as_str()
            .unwrap()
            .starts_with("ssk_")
    );

    let (ok, stdout, _) = node.admin(&["tenant", "list"]);
    assert!(ok && stdout.contains(&tenant_id), "{stdout}");

    let (ok, stdout, stderr) = node.admin(&[
        "user",
        "create",
        "--tenant",
        &tenant_id,
        "--email",
        "olga@example.com",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let user: Value = serde_json::from_str(&stdout).unwrap();
    let user_id = user["user_id"].as_str().unwrap().to_owned();

    let (ok, stdout, _) = node.admin(&["user", "list", "--tenant", &tenant_id]);
    assert!(ok && stdout.contains("olga@example.com"), "{stdout}");
    let (ok, stdout, _) = node.admin(&[
        "user", "suspend", "--tenant", &tenant_id, &user_id, "--json",
    ]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["state"],
        "suspended"
    );
    let (ok, stdout, _) = node.admin(&[
        "session", "list", "--tenant", &tenant_id, "--user", &user_id, "--json",
    ]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["sessions"],
        serde_json::json!([])
    );
    let (ok, stdout, _) = node.admin(&["key", "rotate", "--tenant", &tenant_id, "--json"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["active"],
        true
    );
    let (ok, stdout, stderr) = node.admin(&["cluster", "status", "--json"]);
    assert!(ok, "{stderr}");
    let cluster: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(cluster["mode"], "single");
    assert_eq!(cluster["members"][0]["status"], "serving");
    assert_eq!(cluster["members"][0]["is_self"], true);
    assert_eq!(cluster["members"][0]["grpc_addr"], node.grpc.to_string());
    let (ok, stdout, stderr) = node.admin(&[
        "cluster", "owner", "--tenant", &tenant_id, "--kind", "tenant", "--json",
    ]);
    assert!(ok, "{stderr}");
    let owner: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(owner["key"], tenant_id.as_str());
    assert_eq!(owner["is_self"], true);
    assert_eq!(owner["grpc_addr"], node.grpc.to_string());
    let (ok, _, stderr) = node.admin(&[
        "cluster",
        "owner",
        "--tenant",
        &tenant_id,
        "--kind",
        "session",
        "not-an-id",
    ]);
    assert!(!ok);
    assert!(stderr.contains("entity_id"), "{stderr}");
    let (ok, stdout, stderr) = node.admin(&[
        "team",
        "create",
        "--tenant",
        &tenant_id,
        "Ops",
        "--creator",
        &user_id,
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let team: Value = serde_json::from_str(&stdout).unwrap();
    let team_id = team["team_id"].as_str().unwrap().to_owned();
    let (ok, _, stderr) = node.admin(&[
        "permission",
        "define",
        "--tenant",
        &tenant_id,
        "deploy",
        "--team",
    ]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = node.admin(&[
        "permission",
        "grant",
        "--tenant",
        &tenant_id,
        &user_id,
        "deploy",
        "--team",
        &team_id,
    ]);
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = node.admin(&[
        "permission",
        "check",
        "--tenant",
        &tenant_id,
        &user_id,
        "deploy",
        "--team",
        &team_id,
        "--json",
    ]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["granted"],
        true
    );
    let (ok, stdout, _) = node.admin(&[
        "team", "members", "--tenant", &tenant_id, &team_id, "--json",
    ]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["members"][0],
        user_id.as_str()
    );
    let (ok, stdout, stderr) = node.admin(&[
        "share",
        "create",
        "--tenant",
        &tenant_id,
        "--owner",
        &user_id,
        "--to-service",
        "crm",
        "--resource-type",
        "user",
        "--resource-id",
        &user_id,
        "--permission",
        "read",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let share: Value = serde_json::from_str(&stdout).unwrap();
    let share_id = share["share_id"].as_str().unwrap().to_owned();
    assert!(share["share_token"].as_str().unwrap().starts_with("gsh_"));
    let (ok, _, stderr) = node.admin(&["share", "revoke", "--tenant", &tenant_id, &share_id]);
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = node.admin(&[
        "share",
        "list",
        "--tenant",
        &tenant_id,
        "--user",
        &user_id,
        "--outgoing",
        "--json",
    ]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["shares"][0]["revoked"],
        true
    );
    let (ok, _, _) = node.admin(&["user", "delete", "--tenant", &tenant_id, &user_id]);
    assert!(ok);

    // Errors carry the stable code and a non-zero exit.
    let (ok, _, stderr) = node.admin(&["user", "get", "--tenant", &tenant_id, &user_id]);
    assert!(!ok);
    assert!(
        stderr.contains("user_not_found") || stderr.contains("USER_NOT_FOUND"),
        "{stderr}"
    );
    let (ok, _, stderr) = node.admin(&["tenant", "get", "missing-tenant"]);
    assert!(
        !ok && stderr.to_lowercase().contains("tenant_not_found"),
        "{stderr}"
    );
}

#[tokio::test]
async fn grpc_health_and_reflection_are_served() {
    use tokio_stream::StreamExt;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let node = TestNode::start().await;
    let channel = tonic::transport::Channel::from_shared(node.endpoint())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "gatehouse.v1.Auth".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<_> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for expected in [
        "gatehouse.v1.Auth",
        "gatehouse.v1.Users",
        "gatehouse.v1.Sessions",
        "gatehouse.v1.Tenants",
    ] {
        assert!(names.iter().any(|name| name == expected), "{names:?}");
    }
}
