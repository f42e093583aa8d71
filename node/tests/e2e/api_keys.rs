//! API keys against a real node: the secret shown once and never listed, the exchange for a
//! machine token verified against the tenant's JWKS (`sub`, `principal_kind`, `perms`),
//! scopes checked against the graph and against what a user holds, expired and revoked keys
//! refused alike, the machine token refused as a user's token, tenant isolation, team keys
//! under `$manage_api_keys`, and the operator CLI.

use std::time::Duration;

use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::v1::create_api_key_request::{Expiry, Owner};
use gatehouse_protocol::v1::list_api_keys_request::Owner as ListOwner;
use gatehouse_protocol::{ApiError, ErrorCode, v1};
use serde_json::{Value, json};

use crate::factors::verified_claims;
use crate::testkit::{PASSWORD, TestNode, TestTenant, unique_email};

fn refused<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ErrorCode {
    result.expect_err("the call must be refused").code
}

fn request(name: &str, scopes: &[&str]) -> v1::CreateApiKeyRequest {
    v1::CreateApiKeyRequest {
        owner: None,
        name: name.to_owned(),
        scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        expiry: None,
    }
}

async fn define(server: &Client, id: &str, contains: &[&str]) {
    server
        .define_permission(v1::DefinePermissionRequest {
            definition: Some(v1::PermissionDefinition {
                permission_id: id.to_owned(),
                description: String::new(),
                contains: contains.iter().map(|c| (*c).to_owned()).collect(),
                scope: v1::PermissionScope::Tenant as i32,
            }),
            create_only: true,
        })
        .await
        .unwrap();
}

/// A tenant with `invoices:write` (containing `invoices:read`) and `reports:read`.
async fn tenant_with_permissions(node: &TestNode) -> TestTenant {
    let tenant = node.tenant("Keys").await;
    let server = node.server(&tenant).await;
    define(&server, "invoices:read", &[]).await;
    define(&server, "invoices:write", &["invoices:read"]).await;
    define(&server, "reports:read", &[]).await;
    tenant
}

fn json_of(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

#[tokio::test]
async fn a_tenant_key_is_shown_once_and_exchanged_for_a_verified_machine_token() {
    let node = TestNode::start().await;
    let tenant = tenant_with_permissions(&node).await;
    let server = node.server(&tenant).await;
    let client = node.client(&tenant).await;

    let created = server
        .create_api_key(request("billing", &["invoices:read", "reports:read"]))
        .await
        .unwrap();
    let key = created.api_key.unwrap();
    assert!(created.secret.starts_with(&key.prefix), "{key:?}");
    assert!(key.prefix.starts_with("gak_"));
    assert_eq!(key.owner_kind(), v1::ApiKeyOwnerKind::Tenant);

    // Listed and read back without the secret.
    let listed = server
        .list_api_keys(v1::ListApiKeysRequest::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!format!("{listed:?}").contains(&created.secret[key.prefix.len()..]));
    assert_eq!(listed[0].last_used_at, None);

    // The exchange works with the tenant's publishable client key as well.
    let exchanged = client
        .exchange_client_credentials(&created.secret)
        .await
        .unwrap();
    assert_eq!(exchanged.token_type, "Bearer");
    assert!(exchanged.expires_in <= 300 && exchanged.expires_in > 0);
    let claims = verified_claims(&node, &tenant, &exchanged.access_token).await;
    assert_eq!(claims["sub"], tenant.id.as_str());
    assert_eq!(claims["principal_kind"], "tenant");
    assert_eq!(claims["api_key_id"], key.key_id.as_str());
    assert_eq!(claims["perms"], json!(["invoices:read", "reports:read"]));
    assert_eq!(claims["role"], "service");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    let used = server.get_api_key(&key.key_id).await.unwrap();
    assert!(used.last_used_at.is_some(), "{used:?}");

    // The machine token is no signed-in user's token.
    let as_user = client.with_access_token(&exchanged.access_token);
    assert_eq!(
        refused(as_user.get_current_user().await),
        ErrorCode::MachineTokenNotAccepted
    );

    // Scopes come from the graph.
    assert_eq!(
        refused(
            server
                .create_api_key(request("bad", &["invoices:delete"]))
                .await
        ),
        ErrorCode::InvalidArgument
    );

    // Revoked: refused like an unknown or mangled key.
    server.revoke_api_key(&key.key_id).await.unwrap();
    let mut mangled = created.secret.clone();
    mangled.pop();
    mangled.push('0');
    for presented in [created.secret.as_str(), &mangled, "gak_nothing"] {
        assert_eq!(
            refused(client.exchange_client_credentials(presented).await),
            ErrorCode::ApiKeyInvalid,
            "{presented}"
        );
    }
    assert!(server.get_api_key(&key.key_id).await.unwrap().revoked);
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let node = TestNode::start().await;
    let tenant = tenant_with_permissions(&node).await;
    let server = node.server(&tenant).await;
    let created = server
        .create_api_key(v1::CreateApiKeyRequest {
            expiry: Some(Expiry::ExpiresInSeconds(1)),
            ..request("short", &["reports:read"])
        })
        .await
        .unwrap();
    assert!(created.api_key.unwrap().expires_at.is_some());
    // Waits out the one-second lifetime; the check is on the node's clock.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        refused(server.exchange_client_credentials(&created.secret).await),
        ErrorCode::ApiKeyInvalid
    );
}

