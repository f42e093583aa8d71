//! Webhooks against a real node and a real HTTP receiver on 127.0.0.1: signed deliveries
//! that the Standard Webhooks reference library accepts, retries, 410, replay from the CLI,
//! and private targets refused when the node does not allow them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use gatehouse_protocol::ErrorCode;
use gatehouse_protocol::sdk::Client;
use serde_json::Value;

use crate::testkit::{PASSWORD, TestNode, unique_email};

/// Lets the node deliver to this test's receiver on loopback.
pub const ALLOW_PRIVATE: (&str, &str) = ("GATEHOUSE_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true");

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Vec<u8>,
}

impl Received {
    /// The `webhook-id` header.
    pub fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_owned()
    }

    /// The parsed JSON body.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// An HTTP receiver answering from a script (then 200) and recording every request.
#[derive(Clone, Default)]
pub struct Receiver {
    script: Arc<Mutex<VecDeque<u16>>>,
    seen: Arc<Mutex<Vec<Received>>>,
    /// Where it listens.
    pub addr: Option<SocketAddr>,
}

impl Receiver {
    /// Starts a receiver on 127.0.0.1 answering `script` first.
    pub async fn start(script: &[u16]) -> Receiver {
        let mut receiver = Receiver::default();
        receiver.script.lock().unwrap().extend(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        receiver.addr = Some(listener.local_addr().unwrap());
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    state.seen.lock().unwrap().push(Received {
                        headers,
                        body: body.to_vec(),
                    });
                    let status = state.script.lock().unwrap().pop_front().unwrap_or(200);
                    StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    /// The URL to register.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr.unwrap())
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests arrived (at most `limit`).
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            let seen = self.received();
            if seen.len() >= count {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "expected {count} webhook requests within {limit:?}, got {}",
            self.received().len()
        );
    }
}

fn verify(secret: &str, received: &Received) {
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(&received.body, &received.headers)
        .expect("the reference library accepts the signature");
}

async fn endpoint(server: &Client, receiver: &Receiver) -> (String, String) {
    let created = server
        .create_webhook_endpoint(&receiver.url(), "e2e", &["user.created"])
        .await
        .unwrap();
    (created.endpoint.unwrap().endpoint_id, created.secret)
}

#[tokio::test]
async fn a_sign_up_produces_a_signed_user_created_delivery() {
    let node = TestNode::start_with_env(&[ALLOW_PRIVATE]).await;
    let tenant = node.tenant("Hooks").await;
    let server = node.server(&tenant).await;
    let receiver = Receiver::start(&[]).await;
    let (endpoint_id, secret) = endpoint(&server, &receiver).await;
    assert!(secret.starts_with("whsec_"));
    let email = unique_email("hook");
    node.client(&tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let seen = receiver.wait_for(1, Duration::from_secs(15)).await;
    verify(&secret, &seen[0]);
    let body = seen[0].json();
    assert_eq!(body["type"], "user.created");
    assert_eq!(body["data"]["email"], email.as_str());
    assert!(seen[0].id().starts_with("msg_"));
    // Only the subscribed type arrives: no session.created.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1);
    let log = server
        .list_webhook_deliveries(&endpoint_id, 10, "")
        .await
        .unwrap();
    assert_eq!(log.deliveries.len(), 1);
    let delivery = &log.deliveries[0];
    assert_eq!(delivery.status, "delivered");
    assert_eq!(delivery.event_id, seen[0].id());
    assert_eq!(delivery.attempts[0].http_status, 200);
}

#[tokio::test]
async fn a_500_is_retried_and_then_delivered_with_the_same_id() {
    let node = TestNode::start_with_env(&[ALLOW_PRIVATE]).await;
    let tenant = node.tenant("Retry").await;
    let server = node.server(&tenant).await;
    let receiver = Receiver::start(&[500]).await;
    let (endpoint_id, secret) = endpoint(&server, &receiver).await;
    node.client(&tenant)
        .await
        .sign_up_with_password(&unique_email("retry"), PASSWORD)
        .await
        .unwrap();
    let seen = receiver.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(seen[0].id(), seen[1].id());
    verify(&secret, &seen[1]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = server
            .list_webhook_deliveries(&endpoint_id, 10, "")
            .await
            .unwrap();
        let delivery = &log.deliveries[0];
        if delivery.status == "delivered" {
            let codes: Vec<u32> = delivery.attempts.iter().map(|a| a.http_status).collect();
            assert_eq!(codes, [500, 200]);
            assert!(delivery.attempts[0].error.contains("500"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{delivery:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_410_disables_the_endpoint() {
    let node = TestNode::start_with_env(&[ALLOW_PRIVATE]).await;
    let tenant = node.tenant("Gone").await;
    let server = node.server(&tenant).await;
    let receiver = Receiver::start(&[410]).await;
    let (endpoint_id, _) = endpoint(&server, &receiver).await;
    node.client(&tenant)
        .await
        .sign_up_with_password(&unique_email("gone"), PASSWORD)
        .await
        .unwrap();
    receiver.wait_for(1, Duration::from_secs(15)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stored = server.get_webhook_endpoint(&endpoint_id).await.unwrap();
        if !stored.enabled {
            assert_eq!(stored.disabled_reason, "gone");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Later events are not sent to a disabled endpoint.
    node.client(&tenant)
        .await
        .sign_up_with_password(&unique_email("after"), PASSWORD)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn the_cli_creates_an_endpoint_lists_deliveries_and_replays_an_event() {
    let node = TestNode::start_with_env(&[ALLOW_PRIVATE]).await;
    let tenant = node.tenant("Replay").await;
    let receiver = Receiver::start(&[]).await;
    let url = receiver.url();
    let (ok, stdout, stderr) = node.admin(&[
        "webhook", "create", "--tenant", &tenant.id, "--url", &url, "--event", "user.*", "--json",
    ]);
    assert!(ok, "{stderr}");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let endpoint_id = created["endpoint_id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    node.client(&tenant)
        .await
        .sign_up_with_password(&unique_email("replay"), PASSWORD)
        .await
        .unwrap();
    let first = receiver.wait_for(1, Duration::from_secs(15)).await[0].clone();
    let event_id = first.id();

    let (ok, stdout, stderr) = node.admin(&[
        "webhook",
        "replay",
        "--tenant",
        &tenant.id,
        &endpoint_id,
        "--event",
        &event_id,
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let replayed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(replayed["replay"], true);
    let seen = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(seen[1].id(), event_id);
    assert_eq!(seen[1].body, first.body);
    verify(&secret, &seen[1]);

    let (ok, stdout, _) = node.admin(&[
        "webhook",
        "deliveries",
        "--tenant",
        &tenant.id,
        &endpoint_id,
        "--json",
    ]);
    assert!(ok);
    let log: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(log["deliveries"].as_array().unwrap().len(), 2);

    let (ok, stdout, _) = node.admin(&[
        "webhook",
        "rotate-secret",
        "--tenant",
        &tenant.id,
        &endpoint_id,
        "--json",
    ]);
    assert!(ok);
    let rotated: Value = serde_json::from_str(&stdout).unwrap();
    assert_ne!(rotated["secret"], created["secret"]);
    let (ok, stdout, _) = node.admin(&[
        "webhook",
        "update",
        "--tenant",
        &tenant.id,
        &endpoint_id,
        "--disable",
        "--json",
    ]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout).unwrap()["enabled"],
        false
    );
    let (ok, stdout, _) = node.admin(&["webhook", "list", "--tenant", &tenant.id]);
    assert!(ok && stdout.contains(&endpoint_id), "{stdout}");
    let (ok, _, _) = node.admin(&["webhook", "delete", "--tenant", &tenant.id, &endpoint_id]);
    assert!(ok);
    let (ok, _, stderr) = node.admin(&["webhook", "get", "--tenant", &tenant.id, &endpoint_id]);
    assert!(
        !ok && stderr.to_lowercase().contains("webhook_endpoint_not_found"),
        "{stderr}"
    );
}

#[tokio::test]
async fn private_targets_are_refused_unless_the_node_allows_them() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Strict").await;
    let server = node.server(&tenant).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest",
        "http://10.0.0.1/hook",
    ] {
        let error = server
            .create_webhook_endpoint(url, "", &[])
            .await
            .unwrap_err();
        assert_eq!(error.code, ErrorCode::WebhookTargetNotAllowed, "{url}");
    }
    let error = server
        .create_webhook_endpoint("ftp://example.com/", "", &[])
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::InvalidArgument);
    let error = server
        .create_webhook_endpoint("http://127.0.0.1:9/hook", "", &["user.exploded"])
        .await
        .unwrap_err();
    assert_eq!(error.code, ErrorCode::WebhookTargetNotAllowed);
    // Clients (publishable key) may not manage endpoints at all.
    let client_error = node
        .client(&tenant)
        .await
        .list_webhook_endpoints()
        .await
        .unwrap_err();
    assert_eq!(client_error.code, ErrorCode::PermissionDenied);
}
