//! Webhook delivery survives the loss of the dispatcher: the tenant's owner claims a delivery,
//! its receiver stalls, the owner is SIGKILLed, and the new owner sends the event once the
//! claim's lease runs out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_cluster_tests::{ClusterSandbox, SandboxStorage};
use gatehouse_protocol::v1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{actor_owner, sign_up};

/// The `webhook-id` of every request the receiver got, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// Reads one HTTP request (headers and a `content-length` body); returns its `webhook-id`.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
        let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|line| line.strip_prefix(&format!("{name}:")))
                .map(|value| value.trim().to_owned())
        };
        let length: usize = header("content-length")?.parse().ok()?;
        if buffer.len() >= end + 4 + length {
            return header("webhook-id");
        }
    }
}

/// A receiver on 127.0.0.1 that never answers its first request and answers 200 after.
async fn stalling_receiver() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let recorded = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let recorded = recorded.clone();
            tokio::spawn(async move {
                while let Some(id) = read_request(&mut stream).await {
                    let first = {
                        let mut seen = recorded.lock().unwrap();
                        seen.push(id);
                        seen.len() == 1
                    };
                    if first {
                        // Hold the connection until the test ends.
                        tokio::time::sleep(Duration::from_secs(600)).await;
                        return;
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_delivered_by_the_new_owner_after_the_dispatcher_owner_is_killed() {
    let mut sandbox = ClusterSandbox::builder()
        .nodes(3)
        .storage(SandboxStorage::Postgres)
        .node_env("GATEHOUSE_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true")
        .node_env("GATEHOUSE_WEBHOOKS_ATTEMPT_TIMEOUT_SECONDS", "3")
        .build()
        .await
        .unwrap();
    let tenant = sandbox.create_tenant("Hooks").await.unwrap();
    // The tenant's owner runs its dispatcher.
    let owner_id = actor_owner(
        &sandbox,
        &["a", "b", "c"],
        v1::ActorKind::Tenant,
        &tenant.id,
        "",
    )
    .await;
    let owner = sandbox.index_of(&owner_id).unwrap();
    let other = (owner + 1) % 3;
    let (url, seen) = stalling_receiver().await;
    sandbox
        .node(other)
        .server(&tenant)
        .unwrap()
        .create_webhook_endpoint(&url, "failover", &["user.created"])
        .await
        .unwrap();
    sign_up(sandbox.node(other), &tenant, "hook").await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the owner never attempted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The owner is mid-delivery (its receiver stalls): kill it.
    sandbox.node_mut(owner).kill().await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let ids = seen.lock().unwrap().clone();
        if ids.len() >= 2 {
            assert_eq!(ids[0], ids[1], "the same event is sent again");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the event was not delivered after the owner died"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = sandbox
        .node(other)
        .server(&tenant)
        .unwrap()
        .list_webhook_endpoints()
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
}
