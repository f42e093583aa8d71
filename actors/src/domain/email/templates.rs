//! Message templates: a subject, an HTML body and a text body per kind, rendered with
//! minijinja. HTML bodies are auto-escaped; the subject and text body are plain text, and the
//! subject is collapsed onto one line. Built-in defaults serve every kind a tenant has not
//! customised.
//!
//! A template sees only the variables its kind fills ([`variables_for`]), and undefined
//! values are errors, so a misspelled or misplaced name is refused when an operator sets the
//! template ([`validate`]) rather than sending an email with a hole in it. Each part is
//! rendered on its own, unregistered in an environment that holds no templates and has no
//! loader: an include, import or extends finds nothing, so one tenant's template cannot read
//! another's. Rendering runs on a fuel budget so a template cannot loop for long.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, State, UndefinedBehavior, Value};
use serde::{Deserialize, Serialize};

use super::EmailKind;
use crate::error::{DomainError, DomainResult};

#[path = "template_defaults.rs"]
mod defaults;

pub use defaults::default_template;

/// Largest subject template source, in bytes.
pub const MAX_SUBJECT_SOURCE_BYTES: usize = 1024;
/// Largest HTML or text template source, in bytes.
pub const MAX_BODY_SOURCE_BYTES: usize = 64 * 1024;
/// Longest rendered subject, in bytes: the longest line RFC 5322 allows.
pub const MAX_SUBJECT_BYTES: usize = 998;
/// Largest rendered HTML or text body, in bytes.
pub const MAX_RENDERED_BODY_BYTES: usize = 1024 * 1024;
/// Most a subject may write before it is collapsed onto one line.
const MAX_RENDERED_SUBJECT_BYTES: usize = 16 * 1024;

/// Instructions one part may execute; the built-in templates use well under a tenth of it.
const RENDER_FUEL: u64 = 100_000;

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

/// Every variable a template can use, with what it holds.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "user_display_name",
        "the recipient's display name; may be empty",
    ),
    ("user_email", "the recipient's email address"),
    ("tenant_name", "the tenant's display name"),
    ("code", "the one-time code"),
    (
        "link",
        "the link that does what the code does (may be empty: no link was asked for), or opens the invitation",
    ),
    (
        "expires_in_minutes",
        "minutes until the code and link expire, as a number",
    ),
    (
        "expires_in",
        "the same expiry in words (\"10 minutes\", \"2 hours\", \"7 days\"); empty when there is none",
    ),
    (
        "ip_address",
        "source address of the request that caused the message; may be empty",
    ),
    (
        "user_agent",
        "user agent (browser or app) of that request; may be empty",
    ),
    ("team_name", "the team the invitation is to"),
    (
        "inviter_name",
        "who sent the invitation or share; may be empty",
    ),
    (
        "factor_name",
        "the sign-in method that was added or removed, such as \"passkey\"",
    ),
];

/// The variables a message of `kind` fills; a template of that kind may use only these.
/// Every kind fills the recipient's name and address and the tenant's name. Invitations
/// carry no request details: the request is the inviter's, not the recipient's.
pub fn variables_for(kind: EmailKind) -> &'static [&'static str] {
    match kind {
        EmailKind::Verification | EmailKind::PasswordReset | EmailKind::SignInCode => &[
            "user_display_name",
            "user_email",
            "tenant_name",
            "code",
            "link",
            "expires_in_minutes",
            "expires_in",
            "ip_address",
            "user_agent",
        ],
        EmailKind::TeamInvitation => &[
            "user_display_name",
            "user_email",
            "tenant_name",
            "link",
            "expires_in_minutes",
            "expires_in",
            "team_name",
            "inviter_name",
        ],
        EmailKind::ShareInvitation => &[
            "user_display_name",
            "user_email",
            "tenant_name",
            "link",
            "expires_in_minutes",
            "expires_in",
            "inviter_name",
        ],
        EmailKind::NewSignIn | EmailKind::PasswordChanged | EmailKind::SignUpAttempt => &[
            "user_display_name",
            "user_email",
            "tenant_name",
            "ip_address",
            "user_agent",
        ],
        EmailKind::FactorAdded | EmailKind::FactorRemoved => &[
            "user_display_name",
            "user_email",
            "tenant_name",
            "factor_name",
            "ip_address",
            "user_agent",
        ],
    }
}

/// The part of a template being rendered; its name is the field errors point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Subject,
    Html,
    Text,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Html => "html",
            Part::Text => "text",
        }
    }

    fn field(self) -> &'static str {
        match self {
            Part::Subject => "template.subject",
            Part::Html => "template.html",
            Part::Text => "template.text",
        }
    }

    /// The most a part may write while it renders (a subject is checked again, against
    /// [`MAX_SUBJECT_BYTES`], once it is on one line).
    fn max_rendered_bytes(self) -> usize {
        match self {
            Part::Subject => MAX_RENDERED_SUBJECT_BYTES,
            Part::Html | Part::Text => MAX_RENDERED_BODY_BYTES,
        }
    }

    fn max_source_bytes(self) -> usize {
        match self {
            Part::Subject => MAX_SUBJECT_SOURCE_BYTES,
            Part::Html | Part::Text => MAX_BODY_SOURCE_BYTES,
        }
    }
}

