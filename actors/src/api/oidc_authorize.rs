//! The browser's side of Gatehouse as an OpenID provider: an authorization request checked
//! against its client, then answered for the person signed in in the browser (a code), or
//! sent to sign in (no session, too old for `max_age`, `prompt=login`) or to consent (a
//! third-party client without the person's consent to these scopes, or `prompt=consent`).

use uuid::Uuid;

use crate::context::Timestamp;
use crate::domain::oidc::authorize::{self, AuthorizationRequest, AuthorizeError, AuthorizeParams};
use crate::domain::oidc::codes::{self, SignedInBrowser};
use crate::domain::oidc::consent;
use crate::domain::oidc_clients::{self, OidcClientRecord};
use crate::domain::sessions;
use crate::domain::tenants::TenantState;
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

/// What an authorization request comes to for the browser's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorized {
    /// A code for the client's redirect URI.
    Code(String),
    /// The person must sign in (again).
    LoginRequired,
    /// The person must consent to the request's scopes for this client.
    ConsentRequired,
}

/// The browser's session, as its cookie names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrowserRef {
    /// The session.
    pub session_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
}

impl Gatehouse {
    /// Checks an authorization request against the client it names.
    pub async fn oidc_check_authorization(
        &self,
        tenant: &TenantState,
        params: &AuthorizeParams,
    ) -> DomainResult<Result<(AuthorizationRequest, OidcClientRecord), AuthorizeError>> {
        let client_id = params.client_id.as_deref().unwrap_or_default();
        let client = self.oidc_client(tenant, client_id).await?;
        Ok(authorize::check(params, client.as_ref()).map(|request| {
            let client = client.unwrap_or_else(|| unreachable!("check needs the client"));
            (request, client)
        }))
    }

    /// Answers `request` for the browser's session: a code when the sign-in is recent enough
    /// (`max_age`, and not before `signed_in_after` when the request asked for a new sign-in)
    /// and the client needs no consent or has it; `consented` records consent first.
    pub async fn oidc_authorize(
        &self,
        tenant: &TenantState,
        request: &AuthorizationRequest,
        client: &OidcClientRecord,
        browser: BrowserRef,
        signed_in_after: Option<Timestamp>,
        consented: bool,
    ) -> DomainResult<Authorized> {
        // A session that ended or a user who may not sign in must sign in again.
        match self
            .ensure_session_live(tenant.tenant_id(), browser.session_id, browser.user_id)
            .await
        {
            Ok(()) => {}
            Err(
                DomainError::SessionRevoked
                | DomainError::SessionExpired
                | DomainError::InvalidAccessToken
                | DomainError::UserSuspended
                | DomainError::UserBanned,
            ) => return Ok(Authorized::LoginRequired),
            Err(error) => return Err(error),
        }
        let (services, tenant_id) = (&self.services, tenant.tenant_id());
        services
            .db
            .run(|tx| async move {
                let context = &services.context;
                let now = context.now();
                let Some(session) =
                    sessions::find_session(&tx, tenant_id, browser.session_id).await?
                else {
                    return Ok(Authorized::LoginRequired);
                };
                let auth_time = session.auth_time();
                let too_old = request.max_age.is_some_and(|max_age| {
                    let max_millis =
                        i64::try_from(max_age.saturating_mul(1000)).unwrap_or(i64::MAX);
                    now.millis_since(auth_time) > max_millis
                });
                if too_old || signed_in_after.is_some_and(|after| auth_time < after) {
                    return Ok(Authorized::LoginRequired);
                }
                let user_id = browser.user_id;
                if consented {
                    let client_id = &client.client_id;
                    consent::grant(&tx, context, tenant_id, user_id, client_id, &request.scopes)
                        .await?;
                } else if request.prompt.consent
                    || !(client.first_party
                        || consent::covers(
                            &tx,
                            tenant_id,
                            user_id,
                            &client.client_id,
                            &request.scopes,
                        )
                        .await?)
                {
                    return Ok(Authorized::ConsentRequired);
                }
                let signed_in = SignedInBrowser {
                    user_id,
                    session_id: session.session_id,
                    auth_time,
                    amr: session.amr.clone(),
                };
                let code = codes::issue(&tx, context, tenant_id, request, &signed_in).await?;
                metrics::counter!("gatehouse_oidc_codes_issued_total").increment(1);
                Ok(Authorized::Code(code))
            })
            .await
    }
}

