//! What the dispatcher needs from the node to send webhooks: the request it makes, the
//! outcome, the sender that makes it, and the node's delivery settings.

use std::sync::Arc;
use std::time::Duration;

use super::deliveries::RetryPolicy;

/// One HTTP POST to make (`Debug` shows the URL and body size only).
#[derive(Clone)]
pub struct WebhookRequest {
    /// Target URL.
    pub url: String,
    /// Headers, Standard Webhooks ones included.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub body: Vec<u8>,
    /// Give up waiting for an answer after this long.
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("url", &self.url)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// What became of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The target answered with this HTTP status.
    Answered(u16),
    /// The target's address is not allowed; nothing was sent.
    Refused(String),
    /// No answer: connection error, timeout, unsupported scheme.
    Failed(String),
}

/// Sends webhook requests; the node implements it over HTTP. Implementations must refuse
/// private targets (checking the addresses they actually connect to) unless the node allows
/// them.
#[async_trait::async_trait]
pub trait WebhookSender: Send + Sync + std::fmt::Debug {
    /// POSTs `request` and reports the outcome.
    async fn send(&self, request: WebhookRequest) -> SendOutcome;

    /// Whether `https` URLs can be delivered.
    fn supports_https(&self) -> bool {
        false
    }
}

/// Node-level webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The HTTP sender; without one, no dispatcher runs on this node.
    pub sender: Option<Arc<dyn WebhookSender>>,
    /// Whether private, loopback and link-local targets are allowed.
    pub allow_private_targets: bool,
    /// Resolves target hosts for the private-address check.
    pub resolver: Arc<dyn super::targets::HostResolver>,
    /// How long one attempt may wait for an answer.
    pub attempt_timeout: Duration,
    /// Extra time past the timeout before another owner may retry a claimed delivery.
    pub lease_margin: Duration,
    /// How often the dispatcher looks for work.
    pub poll_interval: Duration,
    /// Backoff and give-up schedule.
    pub retry: RetryPolicy,
    /// Most attempts in flight on this node.
    pub concurrency: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            sender: None,
            allow_private_targets: false,
            resolver: super::targets::no_resolver(),
            attempt_timeout: Duration::from_secs(15),
            lease_margin: Duration::from_secs(15),
            poll_interval: Duration::from_millis(500),
            retry: RetryPolicy::default(),
            concurrency: 32,
        }
    }
}

impl WebhookSettings {
    /// Whether `https` endpoint URLs may be created.
    pub fn https_supported(&self) -> bool {
        self.sender
            .as_ref()
            .is_none_or(|sender| sender.supports_https())
    }
}
