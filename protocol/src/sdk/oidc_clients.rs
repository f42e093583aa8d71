//! Typed helpers for the tenant's OpenID Connect clients (`OidcClients`). Writes run once;
//! reads retry on `UNAVAILABLE`.

use super::client::{AuthedChannel, Client, once};
use crate::status::ApiError;
use crate::v1;

impl Client {
    /// The raw `OidcClients` client with this client's metadata.
    pub fn oidc_clients(&self) -> v1::oidc_clients_client::OidcClientsClient<AuthedChannel> {
        v1::oidc_clients_client::OidcClientsClient::with_interceptor(
            self.channel(),
            self.request_metadata().clone(),
        )
    }

    /// Registers a client; a confidential client's `client_secret` is shown this once.
    pub async fn create_oidc_client(
        &self,
        request: v1::CreateOidcClientRequest,
    ) -> Result<v1::CreateOidcClientReply, ApiError> {
        once(self.oidc_clients().create_oidc_client(request)).await
    }

    /// Every client of the tenant, oldest first.
    pub async fn list_oidc_clients(&self) -> Result<Vec<v1::OidcClient>, ApiError> {
        let reply = self
            .read(|| {
                let mut clients = self.oidc_clients();
                async move {
                    clients
                        .list_oidc_clients(v1::ListOidcClientsRequest {})
                        .await
                }
            })
            .await?;
        Ok(reply.clients)
    }

    /// One client by id.
    pub async fn get_oidc_client(&self, client_id: &str) -> Result<v1::OidcClient, ApiError> {
        let request = v1::GetOidcClientRequest {
            client_id: client_id.to_owned(),
        };
        self.read(|| {
            let mut clients = self.oidc_clients();
            let request = request.clone();
            async move { clients.get_oidc_client(request).await }
        })
        .await
    }

    /// Changes a client (see `UpdateOidcClientRequest` for which fields).
    pub async fn update_oidc_client(
        &self,
        request: v1::UpdateOidcClientRequest,
    ) -> Result<v1::OidcClient, ApiError> {
        once(self.oidc_clients().update_oidc_client(request)).await
    }

    /// Deletes a client.
    pub async fn delete_oidc_client(&self, client_id: &str) -> Result<(), ApiError> {
        let request = v1::DeleteOidcClientRequest {
            client_id: client_id.to_owned(),
        };
        once(self.oidc_clients().delete_oidc_client(request)).await?;
        Ok(())
    }

    /// Gives a confidential client a new secret, shown this once; the old one stops working.
    pub async fn rotate_oidc_client_secret(
        &self,
        client_id: &str,
    ) -> Result<v1::RotateOidcClientSecretReply, ApiError> {
        let request = v1::RotateOidcClientSecretRequest {
            client_id: client_id.to_owned(),
        };
        once(self.oidc_clients().rotate_oidc_client_secret(request)).await
    }
}
