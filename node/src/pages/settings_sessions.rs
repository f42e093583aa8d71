//! `GET /t/{tenant}/handler/settings/sessions`: the signed-in user's live sessions (device,
//! address, created, last used; this browser's marked), `POST …/sessions/revoke` signs one
//! other device out and `POST …/sessions/revoke-others` every one but this browser.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query};
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_actors::audit;
use gatehouse_actors::context::Timestamp;
use gatehouse_actors::sessions::SessionRecord;
use serde::Deserialize;
use uuid::Uuid;

use super::render::Problem;
use super::settings::{DoneQuery, Section};
use super::{PageRequest, see_other};

/// The form of one session's sign-out button.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct RevokeForm {
    csrf: String,
    session_id: String,
}

/// The "sign out other devices" form.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct RevokeOthersForm {
    csrf: String,
}

/// "2026-12-04 19:56 UTC".
fn shown_time(at: Timestamp) -> String {
    let text = at.rfc3339();
    match (text.get(..10), text.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => text,
    }
}

/// One row of the list.
fn session_row(session: &SessionRecord, current: Uuid) -> minijinja::Value {
    minijinja::context! {
        id => session.session_id.to_string(),
        device => session.user_agent.clone(),
        address => session.ip_address.clone(),
        created => shown_time(session.created_at),
        created_at => session.created_at.rfc3339(),
        last_used => shown_time(session.last_used_at),
        last_used_at => session.last_used_at.rfc3339(),
        current => session.session_id == current,
    }
}

/// `GET …/settings/sessions`.
pub async fn sessions_page(
    request: PageRequest,
    query: Result<Query<DoneQuery>, QueryRejection>,
) -> Response {
    let browser = match request.settings_caller(Section::Sessions).await {
        Ok(browser) => browser,
        Err(response) => return response,
    };
    let listed = request
        .state
        .gatehouse
        .list_my_sessions(&browser.caller)
        .await;
    let (sessions, current) = match listed {
        Ok(listed) => listed,
        Err(error) => return request.error(&error),
    };
    // This browser first, then the others newest first.
    let mut rows: Vec<_> = sessions
        .iter()
        .map(|s| (s, s.session_id == current))
        .collect();
    rows.sort_by_key(|(session, is_current)| (!is_current, std::cmp::Reverse(session.created_at)));
    let others = rows.iter().filter(|(_, is_current)| !is_current).count();
    let fields = minijinja::context! {
        sessions => rows.iter().map(|(session, _)| session_row(session, current)).collect::<Vec<_>>(),
        others,
    };
    request.settings_page(
        StatusCode::OK,
        Section::Sessions,
        "settings_sessions.html",
        &browser,
        DoneQuery::notice(query),
        None,
        fields,
    )
}

/// `POST …/settings/sessions/revoke`: signs out one of the user's sessions.
pub async fn revoke_session(
    request: PageRequest,
    form: Result<Form<RevokeForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let browser = match request.settings_caller(Section::Sessions).await {
        Ok(browser) => browser,
        Err(response) => return response,
    };
    let revoked = audit::with_source_ip(
        request.client.ip_address.clone(),
        request
            .state
            .gatehouse
            .revoke_my_session(&browser.caller, &form.session_id),
    )
    .await;
    match revoked {
        Ok(()) => see_other(
            &format!("{}?done=revoked", request.settings_path(Section::Sessions)),
            &[],
        ),
        Err(error) => request.error(&error),
    }
}

/// `POST …/settings/sessions/revoke-others`: signs out every session but this browser's.
pub async fn revoke_other_sessions(
    request: PageRequest,
    form: Result<Form<RevokeOthersForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let browser = match request.settings_caller(Section::Sessions).await {
        Ok(browser) => browser,
        Err(response) => return response,
    };
    let revoked = audit::with_source_ip(
        request.client.ip_address.clone(),
        request
            .state
            .gatehouse
            .revoke_my_other_sessions(&browser.caller),
    )
    .await;
    match revoked {
        Ok(_) => see_other(
            &format!("{}?done=others", request.settings_path(Section::Sessions)),
            &[],
        ),
        Err(error) => request.error(&error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_day_and_minute_in_utc() {
        assert_eq!(shown_time(Timestamp(0)), "1970-01-01 00:00 UTC");
        assert_eq!(
            shown_time(Timestamp(1_796_471_760_123)),
            "2026-12-05 11:56 UTC"
        );
    }
}
