//! The tenant's email templates: read, set (refused unless it renders), reset to the
//! built-in default, and preview with example values (servers and operators).

use crate::access::Caller;
use crate::domain::audit::AuditOrigin;
use crate::domain::email::EmailKind;
use crate::domain::email::template_store::{self, StoredTemplate};
use crate::domain::email::templates::{self, EmailTemplate, RenderedEmail};
use crate::error::DomainResult;
use crate::gatehouse::Gatehouse;

impl Gatehouse {
    /// The tenant's template of `kind`, or the built-in default.
    pub async fn get_email_template(
        &self,
        caller: &Caller,
        kind: &str,
    ) -> DomainResult<StoredTemplate> {
        let tenant = caller.require_server()?;
        let kind = EmailKind::parse("kind", kind)?;
        let tenant_id = tenant.tenant_id();
        self.services
            .db
            .run(|tx| async move { template_store::get(&tx, tenant_id, kind).await })
            .await
    }

    /// Sets the tenant's template of `kind`; one that does not render is refused with the
    /// part and the engine's message.
    pub async fn set_email_template(
        &self,
        caller: &Caller,
        kind: &str,
        template: EmailTemplate,
    ) -> DomainResult<StoredTemplate> {
        let tenant = caller.require_server()?;
        let kind = EmailKind::parse("kind", kind)?;
        templates::validate(kind, &template)?;
        let tenant_id = tenant.tenant_id();
        let (context, origin, template) =
            (&self.services.context, &AuditOrigin::of(caller), &template);
        self.services
            .db
            .run(|tx| async move {
                template_store::set(&tx, context, tenant_id, kind, template.clone(), origin).await
            })
            .await
    }

    /// Goes back to the built-in template of `kind`.
    pub async fn reset_email_template(
        &self,
        caller: &Caller,
        kind: &str,
    ) -> DomainResult<StoredTemplate> {
        let tenant = caller.require_server()?;
        let kind = EmailKind::parse("kind", kind)?;
        let tenant_id = tenant.tenant_id();
        let (context, origin) = (&self.services.context, &AuditOrigin::of(caller));
        self.services
            .db
            .run(|tx| async move { template_store::reset(&tx, context, tenant_id, kind, origin).await })
            .await
    }

    /// Renders `given` (or the tenant's template of `kind`) with example values.
    pub async fn preview_email_template(
        &self,
        caller: &Caller,
        kind: &str,
        given: Option<EmailTemplate>,
    ) -> DomainResult<RenderedEmail> {
        let tenant = caller.require_server()?;
        let kind = EmailKind::parse("kind", kind)?;
        let mut vars = templates::sample_vars(kind);
        vars.tenant_name = tenant.record.display_name.clone();
        // Codes and links live as long as the tenant says.
        if matches!(
            kind,
            EmailKind::Verification | EmailKind::PasswordReset | EmailKind::SignInCode
        ) {
            vars.expires_in_minutes = tenant.record.settings.email.code_ttl_seconds.div_ceil(60);
        }
        if let Some(template) = given {
            return templates::render(kind, &template, &vars);
        }
        let tenant_id = tenant.tenant_id();
        let vars = &vars;
        self.services
            .db
            .run(|tx| async move { template_store::render_for(&tx, tenant_id, kind, vars).await })
            .await
    }
}
