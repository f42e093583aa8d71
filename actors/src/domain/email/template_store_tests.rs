//! Unit tests of the template store on the in-memory database: custom templates, refusal
//! of one that does not render, reset, tenant isolation and the audit entries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use gatehouse_storage::Database;

use super::*;
use crate::context::{ManualClock, OsEntropy};
use crate::domain::audit::{self, AuditEntry};
use crate::error::DomainError;

const MARKER: &str = "Distinctive body text";

fn test_context() -> Context {
    Context {
        clock: Arc::new(ManualClock::new(Timestamp(1_780_000_000_000))),
        entropy: Arc::new(OsEntropy),
        live_sessions: Default::default(),
    }
}

fn operator() -> AuditOrigin {
    AuditOrigin {
        actor: "operator".to_owned(),
        source_ip: "192.0.2.1".to_owned(),
    }
}

fn custom_template() -> EmailTemplate {
    EmailTemplate {
        subject: "Confirm {{ user_email }}".to_owned(),
        html: format!("<p>{MARKER}: {{{{ code }}}} {{{{ link }}}}</p>"),
        text: format!("{MARKER}: {{{{ code }}}} {{{{ link }}}}"),
    }
}

async fn set_template(
    db: &Database,
    context: &Context,
    tenant: &str,
    kind: EmailKind,
    template: EmailTemplate,
) -> DomainResult<StoredTemplate> {
    let (template, origin) = (&template, &operator());
    db.run(|tx| async move { set(&tx, context, tenant, kind, template.clone(), origin).await })
        .await
}

async fn get_template(db: &Database, tenant: &str, kind: EmailKind) -> StoredTemplate {
    db.run(|tx| async move { get(&tx, tenant, kind).await })
        .await
        .unwrap()
}

async fn audit_entries(db: &Database, tenant: &str) -> Vec<AuditEntry> {
    db.run(|tx| async move { audit::read_entries(&tx, tenant, 0, 100).await })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tenant_without_its_own_template_gets_the_default() {
    let db = Database::memory();
    for kind in EmailKind::ALL {
        assert_eq!(
            get_template(&db, "acme", kind).await,
            StoredTemplate::default_of(kind)
        );
    }
}

#[tokio::test]
async fn a_set_template_is_read_back_as_custom_and_renders() {
    let db = Database::memory();
    let context = test_context();
    let kind = EmailKind::Verification;
    let stored = set_template(&db, &context, "acme", kind, custom_template())
        .await
        .unwrap();
    assert!(stored.custom);
    assert_eq!(stored.updated_at, Some(context.now()));
    let read = get_template(&db, "acme", kind).await;
    assert_eq!(read, stored);
    assert_eq!(read.template, custom_template());
    assert_eq!(read.kind, kind);
    let vars = templates::sample_vars(kind);
    let vars = &vars;
    let email = db
        .run(|tx| async move { render_for(&tx, "acme", kind, vars).await })
        .await
        .unwrap();
    assert_eq!(email.subject, "Confirm ada@example.com");
    assert!(email.text.starts_with(MARKER));
    assert!(email.text.contains(&vars.code));
    assert_eq!(
        get_template(&db, "acme", EmailKind::PasswordReset).await,
        StoredTemplate::default_of(EmailKind::PasswordReset)
    );
}

#[tokio::test]
async fn a_template_that_does_not_render_is_refused_and_nothing_is_stored() {
    let db = Database::memory();
    let context = test_context();
    let kind = EmailKind::SignInCode;
    let broken = EmailTemplate {
        html: "<p>{{ cdoe }}</p>".to_owned(),
        ..custom_template()
    };
    let error = set_template(&db, &context, "acme", kind, broken)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DomainError::InvalidArgument {
                field: "template.html",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        get_template(&db, "acme", kind).await,
        StoredTemplate::default_of(kind)
    );
    let raw = db
        .run(|tx| async move {
            Ok::<_, DomainError>(
                tx.get(&keyspace::email_template("acme", kind.as_str()))
                    .await?,
            )
        })
        .await
        .unwrap();
    assert!(raw.is_none());
    assert!(audit_entries(&db, "acme").await.is_empty());
}

#[tokio::test]
async fn reset_brings_back_the_default() {
    let db = Database::memory();
    let context = test_context();
    let kind = EmailKind::PasswordChanged;
    let template = EmailTemplate {
        subject: "Password changed".to_owned(),
        html: "<p>From {{ ip_address }}</p>".to_owned(),
        text: "From {{ ip_address }}".to_owned(),
    };
    set_template(&db, &context, "acme", kind, template)
        .await
        .unwrap();
    let (context, origin) = (&context, &operator());
    let reset_to = db
        .run(|tx| async move { reset(&tx, context, "acme", kind, origin).await })
        .await
        .unwrap();
    assert_eq!(reset_to, StoredTemplate::default_of(kind));
    assert_eq!(get_template(&db, "acme", kind).await, reset_to);
    let vars = templates::sample_vars(kind);
    let vars = &vars;
    let email = db
        .run(|tx| async move { render_for(&tx, "acme", kind, vars).await })
        .await
        .unwrap();
    assert_eq!(email.subject, "Your Example password was changed");
}

#[tokio::test]
async fn one_tenant_does_not_see_another_tenants_template() {
    let db = Database::memory();
    let context = test_context();
    let kind = EmailKind::Verification;
    set_template(&db, &context, "tenant-a", kind, custom_template())
        .await
        .unwrap();
    assert!(get_template(&db, "tenant-a", kind).await.custom);
    assert_eq!(
        get_template(&db, "tenant-b", kind).await,
        StoredTemplate::default_of(kind)
    );
    let vars = templates::sample_vars(kind);
    let vars = &vars;
    let email = db
        .run(|tx| async move { render_for(&tx, "tenant-b", kind, vars).await })
        .await
        .unwrap();
    assert!(!email.text.contains(MARKER));
    assert!(audit_entries(&db, "tenant-b").await.is_empty());
}

#[tokio::test]
async fn set_and_reset_are_audited_by_kind_without_the_template() {
    let db = Database::memory();
    let context = test_context();
    let kind = EmailKind::Verification;
    set_template(&db, &context, "acme", kind, custom_template())
        .await
        .unwrap();
    let (context_ref, origin) = (&context, &operator());
    db.run(|tx| async move { reset(&tx, context_ref, "acme", kind, origin).await })
        .await
        .unwrap();
    let entries = audit_entries(&db, "acme").await;
    assert_eq!(entries.len(), 2);
    let (set_entry, reset_entry) = (&entries[0].event, &entries[1].event);
    assert_eq!(set_entry.action, "email_template.set");
    assert_eq!(reset_entry.action, "email_template.reset");
    for event in [set_entry, reset_entry] {
        assert_eq!(event.target, "email_template:verification");
        assert_eq!(event.actor, "operator");
        assert_eq!(event.source_ip, "192.0.2.1");
        assert_eq!(event.details["kind"], "verification");
    }
    assert_eq!(set_entry.details["replaced_custom"], false);
    assert_eq!(reset_entry.details["was_custom"], true);
    let stored = serde_json::to_string(&entries).unwrap();
    assert!(!stored.contains(MARKER), "{stored}");
    assert!(!stored.contains("Confirm"), "{stored}");
}
