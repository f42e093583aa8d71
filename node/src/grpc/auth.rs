//! `gatehouse.v1.Auth`.

use gatehouse_actors::Caller;
use gatehouse_actors::api::SignedIn;
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::auth_server::Auth;
use tonic::{Request, Response, Status};

use super::{Api, convert};

fn sign_in_reply(signed_in: &SignedIn, caller: &Caller) -> v1::SignInReply {
    let tokens = v1::TokenPair {
        access_token: signed_in.access_token.token.clone(),
        access_token_expires_at: Some(convert::timestamp(signed_in.access_token.expires_at)),
        refresh_token: signed_in.refresh_token.clone(),
    };
    v1::SignInReply {
        user_id: signed_in.user.user_id.to_string(),
        session_id: signed_in.session.session_id.to_string(),
        access_token: tokens.access_token.clone(),
        refresh_token: tokens.refresh_token.clone(),
        tokens: Some(tokens),
        user: Some(convert::user(&signed_in.user, caller)),
    }
}

#[tonic::async_trait]
impl Auth for Api {
    async fn sign_up_with_password(
        &self,
        request: Request<v1::SignUpWithPasswordRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        self.rpc("Auth/SignUpWithPassword", request, |call| async move {
            let client = call.client_info();
            let body = call.body();
            let signed_in = self
                .gatehouse
                .sign_up_with_password(
                    &call.caller,
                    &body.email,
                    &body.password,
                    &body.display_name,
                    &client,
                )
                .await?;
            Ok(sign_in_reply(&signed_in, &call.caller))
        })
        .await
    }

    async fn sign_in_with_password(
        &self,
        request: Request<v1::SignInWithPasswordRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        self.rpc("Auth/SignInWithPassword", request, |call| async move {
            let client = call.client_info();
            let body = call.body();
            let signed_in = self
                .gatehouse
                .sign_in_with_password(&call.caller, &body.email, &body.password, &client)
                .await?;
            Ok(sign_in_reply(&signed_in, &call.caller))
        })
        .await
    }

    async fn refresh_session(
        &self,
        request: Request<v1::RefreshSessionRequest>,
    ) -> Result<Response<v1::RefreshSessionReply>, Status> {
        self.rpc("Auth/RefreshSession", request, |call| async move {
            let refreshed = self
                .gatehouse
                .refresh_session(&call.caller, &call.body().refresh_token)
                .await?;
            let tokens = v1::TokenPair {
                access_token: refreshed.access_token.clone(),
                access_token_expires_at: Some(convert::timestamp(
                    refreshed.access_token_expires_at,
                )),
                refresh_token: refreshed.refresh_token.clone(),
            };
            Ok(v1::RefreshSessionReply {
                session_id: refreshed.session.session_id.to_string(),
                access_token: refreshed.access_token,
                refresh_token: refreshed.refresh_token,
                tokens: Some(tokens),
            })
        })
        .await
    }

    async fn sign_out(
        &self,
        request: Request<v1::SignOutRequest>,
    ) -> Result<Response<v1::SignOutReply>, Status> {
        self.rpc("Auth/SignOut", request, |call| async move {
            let token = call.body().refresh_token.as_str();
            self.gatehouse
                .sign_out(&call.caller, (!token.is_empty()).then_some(token))
                .await?;
            Ok(v1::SignOutReply {})
        })
        .await
    }
}
