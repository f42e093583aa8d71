//! `gatehouse.v1.Webhooks`: endpoints, delivery logs and replay (server or operator).

use gatehouse_actors::api::webhooks::WebhookEndpointUpdate;
use gatehouse_actors::outbox::EVENT_TYPES;
use gatehouse_actors::webhooks::{CreatedEndpoint, DeliveryRecord, WebhookEndpoint};
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::webhooks_server::Webhooks;
use tonic::{Request, Response, Status};

use super::Api;
use super::convert::timestamp;

/// An endpoint on the wire (never its secret).
pub fn endpoint(record: &WebhookEndpoint) -> v1::WebhookEndpoint {
    v1::WebhookEndpoint {
        endpoint_id: record.endpoint_id.to_string(),
        url: record.url.clone(),
        description: record.description.clone(),
        event_types: record.event_types.clone(),
        enabled: record.enabled,
        disabled_reason: record.disabled_reason.clone(),
        created_at: Some(timestamp(record.created_at)),
        updated_at: Some(timestamp(record.updated_at)),
        secret_created_at: Some(timestamp(record.secret_created_at)),
    }
}

fn with_secret(created: CreatedEndpoint) -> v1::WebhookEndpointWithSecret {
    v1::WebhookEndpointWithSecret {
        endpoint: Some(endpoint(&created.endpoint)),
        secret: created.secret,
    }
}

/// A delivery with its attempts.
pub fn delivery(record: &DeliveryRecord) -> v1::WebhookDelivery {
    v1::WebhookDelivery {
        delivery_id: record.delivery_id.to_string(),
        endpoint_id: record.endpoint_id.to_string(),
        event_id: record.event_id.clone(),
        event_type: record.event_type.clone(),
        status: record.status.as_str().to_owned(),
        created_at: Some(timestamp(record.created_at)),
        next_attempt_at: record.next_attempt_at.map(timestamp),
        replay: record.replay,
        attempts: record
            .attempts
            .iter()
            .map(|attempt| v1::WebhookAttempt {
                at: Some(timestamp(attempt.at)),
                outcome: attempt.outcome.clone(),
                http_status: u32::from(attempt.http_status),
                latency_ms: attempt.latency_ms,
                error: attempt.error.clone(),
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl Webhooks for Api {
    async fn create_webhook_endpoint(
        &self,
        request: Request<v1::CreateWebhookEndpointRequest>,
    ) -> Result<Response<v1::WebhookEndpointWithSecret>, Status> {
        self.rpc(
            "Webhooks/CreateWebhookEndpoint",
            request,
            |call| async move {
                let body = call.body();
                let created = self
                    .gatehouse
                    .create_webhook_endpoint(
                        &call.caller,
                        &body.url,
                        &body.description,
                        &body.event_types,
                    )
                    .await?;
                Ok(with_secret(created))
            },
        )
        .await
    }

    async fn get_webhook_endpoint(
        &self,
        request: Request<v1::GetWebhookEndpointRequest>,
    ) -> Result<Response<v1::WebhookEndpoint>, Status> {
        self.rpc("Webhooks/GetWebhookEndpoint", request, |call| async move {
            let record = self
                .gatehouse
                .get_webhook_endpoint(&call.caller, &call.body().endpoint_id)
                .await?;
            Ok(endpoint(&record))
        })
        .await
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<v1::ListWebhookEndpointsRequest>,
    ) -> Result<Response<v1::ListWebhookEndpointsReply>, Status> {
        self.rpc(
            "Webhooks/ListWebhookEndpoints",
            request,
            |call| async move {
                let records = self.gatehouse.list_webhook_endpoints(&call.caller).await?;
                Ok(v1::ListWebhookEndpointsReply {
                    endpoints: records.iter().map(endpoint).collect(),
                })
            },
        )
        .await
    }

    async fn update_webhook_endpoint(
        &self,
        request: Request<v1::UpdateWebhookEndpointRequest>,
    ) -> Result<Response<v1::WebhookEndpoint>, Status> {
        self.rpc(
            "Webhooks/UpdateWebhookEndpoint",
            request,
            |call| async move {
                let (caller, body) = call.into_parts();
                let update = WebhookEndpointUpdate {
                    url: body.url,
                    description: body.description,
                    event_types: body.event_filter.map(|filter| filter.event_types),
                    enabled: body.enabled,
                };
                let record = self
                    .gatehouse
                    .update_webhook_endpoint(&caller, &body.endpoint_id, update)
                    .await?;
                Ok(endpoint(&record))
            },
        )
        .await
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<v1::DeleteWebhookEndpointRequest>,
    ) -> Result<Response<v1::DeleteWebhookEndpointReply>, Status> {
        self.rpc(
            "Webhooks/DeleteWebhookEndpoint",
            request,
            |call| async move {
                self.gatehouse
                    .delete_webhook_endpoint(&call.caller, &call.body().endpoint_id)
                    .await?;
                Ok(v1::DeleteWebhookEndpointReply {})
            },
        )
        .await
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<v1::RotateWebhookSecretRequest>,
    ) -> Result<Response<v1::WebhookEndpointWithSecret>, Status> {
        self.rpc("Webhooks/RotateWebhookSecret", request, |call| async move {
            let rotated = self
                .gatehouse
                .rotate_webhook_secret(&call.caller, &call.body().endpoint_id)
                .await?;
            Ok(with_secret(rotated))
        })
        .await
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<v1::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<v1::ListWebhookDeliveriesReply>, Status> {
        self.rpc(
            "Webhooks/ListWebhookDeliveries",
            request,
            |call| async move {
                let body = call.body();
                let page = self
                    .gatehouse
                    .list_webhook_deliveries(
                        &call.caller,
                        &body.endpoint_id,
                        body.page_size,
                        &body.page_token,
                    )
                    .await?;
                Ok(v1::ListWebhookDeliveriesReply {
                    deliveries: page.deliveries.iter().map(delivery).collect(),
                    next_page_token: page.next_page_token,
                })
            },
        )
        .await
    }

    async fn replay_webhook_event(
        &self,
        request: Request<v1::ReplayWebhookEventRequest>,
    ) -> Result<Response<v1::WebhookDelivery>, Status> {
        self.rpc("Webhooks/ReplayWebhookEvent", request, |call| async move {
            let body = call.body();
            let record = self
                .gatehouse
                .replay_webhook_event(&call.caller, &body.endpoint_id, &body.event_id)
                .await?;
            Ok(delivery(&record))
        })
        .await
    }

    async fn list_webhook_event_types(
        &self,
        request: Request<v1::ListWebhookEventTypesRequest>,
    ) -> Result<Response<v1::ListWebhookEventTypesReply>, Status> {
        self.rpc(
            "Webhooks/ListWebhookEventTypes",
            request,
            |_call| async move {
                Ok(v1::ListWebhookEventTypesReply {
                    event_types: EVENT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
                })
            },
        )
        .await
    }
}
