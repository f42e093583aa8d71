//! The HTTP listeners (public and metrics) served by hyper's HTTP/1 connection under the
//! limits: the request header within `header_read` (hyper also applies it to a keep-alive
//! connection waiting for its next request), each request answered within `request` (else
//! `408`), idle connections closed, and each source's share of connections.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use super::{Limits, SourceLimiter, accept};

/// Serves `router` on `listener` until `shutdown` resolves, then lets every open
/// connection finish its request in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let limiter = SourceLimiter::new(limits.max_per_source);
    let (stop_sender, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let connection = tokio::select! {
            connection = accept(&listener, &limiter, &limits, None) => connection,
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(serve_connection(
            connection,
            router.clone(),
            limits,
            stop.clone(),
        ));
    }
    drop(listener);
    let _ = stop_sender.send(true);
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    connection: super::Guarded,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let remote: SocketAddr = connection.remote();
    let activity = connection.activity();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let in_flight = activity.begin();
        let mut request = request.map(axum::body::Body::new);
        // The upstream sign-in routes record the peer address in sessions and audit entries.
        request.extensions_mut().insert(ConnectInfo(remote));
        let call = router.clone().oneshot(request);
        async move {
            let response = match tokio::time::timeout(limits.request, call).await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => (StatusCode::REQUEST_TIMEOUT, "request timed out").into_response(),
            };
            drop(in_flight);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let served = builder.serve_connection(TokioIo::new(connection), service);
    tokio::pin!(served);
    let stopping = async {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopping);
    let result = tokio::select! {
        result = &mut served => result,
        () = &mut stopping => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%remote, %error, "HTTP connection ended");
    }
}
