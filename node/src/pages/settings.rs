//! The signed-in person's account settings under `/t/{tenant}/handler/settings/…`: the
//! profile (display name) and security (password, the second factors enrolled) here, the
//! sessions in `settings_sessions`. Plain forms that work without JavaScript, each post
//! checked by `refuse_forged`. Every change is the domain operation a client with the
//! session's own access token would call (`Gatehouse::browser_caller`), under its policy.
//!
//! There is no delete-account page: `Users.DeleteUser` is for servers and operators, and a
//! user cannot delete themselves through the API.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query};
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_actors::api::BrowserCaller;
use gatehouse_actors::{DomainError, UserUpdate, audit};
use minijinja::Value;
use serde::Deserialize;

use super::render::{self, Problem};
use super::{PageRequest, ends_session, see_other, session};

/// `?done=` after a change: which confirmation to show (never text from the request).
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: String,
}

impl DoneQuery {
    /// The sentence for a change that just succeeded, if the query names one.
    pub fn notice(query: Result<Query<DoneQuery>, QueryRejection>) -> Option<&'static str> {
        let Ok(Query(query)) = query else {
            return None;
        };
        match query.done.as_str() {
            "profile" => Some("Your name is saved."),
            "password" => Some("Your password is changed. Your other devices are signed out."),
            "revoked" => Some("That device is signed out."),
            "others" => Some("Your other devices are signed out."),
            "app" => Some("That app no longer has access. It is signed out."),
            _ => None,
        }
    }
}

/// The profile form: the display name.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ProfileForm {
    csrf: String,
    display_name: String,
}

/// The password form.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
}

/// Which settings page, for its path and the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The display name.
    Profile,
    /// Password and second factors.
    Security,
    /// The user's sessions.
    Sessions,
    /// The applications the user consented to.
    Apps,
}

impl Section {
    fn slug(self) -> &'static str {
        match self {
            Section::Profile => "profile",
            Section::Security => "security",
            Section::Sessions => "sessions",
            Section::Apps => "apps",
        }
    }
}

impl PageRequest {
    /// `…/settings/{section}`.
    pub(super) fn settings_path(&self, section: Section) -> String {
        format!("{}/settings/{}", self.base(), section.slug())
    }

    /// The browser's session as the caller it acts as, or the response instead: a browser
    /// without a live session goes to sign in (and back to `section`), losing a stale cookie.
    pub(super) async fn settings_caller(
        &self,
        section: Section,
    ) -> Result<BrowserCaller, Response> {
        let services = self.state.gatehouse.services();
        let opened = session::open(&services.master_key, self.tenant_id(), &self.headers);
        let failure = match opened {
            Some(browser) => {
                let caller = self
                    .state
                    .gatehouse
                    .browser_caller(&self.tenant, browser.session_id, browser.user_id)
                    .await;
                match caller {
                    Ok(caller) => return Ok(caller),
                    Err(error) if ends_session(&error) => None,
                    Err(error) => Some(error),
                }
            }
            None => None,
        };
        if let Some(error) = failure {
            return Err(self.error(&error));
        }
        let stale = session::sent_cookie(&self.headers, session::SESSION_COOKIE).is_some();
        let cookies = if stale {
            vec![self.cleared_session()]
        } else {
            Vec::new()
        };
        Err(see_other(
            &self.sign_in_returning(&self.settings_path(section), false),
            &cookies,
        ))
    }

    /// `…/sign-in?return_to=PATH`, with `reauth=1` when a signed-in person must sign in
    /// again (step-up).
    pub(super) fn sign_in_returning(&self, return_to: &str, reauth: bool) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if reauth {
            query.append_pair("reauth", "1");
        }
        query.append_pair("return_to", return_to);
        format!("{}/sign-in?{}", self.base(), query.finish())
    }

    /// A settings page: `template` with the navigation's state, the user, a confirmation
    /// (`notice`) or a refusal (`error`), and `fields`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn settings_page(
        &self,
        status: StatusCode,
        section: Section,
        template: &str,
        browser: &BrowserCaller,
        notice: Option<&str>,
        error: Option<String>,
        fields: Value,
    ) -> Response {
        let user = &browser.user;
        let context = minijinja::context! {
            section => section.slug(),
            email => user.email.clone(),
            display_name => user.display_name.clone(),
            notice,
            error,
            ..fields
        };
        self.html(status, template, context, Vec::new())
    }

    /// A refused settings form: the page again with the code's sentence (its status, but
    /// 422 for a 401), or the error page for what a person cannot fix in the form.
    fn refused_settings(
        &self,
        section: Section,
        template: &str,
        browser: &BrowserCaller,
        error: &DomainError,
        message: Option<String>,
        fields: Value,
    ) -> Response {
        if !shown_in_settings(error) {
            return self.error(error);
        }
        let problem = Problem::of(error);
        let status = if problem.status == StatusCode::UNAUTHORIZED {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            problem.status
        };
        let message = message.unwrap_or(problem.message);
        let page = self.settings_page(
            status,
            section,
            template,
            browser,
            None,
            Some(message),
            fields,
        );
        render::with_retry_after(page, problem.retry_after)
    }
}

/// The refusals a person can act on in a settings form.
fn shown_in_settings(error: &DomainError) -> bool {
    matches!(
        error,
        DomainError::InvalidCredentials
            | DomainError::RateLimited
            | DomainError::RateLimitedFor(_)
            | DomainError::InvalidPassword(_)
            | DomainError::InvalidArgument { .. }
            | DomainError::PermissionDenied(_)
            | DomainError::EmailNotVerified
            | DomainError::MfaEnrolmentRequired
            | DomainError::SessionNotFound
    )
}

