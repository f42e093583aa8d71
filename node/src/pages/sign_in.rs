//! `GET|POST /t/{tenant}/handler/sign-in` and `…/sign-up`: plain HTML forms that work
//! without JavaScript. A right password (or a new account) starts a session and sets the
//! sealed session cookie; a refusal shows the form again with one sentence, the same for a
//! wrong password as for an unknown email.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query};
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_actors::api::{SignedIn, SignedUp};
use gatehouse_actors::{DomainError, audit};
use serde::Deserialize;

use super::render::{self, Problem};
use super::session::{self, BrowserSession};
use super::{BrowserState, PageRequest, mfa, return_to, see_other};

/// `?return_to=` of the form pages.
#[derive(Debug, Default, Deserialize)]
pub struct ReturnQuery {
    #[serde(default)]
    return_to: String,
    /// `?reauth=1`: show the form even to a signed-in browser (an application asked for a
    /// new sign-in: `prompt=login`, `max_age`).
    #[serde(default)]
    reauth: String,
}

/// The sign-in form's fields; missing ones are empty (and refused by the checks).
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SignInForm {
    csrf: String,
    email: String,
    password: String,
    return_to: String,
}

/// The sign-up form's fields.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SignUpForm {
    csrf: String,
    email: String,
    password: String,
    display_name: String,
    return_to: String,
}

impl PageRequest {
    /// `candidate` when it is a path of the node's own origin, else nothing.
    pub(super) fn return_to(&self, candidate: &str) -> Option<String> {
        return_to::same_origin_path(self.public_url(), candidate)
    }

    /// The sign-in form's own fields: the address typed, and whether the tenant offers
    /// sign-in by emailed code.
    fn sign_in_fields(&self, email: &str) -> minijinja::Value {
        let code_sign_in = self.tenant.record.settings.email.sign_in_code_enabled;
        minijinja::context! { email, code_sign_in }
    }

    /// The form page `template`, with `error` (a sentence) when a post was refused.
    pub(super) fn form_page(
        &self,
        status: StatusCode,
        template: &str,
        return_to: Option<&str>,
        fields: minijinja::Value,
        error: Option<String>,
    ) -> Response {
        let return_query = return_to
            .map(|path| {
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", path)
                    .finish()
            })
            .map(|query| format!("?{query}"))
            .unwrap_or_default();
        let context = minijinja::context! {
            return_to,
            return_query,
            error,
            ..fields
        };
        self.html(status, template, context, Vec::new())
    }

    /// A refused post: the form again with the sentence for `error`, or the error page for
    /// errors a person cannot fix in the form.
    pub(super) fn refused_form(
        &self,
        template: &str,
        return_to: Option<&str>,
        fields: minijinja::Value,
        error: &DomainError,
    ) -> Response {
        if !shown_in_form(error) {
            return self.error(error);
        }
        let problem = Problem::of(error);
        let page = self.form_page(
            form_status(problem.status),
            template,
            return_to,
            fields,
            Some(problem.message),
        );
        render::with_retry_after(page, problem.retry_after)
    }

    /// Where a browser that is already signed in goes instead of a form.
    pub(super) async fn already_signed_in(&self, return_to: Option<&str>) -> Option<Response> {
        match self.browser_state().await {
            Ok(BrowserState::SignedIn { .. }) => {
                let account = self.account_path();
                Some(see_other(return_to.unwrap_or(&account), &[]))
            }
            _ => None,
        }
    }

    /// After a sign-in or sign-up: the older session of this browser signed out, the new
    /// one's sealed cookie set, then on to `return_to` or the account page.
    pub(super) async fn start_session(
        &self,
        signed_in: SignedIn,
        return_to: Option<&str>,
    ) -> Response {
        self.end_previous_session().await;
        let services = self.state.gatehouse.services();
        let lifetime = signed_in
            .session
            .expires_at
            .millis_since(services.context.now())
            / 1000;
        let browser = BrowserSession {
            tenant: self.tenant_id().to_owned(),
            session_id: signed_in.session.session_id,
            user_id: signed_in.user.user_id,
            refresh_token: signed_in.refresh_token,
        };
        let Some(cookie) = session::seal(&services.master_key, &browser, lifetime, self.secure)
        else {
            return self.problem(&Problem::internal());
        };
        let account = self.account_path();
        see_other(return_to.unwrap_or(&account), &[cookie])
    }

    /// Signs out the session of a cookie this browser still holds (a second sign-in on the
    /// same browser must not leave the first session running unseen).
    async fn end_previous_session(&self) {
        let master_key = &self.state.gatehouse.services().master_key;
        if let Some(previous) = session::open(master_key, self.tenant_id(), &self.headers) {
            let caller = self.caller();
            let ended = self
                .state
                .gatehouse
                .sign_out(&caller, Some(&previous.refresh_token))
                .await;
            if let Err(error) = ended {
                tracing::debug!(%error, "the previous browser session was not signed out");
            }
        }
    }
}

