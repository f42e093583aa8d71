//! Typed helpers for second factors: TOTP and recovery codes (`Mfa`), passkeys (`Passkeys`),
//! and completing a sign-in that answered `MFA_REQUIRED` (`Auth.CompleteMfa`). Writes run
//! once (a retried TOTP code would be a replay); reads retry on `UNAVAILABLE`.

use super::client::{Client, once};
use crate::status::ApiError;
use crate::v1;

/// The second factor that completes a sign-in.
#[derive(Debug, Clone, Copy)]
pub enum SecondFactor<'a> {
    /// The authenticator app's current code.
    Totp(&'a str),
    /// An unused recovery code.
    RecoveryCode(&'a str),
    /// A passkey assertion for a ceremony from [`Client::begin_passkey_sign_in`].
    Passkey {
        /// The ceremony.
        ceremony_id: &'a str,
        /// The `PublicKeyCredential` JSON.
        assertion_json: &'a str,
    },
}

impl Client {
    /// Completes a sign-in that answered `MFA_REQUIRED` ([`ApiError::mfa_ticket`]).
    pub async fn complete_mfa(
        &self,
        ticket: &str,
        factor: SecondFactor<'_>,
    ) -> Result<v1::SignInReply, ApiError> {
        use v1::complete_mfa_request::Factor;
        let factor = match factor {
            SecondFactor::Totp(code) => Factor::TotpCode(code.to_owned()),
            SecondFactor::RecoveryCode(code) => Factor::RecoveryCode(code.to_owned()),
            SecondFactor::Passkey {
                ceremony_id,
                assertion_json,
            } => Factor::Passkey(v1::PasskeyAssertion {
                ceremony_id: ceremony_id.to_owned(),
                assertion_json: assertion_json.to_owned(),
            }),
        };
        let request = v1::CompleteMfaRequest {
            ticket: ticket.to_owned(),
            factor: Some(factor),
        };
        once(self.auth().complete_mfa(request)).await
    }

    /// Begins TOTP enrolment for the signed-in user: secret, `otpauth://` URI, QR code.
    pub async fn enroll_totp(&self) -> Result<v1::EnrollTotpReply, ApiError> {
        once(self.mfa().enroll_totp(v1::EnrollTotpRequest {})).await
    }

    /// Confirms TOTP enrolment with a first code; returns the recovery codes (shown once).
    pub async fn confirm_totp(&self, code: &str) -> Result<Vec<String>, ApiError> {
        let request = v1::ConfirmTotpRequest {
            code: code.to_owned(),
        };
        Ok(once(self.mfa().confirm_totp(request)).await?.recovery_codes)
    }

    /// Removes the signed-in user's TOTP app and recovery codes.
    pub async fn disable_totp(&self) -> Result<(), ApiError> {
        once(self.mfa().disable_totp(v1::DisableTotpRequest {}))
            .await
            .map(drop)
    }

    /// Replaces the signed-in user's recovery codes.
    pub async fn regenerate_recovery_codes(&self) -> Result<Vec<String>, ApiError> {
        let request = v1::RegenerateRecoveryCodesRequest {};
        Ok(once(self.mfa().regenerate_recovery_codes(request))
            .await?
            .recovery_codes)
    }

    /// A user's factors (empty `user_id`: the signed-in user).
    pub async fn list_factors(&self, user_id: &str) -> Result<v1::FactorList, ApiError> {
        let request = v1::ListFactorsRequest {
            user_id: user_id.to_owned(),
        };
        self.read(|| {
            let (mut mfa, request) = (self.mfa(), request.clone());
            async move { mfa.list_factors(request).await }
        })
        .await
    }

    /// Removes a user's `totp` or one `passkey` (server or operator); returns how many
    /// sessions were revoked.
    pub async fn remove_factor(
        &self,
        user_id: &str,
        factor: &str,
        passkey_id: &str,
    ) -> Result<u32, ApiError> {
        let request = v1::RemoveFactorRequest {
            user_id: user_id.to_owned(),
            factor: factor.to_owned(),
            passkey_id: passkey_id.to_owned(),
        };
        Ok(once(self.mfa().remove_factor(request))
            .await?
            .revoked_sessions)
    }

    /// Clears a user's failed-try lockout (server or operator).
    pub async fn unlock_user(&self, user_id: &str) -> Result<v1::UnlockUserReply, ApiError> {
        let request = v1::UnlockUserRequest {
            user_id: user_id.to_owned(),
        };
        once(self.mfa().unlock_user(request)).await
    }

    /// Begins registering a passkey for the signed-in user.
    pub async fn begin_passkey_registration(&self) -> Result<v1::PasskeyCeremony, ApiError> {
        let request = v1::BeginPasskeyRegistrationRequest {};
        once(self.passkeys().begin_registration(request)).await
    }

    /// Finishes a passkey registration with the authenticator's credential JSON.
    pub async fn finish_passkey_registration(
        &self,
        ceremony_id: &str,
        credential_json: &str,
        name: &str,
    ) -> Result<v1::Passkey, ApiError> {
        let request = v1::FinishPasskeyRegistrationRequest {
            ceremony_id: ceremony_id.to_owned(),
            credential_json: credential_json.to_owned(),
            name: name.to_owned(),
        };
        once(self.passkeys().finish_registration(request)).await
    }

    /// Begins a passkey sign-in (empty `email`: any discoverable passkey).
    pub async fn begin_passkey_sign_in(
        &self,
        email: &str,
    ) -> Result<v1::PasskeyCeremony, ApiError> {
        let request = v1::BeginPasskeySignInRequest {
            email: email.to_owned(),
        };
        once(self.passkeys().begin_sign_in(request)).await
    }

    /// Finishes a passkey sign-in with the authenticator's assertion JSON.
    pub async fn finish_passkey_sign_in(
        &self,
        ceremony_id: &str,
        assertion_json: &str,
    ) -> Result<v1::SignInReply, ApiError> {
        let request = v1::FinishPasskeySignInRequest {
            ceremony_id: ceremony_id.to_owned(),
            assertion_json: assertion_json.to_owned(),
        };
        once(self.passkeys().finish_sign_in(request)).await
    }

    /// A user's passkeys (empty `user_id`: the signed-in user).
    pub async fn list_passkeys(&self, user_id: &str) -> Result<Vec<v1::Passkey>, ApiError> {
        let request = v1::ListPasskeysRequest {
            user_id: user_id.to_owned(),
        };
        Ok(self
            .read(|| {
                let (mut passkeys, request) = (self.passkeys(), request.clone());
                async move { passkeys.list_passkeys(request).await }
            })
            .await?
            .passkeys)
    }

    /// Renames one of the signed-in user's passkeys.
    pub async fn rename_passkey(
        &self,
        passkey_id: &str,
        name: &str,
    ) -> Result<v1::Passkey, ApiError> {
        let request = v1::RenamePasskeyRequest {
            passkey_id: passkey_id.to_owned(),
            name: name.to_owned(),
        };
        once(self.passkeys().rename_passkey(request)).await
    }

    /// Removes one of the signed-in user's passkeys.
    pub async fn remove_passkey(&self, passkey_id: &str) -> Result<(), ApiError> {
        let request = v1::RemovePasskeyRequest {
            passkey_id: passkey_id.to_owned(),
        };
        once(self.passkeys().remove_passkey(request))
            .await
            .map(drop)
    }

    /// Bans a user with a reason (server or operator).
    pub async fn ban_user(&self, user_id: &str, reason: &str) -> Result<v1::User, ApiError> {
        let request = v1::BanUserRequest {
            user_id: user_id.to_owned(),
            reason: reason.to_owned(),
        };
        once(self.users().ban_user(request)).await
    }
}
