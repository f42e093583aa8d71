//! Webhook endpoints, their delivery logs and replay, for server and operator callers.
//! Every endpoint change is audited in its own transaction.

use crate::access::Caller;
use crate::domain::audit::AuditOrigin;
use crate::domain::webhooks;
use crate::domain::webhooks::endpoints::{self, NewEndpoint, validate_description};
use crate::domain::webhooks::{
    CreatedEndpoint, DeliveryRecord, EndpointChanges, WebhookEndpoint, deliveries, targets,
    validate_event_filter,
};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

/// A requested change to an endpoint; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct WebhookEndpointUpdate {
    /// New URL.
    pub url: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New event filter (empty = every event).
    pub event_types: Option<Vec<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// A page of an endpoint's deliveries, newest first.
#[derive(Debug, Clone)]
pub struct DeliveryPage {
    /// The deliveries with their attempts.
    pub deliveries: Vec<DeliveryRecord>,
    /// Token of the next page, empty at the end.
    pub next_page_token: String,
}

impl Gatehouse {
    /// Checks a URL's shape and, unless private targets are allowed, where it resolves.
    async fn checked_url(&self, url: &str) -> DomainResult<String> {
        let parsed = targets::parse_target_url(url, self.webhooks.https_supported())?;
        let webhooks = &self.webhooks;
        targets::check_target(&parsed, webhooks.allow_private_targets, &*webhooks.resolver).await?;
        Ok(parsed.to_string())
    }

    /// Creates an endpoint; the reply holds its `whsec_` secret, shown only this once.
    pub async fn create_webhook_endpoint(
        &self,
        caller: &Caller,
        url: &str,
        description: &str,
        event_types: &[String],
    ) -> DomainResult<CreatedEndpoint> {
        let tenant = caller.require_server()?;
        let url = self.checked_url(url).await?;
        validate_description(description)?;
        let event_types = validate_event_filter(event_types)?;
        let origin = AuditOrigin::of(caller);
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let (url, event_types, origin) = (&url, &event_types, &origin);
        services
            .db
            .run(|tx| async move {
                let new_endpoint = NewEndpoint {
                    url: url.clone(),
                    description: description.trim().to_owned(),
                    event_types: event_types.clone(),
                };
                let (context, key) = (&services.context, &services.master_key);
                webhooks::changes::create(&tx, context, key, tenant_id, new_endpoint, origin).await
            })
            .await
    }

    /// Reads an endpoint.
    pub async fn get_webhook_endpoint(
        &self,
        caller: &Caller,
        endpoint_id: &str,
    ) -> DomainResult<WebhookEndpoint> {
        let tenant = caller.require_server()?;
        let endpoint_id = super::parse_id("endpoint_id", endpoint_id)?;
        let tenant_id = tenant.tenant_id();
        self.services
            .db
            .run(|tx| async move { endpoints::read_endpoint(&tx, tenant_id, endpoint_id).await })
            .await
    }

    /// Every endpoint of the tenant, oldest first.
    pub async fn list_webhook_endpoints(
        &self,
        caller: &Caller,
    ) -> DomainResult<Vec<WebhookEndpoint>> {
        let tenant = caller.require_server()?;
        let tenant_id = tenant.tenant_id();
        self.services
            .db
            .run(|tx| async move { endpoints::list_endpoints(&tx, tenant_id).await })
            .await
    }

