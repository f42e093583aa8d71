//! `gatehouse.v1.ApiKeys`, and `Auth.ExchangeClientCredentials` (its handler in `auth.rs`
//! calls [`Api::exchange_api_key`]).

use gatehouse_actors::api::api_keys::{KeySpec, OwnerSpec};
use gatehouse_actors::context::Timestamp;
use gatehouse_actors::domain::api_keys::{KeyOwner, KeyRecord, KeyView};
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::api_keys_server::ApiKeys;
use tonic::{Request, Response, Status};

use super::{Api, convert};

/// A key as the wire shows it: never the secret or its hash.
fn api_key(record: &KeyRecord, last_used_at: Option<Timestamp>) -> v1::ApiKey {
    let owner_kind = match record.owner {
        KeyOwner::Tenant => v1::ApiKeyOwnerKind::Tenant,
        KeyOwner::User(_) => v1::ApiKeyOwnerKind::User,
        KeyOwner::Team(_) => v1::ApiKeyOwnerKind::Team,
    };
    v1::ApiKey {
        key_id: record.key_id.to_string(),
        prefix: record.prefix.clone(),
        name: record.name.clone(),
        owner_kind: owner_kind as i32,
        owner_id: record.owner.id(),
        scopes: record.scopes.clone(),
        created_at: Some(convert::timestamp(record.created_at)),
        created_by: record.created_by.clone(),
        expires_at: record.expires_at.map(convert::timestamp),
        last_used_at: last_used_at.map(convert::timestamp),
        revoked: record.revoked_at.is_some(),
        revoked_at: record.revoked_at.map(convert::timestamp),
    }
}

fn view(view: &KeyView) -> v1::ApiKey {
    api_key(&view.record, view.last_used_at)
}

fn time(at: &prost_types::Timestamp) -> Timestamp {
    Timestamp(
        at.seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(at.nanos / 1_000_000)),
    )
}

impl Api {
    /// `Auth.ExchangeClientCredentials`.
    pub(super) async fn exchange_api_key(
        &self,
        request: Request<v1::ExchangeClientCredentialsRequest>,
    ) -> Result<Response<v1::ExchangeClientCredentialsReply>, Status> {
        self.rpc(
            "Auth/ExchangeClientCredentials",
            request,
            |call| async move {
                let machine = self
                    .gatehouse
                    .exchange_client_credentials(&call.caller, &call.body().api_key)
                    .await?;
                Ok(v1::ExchangeClientCredentialsReply {
                    access_token: machine.token.token.clone(),
                    access_token_expires_at: Some(convert::timestamp(machine.token.expires_at)),
                    expires_in: u32::try_from(machine.lifetime_seconds).unwrap_or(u32::MAX),
                    token_type: "Bearer".to_owned(),
                    subject: machine.subject,
                    principal_kind: machine.principal_kind.to_owned(),
                    scopes: machine.permissions,
                })
            },
        )
        .await
    }
}

#[tonic::async_trait]
impl ApiKeys for Api {
    async fn create_api_key(
        &self,
        request: Request<v1::CreateApiKeyRequest>,
    ) -> Result<Response<v1::CreateApiKeyReply>, Status> {
        use v1::create_api_key_request::{Expiry, Owner};
        self.rpc("ApiKeys/CreateApiKey", request, |call| async move {
            let (caller, body) = call.into_parts();
            let owner = match body.owner {
                None => OwnerSpec::Unset,
                Some(Owner::UserId(id)) => OwnerSpec::User(id),
                Some(Owner::TeamId(id)) => OwnerSpec::Team(id),
            };
            let (expires_at, expires_in_seconds) = match body.expiry {
                None => (None, None),
                Some(Expiry::ExpiresAt(at)) => (Some(time(&at)), None),
                Some(Expiry::ExpiresInSeconds(seconds)) => (None, Some(seconds)),
            };
            let spec = KeySpec {
                owner,
                name: body.name,
                scopes: body.scopes,
                expires_at,
                expires_in_seconds,
            };
            let created = self.gatehouse.create_api_key(&caller, spec).await?;
            Ok(v1::CreateApiKeyReply {
                api_key: Some(api_key(&created.record, None)),
                secret: created.secret,
            })
        })
        .await
    }

    async fn list_api_keys(
        &self,
        request: Request<v1::ListApiKeysRequest>,
    ) -> Result<Response<v1::ListApiKeysReply>, Status> {
        use v1::list_api_keys_request::Owner;
        self.rpc("ApiKeys/ListApiKeys", request, |call| async move {
            let (caller, body) = call.into_parts();
            let owner = match body.owner {
                None | Some(Owner::Tenant(false)) => OwnerSpec::Unset,
                Some(Owner::Tenant(true)) => OwnerSpec::Tenant,
                Some(Owner::UserId(id)) => OwnerSpec::User(id),
                Some(Owner::TeamId(id)) => OwnerSpec::Team(id),
            };
            let views = self.gatehouse.list_api_keys(&caller, owner).await?;
            Ok(v1::ListApiKeysReply {
                api_keys: views.iter().map(view).collect(),
            })
        })
        .await
    }

    async fn get_api_key(
        &self,
        request: Request<v1::GetApiKeyRequest>,
    ) -> Result<Response<v1::ApiKey>, Status> {
        self.rpc("ApiKeys/GetApiKey", request, |call| async move {
            let found = self
                .gatehouse
                .get_api_key(&call.caller, &call.body().key_id)
                .await?;
            Ok(view(&found))
        })
        .await
    }

    async fn revoke_api_key(
        &self,
        request: Request<v1::RevokeApiKeyRequest>,
    ) -> Result<Response<v1::ApiKey>, Status> {
        self.rpc("ApiKeys/RevokeApiKey", request, |call| async move {
            let record = self
                .gatehouse
                .revoke_api_key(&call.caller, &call.body().key_id)
                .await?;
            Ok(api_key(&record, None))
        })
        .await
    }
}
