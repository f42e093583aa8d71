//! Tenant administration (operator only).

use crate::access::Caller;
use crate::domain::audit::AuditOrigin;
use crate::domain::signing::SigningKeyRecord;
use crate::domain::tenants::{
    self, CreatedTenant, SettingsChanges, TenantRecord, validate_display_name, validate_tenant_id,
};
use crate::error::DomainResult;
use crate::gatehouse::Gatehouse;
use crate::runtime::tenant_actor::{CreateTenant, RotateSigningKey, UpdateTenantSettings};

/// A page of tenants.
#[derive(Debug, Clone)]
pub struct TenantPage {
    /// The tenants.
    pub tenants: Vec<TenantRecord>,
    /// Token of the next page, empty at the end.
    pub next_page_token: String,
}

impl Gatehouse {
    /// Creates a tenant; `tenant_id` is generated when empty.
    pub async fn create_tenant(
        &self,
        caller: &Caller,
        display_name: &str,
        tenant_id: &str,
    ) -> DomainResult<CreatedTenant> {
        caller.require_operator()?;
        validate_display_name("display_name", display_name, true)?;
        let tenant_id = if tenant_id.is_empty() {
            format!("t{}", hex::encode(self.services.context.random::<6>()))
        } else {
            validate_tenant_id(tenant_id)?;
            tenant_id.to_owned()
        };
        self.route(CreateTenant {
            tenant: tenant_id,
            display_name: display_name.trim().to_owned(),
            origin: AuditOrigin::of(caller),
        })
        .await
    }

    /// Reads a tenant.
    pub async fn get_tenant(&self, caller: &Caller, tenant_id: &str) -> DomainResult<TenantRecord> {
        caller.require_operator()?;
        if tenant_id.is_empty() {
            return Err(crate::error::DomainError::invalid(
                "tenant_id",
                "must not be empty",
            ));
        }
        self.services
            .db
            .run(|tx| async move { tenants::read_tenant(&tx, tenant_id).await })
            .await
    }

    /// Lists tenants by id.
    pub async fn list_tenants(
        &self,
        caller: &Caller,
        page_size: u32,
        page_token: &str,
    ) -> DomainResult<TenantPage> {
        caller.require_operator()?;
        let limit = super::page_size(page_size);
        let after = super::decode_page_token('t', page_token)?;
        let after = after.as_deref();
        let (records, more) = self
            .services
            .db
            .run(|tx| async move { tenants::list_tenants(&tx, after, limit).await })
            .await?;
        let next_page_token = match (more, records.last()) {
            (true, Some(last)) => super::encode_page_token('t', &last.tenant_id),
            _ => String::new(),
        };
        Ok(TenantPage {
            tenants: records,
            next_page_token,
        })
    }

    /// Changes a tenant's settings through its actor (operator only).
    pub async fn update_tenant_settings(
        &self,
        caller: &Caller,
        tenant_id: &str,
        changes: SettingsChanges,
    ) -> DomainResult<TenantRecord> {
        caller.require_operator()?;
        self.services.tenant(tenant_id).await?;
        self.route(UpdateTenantSettings {
            tenant: tenant_id.to_owned(),
            changes: Box::new(changes),
            origin: crate::domain::audit::AuditOrigin::of(caller),
        })
        .await
    }

    /// Rotates a tenant's signing key through its actor.
    pub async fn rotate_signing_key(
        &self,
        caller: &Caller,
        tenant_id: &str,
    ) -> DomainResult<SigningKeyRecord> {
        caller.require_operator()?;
        self.services.tenant(tenant_id).await?;
        self.route(RotateSigningKey {
            tenant: tenant_id.to_owned(),
            origin: AuditOrigin::of(caller),
        })
        .await
    }
}
