//! The pages an email leads to besides sign-in: `…/forgot-password` (asks for a reset code
//! and link: the same answer for every address), `…/reset-password` (the code or the link's
//! token, and the new password) and `…/verify-email?token=…` (verifies the address).
//!
//! The domain builds an email's link from the `redirect_url` of the request with `token=…`
//! added. The pages ask for links to themselves when the node's origin is on the tenant's
//! trusted domains; an application may do the same by sending
//! `{public_url}/t/{tenant}/handler/verify-email` (or `…/reset-password`) as its
//! `redirect_url`, and these pages take that token.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query};
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_actors::api::email::ProofInput;
use gatehouse_actors::{DomainError, audit};
use serde::Deserialize;

use super::render::Problem;
use super::{PageRequest, see_other};

/// The forgot-password form.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ForgotForm {
    csrf: String,
    email: String,
}

/// The new-password form: the address and code, or the link's token, and the password.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ResetForm {
    csrf: String,
    email: String,
    code: String,
    token: String,
    password: String,
}

/// `?token=…` of an emailed link.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct TokenQuery {
    token: String,
}

impl PageRequest {
    fn reset_page(&self, email: &str, token: &str, error: Option<&DomainError>) -> Response {
        let fields = minijinja::context! { email, token };
        match error {
            None => self.form_page(StatusCode::OK, "reset_password.html", None, fields, None),
            Some(error) => self.refused_form("reset_password.html", None, fields, error),
        }
    }

    fn notice(&self, title: &str, message: &str) -> Response {
        let context = minijinja::context! { title, message };
        self.html(StatusCode::OK, "notice.html", context, Vec::new())
    }
}

/// `GET …/forgot-password`.
pub async fn forgot_page(request: PageRequest) -> Response {
    let fields = minijinja::context! { email => "" };
    request.form_page(StatusCode::OK, "forgot_password.html", None, fields, None)
}

/// `POST …/forgot-password`: sends the reset code and link, then asks for the code.
pub async fn forgot(
    request: PageRequest,
    form: Result<Form<ForgotForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let link = request.email_link("reset-password", None);
    let caller = request.caller();
    let client = &request.client;
    let sent = audit::with_source_ip(
        client.ip_address.clone(),
        request
            .state
            .gatehouse
            .send_password_reset(&caller, &form.email, &link, client),
    )
    .await;
    let email = form.email.trim();
    match sent {
        Ok(()) => request.reset_page(email, "", None),
        Err(error) => {
            let fields = minijinja::context! { email };
            request.refused_form("forgot_password.html", None, fields, &error)
        }
    }
}

/// `GET …/reset-password?token=…`: the emailed link's new-password form.
pub async fn reset_page(
    request: PageRequest,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    let token = query.map(|Query(query)| query.token).unwrap_or_default();
    if token.trim().is_empty() {
        return see_other(&format!("{}/forgot-password", request.base()), &[]);
    }
    request.reset_page("", &token, None)
}

/// `POST …/reset-password`: sets the password (every session of the user ends), then the
/// done page.
pub async fn reset(request: PageRequest, form: Result<Form<ResetForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let proof = ProofInput {
        email: &form.email,
        code: &form.code,
        token: &form.token,
    };
    let caller = request.caller();
    let client = &request.client;
    let reset = audit::with_source_ip(
        client.ip_address.clone(),
        request
            .state
            .gatehouse
            .reset_password(&caller, proof, &form.password, client),
    )
    .await;
    match reset {
        Ok(()) => request.notice(
            "Password changed",
            "Your new password is set and every device that was signed in has been signed \
             out. Sign in with the new password.",
        ),
        Err(error) => request.reset_page(form.email.trim(), &form.token, Some(&error)),
    }
}

/// `GET …/verify-email?token=…`: verifies the address of the link and says so. A GET may
/// verify: it only proves what the link proves (the message reached the address), and a
/// mail scanner that fetches it first does what the person meant to do.
pub async fn verify_email(
    request: PageRequest,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    let token = query.map(|Query(query)| query.token).unwrap_or_default();
    if token.trim().is_empty() {
        return request.error(&DomainError::InvalidCode);
    }
    let proof = ProofInput {
        token: &token,
        ..ProofInput::default()
    };
    let caller = request.caller();
    let client = &request.client;
    let verified = audit::with_source_ip(
        client.ip_address.clone(),
        request.state.gatehouse.verify_email(&caller, proof, client),
    )
    .await;
    match verified {
        Ok(_) => request.notice(
            "Email verified",
            "Thank you: your address is verified. You can sign in now.",
        ),
        Err(error) => request.error(&error),
    }
}
