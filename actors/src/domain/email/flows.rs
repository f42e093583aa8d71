//! The email flows as transaction functions: sending a code and link (verification, password
//! reset, sign-in), redeeming them, changing a password, and the notices that follow. Every
//! message is written to the outbox in the transaction of the change that causes it.
//!
//! Sending answers the same whether or not the address belongs to a user: the send limits are
//! spent either way, and only a real recipient gets a message.

use gatehouse_storage::Transaction;
use serde_json::json;
use url::Url;
use uuid::Uuid;

use super::codes::{self, CodePurpose, IssuedCode, Redemption};
use super::templates::TemplateVars;
use super::{EmailKind, outbox, template_store};
use crate::context::Context;
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::crypto::MasterKey;
use crate::domain::outbox::EventType;
use crate::domain::sessions::{self, AuthMethod, ClientInfo, RevocationReason};
use crate::domain::sign_in::{self, SignInOutcome};
use crate::domain::tenants::TenantState;
use crate::domain::users::emails::AddressOf;
use crate::domain::users::{self, Email, NewUser, UserRecord, UserState};
use crate::error::DomainResult;

/// Query parameter that carries the link token in emailed links.
pub const LINK_TOKEN_PARAM: &str = "token";

/// What every flow needs from the node: time, randomness and the key that seals and MACs.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    /// Clock and randomness.
    pub context: &'a Context,
    /// Seals bodies, MACs codes.
    pub master_key: &'a MasterKey,
}

/// Renders the tenant's template of `kind` and writes the message to the outbox.
pub async fn compose(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    kind: EmailKind,
    to: &str,
    vars: &TemplateVars,
) -> DomainResult<outbox::EmailDelivery> {
    let rendered = template_store::render_for(tx, tenant.tenant_id(), kind, vars).await?;
    outbox::enqueue(
        tx,
        keys.context,
        keys.master_key,
        tenant,
        kind,
        to,
        rendered,
    )
}

/// The variables every message of a user fills.
pub fn base_vars(
    tenant: &TenantState,
    user: Option<&UserRecord>,
    to: &str,
    client: &ClientInfo,
) -> TemplateVars {
    TemplateVars {
        user_display_name: user
            .map(|user| user.display_name.clone())
            .unwrap_or_default(),
        user_email: to.to_owned(),
        tenant_name: tenant.record.display_name.clone(),
        ip_address: client.ip_address.clone(),
        user_agent: client.user_agent.clone(),
        ..TemplateVars::default()
    }
}

/// How an invitation or a share names the user who sent it: the display name, else the
/// address.
pub fn inviter_name(user: &UserRecord) -> String {
    if user.display_name.is_empty() {
        user.email.clone()
    } else {
        user.display_name.clone()
    }
}

/// `redirect` with the link token appended as a query parameter.
pub fn link_with_token(redirect: &Url, token: &str) -> String {
    let mut link = redirect.clone();
    link.query_pairs_mut().append_pair(LINK_TOKEN_PARAM, token);
    link.to_string()
}

/// Mails a "new sign-in" notice when the tenant wants them and none of the user's sessions
/// (live or ended) came from this source address with this user agent. Call it before the
/// new session is created, in the sign-in's transaction.
pub async fn notify_new_sign_in(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    user: &UserRecord,
    client: &ClientInfo,
) -> DomainResult<bool> {
    if !tenant.record.settings.email.new_sign_in_notice {
        return Ok(false);
    }
    let tenant_id = tenant.tenant_id();
    let known = sessions::list_user_sessions(tx, keys.context, tenant_id, user.user_id, true)
        .await?
        .iter()
        .any(|session| {
            session.ip_address == client.ip_address && session.user_agent == client.user_agent
        });
    if known {
        return Ok(false);
    }
    let vars = base_vars(tenant, Some(user), &user.email, client);
    compose(tx, keys, tenant, EmailKind::NewSignIn, &user.email, &vars).await?;
    Ok(true)
}

/// A token of the same shape as a link token, for a message that is sealed and dropped.
fn decoy_token(context: &Context) -> String {
    format!(
        "{}{}",
        codes::LINK_TOKEN_PREFIX,
        crate::domain::crypto::base64url(&context.random::<32>())
    )
}

