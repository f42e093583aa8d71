//! `gatehouse admin apikey …`: API keys of a tenant, a user or a team.

use std::time::Duration;

use clap::{Args, Subcommand};
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::v1::create_api_key_request::{Expiry, Owner};
use gatehouse_protocol::v1::list_api_keys_request::Owner as ListOwner;
use gatehouse_protocol::{ApiError, ErrorCode, v1};
use serde_json::{Value, json};

use super::TenantFlag;
use super::output::Output;

/// API key administration.
#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; prints its secret once.
    Create {
        #[command(flatten)]
        tenant: TenantFlag,
        #[command(flatten)]
        owner: OwnerFlags,
        /// Human name.
        #[arg(long)]
        name: String,
        /// A permission of the tenant's graph (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Lifetime, e.g. `90d`, `12h`, `30m`; none means no expiry.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
    },
    /// Keys of a user, a team, or (neither) every key of the tenant.
    List {
        #[command(flatten)]
        tenant: TenantFlag,
        #[command(flatten)]
        owner: OwnerFlags,
    },
    /// Show one key.
    Get {
        #[command(flatten)]
        tenant: TenantFlag,
        key_id: String,
    },
    /// Revoke a key on every node.
    Revoke {
        #[command(flatten)]
        tenant: TenantFlag,
        key_id: String,
    },
}

/// Whose key: a user's, a team's, or (neither) the tenant's.
#[derive(Debug, Args)]
pub struct OwnerFlags {
    /// A user id.
    #[arg(long, conflicts_with = "team")]
    user: Option<String>,
    /// A team id.
    #[arg(long)]
    team: Option<String>,
}

fn time(at: Option<&prost_types::Timestamp>) -> Value {
    at.map_or(Value::Null, |at| Value::String(at.to_string()))
}

fn key_json(key: &v1::ApiKey) -> Value {
    let owner_kind = match key.owner_kind() {
        v1::ApiKeyOwnerKind::Tenant => "tenant",
        v1::ApiKeyOwnerKind::User => "user",
        v1::ApiKeyOwnerKind::Team => "team",
        v1::ApiKeyOwnerKind::Unspecified => "",
    };
    json!({
        "key_id": key.key_id,
        "prefix": key.prefix,
        "name": key.name,
        "owner_kind": owner_kind,
        "owner_id": key.owner_id,
        "scopes": key.scopes,
        "created_at": time(key.created_at.as_ref()),
        "created_by": key.created_by,
        "expires_at": time(key.expires_at.as_ref()),
        "last_used_at": time(key.last_used_at.as_ref()),
        "revoked": key.revoked,
    })
}

fn key_line(key: &v1::ApiKey) -> String {
    format!(
        "{} {}… {:?} [{}]{}",
        key.key_id,
        key.prefix,
        key.name,
        key.scopes.join(","),
        if key.revoked { " revoked" } else { "" }
    )
}

/// Runs an API key command.
pub async fn run_api_key(
    client: &Client,
    out: &Output,
    command: ApiKeyCommand,
) -> Result<(), ApiError> {
    match command {
        ApiKeyCommand::Create {
            tenant,
            owner,
            name,
            scopes,
            expires_in,
        } => {
            let expiry = match expires_in {
                Some(lifetime) if lifetime.as_secs() == 0 => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidArgument,
                        "--expires-in must be at least one second",
                    ));
                }
                Some(lifetime) => Some(Expiry::ExpiresInSeconds(lifetime.as_secs())),
                None => None,
            };
            let reply = client
                .with_tenant(&tenant.tenant)
                .create_api_key(v1::CreateApiKeyRequest {
                    owner: owner
                        .user
                        .map(Owner::UserId)
                        .or(owner.team.map(Owner::TeamId)),
                    name,
                    scopes,
                    expiry,
                })
                .await?;
            let key = reply.api_key.unwrap_or_default();
            let mut value = key_json(&key);
            value["secret"] = Value::String(reply.secret.clone());
            out.value(
                &value,
                &format!(
                    "{}\nsecret (shown once, store it now): {}",
                    key_line(&key),
                    reply.secret
                ),
            );
        }
        ApiKeyCommand::List { tenant, owner } => {
            let owner = owner
                .user
                .map(ListOwner::UserId)
                .or(owner.team.map(ListOwner::TeamId));
            let keys = client
                .with_tenant(&tenant.tenant)
                .list_api_keys(v1::ListApiKeysRequest { owner })
                .await?;
            let text = keys.iter().map(key_line).collect::<Vec<_>>().join("\n");
            out.value(
                &json!({ "api_keys": keys.iter().map(key_json).collect::<Vec<_>>() }),
                &text,
            );
        }
        ApiKeyCommand::Get { tenant, key_id } => {
            let key = client
                .with_tenant(&tenant.tenant)
                .get_api_key(&key_id)
                .await?;
            out.value(&key_json(&key), &key_line(&key));
        }
        ApiKeyCommand::Revoke { tenant, key_id } => {
            let key = client
                .with_tenant(&tenant.tenant)
                .revoke_api_key(&key_id)
                .await?;
            out.value(&key_json(&key), &format!("revoked {}", key.key_id));
        }
    }
    Ok(())
}
