//! Passkeys with webauthn-rs: the tenant's relying party, registration and sign-in
//! ceremonies, and the stored credentials.
//!
//! A ceremony's state is written to storage under a random id, so any node can finish a
//! ceremony another began; it lives five minutes and any finish spends it. Every sign-in runs
//! as a discoverable-credential ceremony whose options list the user's credentials when an
//! email was given (a decoy credential for an address without passkeys, so the answer does
//! not tell whether the address has an account); the credential is found by its id in the
//! tenant's credential index. webauthn-rs requires user verification, checks the origin, RP
//! ID, challenge and signature, and refuses a signature counter that did not move forward.

use std::time::Duration;

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Credential, DiscoverableAuthentication, Passkey,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Webauthn, WebauthnBuilder,
};

use crate::context::{Context, Timestamp};
use crate::domain::crypto::MasterKey;
use crate::domain::keyspace;
use crate::domain::tenants::TenantState;
use crate::domain::users::{self, UserRecord};
use crate::error::{DomainError, DomainResult};

/// How long a begun ceremony may be finished.
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);
/// Most passkeys one user may hold.
pub const MAX_PASSKEYS_PER_USER: usize = 20;
/// Longest passkey name.
const MAX_NAME_CHARS: usize = 64;
/// Largest credential or assertion JSON accepted.
const MAX_CREDENTIAL_JSON_BYTES: usize = 16 * 1024;

/// A stored passkey.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasskeyRecord {
    /// Its id.
    pub passkey_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// A name the user chose.
    pub name: String,
    /// The credential id.
    #[serde(with = "serde_bytes")]
    pub credential_id: Vec<u8>,
    /// The webauthn-rs credential, as its JSON.
    pub passkey_json: String,
    /// The signature counter last seen.
    pub counter: u32,
    /// Whether the credential may be backed up (synced).
    pub backup_eligible: bool,
    /// Whether it is backed up.
    pub backup_state: bool,
    /// Registration time.
    pub created_at: Timestamp,
    /// Last sign-in.
    pub last_used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum CeremonyKind {
    Registration { user_id: Uuid },
    SignIn { expected_user: Option<Uuid> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CeremonyRecord {
    kind: CeremonyKind,
    /// webauthn-rs state, as its JSON.
    state_json: String,
    expires_at: Timestamp,
}

/// A begun ceremony: its id and the options for `navigator.credentials.create|get`.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// Pass back to the finish call.
    pub ceremony_id: Uuid,
    /// `{"publicKey": {...}}`, standard WebAuthn JSON.
    pub options_json: String,
}

/// A passkey that just signed a user in.
#[derive(Debug, Clone)]
pub struct UsedPasskey {
    /// The user.
    pub user_id: Uuid,
    /// The passkey.
    pub passkey_id: Uuid,
}

fn internal(what: &str) -> impl FnOnce(serde_json::Error) -> DomainError + '_ {
    move |error| DomainError::Internal(format!("{what}: {error}"))
}

/// The tenant's relying party, refused when the tenant turned passkeys off.
pub fn relying_party(tenant: &TenantState) -> DomainResult<Webauthn> {
    let settings = &tenant.record.settings;
    if !settings.passkeys.enabled {
        return Err(DomainError::PermissionDenied(
            "passkeys are disabled for this tenant",
        ));
    }
    let rp = settings
        .passkeys
        .relying_party(&settings.trusted_domains, &tenant.record.display_name);
    let misconfigured = |_| {
        DomainError::invalid(
            "passkeys.rp_id",
            "the tenant's passkey RP ID must be the host of its origins or a parent domain of it",
        )
    };
    let first = rp
        .origins
        .first()
        .cloned()
        .or_else(|| Url::parse("http://localhost").ok())
        .ok_or_else(|| DomainError::Internal("no passkey origin".to_owned()))?;
    let mut builder = WebauthnBuilder::new(&rp.rp_id, &first)
        .map_err(misconfigured)?
        .rp_name(&rp.rp_name)
        .allow_subdomains(rp.allow_subdomains)
        .allow_any_port(rp.allow_any_port)
        .timeout(CEREMONY_TTL);
    for origin in rp.origins.iter().skip(1) {
        builder = builder.append_allowed_origin(origin);
    }
    builder.build().map_err(misconfigured)
}

async fn write_ceremony(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    kind: CeremonyKind,
    state_json: String,
) -> DomainResult<Uuid> {
    let ceremony_id = uuid::Builder::from_random_bytes(context.random::<16>()).into_uuid();
    let record = CeremonyRecord {
        kind,
        state_json,
        expires_at: context.now().plus(CEREMONY_TTL),
    };
    tx.set(
        &keyspace::passkey_ceremony(tenant, ceremony_id),
        &codec::encode(&record)?,
    )?;
    Ok(ceremony_id)
}

