//! `gatehouse.v1.Permissions`.

use gatehouse_actors::api::permissions::GrantTarget;
use gatehouse_actors::permissions::{PermissionDefinition, PermissionScope};
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::permissions_server::Permissions;
use tonic::{Request, Response, Status};

use super::{Api, RpcError};

fn to_wire(definition: &PermissionDefinition) -> v1::PermissionDefinition {
    v1::PermissionDefinition {
        permission_id: definition.permission_id.clone(),
        description: definition.description.clone(),
        contains: definition.contains.clone(),
        scope: match definition.scope {
            PermissionScope::Tenant => v1::PermissionScope::Tenant,
            PermissionScope::Team => v1::PermissionScope::Team,
        } as i32,
    }
}

fn from_wire(
    definition: Option<v1::PermissionDefinition>,
) -> Result<PermissionDefinition, RpcError> {
    let invalid = |message: &str| RpcError::invalid("definition", message);
    let definition = definition.ok_or_else(|| invalid("definition is required"))?;
    let scope = match v1::PermissionScope::try_from(definition.scope) {
        Ok(v1::PermissionScope::Tenant) => PermissionScope::Tenant,
        Ok(v1::PermissionScope::Team) => PermissionScope::Team,
        _ => {
            return Err(invalid(
                "scope must be PERMISSION_SCOPE_TENANT or PERMISSION_SCOPE_TEAM",
            ));
        }
    };
    Ok(PermissionDefinition {
        permission_id: definition.permission_id,
        description: definition.description,
        contains: definition.contains,
        scope,
    })
}

#[tonic::async_trait]
impl Permissions for Api {
    async fn define_permission(
        &self,
        request: Request<v1::DefinePermissionRequest>,
    ) -> Result<Response<v1::PermissionDefinition>, Status> {
        self.rpc("Permissions/DefinePermission", request, |call| async move {
            let (caller, body) = call.into_parts();
            let definition = from_wire(body.definition)?;
            let stored = self
                .gatehouse
                .define_permission(&caller, definition, body.create_only)
                .await?;
            Ok(to_wire(&stored))
        })
        .await
    }

    async fn delete_permission(
        &self,
        request: Request<v1::DeletePermissionRequest>,
    ) -> Result<Response<v1::DeletePermissionReply>, Status> {
        self.rpc("Permissions/DeletePermission", request, |call| async move {
            self.gatehouse
                .delete_permission(&call.caller, &call.body().permission_id)
                .await?;
            Ok(v1::DeletePermissionReply {})
        })
        .await
    }

    async fn list_permission_definitions(
        &self,
        request: Request<v1::ListPermissionDefinitionsRequest>,
    ) -> Result<Response<v1::ListPermissionDefinitionsReply>, Status> {
        self.rpc(
            "Permissions/ListPermissionDefinitions",
            request,
            |call| async move {
                let definitions = self
                    .gatehouse
                    .list_permission_definitions(&call.caller)
                    .await?;
                Ok(v1::ListPermissionDefinitionsReply {
                    definitions: definitions.iter().map(to_wire).collect(),
                })
            },
        )
        .await
    }

    async fn grant_permission(
        &self,
        request: Request<v1::GrantPermissionRequest>,
    ) -> Result<Response<v1::GrantPermissionReply>, Status> {
        self.rpc("Permissions/GrantPermission", request, |call| async move {
            let body = call.body();
            let changed = self
                .gatehouse
                .grant_permission(
                    &call.caller,
                    GrantTarget {
                        user_id: &body.user_id,
                        permission_id: &body.permission_id,
                        team_id: &body.team_id,
                    },
                )
                .await?;
            Ok(v1::GrantPermissionReply { changed })
        })
        .await
    }

    async fn revoke_permission(
        &self,
        request: Request<v1::RevokePermissionRequest>,
    ) -> Result<Response<v1::RevokePermissionReply>, Status> {
        self.rpc("Permissions/RevokePermission", request, |call| async move {
            let body = call.body();
            let changed = self
                .gatehouse
                .revoke_permission(
                    &call.caller,
                    GrantTarget {
                        user_id: &body.user_id,
                        permission_id: &body.permission_id,
                        team_id: &body.team_id,
                    },
                )
                .await?;
            Ok(v1::RevokePermissionReply { changed })
        })
        .await
    }

    async fn has_permission(
        &self,
        request: Request<v1::HasPermissionRequest>,
    ) -> Result<Response<v1::HasPermissionReply>, Status> {
        self.rpc("Permissions/HasPermission", request, |call| async move {
            let body = call.body();
            let granted = self
                .gatehouse
                .has_permission(
                    &call.caller,
                    &body.user_id,
                    &body.permission_id,
                    &body.team_id,
                )
                .await?;
            Ok(v1::HasPermissionReply { granted })
        })
        .await
    }

    async fn list_effective_permissions(
        &self,
        request: Request<v1::ListEffectivePermissionsRequest>,
    ) -> Result<Response<v1::ListEffectivePermissionsReply>, Status> {
        self.rpc(
            "Permissions/ListEffectivePermissions",
            request,
            |call| async move {
                let body = call.body();
                let permissions = self
                    .gatehouse
                    .effective_permissions(&call.caller, &body.user_id, &body.team_id)
                    .await?;
                Ok(v1::ListEffectivePermissionsReply {
                    permission_ids: permissions.into_iter().collect(),
                })
            },
        )
        .await
    }
}