#[tokio::test]
async fn a_user_key_carries_only_what_the_user_holds_and_goes_with_the_user() {
    let node = TestNode::start().await;
    let tenant = tenant_with_permissions(&node).await;
    let server = node.server(&tenant).await;
    let client = node.client(&tenant).await;
    let signed_up = client
        .sign_up_with_password(&unique_email("keys"), PASSWORD)
        .await
        .unwrap();
    server
        .grant_permission(v1::GrantPermissionRequest {
            user_id: signed_up.user_id.clone(),
            permission_id: "invoices:write".to_owned(),
            team_id: String::new(),
        })
        .await
        .unwrap();
    let user = client.with_access_token(&signed_up.access_token);

    // Not held: refused, for the user and for the server alike.
    assert_eq!(
        refused(user.create_api_key(request("cli", &["reports:read"])).await),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        refused(
            server
                .create_api_key(v1::CreateApiKeyRequest {
                    owner: Some(Owner::UserId(signed_up.user_id.clone())),
                    ..request("cli", &["reports:read"])
                })
                .await
        ),
        ErrorCode::PermissionDenied
    );
    // A user cannot create tenant keys or keys of someone else.
    let other = client
        .sign_up_with_password(&unique_email("other"), PASSWORD)
        .await
        .unwrap();
    assert_eq!(
        refused(
            user.create_api_key(v1::CreateApiKeyRequest {
                owner: Some(Owner::UserId(other.user_id.clone())),
                ..request("cli", &["invoices:read"])
            })
            .await
        ),
        ErrorCode::PermissionDenied
    );

    let created = user
        .create_api_key(request("cli", &["invoices:read"]))
        .await
        .unwrap();
    let key = created.api_key.unwrap();
    assert_eq!(key.owner_id, signed_up.user_id);
    let mine = user
        .list_api_keys(v1::ListApiKeysRequest::default())
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    // Another user sees nothing of it.
    let other_user = client.with_access_token(&other.access_token);
    assert_eq!(
        refused(other_user.get_api_key(&key.key_id).await),
        ErrorCode::ApiKeyNotFound
    );
    assert_eq!(
        refused(other_user.revoke_api_key(&key.key_id).await),
        ErrorCode::ApiKeyNotFound
    );

    let exchanged = client
        .exchange_client_credentials(&created.secret)
        .await
        .unwrap();
    let claims = verified_claims(&node, &tenant, &exchanged.access_token).await;
    assert_eq!(claims["sub"], signed_up.user_id.as_str());
    assert_eq!(claims["principal_kind"], "user");
    assert_eq!(claims["perms"], json!(["invoices:read"]));

    // Deleting the user deletes its keys.
    server.delete_user(&signed_up.user_id).await.unwrap();
    assert_eq!(
        refused(client.exchange_client_credentials(&created.secret).await),
        ErrorCode::ApiKeyInvalid
    );
    assert_eq!(
        refused(server.get_api_key(&key.key_id).await),
        ErrorCode::ApiKeyNotFound
    );
}

