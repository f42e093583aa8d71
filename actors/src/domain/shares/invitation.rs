//! Emailing a share to the address it was made for. The message is written to the outbox in
//! the transaction that creates the share, so it exists if and only if the share does.

use gatehouse_storage::Transaction;
use url::Url;

use super::ShareRecord;
use crate::context::Timestamp;
use crate::domain::email::EmailKind;
use crate::domain::email::flows::{self, Keys};
use crate::domain::email::templates::TemplateVars;
use crate::domain::sessions::ClientInfo;
use crate::domain::tenants::TenantState;
use crate::domain::users;
use crate::error::DomainResult;

/// Where a share's invitation goes and what its link opens.
#[derive(Debug, Clone, Copy)]
pub struct InviteeEmail<'a> {
    /// The recipient address, as entered.
    pub to: &'a str,
    /// Where the link leads (already checked against the trusted domains).
    pub redirect: &'a Url,
    /// The request that created the share.
    pub client: &'a ClientInfo,
}

/// Emails a just-created `share` to its invitee: a link to the redirect carrying `token`,
/// the owner as the one who shared it, and the time left until the share expires.
pub async fn email_invitee(
    tx: &Transaction,
    keys: Keys<'_>,
    tenant: &TenantState,
    share: &ShareRecord,
    token: &str,
    invitee: &InviteeEmail<'_>,
) -> DomainResult<()> {
    let owner = users::find_user(tx, tenant.tenant_id(), share.owner).await?;
    let vars = TemplateVars {
        link: flows::link_with_token(invitee.redirect, token),
        inviter_name: owner.as_ref().map(flows::inviter_name).unwrap_or_default(),
        expires_in_minutes: minutes_left(share.expires_at, keys.context.now()),
        ..flows::base_vars(tenant, None, invitee.to, invitee.client)
    };
    let kind = EmailKind::ShareInvitation;
    flows::compose(tx, keys, tenant, kind, invitee.to, &vars).await?;
    Ok(())
}

/// Whole minutes from `now` until `expires_at`, rounded up; 0 (the templates' "no expiry")
/// only for a share that does not expire, so one about to expire still says so.
pub fn minutes_left(expires_at: Option<Timestamp>, now: Timestamp) -> u32 {
    expires_at.map_or(0, |at| {
        let millis = u64::try_from(at.millis_since(now)).unwrap_or(0);
        u32::try_from(millis.div_ceil(60_000))
            .unwrap_or(u32::MAX)
            .max(1)
    })
}

#[cfg(test)]
#[path = "invitation_tests.rs"]
mod tests;
