//! `gatehouse.v1.Tenants` (operator only).

use gatehouse_actors::tenants::SettingsChanges;
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::tenants_server::Tenants;
use tonic::{Request, Response, Status};

use super::{Api, convert, observe, to_status};

#[tonic::async_trait]
impl Tenants for Api {
    async fn create_tenant(
        &self,
        request: Request<v1::CreateTenantRequest>,
    ) -> Result<Response<v1::CreateTenantReply>, Status> {
        observe("Tenants/CreateTenant", async {
            let caller = self.caller(&request).await?;
            let body = request.get_ref();
            let created = self
                .gatehouse
                .create_tenant(&caller, &body.display_name, &body.tenant_id)
                .await
                .map_err(to_status)?;
            Ok(v1::CreateTenantReply {
                tenant: Some(convert::tenant(&created.record)),
                publishable_client_key: created.publishable_client_key,
                secret_server_key: created.secret_server_key,
            })
        })
        .await
    }

    async fn get_tenant(
        &self,
        request: Request<v1::GetTenantRequest>,
    ) -> Result<Response<v1::Tenant>, Status> {
        observe("Tenants/GetTenant", async {
            let caller = self.caller(&request).await?;
            let record = self
                .gatehouse
                .get_tenant(&caller, &request.get_ref().tenant_id)
                .await
                .map_err(to_status)?;
            Ok(convert::tenant(&record))
        })
        .await
    }

    async fn list_tenants(
        &self,
        request: Request<v1::ListTenantsRequest>,
    ) -> Result<Response<v1::ListTenantsReply>, Status> {
        observe("Tenants/ListTenants", async {
            let caller = self.caller(&request).await?;
            let body = request.get_ref();
            let page = self
                .gatehouse
                .list_tenants(&caller, body.page_size, &body.page_token)
                .await
                .map_err(to_status)?;
            Ok(v1::ListTenantsReply {
                tenants: page.tenants.iter().map(convert::tenant).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn rotate_signing_key(
        &self,
        request: Request<v1::RotateSigningKeyRequest>,
    ) -> Result<Response<v1::SigningKey>, Status> {
        observe("Tenants/RotateSigningKey", async {
            let caller = self.caller(&request).await?;
            let key = self
                .gatehouse
                .rotate_signing_key(&caller, &request.get_ref().tenant_id)
                .await
                .map_err(to_status)?;
            Ok(convert::signing_key(&key))
        })
        .await
    }

    async fn update_tenant_config(
        &self,
        request: Request<v1::UpdateTenantConfigRequest>,
    ) -> Result<Response<v1::Tenant>, Status> {
        observe("Tenants/UpdateTenantConfig", async {
            let caller = self.caller(&request).await?;
            let body = request.into_inner();
            let changes = SettingsChanges {
                access_token_ttl_seconds: body.access_token_ttl_seconds,
                session_absolute_ttl_seconds: body.session_absolute_ttl_seconds,
                session_idle_ttl_seconds: body.session_idle_ttl_seconds,
                password_sign_up_enabled: body.password_sign_up_enabled,
                client_team_creation_enabled: body.client_team_creation_enabled,
                permission_claims_in_token: body.permission_claims_in_token,
                team_creator_default_permissions: body
                    .set_team_creator_default_permissions
                    .then_some(body.team_creator_default_permissions),
                team_member_default_permissions: body
                    .set_team_member_default_permissions
                    .then_some(body.team_member_default_permissions),
            };
            let record = self
                .gatehouse
                .update_tenant_settings(&caller, &body.tenant_id, changes)
                .await
                .map_err(to_status)?;
            Ok(convert::tenant(&record))
        })
        .await
    }
}
