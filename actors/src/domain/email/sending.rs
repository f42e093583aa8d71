//! What the email dispatcher needs from the node: the message it hands over, the outcome the
//! SMTP server gave, the sender that speaks SMTP, and the node's delivery settings.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::webhooks::RetryPolicy;

/// One rendered message, ready for SMTP (`Debug` leaves the bodies out: they carry codes).
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// `Message-ID` without angle brackets, stable across retries (`<id>@<domain>`).
    pub message_id: String,
    /// Sender address.
    pub from_address: String,
    /// Sender display name; may be empty.
    pub from_name: String,
    /// `Reply-To` address; empty for none.
    pub reply_to: String,
    /// Recipient address.
    pub to: String,
    /// Subject line (single line).
    pub subject: String,
    /// HTML body.
    pub html: String,
    /// Plain-text body.
    pub text: String,
}

impl std::fmt::Debug for OutgoingEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingEmail")
            .field("message_id", &self.message_id)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// What became of one SMTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpOutcome {
    /// The server accepted the message (2xx after DATA).
    Accepted,
    /// The server refused it for good (5xx): recorded, never retried.
    Rejected {
        /// SMTP reply code, e.g. 550.
        code: u16,
        /// The server's text.
        message: String,
    },
    /// A transient failure (4xx, connection refused, timeout, TLS failure): retried.
    Deferred {
        /// SMTP reply code, or 0 when there was no reply.
        code: u16,
        /// What went wrong.
        message: String,
    },
}

/// Sends messages over SMTP; the node implements it with lettre.
#[async_trait::async_trait]
pub trait EmailSender: Send + Sync + std::fmt::Debug {
    /// Sends `email` once and reports the outcome.
    async fn send(&self, email: &OutgoingEmail) -> SmtpOutcome;
}

/// Node-level email delivery settings.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// The SMTP sender; without one, messages wait in the outbox and no dispatcher runs here.
    pub sender: Option<Arc<dyn EmailSender>>,
    /// How long one attempt may take before it counts as failed.
    pub attempt_timeout: Duration,
    /// Extra time past the timeout before another owner may retry a claimed message.
    pub lease_margin: Duration,
    /// How often the dispatcher looks for work.
    pub poll_interval: Duration,
    /// Backoff and give-up schedule of transient failures.
    pub retry: RetryPolicy,
    /// Most SMTP attempts in flight on this node.
    pub concurrency: usize,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            sender: None,
            attempt_timeout: Duration::from_secs(30),
            lease_margin: Duration::from_secs(15),
            poll_interval: Duration::from_millis(200),
            retry: RetryPolicy::default(),
            concurrency: 16,
        }
    }
}
