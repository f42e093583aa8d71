//! Permission definitions (server), grants and checks, with the policy checked inside the
//! transaction that acts.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::access::Caller;
use crate::api::policy::Policy;
use crate::domain::audit::AuditOrigin;
use crate::domain::permissions::{
    self, PermissionDefinition, PermissionScope, validate_permission_id,
};
use crate::domain::permissions_change::{self, GrantChange};
use crate::domain::tenants::TenantState;
use crate::error::{DomainError, DomainResult};
use crate::gatehouse::Gatehouse;
use crate::runtime::tenant_actor::{DefinePermission, DeletePermission};

/// A grant or revocation request.
#[derive(Debug, Clone)]
pub struct GrantTarget<'a> {
    /// The user.
    pub user_id: &'a str,
    /// The permission.
    pub permission_id: &'a str,
    /// The team, or empty for tenant-wide.
    pub team_id: &'a str,
}

struct ParsedGrant {
    user_id: Uuid,
    team_id: Option<Uuid>,
}

fn parse_grant(tenant: &TenantState, target: &GrantTarget<'_>) -> DomainResult<ParsedGrant> {
    let user_id = super::parse_id("user_id", target.user_id)?;
    let team_id = (!target.team_id.is_empty())
        .then(|| super::parse_id("team_id", target.team_id))
        .transpose()?;
    let graph = &tenant.permissions;
    if !graph.knows(target.permission_id) {
        return Err(DomainError::PermissionNotFound);
    }
    let scope = graph
        .get(target.permission_id)
        .map_or(PermissionScope::Team, |definition| definition.scope);
    match (scope, team_id) {
        (PermissionScope::Team, None) => Err(DomainError::invalid(
            "team_id",
            "this permission is granted within a team",
        )),
        (PermissionScope::Tenant, Some(_)) => Err(DomainError::invalid(
            "team_id",
            "this permission is granted tenant-wide, without a team",
        )),
        _ => Ok(ParsedGrant { user_id, team_id }),
    }
}

impl Gatehouse {
    /// Defines (or, with `create_only = false`, replaces) a permission. Server and operator.
    pub async fn define_permission(
        &self,
        caller: &Caller,
        definition: PermissionDefinition,
        create_only: bool,
    ) -> DomainResult<PermissionDefinition> {
        let tenant = caller.require_server()?;
        validate_permission_id("permission_id", &definition.permission_id)?;
        if definition.description.chars().count() > 500 {
            return Err(DomainError::invalid(
                "description",
                "must be at most 500 characters",
            ));
        }
        if definition.contains.len() > 1000 {
            return Err(DomainError::invalid(
                "contains",
                "must list at most 1000 permissions",
            ));
        }
        self.route(DefinePermission {
            tenant: tenant.tenant_id().to_owned(),
            definition,
            create_only,
            actor: caller.audit_actor(),
        })
        .await
    }

    /// Deletes a definition and every grant of it. Server and operator.
    pub async fn delete_permission(
        &self,
        caller: &Caller,
        permission_id: &str,
    ) -> DomainResult<()> {
        let tenant = caller.require_server()?;
        validate_permission_id("permission_id", permission_id)?;
        self.route(DeletePermission {
            tenant: tenant.tenant_id().to_owned(),
            permission_id: permission_id.to_owned(),
            actor: caller.audit_actor(),
        })
        .await
    }

    /// Every definition of the tenant (any caller of the tenant).
    pub async fn list_permission_definitions(
        &self,
        caller: &Caller,
    ) -> DomainResult<Vec<PermissionDefinition>> {
        let tenant = caller.tenant()?;
        Ok(tenant.permissions.definitions().cloned().collect())
    }

    /// Grants a permission. Servers: any; clients: team permissions they hold, with
    /// `$manage_permissions`, to members of that team.
    pub async fn grant_permission(
        &self,
        caller: &Caller,
        target: GrantTarget<'_>,
    ) -> DomainResult<bool> {
        self.change_grant(caller, target, true).await
    }

    /// Revokes a direct grant, under the same rules as granting.
    pub async fn revoke_permission(
        &self,
        caller: &Caller,
        target: GrantTarget<'_>,
    ) -> DomainResult<bool> {
        self.change_grant(caller, target, false).await
    }

    async fn change_grant(
        &self,
        caller: &Caller,
        target: GrantTarget<'_>,
        grant: bool,
    ) -> DomainResult<bool> {
        let tenant = caller.tenant()?.clone();
        let parsed = parse_grant(&tenant, &target)?;
        let permission_id = target.permission_id;
        let change = GrantChange {
            team_id: parsed.team_id,
            user_id: parsed.user_id,
            permission_id,
            grant,
        };
        let (context, tenant_id, origin) = (
            &self.services.context,
            tenant.tenant_id(),
            &AuditOrigin::of(caller),
        );
        let policy = Policy::Grantor {
            team_id: parsed.team_id,
            permission_id,
        };
        self.transact(&tenant, caller, policy, |tx| async move {
            permissions_change::change_grant(&tx, context, tenant_id, change, origin).await
        })
        .await
    }

    /// The permissions a user holds in a scope, through the graph. Clients: only their own.
    pub async fn effective_permissions(
        &self,
        caller: &Caller,
        user_id: &str,
        team_id: &str,
    ) -> DomainResult<BTreeSet<String>> {
        let tenant = caller.tenant()?.clone();
        let user_id = match caller.acting_user()? {
            Some(me) if user_id.is_empty() || user_id == me.to_string() => me,
            Some(_) => {
                return Err(DomainError::PermissionDenied(
                    "clients check only their own permissions",
                ));
            }
            None => super::parse_id("user_id", user_id)?,
        };
        let team_id = (!team_id.is_empty())
            .then(|| super::parse_id("team_id", team_id))
            .transpose()?;
        let tenant_id = tenant.tenant_id();
        let direct = self
            .services
            .db
            .run(|tx| async move {
                permissions_change::grants_in_scope(&tx, tenant_id, team_id, user_id).await
            })
            .await?;
        Ok(permissions::effective(&tenant.permissions, &direct))
    }

    /// Whether a user holds `permission_id` in a scope.
    pub async fn has_permission(
        &self,
        caller: &Caller,
        user_id: &str,
        permission_id: &str,
        team_id: &str,
    ) -> DomainResult<bool> {
        if permission_id.is_empty() {
            return Err(DomainError::invalid("permission_id", "must not be empty"));
        }
        Ok(self
            .effective_permissions(caller, user_id, team_id)
            .await?
            .contains(permission_id))
    }
}
