//! `GET /t/{tenant}/handler/account` (who is signed in, and the sign-out button),
//! `POST …/sign-out` (revokes the session in the domain) and `GET …/signed-out`.

use axum::extract::Form;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_actors::audit;
use serde::Deserialize;

use super::render::Problem;
use super::session;
use super::{BrowserState, PageRequest, ends_session, see_other};

/// The sign-out form: its CSRF token only.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SignOutForm {
    csrf: String,
}

/// `GET /t/{tenant}/handler`: the account page, which sends a signed-out browser on to
/// sign in.
pub async fn home(request: PageRequest) -> Response {
    see_other(&request.account_path(), &[])
}

/// `GET …/account`: the signed-in user; a browser without a live session (none, revoked,
/// expired, its user suspended or banned) goes to sign-in and loses its stale cookie.
pub async fn account(request: PageRequest) -> Response {
    match request.browser_state().await {
        Ok(BrowserState::SignedIn { user, .. }) => {
            let context = minijinja::context! {
                email => user.email.clone(),
                display_name => user.display_name.clone(),
                user_initial => super::render::initial(if user.display_name.trim().is_empty() {
                    &user.email
                } else {
                    &user.display_name
                }),
            };
            request.html(StatusCode::OK, "account.html", context, Vec::new())
        }
        Ok(BrowserState::SignedOut { stale }) => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &request.account_path())
                .finish();
            let sign_in = format!("{}/sign-in?{query}", request.base());
            let cookies = if stale {
                vec![request.cleared_session()]
            } else {
                Vec::new()
            };
            see_other(&sign_in, &cookies)
        }
        Err(error) => request.error(&error),
    }
}

/// `POST …/sign-out`: revokes the cookie's session through the domain (as the SDK's sign-out
/// does, with the session's refresh token), removes the cookie, shows the signed-out page.
pub async fn sign_out(
    request: PageRequest,
    form: Result<Form<SignOutForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let master_key = &request.state.gatehouse.services().master_key;
    if let Some(browser) = session::open(master_key, request.tenant_id(), &request.headers) {
        let caller = request.caller();
        let ended = audit::with_source_ip(
            request.client.ip_address.clone(),
            request
                .state
                .gatehouse
                .sign_out(&caller, Some(&browser.refresh_token)),
        )
        .await;
        match ended {
            Ok(()) => {}
            // Already over: signing out again changes nothing.
            Err(error) if ends_session(&error) => {}
            Err(error) => return request.error(&error),
        }
    }
    let signed_out = format!("{}/signed-out", request.base());
    see_other(&signed_out, &[request.cleared_session()])
}

/// `GET …/signed-out`.
pub async fn signed_out(request: PageRequest) -> Response {
    request.html(
        StatusCode::OK,
        "signed_out.html",
        minijinja::context! {},
        Vec::new(),
    )
}