/// Reads and spends a ceremony; unknown or expired is `None`.
async fn take_ceremony(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    ceremony_id: Uuid,
) -> DomainResult<Option<CeremonyRecord>> {
    let key = keyspace::passkey_ceremony(tenant, ceremony_id);
    let Some(bytes) = tx.get(&key).await? else {
        return Ok(None);
    };
    tx.clear(&key)?;
    let record: CeremonyRecord = codec::decode(&bytes)?;
    Ok((context.now() < record.expires_at).then_some(record))
}

/// A user's passkeys, oldest first.
pub async fn list(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
) -> DomainResult<Vec<PasskeyRecord>> {
    let (begin, end) = keyspace::passkeys_subspace(tenant, user_id).range();
    let entries = tx.get_range(&begin, &end, RangeOptions::default()).await?;
    let mut passkeys = entries
        .into_iter()
        .map(|(_, value)| codec::decode::<PasskeyRecord>(&value).map_err(DomainError::from))
        .collect::<DomainResult<Vec<_>>>()?;
    passkeys.sort_by_key(|passkey| passkey.created_at);
    Ok(passkeys)
}

fn decode_passkey(record: &PasskeyRecord) -> DomainResult<Passkey> {
    serde_json::from_str(&record.passkey_json).map_err(internal("stored passkey"))
}

/// Begins registering a passkey for `user`.
pub async fn begin_registration(
    tx: &Transaction,
    context: &Context,
    tenant: &TenantState,
    user: &UserRecord,
) -> DomainResult<Ceremony> {
    let webauthn = relying_party(tenant)?;
    let existing = list(tx, tenant.tenant_id(), user.user_id).await?;
    if existing.len() >= MAX_PASSKEYS_PER_USER {
        return Err(DomainError::invalid(
            "passkey",
            format!("a user may hold at most {MAX_PASSKEYS_PER_USER} passkeys"),
        ));
    }
    let exclude = existing
        .iter()
        .map(|passkey| passkey.credential_id.clone())
        .collect::<Vec<_>>();
    let display_name = if user.display_name.is_empty() {
        &user.email
    } else {
        &user.display_name
    };
    let (options, state): (CreationChallengeResponse, PasskeyRegistration) = webauthn
        .start_passkey_registration(user.user_id, &user.email, display_name, Some(exclude))
        .map_err(|error| DomainError::Internal(format!("begin registration: {error}")))?;
    let mut options = serde_json::to_value(&options).map_err(internal("options"))?;
    // Ask for a discoverable credential, so the passkey can sign in without an email.
    if let Some(selection) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(serde_json::Value::as_object_mut)
    {
        selection.insert("residentKey".to_owned(), "preferred".into());
    }
    let state_json = serde_json::to_string(&state).map_err(internal("state"))?;
    let kind = CeremonyKind::Registration {
        user_id: user.user_id,
    };
    let ceremony_id = write_ceremony(tx, context, tenant.tenant_id(), kind, state_json).await?;
    Ok(Ceremony {
        ceremony_id,
        options_json: options.to_string(),
    })
}

fn check_size(field: &'static str, json: &str) -> DomainResult<()> {
    if json.is_empty() || json.len() > MAX_CREDENTIAL_JSON_BYTES {
        return Err(DomainError::invalid(
            field,
            format!("must be 1 to {MAX_CREDENTIAL_JSON_BYTES} bytes of JSON"),
        ));
    }
    Ok(())
}

/// Validates a passkey name.
pub fn validate_name(name: &str) -> DomainResult<String> {
    let name = name.trim();
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(crate::domain::text::is_hidden) {
        return Err(DomainError::invalid(
            "name",
            format!(
                "must be at most {MAX_NAME_CHARS} characters, without control, invisible or bidi formatting characters"
            ),
        ));
    }
    Ok(if name.is_empty() { "Passkey" } else { name }.to_owned())
}