/// A request to send a code and link.
#[derive(Debug, Clone)]
pub struct CodeRequest<'a> {
    /// What the code is for.
    pub purpose: CodePurpose,
    /// The address asked for.
    pub email: &'a Email,
    /// Where the link leads (already checked against the trusted domains); no link without.
    pub redirect: Option<&'a Url>,
    /// Who asked.
    pub client: &'a ClientInfo,
    /// For sign-in: whether an unknown address may sign up with the code.
    pub allow_sign_up: bool,
}

/// Sends a code and link for `request.purpose` to the address when it should get one: a user
/// with that address who may use it (active; for verification, not yet verified), or an
/// unknown address when sign-in may sign up. Spends the send allowance of the address and the
/// source first, in every case.
pub async fn send_code(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    request: &CodeRequest<'_>,
) -> DomainResult<bool> {
    let tenant_id = tenant.tenant_id();
    let settings = &tenant.record.settings.email;
    let address = request.email.normalized.as_str();
    codes::spend_send_allowance(
        tx,
        keys.context,
        tenant_id,
        settings,
        address,
        &request.client.ip_address,
    )
    .await?;
    let user = users::find_user_by_email(tx, tenant_id, address).await?;
    let recipient =
        match (&user, request.purpose) {
            (Some(user), _) if user.state != UserState::Active => None,
            // Verification goes to any unverified address of the user.
            (Some(user), CodePurpose::Verification) => match user.address(address) {
                AddressOf::Primary { verified: false }
                | AddressOf::Secondary { verified: false } => Some(Some(user.user_id)),
                _ => None,
            },
            // Resets and sign-in go to the primary address only.
            (Some(user), _) => matches!(user.address(address), AddressOf::Primary { .. })
                .then_some(Some(user.user_id)),
            (None, CodePurpose::SignIn) if request.allow_sign_up => Some(None),
            (None, _) => None,
        };
    let kind = match request.purpose {
        CodePurpose::Verification => EmailKind::Verification,
        CodePurpose::PasswordReset => EmailKind::PasswordReset,
        CodePurpose::SignIn => EmailKind::SignInCode,
    };
    let Some(user_id) = recipient else {
        // Render and seal a message as if the address had a user, then drop it: the answer's
        // timing must not tell whether it has one.
        let vars = TemplateVars {
            code: "000000".to_owned(),
            link: request
                .redirect
                .map(|redirect| link_with_token(redirect, &decoy_token(keys.context)))
                .unwrap_or_default(),
            expires_in_minutes: settings.code_ttl_seconds.div_ceil(60),
            ..base_vars(tenant, None, &request.email.display, request.client)
        };
        let rendered = template_store::render_for(tx, tenant_id, kind, &vars).await?;
        let to = request.email.display.as_str();
        outbox::seal(keys.context, keys.master_key, tenant, kind, to, rendered)?;
        return Ok(false);
    };
    let IssuedCode { code, token, .. } = codes::issue(
        tx,
        keys.context,
        keys.master_key,
        tenant_id,
        settings,
        request.purpose,
        address,
        user_id,
    )
    .await?;
    // A user's own address as stored, never the variant that was typed.
    let to = user
        .as_ref()
        .and_then(|user| user.stored_address(address))
        .unwrap_or(request.email.display.as_str());
    let vars = TemplateVars {
        code,
        link: request
            .redirect
            .map(|redirect| link_with_token(redirect, &token))
            .unwrap_or_default(),
        expires_in_minutes: settings.code_ttl_seconds.div_ceil(60),
        ..base_vars(tenant, user.as_ref(), to, request.client)
    };
    compose(tx, keys, tenant, kind, to, &vars).await?;
    Ok(true)
}

/// A code (with the address it was sent to) or a link token.
#[derive(Debug, Clone, Copy)]
pub enum Proof<'a> {
    /// The six digits and the normalised address.
    Code {
        /// Normalised address.
        address: &'a str,
        /// The digits.
        code: &'a str,
    },
    /// The token from the link.
    Token(&'a str),
}

/// Redeems `proof` for `purpose`.
pub async fn redeem(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    purpose: CodePurpose,
    proof: Proof<'_>,
) -> DomainResult<Redemption> {
    let tenant_id = tenant.tenant_id();
    match proof {
        Proof::Code { address, code } => {
            let max = tenant.record.settings.email.code_max_attempts;
            codes::redeem_code(
                tx,
                keys.context,
                keys.master_key,
                tenant_id,
                purpose,
                address,
                code,
                max,
            )
            .await
        }
        Proof::Token(token) => {
            codes::redeem_token(tx, keys.context, tenant_id, purpose, token).await
        }
    }
}

