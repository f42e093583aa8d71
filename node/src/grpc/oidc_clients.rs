//! `gatehouse.v1.OidcClients`: the tenant's OpenID Connect clients.

use gatehouse_actors::DomainError;
use gatehouse_actors::api::oidc_clients::{ClientKind, NewOidcClient, OidcClientChanges};
use gatehouse_actors::domain::oidc_clients::{IssuedClient, OidcClientRecord};
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::oidc_clients_server::OidcClients;
use tonic::{Request, Response, Status};

use super::{Api, convert};

/// The wire's kind; `UNSPECIFIED` is refused.
fn kind(kind: v1::OidcClientKind) -> Result<ClientKind, DomainError> {
    match kind {
        v1::OidcClientKind::Public => Ok(ClientKind::Public),
        v1::OidcClientKind::Confidential => Ok(ClientKind::Confidential),
        v1::OidcClientKind::Unspecified => Err(DomainError::invalid(
            "kind",
            "give the client's kind: public or confidential",
        )),
    }
}

/// A client as the wire shows it: never the secret or its hash.
fn client(record: &OidcClientRecord) -> v1::OidcClient {
    let kind = match record.kind {
        ClientKind::Public => v1::OidcClientKind::Public,
        ClientKind::Confidential => v1::OidcClientKind::Confidential,
    };
    v1::OidcClient {
        client_id: record.client_id.clone(),
        name: record.name.clone(),
        kind: kind as i32,
        redirect_uris: record.redirect_uris.clone(),
        post_logout_redirect_uris: record.post_logout_redirect_uris.clone(),
        allowed_scopes: record.allowed_scopes.clone(),
        first_party: record.first_party,
        created_at: Some(convert::timestamp(record.created_at)),
        updated_at: Some(convert::timestamp(record.updated_at)),
        created_by: record.created_by.clone(),
    }
}

fn issued(issued: IssuedClient) -> (Option<v1::OidcClient>, String) {
    (
        Some(client(&issued.record)),
        issued.secret.unwrap_or_default(),
    )
}

fn changes(request: v1::UpdateOidcClientRequest) -> OidcClientChanges {
    OidcClientChanges {
        name: request.name,
        redirect_uris: request.set_redirect_uris.then_some(request.redirect_uris),
        post_logout_redirect_uris: request
            .set_post_logout_redirect_uris
            .then_some(request.post_logout_redirect_uris),
        allowed_scopes: request.set_allowed_scopes.then_some(request.allowed_scopes),
        first_party: request.first_party,
    }
}

#[tonic::async_trait]
impl OidcClients for Api {
    async fn create_oidc_client(
        &self,
        request: Request<v1::CreateOidcClientRequest>,
    ) -> Result<Response<v1::CreateOidcClientReply>, Status> {
        self.rpc("OidcClients/CreateOidcClient", request, |call| async move {
            let (caller, body) = call.into_parts();
            let new = NewOidcClient {
                kind: kind(body.kind())?,
                name: body.name,
                redirect_uris: body.redirect_uris,
                post_logout_redirect_uris: body.post_logout_redirect_uris,
                allowed_scopes: body.allowed_scopes,
                first_party: body.first_party,
            };
            let created = self.gatehouse.create_oidc_client(&caller, new).await?;
            let (client, client_secret) = issued(created);
            Ok(v1::CreateOidcClientReply {
                client,
                client_secret,
            })
        })
        .await
    }

    async fn list_oidc_clients(
        &self,
        request: Request<v1::ListOidcClientsRequest>,
    ) -> Result<Response<v1::ListOidcClientsReply>, Status> {
        self.rpc("OidcClients/ListOidcClients", request, |call| async move {
            let records = self.gatehouse.list_oidc_clients(&call.caller).await?;
            Ok(v1::ListOidcClientsReply {
                clients: records.iter().map(client).collect(),
            })
        })
        .await
    }

    async fn get_oidc_client(
        &self,
        request: Request<v1::GetOidcClientRequest>,
    ) -> Result<Response<v1::OidcClient>, Status> {
        self.rpc("OidcClients/GetOidcClient", request, |call| async move {
            let record = self
                .gatehouse
                .get_oidc_client(&call.caller, &call.body().client_id)
                .await?;
            Ok(client(&record))
        })
        .await
    }

    async fn update_oidc_client(
        &self,
        request: Request<v1::UpdateOidcClientRequest>,
    ) -> Result<Response<v1::OidcClient>, Status> {
        self.rpc("OidcClients/UpdateOidcClient", request, |call| async move {
            let (caller, body) = call.into_parts();
            let client_id = body.client_id.clone();
            let record = self
                .gatehouse
                .update_oidc_client(&caller, &client_id, changes(body))
                .await?;
            Ok(client(&record))
        })
        .await
    }

    async fn delete_oidc_client(
        &self,
        request: Request<v1::DeleteOidcClientRequest>,
    ) -> Result<Response<v1::DeleteOidcClientReply>, Status> {
        self.rpc("OidcClients/DeleteOidcClient", request, |call| async move {
            self.gatehouse
                .delete_oidc_client(&call.caller, &call.body().client_id)
                .await?;
            Ok(v1::DeleteOidcClientReply {})
        })
        .await
    }

    async fn rotate_oidc_client_secret(
        &self,
        request: Request<v1::RotateOidcClientSecretRequest>,
    ) -> Result<Response<v1::RotateOidcClientSecretReply>, Status> {
        self.rpc(
            "OidcClients/RotateOidcClientSecret",
            request,
            |call| async move {
                let rotated = self
                    .gatehouse
                    .rotate_oidc_client_secret(&call.caller, &call.body().client_id)
                    .await?;
                let (client, client_secret) = issued(rotated);
                Ok(v1::RotateOidcClientSecretReply {
                    client,
                    client_secret,
                })
            },
        )
        .await
    }
}
