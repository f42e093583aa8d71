//! Standard Webhooks signing: `whsec_` secrets, the JSON body, and the `webhook-id`,
//! `webhook-timestamp` and `webhook-signature` headers (`v1,<base64 HMAC-SHA256>` over
//! `{id}.{timestamp}.{body}`, keyed by the base64-decoded secret).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::context::{Context, Timestamp};
use crate::domain::outbox::OutboxEvent;
use crate::error::{DomainError, DomainResult};

/// Prefix of webhook secrets.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a webhook secret.
pub const SECRET_BYTES: usize = 32;
/// Header carrying the event id.
pub const HEADER_ID: &str = "webhook-id";
/// Header carrying the unix time of the attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Header carrying the space-separated signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// The key an endpoint's deliveries are signed with (`Debug` never shows it).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// A fresh random secret.
    pub fn generate(context: &Context) -> WebhookSecret {
        WebhookSecret(context.random::<SECRET_BYTES>().to_vec())
    }

    /// The key bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> WebhookSecret {
        WebhookSecret(bytes)
    }

    /// Parses `whsec_<base64>`.
    pub fn parse(text: &str) -> DomainResult<WebhookSecret> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        STANDARD
            .decode(encoded)
            .map(WebhookSecret)
            .map_err(|_| DomainError::invalid("secret", "is not a whsec_ secret"))
    }

    /// The key bytes (for sealing).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The form shown to the tenant once: `whsec_<base64>`.
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, event_id: &str, unix_seconds: i64, body: &[u8]) -> DomainResult<String> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0)
            .map_err(|_| DomainError::Internal("webhook secret of invalid length".to_owned()))?;
        mac.update(format!("{event_id}.{unix_seconds}.").as_bytes());
        mac.update(body);
        Ok(format!(
            "v1,{}",
            STANDARD.encode(mac.finalize().into_bytes())
        ))
    }
}

/// The `webhook-signature` value: one `v1,` signature per secret (during a rotation the
/// previous secret signs too, so receivers can switch secrets without dropping events).
pub fn signature_header(
    secrets: &[WebhookSecret],
    event_id: &str,
    unix_seconds: i64,
    body: &[u8],
) -> DomainResult<String> {
    let signatures = secrets
        .iter()
        .map(|secret| secret.sign(event_id, unix_seconds, body))
        .collect::<DomainResult<Vec<_>>>()?;
    Ok(signatures.join(" "))
}

/// The JSON body: `{"type": …, "timestamp": …, "data": …}` with an RFC 3339 timestamp of
/// when the change happened.
pub fn body(event: &OutboxEvent) -> DomainResult<Vec<u8>> {
    let payload = serde_json::json!({
        "type": event.event_type,
        "timestamp": rfc3339(event.occurred_at),
        "data": event.data,
    });
    serde_json::to_vec(&payload)
        .map_err(|error| DomainError::Internal(format!("webhook body: {error}")))
}

/// Formats a timestamp as RFC 3339 UTC with milliseconds.
pub fn rfc3339(at: Timestamp) -> String {
    at.rfc3339()
}

/// Every header of one attempt.
pub fn headers(
    secrets: &[WebhookSecret],
    event_id: &str,
    unix_seconds: i64,
    body: &[u8],
) -> DomainResult<Vec<(String, String)>> {
    Ok(vec![
        (HEADER_ID.to_owned(), event_id.to_owned()),
        (HEADER_TIMESTAMP.to_owned(), unix_seconds.to_string()),
        (
            HEADER_SIGNATURE.to_owned(),
            signature_header(secrets, event_id, unix_seconds, body)?,
        ),
        ("content-type".to_owned(), "application/json".to_owned()),
    ])
}
