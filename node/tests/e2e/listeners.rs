//! What a connection may hold on the gRPC and HTTP listeners (`[connections]`), and where
//! `/metrics` is served (`[metrics]`).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::testkit::TestNode;

/// Generous: the limits under test are one or two seconds, and no test measures more
/// precisely than "closed well before this" or "still open after this".
const CLOSED_WITHIN: Duration = Duration::from_secs(10);

/// The HTTP/2 client preface and an empty SETTINGS frame: a complete, idle connection.
const HTTP2_HELLO: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Whether the server closes `stream` within `bound` (whatever it sends first).
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(bound, read_to_end).await.is_ok()
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

fn http_addr(node: &TestNode) -> SocketAddr {
    node.kit().http_addr().unwrap()
}

fn grpc_addr(node: &TestNode) -> SocketAddr {
    node.kit().grpc_addr().unwrap()
}

/// A complete request on `stream`, and whether the answer is `200`.
async fn healthz_answers(stream: &mut TcpStream) -> bool {
    let request = b"GET /healthz HTTP/1.1\r\nHost: gatehouse\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let mut buffer = [0u8; 1024];
    let read = tokio::time::timeout(CLOSED_WITHIN, stream.read(&mut buffer)).await;
    matches!(read, Ok(Ok(n)) if buffer[..n].starts_with(b"HTTP/1.1 200"))
}

#[tokio::test]
async fn half_a_request_header_is_closed_within_the_header_read_timeout() {
    let node =
        TestNode::start_with_env(&[("GATEHOUSE_CONNECTIONS_HEADER_READ_TIMEOUT_SECONDS", "1")])
            .await;
    let mut http = connect(http_addr(&node)).await;
    http.write_all(b"GET /healthz HTTP/1.1\r\nHost: gatehouse\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut http, CLOSED_WITHIN).await,
        "an unfinished HTTP request header held its connection open"
    );
    // gRPC: half the HTTP/2 preface, and a connection that sends nothing at all.
    let mut half_preface = connect(grpc_addr(&node)).await;
    half_preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let mut silent = connect(grpc_addr(&node)).await;
    assert!(
        closed_within(&mut half_preface, CLOSED_WITHIN).await,
        "half an HTTP/2 preface held its connection open"
    );
    assert!(
        closed_within(&mut silent, CLOSED_WITHIN).await,
        "a silent gRPC connection stayed open"
    );
    // The listeners still serve complete requests.
    let mut fresh = connect(http_addr(&node)).await;
    assert!(healthz_answers(&mut fresh).await);
}

#[tokio::test]
async fn idle_connections_are_closed() {
    // The header-read timeout (which hyper also applies between HTTP/1 requests) stays far
    // above the idle timeout, so a close within the bound below is the idle timeout's.
    let node = TestNode::start_with_env(&[
        ("GATEHOUSE_CONNECTIONS_IDLE_TIMEOUT_SECONDS", "1"),
        ("GATEHOUSE_CONNECTIONS_HEADER_READ_TIMEOUT_SECONDS", "120"),
    ])
    .await;
    let mut http = connect(http_addr(&node)).await;
    assert!(
        healthz_answers(&mut http).await,
        "first request on the connection"
    );
    assert!(
        closed_within(&mut http, CLOSED_WITHIN).await,
        "an idle keep-alive HTTP connection stayed open"
    );
    let mut grpc = connect(grpc_addr(&node)).await;
    grpc.write_all(HTTP2_HELLO).await.unwrap();
    assert!(
        closed_within(&mut grpc, CLOSED_WITHIN).await,
        "an idle HTTP/2 connection with no call in flight stayed open"
    );
}

#[tokio::test]
async fn connections_beyond_a_sources_share_are_closed() {
    let node = TestNode::start_with_env(&[("GATEHOUSE_CONNECTIONS_MAX_PER_SOURCE", "3")]).await;
    // The kit's own readiness client has gone by now; give its close a moment to land.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // HTTP: three connections are the share; a fourth is closed at once.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect(http_addr(&node)).await);
    }
    let mut over = connect(http_addr(&node)).await;
    assert!(
        closed_within(&mut over, CLOSED_WITHIN).await,
        "a fourth HTTP connection from one source was served"
    );
    assert!(
        healthz_answers(&mut held[0]).await,
        "a connection within the share still works"
    );
    // A place freed by a closed connection is given again.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut stream = connect(http_addr(&node)).await;
        if healthz_answers(&mut stream).await {
            again = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "a freed place was not given again");
    drop((held, again));

    // gRPC: two held connections and the client's own are the share; a fourth is closed.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(grpc_addr(&node)).await;
        stream.write_all(HTTP2_HELLO).await.unwrap();
        held.push(stream);
    }
    let client = node.operator().await;
    client.cluster_status().await.unwrap();
    let mut over = connect(grpc_addr(&node)).await;
    over.write_all(HTTP2_HELLO).await.unwrap();
    assert!(
        closed_within(&mut over, CLOSED_WITHIN).await,
        "a fourth gRPC connection from one source was served"
    );
    client.cluster_status().await.unwrap();
    drop(held);
}

#[tokio::test]
async fn metrics_are_not_public_by_default_and_served_on_their_listener() {
    let node = TestNode::start().await;
    let public = reqwest::get(format!("{}/metrics", node.http_url()))
        .await
        .unwrap();
    assert_eq!(public.status().as_u16(), 404);
    let private = reqwest::get(node.metrics_url()).await.unwrap();
    assert_eq!(private.status().as_u16(), 200);
    assert!(private.text().await.unwrap().contains("gatehouse_"));
    // The metrics listener serves nothing else.
    let metrics_base = node.metrics_url().trim_end_matches("/metrics").to_owned();
    let jwks = reqwest::get(format!("{metrics_base}/healthz"))
        .await
        .unwrap();
    assert_eq!(jwks.status().as_u16(), 404);
}

#[tokio::test]
async fn metrics_on_the_http_listener_need_the_configured_token() {
    let token = "a-long-metrics-bearer-token";
    let node = TestNode::start_with_env(&[
        ("GATEHOUSE_METRICS_LISTEN", ""),
        ("GATEHOUSE_METRICS_BEARER_TOKEN", token),
    ])
    .await;
    let http = reqwest::Client::new();
    let url = format!("{}/metrics", node.http_url());
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let wrong = http.get(&url).bearer_auth("not-the-token").send().await;
    assert_eq!(wrong.unwrap().status().as_u16(), 401);
    let right = http.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(right.status().as_u16(), 200);
    assert!(right.text().await.unwrap().contains("gatehouse_"));

    let open = TestNode::start_with_env(&[
        ("GATEHOUSE_METRICS_LISTEN", ""),
        ("GATEHOUSE_METRICS_ON_HTTP", "true"),
    ])
    .await;
    let response = reqwest::get(format!("{}/metrics", open.http_url()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