    /// Changes an endpoint's URL, description, filter or enabled flag.
    pub async fn update_webhook_endpoint(
        &self,
        caller: &Caller,
        endpoint_id: &str,
        update: WebhookEndpointUpdate,
    ) -> DomainResult<WebhookEndpoint> {
        let tenant = caller.require_server()?;
        let endpoint_id = super::parse_id("endpoint_id", endpoint_id)?;
        let url = match update.url.as_deref() {
            Some(url) => Some(self.checked_url(url).await?),
            None => None,
        };
        if let Some(description) = &update.description {
            validate_description(description)?;
        }
        let event_types = update
            .event_types
            .as_deref()
            .map(validate_event_filter)
            .transpose()?;
        let changes = EndpointChanges {
            url,
            description: update.description.map(|text| text.trim().to_owned()),
            event_types,
            enabled: update.enabled,
        };
        let details = serde_json::json!({
            "url": changes.url,
            "event_types": changes.event_types,
            "enabled": changes.enabled,
            "description_changed": changes.description.is_some(),
        });
        let origin = AuditOrigin::of(caller);
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let (changes, details, origin) = (&changes, &details, &origin);
        services
            .db
            .run(|tx| async move {
                webhooks::changes::update(
                    &tx,
                    &services.context,
                    tenant_id,
                    endpoint_id,
                    changes.clone(),
                    details.clone(),
                    origin,
                )
                .await
            })
            .await
    }

    /// Deletes an endpoint; its pending deliveries are dropped when they come due.
    pub async fn delete_webhook_endpoint(
        &self,
        caller: &Caller,
        endpoint_id: &str,
    ) -> DomainResult<()> {
        let tenant = caller.require_server()?;
        let endpoint_id = super::parse_id("endpoint_id", endpoint_id)?;
        let origin = AuditOrigin::of(caller);
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let origin = &origin;
        services
            .db
            .run(|tx| async move {
                let context = &services.context;
                webhooks::changes::delete(&tx, context, tenant_id, endpoint_id, origin).await
            })
            .await
    }

    /// Replaces an endpoint's secret; the previous one keeps signing for a day.
    pub async fn rotate_webhook_secret(
        &self,
        caller: &Caller,
        endpoint_id: &str,
    ) -> DomainResult<CreatedEndpoint> {
        let tenant = caller.require_server()?;
        let endpoint_id = super::parse_id("endpoint_id", endpoint_id)?;
        let origin = AuditOrigin::of(caller);
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let origin = &origin;
        services
            .db
            .run(|tx| async move {
                let (context, key) = (&services.context, &services.master_key);
                webhooks::changes::rotate_secret(&tx, context, key, tenant_id, endpoint_id, origin)
                    .await
            })
            .await
    }

    /// An endpoint's delivery log, newest first, each delivery with its attempts.
    pub async fn list_webhook_deliveries(
        &self,
        caller: &Caller,
        endpoint_id: &str,
        page_size: u32,
        page_token: &str,
    ) -> DomainResult<DeliveryPage> {
        let tenant = caller.require_server()?;
        let endpoint_id = super::parse_id("endpoint_id", endpoint_id)?;
        let before = super::decode_page_token('d', page_token)?
            .map(|id| super::parse_id("page_token", &id))
            .transpose()?;
        let limit = super::page_size(page_size);
        let tenant_id = tenant.tenant_id();
        let (deliveries, more) = self
            .services
            .db
            .run(|tx| async move {
                deliveries::list_for_endpoint(&tx, tenant_id, endpoint_id, before, limit).await
            })
            .await?;
        let next_page_token = match (more, deliveries.last()) {
            (true, Some(last)) => super::encode_page_token('d', &last.delivery_id.to_string()),
            _ => String::new(),
        };
        Ok(DeliveryPage {
            deliveries,
            next_page_token,
        })
    }

    /// Sends a stored event to an endpoint again (same `webhook-id`, so receivers that
    /// already processed it can tell).
    pub async fn replay_webhook_event(
        &self,
        caller: &Caller,
        endpoint_id: &str,
        event_id: &str,
    ) -> DomainResult<DeliveryRecord> {
        let tenant = caller.require_server()?;
        let endpoint_id = super::parse_id("endpoint_id", endpoint_id)?;
        if event_id.is_empty() || event_id.len() > 64 {
            return Err(DomainError::invalid("event_id", "is not an event id"));
        }
        let origin = AuditOrigin::of(caller);
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let origin = &origin;
        services
            .db
            .run(|tx| async move {
                let context = &services.context;
                webhooks::changes::replay(&tx, context, tenant_id, endpoint_id, event_id, origin)
                    .await
            })
            .await
    }
}
