//! Gatehouse as an OpenID provider: the token endpoint (authorization code with PKCE, and
//! refresh with the same rotation, reuse detection and grace window as `RefreshSession`),
//! userinfo, revocation (RFC 7009) and introspection (RFC 7662). Authorization itself starts
//! in the browser (`authorize_code`). Every answer about a token reads storage (or the
//! liveness cache every user call uses), so a revocation is in force on every node.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::crypto::constant_time_eq;
use crate::domain::oidc::OAuthError;
use crate::domain::oidc::id_token::{IdTokenClaims, ScopedClaims};
use crate::domain::oidc::token::{self, ClientAuth};
use crate::domain::oidc_clients::ClientKind;
use crate::domain::sessions::{self, ClientInfo, RefreshToken, RevocationReason, SessionRecord};
use crate::domain::sign_in::token_permissions;
use crate::domain::signing::AccessClaims;
use crate::domain::tenants::TenantState;
use crate::domain::users::{self, UserRecord};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::session_actor::{RefreshSession, RevokeSession};

/// A token request's form fields (RFC 6749 §4.1.3, §6).
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// `authorization_code` or `refresh_token`.
    pub grant_type: String,
    /// The authorization code.
    pub code: Option<String>,
    /// The redirect URI of the authorization request.
    pub redirect_uri: Option<String>,
    /// The PKCE verifier.
    pub code_verifier: Option<String>,
    /// The refresh token.
    pub refresh_token: Option<String>,
}

/// A token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
pub struct TokenReply {
    /// The access token (a Gatehouse JWT for the client's session).
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The rotated refresh token.
    pub refresh_token: String,
    /// The ID token.
    pub id_token: String,
    /// The granted scopes, space separated.
    pub scope: String,
}

impl std::fmt::Debug for TokenReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReply")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// ID tokens live as long as access tokens.
fn id_token_ttl(tenant: &TenantState) -> u32 {
    tenant.record.settings.access_token_ttl_seconds
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OAuthError> {
    value
        .as_deref()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| OAuthError::new("invalid_request", format!("{name} is missing")))
}

impl Gatehouse {
    /// The token endpoint.
    pub async fn oidc_token(
        &self,
        tenant_id: &str,
        auth: &ClientAuth,
        request: &TokenRequest,
        info: &ClientInfo,
    ) -> DomainResult<Result<TokenReply, OAuthError>> {
        let tenant = self.services.tenant(tenant_id).await?;
        match request.grant_type.as_str() {
            "authorization_code" => self.code_grant(&tenant, auth, request, info).await,
            "refresh_token" => self.refresh_grant(&tenant, auth, request).await,
            "" => Ok(Err(OAuthError::new(
                "invalid_request",
                "grant_type is missing",
            ))),
            _ => Ok(Err(OAuthError::new(
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            ))),
        }
    }

    async fn code_grant(
        &self,
        tenant: &TenantState,
        auth: &ClientAuth,
        request: &TokenRequest,
        info: &ClientInfo,
    ) -> DomainResult<Result<TokenReply, OAuthError>> {
        let fields = (|| {
            Ok::<_, OAuthError>((
                required(&request.code, "code")?,
                required(&request.redirect_uri, "redirect_uri")?,
                required(&request.code_verifier, "code_verifier")?,
            ))
        })();
        let (code, redirect_uri, verifier) = match fields {
            Ok(fields) => fields,
            Err(error) => return Ok(Err(error)),
        };
        let (services, tenant_id) = (&self.services, tenant.tenant_id());
        let granted = services
            .db
            .run(|tx| async move {
                let client = match token::authenticate(&tx, tenant_id, auth).await? {
                    Ok(client) => client,
                    Err(error) => return Ok::<_, DomainError>(Err(error)),
                };
                let context = &services.context;
                let grant = token::redeem_code(
                    &tx,
                    context,
                    tenant,
                    &client,
                    code,
                    redirect_uri,
                    verifier,
                    info,
                )
                .await?;
                let grant = match grant {
                    Ok(grant) => grant,
                    Err(error) => return Ok(Err(error)),
                };
                let perms = token_permissions(&tx, tenant, grant.user.user_id).await?;
                Ok(Ok((grant, perms)))
            })
            .await?;
        let (grant, perms) = match granted {
            Ok(granted) => granted,
            Err(error) => {
                metrics::counter!("gatehouse_oidc_token_refusals_total", "error" => error.error)
                    .increment(1);
                return Ok(Err(error));
            }
        };
        let reply = self.token_reply(
            tenant,
            &grant.session,
            &grant.user,
            grant.refresh_token,
            grant.code.nonce.clone(),
            perms,
        )?;
        metrics::counter!("gatehouse_oidc_tokens_issued_total", "grant" => "authorization_code")
            .increment(1);
        Ok(Ok(reply))
    }

