//! Policy that depends on stored state (team membership, team permissions, who owns a
//! share, what a grantor holds). It is checked inside the operation's own transaction, so the
//! answer cannot go stale between the check and the change, and an API method stays one
//! policy value plus one domain function.

use std::future::Future;

use gatehouse_storage::Transaction;
use uuid::Uuid;

use crate::access::Caller;
use crate::domain::permissions::{self, system};
use crate::domain::shares;
use crate::domain::teams;
use crate::domain::tenants::TenantState;
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;

/// What the caller must be allowed before an operation runs. Server and operator callers
/// pass every check; the entity the check names must exist either way.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Policy<'a> {
    /// Nothing stored to check (the caller's kind was checked before the transaction).
    Open,
    /// A client's user is a member of the team.
    TeamMember {
        /// The team.
        team_id: Uuid,
    },
    /// A client's user is a member of the team and holds `permission` in it.
    TeamPermission {
        /// The team.
        team_id: Uuid,
        /// The system permission needed, e.g. `$update_team`.
        permission: &'a str,
    },
    /// [`Policy::TeamPermission`] in the team of an invitation.
    InvitationTeamPermission {
        /// The invitation.
        invitation_id: Uuid,
        /// The system permission needed.
        permission: &'a str,
    },
    /// A client may grant or revoke only in a team where it may manage permissions, and only
    /// a permission it holds there itself.
    Grantor {
        /// The scope of the grant; `None` is tenant-wide.
        team_id: Option<Uuid>,
        /// The permission granted or revoked.
        permission_id: &'a str,
    },
    /// A client's user owns the share; anyone else is told the share does not exist.
    ShareOwner {
        /// The share.
        share_id: Uuid,
    },
}

impl Policy<'_> {
    /// Checks the policy for `caller` inside `tx`.
    async fn check(
        self,
        tx: &Transaction,
        tenant: &TenantState,
        caller: &Caller,
    ) -> DomainResult<()> {
        let tenant_id = tenant.tenant_id();
        match self {
            Policy::Open => Ok(()),
            Policy::TeamMember { team_id } => {
                teams::read_team(tx, tenant_id, team_id).await?;
                match caller.acting_user()? {
                    Some(user) if !teams::is_member(tx, tenant_id, team_id, user).await? => {
                        Err(DomainError::PermissionDenied("not a member of this team"))
                    }
                    _ => Ok(()),
                }
            }
            Policy::TeamPermission {
                team_id,
                permission,
            } => check_team_permission(tx, tenant, caller, team_id, permission).await,
            Policy::InvitationTeamPermission {
                invitation_id,
                permission,
            } => {
                let invitation = teams::read_invitation(tx, tenant_id, invitation_id).await?;
                check_team_permission(tx, tenant, caller, invitation.team_id, permission).await
            }
            Policy::Grantor {
                team_id,
                permission_id,
            } => check_grantor(tx, tenant, caller, team_id, permission_id).await,
            Policy::ShareOwner { share_id } => {
                let share = shares::read_share(tx, tenant_id, share_id).await?;
                match caller.acting_user()? {
                    Some(me) if me != share.owner => Err(DomainError::ShareNotFound),
                    _ => Ok(()),
                }
            }
        }
    }
}

impl Gatehouse {
    /// Runs `operation` (one domain function) in a transaction that first checks `policy`
    /// for `caller` in `tenant`.
    pub(crate) async fn transact<T, F, Fut>(
        &self,
        tenant: &TenantState,
        caller: &Caller,
        policy: Policy<'_>,
        operation: F,
    ) -> DomainResult<T>
    where
        F: Fn(Transaction) -> Fut,
        Fut: Future<Output = DomainResult<T>>,
    {
        let operation = &operation;
        self.services
            .db
            .run(move |tx| async move {
                policy.check(&tx, tenant, caller).await?;
                operation(tx).await
            })
            .await
    }
}

/// A client caller's user must be a member holding `wanted` in `team_id`.
pub(crate) async fn check_team_permission(
    tx: &Transaction,
    tenant: &TenantState,
    caller: &Caller,
    team_id: Uuid,
    wanted: &str,
) -> DomainResult<()> {
    let tenant_id = tenant.tenant_id();
    teams::read_team(tx, tenant_id, team_id).await?;
    let Some(user_id) = caller.acting_user()? else {
        return Ok(());
    };
    if !teams::is_member(tx, tenant_id, team_id, user_id).await? {
        return Err(DomainError::PermissionDenied("not a member of this team"));
    }
    let direct = permissions::direct_grants(tx, tenant_id, Some(team_id), user_id).await?;
    if permissions::holds(&tenant.permissions, &direct, wanted) {
        Ok(())
    } else {
        Err(DomainError::PermissionDenied(
            "missing the team permission for this",
        ))
    }
}

/// Clients grant only in a team where they may manage permissions, only what they hold.
async fn check_grantor(
    tx: &Transaction,
    tenant: &TenantState,
    caller: &Caller,
    team_id: Option<Uuid>,
    permission_id: &str,
) -> DomainResult<()> {
    let Some(me) = caller.acting_user()? else {
        return Ok(());
    };
    let Some(team_id) = team_id else {
        return Err(DomainError::PermissionDenied(
            "clients cannot grant tenant-wide permissions",
        ));
    };
    check_team_permission(tx, tenant, caller, team_id, system::MANAGE_PERMISSIONS).await?;
    let mine = permissions::direct_grants(tx, tenant.tenant_id(), Some(team_id), me).await?;
    if permissions::holds(&tenant.permissions, &mine, permission_id) {
        Ok(())
    } else {
        Err(DomainError::PermissionDenied(
            "cannot grant a permission the caller does not hold",
        ))
    }
}