/// Finishes a registration begun for `user_id`: stores the passkey. A ceremony of another
/// user, an unknown or expired one, or a credential that does not verify is
/// `INVALID_ARGUMENT` (the ceremony is spent either way when the caller commits).
pub async fn finish_registration(
    tx: &Transaction,
    context: &Context,
    tenant: &TenantState,
    user_id: Uuid,
    ceremony_id: Uuid,
    credential_json: &str,
    name: &str,
) -> DomainResult<Result<PasskeyRecord, DomainError>> {
    check_size("credential", credential_json)?;
    let name = validate_name(name)?;
    let webauthn = relying_party(tenant)?;
    let tenant_id = tenant.tenant_id();
    let ceremony = take_ceremony(tx, context, tenant_id, ceremony_id).await?;
    let state_json = match ceremony {
        Some(CeremonyRecord {
            kind: CeremonyKind::Registration { user_id: owner },
            state_json,
            ..
        }) if owner == user_id => state_json,
        _ => {
            return Ok(Err(DomainError::invalid(
                "ceremony_id",
                "is unknown, expired or already used",
            )));
        }
    };
    let state: PasskeyRegistration =
        serde_json::from_str(&state_json).map_err(internal("stored state"))?;
    let Ok(credential) = serde_json::from_str::<RegisterPublicKeyCredential>(credential_json)
    else {
        return Ok(Err(DomainError::invalid(
            "credential",
            "is not a WebAuthn registration response",
        )));
    };
    let passkey = match webauthn.finish_passkey_registration(&credential, &state) {
        Ok(passkey) => passkey,
        Err(error) => {
            return Ok(Err(DomainError::invalid(
                "credential",
                format!("did not verify: {error}"),
            )));
        }
    };
    let credential_id = passkey.cred_id().clone();
    let index = keyspace::passkey_credential(tenant_id, &credential_id);
    if tx.get(&index).await?.is_some() {
        return Ok(Err(DomainError::invalid(
            "credential",
            "this passkey is already registered",
        )));
    }
    let internals = Credential::from(passkey.clone());
    let record = PasskeyRecord {
        passkey_id: uuid::Builder::from_random_bytes(context.random::<16>()).into_uuid(),
        user_id,
        name,
        credential_id,
        passkey_json: serde_json::to_string(&passkey).map_err(internal("passkey"))?,
        counter: internals.counter,
        backup_eligible: internals.backup_eligible,
        backup_state: internals.backup_state,
        created_at: context.now(),
        last_used_at: None,
    };
    write_passkey(tx, tenant_id, &record)?;
    let mut pointer = user_id.as_bytes().to_vec();
    pointer.extend_from_slice(record.passkey_id.as_bytes());
    tx.set(&index, &pointer)?;
    Ok(Ok(record))
}

fn write_passkey(tx: &Transaction, tenant: &str, record: &PasskeyRecord) -> DomainResult<()> {
    tx.set(
        &keyspace::passkey(tenant, record.user_id, record.passkey_id),
        &codec::encode(record)?,
    )?;
    Ok(())
}

/// Begins a passkey sign-in. With an email, the options list that user's credentials (a
/// decoy for an address without passkeys); without one, any discoverable credential of the
/// tenant may answer.
pub async fn begin_sign_in(
    tx: &Transaction,
    context: &Context,
    master_key: &MasterKey,
    tenant: &TenantState,
    email: Option<&str>,
) -> DomainResult<Ceremony> {
    let webauthn = relying_party(tenant)?;
    let tenant_id = tenant.tenant_id();
    let (options, state): (RequestChallengeResponse, DiscoverableAuthentication) = webauthn
        .start_discoverable_authentication()
        .map_err(|error| DomainError::Internal(format!("begin sign-in: {error}")))?;
    let mut options = serde_json::to_value(&options).map_err(internal("options"))?;
    if let Some(object) = options.as_object_mut() {
        // The client decides between a modal prompt and autofill.
        object.remove("mediation");
    }
    let mut expected_user = None;
    if let Some(email) = email {
        let email = users::parse_email(email)?;
        let user = users::find_user_by_email(tx, tenant_id, &email.normalized)
            .await?
            .filter(|user| user.email_normalized == email.normalized);
        let passkeys = match &user {
            Some(user) => list(tx, tenant_id, user.user_id).await?,
            None => Vec::new(),
        };
        let ids: Vec<Vec<u8>> = if passkeys.is_empty() {
            // The same shape of answer as for an address with a passkey.
            let decoy = master_key.mac(
                b"gatehouse/passkey-decoy",
                format!("{tenant_id}\u{0}{}", email.normalized).as_bytes(),
            );
            vec![decoy.to_vec()]
        } else {
            passkeys.iter().map(|p| p.credential_id.clone()).collect()
        };
        expected_user = Some(user.map_or(Uuid::nil(), |user| user.user_id));
        let allow: Vec<serde_json::Value> = ids
            .iter()
            .map(|id| {
                serde_json::json!({
                    "type": "public-key",
                    "id": crate::domain::crypto::base64url(id),
                })
            })
            .collect();
        if let Some(public_key) = options
            .get_mut("publicKey")
            .and_then(serde_json::Value::as_object_mut)
        {
            public_key.insert("allowCredentials".to_owned(), allow.into());
        }
    }
    let state_json = serde_json::to_string(&state).map_err(internal("state"))?;
    let kind = CeremonyKind::SignIn { expected_user };
    let ceremony_id = write_ceremony(tx, context, tenant_id, kind, state_json).await?;
    Ok(Ceremony {
        ceremony_id,
        options_json: options.to_string(),
    })
}

