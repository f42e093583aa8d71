//! Typed helpers for upstream sign-in (`OAuth`) and the exchange of its single-use code for a
//! session (`Auth.ExchangeOAuthCode`). Writes, link starts, token reads (a read may refresh
//! upstream) and code exchanges run once; provider and link listings retry on `UNAVAILABLE`.

use super::client::{AuthedChannel, Client, once};
use super::session::{SessionTokens, UserSession};
use crate::status::ApiError;
use crate::v1;

impl Client {
    /// The raw `OAuth` client with this client's metadata.
    pub fn oauth(&self) -> v1::o_auth_client::OAuthClient<AuthedChannel> {
        v1::o_auth_client::OAuthClient::with_interceptor(
            self.channel(),
            self.request_metadata().clone(),
        )
    }

    /// Creates an upstream provider of the tenant (server or operator credentials).
    pub async fn create_oauth_provider(
        &self,
        request: v1::CreateOAuthProviderRequest,
    ) -> Result<v1::OAuthProvider, ApiError> {
        once(self.oauth().create_provider(request)).await
    }

    /// The tenant's providers.
    pub async fn list_oauth_providers(&self) -> Result<Vec<v1::OAuthProvider>, ApiError> {
        let reply = self
            .read(|| {
                let mut oauth = self.oauth();
                async move { oauth.list_providers(v1::ListOAuthProvidersRequest {}).await }
            })
            .await?;
        Ok(reply.providers)
    }

    /// One provider by id.
    pub async fn get_oauth_provider(
        &self,
        provider_id: &str,
    ) -> Result<v1::OAuthProvider, ApiError> {
        let request = v1::GetOAuthProviderRequest {
            provider_id: provider_id.to_owned(),
        };
        self.read(|| {
            let mut oauth = self.oauth();
            let request = request.clone();
            async move { oauth.get_provider(request).await }
        })
        .await
    }

    /// Changes a provider; unset fields keep their value (`set_scopes` replaces the scopes).
    pub async fn update_oauth_provider(
        &self,
        request: v1::UpdateOAuthProviderRequest,
    ) -> Result<v1::OAuthProvider, ApiError> {
        once(self.oauth().update_provider(request)).await
    }

    /// Deletes a provider.
    pub async fn delete_oauth_provider(&self, provider_id: &str) -> Result<(), ApiError> {
        let request = v1::DeleteOAuthProviderRequest {
            provider_id: provider_id.to_owned(),
        };
        once(self.oauth().delete_provider(request)).await.map(drop)
    }

    /// Spends the `?code=goc_…` an upstream sign-in handed the app's redirect URL; answers
    /// like any sign-in (`MFA_REQUIRED` with a ticket for a user with a second factor).
    pub async fn exchange_oauth_code(&self, code: &str) -> Result<v1::SignInReply, ApiError> {
        let request = v1::ExchangeOAuthCodeRequest {
            code: code.to_owned(),
        };
        once(self.auth().exchange_o_auth_code(request)).await
    }

    /// Begins linking a provider to the signed-in user (or upgrading an anonymous user): send
    /// the browser to the reply's `start_url`.
    pub async fn begin_oauth_link(
        &self,
        provider_id: &str,
        redirect_url: &str,
        scopes: &[String],
    ) -> Result<v1::BeginOAuthLinkReply, ApiError> {
        let request = v1::BeginOAuthLinkRequest {
            provider_id: provider_id.to_owned(),
            redirect_url: redirect_url.to_owned(),
            scopes: scopes.to_vec(),
        };
        once(self.oauth().begin_link(request)).await
    }

    /// The providers linked to a user: `user_id` for servers, empty for the signed-in user.
    pub async fn list_linked_accounts(
        &self,
        user_id: &str,
    ) -> Result<Vec<v1::LinkedAccount>, ApiError> {
        let request = v1::ListLinkedAccountsRequest {
            user_id: user_id.to_owned(),
        };
        let reply = self
            .read(|| {
                let mut oauth = self.oauth();
                let request = request.clone();
                async move { oauth.list_linked_accounts(request).await }
            })
            .await?;
        Ok(reply.accounts)
    }

    /// Unlinks a provider from a user (`user_id` empty for the signed-in user);
    /// `OAUTH_LAST_SIGN_IN_METHOD` when it is the user's last way to sign in.
    pub async fn unlink_oauth_account(
        &self,
        user_id: &str,
        provider_id: &str,
    ) -> Result<(), ApiError> {
        let request = v1::UnlinkOAuthAccountRequest {
            user_id: user_id.to_owned(),
            provider_id: provider_id.to_owned(),
        };
        once(self.oauth().unlink(request)).await.map(drop)
    }

    /// A valid upstream access token of a user's connected account (server credentials),
    /// refreshed by the node when it is about to expire or when `force_refresh`.
    pub async fn connected_account_token(
        &self,
        user_id: &str,
        provider_id: &str,
        scopes: &[String],
        force_refresh: bool,
    ) -> Result<v1::GetConnectedAccountTokenReply, ApiError> {
        let request = v1::GetConnectedAccountTokenRequest {
            user_id: user_id.to_owned(),
            provider_id: provider_id.to_owned(),
            scopes: scopes.to_vec(),
            force_refresh,
        };
        once(self.oauth().get_connected_account_token(request)).await
    }
}

impl UserSession {
    /// Signs in with the single-use code of an upstream sign-in; `client` carries the tenant
    /// and client key.
    pub async fn exchange_oauth_code(client: &Client, code: &str) -> Result<Self, ApiError> {
        let reply = client.exchange_oauth_code(code).await?;
        Ok(Self::new(
            client.without_access_token(),
            SessionTokens::from_sign_in(&reply),
        ))
    }
}
