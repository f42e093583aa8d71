//! `POST /t/{tenant}/handler/mfa`: the second step of a sign-in (by password or emailed
//! code) that answered `MFA_REQUIRED`, for a user with an authenticator app: the TOTP code,
//! or one of the recovery codes, sent to `Gatehouse::complete_mfa` with the ticket. A passkey
//! as second factor needs WebAuthn in the browser, which these pages do not run yet.
//!
//! The ticket travels in a hidden field of the form, never in the URL, so it stays out of
//! logs, history and `Referer` headers. It is what the domain made it: single use, 5 minutes,
//! 5 tries, bound to its user and worth nothing without the second factor; the page is
//! `no-store` and every post passes the CSRF checks, so a hidden field is as safe as a sealed
//! cookie here and keeps two tabs' sign-ins from overwriting each other's ticket.

use axum::extract::Form;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_actors::api::SignedIn;
use gatehouse_actors::domain::factors::mfa::SecondProof;
use gatehouse_actors::error::MfaChallenge;
use gatehouse_actors::{DomainError, DomainResult, audit};
use serde::Deserialize;

use super::PageRequest;
use super::render::{self, Problem};
use super::sign_in::form_status;

/// The factor names of `MfaChallenge::factors` these pages can ask for.
const TOTP: &str = "totp";
const RECOVERY_CODE: &str = "recovery_code";

/// The second-factor form's fields.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct MfaForm {
    csrf: String,
    ticket: String,
    /// `totp` or `recovery_code`: what `code` is.
    method: String,
    code: String,
    /// Set by the "use a recovery code" / "use your app" button: show that form instead.
    switch: String,
    return_to: String,
}

/// Whether the pages can finish this challenge (a TOTP app or recovery codes).
pub fn asks_on_page(challenge: &MfaChallenge) -> bool {
    challenge
        .factors
        .iter()
        .any(|factor| *factor == TOTP || *factor == RECOVERY_CODE)
}

/// `totp` unless `method` names recovery codes.
fn method_of(method: &str) -> &'static str {
    if method == RECOVERY_CODE {
        RECOVERY_CODE
    } else {
        TOTP
    }
}

/// The refusals the second-factor form shows itself (the ticket still counts).
fn shown_in_form(error: &DomainError) -> bool {
    match error {
        DomainError::InvalidCode | DomainError::RateLimited | DomainError::RateLimitedFor(_) => {
            true
        }
        DomainError::InvalidArgument { field, .. } => *field != "ticket",
        _ => false,
    }
}

impl PageRequest {
    /// The second-factor page for a sign-in that answered `challenge`.
    pub(super) fn mfa_page(&self, challenge: &MfaChallenge, return_to: Option<&str>) -> Response {
        let method = if challenge.factors.contains(&TOTP) {
            TOTP
        } else {
            RECOVERY_CODE
        };
        self.mfa_form(StatusCode::OK, &challenge.ticket, method, return_to, None)
    }

    fn mfa_form(
        &self,
        status: StatusCode,
        ticket: &str,
        method: &str,
        return_to: Option<&str>,
        error: Option<String>,
    ) -> Response {
        let fields = minijinja::context! { ticket, method };
        self.form_page(status, "mfa.html", return_to, fields, error)
    }

    /// After a first factor: the session, the second-factor page, or `refused`'s answer.
    pub(super) async fn signed_in_or_mfa(
        &self,
        result: DomainResult<SignedIn>,
        return_to: Option<&str>,
        refused: impl FnOnce(&DomainError) -> Response,
    ) -> Response {
        match result {
            Ok(signed_in) => self.start_session(signed_in, return_to).await,
            Err(DomainError::MfaRequired(challenge)) if asks_on_page(&challenge) => {
                self.mfa_page(&challenge, return_to)
            }
            Err(error) => refused(&error),
        }
    }
}

/// `POST …/mfa`.
pub async fn complete(
    request: PageRequest,
    form: Result<Form<MfaForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let return_to = request.return_to(&form.return_to);
    if !form.switch.is_empty() {
        let method = method_of(&form.switch);
        return request.mfa_form(
            StatusCode::OK,
            &form.ticket,
            method,
            return_to.as_deref(),
            None,
        );
    }
    let method = method_of(&form.method);
    let code = form.code.trim();
    let proof = if method == RECOVERY_CODE {
        SecondProof::RecoveryCode(code)
    } else {
        SecondProof::Totp(code)
    };
    let caller = request.caller();
    let client = &request.client;
    let completed = audit::with_source_ip(
        client.ip_address.clone(),
        request
            .state
            .gatehouse
            .complete_mfa(&caller, &form.ticket, proof, client),
    )
    .await;
    match completed {
        Ok(signed_in) => request.start_session(signed_in, return_to.as_deref()).await,
        Err(error) if shown_in_form(&error) => {
            let problem = Problem::of(&error);
            let page = request.mfa_form(
                form_status(problem.status),
                &form.ticket,
                method,
                return_to.as_deref(),
                Some(problem.message),
            );
            render::with_retry_after(page, problem.retry_after)
        }
        Err(error) => request.error(&error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_ask_for_an_app_code_or_a_recovery_code_but_not_a_passkey() {
        let challenge = |factors: Vec<&'static str>| MfaChallenge {
            ticket: "t".to_owned(),
            factors,
        };
        assert!(asks_on_page(&challenge(vec!["totp", "recovery_code"])));
        assert!(asks_on_page(&challenge(vec!["passkey", "recovery_code"])));
        assert!(!asks_on_page(&challenge(vec!["passkey"])));
        assert_eq!(method_of("recovery_code"), RECOVERY_CODE);
        assert_eq!(method_of("anything"), TOTP);
    }

    #[test]
    fn a_wrong_code_stays_in_the_form_and_a_spent_ticket_does_not() {
        assert!(shown_in_form(&DomainError::InvalidCode));
        assert!(shown_in_form(&DomainError::RateLimitedFor(30)));
        assert!(shown_in_form(&DomainError::invalid("totp_code", "bad")));
        assert!(!shown_in_form(&DomainError::invalid("ticket", "empty")));
        assert!(!shown_in_form(&DomainError::MfaTicketInvalid));
    }
}
