//! Unit tests of the built-in templates, escaping, variable checks and limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::defaults::{LAYOUT_HTML, LAYOUT_TEXT};
use super::*;

fn field_and_reason(error: DomainError) -> (&'static str, String) {
    match error {
        DomainError::InvalidArgument { field, reason } => (field, reason),
        other => panic!("expected an invalid argument, got {other:?}"),
    }
}

fn with_html(kind: EmailKind, html: &str) -> EmailTemplate {
    EmailTemplate {
        html: html.to_owned(),
        ..default_template(kind)
    }
}

#[test]
fn every_default_renders_for_every_kind_with_what_the_kind_carries() {
    for kind in EmailKind::ALL {
        let template = default_template(kind);
        validate(kind, &template).unwrap();
        let vars = sample_vars(kind);
        let email = render(kind, &template, &vars).unwrap();
        let name = kind.as_str();
        assert!(!email.subject.is_empty(), "{name}");
        assert!(email.html.starts_with("<!DOCTYPE html>"), "{name}");
        assert!(
            email
                .html
                .contains(r#"<meta name="color-scheme" content="light dark">"#),
            "{name}"
        );
        assert!(
            email.html.contains("@media (prefers-color-scheme: dark)"),
            "{name}"
        );
        assert!(!email.html.contains("@@"), "{name}");
        assert!(!email.text.contains("@@"), "{name}");
        assert!(email.html.contains("Hi Ada Lovelace,"), "{name}");
        assert!(email.text.contains("Hi Ada Lovelace,"), "{name}");
        let fills = variables_for(kind);
        let carries_code = fills.contains(&"code");
        let carries_link = fills.contains(&"link");
        let security = fills.contains(&"ip_address") && kind != EmailKind::Verification;
        for body in [&email.html, &email.text] {
            assert_eq!(body.contains(&vars.code), carries_code, "{name}: code");
            assert_eq!(body.contains(&vars.link), carries_link, "{name}: link");
            assert_eq!(body.contains(&vars.ip_address), security, "{name}: ip");
            assert_eq!(body.contains(&vars.user_agent), security, "{name}: agent");
            assert_eq!(
                body.contains("If this wasn't you"),
                security,
                "{name}: advice"
            );
        }
        if carries_link {
            assert!(
                email.html.contains(&format!("href=\"{}\"", vars.link)),
                "{name}: button"
            );
        }
        if carries_code {
            assert!(email.html.contains("monospace"), "{name}: code style");
            let expiry = format!("expire in {}", expiry_in_words(vars.expires_in_minutes));
            assert!(email.html.contains(&expiry), "{name}: {expiry}");
            assert!(email.text.contains(&expiry), "{name}: {expiry}");
        }
    }
}

#[test]
fn the_layouts_mark_the_heading_and_message_once_where_they_go() {
    assert_eq!(LAYOUT_HTML.matches("@@heading@@").count(), 2);
    assert_eq!(LAYOUT_HTML.matches("@@message@@").count(), 1);
    assert_eq!(LAYOUT_TEXT.matches("@@heading@@").count(), 1);
    assert_eq!(LAYOUT_TEXT.matches("@@message@@").count(), 1);
    for kind in EmailKind::ALL {
        let template = default_template(kind);
        assert!(!template.html.contains("@@"), "{}", kind.as_str());
        assert!(!template.text.contains("@@"), "{}", kind.as_str());
    }
}

#[test]
fn the_sign_in_code_says_when_it_expires_in_minutes() {
    let kind = EmailKind::SignInCode;
    let email = render(kind, &default_template(kind), &sample_vars(kind)).unwrap();
    assert!(
        email
            .html
            .contains("The code and link expire in 10 minutes")
    );
    assert!(
        email
            .text
            .contains("The code and link expire in 10 minutes")
    );
    assert_eq!(email.subject, "123456 is your Example sign-in code");
    let without_link = TemplateVars {
        link: String::new(),
        ..sample_vars(kind)
    };
    let email = render(kind, &default_template(kind), &without_link).unwrap();
    assert!(email.html.contains("The code expires in 10 minutes"));
    assert!(email.text.contains("The code expires in 10 minutes"));
}

#[test]
fn expiry_reads_in_the_largest_whole_unit() {
    let cases = [
        (0, ""),
        (1, "1 minute"),
        (10, "10 minutes"),
        (60, "1 hour"),
        (90, "90 minutes"),
        (120, "2 hours"),
        (1440, "1 day"),
        (10080, "7 days"),
    ];
    for (minutes, words) in cases {
        assert_eq!(expiry_in_words(minutes), words, "{minutes}");
    }
}

#[test]
fn defaults_read_well_without_the_optional_values() {
    for kind in EmailKind::ALL {
        let vars = sparse_vars(kind);
        let email = render(kind, &default_template(kind), &vars).unwrap();
        let name = kind.as_str();
        assert!(email.html.contains("Hi,"), "{name}");
        assert!(email.text.contains("Hi,"), "{name}");
        assert!(!email.text.contains(" in ."), "{name}");
        let fills = variables_for(kind);
        if fills.contains(&"code") {
            assert!(email.html.contains(&vars.code), "{name}");
            assert!(email.text.contains(&vars.code), "{name}");
            assert!(!email.html.contains("href=\"\""), "{name}");
            assert!(!email.text.contains("link"), "{name}: {}", email.text);
        }
        if fills.contains(&"ip_address") && kind != EmailKind::Verification {
            assert!(
                email.html.contains("IP address:</strong> unknown"),
                "{name}"
            );
            assert!(email.text.contains("unknown"), "{name}");
        }
    }
}

#[test]
fn user_values_are_escaped_in_html_and_left_alone_in_text() {
    let kind = EmailKind::Verification;
    let vars = TemplateVars {
        user_display_name: r#"<script>alert("x")</script>"#.to_owned(),
        ..sample_vars(kind)
    };
    let template = EmailTemplate {
        subject: "Hello {{ user_display_name }}".to_owned(),
        ..default_template(kind)
    };
    let email = render(kind, &template, &vars).unwrap();
    assert!(!email.html.contains("<script>"));
    assert!(
        email
            .html
            .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")
    );
    assert!(email.text.contains(r#"Hi <script>alert("x")</script>,"#));
    assert_eq!(email.subject, r#"Hello <script>alert("x")</script>"#);
}

#[test]
fn a_link_with_an_ampersand_is_escaped_in_the_href() {
    let kind = EmailKind::PasswordReset;
    let vars = TemplateVars {
        link: "https://app.example.com/reset?token=abc&tenant=acme".to_owned(),
        ..sample_vars(kind)
    };
    let email = render(kind, &default_template(kind), &vars).unwrap();
    assert!(
        email
            .html
            .contains(r#"href="https://app.example.com/reset?token=abc&amp;tenant=acme""#)
    );
    assert!(!email.html.contains("abc&tenant"));
    assert!(
        email
            .text
            .contains("https://app.example.com/reset?token=abc&tenant=acme")
    );
}

#[test]
fn an_unknown_variable_is_refused_naming_the_part_and_line() {
    let kind = EmailKind::Verification;
    let template = with_html(kind, "<p>Hello</p>\n<p>{{ user_nmae }}</p>");
    let (field, reason) = field_and_reason(validate(kind, &template).unwrap_err());
    assert_eq!(field, "template.html");
    assert!(reason.contains("user_nmae"), "{reason}");
    assert!(reason.contains("line 2"), "{reason}");
}

#[test]
fn an_unknown_variable_on_a_branch_that_does_not_run_is_refused_too() {
    let kind = EmailKind::Verification;
    let template = with_html(kind, "{% if false %}{{ cdoe }}{% endif %}");
    let (field, reason) = field_and_reason(validate(kind, &template).unwrap_err());
    assert_eq!(field, "template.html");
    assert!(reason.contains("cdoe"), "{reason}");
}

#[test]
fn a_variable_another_kind_fills_is_refused() {
    let kind = EmailKind::Verification;
    let template = EmailTemplate {
        text: "{{ team_name }}".to_owned(),
        ..default_template(kind)
    };
    let (field, reason) = field_and_reason(validate(kind, &template).unwrap_err());
    assert_eq!(field, "template.text");
    assert!(
        reason.contains("verification messages do not fill `team_name`"),
        "{reason}"
    );
}

#[test]
fn an_undefined_attribute_fails_at_render_with_its_line() {
    let kind = EmailKind::Verification;
    let template = with_html(kind, "<p>\n{{ code.digits }}</p>");
    let (field, reason) = field_and_reason(validate(kind, &template).unwrap_err());
    assert_eq!(field, "template.html");
    assert!(reason.contains("line 2"), "{reason}");
    assert!(reason.contains("undefined"), "{reason}");
}

#[test]
fn loops_macros_and_builtin_functions_are_fine() {
    let kind = EmailKind::SignInCode;
    let template = with_html(
        kind,
        "{% macro digit(d) %}<b>{{ d }}</b>{% endmacro %}\
         {% for d in code %}{{ digit(d) }}{% endfor %}\
         {% for i in range(2) %}{{ loop.index }}{% endfor %}{{ tenant_name | upper }}",
    );
    validate(kind, &template).unwrap();
    let email = render(kind, &template, &sample_vars(kind)).unwrap();
    assert!(
        email
            .html
            .starts_with("<b>1</b><b>2</b><b>3</b><b>4</b><b>5</b><b>6</b>12EXAMPLE"),
        "{}",
        email.html
    );
}

#[test]
fn a_syntax_error_is_refused_naming_the_part_and_line() {
    let kind = EmailKind::NewSignIn;
    let cases = [
        (
            EmailTemplate {
                subject: "Hello {{ tenant_name".to_owned(),
                ..default_template(kind)
            },
            "template.subject",
        ),
        (with_html(kind, "<p>ok</p>\n{% if %}"), "template.html"),
        (
            EmailTemplate {
                text: "line one\nline two\n{% for %}".to_owned(),
                ..default_template(kind)
            },
            "template.text",
        ),
    ];
    for (template, expected) in cases {
        let (field, reason) = field_and_reason(validate(kind, &template).unwrap_err());
        assert_eq!(field, expected);
        assert!(reason.contains("syntax error"), "{reason}");
        assert!(reason.contains("line "), "{reason}");
    }
}

#[test]
fn includes_and_imports_find_nothing() {
    let kind = EmailKind::Verification;
    for html in [
        r#"{% include "html" %}"#,
        r#"{% include "subject" %}"#,
        r#"{% import "text" as other %}"#,
        r#"{% extends "acme/verification" %}"#,
    ] {
        let (field, reason) = field_and_reason(validate(kind, &with_html(kind, html)).unwrap_err());
        assert_eq!(field, "template.html");
        assert!(reason.contains("not found"), "{html}: {reason}");
    }
}

#[test]
fn the_debug_function_is_not_available() {
    let kind = EmailKind::Verification;
    let (field, _) =
        field_and_reason(validate(kind, &with_html(kind, "{{ debug() }}")).unwrap_err());
    assert_eq!(field, "template.html");
}

#[test]
fn oversize_parts_are_refused() {
    let kind = EmailKind::FactorAdded;
    let big_subject = EmailTemplate {
        subject: "x".repeat(MAX_SUBJECT_SOURCE_BYTES + 1),
        ..default_template(kind)
    };
    let big_html = with_html(kind, &"x".repeat(MAX_BODY_SOURCE_BYTES + 1));
    let big_text = EmailTemplate {
        text: "x".repeat(MAX_BODY_SOURCE_BYTES + 1),
        ..default_template(kind)
    };
    let long_subject = EmailTemplate {
        subject: "{% for i in range(200) %}{{ tenant_name }} {% endfor %}".to_owned(),
        ..default_template(kind)
    };
    let huge_body = with_html(kind, "{{ 'x' * 2000000 }}");
    let many_writes = with_html(
        kind,
        "{% for i in range(100) %}{{ 'x' * 100000 }}{% endfor %}",
    );
    let endless = with_html(
        kind,
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    );
    for (template, expected, why) in [
        (big_subject, "template.subject", "at most 1024"),
        (big_html, "template.html", "at most 65536"),
        (big_text, "template.text", "at most 65536"),
        (long_subject, "template.subject", "at most 998"),
        (huge_body, "template.html", "more than 1048576"),
        (many_writes, "template.html", "more than 1048576"),
        (endless, "template.html", "fuel"),
    ] {
        let refused = validate(kind, &template).expect_err(expected);
        let (field, reason) = field_and_reason(refused);
        assert_eq!(field, expected, "{reason}");
        assert!(reason.contains(why), "{expected}: {reason}");
    }
    let at_limit = EmailTemplate {
        subject: "x".repeat(MAX_SUBJECT_SOURCE_BYTES - 1),
        ..default_template(kind)
    };
    assert!(matches!(
        field_and_reason(validate(kind, &at_limit).unwrap_err()),
        ("template.subject", reason) if reason.contains("998")
    ));
}

#[test]
fn a_subject_with_line_breaks_comes_out_on_one_line() {
    let kind = EmailKind::TeamInvitation;
    let vars = TemplateVars {
        team_name: "Red\r\nBcc: victim@example.com".to_owned(),
        ..sample_vars(kind)
    };
    let template = EmailTemplate {
        subject: "Join\n  {{ team_name }}\r\n\ttoday\u{7}".to_owned(),
        ..default_template(kind)
    };
    let email = render(kind, &template, &vars).unwrap();
    assert_eq!(email.subject, "Join Red Bcc: victim@example.com today");
    assert!(!email.subject.contains(['\r', '\n']));
}

#[test]
fn variables_for_every_kind_are_documented() {
    for kind in EmailKind::ALL {
        for name in variables_for(kind) {
            assert!(
                VARIABLES.iter().any(|(known, _)| known == name),
                "{name} of {}",
                kind.as_str()
            );
        }
    }
    let filled: HashSet<&str> = EmailKind::ALL
        .into_iter()
        .flat_map(|kind| variables_for(kind).iter().copied())
        .collect();
    for (name, _) in VARIABLES {
        assert!(filled.contains(name), "{name} is filled by no kind");
    }
}

/// The operator documentation, kept true by the test below.
const DOCS: &str = include_str!("../../../../docs/email-templates.md");

#[test]
fn the_documentation_lists_every_kind_and_variable_and_who_fills_what() {
    for kind in EmailKind::ALL {
        assert!(DOCS.contains(&format!("| `{}` |", kind.as_str())));
    }
    for (name, description) in VARIABLES {
        let row = format!("| `{name}` | {} |", description.replace('"', "`"));
        assert!(DOCS.contains(&row), "{row}");
    }
    let mut lines = DOCS
        .lines()
        .skip_while(|line| !line.starts_with("| Kind | `code`"));
    let header = lines.next().expect("the table of who fills what");
    let cells = |line: &str| -> Vec<String> {
        line.trim_matches('|')
            .split('|')
            .map(|cell| cell.trim().to_owned())
            .collect()
    };
    let columns = cells(header);
    let rows: Vec<Vec<String>> = lines
        .skip(1)
        .take_while(|line| line.starts_with('|'))
        .map(cells)
        .collect();
    assert_eq!(rows.len(), EmailKind::ALL.len());
    for row in rows {
        let kind = EmailKind::parse("kind", row[0].trim_matches('`')).unwrap();
        let mut documented = vec!["user_display_name", "user_email", "tenant_name"];
        for (column, mark) in columns.iter().zip(&row).skip(1) {
            if mark == "✓" {
                documented.extend(column.split(", ").map(|name| name.trim_matches('`')));
            }
        }
        let mut filled = variables_for(kind).to_vec();
        documented.sort_unstable();
        filled.sort_unstable();
        assert_eq!(documented, filled, "{}", kind.as_str());
    }
}
