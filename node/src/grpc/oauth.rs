//! `gatehouse.v1.OAuth`, and `Auth.ExchangeOAuthCode` (its handler in `auth.rs` calls
//! [`Api::exchange_oauth_code`]).

use gatehouse_actors::DomainError;
use gatehouse_actors::api::oauth::{LinkedAccountView, ProviderSpec, ProviderUpdate, ProviderView};
use gatehouse_actors::domain::upstream::ProviderKind;
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::o_auth_server::OAuth;
use tonic::{Request, Response, Status};

use super::auth::sign_in_reply;
use super::{Api, convert};

/// The wire's kind; `UNSPECIFIED` is refused.
fn kind(kind: v1::OAuthProviderKind) -> Result<ProviderKind, DomainError> {
    match kind {
        v1::OAuthProviderKind::OauthProviderKindOidc => Ok(ProviderKind::Oidc),
        v1::OAuthProviderKind::OauthProviderKindGithub => Ok(ProviderKind::Github),
        v1::OAuthProviderKind::OauthProviderKindGoogle => Ok(ProviderKind::Google),
        v1::OAuthProviderKind::OauthProviderKindMicrosoft => Ok(ProviderKind::Microsoft),
        v1::OAuthProviderKind::OauthProviderKindUnspecified => Err(DomainError::invalid(
            "kind",
            "give the provider's kind: oidc, github, google or microsoft",
        )),
    }
}

fn wire_kind(kind: ProviderKind) -> v1::OAuthProviderKind {
    match kind {
        ProviderKind::Oidc => v1::OAuthProviderKind::OauthProviderKindOidc,
        ProviderKind::Github => v1::OAuthProviderKind::OauthProviderKindGithub,
        ProviderKind::Google => v1::OAuthProviderKind::OauthProviderKindGoogle,
        ProviderKind::Microsoft => v1::OAuthProviderKind::OauthProviderKindMicrosoft,
    }
}

/// A provider as the wire shows it: never its secret.
fn provider(view: &ProviderView) -> v1::OAuthProvider {
    v1::OAuthProvider {
        provider_id: view.provider_id.clone(),
        kind: wire_kind(view.kind) as i32,
        display_name: view.display_name.clone(),
        issuer: view.issuer.clone(),
        client_id: view.client_id.clone(),
        scopes: view.scopes.clone(),
        allow_email_linking: view.allow_email_linking,
        allow_sign_up: view.allow_sign_up,
        created_at: Some(convert::timestamp(view.created_at)),
        updated_at: Some(convert::timestamp(view.updated_at)),
        redirect_uri: view.redirect_uri.clone(),
    }
}

fn linked_account(view: &LinkedAccountView) -> v1::LinkedAccount {
    v1::LinkedAccount {
        provider_id: view.provider_id.clone(),
        subject: view.subject.clone(),
        email: view.email.clone(),
        scopes: view.scopes.clone(),
        linked_at: Some(convert::timestamp(view.linked_at)),
        last_sign_in_at: view.last_sign_in_at.map(convert::timestamp),
        has_refresh_token: view.has_refresh_token,
    }
}

fn spec(request: v1::CreateOAuthProviderRequest) -> Result<ProviderSpec, DomainError> {
    Ok(ProviderSpec {
        kind: kind(request.kind())?,
        provider_id: request.provider_id,
        display_name: request.display_name,
        issuer: request.issuer,
        client_id: request.client_id,
        client_secret: request.client_secret,
        scopes: request.scopes,
        allow_email_linking: request.allow_email_linking,
        allow_sign_up: request.allow_sign_up,
    })
}

fn update(request: v1::UpdateOAuthProviderRequest) -> ProviderUpdate {
    ProviderUpdate {
        display_name: request.display_name,
        issuer: request.issuer,
        client_id: request.client_id,
        client_secret: request.client_secret,
        scopes: request.set_scopes.then_some(request.scopes),
        allow_email_linking: request.allow_email_linking,
        allow_sign_up: request.allow_sign_up,
    }
}

/// Servers name a user; a signed-in user leaves the field empty for themselves.
fn named_user(user_id: &str) -> Option<&str> {
    (!user_id.is_empty()).then_some(user_id)
}

impl Api {
    /// `Auth.ExchangeOAuthCode`.
    pub(super) async fn exchange_oauth_code(
        &self,
        request: Request<v1::ExchangeOAuthCodeRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        self.rpc("Auth/ExchangeOAuthCode", request, |call| async move {
            let client = call.client_info();
            let signed_in = self
                .gatehouse
                .exchange_oauth_code(&call.caller, &call.body().code, &client)
                .await?;
            Ok(sign_in_reply(&signed_in, &call.caller))
        })
        .await
    }
}

#[tonic::async_trait]
impl OAuth for Api {
    async fn create_provider(
        &self,
        request: Request<v1::CreateOAuthProviderRequest>,
    ) -> Result<Response<v1::OAuthProvider>, Status> {
        self.rpc("OAuth/CreateProvider", request, |call| async move {
            let (caller, body) = call.into_parts();
            let view = self
                .gatehouse
                .create_oauth_provider(&caller, spec(body)?)
                .await?;
            Ok(provider(&view))
        })
        .await
    }

