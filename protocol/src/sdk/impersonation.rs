//! Typed helpers for anonymous users (`Auth.SignInAnonymously`, listing them) and
//! impersonation (`Users.ImpersonateUser`). Both start sessions, so they run once.

use super::client::{Client, once};
use crate::status::ApiError;
use crate::v1;

impl Client {
    /// Signs in as a new anonymous user (the tenant must allow it). The access token says
    /// `role: anon`; signing up with [`Client::sign_up_with_password`] or in with a code
    /// while carrying it ([`Client::with_access_token`]) upgrades this user in place.
    pub async fn sign_in_anonymously(&self) -> Result<v1::SignInReply, ApiError> {
        once(
            self.auth()
                .sign_in_anonymously(v1::SignInAnonymouslyRequest {}),
        )
        .await
    }

    /// Starts an impersonation session as `user_id` (server or operator): `reason` is
    /// required; `duration_seconds` 0 means 30 minutes (10 s to 12 h).
    pub async fn impersonate_user(
        &self,
        user_id: &str,
        reason: &str,
        duration_seconds: u32,
    ) -> Result<v1::ImpersonateUserReply, ApiError> {
        let request = v1::ImpersonateUserRequest {
            user_id: user_id.to_owned(),
            reason: reason.to_owned(),
            duration_seconds,
        };
        once(self.users().impersonate_user(request)).await
    }
}
