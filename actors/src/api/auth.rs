//! Password sign-up and sign-in, refresh and sign-out.

use crate::access::Caller;
use crate::domain::attempts::{self, Reservation};
use crate::domain::audit::AuditOrigin;
use crate::domain::email::flows::{self, Keys};
use crate::domain::passwords::{HashSource, validate_new_password, validate_password_input};
use crate::domain::sessions::{
    AuthMethod, ClientInfo, RefreshToken, Refreshed, RevocationReason, SessionRecord,
};
use crate::domain::sign_in::{self, NewSession, SignInOutcome};
use crate::domain::sign_up;
use crate::domain::tenants::TenantState;
use crate::domain::users::{
    self, NewUser, UserRecord, anonymous, parse_email, validate_user_display_name,
};
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::services::AccessToken;
use crate::runtime::session_actor::{RefreshSession, RevokeSession};

/// A new session with its tokens (`Debug` leaves the tokens out).
#[derive(Clone)]
pub struct SignedIn {
    /// The signed-in user.
    pub user: UserRecord,
    /// The new session.
    pub session: SessionRecord,
    /// Access token.
    pub access_token: AccessToken,
    /// First refresh token of the session.
    pub refresh_token: String,
    /// Names this device to later password sign-ins (password and MFA sign-ins set it).
    pub device_token: Option<String>,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("user_id", &self.user.user_id)
            .field("session_id", &self.session.session_id)
            .finish_non_exhaustive()
    }
}

/// What a password sign-up answers.
#[derive(Debug, Clone)]
pub enum SignedUp {
    /// The new user, signed in.
    SignedIn(Box<SignedIn>),
    /// The tenant protects sign-up from enumeration: no session and no user, whether the
    /// address was new (the user was created and sent a verification code) or taken (its
    /// owner was sent a notice).
    VerificationRequired,
}

impl SignedUp {
    /// The session, when the sign-up started one.
    pub fn into_signed_in(self) -> Option<SignedIn> {
        match self {
            SignedUp::SignedIn(signed_in) => Some(*signed_in),
            SignedUp::VerificationRequired => None,
        }
    }
}

impl Gatehouse {
    /// Creates a user with a password and signs it in; or, when the tenant protects sign-up
    /// from enumeration, answers the same for a taken address as for a new one. Client
    /// attempts are limited per tenant and source address.
    pub async fn sign_up_with_password(
        &self,
        caller: &Caller,
        email: &str,
        password: &str,
        display_name: &str,
        client: &ClientInfo,
    ) -> DomainResult<SignedUp> {
        let tenant = caller.tenant()?.clone();
        let from_client = matches!(caller, Caller::Client { .. });
        if from_client && !tenant.record.settings.password_sign_up_enabled {
            return Err(DomainError::PermissionDenied(
                "password sign-up is disabled for this tenant",
            ));
        }
        let source_key = format!("{}\u{0}{}", tenant.tenant_id(), client.ip_address);
        if from_client
            && !self
                .sign_ups_by_source
                .spend(&source_key, self.services.context.now())
        {
            metrics::counter!("gatehouse_sign_up_rate_limited_total").increment(1);
            return Err(DomainError::RateLimited);
        }
        let email = parse_email(email)?;
        validate_new_password(password)?;
        validate_user_display_name(display_name)?;
        // Hashed whether or not the address is taken: the answer's timing tells nothing.
        let source = HashSource::new(tenant.tenant_id(), &client.ip_address);
        let password_hash = self.services.hasher.hash(source, password).await?;
        let services = &self.services;
        let tenant_ref = &tenant;
        let anonymous_caller = self.anonymous_caller(caller)?;
        if from_client && anonymous_caller.is_none() && sign_up::protects(&tenant) {
            let keys = Keys {
                context: &services.context,
                master_key: &services.master_key,
            };
            let new_user = NewUser {
                email,
                display_name: display_name.trim().to_owned(),
                password_hash: Some(password_hash),
                email_verified: false,
            };
            let new_user = &new_user;
            let outcome = services
                .db
                .run(|tx| async move {
                    let new_user = new_user.clone();
                    sign_up::sign_up_quietly(&tx, keys, tenant_ref, new_user, client).await
                })
                .await?;
            let outcome = match outcome {
                sign_up::QuietSignUp::Created => "created",
                sign_up::QuietSignUp::Taken => "taken",
            };
            metrics::counter!("gatehouse_quiet_sign_ups_total", "outcome" => outcome).increment(1);
            return Ok(SignedUp::VerificationRequired);
        }
        if let Some(user_id) = anonymous_caller {
            // Signed in as an anonymous user: that user becomes this one, in place.
            let upgrade = anonymous::Upgrade {
                email,
                email_verified: false,
                password_hash: Some(password_hash),
                display_name: Some(display_name.trim().to_owned()),
            };
            let upgrade = &upgrade;
            let upgraded = services
                .db
                .run(|tx| async move {
                    let context = &services.context;
                    let upgrade = upgrade.clone();
                    anonymous::sign_up_in_place(&tx, context, tenant_ref, user_id, upgrade, client)
                        .await
                })
                .await?;
            metrics::counter!("gatehouse_sign_ups_total", "method" => "anonymous_upgrade")
                .increment(1);
            return Ok(SignedUp::SignedIn(Box::new(
                self.signed_in(&tenant, upgraded)?,
            )));
        }
        let signed_up = services
            .db
            .run(|tx| {
                let new_user = NewUser {
                    email: email.clone(),
                    display_name: display_name.trim().to_owned(),
                    password_hash: Some(password_hash.clone()),
                    email_verified: false,
                };
                async move {
                    sign_in::sign_up(
                        &tx,
                        &services.context,
                        tenant_ref,
                        new_user,
                        client,
                        AuthMethod::Password,
                    )
                    .await
                }
            })
            .await?;
        metrics::counter!("gatehouse_sign_ups_total", "method" => "password").increment(1);
        Ok(SignedUp::SignedIn(Box::new(
            self.signed_in(&tenant, signed_up)?,
        )))
    }