    async fn refresh_grant(
        &self,
        tenant: &TenantState,
        auth: &ClientAuth,
        request: &TokenRequest,
    ) -> DomainResult<Result<TokenReply, OAuthError>> {
        let text = match required(&request.refresh_token, "refresh_token") {
            Ok(text) => text,
            Err(error) => return Ok(Err(error)),
        };
        let Ok(token) = RefreshToken::parse(text) else {
            return Ok(Err(OAuthError::invalid_grant()));
        };
        let (services, tenant_id) = (&self.services, tenant.tenant_id());
        let session_id = token.session_id;
        // The session's client is fixed at its creation: checked before the token is spent,
        // so another client presenting it changes nothing.
        let owned = services
            .db
            .run(|tx| async move {
                let client = match token::authenticate(&tx, tenant_id, auth).await? {
                    Ok(client) => client,
                    Err(error) => return Ok(Err(error)),
                };
                let session = sessions::find_session(&tx, tenant_id, session_id).await?;
                Ok::<_, DomainError>(Ok(held_by(session, &client.client_id)))
            })
            .await?;
        match owned {
            Err(error) => return Ok(Err(error)),
            Ok(None) => return Ok(Err(OAuthError::invalid_grant())),
            Ok(Some(_)) => {}
        }
        let refreshed = self
            .route(RefreshSession {
                tenant: tenant_id.to_owned(),
                token,
            })
            .await;
        let refreshed = match refreshed {
            Ok(refreshed) => refreshed,
            Err(
                DomainError::InvalidRefreshToken
                | DomainError::RefreshTokenReused
                | DomainError::SessionRevoked
                | DomainError::SessionExpired
                | DomainError::UserSuspended
                | DomainError::UserBanned
                | DomainError::UserNotFound,
            ) => return Ok(Err(OAuthError::invalid_grant())),
            Err(error) => return Err(error),
        };
        let user_id = refreshed.session.user_id;
        let user = services
            .db
            .run(|tx| async move { users::read_user(&tx, tenant_id, user_id).await })
            .await?;
        let (session, refresh_token) = (refreshed.session, refreshed.refresh_token);
        let mut reply = self.id_token_reply(tenant, &session, &user, refresh_token, None)?;
        reply.access_token = refreshed.access_token;
        reply.expires_in = refreshed
            .access_token_expires_at
            .as_unix_seconds()
            .saturating_sub(services.context.now().as_unix_seconds());
        metrics::counter!("gatehouse_oidc_tokens_issued_total", "grant" => "refresh_token")
            .increment(1);
        Ok(Ok(reply))
    }

    fn token_reply(
        &self,
        tenant: &TenantState,
        session: &SessionRecord,
        user: &UserRecord,
        refresh_token: String,
        nonce: Option<String>,
        perms: Option<Vec<String>>,
    ) -> DomainResult<TokenReply> {
        let mut reply = self.id_token_reply(tenant, session, user, refresh_token, nonce)?;
        let access =
            self.services
                .issue_access_token(tenant, session, perms, user.email_verified)?;
        reply.expires_in = access
            .expires_at
            .as_unix_seconds()
            .saturating_sub(self.services.context.now().as_unix_seconds());
        reply.access_token = access.token;
        Ok(reply)
    }

