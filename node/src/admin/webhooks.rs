//! `gatehouse admin webhook …`: endpoints, secrets, delivery logs and replay.

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::{ApiError, v1};
use serde_json::{Value, json};

use super::TenantFlag;
use super::output::Output;

/// Webhook administration.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Create an endpoint; prints its `whsec_` secret once.
    Create {
        #[command(flatten)]
        tenant: TenantFlag,
        /// Target URL (http://, or https:// on builds with the webhooks-https feature).
        #[arg(long)]
        url: String,
        /// Event type or `prefix.*` to receive (repeatable); none means every event.
        #[arg(long = "event")]
        events: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the tenant's endpoints.
    List {
        #[command(flatten)]
        tenant: TenantFlag,
    },
    /// Show an endpoint.
    Get {
        #[command(flatten)]
        tenant: TenantFlag,
        endpoint_id: String,
    },
    /// Change an endpoint.
    Update {
        #[command(flatten)]
        tenant: TenantFlag,
        endpoint_id: String,
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Replace the filter with these event types (repeatable).
        #[arg(long = "event", conflicts_with = "all_events")]
        events: Vec<String>,
        /// Replace the filter with "every event".
        #[arg(long)]
        all_events: bool,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Delete an endpoint.
    Delete {
        #[command(flatten)]
        tenant: TenantFlag,
        endpoint_id: String,
    },
    /// Replace an endpoint's secret; the old one signs too for 24 hours.
    RotateSecret {
        #[command(flatten)]
        tenant: TenantFlag,
        endpoint_id: String,
    },
    /// An endpoint's delivery log, newest first.
    Deliveries {
        #[command(flatten)]
        tenant: TenantFlag,
        endpoint_id: String,
        #[arg(long, default_value_t = 50)]
        page_size: u32,
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// Send a past event to an endpoint again.
    Replay {
        #[command(flatten)]
        tenant: TenantFlag,
        endpoint_id: String,
        /// The event id (`msg_…`, the `webhook-id` header).
        #[arg(long)]
        event: String,
    },
    /// Every event type an endpoint can subscribe to.
    EventTypes {
        #[command(flatten)]
        tenant: TenantFlag,
    },
}

fn time(at: Option<&prost_types::Timestamp>) -> Value {
    at.map_or(Value::Null, |at| Value::String(at.to_string()))
}

fn endpoint_json(endpoint: &v1::WebhookEndpoint) -> Value {
    json!({
        "endpoint_id": endpoint.endpoint_id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": endpoint.event_types,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": time(endpoint.created_at.as_ref()),
        "updated_at": time(endpoint.updated_at.as_ref()),
        "secret_created_at": time(endpoint.secret_created_at.as_ref()),
    })
}

fn delivery_json(delivery: &v1::WebhookDelivery) -> Value {
    json!({
        "delivery_id": delivery.delivery_id,
        "endpoint_id": delivery.endpoint_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "created_at": time(delivery.created_at.as_ref()),
        "next_attempt_at": time(delivery.next_attempt_at.as_ref()),
        "replay": delivery.replay,
        "attempts": delivery.attempts.iter().map(|attempt| json!({
            "at": time(attempt.at.as_ref()),
            "outcome": attempt.outcome,
            "http_status": attempt.http_status,
            "latency_ms": attempt.latency_ms,
            "error": attempt.error,
        })).collect::<Vec<_>>(),
    })
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    table
}

fn filter_text(endpoint: &v1::WebhookEndpoint) -> String {
    if endpoint.event_types.is_empty() {
        "*".to_owned()
    } else {
        endpoint.event_types.join(", ")
    }
}

fn print_endpoints(out: &Output, endpoints: &[v1::WebhookEndpoint]) {
    let mut rows = table(&["endpoint_id", "url", "events", "enabled", "description"]);
    for endpoint in endpoints {
        let enabled = if endpoint.enabled {
            "yes".to_owned()
        } else {
            format!("no ({})", endpoint.disabled_reason)
        };
        rows.add_row(vec![
            endpoint.endpoint_id.clone(),
            endpoint.url.clone(),
            filter_text(endpoint),
            enabled,
            endpoint.description.clone(),
        ]);
    }
    let value = json!({ "endpoints": endpoints.iter().map(endpoint_json).collect::<Vec<_>>() });
    out.value(&value, &rows.to_string());
}

fn print_with_secret(out: &Output, reply: &v1::WebhookEndpointWithSecret) {
    let endpoint = reply.endpoint.clone().unwrap_or_default();
    let mut value = endpoint_json(&endpoint);
    value["secret"] = Value::String(reply.secret.clone());
    let text = format!(
        "endpoint {} -> {}\nsecret {}\nThe secret is shown only now; store it safely.",
        endpoint.endpoint_id, endpoint.url, reply.secret
    );
    out.value(&value, &text);
}

fn print_deliveries(out: &Output, reply: &v1::ListWebhookDeliveriesReply) {
    let mut rows = table(&[
        "delivery_id",
        "event",
        "status",
        "attempts",
        "last http",
        "last latency ms",
        "last error",
    ]);
    for delivery in &reply.deliveries {
        let last = delivery.attempts.last();
        rows.add_row(vec![
            delivery.delivery_id.clone(),
            format!("{} {}", delivery.event_type, delivery.event_id),
            delivery.status.clone(),
            delivery.attempts.len().to_string(),
            last.map_or_else(String::new, |attempt| attempt.http_status.to_string()),
            last.map_or_else(String::new, |attempt| attempt.latency_ms.to_string()),
            last.map_or_else(String::new, |attempt| attempt.error.clone()),
        ]);
    }
    let mut text = rows.to_string();
    if !reply.next_page_token.is_empty() {
        text.push_str(&format!(
            "\nnext page: --page-token {}",
            reply.next_page_token
        ));
    }
    let value = json!({
        "deliveries": reply.deliveries.iter().map(delivery_json).collect::<Vec<_>>(),
        "next_page_token": reply.next_page_token,
    });
    out.value(&value, &text);
}

/// Runs one `webhook` command.
pub async fn run_webhook(
    client: &Client,
    out: &Output,
    command: WebhookCommand,
) -> Result<(), ApiError> {
    match command {
        WebhookCommand::Create {
            tenant,
            url,
            events,
            description,
        } => {
            let events: Vec<&str> = events.iter().map(String::as_str).collect();
            let reply = client
                .with_tenant(&tenant.tenant)
                .create_webhook_endpoint(&url, &description, &events)
                .await?;
            print_with_secret(out, &reply);
        }
        WebhookCommand::List { tenant } => {
            let endpoints = client
                .with_tenant(&tenant.tenant)
                .list_webhook_endpoints()
                .await?;
            print_endpoints(out, &endpoints);
        }
        WebhookCommand::Get {
            tenant,
            endpoint_id,
        } => {
            let endpoint = client
                .with_tenant(&tenant.tenant)
                .get_webhook_endpoint(&endpoint_id)
                .await?;
            if out.json {
                out.value(&endpoint_json(&endpoint), "");
            } else {
                print_endpoints(out, std::slice::from_ref(&endpoint));
            }
        }
        WebhookCommand::Update {
            tenant,
            endpoint_id,
            url,
            description,
            events,
            all_events,
            enable,
            disable,
        } => {
            let event_filter =
                (all_events || !events.is_empty()).then_some(v1::WebhookEventFilter {
                    event_types: events,
                });
            let request = v1::UpdateWebhookEndpointRequest {
                endpoint_id,
                url,
                description,
                event_filter,
                enabled: (enable || disable).then_some(enable),
            };
            let endpoint = client
                .with_tenant(&tenant.tenant)
                .update_webhook_endpoint(request)
                .await?;
            if out.json {
                out.value(&endpoint_json(&endpoint), "");
            } else {
                print_endpoints(out, std::slice::from_ref(&endpoint));
            }
        }
        WebhookCommand::Delete {
            tenant,
            endpoint_id,
        } => {
            client
                .with_tenant(&tenant.tenant)
                .delete_webhook_endpoint(&endpoint_id)
                .await?;
            out.done("deleted", &endpoint_id);
        }
        WebhookCommand::RotateSecret {
            tenant,
            endpoint_id,
        } => {
            let reply = client
                .with_tenant(&tenant.tenant)
                .rotate_webhook_secret(&endpoint_id)
                .await?;
            print_with_secret(out, &reply);
        }
        WebhookCommand::Deliveries {
            tenant,
            endpoint_id,
            page_size,
            page_token,
        } => {
            let reply = client
                .with_tenant(&tenant.tenant)
                .list_webhook_deliveries(&endpoint_id, page_size, &page_token)
                .await?;
            print_deliveries(out, &reply);
        }
        WebhookCommand::Replay {
            tenant,
            endpoint_id,
            event,
        } => {
            let delivery = client
                .with_tenant(&tenant.tenant)
                .replay_webhook_event(&endpoint_id, &event)
                .await?;
            let text = format!("replaying {} as delivery {}", event, delivery.delivery_id);
            out.value(&delivery_json(&delivery), &text);
        }
        WebhookCommand::EventTypes { tenant } => {
            let types = client
                .with_tenant(&tenant.tenant)
                .list_webhook_event_types()
                .await?;
            out.value(&json!({ "event_types": types }), &types.join("\n"));
        }
    }
    Ok(())
}
