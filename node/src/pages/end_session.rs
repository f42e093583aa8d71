//! `GET /t/{tenant}/oauth2/end_session`: RP-initiated logout (OpenID Connect RP-Initiated
//! Logout 1.0). A `post_logout_redirect_uri` is followed only when it is one the client
//! registered exactly (the client named by `client_id` or by the `id_token_hint`'s
//! audience), else the request is refused on a page. The browser is signed out at once only
//! when the hint is an ID token this tenant issued to the same person; any other request
//! asks the person first (`POST …/handler/end-session`), so a link or an image cannot sign
//! them out (forced logout). The client's own session the hint names ends with it.

use axum::Form;
use axum::extract::RawQuery;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_actors::audit;
use gatehouse_actors::oidc::id_token::IdTokenClaims;
use serde::Deserialize;
use url::Url;
use uuid::Uuid;

use super::render::Problem;
use super::{PageRequest, ends_session, see_other, session};

/// A checked logout request.
struct Logout {
    /// The verified hint, if one came.
    hint: Option<IdTokenClaims>,
    /// The client asking, when known.
    client: Option<(String, String)>,
    /// Where to go afterwards: a registered URI with `state`, or the signed-out page.
    then: String,
}

impl PageRequest {
    fn logout_problem(&self, message: &str) -> Response {
        self.problem(&Problem {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: format!(
                "The application that sent you here asked to sign you out, but {message}."
            ),
            retry_after: None,
        })
    }

    async fn logout(&self, query: &str) -> Result<Logout, Response> {
        let pairs = crate::oidc_http::unique_pairs(query.as_bytes())
            .map_err(|why| self.logout_problem(&why))?;
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(field, _)| field == name)
                .map(|(_, value)| value.as_str())
                .filter(|value| !value.is_empty())
        };
        let hint = match get("id_token_hint") {
            Some(token) => Some(
                self.tenant
                    .keys
                    .id_token_hint(token, &self.tenant.issuer)
                    .ok_or_else(|| self.logout_problem("its id_token_hint is not valid"))?,
            ),
            None => None,
        };
        let client_id = match (
            get("client_id"),
            hint.as_ref().map(|hint| hint.aud.as_str()),
        ) {
            (Some(named), Some(audience)) if named != audience => {
                return Err(self.logout_problem("its client_id is not the hint's audience"));
            }
            (named, audience) => named.or(audience),
        };
        let client = match client_id {
            Some(client_id) => self
                .state
                .gatehouse
                .oidc_client(&self.tenant, client_id)
                .await
                .map_err(|error| self.error(&error))?,
            None => None,
        };
        let then = match get("post_logout_redirect_uri") {
            None => format!("{}/signed-out", self.base()),
            Some(uri) => {
                let registered = client.as_ref().is_some_and(|client| {
                    client.post_logout_redirect_uris.iter().any(|r| r == uri)
                });
                if !registered {
                    return Err(self.logout_problem(
                        "the address it wants you sent to afterwards is not registered",
                    ));
                }
                let mut url = Url::parse(uri).map_err(|_| self.problem(&Problem::internal()))?;
                if let Some(state) = get("state") {
                    url.query_pairs_mut().append_pair("state", state);
                }
                url.to_string()
            }
        };
        Ok(Logout {
            hint,
            client: client.map(|client| (client.client_id, client.name)),
            then,
        })
    }

    /// Signs the browser out (and the client's session the hint names), then goes on.
    async fn sign_out_and_go(&self, logout: &Logout) -> Response {
        let master_key = &self.state.gatehouse.services().master_key;
        let browser = session::open(master_key, self.tenant_id(), &self.headers);
        if let Some(browser) = &browser {
            let ended = audit::with_source_ip(
                self.client.ip_address.clone(),
                self.state
                    .gatehouse
                    .sign_out(&self.caller(), Some(&browser.refresh_token)),
            )
            .await;
            match ended {
                Ok(()) => {}
                Err(error) if ends_session(&error) => {}
                Err(error) => return self.error(&error),
            }
        }
        if let (Some(hint), Some((client_id, _))) = (&logout.hint, &logout.client)
            && let (Ok(session_id), Ok(user_id)) =
                (Uuid::try_parse(&hint.sid), Uuid::try_parse(&hint.sub))
        {
            let ended = self
                .state
                .gatehouse
                .oidc_end_client_session(&self.tenant, client_id, session_id, user_id)
                .await;
            if let Err(error) = ended {
                return self.error(&error);
            }
        }
        see_other(&logout.then, &[self.cleared_session()])
    }
}

/// `GET /t/{tenant}/oauth2/end_session`.
pub async fn end_session(page: PageRequest, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let logout = match page.logout(&query).await {
        Ok(logout) => logout,
        Err(response) => return response,
    };
    let master_key = &page.state.gatehouse.services().master_key;
    let Some(browser) = session::open(master_key, page.tenant_id(), &page.headers) else {
        return page.sign_out_and_go(&logout).await;
    };
    let same_person = logout
        .hint
        .as_ref()
        .is_some_and(|hint| hint.sub == browser.user_id.to_string());
    if same_person {
        return page.sign_out_and_go(&logout).await;
    }
    let email = match page.browser_state().await {
        Ok(super::BrowserState::SignedIn { user }) => user.email.clone(),
        Ok(super::BrowserState::SignedOut { .. }) => String::new(),
        Err(error) => return page.error(&error),
    };
    let context = minijinja::context! {
        client_name => logout.client.as_ref().map(|(_, name)| name.clone()),
        email,
        request => query,
    };
    let target = logout.then.clone();
    super::with_form_target(
        page.html(StatusCode::OK, "end_session.html", context, Vec::new()),
        &target,
    )
}

/// The confirmation form's fields.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndSessionForm {
    csrf: String,
    /// The logout request's query, as the page received it.
    request: String,
    /// `sign-out` or `stay`.
    decision: String,
}

/// `POST /t/{tenant}/handler/end-session`.
pub async fn confirm(
    page: PageRequest,
    form: Result<Form<EndSessionForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return page.problem(&Problem::malformed_form());
    };
    if let Some(refused) = page.refuse_forged(&form.csrf) {
        return refused;
    }
    let logout = match page.logout(&form.request).await {
        Ok(logout) => logout,
        Err(response) => return response,
    };
    if form.decision == "sign-out" {
        return page.sign_out_and_go(&logout).await;
    }
    see_other(&page.account_path(), &[])
}
