//! Email: the message kinds a tenant sends, their templates, the per-tenant email outbox and
//! delivery log, the single-use codes and link tokens of the email flows, and what the
//! dispatcher (`runtime::email_dispatch`, on the node that owns the tenant) needs to send
//! them over SMTP.
//!
//! A message is rendered and written (sealed) to the tenant's email outbox in the same
//! transaction as the change that causes it, so it exists if and only if the change
//! committed. Delivery is at least once with a stable `Message-ID`: a delivery is claimed
//! with a lease before each attempt and its outcome recorded after it, so when the sending
//! node dies the lease runs out and the tenant's next owner sends it again.

pub mod codes;
pub mod flows;
pub mod outbox;
pub mod sending;
pub mod template_store;
pub mod templates;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::error::{DomainError, DomainResult};

pub use sending::{EmailSender, EmailSettings, OutgoingEmail, SmtpOutcome};

/// A kind of message; `as_str` is its stable name on the wire, in storage and in templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EmailKind {
    /// `verification`: a code and link that prove the user reads the address.
    Verification,
    /// `password_reset`: a code and link that set a new password.
    PasswordReset,
    /// `sign_in_code`: a code and magic link that sign the user in.
    SignInCode,
    /// `team_invitation`: an invitation to join a team.
    TeamInvitation,
    /// `share_invitation`: a share sent to an address.
    ShareInvitation,
    /// `new_sign_in`: notice of a sign-in from a new device or place.
    NewSignIn,
    /// `password_changed`: notice that the password was changed or reset.
    PasswordChanged,
    /// `factor_added`: notice that a sign-in factor was added.
    FactorAdded,
    /// `factor_removed`: notice that a sign-in factor was removed.
    FactorRemoved,
    /// `sign_up_attempt`: notice that someone tried to sign up with the address of an
    /// existing account (sent instead of answering that the address is taken).
    SignUpAttempt,
}

impl EmailKind {
    /// Every kind, in the order operators list them.
    pub const ALL: [EmailKind; 10] = [
        EmailKind::Verification,
        EmailKind::PasswordReset,
        EmailKind::SignInCode,
        EmailKind::TeamInvitation,
        EmailKind::ShareInvitation,
        EmailKind::NewSignIn,
        EmailKind::PasswordChanged,
        EmailKind::FactorAdded,
        EmailKind::FactorRemoved,
        EmailKind::SignUpAttempt,
    ];

    /// The stable spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::Verification => "verification",
            EmailKind::PasswordReset => "password_reset",
            EmailKind::SignInCode => "sign_in_code",
            EmailKind::TeamInvitation => "team_invitation",
            EmailKind::ShareInvitation => "share_invitation",
            EmailKind::NewSignIn => "new_sign_in",
            EmailKind::PasswordChanged => "password_changed",
            EmailKind::FactorAdded => "factor_added",
            EmailKind::FactorRemoved => "factor_removed",
            EmailKind::SignUpAttempt => "sign_up_attempt",
        }
    }

    /// Parses a kind named in a request field.
    pub fn parse(field: &'static str, text: &str) -> DomainResult<EmailKind> {
        EmailKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text.trim())
            .ok_or_else(|| {
                let known: Vec<&str> = EmailKind::ALL.iter().map(|kind| kind.as_str()).collect();
                DomainError::invalid(
                    field,
                    format!("unknown email kind {text:?}; one of {}", known.join(", ")),
                )
            })
    }
}
