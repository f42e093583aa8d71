//! Typed helpers for the email flows of `Auth` and for the `Email` service. Sends and
//! redemptions run once (a retried send would spend another send allowance); reads retry on
//! `UNAVAILABLE`.

use super::client::{Client, once};
use crate::status::ApiError;
use crate::v1;

/// A code with the address it was sent to, or the token from an emailed link.
#[derive(Debug, Clone, Copy)]
pub enum EmailProof<'a> {
    /// The six digits and their address.
    Code {
        /// The address the code was sent to.
        email: &'a str,
        /// The digits.
        code: &'a str,
    },
    /// The `token` query parameter of the link.
    Token(&'a str),
}

impl EmailProof<'_> {
    fn parts(&self) -> (String, String, String) {
        match self {
            EmailProof::Code { email, code } => {
                ((*email).to_owned(), (*code).to_owned(), String::new())
            }
            EmailProof::Token(token) => (String::new(), String::new(), (*token).to_owned()),
        }
    }
}

fn user_email(user_id: &str, email: &str) -> v1::UserEmailRequest {
    v1::UserEmailRequest {
        user_id: user_id.to_owned(),
        email: email.to_owned(),
    }
}

impl Client {
    /// Emails a verification code and link (`redirect_url` may be empty: code only).
    pub async fn send_email_verification(
        &self,
        email: &str,
        redirect_url: &str,
    ) -> Result<(), ApiError> {
        let request = v1::SendEmailVerificationRequest {
            email: email.to_owned(),
            redirect_url: redirect_url.to_owned(),
        };
        once(self.auth().send_email_verification(request))
            .await
            .map(|_| ())
    }

    /// Verifies an email with a code or link token; returns the user.
    pub async fn verify_email(&self, proof: EmailProof<'_>) -> Result<v1::User, ApiError> {
        let (email, code, token) = proof.parts();
        let request = v1::VerifyEmailRequest { email, code, token };
        let reply = once(self.auth().verify_email(request)).await?;
        Ok(reply.user.unwrap_or_default())
    }

    /// Emails a password-reset code and link.
    pub async fn send_password_reset(
        &self,
        email: &str,
        redirect_url: &str,
    ) -> Result<(), ApiError> {
        let request = v1::SendPasswordResetRequest {
            email: email.to_owned(),
            redirect_url: redirect_url.to_owned(),
        };
        once(self.auth().send_password_reset(request))
            .await
            .map(|_| ())
    }

    /// Sets a new password with a reset code or link token.
    pub async fn reset_password(
        &self,
        proof: EmailProof<'_>,
        new_password: &str,
    ) -> Result<(), ApiError> {
        let (email, code, token) = proof.parts();
        let request = v1::ResetPasswordRequest {
            email,
            code,
            token,
            new_password: new_password.to_owned(),
        };
        once(self.auth().reset_password(request)).await.map(|_| ())
    }

    /// Emails a sign-in code and magic link.
    pub async fn send_sign_in_code(&self, email: &str, redirect_url: &str) -> Result<(), ApiError> {
        let request = v1::SendSignInCodeRequest {
            email: email.to_owned(),
            redirect_url: redirect_url.to_owned(),
        };
        once(self.auth().send_sign_in_code(request))
            .await
            .map(|_| ())
    }

    /// Signs in (or up) with a sign-in code or magic-link token.
    pub async fn sign_in_with_code(
        &self,
        proof: EmailProof<'_>,
    ) -> Result<v1::SignInReply, ApiError> {
        let (email, code, token) = proof.parts();
        let request = v1::SignInWithCodeRequest { email, code, token };
        once(self.auth().sign_in_with_code(request)).await
    }

    /// Changes the signed-in user's password; returns how many other sessions were revoked.
    pub async fn change_password(
        &self,
        current_password: &str,
        new_password: &str,
    ) -> Result<u32, ApiError> {
        let request = v1::ChangePasswordRequest {
            current_password: current_password.to_owned(),
            new_password: new_password.to_owned(),
        };
        let reply = once(self.auth().change_password(request)).await?;
        Ok(reply.revoked_sessions)
    }

    /// Adds a further, unverified address to a user (empty `user_id`: the signed-in user).
    pub async fn add_user_email(&self, user_id: &str, email: &str) -> Result<v1::User, ApiError> {
        once(self.users().add_user_email(user_email(user_id, email))).await
    }

    /// Makes a verified further address the user's primary one.
    pub async fn make_user_email_primary(
        &self,
        user_id: &str,
        email: &str,
    ) -> Result<v1::User, ApiError> {
        once(
            self.users()
                .make_user_email_primary(user_email(user_id, email)),
        )
        .await
    }

    /// Removes a further address of a user.
    pub async fn remove_user_email(
        &self,
        user_id: &str,
        email: &str,
    ) -> Result<v1::User, ApiError> {
        once(self.users().remove_user_email(user_email(user_id, email))).await
    }

    /// One page of the tenant's email delivery log, newest first.
    pub async fn list_email_deliveries(
        &self,
        page_size: u32,
        page_token: &str,
    ) -> Result<v1::ListEmailDeliveriesReply, ApiError> {
        self.read(|| {
            let mut email = self.email();
            let request = v1::ListEmailDeliveriesRequest {
                page_size,
                page_token: page_token.to_owned(),
            };
            async move { email.list_email_deliveries(request).await }
        })
        .await
    }

    /// The tenant's template of `kind`, or the built-in default.
    pub async fn get_email_template(&self, kind: &str) -> Result<v1::EmailTemplate, ApiError> {
        self.read(|| {
            let mut email = self.email();
            let request = v1::GetEmailTemplateRequest {
                kind: kind.to_owned(),
            };
            async move { email.get_email_template(request).await }
        })
        .await
    }

    /// Sets the tenant's template of a kind.
    pub async fn set_email_template(
        &self,
        request: v1::SetEmailTemplateRequest,
    ) -> Result<v1::EmailTemplate, ApiError> {
        once(self.email().set_email_template(request)).await
    }

    /// Goes back to the built-in template of `kind`.
    pub async fn reset_email_template(&self, kind: &str) -> Result<v1::EmailTemplate, ApiError> {
        let request = v1::ResetEmailTemplateRequest {
            kind: kind.to_owned(),
        };
        once(self.email().reset_email_template(request)).await
    }

    /// Renders a template with example values.
    pub async fn preview_email_template(
        &self,
        request: v1::PreviewEmailTemplateRequest,
    ) -> Result<v1::PreviewEmailTemplateReply, ApiError> {
        once(self.email().preview_email_template(request)).await
    }
}
