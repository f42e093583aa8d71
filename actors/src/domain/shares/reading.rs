//! Reading a resource through a share: spending a use and masking the fields.

use super::*;

/// Counts one use: refuses revoked, expired and used-up shares.
pub fn spend_use(share: &mut ShareRecord, now: Timestamp) -> DomainResult<()> {
    if share.revoked.is_some() {
        return Err(DomainError::ShareRevoked);
    }
    if share.expires_at.is_some_and(|expiry| now >= expiry) {
        return Err(DomainError::ShareExpired);
    }
    if share.max_uses.is_some_and(|max| share.uses >= max) {
        return Err(DomainError::ShareUseLimitReached);
    }
    share.uses += 1;
    share.version += 1;
    Ok(())
}

pub(super) fn masked(share: &ShareRecord, full: Value) -> Value {
    let fields = shareable_fields(&share.resource);
    let Value::Object(map) = full else {
        return full;
    };
    Value::Object(
        map.into_iter()
            .filter(|(field, _)| {
                fields.contains(&field.as_str())
                    && (share.field_mask.is_empty()
                        || share.field_mask.iter().any(|mask| mask == field))
            })
            .collect(),
    )
}

/// Reads the shared resource through the share, masked. The caller already spent a use.
pub async fn read_through(
    tx: &Transaction,
    tenant: &str,
    share: &ShareRecord,
) -> DomainResult<Value> {
    match &share.resource {
        ShareResource::User(user_id) => {
            if !share.permissions.iter().any(|p| p == READ) {
                return Err(DomainError::ShareScopeExceeded("read".to_owned()));
            }
            let user = users::read_user(tx, tenant, *user_id).await?;
            Ok(masked(
                share,
                json!({
                    "user_id": user.user_id,
                    "email": user.email,
                    "display_name": user.display_name,
                    "email_verified": user.email_verified,
                    "client_metadata": user.client_metadata,
                }),
            ))
        }
        ShareResource::Team(team_id) => {
            if !share.permissions.iter().any(|p| p == READ) {
                return Err(DomainError::ShareScopeExceeded("read".to_owned()));
            }
            let team = teams::read_team(tx, tenant, *team_id).await?;
            Ok(masked(
                share,
                json!({
                    "team_id": team.team_id,
                    "display_name": team.display_name,
                    "profile_image_url": team.profile_image_url,
                    "client_metadata": team.client_metadata,
                }),
            ))
        }
        ShareResource::App { kind, id } => Ok(json!({
            "resource_type": kind,
            "resource_id": id,
            "permissions": share.permissions,
        })),
    }
}
