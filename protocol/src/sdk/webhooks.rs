//! Typed helpers for the `Webhooks` and `Audit` services. Reads retry on `UNAVAILABLE`;
//! writes and replays run once.

use super::client::{Client, once};
use crate::status::ApiError;
use crate::v1;

impl Client {
    /// Creates a webhook endpoint; the reply holds its `whsec_` secret, shown only once.
    pub async fn create_webhook_endpoint(
        &self,
        url: &str,
        description: &str,
        event_types: &[&str],
    ) -> Result<v1::WebhookEndpointWithSecret, ApiError> {
        let request = v1::CreateWebhookEndpointRequest {
            url: url.to_owned(),
            description: description.to_owned(),
            event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
        };
        once(self.webhooks().create_webhook_endpoint(request)).await
    }

    /// Fetches a webhook endpoint.
    pub async fn get_webhook_endpoint(
        &self,
        endpoint_id: &str,
    ) -> Result<v1::WebhookEndpoint, ApiError> {
        self.read(|| {
            let mut webhooks = self.webhooks();
            let request = v1::GetWebhookEndpointRequest {
                endpoint_id: endpoint_id.to_owned(),
            };
            async move { webhooks.get_webhook_endpoint(request).await }
        })
        .await
    }

    /// Lists the tenant's webhook endpoints.
    pub async fn list_webhook_endpoints(&self) -> Result<Vec<v1::WebhookEndpoint>, ApiError> {
        let reply = self
            .read(|| {
                let mut webhooks = self.webhooks();
                async move {
                    webhooks
                        .list_webhook_endpoints(v1::ListWebhookEndpointsRequest {})
                        .await
                }
            })
            .await?;
        Ok(reply.endpoints)
    }

    /// Changes the fields of an endpoint that are set in `request`.
    pub async fn update_webhook_endpoint(
        &self,
        request: v1::UpdateWebhookEndpointRequest,
    ) -> Result<v1::WebhookEndpoint, ApiError> {
        once(self.webhooks().update_webhook_endpoint(request)).await
    }

    /// Deletes a webhook endpoint.
    pub async fn delete_webhook_endpoint(&self, endpoint_id: &str) -> Result<(), ApiError> {
        let request = v1::DeleteWebhookEndpointRequest {
            endpoint_id: endpoint_id.to_owned(),
        };
        once(self.webhooks().delete_webhook_endpoint(request))
            .await
            .map(drop)
    }

    /// Replaces an endpoint's secret; the reply holds the new one.
    pub async fn rotate_webhook_secret(
        &self,
        endpoint_id: &str,
    ) -> Result<v1::WebhookEndpointWithSecret, ApiError> {
        let request = v1::RotateWebhookSecretRequest {
            endpoint_id: endpoint_id.to_owned(),
        };
        once(self.webhooks().rotate_webhook_secret(request)).await
    }

    /// One page of an endpoint's delivery log, newest first.
    pub async fn list_webhook_deliveries(
        &self,
        endpoint_id: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<v1::ListWebhookDeliveriesReply, ApiError> {
        self.read(|| {
            let mut webhooks = self.webhooks();
            let request = v1::ListWebhookDeliveriesRequest {
                endpoint_id: endpoint_id.to_owned(),
                page_size,
                page_token: page_token.to_owned(),
            };
            async move { webhooks.list_webhook_deliveries(request).await }
        })
        .await
    }

    /// Sends a past event to an endpoint again.
    pub async fn replay_webhook_event(
        &self,
        endpoint_id: &str,
        event_id: &str,
    ) -> Result<v1::WebhookDelivery, ApiError> {
        let request = v1::ReplayWebhookEventRequest {
            endpoint_id: endpoint_id.to_owned(),
            event_id: event_id.to_owned(),
        };
        once(self.webhooks().replay_webhook_event(request)).await
    }

    /// Every event type an endpoint can subscribe to.
    pub async fn list_webhook_event_types(&self) -> Result<Vec<String>, ApiError> {
        let reply = self
            .read(|| {
                let mut webhooks = self.webhooks();
                async move {
                    webhooks
                        .list_webhook_event_types(v1::ListWebhookEventTypesRequest {})
                        .await
                }
            })
            .await?;
        Ok(reply.event_types)
    }

    /// One page of the tenant's audit ledger, in sequence order.
    pub async fn list_audit_entries(
        &self,
        page_size: u32,
        page_token: &str,
    ) -> Result<v1::ListAuditEntriesReply, ApiError> {
        self.read(|| {
            let mut audit = self.audit();
            let request = v1::ListAuditEntriesRequest {
                page_size,
                page_token: page_token.to_owned(),
            };
            async move { audit.list_audit_entries(request).await }
        })
        .await
    }

    /// Verifies the tenant's audit ledger.
    pub async fn verify_audit_ledger(&self) -> Result<v1::AuditVerification, ApiError> {
        self.read(|| {
            let mut audit = self.audit();
            async move {
                audit
                    .verify_audit_ledger(v1::VerifyAuditLedgerRequest {})
                    .await
            }
        })
        .await
    }
}