/// The user a valid code belongs to, if it still has the address the code was sent to (as
/// its primary address, or for verification any of its addresses).
async fn code_user(
    tx: &Transaction,
    tenant: &str,
    record: &codes::CodeRecord,
) -> DomainResult<Option<UserRecord>> {
    let Some(user_id) = record.user_id else {
        return Ok(None);
    };
    Ok(users::find_user(tx, tenant, user_id)
        .await?
        .filter(|user| holds(user, record)))
}

fn holds(user: &UserRecord, record: &codes::CodeRecord) -> bool {
    match user.address(&record.address) {
        AddressOf::Primary { .. } => true,
        AddressOf::Secondary { .. } => record.purpose == CodePurpose::Verification,
        AddressOf::None => false,
    }
}

fn mark_verified(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user: &mut UserRecord,
    address: &str,
) -> DomainResult<bool> {
    if !user.mark_address_verified(address) {
        return Ok(false);
    }
    user.updated_at = context.now();
    user.version += 1;
    users::write_user(tx, tenant, user)?;
    Ok(true)
}

/// Verifies a user's email with a code or link; `None` when the proof is not valid (a wrong
/// try was counted: commit the transaction, then answer `INVALID_CODE`).
pub async fn verify_email(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    proof: Proof<'_>,
    origin: &AuditOrigin,
) -> DomainResult<Option<UserRecord>> {
    let tenant_id = tenant.tenant_id();
    let Redemption::Valid(record) =
        redeem(tx, keys, tenant, CodePurpose::Verification, proof).await?
    else {
        return Ok(None);
    };
    let Some(mut user) = code_user(tx, tenant_id, &record).await? else {
        return Ok(None);
    };
    if mark_verified(tx, keys.context, tenant_id, &mut user, &record.address)? {
        let audit = origin.event(
            AuditAction::UserVerifyEmail,
            format!("user:{}", user.user_id),
            json!({}),
        );
        record_change(
            tx,
            keys.context,
            tenant_id,
            Some(audit),
            [(EventType::UserUpdated, user.event_data())],
        )
        .await?;
    }
    Ok(Some(user))
}

/// Sets a new password (already hashed) and revokes every session of the user except `keep`,
/// audited, with a "password changed" notice.
#[allow(clippy::too_many_arguments)]
pub async fn set_password(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    user: &mut UserRecord,
    password_hash: &str,
    keep: Option<Uuid>,
    action: AuditAction,
    origin: &AuditOrigin,
    client: &ClientInfo,
) -> DomainResult<u32> {
    let tenant_id = tenant.tenant_id();
    user.ensure_may_sign_in()?;
    user.password_hash = Some(password_hash.to_owned());
    user.updated_at = keys.context.now();
    user.version += 1;
    users::write_user(tx, tenant_id, user)?;
    let reason = RevocationReason::PasswordChanged;
    let revoked =
        sessions::revoke_user_sessions(tx, keys.context, tenant_id, user.user_id, reason, keep)
            .await?;
    let audit = origin.event(
        action,
        format!("user:{}", user.user_id),
        json!({ "revoked_sessions": revoked }),
    );
    record_change(
        tx,
        keys.context,
        tenant_id,
        Some(audit),
        [(EventType::UserUpdated, user.event_data())],
    )
    .await?;
    let to = user.email.clone();
    let vars = base_vars(tenant, Some(user), &to, client);
    compose(tx, keys, tenant, EmailKind::PasswordChanged, &to, &vars).await?;
    Ok(revoked)
}

/// Resets a password with a code or link: every session is revoked and the address counts as
/// verified. `None` when the proof is not valid (commit, then answer `INVALID_CODE`).
pub async fn reset_password(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    proof: Proof<'_>,
    password_hash: &str,
    client: &ClientInfo,
) -> DomainResult<Option<UserRecord>> {
    let tenant_id = tenant.tenant_id();
    let Redemption::Valid(record) =
        redeem(tx, keys, tenant, CodePurpose::PasswordReset, proof).await?
    else {
        return Ok(None);
    };
    let Some(mut user) = code_user(tx, tenant_id, &record).await? else {
        return Ok(None);
    };
    mark_verified(tx, keys.context, tenant_id, &mut user, &record.address)?;
    let origin = AuditOrigin {
        actor: format!("user:{}", user.user_id),
        source_ip: client.ip_address.clone(),
    };
    set_password(
        tx,
        keys,
        tenant,
        &mut user,
        password_hash,
        None,
        AuditAction::UserResetPassword,
        &origin,
        client,
    )
    .await?;
    Ok(Some(user))
}