impl Gatehouse {
    /// The tenant's client `client_id`, if there is one.
    pub async fn oidc_client(
        &self,
        tenant: &TenantState,
        client_id: &str,
    ) -> DomainResult<Option<OidcClientRecord>> {
        let tenant_id = tenant.tenant_id();
        self.services
            .db
            .run(|tx| async move {
                match oidc_clients::read(&tx, tenant_id, client_id).await {
                    Ok(client) => Ok(Some(client)),
                    Err(DomainError::OidcClientNotFound) => Ok(None),
                    Err(error) => Err(error),
                }
            })
            .await
    }

    /// RP-initiated logout's end of the client's own session: revokes `session_id` when it is
    /// `client_id`'s session of `user_id` (anything else is left alone).
    pub async fn oidc_end_client_session(
        &self,
        tenant: &TenantState,
        client_id: &str,
        session_id: Uuid,
        user_id: Uuid,
    ) -> DomainResult<()> {
        let (services, tenant_id) = (&self.services, tenant.tenant_id());
        let session = services
            .db
            .run(|tx| async move { sessions::find_session(&tx, tenant_id, session_id).await })
            .await?;
        let held = session
            .is_some_and(|session| session.user_id == user_id && session.is_held_by(client_id));
        if !held {
            return Ok(());
        }
        self.end_client_session(tenant_id, session_id).await
    }
}

/// A client the signed-in user let in, as the settings list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentView {
    /// The client.
    pub client_id: String,
    /// Its name (the id when the client was deleted since).
    pub client_name: String,
    /// The scopes consented to.
    pub scopes: Vec<String>,
    /// The latest consent.
    pub granted_at: Timestamp,
}

impl Gatehouse {
    /// The third-party clients the signed-in user consented to.
    pub async fn list_my_consents(
        &self,
        caller: &crate::access::Caller,
    ) -> DomainResult<Vec<ConsentView>> {
        let (tenant, claims) = caller.require_user_even_restricted()?;
        let user_id = super::parse_id("sub", &claims.sub)?;
        let tenant_id = tenant.tenant_id();
        self.services
            .db
            .run(|tx| async move {
                let mut views = Vec::new();
                for (client_id, record) in consent::list_for_user(&tx, tenant_id, user_id).await? {
                    let name = match oidc_clients::read(&tx, tenant_id, &client_id).await {
                        Ok(client) => client.name,
                        Err(DomainError::OidcClientNotFound) => client_id.clone(),
                        Err(error) => return Err(error),
                    };
                    views.push(ConsentView {
                        client_id,
                        client_name: name,
                        scopes: record.scopes,
                        granted_at: record.granted_at,
                    });
                }
                Ok(views)
            })
            .await
    }

    /// Withdraws the signed-in user's consent to `client_id`: the client's sessions of the
    /// user end too, and its next request asks again. Returns how many sessions ended;
    /// `OIDC_CLIENT_NOT_FOUND` when there was no consent.
    pub async fn withdraw_my_consent(
        &self,
        caller: &crate::access::Caller,
        client_id: &str,
    ) -> DomainResult<u32> {
        let (tenant, claims) = caller.require_user_even_restricted()?;
        let user_id = super::parse_id("sub", &claims.sub)?;
        let (services, tenant_id) = (&self.services, tenant.tenant_id());
        let (existed, ended) = services
            .db
            .run(|tx| async move {
                consent::withdraw(&tx, &services.context, tenant_id, user_id, client_id).await
            })
            .await?;
        if !existed {
            return Err(DomainError::OidcClientNotFound);
        }
        Ok(ended)
    }
}