/// The refusals a person can act on in the form itself.
fn shown_in_form(error: &DomainError) -> bool {
    matches!(
        error,
        DomainError::InvalidCredentials
            | DomainError::InvalidCode
            | DomainError::RateLimited
            | DomainError::RateLimitedFor(_)
            | DomainError::MfaRequired(_)
            | DomainError::UserSuspended
            | DomainError::UserBanned
            | DomainError::UserEmailAlreadyExists
            | DomainError::InvalidPassword(_)
            | DomainError::InvalidArgument { .. }
            | DomainError::PermissionDenied(_)
    )
}

/// The status of a form shown again: the code's, except that a 401 (which HTTP ties to a
/// `WWW-Authenticate` challenge no form has) is a 422, as for any refused form.
pub(super) fn form_status(status: StatusCode) -> StatusCode {
    if status == StatusCode::UNAUTHORIZED {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        status
    }
}

pub(super) fn query_return_to(query: Result<Query<ReturnQuery>, QueryRejection>) -> (String, bool) {
    query
        .map(|Query(query)| (query.return_to, query.reauth == "1"))
        .unwrap_or_default()
}

/// `GET …/sign-in`.
pub async fn sign_in_page(
    request: PageRequest,
    query: Result<Query<ReturnQuery>, QueryRejection>,
) -> Response {
    let (return_to, reauth) = query_return_to(query);
    let return_to = request.return_to(&return_to);
    if !reauth && let Some(redirect) = request.already_signed_in(return_to.as_deref()).await {
        return redirect;
    }
    let fields = request.sign_in_fields("");
    request.form_page(
        StatusCode::OK,
        "sign_in.html",
        return_to.as_deref(),
        fields,
        None,
    )
}

/// `POST …/sign-in`.
pub async fn sign_in(
    request: PageRequest,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let return_to = request.return_to(&form.return_to);
    let caller = request.caller();
    let client = &request.client;
    let signed_in = audit::with_source_ip(
        client.ip_address.clone(),
        request.state.gatehouse.sign_in_with_password(
            &caller,
            &form.email,
            &form.password,
            "",
            client,
        ),
    )
    .await;
    match signed_in {
        Ok(signed_in) => request.start_session(signed_in, return_to.as_deref()).await,
        Err(DomainError::MfaRequired(challenge)) if mfa::asks_on_page(&challenge) => {
            request.mfa_page(&challenge, return_to.as_deref())
        }
        Err(error) => {
            let fields = request.sign_in_fields(&form.email);
            request.refused_form("sign_in.html", return_to.as_deref(), fields, &error)
        }
    }
}

/// `GET …/sign-up`.
pub async fn sign_up_page(
    request: PageRequest,
    query: Result<Query<ReturnQuery>, QueryRejection>,
) -> Response {
    let (return_to, _) = query_return_to(query);
    let return_to = request.return_to(&return_to);
    if let Some(redirect) = request.already_signed_in(return_to.as_deref()).await {
        return redirect;
    }
    let fields = minijinja::context! { email => "", display_name => "" };
    request.form_page(
        StatusCode::OK,
        "sign_up.html",
        return_to.as_deref(),
        fields,
        None,
    )
}

/// `POST …/sign-up`.
pub async fn sign_up(
    request: PageRequest,
    form: Result<Form<SignUpForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let return_to = request.return_to(&form.return_to);
    let caller = request.caller();
    let client = &request.client;
    let signed_up = audit::with_source_ip(
        client.ip_address.clone(),
        request.state.gatehouse.sign_up_with_password(
            &caller,
            &form.email,
            &form.password,
            &form.display_name,
            client,
        ),
    )
    .await;
    match signed_up {
        Ok(SignedUp::SignedIn(signed_in)) => {
            request
                .start_session(*signed_in, return_to.as_deref())
                .await
        }
        Ok(SignedUp::VerificationRequired) => {
            let context = minijinja::context! {
                title => "Check your email",
                message => "A message is on its way to this address. Follow it to verify \
                            the address, then sign in.",
            };
            request.html(StatusCode::OK, "notice.html", context, Vec::new())
        }
        Err(error) => {
            let fields = minijinja::context! {
                email => form.email,
                display_name => form.display_name,
            };
            request.refused_form("sign_up.html", return_to.as_deref(), fields, &error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_a_person_can_fix_stay_in_the_form() {
        assert!(shown_in_form(&DomainError::InvalidCredentials));
        assert!(shown_in_form(&DomainError::RateLimitedFor(3)));
        assert!(shown_in_form(&DomainError::invalid("email", "bad")));
        assert!(!shown_in_form(&DomainError::Internal("x".to_owned())));
        assert!(!shown_in_form(&DomainError::TenantNotFound));
    }

    #[test]
    fn a_refused_form_is_never_a_401() {
        let status = |error: &DomainError| form_status(Problem::of(error).status);
        assert_eq!(
            status(&DomainError::InvalidCredentials),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(&DomainError::RateLimitedFor(5)),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(status(&DomainError::UserSuspended), StatusCode::FORBIDDEN);
    }
}
