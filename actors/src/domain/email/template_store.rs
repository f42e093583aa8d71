//! A tenant's own email templates: one record per kind, read in place of the built-in
//! default, and the audited transaction functions that set and reset them. A template is
//! validated before it is stored, so a stored template always renders.

use gatehouse_storage::{Transaction, codec};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::EmailKind;
use super::templates::{self, EmailTemplate, RenderedEmail, TemplateVars};
use crate::context::{Context, Timestamp};
use crate::domain::audit::{AuditAction, AuditOrigin};
use crate::domain::change::record_change;
use crate::domain::keyspace;
use crate::error::DomainResult;

/// The template a tenant's messages of one kind are rendered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTemplate {
    /// The kind it renders.
    pub kind: EmailKind,
    /// The template: the tenant's own, or the built-in default.
    pub template: EmailTemplate,
    /// Whether it is the tenant's own.
    pub custom: bool,
    /// When the tenant last set it; `None` for the default.
    pub updated_at: Option<Timestamp>,
}

impl StoredTemplate {
    /// The built-in default of `kind`.
    pub fn default_of(kind: EmailKind) -> StoredTemplate {
        StoredTemplate {
            kind,
            template: templates::default_template(kind),
            custom: false,
            updated_at: None,
        }
    }
}

/// What is stored under `keyspace::email_template`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct TemplateRecord {
    template: EmailTemplate,
    updated_at: Timestamp,
}

/// The audit target of a kind's template.
fn audit_target(kind: EmailKind) -> String {
    format!("email_template:{}", kind.as_str())
}

/// The tenant's own template of `kind`, if it has one.
async fn find(
    tx: &Transaction,
    tenant: &str,
    kind: EmailKind,
) -> DomainResult<Option<TemplateRecord>> {
    match tx
        .get(&keyspace::email_template(tenant, kind.as_str()))
        .await?
    {
        Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
        None => Ok(None),
    }
}

/// The template `tenant` renders `kind` with: its own, or the default.
pub async fn get(tx: &Transaction, tenant: &str, kind: EmailKind) -> DomainResult<StoredTemplate> {
    Ok(match find(tx, tenant, kind).await? {
        Some(record) => StoredTemplate {
            kind,
            template: record.template,
            custom: true,
            updated_at: Some(record.updated_at),
        },
        None => StoredTemplate::default_of(kind),
    })
}

/// Stores `template` as the tenant's own for `kind` after checking that it renders, audited
/// for `origin` (the audit entry names the kind, never the template).
pub async fn set(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    kind: EmailKind,
    template: EmailTemplate,
    origin: &AuditOrigin,
) -> DomainResult<StoredTemplate> {
    templates::validate(kind, &template)?;
    let replaced_custom = find(tx, tenant, kind).await?.is_some();
    let record = TemplateRecord {
        template,
        updated_at: context.now(),
    };
    tx.set(
        &keyspace::email_template(tenant, kind.as_str()),
        &codec::encode(&record)?,
    )?;
    let audit = origin.event(
        AuditAction::EmailTemplateSet,
        audit_target(kind),
        json!({ "kind": kind.as_str(), "replaced_custom": replaced_custom }),
    );
    record_change(tx, context, tenant, Some(audit), []).await?;
    Ok(StoredTemplate {
        kind,
        template: record.template,
        custom: true,
        updated_at: Some(record.updated_at),
    })
}

/// Removes the tenant's own template of `kind`, so the default serves again, audited for
/// `origin`; returns the default.
pub async fn reset(
    tx: &Transaction,
    context: &Context,
    tenant: &str,
    kind: EmailKind,
    origin: &AuditOrigin,
) -> DomainResult<StoredTemplate> {
    let was_custom = find(tx, tenant, kind).await?.is_some();
    tx.clear(&keyspace::email_template(tenant, kind.as_str()))?;
    let audit = origin.event(
        AuditAction::EmailTemplateReset,
        audit_target(kind),
        json!({ "kind": kind.as_str(), "was_custom": was_custom }),
    );
    record_change(tx, context, tenant, Some(audit), []).await?;
    Ok(StoredTemplate::default_of(kind))
}

/// Renders a message of `kind` for `tenant` with its own template or the default.
pub async fn render_for(
    tx: &Transaction,
    tenant: &str,
    kind: EmailKind,
    vars: &TemplateVars,
) -> DomainResult<RenderedEmail> {
    let stored = get(tx, tenant, kind).await?;
    templates::render(kind, &stored.template, vars)
}

#[cfg(test)]
#[path = "template_store_tests.rs"]
mod tests;
