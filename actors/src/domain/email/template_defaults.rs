//! The built-in templates: one shared layout per body (`defaults/layout.html` and
//! `defaults/layout.txt`) with each kind's heading and message filled in, and each kind's
//! subject.

use super::{EmailKind, EmailTemplate};

/// The shared HTML layout; `@@heading@@` and `@@message@@` mark where each kind's heading
/// and message go (filled in as source, before the template is compiled).
pub(super) const LAYOUT_HTML: &str = include_str!("defaults/layout.html");
/// The shared text layout, with the same marks.
pub(super) const LAYOUT_TEXT: &str = include_str!("defaults/layout.txt");

/// The built-in subject, heading, HTML message and text message of `kind`.
fn default_parts(kind: EmailKind) -> (&'static str, &'static str, &'static str, &'static str) {
    match kind {
        EmailKind::Verification => (
            "Verify your email address for {{ tenant_name }}",
            "Verify your email address",
            include_str!("defaults/verification.html"),
            include_str!("defaults/verification.txt"),
        ),
        EmailKind::PasswordReset => (
            "Reset your {{ tenant_name }} password",
            "Reset your password",
            include_str!("defaults/password_reset.html"),
            include_str!("defaults/password_reset.txt"),
        ),
        EmailKind::SignInCode => (
            "{{ code }} is your {{ tenant_name }} sign-in code",
            "Your sign-in code",
            include_str!("defaults/sign_in_code.html"),
            include_str!("defaults/sign_in_code.txt"),
        ),
        EmailKind::TeamInvitation => (
            "You are invited to join {{ team_name }} on {{ tenant_name }}",
            "Join {{ team_name }}",
            include_str!("defaults/team_invitation.html"),
            include_str!("defaults/team_invitation.txt"),
        ),
        EmailKind::ShareInvitation => (
            "{% if inviter_name %}{{ inviter_name }} shared something with you\
             {% else %}Something was shared with you{% endif %} on {{ tenant_name }}",
            "Something was shared with you",
            include_str!("defaults/share_invitation.html"),
            include_str!("defaults/share_invitation.txt"),
        ),
        EmailKind::NewSignIn => (
            "New sign-in to your {{ tenant_name }} account",
            "New sign-in to your account",
            include_str!("defaults/new_sign_in.html"),
            include_str!("defaults/new_sign_in.txt"),
        ),
        EmailKind::PasswordChanged => (
            "Your {{ tenant_name }} password was changed",
            "Your password was changed",
            include_str!("defaults/password_changed.html"),
            include_str!("defaults/password_changed.txt"),
        ),
        EmailKind::FactorAdded => (
            "A sign-in method was added to your {{ tenant_name }} account",
            "A sign-in method was added",
            include_str!("defaults/factor_added.html"),
            include_str!("defaults/factor_added.txt"),
        ),
        EmailKind::FactorRemoved => (
            "A sign-in method was removed from your {{ tenant_name }} account",
            "A sign-in method was removed",
            include_str!("defaults/factor_removed.html"),
            include_str!("defaults/factor_removed.txt"),
        ),
        EmailKind::SignUpAttempt => (
            "Someone tried to sign up to {{ tenant_name }} with your address",
            "Someone tried to sign up with your address",
            include_str!("defaults/sign_up_attempt.html"),
            include_str!("defaults/sign_up_attempt.txt"),
        ),
    }
}

/// The built-in template of `kind`: the shared layout with the kind's message in it, one
/// self-contained template per part that an operator can fetch, edit and set.
pub fn default_template(kind: EmailKind) -> EmailTemplate {
    let (subject, heading, html, text) = default_parts(kind);
    let fill = |layout: &str, message: &str| {
        layout
            .replace("@@heading@@", heading)
            .replace("@@message@@", message.trim_end())
    };
    EmailTemplate {
        subject: subject.to_owned(),
        html: fill(LAYOUT_HTML, html),
        text: fill(LAYOUT_TEXT, text),
    }
}