    /// Signs in with email and password. Unknown email and wrong password give the same
    /// error after the same work. Each attempt first reserves a slot of its limits in
    /// storage (`domain::attempts`), so concurrent guesses on any node never pass them; a
    /// right password gives the slots back. `device_token` (from an earlier sign-in of the
    /// user, may be empty) puts the attempt under its device's own limit.
    pub async fn sign_in_with_password(
        &self,
        caller: &Caller,
        email: &str,
        password: &str,
        device_token: &str,
        client: &ClientInfo,
    ) -> DomainResult<SignedIn> {
        let tenant = caller.tenant()?.clone();
        let email = parse_email(email)?;
        validate_password_input(password)?;
        let services = &self.services;
        let tenant_id = tenant.tenant_id();
        let normalized = email.normalized.as_str();
        let reserved = services
            .db
            .run(|tx| async move {
                let user = users::find_user_by_email(&tx, tenant_id, normalized).await?;
                let device = user.as_ref().and_then(|user| {
                    let key = &services.master_key;
                    attempts::verify_device_token(key, tenant_id, user.user_id, device_token)
                });
                let source = client.ip_address.as_str();
                let now = services.context.now();
                let slots = attempts::password_slots(tenant_id, normalized, device, source, now);
                let context = &services.context;
                let reservation =
                    attempts::reserve(&tx, context, tenant_id, &slots, user.as_ref(), source)
                        .await?;
                Ok::<_, DomainError>((user, device, slots, reservation))
            })
            .await?;
        let (user, device, slots, reservation) = reserved;
        if let Reservation::Refused {
            retry_after_seconds,
        } = reservation
        {
            return Err(DomainError::RateLimitedFor(retry_after_seconds));
        }
        metrics::counter!("gatehouse_password_checks_total").increment(1);
        let stored_hash = user.as_ref().and_then(|user| user.password_hash.as_deref());
        let source = HashSource::new(tenant_id, &client.ip_address);
        let verification = services
            .hasher
            .verify(source, password, stored_hash)
            .await?;
        let user = match user {
            // A secondary address is not a sign-in name.
            Some(user) if verification.matches && user.email_normalized == normalized => user,
            // The reserved slots stay spent.
            _ => {
                metrics::counter!("gatehouse_sign_in_failures_total").increment(1);
                return Err(DomainError::InvalidCredentials);
            }
        };
        user.ensure_may_sign_in()?;
        let new_hash = if verification.needs_rehash {
            metrics::counter!("gatehouse_password_rehashes_total").increment(1);
            Some(services.hasher.hash(source, password).await?)
        } else {
            None
        };
        let user_id = user.user_id;
        let new_hash = new_hash.as_deref();
        let tenant_ref = &tenant;
        let keys = Keys {
            context: &services.context,
            master_key: &services.master_key,
        };
        let (user_ref, slots) = (&user, &slots);
        let signed_in = services
            .db
            .run(|tx| async move {
                attempts::release(&tx, keys.context, slots).await?;
                flows::notify_new_sign_in(&tx, keys, tenant_ref, user_ref, client).await?;
                let method = AuthMethod::Password;
                sign_in::sign_in(
                    &tx,
                    keys.context,
                    tenant_ref,
                    user_id,
                    new_hash,
                    client,
                    method,
                )
                .await
            })
            .await?;
        let mut signed_in = self.signed_in_or_mfa(&tenant, signed_in, "password")?;
        signed_in.device_token = Some(match device {
            Some(device) => {
                attempts::device_token(&services.master_key, tenant_id, user_id, device)
            }
            None => self.new_device_token(tenant_id, user_id),
        });
        Ok(signed_in)
    }

