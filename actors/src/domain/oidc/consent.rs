//! Consents: the scopes a person let a third-party client have, asked once per client and
//! asked again when the client wants more (or the request says `prompt=consent`).
//! First-party clients need none. A user's consents go with the user.

use gatehouse_storage::{Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::{Context, Timestamp};
use crate::domain::keyspace;
use crate::domain::sessions;
use crate::error::{DomainError, DomainResult};

/// A stored consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// Every scope consented to so far.
    pub scopes: Vec<String>,
    /// The latest consent.
    pub granted_at: Timestamp,
}

/// Whether `user_id` consented to every one of `scopes` for `client_id`.
pub async fn covers(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
    client_id: &str,
    scopes: &[String],
) -> DomainResult<bool> {
    let Some(bytes) = tx
        .get(&keyspace::oidc_consent(tenant, user_id, client_id))
        .await?
    else {
        return Ok(false);
    };
    let record: ConsentRecord = codec::decode(&bytes)?;
    Ok(scopes.iter().all(|scope| record.scopes.contains(scope)))
}

/// Records that `user_id` consented to `scopes` for `client_id` (added to earlier ones).
pub async fn grant(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    client_id: &str,
    scopes: &[String],
) -> DomainResult<()> {
    let key = keyspace::oidc_consent(tenant, user_id, client_id);
    let mut record = match tx.get(&key).await? {
        Some(bytes) => codec::decode::<ConsentRecord>(&bytes)?,
        None => ConsentRecord {
            scopes: Vec::new(),
            granted_at: context.now(),
        },
    };
    for scope in scopes {
        if !record.scopes.contains(scope) {
            record.scopes.push(scope.clone());
        }
    }
    record.granted_at = context.now();
    tx.set(&key, &codec::encode(&record)?)?;
    Ok(())
}

/// Forgets every consent of `user_id` (the user is being deleted).
pub async fn delete_user_consents(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
) -> DomainResult<()> {
    let (begin, end) = keyspace::oidc_consents_of(tenant, user_id).range();
    tx.clear_range(&begin, &end)?;
    Ok(())
}

/// Every consent of `user_id`, by client id.
pub async fn list_for_user(
    tx: &Transaction,
    tenant: &str,
    user_id: Uuid,
) -> DomainResult<Vec<(String, ConsentRecord)>> {
    let subspace = keyspace::oidc_consents_of(tenant, user_id);
    let (begin, end) = subspace.range();
    let entries = tx
        .get_range(&begin, &end, gatehouse_storage::RangeOptions::default())
        .await?;
    entries
        .into_iter()
        .map(|(key, value)| {
            let (client_id,) = subspace
                .unpack::<(String,)>(&key)
                .map_err(|error| DomainError::Internal(format!("consent key: {error}")))?;
            Ok((client_id, codec::decode(&value)?))
        })
        .collect()
}

/// Withdraws `user_id`'s consent to `client_id` and ends that client's sessions of the user
/// (their tokens stop on every node). Returns whether there was a consent and how many
/// sessions ended.
pub async fn withdraw(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    user_id: Uuid,
    client_id: &str,
) -> DomainResult<(bool, u32)> {
    let key = keyspace::oidc_consent(tenant, user_id, client_id);
    let existed = tx.get(&key).await?.is_some();
    tx.clear(&key)?;
    let mut ended = 0;
    for session_id in sessions::user_session_ids(tx, tenant, user_id).await? {
        let Some(session) = sessions::find_session(tx, tenant, session_id).await? else {
            continue;
        };
        if session.is_held_by(client_id)
            && session.revoked.is_none()
            && sessions::revoke_session(
                tx,
                context,
                tenant,
                session_id,
                sessions::RevocationReason::SignOut,
            )
            .await?
        {
            ended += 1;
        }
    }
    Ok((existed, ended))
}