    /// A reply with the ID token and refresh token; the access token is filled in after.
    fn id_token_reply(
        &self,
        tenant: &TenantState,
        session: &SessionRecord,
        user: &UserRecord,
        refresh_token: String,
        nonce: Option<String>,
    ) -> DomainResult<TokenReply> {
        let grant = session
            .oidc
            .as_ref()
            .ok_or_else(|| DomainError::Internal("not an OpenID client's session".to_owned()))?;
        let now = self.services.context.now();
        let claims = IdTokenClaims::new(
            &tenant.issuer,
            grant,
            user,
            session,
            nonce,
            now,
            id_token_ttl(tenant),
        );
        Ok(TokenReply {
            access_token: String::new(),
            expires_in: 0,
            refresh_token,
            id_token: tenant.keys.sign_id_token(&claims)?,
            scope: grant.scopes.join(" "),
        })
    }

    /// Verifies `access_token` as one of the tenant's (signature, issuer, audience, expiry)
    /// whose session is live and whose user is active.
    async fn live_access_token(
        &self,
        tenant: &TenantState,
        access_token: &str,
    ) -> DomainResult<AccessClaims> {
        let now = self.services.context.now();
        let claims = tenant
            .keys
            .verify(access_token, &tenant.issuer, tenant.tenant_id(), now)?;
        self.ensure_live(tenant.tenant_id(), &claims).await?;
        Ok(claims)
    }

    /// The userinfo endpoint: `sub` and what the session's scopes release. A token of a
    /// session that is not an OpenID client's answers `sub` alone.
    pub async fn oidc_userinfo(&self, tenant_id: &str, access_token: &str) -> DomainResult<Value> {
        let tenant = self.services.tenant(tenant_id).await?;
        let claims = self.live_access_token(&tenant, access_token).await?;
        let session_id = super::parse_id("sid", &claims.sid)?;
        let user_id = super::parse_id("sub", &claims.sub)?;
        let (session, user) = self
            .services
            .db
            .run(|tx| async move {
                let session = sessions::find_session(&tx, tenant_id, session_id).await?;
                Ok::<_, DomainError>((session, users::read_user(&tx, tenant_id, user_id).await?))
            })
            .await?;
        let scopes = session
            .and_then(|session| session.oidc)
            .map(|grant| grant.scopes)
            .unwrap_or_default();
        let scoped = ScopedClaims::of(&user, &scopes);
        let mut info = json!({ "sub": claims.sub });
        if let Some(email) = scoped.email {
            info["email"] = json!(email);
            info["email_verified"] = json!(scoped.email_verified.unwrap_or(false));
        }
        if let Some(name) = scoped.name {
            info["name"] = json!(name);
        }
        Ok(info)
    }
}

/// The session an OpenID client's token belongs to, if it is that client's.
fn held_by(session: Option<SessionRecord>, client_id: &str) -> Option<SessionRecord> {
    session.filter(|session| session.is_held_by(client_id))
}

impl Gatehouse {
    /// The revocation endpoint (RFC 7009): a refresh or access token of the client's ends its
    /// session on every node. Tokens that are unknown, malformed or another client's are
    /// answered the same way (`Ok`), as the RFC asks.
    pub async fn oidc_revoke(
        &self,
        tenant_id: &str,
        auth: &ClientAuth,
        token_text: &str,
    ) -> DomainResult<Result<(), OAuthError>> {
        let tenant = self.services.tenant(tenant_id).await?;
        let session_id = if let Ok(token) = RefreshToken::parse(token_text) {
            Some(token.session_id)
        } else {
            let now = self.services.context.now();
            tenant
                .keys
                .verify(token_text, &tenant.issuer, tenant_id, now)
                .ok()
                .and_then(|claims| Uuid::try_parse(&claims.sid).ok())
        };
        let services = &self.services;
        let held = services
            .db
            .run(|tx| async move {
                let client = match token::authenticate(&tx, tenant_id, auth).await? {
                    Ok(client) => client,
                    Err(error) => return Ok(Err(error)),
                };
                let Some(session_id) = session_id else {
                    return Ok(Ok(None));
                };
                let session = sessions::find_session(&tx, tenant_id, session_id).await?;
                Ok::<_, DomainError>(Ok(held_by(session, &client.client_id)))
            })
            .await?;
        let session = match held {
            Err(error) => return Ok(Err(error)),
            Ok(None) => return Ok(Ok(())),
            Ok(Some(session)) => session,
        };
        self.end_client_session(tenant_id, session.session_id)
            .await?;
        Ok(Ok(()))
    }

