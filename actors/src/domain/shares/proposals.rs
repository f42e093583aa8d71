//! Proposals through a proposal-mode share: validated against the share's mode, permissions
//! and mask, stored pending, and accepted (applied in the same transaction) or rejected.

use super::*;

/// Fields a proposal may change, per resource kind.
fn changeable_fields(resource: &ShareResource) -> &'static [&'static str] {
    match resource {
        ShareResource::User(_) => &["display_name", "client_metadata"],
        ShareResource::Team(_) => &["display_name", "profile_image_url", "client_metadata"],
        ShareResource::App { .. } => &[],
    }
}

/// Validates proposed changes against the share's mode, permissions and mask.
pub fn check_proposal(share: &ShareRecord, changes: &BTreeMap<String, String>) -> DomainResult<()> {
    if share.mode != ShareMode::Proposal || !share.permissions.iter().any(|p| p == UPDATE) {
        return Err(DomainError::ShareScopeExceeded("update".to_owned()));
    }
    if changes.is_empty() {
        return Err(DomainError::invalid(
            "changes",
            "must change at least one field",
        ));
    }
    for (field, value) in changes {
        let allowed = changeable_fields(&share.resource).contains(&field.as_str())
            && (share.field_mask.is_empty() || share.field_mask.iter().any(|mask| mask == field));
        if !allowed {
            return Err(DomainError::ShareScopeExceeded(format!("field {field}")));
        }
        match field.as_str() {
            "display_name" => validate_display_name("changes", value, false)?,
            "client_metadata" => users::validate_metadata("changes", value)?,
            _ if value.len() > 2048 => {
                return Err(DomainError::invalid("changes", "value too long"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Stores a pending proposal.
pub fn create_proposal(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    share: &ShareRecord,
    changes: BTreeMap<String, String>,
) -> DomainResult<ProposalRecord> {
    let proposal = ProposalRecord {
        proposal_id: uuid::Builder::from_random_bytes(context.random::<16>()).into_uuid(),
        share_id: share.share_id,
        changes,
        created_at: context.now(),
        state: ProposalState::Pending,
        decided_at: None,
    };
    tx.set(
        &keyspace::proposal(tenant, share.share_id, proposal.proposal_id),
        &codec::encode(&proposal)?,
    )?;
    Ok(proposal)
}

/// Accepts (applying the changes in this transaction) or rejects a pending proposal.
pub async fn decide_proposal(
    tx: &Transaction,
    context: &Context,
    graph: &PermissionGraph,
    tenant: &str,
    share: &ShareRecord,
    proposal_id: Uuid,
    accept: bool,
) -> DomainResult<ProposalRecord> {
    let key = keyspace::proposal(tenant, share.share_id, proposal_id);
    let mut proposal: ProposalRecord = match tx.get(&key).await? {
        Some(bytes) => codec::decode(&bytes)?,
        None => return Err(DomainError::ProposalNotFound),
    };
    if proposal.state != ProposalState::Pending {
        return Err(DomainError::ProposalNotFound);
    }
    if accept {
        if share.revoked.is_some() {
            return Err(DomainError::ShareRevoked);
        }
        check_owner_holds(
            tx,
            graph,
            tenant,
            share.owner,
            &share.resource,
            &share.permissions,
        )
        .await?;
        apply_changes(tx, context, tenant, &share.resource, &proposal.changes).await?;
    }
    proposal.state = if accept {
        ProposalState::Accepted
    } else {
        ProposalState::Rejected
    };
    proposal.decided_at = Some(context.now());
    tx.set(&key, &codec::encode(&proposal)?)?;
    Ok(proposal)
}

async fn apply_changes(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    resource: &ShareResource,
    changes: &BTreeMap<String, String>,
) -> DomainResult<()> {
    match resource {
        ShareResource::User(user_id) => {
            let user_changes = users::UserChanges {
                display_name: changes.get("display_name").cloned(),
                client_metadata: changes.get("client_metadata").cloned(),
                ..users::UserChanges::default()
            };
            users::update_user(tx, context, tenant, *user_id, user_changes).await?;
        }
        ShareResource::Team(team_id) => {
            let team_changes = teams::TeamChanges {
                display_name: changes.get("display_name").cloned(),
                profile_image_url: changes.get("profile_image_url").cloned(),
                client_metadata: changes.get("client_metadata").cloned(),
                ..teams::TeamChanges::default()
            };
            teams::update_team(tx, context, tenant, *team_id, team_changes).await?;
        }
        ShareResource::App { .. } => {
            return Err(DomainError::ShareScopeExceeded("update".to_owned()));
        }
    }
    Ok(())
}

/// Pending proposals of a share.
pub async fn list_proposals(
    tx: &Transaction,
    tenant: &str,
    share_id: Uuid,
) -> DomainResult<Vec<ProposalRecord>> {
    let (begin, end) = keyspace::proposals_subspace(tenant, share_id).range();
    tx.get_range(&begin, &end, RangeOptions::default())
        .await?
        .into_iter()
        .map(|(_, value)| codec::decode(&value).map_err(DomainError::from))
        .collect()
}
