//! A tenant's own templates, stored per kind, with the built-in defaults for the rest.

use gatehouse_storage::{Transaction, codec};

use super::EmailKind;
use super::templates::{self, EmailTemplate, RenderedEmail, TemplateVars};
use crate::domain::keyspace;
use crate::error::DomainResult;

/// Renders the tenant's template of `kind` (or the default) with `vars`.
pub async fn render_for(
    tx: &Transaction,
    tenant: &str,
    kind: EmailKind,
    vars: &TemplateVars,
) -> DomainResult<RenderedEmail> {
    let template = match tx
        .get(&keyspace::email_template(tenant, kind.as_str()))
        .await?
    {
        Some(bytes) => codec::decode::<EmailTemplate>(&bytes)?,
        None => templates::default_template(kind),
    };
    templates::render(kind, &template, vars)
}
