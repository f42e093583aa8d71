//! A tower layer that makes each request's source address visible to the domain's audit
//! entries (`gatehouse_actors::audit::current_source_ip`) for the whole call.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use gatehouse_actors::audit;
use tonic::codegen::{Service, http};
use tonic::transport::server::TcpConnectInfo;

/// Wraps every service in [`SourceAddress`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceAddressLayer;

impl<S> tower_layer::Layer<S> for SourceAddressLayer {
    type Service = SourceAddress<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SourceAddress { inner }
    }
}

/// Runs the inner service's call with the peer address in scope.
#[derive(Debug, Clone)]
pub struct SourceAddress<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for SourceAddress<S>
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let source_ip = request
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .map(|addr| addr.ip().to_string())
            .unwrap_or_default();
        let call = self.inner.call(request);
        Box::pin(audit::with_source_ip(source_ip, call))
    }
}
