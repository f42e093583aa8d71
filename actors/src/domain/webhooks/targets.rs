//! Which URLs a webhook may target: `http(s)` URLs whose host resolves only to public
//! addresses, unless the node allows private targets. Checked at creation and again at
//! every delivery (the node's sender re-checks the addresses it connects to).

use std::net::IpAddr;
use std::sync::Arc;

use url::{Host, Url};

use crate::error::{DomainError, DomainResult};

/// Resolves host names for the target check; the node implements it over its resolver, so
/// the domain itself makes no network calls.
#[async_trait::async_trait]
pub trait HostResolver: Send + Sync + std::fmt::Debug {
    /// Every address `host` resolves to.
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>>;

    /// Whether `address` is one of this node's own (its interfaces' addresses, public ones
    /// included): a request there would reach the node's own services.
    fn is_own_address(&self, _address: IpAddr) -> bool {
        false
    }
}

/// A resolver for nodes that have none: every name is unresolvable, so only literal public
/// addresses pass the check.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoResolver;

#[async_trait::async_trait]
impl HostResolver for NoResolver {
    async fn resolve(&self, _host: &str, _port: u16) -> std::io::Result<Vec<IpAddr>> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this node has no host resolver",
        ))
    }
}

/// The default resolver of [`super::WebhookSettings`].
pub fn no_resolver() -> Arc<dyn HostResolver> {
    Arc::new(NoResolver)
}

/// Longest accepted endpoint URL.
pub const MAX_URL_BYTES: usize = 2048;

/// Parses and checks the shape of an endpoint URL (not where it points).
pub fn parse_target_url(text: &str, https_supported: bool) -> DomainResult<Url> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DomainError::invalid("url", "must not be empty"));
    }
    if text.len() > MAX_URL_BYTES {
        return Err(DomainError::invalid(
            "url",
            format!("must be at most {MAX_URL_BYTES} bytes"),
        ));
    }
    let url = Url::parse(text).map_err(|error| DomainError::invalid("url", error.to_string()))?;
    match url.scheme() {
        "http" => {}
        "https" if https_supported => {}
        "https" => {
            return Err(DomainError::invalid(
                "url",
                "https targets need a node built with the `webhooks-https` feature",
            ));
        }
        _ => return Err(DomainError::invalid("url", "must be an http or https URL")),
    }
    if url.host().is_none() {
        return Err(DomainError::invalid("url", "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::invalid(
            "url",
            "must not carry credentials; authenticate with the signature instead",
        ));
    }
    Ok(url)
}

pub use crate::domain::addresses::is_private_address;

/// Resolves the URL's host and refuses it when any address is private and private targets
/// are not allowed. Returns the addresses checked (empty when private targets are allowed).
pub async fn check_target(
    url: &Url,
    allow_private: bool,
    resolver: &dyn HostResolver,
) -> DomainResult<Vec<IpAddr>> {
    if allow_private {
        return Ok(Vec::new());
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses: Vec<IpAddr> = match url.host() {
        Some(Host::Ipv4(v4)) => vec![IpAddr::V4(v4)],
        Some(Host::Ipv6(v6)) => vec![IpAddr::V6(v6)],
        Some(Host::Domain(domain)) => resolver.resolve(domain, port).await.map_err(|error| {
            DomainError::WebhookTargetNotAllowed(format!("cannot resolve {domain}: {error}"))
        })?,
        None => return Err(DomainError::invalid("url", "must name a host")),
    };
    if addresses.is_empty() {
        return Err(DomainError::WebhookTargetNotAllowed(
            "the host resolves to no address".to_owned(),
        ));
    }
    if let Some(private) = addresses
        .iter()
        .find(|address| is_private_address(**address))
    {
        return Err(DomainError::WebhookTargetNotAllowed(format!(
            "{private} is not a globally reachable address"
        )));
    }
    if let Some(own) = addresses
        .iter()
        .find(|address| resolver.is_own_address(**address))
    {
        return Err(DomainError::WebhookTargetNotAllowed(format!(
            "{own} is an address of this node"
        )));
    }
    Ok(addresses)
}