    /// A token for a new device of `user_id`, for later password sign-ins.
    pub(crate) fn new_device_token(&self, tenant_id: &str, user_id: uuid::Uuid) -> String {
        let services = &self.services;
        attempts::new_device_token(&services.context, &services.master_key, tenant_id, user_id)
    }

    /// The session of a first factor that succeeded, or `MFA_REQUIRED` with its ticket.
    pub(crate) fn signed_in_or_mfa(
        &self,
        tenant: &TenantState,
        outcome: SignInOutcome,
        method: &'static str,
    ) -> DomainResult<SignedIn> {
        match outcome {
            SignInOutcome::Session(session) => {
                metrics::counter!("gatehouse_sign_ins_total", "method" => method).increment(1);
                self.signed_in(tenant, *session)
            }
            SignInOutcome::MfaRequired(challenge) => Err(DomainError::MfaRequired(challenge)),
        }
    }

    /// Signs the first access token of a new session.
    pub(crate) fn signed_in(
        &self,
        tenant: &TenantState,
        new: NewSession,
    ) -> DomainResult<SignedIn> {
        let NewSession {
            user,
            session,
            refresh_token,
            permissions,
        } = new;
        let access_token =
            self.services
                .issue_access_token(tenant, &session, permissions, user.email_verified)?;
        Ok(SignedIn {
            user,
            session,
            access_token,
            refresh_token,
            device_token: None,
        })
    }

    /// Spends a refresh token for a new pair, through the session's actor.
    pub async fn refresh_session(
        &self,
        caller: &Caller,
        refresh_token: &str,
    ) -> DomainResult<Refreshed> {
        let tenant = caller.tenant()?;
        let token = RefreshToken::parse(refresh_token)?;
        let result = self
            .route(RefreshSession {
                tenant: tenant.tenant_id().to_owned(),
                token,
            })
            .await;
        let outcome = match &result {
            Ok(_) => "rotated",
            Err(error) => error.code().as_str(),
        };
        metrics::counter!("gatehouse_refreshes_total", "outcome" => outcome).increment(1);
        result
    }

    /// Ends a session, named by its refresh token or by the caller's access token.
    pub async fn sign_out(&self, caller: &Caller, refresh_token: Option<&str>) -> DomainResult<()> {
        let (tenant, token, session_id) = match refresh_token.filter(|token| !token.is_empty()) {
            Some(text) => {
                let token = RefreshToken::parse(text)?;
                let session_id = token.session_id;
                (caller.tenant()?, Some(token), session_id)
            }
            None => {
                let (tenant, claims) = caller.require_user_even_restricted()?;
                (tenant, None, super::parse_id("sid", &claims.sid)?)
            }
        };
        self.route(RevokeSession {
            tenant: tenant.tenant_id().to_owned(),
            session_id,
            reason: RevocationReason::SignOut,
            token,
            origin: AuditOrigin::of(caller),
        })
        .await
        .map(|_| ())
    }
}
