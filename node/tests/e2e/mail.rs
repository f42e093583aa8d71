//! What the email tests share: a node wired to a real SMTP server process, a tenant that
//! trusts `app.example.com`, and readers for the codes and links in delivered messages.

use std::time::Duration;

use gatehouse_cluster_tests::{ReceivedEmail, SmtpServer};
use gatehouse_protocol::v1;

use crate::testkit::{TestNode, TestTenant};

/// Where the tests' links lead.
pub const REDIRECT: &str = "https://app.example.com/auth/callback";

/// A node that sends through `smtp`, polling for work often.
pub async fn node_with_smtp(smtp: &SmtpServer, extra: &[(&str, &str)]) -> TestNode {
    let port = smtp.port().to_string();
    let mut env = vec![
        ("GATEHOUSE_EMAIL_HOST", "127.0.0.1"),
        ("GATEHOUSE_EMAIL_PORT", port.as_str()),
        ("GATEHOUSE_EMAIL_TLS", "none"),
        ("GATEHOUSE_EMAIL_POLL_INTERVAL_MS", "50"),
    ];
    env.extend_from_slice(extra);
    TestNode::start_with_env(&env).await
}

/// A tenant that trusts `app.example.com`, with `changes` applied on top.
pub async fn email_tenant(
    node: &TestNode,
    name: &str,
    changes: v1::UpdateTenantConfigRequest,
) -> TestTenant {
    let tenant = node.tenant(name).await;
    node.operator()
        .await
        .update_tenant_config(v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            trusted_domains: vec!["app.example.com".to_owned()],
            set_trusted_domains: true,
            email_from_address: Some("auth@acme.example".to_owned()),
            ..changes
        })
        .await
        .expect("configure the tenant's email");
    tenant
}

/// Waits for the next message to `to` (beyond the `seen` already read for it).
pub async fn next_message(smtp: &SmtpServer, to: &str, seen: usize) -> ReceivedEmail {
    for _ in 0..200 {
        let mut mine: Vec<ReceivedEmail> = smtp
            .messages()
            .into_iter()
            .filter(|message| {
                message
                    .envelope_recipients
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(to))
            })
            .collect();
        if mine.len() > seen {
            return mine.swap_remove(seen);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no message {} for {to} arrived", seen + 1);
}

/// How many messages `to` has received so far.
pub fn count_for(smtp: &SmtpServer, to: &str) -> usize {
    smtp.messages()
        .iter()
        .filter(|message| {
            message
                .envelope_recipients
                .iter()
                .any(|r| r.eq_ignore_ascii_case(to))
        })
        .count()
}

/// The six-digit code in a message's text: a word of six digits on its own (addresses and
/// links in the text may hold digits too).
pub fn code_of(message: &ReceivedEmail) -> String {
    message
        .text
        .split_whitespace()
        .map(|word| word.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
        .find(|word| word.len() == 6 && word.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {:?}", message.text))
        .to_owned()
}

/// The link in a message's text that leads to `REDIRECT`.
pub fn link_of(message: &ReceivedEmail) -> url::Url {
    let start = message
        .text
        .find(REDIRECT)
        .unwrap_or_else(|| panic!("no link in {:?}", message.text));
    let link: String = message.text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    url::Url::parse(&link).expect("a valid link")
}

/// The `token` query parameter of the message's link.
pub fn token_of(message: &ReceivedEmail) -> String {
    link_of(message)
        .query_pairs()
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
        .expect("a token in the link")
}