#[tokio::test]
async fn team_keys_need_manage_api_keys_in_the_team() {
    let node = TestNode::start().await;
    let tenant = tenant_with_permissions(&node).await;
    let server = node.server(&tenant).await;
    let client = node.client(&tenant).await;
    let admin = client
        .sign_up_with_password(&unique_email("admin"), PASSWORD)
        .await
        .unwrap();
    let outsider = client
        .sign_up_with_password(&unique_email("outsider"), PASSWORD)
        .await
        .unwrap();
    let admin_client = client.with_access_token(&admin.access_token);
    let team = server
        .create_team(v1::CreateTeamRequest {
            display_name: "Ops".to_owned(),
            creator_user_id: admin.user_id.clone(),
        })
        .await
        .unwrap();
    let team_key = |scopes: &[&str]| v1::CreateApiKeyRequest {
        owner: Some(Owner::TeamId(team.team_id.clone())),
        ..request("deploy", scopes)
    };
    // The creator is a team admin, who holds `$manage_api_keys` and `$read_members`.
    let created = admin_client
        .create_api_key(team_key(&["$read_members"]))
        .await
        .unwrap();
    // Not a permission the admin holds in the team.
    assert_eq!(
        refused(
            admin_client
                .create_api_key(team_key(&["reports:read"]))
                .await
        ),
        ErrorCode::PermissionDenied
    );
    // Not a member.
    let outsider_client = client.with_access_token(&outsider.access_token);
    assert_eq!(
        refused(
            outsider_client
                .create_api_key(team_key(&["$read_members"]))
                .await
        ),
        ErrorCode::PermissionDenied
    );
    assert_eq!(
        refused(
            outsider_client
                .list_api_keys(v1::ListApiKeysRequest {
                    owner: Some(ListOwner::TeamId(team.team_id.clone())),
                })
                .await
        ),
        ErrorCode::PermissionDenied
    );
    let listed = admin_client
        .list_api_keys(v1::ListApiKeysRequest {
            owner: Some(ListOwner::TeamId(team.team_id.clone())),
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);

    let exchanged = client
        .exchange_client_credentials(&created.secret)
        .await
        .unwrap();
    let claims = verified_claims(&node, &tenant, &exchanged.access_token).await;
    assert_eq!(claims["sub"], team.team_id.as_str());
    assert_eq!(claims["principal_kind"], "team");
    assert_eq!(claims["perms"], json!(["$read_members"]));

    // Deleting the team deletes its keys.
    server
        .delete_team(v1::DeleteTeamRequest {
            team_id: team.team_id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        refused(client.exchange_client_credentials(&created.secret).await),
        ErrorCode::ApiKeyInvalid
    );
}

#[tokio::test]
async fn another_tenants_server_key_cannot_list_revoke_or_exchange_this_tenants_keys() {
    let node = TestNode::start().await;
    let a = tenant_with_permissions(&node).await;
    let b = node.tenant("Other").await;
    let a_server = node.server(&a).await;
    let b_server = node.server(&b).await;
    let created = a_server
        .create_api_key(request("a", &["reports:read"]))
        .await
        .unwrap();
    let key_id = created.api_key.unwrap().key_id;

    // B's server key sent for tenant A is not a key of A.
    let b_on_a = b_server.with_tenant(&a.id);
    assert_eq!(
        refused(
            b_on_a
                .list_api_keys(v1::ListApiKeysRequest::default())
                .await
        ),
        ErrorCode::InvalidApiKey
    );
    assert_eq!(
        refused(b_on_a.revoke_api_key(&key_id).await),
        ErrorCode::InvalidApiKey
    );
    // In its own tenant, B sees none of A's keys, and A's key is no key of B.
    assert!(
        b_server
            .list_api_keys(v1::ListApiKeysRequest::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        refused(b_server.revoke_api_key(&key_id).await),
        ErrorCode::ApiKeyNotFound
    );
    assert_eq!(
        refused(b_server.exchange_client_credentials(&created.secret).await),
        ErrorCode::ApiKeyInvalid
    );
    // A's key still works in A.
    a_server
        .exchange_client_credentials(&created.secret)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_operator_cli_creates_lists_and_revokes_keys() {
    let node = TestNode::start().await;
    let tenant = tenant_with_permissions(&node).await;
    let (ok, stdout, stderr) = node.admin(&[
        "apikey",
        "create",
        "--tenant",
        &tenant.id,
        "--name",
        "nightly export",
        "--scope",
        "reports:read",
        "--scope",
        "invoices:read",
        "--expires-in",
        "30d",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let created = json_of(&stdout);
    let secret = created["secret"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("gak_"), "{stdout}");
    assert_eq!(created["scopes"], json!(["invoices:read", "reports:read"]));
    assert!(created["expires_at"].is_string(), "{stdout}");

    let (ok, stdout, stderr) = node.admin(&["apikey", "list", "--tenant", &tenant.id, "--json"]);
    assert!(ok, "{stderr}");
    assert!(
        !stdout.contains(&secret[12..]),
        "the list never shows the secret"
    );
    let listed = json_of(&stdout);
    assert_eq!(listed["api_keys"][0]["key_id"], key_id.as_str());
    assert_eq!(listed["api_keys"][0]["revoked"], false);

    let (ok, _, stderr) = node.admin(&[
        "apikey", "create", "--tenant", &tenant.id, "--name", "bad", "--scope", "nope",
    ]);
    assert!(!ok);
    assert!(stderr.contains("scopes"), "{stderr}");

    let client = node.client(&tenant).await;
    client.exchange_client_credentials(&secret).await.unwrap();
    let (ok, stdout, stderr) = node.admin(&[
        "apikey", "revoke", "--tenant", &tenant.id, &key_id, "--json",
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(json_of(&stdout)["revoked"], true);
    assert_eq!(
        refused(client.exchange_client_credentials(&secret).await),
        ErrorCode::ApiKeyInvalid
    );
    let (ok, stdout, stderr) =
        node.admin(&["apikey", "get", "--tenant", &tenant.id, &key_id, "--json"]);
    assert!(ok, "{stderr}");
    assert_eq!(json_of(&stdout)["revoked"], true);
}