    async fn list_providers(
        &self,
        request: Request<v1::ListOAuthProvidersRequest>,
    ) -> Result<Response<v1::ListOAuthProvidersReply>, Status> {
        self.rpc("OAuth/ListProviders", request, |call| async move {
            let views = self.gatehouse.list_oauth_providers(&call.caller).await?;
            Ok(v1::ListOAuthProvidersReply {
                providers: views.iter().map(provider).collect(),
            })
        })
        .await
    }

    async fn get_provider(
        &self,
        request: Request<v1::GetOAuthProviderRequest>,
    ) -> Result<Response<v1::OAuthProvider>, Status> {
        self.rpc("OAuth/GetProvider", request, |call| async move {
            let view = self
                .gatehouse
                .get_oauth_provider(&call.caller, &call.body().provider_id)
                .await?;
            Ok(provider(&view))
        })
        .await
    }

    async fn update_provider(
        &self,
        request: Request<v1::UpdateOAuthProviderRequest>,
    ) -> Result<Response<v1::OAuthProvider>, Status> {
        self.rpc("OAuth/UpdateProvider", request, |call| async move {
            let (caller, mut body) = call.into_parts();
            let provider_id = std::mem::take(&mut body.provider_id);
            let view = self
                .gatehouse
                .update_oauth_provider(&caller, &provider_id, update(body))
                .await?;
            Ok(provider(&view))
        })
        .await
    }

    async fn delete_provider(
        &self,
        request: Request<v1::DeleteOAuthProviderRequest>,
    ) -> Result<Response<v1::DeleteOAuthProviderReply>, Status> {
        self.rpc("OAuth/DeleteProvider", request, |call| async move {
            self.gatehouse
                .delete_oauth_provider(&call.caller, &call.body().provider_id)
                .await?;
            Ok(v1::DeleteOAuthProviderReply {})
        })
        .await
    }

    async fn begin_link(
        &self,
        request: Request<v1::BeginOAuthLinkRequest>,
    ) -> Result<Response<v1::BeginOAuthLinkReply>, Status> {
        self.rpc("OAuth/BeginLink", request, |call| async move {
            let (caller, body) = call.into_parts();
            let start = self
                .gatehouse
                .begin_oauth_link(&caller, &body.provider_id, &body.redirect_url, body.scopes)
                .await?;
            Ok(v1::BeginOAuthLinkReply {
                start_url: start.start_url,
                expires_at: Some(convert::timestamp(start.expires_at)),
            })
        })
        .await
    }

    async fn list_linked_accounts(
        &self,
        request: Request<v1::ListLinkedAccountsRequest>,
    ) -> Result<Response<v1::ListLinkedAccountsReply>, Status> {
        self.rpc("OAuth/ListLinkedAccounts", request, |call| async move {
            let accounts = self
                .gatehouse
                .list_linked_accounts(&call.caller, named_user(&call.body().user_id))
                .await?;
            Ok(v1::ListLinkedAccountsReply {
                accounts: accounts.iter().map(linked_account).collect(),
            })
        })
        .await
    }

    async fn unlink(
        &self,
        request: Request<v1::UnlinkOAuthAccountRequest>,
    ) -> Result<Response<v1::UnlinkOAuthAccountReply>, Status> {
        self.rpc("OAuth/Unlink", request, |call| async move {
            let body = call.body();
            self.gatehouse
                .unlink_oauth_account(&call.caller, named_user(&body.user_id), &body.provider_id)
                .await?;
            Ok(v1::UnlinkOAuthAccountReply {})
        })
        .await
    }

    async fn get_connected_account_token(
        &self,
        request: Request<v1::GetConnectedAccountTokenRequest>,
    ) -> Result<Response<v1::GetConnectedAccountTokenReply>, Status> {
        self.rpc(
            "OAuth/GetConnectedAccountToken",
            request,
            |call| async move {
                let (caller, body) = call.into_parts();
                let token = self
                    .gatehouse
                    .connected_account_token(
                        &caller,
                        &body.user_id,
                        &body.provider_id,
                        body.scopes,
                        body.force_refresh,
                    )
                    .await?;
                Ok(v1::GetConnectedAccountTokenReply {
                    access_token: token.access_token,
                    expires_at: token.expires_at.map(convert::timestamp),
                    scopes: token.scopes,
                })
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_unspecified_is_refused() {
        for domain in [
            ProviderKind::Oidc,
            ProviderKind::Github,
            ProviderKind::Google,
            ProviderKind::Microsoft,
        ] {
            assert_eq!(kind(wire_kind(domain)).ok(), Some(domain));
        }
        assert!(kind(v1::OAuthProviderKind::OauthProviderKindUnspecified).is_err());
    }

    #[test]
    fn scopes_change_only_when_set_scopes_is_true() {
        let kept = update(v1::UpdateOAuthProviderRequest {
            scopes: vec!["email".into()],
            ..Default::default()
        });
        assert_eq!(kept.scopes, None);
        let replaced = update(v1::UpdateOAuthProviderRequest {
            set_scopes: true,
            ..Default::default()
        });
        assert_eq!(replaced.scopes, Some(Vec::new()));
    }

    #[test]
    fn an_empty_user_id_means_the_caller() {
        assert_eq!(named_user(""), None);
        assert_eq!(named_user("usr_1"), Some("usr_1"));
    }
}