    /// Ends a client's session through its actor (revocation, RP-initiated logout).
    pub(crate) async fn end_client_session(
        &self,
        tenant_id: &str,
        session_id: Uuid,
    ) -> DomainResult<()> {
        self.route(RevokeSession {
            tenant: tenant_id.to_owned(),
            session_id,
            reason: RevocationReason::SignOut,
            token: None,
            origin: crate::domain::audit::AuditOrigin::system(),
        })
        .await?;
        metrics::counter!("gatehouse_oidc_revocations_total").increment(1);
        Ok(())
    }

    /// The introspection endpoint (RFC 7662), for confidential clients: an access token of the
    /// tenant is active while it verifies and its session is live; a refresh token while it
    /// is the current one of a live session the client holds. Anything else is
    /// `{"active": false}`.
    pub async fn oidc_introspect(
        &self,
        tenant_id: &str,
        auth: &ClientAuth,
        token_text: &str,
    ) -> DomainResult<Result<Value, OAuthError>> {
        let tenant = self.services.tenant(tenant_id).await?;
        let services = &self.services;
        let client = services
            .db
            .run(|tx| async move { token::authenticate(&tx, tenant_id, auth).await })
            .await?;
        let client = match client {
            Ok(client) if client.kind == ClientKind::Confidential => client,
            Ok(_) => return Ok(Err(OAuthError::invalid_client())),
            Err(error) => return Ok(Err(error)),
        };
        let inactive = json!({ "active": false });
        if let Ok(token) = RefreshToken::parse(token_text) {
            let now = services.context.now();
            let session_id = token.session_id;
            let session = services
                .db
                .run(|tx| async move { sessions::find_session(&tx, tenant_id, session_id).await })
                .await?;
            let Some(session) = held_by(session, &client.client_id) else {
                return Ok(Ok(inactive));
            };
            let current = constant_time_eq(&session.refresh_token_hash, &token.hash);
            if !current || !session.is_active(now) {
                return Ok(Ok(inactive));
            }
            let scope = session.oidc.map(|grant| grant.scopes.join(" "));
            return Ok(Ok(json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": client.client_id,
                "sub": session.user_id.to_string(),
                "sid": session.session_id.to_string(),
                "scope": scope,
                "exp": session.expires_at.as_unix_seconds(),
                "iss": tenant.issuer,
            })));
        }
        let claims = match self.live_access_token(&tenant, token_text).await {
            Ok(claims) => claims,
            Err(DomainError::Storage(error)) => return Err(DomainError::Storage(error)),
            Err(_) => return Ok(Ok(inactive)),
        };
        let session = match Uuid::try_parse(&claims.sid) {
            Ok(session_id) => services
                .db
                .run(|tx| async move { sessions::find_session(&tx, tenant_id, session_id).await })
                .await?,
            Err(_) => None,
        };
        let grant = session.and_then(|session| session.oidc);
        Ok(Ok(json!({
            "active": true,
            "token_type": "Bearer",
            "client_id": grant.as_ref().map(|grant| grant.client_id.clone()),
            "scope": grant.map(|grant| grant.scopes.join(" ")),
            "sub": claims.sub,
            "sid": claims.sid,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "amr": claims.amr,
        })))
    }
}