/// The one environment every part renders in. It holds no templates and has no loader, and
/// it keeps only minijinja's pure built-in filters, tests and functions (not `debug`).
static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.remove_global("debug");
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_fuel(Some(RENDER_FUEL));
    env.set_auto_escape_callback(|name| {
        if name == Part::Html.name() {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(html_formatter);
    env
});

/// Escapes strings in HTML as `& < > " '` only, so links keep their slashes readable
/// (minijinja's own escaping also writes `/` as `&#x2f;`); everything else is minijinja's.
fn html_formatter(
    out: &mut minijinja::Output,
    state: &State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(text) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            let mut escaped = String::with_capacity(text.len());
            for character in text.chars() {
                match character {
                    '&' => escaped.push_str("&amp;"),
                    '<' => escaped.push_str("&lt;"),
                    '>' => escaped.push_str("&gt;"),
                    '"' => escaped.push_str("&quot;"),
                    '\'' => escaped.push_str("&#39;"),
                    other => escaped.push(other),
                }
            }
            std::fmt::Write::write_str(out, &escaped).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// "10 minutes", "2 hours", "7 days", or empty for no expiry.
fn expiry_in_words(minutes: u32) -> String {
    let (count, unit) = match minutes {
        0 => return String::new(),
        _ if minutes.is_multiple_of(1440) => (minutes / 1440, "day"),
        _ if minutes.is_multiple_of(60) => (minutes / 60, "hour"),
        _ => (minutes, "minute"),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural}")
}

/// The variables `kind` fills, and only those, so a template that uses another fails.
fn template_context(kind: EmailKind, vars: &TemplateVars) -> BTreeMap<&'static str, Value> {
    variables_for(kind)
        .iter()
        .map(|&name| {
            let value = match name {
                "user_display_name" => Value::from(vars.user_display_name.as_str()),
                "user_email" => Value::from(vars.user_email.as_str()),
                "tenant_name" => Value::from(vars.tenant_name.as_str()),
                "code" => Value::from(vars.code.as_str()),
                "link" => Value::from(vars.link.as_str()),
                "expires_in_minutes" => Value::from(vars.expires_in_minutes),
                "expires_in" => Value::from(expiry_in_words(vars.expires_in_minutes)),
                "ip_address" => Value::from(vars.ip_address.as_str()),
                "user_agent" => Value::from(vars.user_agent.as_str()),
                "team_name" => Value::from(vars.team_name.as_str()),
                "inviter_name" => Value::from(vars.inviter_name.as_str()),
                "factor_name" => Value::from(vars.factor_name.as_str()),
                _ => Value::UNDEFINED,
            };
            (name, value)
        })
        .collect()
}

/// A minijinja error as an invalid `part`, with its line and message.
fn template_error(part: Part, error: &minijinja::Error) -> DomainError {
    let mut message = error.kind().to_string();
    if let Some(detail) = error.detail() {
        message = format!("{message}: {detail}");
    }
    if let Some(line) = error.line() {
        message = format!("line {line}: {message}");
    }
    DomainError::invalid(part.field(), message)
}

/// The first line of `source` that names `variable`, for an error message.
fn line_naming(source: &str, variable: &str) -> Option<usize> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    source
        .lines()
        .position(|line| {
            line.match_indices(variable).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + variable.len()..].chars().next();
                !before.is_some_and(is_word) && !after.is_some_and(is_word)
            })
        })
        .map(|index| index + 1)
}

/// Refuses a variable `kind` does not fill anywhere in the template, whether or not the
/// branch that uses it runs with the values at hand.
fn check_variables(
    kind: EmailKind,
    part: Part,
    source: &str,
    template: &minijinja::Template<'_, '_>,
) -> DomainResult<()> {
    let allowed = variables_for(kind);
    let globals: HashSet<&str> = ENVIRONMENT.globals().map(|(name, _)| name).collect();
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !allowed.contains(&name.as_str()) && !globals.contains(name.as_str()))
        .collect();
    unknown.sort();
    let Some(name) = unknown.first() else {
        return Ok(());
    };
    let what = if VARIABLES.iter().any(|(known, _)| known == name) {
        format!("{} messages do not fill `{name}`", kind.as_str())
    } else {
        format!("unknown variable `{name}`")
    };
    let at = line_naming(source, name)
        .map(|line| format!("line {line}: "))
        .unwrap_or_default();
    Err(DomainError::invalid(
        part.field(),
        format!(
            "{at}{what}; {} messages fill {}",
            kind.as_str(),
            allowed.join(", ")
        ),
    ))
}

