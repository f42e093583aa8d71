//! OpenID Connect clients against a real node: the operator CLI end to end (create
//! confidential and public, list, get, update, rotate-secret, delete), the SDK with a server
//! key (the secret shown once and never listed, refused redirect URIs with their code and
//! field), who may manage clients, and tenant isolation.

use gatehouse_protocol::{ApiError, ErrorCode, v1};
use serde_json::{Value, json};

use crate::testkit::{PASSWORD, TestNode, unique_email};

fn refused<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ApiError {
    result.expect_err("the call must be refused")
}

fn json_of(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

fn request(
    name: &str,
    kind: v1::OidcClientKind,
    redirect_uris: &[&str],
) -> v1::CreateOidcClientRequest {
    v1::CreateOidcClientRequest {
        name: name.to_owned(),
        kind: kind as i32,
        redirect_uris: redirect_uris.iter().map(|uri| (*uri).to_owned()).collect(),
        post_logout_redirect_uris: Vec::new(),
        allowed_scopes: Vec::new(),
        first_party: false,
    }
}

#[tokio::test]
async fn the_operator_cli_manages_confidential_and_public_clients() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Clients").await;
    let t = tenant.id.as_str();

    let (ok, stdout, stderr) = node.admin(&[
        "oidc-client",
        "create",
        "--tenant",
        t,
        "--name",
        "Billing portal",
        "--redirect-uri",
        "https://billing.example.com/callback",
        "--redirect-uri",
        "http://127.0.0.1:8080/callback",
        "--scope",
        "email",
        "--first-party",
        "--post-logout-redirect-uri",
        "https://billing.example.com/bye",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let confidential = json_of(&stdout);
    let client_id = confidential["client_id"].as_str().unwrap().to_owned();
    let secret = confidential["client_secret"].as_str().unwrap().to_owned();
    assert!(client_id.starts_with("gci_"), "{stdout}");
    assert!(secret.starts_with("gcs_"), "{stdout}");
    assert_eq!(confidential["kind"], "confidential");
    assert_eq!(confidential["allowed_scopes"], json!(["openid", "email"]));
    assert_eq!(confidential["first_party"], true);
    assert_eq!(confidential["created_by"], "operator");
    assert_eq!(
        confidential["redirect_uris"],
        json!([
            "https://billing.example.com/callback",
            "http://127.0.0.1:8080/callback"
        ])
    );

    let (ok, stdout, stderr) = node.admin(&[
        "oidc-client",
        "create",
        "--tenant",
        t,
        "--name",
        "Mobile app",
        "--public",
        "--redirect-uri",
        "com.example.app:/oauth2redirect",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let public = json_of(&stdout);
    let public_id = public["client_id"].as_str().unwrap().to_owned();
    assert_eq!(public["kind"], "public");
    assert!(public.get("client_secret").is_none(), "{stdout}");
    assert_eq!(
        public["allowed_scopes"],
        json!(["openid", "profile", "email"])
    );

    // Human output names the client and shows the secret once.
    let (ok, stdout, stderr) = node.admin(&[
        "oidc-client",
        "create",
        "--tenant",
        t,
        "--name",
        "Reports",
        "--redirect-uri",
        "https://reports.example.com/cb",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("client secret (shown once"), "{stdout}");
    assert!(stdout.contains("\"Reports\""), "{stdout}");

    let (ok, stdout, stderr) = node.admin(&["oidc-client", "list", "--tenant", t, "--json"]);
    assert!(ok, "{stderr}");
    assert!(
        !stdout.contains(&secret[4..]),
        "the list never shows a secret"
    );
    let listed = json_of(&stdout);
    let ids: Vec<&str> = listed["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|client| client["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[..2], [client_id.as_str(), public_id.as_str()]);
    let (ok, stdout, _) = node.admin(&["oidc-client", "list", "--tenant", t]);
    assert!(ok);
    assert!(
        stdout.contains(&public_id) && stdout.contains("public"),
        "{stdout}"
    );

    let (ok, stdout, stderr) =
        node.admin(&["oidc-client", "get", "--tenant", t, &client_id, "--json"]);
    assert!(ok, "{stderr}");
    let got = json_of(&stdout);
    assert_eq!(got["name"], "Billing portal");
    assert!(got.get("client_secret").is_none());

    let (ok, stdout, stderr) = node.admin(&[
        "oidc-client",
        "update",
        "--tenant",
        t,
        &client_id,
        "--name",
        "Billing",
        "--redirect-uri",
        "https://billing.example.com/v2/callback",
        "--clear-post-logout-redirect-uris",
        "--first-party",
        "false",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let updated = json_of(&stdout);
    assert_eq!(updated["name"], "Billing");
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://billing.example.com/v2/callback"])
    );
    assert_eq!(updated["post_logout_redirect_uris"], json!([]));
    assert_eq!(updated["first_party"], false);
    assert_eq!(
        updated["allowed_scopes"],
        json!(["openid", "email"]),
        "not given: kept"
    );

    // A wildcard is refused with the field named.
    let (ok, _, stderr) = node.admin(&[
        "oidc-client",
        "update",
        "--tenant",
        t,
        &client_id,
        "--redirect-uri",
        "https://*.example.com/callback",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("invalid_argument") && stderr.contains("redirect_uris"),
        "{stderr}"
    );

    let (ok, stdout, stderr) = node.admin(&[
        "oidc-client",
        "rotate-secret",
        "--tenant",
        t,
        &client_id,
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let rotated = json_of(&stdout);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert!(
        new_secret.starts_with("gcs_") && new_secret != secret,
        "{stdout}"
    );
    let (ok, _, stderr) = node.admin(&["oidc-client", "rotate-secret", "--tenant", t, &public_id]);
    assert!(!ok);
    assert!(stderr.contains("oidc_client_public"), "{stderr}");

    let (ok, stdout, stderr) =
        node.admin(&["oidc-client", "delete", "--tenant", t, &client_id, "--json"]);
    assert!(ok, "{stderr}");
    assert_eq!(json_of(&stdout)["result"], "deleted");
    let (ok, _, stderr) = node.admin(&["oidc-client", "get", "--tenant", t, &client_id]);
    assert!(!ok);
    assert!(stderr.contains("oidc_client_not_found"), "{stderr}");

    // Every change is in the tenant's audit ledger.
    let operator = node.operator().await.with_tenant(t);
    let entries = operator.list_audit_entries(200, "").await.unwrap();
    let actions: Vec<&str> = entries
        .entries
        .iter()
        .map(|entry| entry.action.as_str())
        .collect();
    for action in [
        "oidc_client.create",
        "oidc_client.update",
        "oidc_client.rotate_secret",
        "oidc_client.delete",
    ] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
}

#[tokio::test]
async fn a_server_key_manages_clients_and_bad_input_is_refused_with_its_field() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Clients").await;
    let server = node.server(&tenant).await;

    let created = server
        .create_oidc_client(v1::CreateOidcClientRequest {
            post_logout_redirect_uris: vec!["https://app.example.com/bye".to_owned()],
            allowed_scopes: vec!["openid".to_owned(), "offline_access".to_owned()],
            ..request(
                "App",
                v1::OidcClientKind::Confidential,
                &["https://app.example.com/cb?x=1", "http://localhost:3000/cb"],
            )
        })
        .await
        .unwrap();
    let client = created.client.unwrap();
    assert!(created.client_secret.starts_with("gcs_"));
    assert_eq!(client.created_by, "server");
    assert_eq!(client.kind(), v1::OidcClientKind::Confidential);
    assert_eq!(
        client.redirect_uris,
        ["https://app.example.com/cb?x=1", "http://localhost:3000/cb"],
        "kept as given"
    );
    let listed = server.list_oidc_clients().await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&client));
    assert!(!format!("{listed:?}").contains(&created.client_secret[4..]));
    assert_eq!(
        server.get_oidc_client(&client.client_id).await.unwrap(),
        client
    );

    let updated = server
        .update_oidc_client(v1::UpdateOidcClientRequest {
            client_id: client.client_id.clone(),
            allowed_scopes: Vec::new(),
            set_allowed_scopes: true,
            first_party: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.allowed_scopes, ["openid", "profile", "email"]);
    assert!(updated.first_party);
    assert_eq!(updated.redirect_uris, client.redirect_uris);

    let rotated = server
        .rotate_oidc_client_secret(&client.client_id)
        .await
        .unwrap();
    assert_ne!(rotated.client_secret, created.client_secret);

    for (uri, why) in [
        ("https://*.example.com/cb", "wildcard"),
        ("https://app.example.com/cb#frag", "fragment"),
        ("http://app.example.com/cb", "http off loopback"),
        ("https://user@app.example.com/cb", "user information"),
        ("/cb", "relative"),
    ] {
        let error = refused(
            server
                .create_oidc_client(request("Bad", v1::OidcClientKind::Public, &[uri]))
                .await,
        );
        assert_eq!(error.code, ErrorCode::InvalidArgument, "{uri} ({why})");
        assert_eq!(error.grpc_code, tonic::Code::InvalidArgument);
        assert_eq!(error.field.as_deref(), Some("redirect_uris"), "{uri}");
    }
    let no_kind = refused(
        server
            .create_oidc_client(request(
                "Bad",
                v1::OidcClientKind::Unspecified,
                &["https://a.example/cb"],
            ))
            .await,
    );
    assert_eq!(no_kind.field.as_deref(), Some("kind"));
    let bad_scope = refused(
        server
            .create_oidc_client(v1::CreateOidcClientRequest {
                allowed_scopes: vec!["two words".to_owned()],
                ..request("Bad", v1::OidcClientKind::Public, &["https://a.example/cb"])
            })
            .await,
    );
    assert_eq!(bad_scope.field.as_deref(), Some("allowed_scopes"));
    let unknown = refused(server.get_oidc_client("gci_AAAAAAAAAAAAAAAAAAAAAA").await);
    assert_eq!(unknown.code, ErrorCode::OidcClientNotFound);
    assert_eq!(unknown.grpc_code, tonic::Code::NotFound);

    server.delete_oidc_client(&client.client_id).await.unwrap();
    assert_eq!(
        refused(server.delete_oidc_client(&client.client_id).await).code,
        ErrorCode::OidcClientNotFound
    );
    assert!(server.list_oidc_clients().await.unwrap().is_empty());
}

#[tokio::test]
async fn only_servers_and_operators_manage_clients_and_tenants_are_isolated() {
    let node = TestNode::start().await;
    let a = node.tenant("A").await;
    let b = node.tenant("B").await;
    let a_server = node.server(&a).await;
    let b_server = node.server(&b).await;
    let created = a_server
        .create_oidc_client(request(
            "A app",
            v1::OidcClientKind::Confidential,
            &["https://a.example.com/cb"],
        ))
        .await
        .unwrap();
    let client_id = created.client.unwrap().client_id;

    // B's server key, in its own tenant, finds none of A's clients.
    assert!(b_server.list_oidc_clients().await.unwrap().is_empty());
    for error in [
        refused(b_server.get_oidc_client(&client_id).await),
        refused(
            b_server
                .update_oidc_client(v1::UpdateOidcClientRequest {
                    client_id: client_id.clone(),
                    name: Some("taken".to_owned()),
                    ..Default::default()
                })
                .await,
        ),
        refused(b_server.rotate_oidc_client_secret(&client_id).await),
        refused(b_server.delete_oidc_client(&client_id).await),
    ] {
        assert_eq!(error.code, ErrorCode::OidcClientNotFound, "{error}");
        assert_eq!(error.grpc_code, tonic::Code::NotFound);
    }
    // B's server key sent for tenant A is no key of A.
    assert_eq!(
        refused(b_server.with_tenant(&a.id).list_oidc_clients().await).code,
        ErrorCode::InvalidApiKey
    );

    // Neither the publishable client key nor a signed-in user manages clients.
    let client = node.client(&a).await;
    let signed_up = client
        .sign_up_with_password(&unique_email("oidc"), PASSWORD)
        .await
        .unwrap();
    let user = client.with_access_token(&signed_up.access_token);
    for caller in [&client, &user] {
        assert_eq!(
            refused(caller.list_oidc_clients().await).code,
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            refused(caller.get_oidc_client(&client_id).await).code,
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            refused(
                caller
                    .create_oidc_client(request(
                        "mine",
                        v1::OidcClientKind::Public,
                        &["https://a.example.com/cb"],
                    ))
                    .await
            )
            .code,
            ErrorCode::PermissionDenied
        );
    }
    // A's client is still A's, untouched.
    assert_eq!(
        a_server.get_oidc_client(&client_id).await.unwrap().name,
        "A app"
    );
}
