//! `gatehouse.v1.Permissions`.

use gatehouse_actors::api::permissions::GrantTarget;
use gatehouse_actors::permissions::{PermissionDefinition, PermissionScope};
use gatehouse_protocol::v1::permissions_server::Permissions;
use gatehouse_protocol::{ErrorCode, error_status, v1};
use tonic::{Request, Response, Status};

use super::{Api, observe, to_status};

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

fn from_wire(definition: Option<v1::PermissionDefinition>) -> Result<PermissionDefinition, Status> {
    let invalid =
        |message: &str| error_status(ErrorCode::InvalidArgument, message, Some("definition"));
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
        observe("Permissions/DefinePermission", async {
            let caller = self.caller(&request).await?;
            let body = request.into_inner();
            let definition = from_wire(body.definition)?;
            let stored = self
                .gatehouse
                .define_permission(&caller, definition, body.create_only)
                .await
                .map_err(to_status)?;
            Ok(to_wire(&stored))
        })
        .await
    }

    async fn delete_permission(
        &self,
        request: Request<v1::DeletePermissionRequest>,
    ) -> Result<Response<v1::DeletePermissionReply>, Status> {
        observe("Permissions/DeletePermission", async {
            let caller = self.caller(&request).await?;
            self.gatehouse
                .delete_permission(&caller, &request.get_ref().permission_id)
                .await
                .map_err(to_status)?;
            Ok(v1::DeletePermissionReply {})
        })
        .await
    }

    async fn list_permission_definitions(
        &self,
        request: Request<v1::ListPermissionDefinitionsRequest>,
    ) -> Result<Response<v1::ListPermissionDefinitionsReply>, Status> {
        observe("Permissions/ListPermissionDefinitions", async {
            let caller = self.caller(&request).await?;
            let definitions = self
                .gatehouse
                .list_permission_definitions(&caller)
                .await
                .map_err(to_status)?;
            Ok(v1::ListPermissionDefinitionsReply {
                definitions: definitions.iter().map(to_wire).collect(),
            })
        })
        .await
    }

    async fn grant_permission(
        &self,
        request: Request<v1::GrantPermissionRequest>,
    ) -> Result<Response<v1::GrantPermissionReply>, Status> {
        observe("Permissions/GrantPermission", async {
            let caller = self.caller(&request).await?;
            let body = request.get_ref();
            let changed = self
                .gatehouse
                .grant_permission(
                    &caller,
                    GrantTarget {
                        user_id: &body.user_id,
                        permission_id: &body.permission_id,
                        team_id: &body.team_id,
                    },
                )
                .await
                .map_err(to_status)?;
            Ok(v1::GrantPermissionReply { changed })
        })
        .await
    }

    async fn revoke_permission(
        &self,
        request: Request<v1::RevokePermissionRequest>,
    ) -> Result<Response<v1::RevokePermissionReply>, Status> {
        observe("Permissions/RevokePermission", async {
            let caller = self.caller(&request).await?;
            let body = request.get_ref();
            let changed = self
                .gatehouse
                .revoke_permission(
                    &caller,
                    GrantTarget {
                        user_id: &body.user_id,
                        permission_id: &body.permission_id,
                        team_id: &body.team_id,
                    },
                )
                .await
                .map_err(to_status)?;
            Ok(v1::RevokePermissionReply { changed })
        })
        .await
    }

    async fn has_permission(
        &self,
        request: Request<v1::HasPermissionRequest>,
    ) -> Result<Response<v1::HasPermissionReply>, Status> {
        observe("Permissions/HasPermission", async {
            let caller = self.caller(&request).await?;
            let body = request.get_ref();
            let granted = self
                .gatehouse
                .has_permission(&caller, &body.user_id, &body.permission_id, &body.team_id)
                .await
                .map_err(to_status)?;
            Ok(v1::HasPermissionReply { granted })
        })
        .await
    }

    async fn list_effective_permissions(
        &self,
        request: Request<v1::ListEffectivePermissionsRequest>,
    ) -> Result<Response<v1::ListEffectivePermissionsReply>, Status> {
        observe("Permissions/ListEffectivePermissions", async {
            let caller = self.caller(&request).await?;
            let body = request.get_ref();
            let permissions = self
                .gatehouse
                .effective_permissions(&caller, &body.user_id, &body.team_id)
                .await
                .map_err(to_status)?;
            Ok(v1::ListEffectivePermissionsReply {
                permission_ids: permissions.into_iter().collect(),
            })
        })
        .await
    }
}