/// Finishes a passkey sign-in: the passkey and its user, its counter and flags updated. Any
/// failure (unknown, expired or used ceremony, unknown or removed credential, bad signature,
/// counter regression, another user than the email named) is `INVALID_CREDENTIALS`, after
/// the ceremony is spent in this transaction.
pub async fn finish_sign_in(
    tx: &Transaction,
    context: &Context,
    tenant: &TenantState,
    ceremony_id: Uuid,
    assertion_json: &str,
) -> DomainResult<UsedPasskey> {
    check_size("assertion", assertion_json)?;
    let webauthn = relying_party(tenant)?;
    let tenant_id = tenant.tenant_id();
    let failed = || {
        metrics::counter!("gatehouse_passkey_sign_in_failures_total").increment(1);
        DomainError::InvalidCredentials
    };
    let Some(ceremony) = take_ceremony(tx, context, tenant_id, ceremony_id).await? else {
        return Err(failed());
    };
    let CeremonyKind::SignIn { expected_user } = ceremony.kind else {
        return Err(failed());
    };
    let state: DiscoverableAuthentication =
        serde_json::from_str(&ceremony.state_json).map_err(internal("stored state"))?;
    let assertion: PublicKeyCredential =
        serde_json::from_str(assertion_json).map_err(|_| failed())?;
    let credential_id = assertion.get_credential_id().to_vec();
    let Some(pointer) = tx
        .get(&keyspace::passkey_credential(tenant_id, &credential_id))
        .await?
    else {
        return Err(failed());
    };
    let (user_part, passkey_part) = pointer.split_at(16.min(pointer.len()));
    let (Ok(user_id), Ok(passkey_id)) =
        (Uuid::from_slice(user_part), Uuid::from_slice(passkey_part))
    else {
        return Err(DomainError::Internal(
            "corrupt passkey index entry".to_owned(),
        ));
    };
    if expected_user.is_some_and(|expected| expected != user_id)
        || assertion
            .get_user_unique_id()
            .is_some_and(|handle| handle != user_id.as_bytes())
    {
        return Err(failed());
    }
    let key = keyspace::passkey(tenant_id, user_id, passkey_id);
    let Some(bytes) = tx.get(&key).await? else {
        return Err(failed());
    };
    let mut record: PasskeyRecord = codec::decode(&bytes)?;
    let mut passkey = decode_passkey(&record)?;
    let result = webauthn
        .finish_discoverable_authentication_v2(&assertion, state, &passkey)
        .map_err(|_| failed())?;
    passkey.update_credential(&result);
    record.counter = result.counter();
    record.backup_eligible |= result.backup_eligible();
    record.backup_state = result.backup_state();
    record.last_used_at = Some(context.now());
    record.passkey_json = serde_json::to_string(&passkey).map_err(internal("passkey"))?;
    write_passkey(tx, tenant_id, &record)?;
    Ok(UsedPasskey {
        user_id,
        passkey_id,
    })
}

/// Renames one of a user's passkeys.
pub async fn rename(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
    passkey_id: Uuid,
    name: &str,
) -> DomainResult<PasskeyRecord> {
    let name = validate_name(name)?;
    let key = keyspace::passkey(tenant, user_id, passkey_id);
    let bytes = tx.get(&key).await?.ok_or(DomainError::FactorNotFound)?;
    let mut record: PasskeyRecord = codec::decode(&bytes)?;
    record.name = name;
    write_passkey(tx, tenant, &record)?;
    Ok(record)
}

/// Removes one of a user's passkeys and its credential index entry.
pub async fn remove(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
    passkey_id: Uuid,
) -> DomainResult<PasskeyRecord> {
    let key = keyspace::passkey(tenant, user_id, passkey_id);
    let bytes = tx.get(&key).await?.ok_or(DomainError::FactorNotFound)?;
    let record: PasskeyRecord = codec::decode(&bytes)?;
    tx.clear(&key)?;
    tx.clear(&keyspace::passkey_credential(tenant, &record.credential_id))?;
    Ok(record)
}

/// Removes every passkey of a user with its index entries (when the user is deleted).
pub async fn remove_all(tx: &Transaction, tenant: &str, user_id: Uuid) -> DomainResult<()> {
    for record in list(tx, tenant, user_id).await? {
        tx.clear(&keyspace::passkey_credential(tenant, &record.credential_id))?;
    }
    let (begin, end) = keyspace::passkeys_subspace(tenant, user_id).range();
    tx.clear_range(&begin, &end)?;
    Ok(())
}

/// Parses a ceremony id from the wire.
pub fn parse_ceremony_id(text: &str) -> DomainResult<Uuid> {
    Uuid::try_parse(text).map_err(|_| DomainError::invalid("ceremony_id", "must be a UUID"))
}
