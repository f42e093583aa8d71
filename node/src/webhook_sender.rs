//! The HTTP side of webhooks: a reqwest client whose resolver refuses private, loopback and
//! link-local addresses (unless the node allows them), so a host that resolves to a private
//! address at delivery time (DNS rebinding) is refused too. Redirects are not followed and
//! proxies from the environment are not used: either could lead around the check.
//!
//! `https://` targets need the `webhooks-https` cargo feature; without it they are refused
//! when an endpoint is created.

use crate::error::NodeError;
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use gatehouse_actors::webhooks::targets::{HostResolver, is_private_address};
use gatehouse_actors::webhooks::{SendOutcome, WebhookRequest, WebhookSender};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The resolver refused a host: it resolves to a private address.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TargetRefused(String);

/// Resolves with the system resolver and refuses hosts with a private address when they are
/// not allowed (webhook targets, and upstream providers in `upstream/http.rs`).
#[derive(Debug)]
pub(crate) struct CheckingResolver {
    /// Whether private, loopback and link-local addresses are allowed.
    pub(crate) allow_private: bool,
}

/// Whether `address` belongs to one of this machine's interfaces (read each time: interfaces
/// come and go). A public address of the node reaches the node's own listeners as surely as
/// loopback does.
pub(crate) fn is_own_address(address: IpAddr) -> bool {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.iter().any(|interface| interface.ip() == address),
        Err(error) => {
            // Without the list, refuse rather than guess.
            tracing::warn!(%error, "cannot list this node's interface addresses");
            true
        }
    }
}

/// Whether a node that refuses private destinations refuses `address`: not globally
/// reachable, or one of the node's own.
pub(crate) fn is_refused_address(address: IpAddr) -> bool {
    is_private_address(address) || is_own_address(address)
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private
                && let Some(refused) = resolved.iter().find(|addr| is_refused_address(addr.ip()))
            {
                let refused = TargetRefused(format!(
                    "{host} resolves to {}, which is not a globally reachable address or is \
                     one of this node's",
                    refused.ip()
                ));
                return Err(Box::new(refused) as Box<dyn StdError + Send + Sync>);
            }
            let addrs: Addrs = Box::new(resolved.into_iter());
            Ok(addrs)
        })
    }
}

/// The system resolver, for the domain's target check when an endpoint is created and
/// before each delivery.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait::async_trait]
impl HostResolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>> {
        let addresses = tokio::net::lookup_host((host, port)).await?;
        Ok(addresses.map(|socket| socket.ip()).collect())
    }

    fn is_own_address(&self, address: IpAddr) -> bool {
        is_own_address(address)
    }
}

/// Delivers webhooks over HTTP with reqwest.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
    allow_private: bool,
}

impl HttpWebhookSender {
    /// A sender; `allow_private` mirrors `webhooks.allow_private_targets`.
    pub fn new(allow_private: bool) -> Result<HttpWebhookSender, NodeError> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckingResolver { allow_private }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("Gatehouse-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(NodeError::WebhookSender)?;
        Ok(HttpWebhookSender {
            client,
            allow_private,
        })
    }
}

/// Joins an error and its sources, and says whether the resolver refused the target.
fn describe(error: &reqwest::Error) -> (String, bool) {
    let mut text = error.to_string();
    let mut refused = false;
    let mut source = error.source();
    while let Some(cause) = source {
        refused |= cause.downcast_ref::<TargetRefused>().is_some();
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_timeout() {
        text = format!("timed out: {text}");
    }
    (text, refused)
}

#[async_trait::async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, request: WebhookRequest) -> SendOutcome {
        let url = match reqwest::Url::parse(&request.url) {
            Ok(url) => url,
            Err(error) => return SendOutcome::Failed(format!("invalid url: {error}")),
        };
        // Literal addresses never reach the resolver.
        let literal: Option<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            _ => None,
        };
        if let Some(address) = literal
            && !self.allow_private
            && is_refused_address(address)
        {
            return SendOutcome::Refused(format!(
                "{address} is not a globally reachable address or is one of this node's"
            ));
        }
        let mut builder = self
            .client
            .post(url)
            .timeout(request.timeout)
            .body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        match builder.send().await {
            Ok(response) => SendOutcome::Answered(response.status().as_u16()),
            Err(error) => match describe(&error) {
                (text, true) => SendOutcome::Refused(text),
                (text, false) => SendOutcome::Failed(text),
            },
        }
    }

    fn supports_https(&self) -> bool {
        cfg!(feature = "webhooks-https")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    fn request(url: String) -> WebhookRequest {
        WebhookRequest {
            url,
            headers: vec![("webhook-id".to_owned(), "msg_1".to_owned())],
            body: b"{}".to_vec(),
            timeout: Duration::from_secs(5),
        }
    }

    async fn receiver(status: u16) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let code = axum::http::StatusCode::from_u16(status).unwrap();
        let app =
            axum::Router::new().route("/hook", axum::routing::post(move || async move { code }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    #[tokio::test]
    async fn loopback_targets_are_refused_by_literal_and_by_name_unless_allowed() {
        let addr = receiver(204).await;
        let refusing = HttpWebhookSender::new(false).unwrap();
        let by_literal = refusing.send(request(format!("http://{addr}/hook"))).await;
        assert!(
            matches!(by_literal, SendOutcome::Refused(_)),
            "{by_literal:?}"
        );
        let by_name = refusing
            .send(request(format!("http://localhost:{}/hook", addr.port())))
            .await;
        assert!(matches!(by_name, SendOutcome::Refused(_)), "{by_name:?}");
        let allowing = HttpWebhookSender::new(true).unwrap();
        let sent = allowing.send(request(format!("http://{addr}/hook"))).await;
        assert_eq!(sent, SendOutcome::Answered(204));
    }

    #[test]
    fn the_nodes_own_interface_addresses_are_its_own() {
        let interfaces = if_addrs::get_if_addrs().unwrap();
        assert!(!interfaces.is_empty());
        for interface in &interfaces {
            assert!(is_own_address(interface.ip()), "{interface:?}");
            assert!(is_refused_address(interface.ip()), "{interface:?}");
            assert!(SystemResolver.is_own_address(interface.ip()));
        }
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        if interfaces.iter().all(|interface| interface.ip() != public) {
            assert!(!is_own_address(public));
            assert!(!is_refused_address(public));
        }
    }

    #[tokio::test]
    async fn statuses_come_back_and_dead_targets_fail() {
        let sender = HttpWebhookSender::new(true).unwrap();
        let gone = receiver(410).await;
        assert_eq!(
            sender.send(request(format!("http://{gone}/hook"))).await,
            SendOutcome::Answered(410)
        );
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let failed = sender.send(request(format!("http://{closed}/hook"))).await;
        assert!(matches!(failed, SendOutcome::Failed(_)), "{failed:?}");
    }
}
