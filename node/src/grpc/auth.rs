//! `gatehouse.v1.Auth`.

use gatehouse_actors::Caller;
use gatehouse_actors::DomainError;
use gatehouse_actors::api::email::ProofInput;
use gatehouse_actors::api::{SignedIn, SignedUp};
use gatehouse_actors::factors::mfa::SecondProof;
use gatehouse_actors::factors::passkeys::parse_ceremony_id;
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::auth_server::Auth;
use gatehouse_protocol::v1::complete_mfa_request::Factor;
use tonic::{Request, Response, Status};

use super::{Api, convert};

pub(super) fn sign_in_reply(signed_in: &SignedIn, caller: &Caller) -> v1::SignInReply {
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
        device_token: signed_in.device_token.clone().unwrap_or_default(),
        verification_required: false,
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
            let signed_up = self
                .gatehouse
                .sign_up_with_password(
                    &call.caller,
                    &body.email,
                    &body.password,
                    &body.display_name,
                    &client,
                )
                .await?;
            Ok(match signed_up {
                SignedUp::SignedIn(signed_in) => sign_in_reply(&signed_in, &call.caller),
                // Nothing that would tell a taken address from a new one.
                SignedUp::VerificationRequired => v1::SignInReply {
                    verification_required: true,
                    ..v1::SignInReply::default()
                },
            })
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
                .sign_in_with_password(
                    &call.caller,
                    &body.email,
                    &body.password,
                    &body.device_token,
                    &client,
                )
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

    async fn send_email_verification(
        &self,
        request: Request<v1::SendEmailVerificationRequest>,
    ) -> Result<Response<v1::SendEmailReply>, Status> {
        self.rpc("Auth/SendEmailVerification", request, |call| async move {
            let (client, body) = (call.client_info(), call.body());
            self.gatehouse
                .send_email_verification(&call.caller, &body.email, &body.redirect_url, &client)
                .await?;
            Ok(v1::SendEmailReply {})
        })
        .await
    }

    async fn verify_email(
        &self,
        request: Request<v1::VerifyEmailRequest>,
    ) -> Result<Response<v1::VerifyEmailReply>, Status> {
        self.rpc("Auth/VerifyEmail", request, |call| async move {
            let (client, body) = (call.client_info(), call.body());
            let input = ProofInput {
                email: &body.email,
                code: &body.code,
                token: &body.token,
            };
            let user = self
                .gatehouse
                .verify_email(&call.caller, input, &client)
                .await?;
            Ok(v1::VerifyEmailReply {
                user: Some(convert::user(&user, &call.caller)),
            })
        })
        .await
    }

    async fn send_password_reset(
        &self,
        request: Request<v1::SendPasswordResetRequest>,
    ) -> Result<Response<v1::SendEmailReply>, Status> {
        self.rpc("Auth/SendPasswordReset", request, |call| async move {
            let (client, body) = (call.client_info(), call.body());
            self.gatehouse
                .send_password_reset(&call.caller, &body.email, &body.redirect_url, &client)
                .await?;
            Ok(v1::SendEmailReply {})
        })
        .await
    }

    async fn reset_password(
        &self,
        request: Request<v1::ResetPasswordRequest>,
    ) -> Result<Response<v1::ResetPasswordReply>, Status> {
        self.rpc("Auth/ResetPassword", request, |call| async move {
            let (client, body) = (call.client_info(), call.body());
            let input = ProofInput {
                email: &body.email,
                code: &body.code,
                token: &body.token,
            };
            self.gatehouse
                .reset_password(&call.caller, input, &body.new_password, &client)
                .await?;
            Ok(v1::ResetPasswordReply {})
        })
        .await
    }

    async fn send_sign_in_code(
        &self,
        request: Request<v1::SendSignInCodeRequest>,
    ) -> Result<Response<v1::SendEmailReply>, Status> {
        self.rpc("Auth/SendSignInCode", request, |call| async move {
            let (client, body) = (call.client_info(), call.body());
            self.gatehouse
                .send_sign_in_code(&call.caller, &body.email, &body.redirect_url, &client)
                .await?;
            Ok(v1::SendEmailReply {})
        })
        .await
    }

    async fn sign_in_with_code(
        &self,
        request: Request<v1::SignInWithCodeRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        self.rpc("Auth/SignInWithCode", request, |call| async move {
            let (client, body) = (call.client_info(), call.body());
            let input = ProofInput {
                email: &body.email,
                code: &body.code,
                token: &body.token,
            };
            let signed_in = self
                .gatehouse
                .sign_in_with_code(&call.caller, input, &client)
                .await?;
            Ok(sign_in_reply(&signed_in, &call.caller))
        })
        .await
    }

    async fn change_password(
        &self,
        request: Request<v1::ChangePasswordRequest>,
    ) -> Result<Response<v1::ChangePasswordReply>, Status> {
        self.rpc("Auth/ChangePassword", request, |call| async move {
            let (client, body) = (call.client_info(), call.body());
            let revoked_sessions = self
                .gatehouse
                .change_password(
                    &call.caller,
                    &body.current_password,
                    &body.new_password,
                    &client,
                )
                .await?;
            Ok(v1::ChangePasswordReply { revoked_sessions })
        })
        .await
    }

    async fn complete_mfa(
        &self,
        request: Request<v1::CompleteMfaRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        self.rpc("Auth/CompleteMfa", request, |call| async move {
            let client = call.client_info();
            let body = call.body();
            let ceremony_id;
            let proof = match &body.factor {
                Some(Factor::TotpCode(code)) => SecondProof::Totp(code),
                Some(Factor::RecoveryCode(code)) => SecondProof::RecoveryCode(code),
                Some(Factor::Passkey(passkey)) => {
                    ceremony_id = parse_ceremony_id(&passkey.ceremony_id)?;
                    SecondProof::Passkey {
                        ceremony_id,
                        assertion: &passkey.assertion_json,
                    }
                }
                None => {
                    return Err(DomainError::invalid(
                        "factor",
                        "give totp_code, recovery_code or passkey",
                    )
                    .into());
                }
            };
            let signed_in = self
                .gatehouse
                .complete_mfa(&call.caller, &body.ticket, proof, &client)
                .await?;
            Ok(sign_in_reply(&signed_in, &call.caller))
        })
        .await
    }

    async fn sign_in_anonymously(
        &self,
        request: Request<v1::SignInAnonymouslyRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        self.rpc("Auth/SignInAnonymously", request, |call| async move {
            let client = call.client_info();
            let signed_in = self
                .gatehouse
                .sign_in_anonymously(&call.caller, &client)
                .await?;
            Ok(sign_in_reply(&signed_in, &call.caller))
        })
        .await
    }

    async fn exchange_client_credentials(
        &self,
        request: Request<v1::ExchangeClientCredentialsRequest>,
    ) -> Result<Response<v1::ExchangeClientCredentialsReply>, Status> {
        self.exchange_api_key(request).await
    }

    async fn exchange_o_auth_code(
        &self,
        request: Request<v1::ExchangeOAuthCodeRequest>,
    ) -> Result<Response<v1::SignInReply>, Status> {
        self.exchange_oauth_code(request).await
    }
}
