//! `gatehouse.v1.Tenants` (operator only).

use gatehouse_actors::tenants::anonymous::AnonymousSettingsChanges;
use gatehouse_actors::tenants::auth_settings::{MfaSettingsChanges, PasskeySettingsChanges};
use gatehouse_actors::tenants::{EmailSettingsChanges, SettingsChanges};
use gatehouse_protocol::v1;
use gatehouse_protocol::v1::tenants_server::Tenants;
use tonic::{Request, Response, Status};

use super::{Api, convert};

#[tonic::async_trait]
impl Tenants for Api {
    async fn create_tenant(
        &self,
        request: Request<v1::CreateTenantRequest>,
    ) -> Result<Response<v1::CreateTenantReply>, Status> {
        self.rpc("Tenants/CreateTenant", request, |call| async move {
            let body = call.body();
            let created = self
                .gatehouse
                .create_tenant(&call.caller, &body.display_name, &body.tenant_id)
                .await?;
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
        self.rpc("Tenants/GetTenant", request, |call| async move {
            let record = self
                .gatehouse
                .get_tenant(&call.caller, &call.body().tenant_id)
                .await?;
            Ok(convert::tenant(&record))
        })
        .await
    }

    async fn list_tenants(
        &self,
        request: Request<v1::ListTenantsRequest>,
    ) -> Result<Response<v1::ListTenantsReply>, Status> {
        self.rpc("Tenants/ListTenants", request, |call| async move {
            let body = call.body();
            let page = self
                .gatehouse
                .list_tenants(&call.caller, body.page_size, &body.page_token)
                .await?;
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
        self.rpc("Tenants/RotateSigningKey", request, |call| async move {
            let key = self
                .gatehouse
                .rotate_signing_key(&call.caller, &call.body().tenant_id)
                .await?;
            Ok(convert::signing_key(&key))
        })
        .await
    }

    async fn update_tenant_config(
        &self,
        request: Request<v1::UpdateTenantConfigRequest>,
    ) -> Result<Response<v1::Tenant>, Status> {
        self.rpc("Tenants/UpdateTenantConfig", request, |call| async move {
            let (caller, body) = call.into_parts();
            let changes = SettingsChanges {
                access_token_ttl_seconds: body.access_token_ttl_seconds,
                session_absolute_ttl_seconds: body.session_absolute_ttl_seconds,
                session_idle_ttl_seconds: body.session_idle_ttl_seconds,
                refresh_grace_seconds: body.refresh_grace_seconds,
                password_sign_up_enabled: body.password_sign_up_enabled,
                client_team_creation_enabled: body.client_team_creation_enabled,
                permission_claims_in_token: body.permission_claims_in_token,
                team_creator_default_permissions: body
                    .set_team_creator_default_permissions
                    .then_some(body.team_creator_default_permissions),
                team_member_default_permissions: body
                    .set_team_member_default_permissions
                    .then_some(body.team_member_default_permissions),
                trusted_domains: body.set_trusted_domains.then_some(body.trusted_domains),
                email: EmailSettingsChanges {
                    from_address: body.email_from_address,
                    from_name: body.email_from_name,
                    reply_to: body.email_reply_to,
                    verification_required: body.email_verification_required,
                    code_ttl_seconds: body.email_code_ttl_seconds,
                    code_max_attempts: body.email_code_max_attempts,
                    sends_per_address: body.email_sends_per_address,
                    sends_per_source: body.email_sends_per_source,
                    send_window_seconds: body.email_send_window_seconds,
                    sign_in_code_enabled: body.sign_in_code_enabled,
                    sign_up_with_code_enabled: body.sign_up_with_code_enabled,
                    new_sign_in_notice: body.email_new_sign_in_notice,
                    sign_up_enumeration_protection: body.sign_up_enumeration_protection,
                },
                mfa: MfaSettingsChanges {
                    required: body.mfa_required,
                    grace_period_seconds: body.mfa_grace_period_seconds,
                    step_up_window_seconds: body.step_up_window_seconds,
                },
                passkeys: PasskeySettingsChanges {
                    enabled: body.passkeys_enabled,
                    rp_id: body.passkey_rp_id,
                    rp_name: body.passkey_rp_name,
                    origins: body.set_passkey_origins.then_some(body.passkey_origins),
                },
                anonymous: AnonymousSettingsChanges {
                    enabled: body.anonymous_enabled,
                    idle_ttl_seconds: body.anonymous_idle_ttl_seconds,
                },
            };
            let record = self
                .gatehouse
                .update_tenant_settings(&caller, &body.tenant_id, changes)
                .await?;
            Ok(convert::tenant(&record))
        })
        .await
    }
}
