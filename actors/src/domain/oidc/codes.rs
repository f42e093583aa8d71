//! Authorization codes (RFC 6749 §4.1.2, §10.5; RFC 7636): `gac_` and 256 random bits, stored
//! only as their SHA-256, valid for 60 seconds, bound to the client, the redirect URI and the
//! PKCE challenge. A code is redeemed once: the redemption records the session it issued,
//! and the same code presented again revokes that session (the code leaked).

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::authorize::AuthorizationRequest;
use crate::context::{Context, Timestamp};
use crate::domain::crypto::{base64url, constant_time_eq, random_token, sha256};
use crate::domain::keyspace;
use crate::domain::sessions::{self, RevocationReason};
use crate::error::{DomainError, DomainResult};

/// Prefix of authorization codes.
pub const CODE_PREFIX: &str = "gac_";
/// How long a code may be redeemed.
pub const CODE_TTL_MILLIS: i64 = 60_000;
/// How long a code's record is kept, so that a replay after its redemption is still
/// recognised (and revokes what it issued).
pub const CODE_KEPT_MILLIS: i64 = 600_000;
/// Forgotten records cleared by each new code.
const SWEEP_PER_ISSUE: usize = 8;

/// What a code stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    /// The client the code was issued to.
    pub client_id: String,
    /// The redirect URI of the request.
    pub redirect_uri: String,
    /// The S256 challenge the verifier must answer.
    pub code_challenge: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// The request's nonce, for the ID token.
    pub nonce: Option<String>,
    /// Who signed in, in which browser session, when and how.
    pub user_id: Uuid,
    /// The browser session they signed in with.
    pub browser_session_id: Uuid,
    /// When they signed in.
    pub auth_time: Timestamp,
    /// How they signed in.
    pub amr: Vec<String>,
    /// When the code was issued.
    pub created_at: Timestamp,
    /// Set by the redemption: the session the code issued.
    pub redeemed: Option<Redeemed>,
}

/// A code's redemption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redeemed {
    /// When.
    pub at: Timestamp,
    /// The session issued (or signed in with).
    pub session_id: Uuid,
}

/// Why a code is refused at the token endpoint: always `invalid_grant` on the wire; the
/// reason is for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    /// Not a code this tenant issued.
    Unknown,
    /// Older than [`CODE_TTL_MILLIS`].
    Expired,
    /// Issued to another client.
    OtherClient,
    /// Asked with another redirect URI.
    OtherRedirectUri,
    /// The PKCE verifier is missing, malformed or does not answer the challenge.
    WrongVerifier,
    /// Redeemed before; the session it issued is now revoked.
    Replayed,
}

/// Whether `verifier` answers the S256 `challenge`: 43 to 128 unreserved characters whose
/// SHA-256, base64url without padding, is the challenge (RFC 7636 §4.1, §4.6).
pub fn verifier_answers(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte));
    let computed = base64url(&sha256(verifier.as_bytes()));
    well_formed & constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

/// A browser session's sign-in, for [`issue`].
#[derive(Debug, Clone)]
pub struct SignedInBrowser {
    /// Who.
    pub user_id: Uuid,
    /// The browser's session.
    pub session_id: Uuid,
    /// When they signed in.
    pub auth_time: Timestamp,
    /// How.
    pub amr: Vec<String>,
}

/// Writes a new code for `request`, answered for the person signed in as `browser`, and
/// clears a few records past [`CODE_KEPT_MILLIS`].
pub async fn issue(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    request: &AuthorizationRequest,
    browser: &SignedInBrowser,
) -> DomainResult<String> {
    let code = random_token(context, CODE_PREFIX);
    let record = CodeRecord {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        scopes: request.scopes.clone(),
        nonce: request.nonce.clone(),
        user_id: browser.user_id,
        browser_session_id: browser.session_id,
        auth_time: browser.auth_time,
        amr: browser.amr.clone(),
        created_at: context.now(),
        redeemed: None,
    };
    let hash = sha256(code.as_bytes());
    tx.set(
        &keyspace::oidc_code(tenant, &hash),
        &codec::encode(&record)?,
    )?;
    let forget_at = Timestamp(record.created_at.0 + CODE_KEPT_MILLIS);
    tx.set(&keyspace::oidc_code_due(tenant, forget_at, &hash), &hash)?;
    sweep(tx, tenant, record.created_at, SWEEP_PER_ISSUE).await?;
    Ok(code)
}

