//! `gatehouse.v1.Mfa`.

use gatehouse_actors::DomainError;
use gatehouse_actors::api::factors::FactorRef;
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::mfa_server::Mfa;
use tonic::{Request, Response, Status};

use super::{Api, convert};

#[tonic::async_trait]
impl Mfa for Api {
    async fn enroll_totp(
        &self,
        request: Request<v1::EnrollTotpRequest>,
    ) -> Result<Response<v1::EnrollTotpReply>, Status> {
        self.rpc("Mfa/EnrollTotp", request, |call| async move {
            let enrolment = self
                .gatehouse
                .enroll_totp(&call.caller, &call.client_info())
                .await?;
            Ok(v1::EnrollTotpReply {
                secret: enrolment.secret,
                otpauth_uri: enrolment.uri,
                qr_svg: enrolment.qr_svg,
            })
        })
        .await
    }

    async fn confirm_totp(
        &self,
        request: Request<v1::ConfirmTotpRequest>,
    ) -> Result<Response<v1::RecoveryCodesReply>, Status> {
        self.rpc("Mfa/ConfirmTotp", request, |call| async move {
            let recovery_codes = self
                .gatehouse
                .confirm_totp(&call.caller, &call.body().code, &call.client_info())
                .await?;
            Ok(v1::RecoveryCodesReply { recovery_codes })
        })
        .await
    }

    async fn disable_totp(
        &self,
        request: Request<v1::DisableTotpRequest>,
    ) -> Result<Response<v1::DisableTotpReply>, Status> {
        self.rpc("Mfa/DisableTotp", request, |call| async move {
            self.gatehouse
                .disable_totp(&call.caller, &call.client_info())
                .await?;
            Ok(v1::DisableTotpReply {})
        })
        .await
    }

    async fn regenerate_recovery_codes(
        &self,
        request: Request<v1::RegenerateRecoveryCodesRequest>,
    ) -> Result<Response<v1::RecoveryCodesReply>, Status> {
        self.rpc("Mfa/RegenerateRecoveryCodes", request, |call| async move {
            let recovery_codes = self
                .gatehouse
                .regenerate_recovery_codes(&call.caller, &call.client_info())
                .await?;
            Ok(v1::RecoveryCodesReply { recovery_codes })
        })
        .await
    }

    async fn list_factors(
        &self,
        request: Request<v1::ListFactorsRequest>,
    ) -> Result<Response<v1::FactorList>, Status> {
        self.rpc("Mfa/ListFactors", request, |call| async move {
            let summary = self
                .gatehouse
                .list_factors(&call.caller, &call.body().user_id)
                .await?;
            let totp = summary.totp.as_ref();
            Ok(v1::FactorList {
                totp_confirmed: totp.is_some_and(|totp| totp.confirmed_at.is_some()),
                totp_created_at: totp.map(|totp| convert::timestamp(totp.created_at)),
                totp_last_used_at: totp
                    .and_then(|totp| totp.last_used_at)
                    .map(convert::timestamp),
                recovery_codes_remaining: u32::try_from(summary.recovery_codes_remaining)
                    .unwrap_or(u32::MAX),
                passkeys: summary.passkeys.iter().map(convert::passkey).collect(),
                recent_failures: u32::try_from(summary.recent_failures).unwrap_or(u32::MAX),
                password_locked_until: summary.password_locked_until.map(convert::timestamp),
            })
        })
        .await
    }

    async fn remove_factor(
        &self,
        request: Request<v1::RemoveFactorRequest>,
    ) -> Result<Response<v1::RemoveFactorReply>, Status> {
        self.rpc("Mfa/RemoveFactor", request, |call| async move {
            let body = call.body();
            let factor = match body.factor.as_str() {
                "totp" => FactorRef::Totp,
                "passkey" => FactorRef::Passkey(
                    uuid::Uuid::try_parse(&body.passkey_id)
                        .map_err(|_| DomainError::invalid("passkey_id", "is not a valid id"))?,
                ),
                _ => {
                    return Err(DomainError::invalid("factor", "must be totp or passkey").into());
                }
            };
            let revoked_sessions = self
                .gatehouse
                .remove_user_factor(&call.caller, &body.user_id, factor)
                .await?;
            Ok(v1::RemoveFactorReply { revoked_sessions })
        })
        .await
    }

    async fn unlock_user(
        &self,
        request: Request<v1::UnlockUserRequest>,
    ) -> Result<Response<v1::UnlockUserReply>, Status> {
        self.rpc("Mfa/UnlockUser", request, |call| async move {
            let unlocked = self
                .gatehouse
                .unlock_user(&call.caller, &call.body().user_id)
                .await?;
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            Ok(v1::UnlockUserReply {
                cleared_failures: count(unlocked.cleared_failures),
                cleared_password_limits: count(unlocked.cleared_password_limits),
            })
        })
        .await
    }
}