/// `GET …/settings`: the profile.
pub async fn settings_home(request: PageRequest) -> Response {
    see_other(&request.settings_path(Section::Profile), &[])
}

/// `GET …/settings/profile`.
pub async fn profile_page(
    request: PageRequest,
    query: Result<Query<DoneQuery>, QueryRejection>,
) -> Response {
    let browser = match request.settings_caller(Section::Profile).await {
        Ok(browser) => browser,
        Err(response) => return response,
    };
    let fields = minijinja::context! { name_value => browser.user.display_name.clone() };
    request.settings_page(
        StatusCode::OK,
        Section::Profile,
        "settings_profile.html",
        &browser,
        DoneQuery::notice(query),
        None,
        fields,
    )
}

/// `POST …/settings/profile`: `Users.UpdateUser` of the display name, as the user.
pub async fn update_profile(
    request: PageRequest,
    form: Result<Form<ProfileForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let browser = match request.settings_caller(Section::Profile).await {
        Ok(browser) => browser,
        Err(response) => return response,
    };
    let update = UserUpdate {
        display_name: Some(form.display_name.clone()),
        ..UserUpdate::default()
    };
    let updated = audit::with_source_ip(
        request.client.ip_address.clone(),
        request
            .state
            .gatehouse
            .update_user(&browser.caller, "", update),
    )
    .await;
    match updated {
        Ok(_) => see_other(
            &format!("{}?done=profile", request.settings_path(Section::Profile)),
            &[],
        ),
        Err(error) => {
            let fields = minijinja::context! { name_value => form.display_name };
            request.refused_settings(
                Section::Profile,
                "settings_profile.html",
                &browser,
                &error,
                None,
                fields,
            )
        }
    }
}

/// The security page's read-only summary of the second factors.
async fn factor_fields(request: &PageRequest, browser: &BrowserCaller) -> Result<Value, Response> {
    let summary = request
        .state
        .gatehouse
        .list_factors(&browser.caller, "")
        .await
        .map_err(|error| request.error(&error))?;
    let totp = summary
        .totp
        .as_ref()
        .is_some_and(|totp| totp.confirmed_at.is_some());
    Ok(minijinja::context! {
        totp,
        passkeys => summary.passkeys.len(),
        recovery_codes => summary.recovery_codes_remaining,
    })
}

/// `GET …/settings/security`.
pub async fn security_page(
    request: PageRequest,
    query: Result<Query<DoneQuery>, QueryRejection>,
) -> Response {
    let browser = match request.settings_caller(Section::Security).await {
        Ok(browser) => browser,
        Err(response) => return response,
    };
    let fields = match factor_fields(&request, &browser).await {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    request.settings_page(
        StatusCode::OK,
        Section::Security,
        "settings_security.html",
        &browser,
        DoneQuery::notice(query),
        None,
        fields,
    )
}

/// `POST …/settings/password`: `Auth.ChangePassword` as the user. A sign-in older than the
/// tenant's step-up window (`REAUTHENTICATION_REQUIRED`) sends the person to sign in again
/// and back here.
pub async fn change_password(
    request: PageRequest,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return request.problem(&Problem::malformed_form());
    };
    if let Some(refused) = request.refuse_forged(&form.csrf) {
        return refused;
    }
    let browser = match request.settings_caller(Section::Security).await {
        Ok(browser) => browser,
        Err(response) => return response,
    };
    let client = &request.client;
    let changed = audit::with_source_ip(
        client.ip_address.clone(),
        request.state.gatehouse.change_password(
            &browser.caller,
            &form.current_password,
            &form.new_password,
            client,
        ),
    )
    .await;
    let security = request.settings_path(Section::Security);
    match changed {
        Ok(_) => see_other(&format!("{security}?done=password"), &[]),
        Err(DomainError::ReauthenticationRequired) => {
            see_other(&request.sign_in_returning(&security, true), &[])
        }
        Err(error) => {
            let fields = match factor_fields(&request, &browser).await {
                Ok(fields) => fields,
                Err(response) => return response,
            };
            // Here a wrong password can only be the current one.
            let message = matches!(error, DomainError::InvalidCredentials)
                .then(|| "Your current password is incorrect.".to_owned());
            request.refused_settings(
                Section::Security,
                "settings_security.html",
                &browser,
                &error,
                message,
                fields,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_confirmations_are_shown() {
        let notice = |done: &str| {
            DoneQuery::notice(Ok(Query(DoneQuery {
                done: done.to_owned(),
            })))
        };
        assert_eq!(notice("profile"), Some("Your name is saved."));
        assert!(notice("others").is_some_and(|text| text.contains("other devices")));
        assert_eq!(notice("<script>"), None);
        assert_eq!(notice(""), None);
    }

    #[test]
    fn refusals_a_person_can_fix_stay_in_the_settings_form() {
        assert!(shown_in_settings(&DomainError::InvalidCredentials));
        assert!(shown_in_settings(&DomainError::invalid(
            "display_name",
            "x"
        )));
        assert!(!shown_in_settings(&DomainError::Internal("x".to_owned())));
        assert!(!shown_in_settings(&DomainError::ReauthenticationRequired));
    }
}
