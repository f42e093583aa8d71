//! Message templates: a subject, an HTML body and a text body per kind, rendered with
//! minijinja. HTML bodies are auto-escaped; the subject and text body are plain text.
//! Built-in defaults serve every kind a tenant has not customised.

use serde::{Deserialize, Serialize};

use super::EmailKind;
use crate::error::{DomainError, DomainResult};

/// One kind's template source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailTemplate {
    /// Subject line template.
    pub subject: String,
    /// HTML body template (auto-escaped).
    pub html: String,
    /// Text body template.
    pub text: String,
}

/// The values a template may use; empty strings where a kind has no such value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateVars {
    /// The user's display name (may be empty).
    pub user_display_name: String,
    /// The recipient address.
    pub user_email: String,
    /// The tenant's display name.
    pub tenant_name: String,
    /// The one-time code, when the message carries one.
    pub code: String,
    /// The link, when the message carries one.
    pub link: String,
    /// Minutes until the code and link expire.
    pub expires_in_minutes: u32,
    /// Source address of the request that caused the message.
    pub ip_address: String,
    /// User agent of that request.
    pub user_agent: String,
    /// Team name (team invitations).
    pub team_name: String,
    /// Who sent an invitation or share.
    pub inviter_name: String,
    /// The factor added or removed (factor notices).
    pub factor_name: String,
}

/// A rendered message.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// Subject (one line).
    pub subject: String,
    /// HTML body.
    pub html: String,
    /// Text body.
    pub text: String,
}

impl std::fmt::Debug for RenderedEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedEmail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The built-in template of `kind`.
pub fn default_template(kind: EmailKind) -> EmailTemplate {
    let (subject, lead) = match kind {
        EmailKind::Verification => (
            "Verify your email for {{ tenant_name }}",
            "Use this code to verify your email address:",
        ),
        EmailKind::PasswordReset => (
            "Reset your {{ tenant_name }} password",
            "Use this code or link to choose a new password:",
        ),
        EmailKind::SignInCode => (
            "Your {{ tenant_name }} sign-in code: {{ code }}",
            "Use this code or link to sign in:",
        ),
        EmailKind::TeamInvitation => (
            "You are invited to {{ team_name }} on {{ tenant_name }}",
            "Open this link to join the team:",
        ),
        EmailKind::ShareInvitation => (
            "{{ inviter_name }} shared something with you on {{ tenant_name }}",
            "Open this link to see it:",
        ),
        EmailKind::NewSignIn => (
            "New sign-in to your {{ tenant_name }} account",
            "Your account was just signed in to.",
        ),
        EmailKind::PasswordChanged => (
            "Your {{ tenant_name }} password was changed",
            "Your password was changed.",
        ),
        EmailKind::FactorAdded => (
            "A sign-in method was added to your {{ tenant_name }} account",
            "A sign-in method was added: {{ factor_name }}.",
        ),
        EmailKind::FactorRemoved => (
            "A sign-in method was removed from your {{ tenant_name }} account",
            "A sign-in method was removed: {{ factor_name }}.",
        ),
    };
    EmailTemplate {
        subject: subject.to_owned(),
        html: format!(
            "<p>{lead}</p>{{% if code %}}<p><strong>{{{{ code }}}}</strong></p>{{% endif %}}\
             {{% if link %}}<p><a href=\"{{{{ link }}}}\">{{{{ link }}}}</a></p>{{% endif %}}"
        ),
        text: format!(
            "{lead}\n{{% if code %}}\n{{{{ code }}}}\n{{% endif %}}{{% if link %}}\n{{{{ link }}}}\n{{% endif %}}"
        ),
    }
}

/// Renders `template` for `kind` with `vars`.
pub fn render(
    kind: EmailKind,
    template: &EmailTemplate,
    vars: &TemplateVars,
) -> DomainResult<RenderedEmail> {
    let _ = kind;
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|name| {
        if name == "html" {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    let one = |field: &'static str, name: &'static str, source: &str| -> DomainResult<String> {
        let mut env = env.clone();
        env.add_template_owned(name, source.to_owned())
            .map_err(|error| DomainError::invalid(field, error.to_string()))?;
        env.get_template(name)
            .and_then(|template| template.render(vars))
            .map_err(|error| DomainError::invalid(field, error.to_string()))
    };
    let subject = one("template.subject", "subject", &template.subject)?;
    Ok(RenderedEmail {
        subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
        html: one("template.html", "html", &template.html)?,
        text: one("template.text", "text", &template.text)?,
    })
}

/// Example values for previews and for checking a template when it is set.
pub fn sample_vars(kind: EmailKind) -> TemplateVars {
    let _ = kind;
    TemplateVars {
        user_display_name: "Ada Lovelace".to_owned(),
        user_email: "ada@example.com".to_owned(),
        tenant_name: "Example".to_owned(),
        code: "123456".to_owned(),
        link: "https://app.example.com/verify?token=example".to_owned(),
        expires_in_minutes: 10,
        ip_address: "203.0.113.7".to_owned(),
        user_agent: "Mozilla/5.0".to_owned(),
        team_name: "Engineering".to_owned(),
        inviter_name: "Grace Hopper".to_owned(),
        factor_name: "passkey".to_owned(),
    }
}

/// Refuses a template that does not render with sample values, naming the failing part.
pub fn validate(kind: EmailKind, template: &EmailTemplate) -> DomainResult<()> {
    render(kind, template, &sample_vars(kind)).map(|_| ())
}
