//! The gRPC listener's side of the limits: accepted connections as tonic's incoming
//! stream, and the layer that counts each connection's requests in flight.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::{Service, http};
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::{Activity, Guarded, Limits, SourceLimiter, accept};

/// The HTTP/2 client preface (`PRI * HTTP/2.0…`) a client must send in time.
const HTTP2_PREFACE_BYTES: usize = 24;

/// The listener's connections within their source's share, as tonic's incoming stream.
pub fn incoming(
    listener: TcpListener,
    limits: Limits,
) -> ReceiverStream<Result<Guarded, std::io::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    let limiter = SourceLimiter::new(limits.max_per_source);
    tokio::spawn(async move {
        loop {
            let connection = tokio::select! {
                connection = accept(&listener, &limiter, &limits, Some(HTTP2_PREFACE_BYTES)) => connection,
                () = sender.closed() => return,
            };
            if sender.send(Ok(connection)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// What a gRPC request knows of its connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    tcp: TcpConnectInfo,
    activity: Arc<Activity>,
}

impl Connected for Guarded {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            tcp: TcpConnectInfo {
                local_addr: self.local,
                remote_addr: Some(self.remote()),
            },
            activity: self.activity(),
        }
    }
}

/// Counts every request as in flight on its connection until it is answered (so a
/// connection is idle only between calls), and gives the request the usual
/// [`TcpConnectInfo`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionLayer;

impl<S> tower_layer::Layer<S> for ConnectionLayer {
    type Service = CountInFlight<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountInFlight { inner }
    }
}

/// See [`ConnectionLayer`].
#[derive(Debug, Clone)]
pub struct CountInFlight<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for CountInFlight<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let connection = request.extensions().get::<ConnectionInfo>().cloned();
        let in_flight = connection.map(|connection| {
            request.extensions_mut().insert(connection.tcp);
            connection.activity.begin()
        });
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await;
            drop(in_flight);
            response
        })
    }
}
