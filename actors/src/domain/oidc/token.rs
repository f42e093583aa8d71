//! The token endpoint's work inside one transaction: client authentication (RFC 6749 §2.3:
//! `client_secret_basic`, `client_secret_post`, and `none` for public clients) and the
//! authorization-code grant, which opens the client's own session for the person who signed
//! in (its `amr` and `auth_time` are the browser sign-in's).

use gatehouse_storage::Transaction;

use super::codes::{self, CodeRecord};
use super::{OAuthError, OidcGrant};
use crate::context::Context;
use crate::domain::oidc_clients::{self, ClientKind, OidcClientRecord};
use crate::domain::sessions::{self, ClientInfo, SessionRecord};
use crate::domain::tenants::TenantState;
use crate::domain::users::{self, UserRecord};
use crate::error::{DomainError, DomainResult};

/// How a client authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// A secret, in the `Authorization: Basic` header or in the form.
    Secret {
        /// The client id.
        client_id: String,
        /// The secret.
        secret: String,
    },
    /// A public client names itself (`client_id` in the form) and proves nothing.
    None {
        /// The client id.
        client_id: String,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Secret { client_id, .. } => f
                .debug_struct("Secret")
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            ClientAuth::None { client_id } => f
                .debug_struct("None")
                .field("client_id", client_id)
                .finish(),
        }
    }
}

/// The client `auth` proves: a confidential client by its secret, a public client by its id
/// alone. A confidential client without its secret, a public client with one, an unknown
/// client and a wrong secret are all `invalid_client`.
pub async fn authenticate(
    tx: &Transaction,
    tenant: &str,
    auth: &ClientAuth,
) -> DomainResult<Result<OidcClientRecord, OAuthError>> {
    match auth {
        ClientAuth::Secret { client_id, secret } => {
            match oidc_clients::authenticate_client(tx, tenant, client_id, secret).await {
                Ok(client) => Ok(Ok(client)),
                Err(DomainError::OidcClientInvalid) => Ok(Err(OAuthError::invalid_client())),
                Err(error) => Err(error),
            }
        }
        ClientAuth::None { client_id } => match oidc_clients::read(tx, tenant, client_id).await {
            Ok(client) if client.kind == ClientKind::Public => Ok(Ok(client)),
            Ok(_) | Err(DomainError::OidcClientNotFound) => Ok(Err(OAuthError::invalid_client())),
            Err(error) => Err(error),
        },
    }
}

/// What redeeming a code issued.
pub struct CodeGrant {
    /// The client's new session.
    pub session: SessionRecord,
    /// Its refresh token.
    pub refresh_token: String,
    /// What the code stood for.
    pub code: CodeRecord,
    /// Who signed in.
    pub user: UserRecord,
}

impl std::fmt::Debug for CodeGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeGrant")
            .field("session_id", &self.session.session_id)
            .finish_non_exhaustive()
    }
}

/// Redeems `code` for `client`: checks it (a replay revokes what it issued: commit this
/// transaction also when refused), then opens the client's session for the user, who must
/// still be allowed to sign in and still hold the browser session the code came from.
#[allow(clippy::too_many_arguments)]
pub async fn redeem_code(
    tx: &Transaction,
    context: &Context,
    tenant: &TenantState,
    client: &OidcClientRecord,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
    info: &ClientInfo,
) -> DomainResult<Result<CodeGrant, OAuthError>> {
    let tenant_id = tenant.tenant_id();
    let checked = codes::check(
        tx,
        context,
        tenant_id,
        code,
        &client.client_id,
        redirect_uri,
        verifier,
    )
    .await?;
    let Ok(redeemable) = checked else {
        return Ok(Err(OAuthError::invalid_grant()));
    };
    let record = redeemable.record.clone();
    let now = context.now();
    let user = match users::read_user(tx, tenant_id, record.user_id).await {
        Ok(user) if user.ensure_may_sign_in().is_ok() => user,
        Ok(_) | Err(DomainError::UserNotFound) => return Ok(Err(OAuthError::invalid_grant())),
        Err(error) => return Err(error),
    };
    let browser = sessions::find_session(tx, tenant_id, record.browser_session_id).await?;
    let Some(browser) = browser.filter(|browser| browser.is_active(now)) else {
        return Ok(Err(OAuthError::invalid_grant()));
    };
    let settings = &tenant.record.settings;
    let enrol = browser.mfa_enrolment_required;
    let (mut session, refresh_token) = sessions::create_session(
        tx,
        context,
        tenant_id,
        settings,
        user.user_id,
        info,
        &[],
        enrol,
    )?;
    session.amr = record.amr.clone();
    session.auth_time = Some(record.auth_time);
    session.oidc = Some(OidcGrant {
        client_id: client.client_id.clone(),
        scopes: record.scopes.clone(),
    });
    sessions::write_session(tx, tenant_id, &session)?;
    redeemable.redeem(tx, now, session.session_id)?;
    Ok(Ok(CodeGrant {
        session,
        refresh_token,
        code: record,
        user,
    }))
}
