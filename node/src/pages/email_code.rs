//! `…/sign-in/code` and `…/sign-in/link`: sign-in by an emailed code or by the magic link of
//! the same message, when the tenant enables sign-in codes. Asking for a code answers the
//! same page for every address (the domain sends nothing to an address that cannot sign in,
//! or a sign-up code when the tenant allows sign-up by code). The link's page only shows a
//! button: a mail scanner that fetches the link spends nothing, the browser's post signs in.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query};
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_actors::api::email::ProofInput;
use gatehouse_actors::domain::tenants::redirects::check_redirect;
use gatehouse_actors::{DomainError, audit};
use serde::Deserialize;

use super::PageRequest;
use super::render::Problem;
use super::sign_in::{ReturnQuery, query_return_to};

/// The "email me a code" form.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct CodeRequestForm {
    csrf: String,
    email: String,
    return_to: String,
}

/// The code form: the address (hidden) and the code typed.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    csrf: String,
    email: String,
    code: String,
    return_to: String,
}

/// `?token=…&return_to=…` of an emailed link, and the form its page posts.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct LinkFields {
    csrf: String,
    token: String,
    return_to: String,
}

impl PageRequest {
    /// The URL of the page `page` for an email's link (the domain adds `token=…`), with
    /// `return_to`; empty, so the message carries its code only, when the node's own origin
    /// is not on the tenant's trusted domains (the domain refuses links anywhere else).
    pub(super) fn email_link(&self, page: &str, return_to: Option<&str>) -> String {
        let mut link = format!(
            "{}{}/{page}",
            self.public_url().trim_end_matches('/'),
            self.base()
        );
        if let Some(path) = return_to {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", path)
                .finish();
            link = format!("{link}?{query}");
        }
        match check_redirect(&self.tenant.record.settings, "redirect_url", &link) {
            Ok(_) => link,
            Err(_) => String::new(),
        }
    }

    fn code_sign_in_refused(&self) -> Option<Response> {
        if self.tenant.record.settings.email.sign_in_code_enabled {
            return None;
        }
        Some(self.error(&DomainError::PermissionDenied(
            "sign-in by email code is disabled for this tenant",
        )))
    }

    fn code_page(
        &self,
        step: &str,
        return_to: Option<&str>,
        email: &str,
        token: &str,
        error: Option<&DomainError>,
    ) -> Response {
        let fields = minijinja::context! { step, email, token };
        match error {
            None => self.form_page(StatusCode::OK, "sign_in_code.html", return_to, fields, None),
            Some(error) => self.refused_form("sign_in_code.html", return_to, fields, error),
        }
    }
}

/// `GET …/sign-in/code`: the address to send a code to.
pub async fn request_page(
    request: PageRequest,
    query: Result<Query<ReturnQuery>, QueryRejection>,
) -> Response {
    if let Some(refused) = request.code_sign_in_refused() {
        return refused;
    }
    let (return_to, _) = query_return_to(query);
    let return_to = request.return_to(&return_to);
    if let Some(redirect) = request.already_signed_in(return_to.as_deref()).await {
        return redirect;
    }
    request.code_page("email", return_to.as_deref(), "", "", None)
}

/// `POST …/sign-in/code`: sends the code, then asks for it (the same page for any address).
pub async fn send(
    request: PageRequest,
    form: Result<Form<CodeRequestForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let return_to = request.return_to(&form.return_to);
    let link = request.email_link("sign-in/link", return_to.as_deref());
    let caller = request.caller();
    let client = &request.client;
    let sent = audit::with_source_ip(
        client.ip_address.clone(),
        request
            .state
            .gatehouse
            .send_sign_in_code(&caller, &form.email, &link, client),
    )
    .await;
    let email = form.email.trim();
    match sent {
        Ok(()) => request.code_page("code", return_to.as_deref(), email, "", None),
        Err(error) => request.code_page("email", return_to.as_deref(), email, "", Some(&error)),
    }
}

/// `POST …/sign-in/code/verify`: the code signs in (or on to the second factor).
pub async fn verify(request: PageRequest, form: Result<Form<CodeForm>, FormRejection>) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let return_to = request.return_to(&form.return_to);
    let proof = ProofInput {
        email: &form.email,
        code: &form.code,
        token: "",
    };
    let caller = request.caller();
    let client = &request.client;
    let signed_in = audit::with_source_ip(
        client.ip_address.clone(),
        request
            .state
            .gatehouse
            .sign_in_with_code(&caller, proof, client),
    )
    .await;
    let email = form.email.trim();
    request
        .signed_in_or_mfa(signed_in, return_to.as_deref(), |error| {
            request.code_page("code", return_to.as_deref(), email, "", Some(error))
        })
        .await
}

/// `GET …/sign-in/link?token=…`: the magic link's landing page, a button that signs in.
pub async fn link_page(
    request: PageRequest,
    query: Result<Query<LinkFields>, QueryRejection>,
) -> Response {
    if let Some(refused) = request.code_sign_in_refused() {
        return refused;
    }
    let link = query.map(|Query(link)| link).unwrap_or_default();
    if link.token.trim().is_empty() {
        return request.error(&DomainError::InvalidCode);
    }
    let return_to = request.return_to(&link.return_to);
    request.code_page("link", return_to.as_deref(), "", &link.token, None)
}

/// `POST …/sign-in/link`: the link's token signs in; a spent or wrong one is the error page.
pub async fn follow_link(
    request: PageRequest,
    form: Result<Form<LinkFields>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let return_to = request.return_to(&form.return_to);
    let proof = ProofInput {
        token: &form.token,
        ..ProofInput::default()
    };
    let caller = request.caller();
    let client = &request.client;
    let signed_in = audit::with_source_ip(
        client.ip_address.clone(),
        request
            .state
            .gatehouse
            .sign_in_with_code(&caller, proof, client),
    )
    .await;
    request
        .signed_in_or_mfa(signed_in, return_to.as_deref(), |error| {
            request.error(error)
        })
        .await
}
