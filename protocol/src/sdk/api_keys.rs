//! Typed helpers for API keys (`ApiKeys`) and their exchange for a machine token
//! (`Auth.ExchangeClientCredentials`). Writes and exchanges run once; reads retry on
//! `UNAVAILABLE`.

use super::client::{AuthedChannel, Client, once};
use crate::status::ApiError;
use crate::v1;

impl Client {
    /// The raw `ApiKeys` client with this client's metadata.
    pub fn api_keys(&self) -> v1::api_keys_client::ApiKeysClient<AuthedChannel> {
        v1::api_keys_client::ApiKeysClient::with_interceptor(
            self.channel(),
            self.request_metadata().clone(),
        )
    }

    /// Creates a key; the reply's `secret` is shown this once.
    pub async fn create_api_key(
        &self,
        request: v1::CreateApiKeyRequest,
    ) -> Result<v1::CreateApiKeyReply, ApiError> {
        once(self.api_keys().create_api_key(request)).await
    }

    /// Lists keys (see `ListApiKeysRequest` for whose).
    pub async fn list_api_keys(
        &self,
        request: v1::ListApiKeysRequest,
    ) -> Result<Vec<v1::ApiKey>, ApiError> {
        let reply = self
            .read(|| {
                let mut api_keys = self.api_keys();
                let request = request.clone();
                async move { api_keys.list_api_keys(request).await }
            })
            .await?;
        Ok(reply.api_keys)
    }

    /// One key by id.
    pub async fn get_api_key(&self, key_id: &str) -> Result<v1::ApiKey, ApiError> {
        let request = v1::GetApiKeyRequest {
            key_id: key_id.to_owned(),
        };
        self.read(|| {
            let mut api_keys = self.api_keys();
            let request = request.clone();
            async move { api_keys.get_api_key(request).await }
        })
        .await
    }

    /// Revokes a key on every node.
    pub async fn revoke_api_key(&self, key_id: &str) -> Result<v1::ApiKey, ApiError> {
        let request = v1::RevokeApiKeyRequest {
            key_id: key_id.to_owned(),
        };
        once(self.api_keys().revoke_api_key(request)).await
    }

    /// Exchanges an API key for a short-lived machine token.
    pub async fn exchange_client_credentials(
        &self,
        api_key: &str,
    ) -> Result<v1::ExchangeClientCredentialsReply, ApiError> {
        let request = v1::ExchangeClientCredentialsRequest {
            api_key: api_key.to_owned(),
        };
        once(self.auth().exchange_client_credentials(request)).await
    }
}
