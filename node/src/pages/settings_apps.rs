//! `GET /t/{tenant}/handler/settings/apps`: the applications the signed-in user let use the
//! account (the OpenID provider's consents), and `POST …/settings/apps/revoke`, which takes
//! one's access back: the consent goes, the application's sessions of the user end, and its
//! next sign-in asks again.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query};
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_actors::audit;
use serde::Deserialize;

use super::render::Problem;
use super::settings::{DoneQuery, Section};
use super::{PageRequest, see_other};

/// The form of one application's "Remove access" button.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct WithdrawForm {
    csrf: String,
    client_id: String,
}

/// `GET …/settings/apps`.
pub async fn apps_page(
    request: PageRequest,
    query: Result<Query<DoneQuery>, QueryRejection>,
) -> Response {
    let browser = match request.settings_caller(Section::Apps).await {
        Ok(browser) => browser,
        Err(response) => return response,
    };
    let consents = match request
        .state
        .gatehouse
        .list_my_consents(&browser.caller)
        .await
    {
        Ok(consents) => consents,
        Err(error) => return request.error(&error),
    };
    let apps: Vec<_> = consents
        .iter()
        .map(|consent| {
            minijinja::context! {
                client_id => consent.client_id.clone(),
                name => consent.client_name.clone(),
                scopes => consent.scopes.iter().map(|scope| super::authorize::describe(scope)).collect::<Vec<_>>(),
                granted => consent.granted_at.rfc3339().get(..10).unwrap_or_default().to_owned(),
                granted_at => consent.granted_at.rfc3339(),
            }
        })
        .collect();
    let fields = minijinja::context! { apps };
    request.settings_page(
        StatusCode::OK,
        Section::Apps,
        "settings_apps.html",
        &browser,
        DoneQuery::notice(query),
        None,
        fields,
    )
}

/// `POST …/settings/apps/revoke`.
pub async fn withdraw(
    request: PageRequest,
    form: Result<Form<WithdrawForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let browser = match request.settings_caller(Section::Apps).await {
        Ok(browser) => browser,
        Err(response) => return response,
    };
    let withdrawn = audit::with_source_ip(
        request.client.ip_address.clone(),
        request
            .state
            .gatehouse
            .withdraw_my_consent(&browser.caller, &form.client_id),
    )
    .await;
    match withdrawn {
        Ok(_) => see_other(
            &format!("{}?done=app", request.settings_path(Section::Apps)),
            &[],
        ),
        Err(error) => request.error(&error),
    }
}