/// Clears up to `limit` code records past their keeping time, oldest first (a snapshot read
/// and blind clears, so concurrent authorizations never conflict on it).
pub async fn sweep(
    tx: &Transaction,
    tenant: &str,
    now: Timestamp,
    limit: usize,
) -> DomainResult<usize> {
    let due = keyspace::oidc_code_due_subspace(tenant);
    let (begin, _) = due.range();
    let end = due.pack(&(now.0,));
    let options = RangeOptions {
        limit: Some(limit),
        snapshot: true,
        ..RangeOptions::default()
    };
    let entries = tx.get_range(&begin, &end, options).await?;
    for (key, hash) in &entries {
        tx.clear(key)?;
        tx.clear(&keyspace::oidc_code(tenant, hash))?;
    }
    Ok(entries.len())
}

/// A code ready to be redeemed: record the session it issues with [`Redeemable::redeem`] in
/// the same transaction.
#[derive(Debug)]
pub struct Redeemable {
    key: Vec<u8>,
    /// What the code stands for.
    pub record: CodeRecord,
}

impl Redeemable {
    /// Spends the code for `session_id`, the session its tokens belong to.
    pub fn redeem(
        mut self,
        tx: &Transaction,
        now: Timestamp,
        session_id: Uuid,
    ) -> DomainResult<()> {
        self.record.redeemed = Some(Redeemed {
            at: now,
            session_id,
        });
        tx.set(&self.key, &codec::encode(&self.record)?)?;
        Ok(())
    }
}

/// Checks `code` for `client_id` at `redirect_uri` with the PKCE `verifier`. A replayed code
/// revokes the session its first redemption issued, in this transaction (commit it also when
/// refused). A wrong verifier spends the code.
pub async fn check(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    code: &str,
    client_id: &str,
    redirect_uri: &str,
    verifier: &str,
) -> DomainResult<Result<Redeemable, CodeRefusal>> {
    if !code.starts_with(CODE_PREFIX) {
        return Ok(Err(CodeRefusal::Unknown));
    }
    let key = keyspace::oidc_code(tenant, &sha256(code.as_bytes()));
    let Some(bytes) = tx.get(&key).await? else {
        return Ok(Err(CodeRefusal::Unknown));
    };
    let record: CodeRecord = codec::decode(&bytes)?;
    if record.client_id != client_id {
        return Ok(Err(CodeRefusal::OtherClient));
    }
    if let Some(redeemed) = record.redeemed {
        let reason = RevocationReason::AuthorizationCodeReused;
        match sessions::revoke_session(tx, context, tenant, redeemed.session_id, reason).await {
            Ok(_) | Err(DomainError::SessionNotFound) => {}
            Err(error) => return Err(error),
        }
        metrics::counter!("gatehouse_oidc_code_replays_total").increment(1);
        return Ok(Err(CodeRefusal::Replayed));
    }
    let now = context.now();
    if now.millis_since(record.created_at) > CODE_TTL_MILLIS {
        tx.clear(&key)?;
        return Ok(Err(CodeRefusal::Expired));
    }
    if record.redirect_uri != redirect_uri {
        return Ok(Err(CodeRefusal::OtherRedirectUri));
    }
    if !verifier_answers(verifier, &record.code_challenge) {
        tx.clear(&key)?;
        return Ok(Err(CodeRefusal::WrongVerifier));
    }
    Ok(Ok(Redeemable { key, record }))
}