/// Renders one part: refuses an oversize source, a syntax error and a variable the kind
/// does not fill, then renders with the kind's variables.
fn render_part(
    kind: EmailKind,
    part: Part,
    source: &str,
    context: &BTreeMap<&'static str, Value>,
) -> DomainResult<String> {
    let limit = part.max_source_bytes();
    if source.len() > limit {
        return Err(DomainError::invalid(
            part.field(),
            format!("is {} bytes; at most {limit} are allowed", source.len()),
        ));
    }
    let template = ENVIRONMENT
        .template_from_named_str(part.name(), source)
        .map_err(|error| template_error(part, &error))?;
    check_variables(kind, part, source, &template)?;
    let limit = part.max_rendered_bytes();
    let mut output = BoundedOutput {
        bytes: Vec::new(),
        limit,
        exceeded: false,
    };
    if let Err(error) = template.render_captured_to(context, &mut output) {
        return Err(if output.exceeded {
            DomainError::invalid(part.field(), format!("renders to more than {limit} bytes"))
        } else {
            template_error(part, &error)
        });
    }
    String::from_utf8(output.bytes).map_err(|error| {
        DomainError::Internal(format!("rendered {} is not UTF-8: {error}", part.name()))
    })
}

/// Rendered output that stops growing at `limit` bytes, so a template cannot fill memory
/// by writing.
struct BoundedOutput {
    bytes: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl std::io::Write for BoundedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("rendered output is too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `text` on one line: runs of whitespace (line breaks included) become one space, and other
/// control characters are dropped, so nothing can add a header line.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .map(|word| word.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renders `template` for `kind` with `vars`.
pub fn render(
    kind: EmailKind,
    template: &EmailTemplate,
    vars: &TemplateVars,
) -> DomainResult<RenderedEmail> {
    let context = template_context(kind, vars);
    let subject = one_line(&render_part(
        kind,
        Part::Subject,
        &template.subject,
        &context,
    )?);
    if subject.len() > MAX_SUBJECT_BYTES {
        return Err(DomainError::invalid(
            Part::Subject.field(),
            format!(
                "renders to {} bytes; a subject may have at most {MAX_SUBJECT_BYTES}",
                subject.len()
            ),
        ));
    }
    Ok(RenderedEmail {
        subject,
        html: render_part(kind, Part::Html, &template.html, &context)?,
        text: render_part(kind, Part::Text, &template.text, &context)?,
    })
}

/// Example values for previews and for checking a template when it is set: every field is
/// filled (rendering uses only the kind's), with a link that fits the kind.
pub fn sample_vars(kind: EmailKind) -> TemplateVars {
    let (link, expires_in_minutes) = match kind {
        EmailKind::Verification => ("https://app.example.com/verify-email?token=Zm9vYmFy", 10),
        EmailKind::PasswordReset => ("https://app.example.com/reset-password?token=Zm9vYmFy", 10),
        EmailKind::SignInCode => ("https://app.example.com/sign-in?token=Zm9vYmFy", 10),
        EmailKind::TeamInvitation => ("https://app.example.com/invitations/Zm9vYmFy", 10080),
        EmailKind::ShareInvitation => ("https://app.example.com/shares/Zm9vYmFy", 4320),
        EmailKind::NewSignIn
        | EmailKind::PasswordChanged
        | EmailKind::FactorAdded
        | EmailKind::FactorRemoved
        | EmailKind::SignUpAttempt => ("https://app.example.com/", 0),
    };
    TemplateVars {
        user_display_name: "Ada Lovelace".to_owned(),
        user_email: "ada@example.com".to_owned(),
        tenant_name: "Example".to_owned(),
        code: "123456".to_owned(),
        link: link.to_owned(),
        expires_in_minutes,
        ip_address: "203.0.113.7".to_owned(),
        user_agent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Firefox/133.0".to_owned(),
        team_name: "Engineering".to_owned(),
        inviter_name: "Grace Hopper".to_owned(),
        factor_name: "passkey".to_owned(),
    }
}

/// Refuses a template that does not render, naming the failing part: it must render with
/// the sample values and with the optional ones (display name, inviter, link, request
/// details, expiry) left empty, and use no variable its kind does not fill, on any branch.
pub fn validate(kind: EmailKind, template: &EmailTemplate) -> DomainResult<()> {
    let sample = sample_vars(kind);
    render(kind, template, &sample)?;
    render(kind, template, &sparse_vars(kind)).map(|_| ())
}

/// [`sample_vars`] with every value that may be missing left empty.
fn sparse_vars(kind: EmailKind) -> TemplateVars {
    TemplateVars {
        user_display_name: String::new(),
        link: String::new(),
        expires_in_minutes: 0,
        ip_address: String::new(),
        user_agent: String::new(),
        inviter_name: String::new(),
        ..sample_vars(kind)
    }
}

#[cfg(test)]
#[path = "templates_tests.rs"]
mod tests;