/// Signs in (or, for a code sent to an unknown address, signs up) with a code or link; the
/// address counts as verified. `None` when the proof is not valid.
pub async fn sign_in_with_code(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    proof: Proof<'_>,
    client: &ClientInfo,
) -> DomainResult<Option<SignInOutcome>> {
    sign_in_with_code_as(tx, keys, tenant, proof, client, None).await
}

/// [`sign_in_with_code`] for a caller signed in as the anonymous user `anonymous`: an
/// address without a user upgrades that user in place (verified) instead of signing up a
/// new one; an address that has a user signs in as that user (the anonymous one is left to
/// expire).
pub async fn sign_in_with_code_as(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    proof: Proof<'_>,
    client: &ClientInfo,
    anonymous: Option<uuid::Uuid>,
) -> DomainResult<Option<SignInOutcome>> {
    let tenant_id = tenant.tenant_id();
    let Redemption::Valid(record) = redeem(tx, keys, tenant, CodePurpose::SignIn, proof).await?
    else {
        return Ok(None);
    };
    let existing = match record.user_id {
        Some(_) => match code_user(tx, tenant_id, &record).await? {
            Some(user) => Some(user),
            None => return Ok(None),
        },
        // Signed up since the code was sent: that user owns the address if it is their
        // primary one (an address added as someone's secondary does not sign in as them).
        None => match users::find_user_by_email(tx, tenant_id, &record.address).await? {
            Some(user) if holds(&user, &record) => Some(user),
            Some(_) => return Ok(None),
            None => None,
        },
    };
    let signed_up = existing.is_none();
    let method = AuthMethod::EmailCode;
    let (user_id, outcome) = match (existing, anonymous) {
        (Some(mut user), _) => {
            mark_verified(tx, keys.context, tenant_id, &mut user, &record.address)?;
            notify_new_sign_in(tx, keys, tenant, &user, client).await?;
            let user_id = user.user_id;
            let context = keys.context;
            let outcome =
                sign_in::sign_in(tx, context, tenant, user_id, None, client, method).await?;
            (user_id, outcome)
        }
        (None, Some(user_id)) => {
            let upgrade = users::anonymous::Upgrade {
                email: users::parse_email(&record.address)?,
                email_verified: true,
                password_hash: None,
                display_name: None,
            };
            let origin = AuditOrigin {
                actor: format!("user:{user_id}"),
                source_ip: client.ip_address.clone(),
            };
            let settings = &tenant.record.settings;
            let context = keys.context;
            let user = users::anonymous::upgrade_anonymous(
                tx, context, tenant_id, settings, user_id, upgrade, &origin,
            )
            .await?;
            let enrol = crate::domain::factors::enrolment_due(settings, &user, context.now());
            let session =
                sign_in::start_session(tx, context, tenant, user, client, &[method], enrol).await?;
            (user_id, SignInOutcome::Session(Box::new(session)))
        }
        (None, None) => {
            let email = users::parse_email(&record.address)?;
            let new_user = NewUser {
                email,
                display_name: String::new(),
                password_hash: None,
                email_verified: true,
            };
            let session =
                sign_in::sign_up(tx, keys.context, tenant, new_user, client, method).await?;
            (
                session.user.user_id,
                SignInOutcome::Session(Box::new(session)),
            )
        }
    };
    let origin = AuditOrigin {
        actor: format!("user:{user_id}"),
        source_ip: client.ip_address.clone(),
    };
    let (target, mfa_required) = match &outcome {
        SignInOutcome::Session(session) => {
            (format!("session:{}", session.session.session_id), false)
        }
        SignInOutcome::MfaRequired(_) => (format!("user:{user_id}"), true),
    };
    let audit = origin.event(
        AuditAction::UserSignInCode,
        target,
        json!({ "signed_up": signed_up, "mfa_required": mfa_required }),
    );
    record_change(tx, keys.context, tenant_id, Some(audit), []).await?;
    Ok(Some(outcome))
}
