//! Email delivery against a real SMTP server process: a message committed before a crash is
//! delivered after the restart with its Message-ID, a 5xx fails the delivery for good,
//! templates render escaped and a broken one is refused, unknown addresses get the same
//! answer, and password hashes are upgraded at sign-in when the argon2 cost changes.

use std::time::{Duration, Instant};

use gatehouse_cluster_tests::SmtpServer;
use gatehouse_protocol::sdk::Client;
use gatehouse_protocol::{ErrorCode, v1};

use crate::mail::{count_for, email_tenant, next_message, node_with_smtp};
use crate::testkit::{PASSWORD, TestNode, unique_email};

async fn deliveries(server: &Client) -> Vec<v1::EmailDelivery> {
    server
        .list_email_deliveries(50, "")
        .await
        .unwrap()
        .deliveries
}

async fn wait_for_delivery(
    server: &Client,
    done: impl Fn(&v1::EmailDelivery) -> bool,
) -> v1::EmailDelivery {
    for _ in 0..200 {
        if let Some(delivery) = deliveries(server).await.into_iter().find(|d| done(d)) {
            return delivery;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no delivery reached the expected state: {:?}",
        deliveries(server).await
    );
}

#[tokio::test]
async fn a_message_committed_before_a_crash_is_delivered_once_after_the_restart() {
    let mut smtp = SmtpServer::start();
    smtp.stop();
    let mut node = node_with_smtp(&smtp, &[]).await;
    let tenant = email_tenant(&node, "Acme", Default::default()).await;
    let email = unique_email("crash");
    node.client(&tenant)
        .await
        .send_sign_in_code(&email, "")
        .await
        .unwrap();

    // The change committed; the SMTP server is down, so the send was only attempted.
    let server = node.server(&tenant).await;
    let pending = wait_for_delivery(&server, |d| !d.attempts.is_empty()).await;
    assert_eq!(pending.status, "pending");
    assert_eq!(pending.attempts[0].outcome, "deferred");
    node.kill().await;

    smtp.restart().unwrap();
    let node = node.start_again().await;
    let message = next_message(&smtp, &email, 0).await;
    assert!(
        message
            .message_id
            .contains(&format!("{}@acme.example", pending.message_id)),
        "Message-ID {} is not the delivery's {}",
        message.message_id,
        pending.message_id
    );
    let server = node.server(&tenant).await;
    let sent = wait_for_delivery(&server, |d| d.status == "sent").await;
    assert_eq!(sent.message_id, pending.message_id);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count_for(&smtp, &email), 1, "delivered exactly once");
}

#[tokio::test]
async fn a_permanent_rejection_fails_the_delivery_without_retries() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = email_tenant(&node, "Acme", Default::default()).await;
    let client = node.client(&tenant).await;
    let rejected = unique_email("reject");
    client.send_sign_in_code(&rejected, "").await.unwrap();
    let server = node.server(&tenant).await;
    let failed = wait_for_delivery(&server, |d| d.to == rejected && d.status == "failed").await;
    assert_eq!(failed.kind, "sign_in_code");
    assert_eq!(failed.attempts.len(), 1);
    assert_eq!(failed.attempts[0].outcome, "rejected");
    assert_eq!(failed.attempts[0].smtp_code, 550);
    assert!(failed.next_attempt_at.is_none());

    // A transient refusal stays pending with a next attempt.
    let later = unique_email("tempfail");
    client.send_sign_in_code(&later, "").await.unwrap();
    let deferred = wait_for_delivery(&server, |d| d.to == later && !d.attempts.is_empty()).await;
    assert_eq!(deferred.status, "pending");
    assert_eq!(deferred.attempts[0].smtp_code, 451);
    assert!(deferred.next_attempt_at.is_some());

    // The operator sees the same log from the CLI.
    let (ok, output, stderr) =
        node.admin(&["email", "deliveries", "--tenant", &tenant.id, "--json"]);
    assert!(ok, "{stderr}");
    assert!(output.contains(&failed.message_id), "{output}");
    assert!(output.contains("\"smtp_code\": 550"), "{output}");

    // An operator can send a user a reset (or verification) message from the CLI.
    let email = unique_email("operator-reset");
    client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let args = [
        "email",
        "send-password-reset",
        "--tenant",
        &tenant.id,
        "--email",
        &email,
    ];
    let (ok, _, stderr) = node.admin(&args);
    assert!(ok, "{stderr}");
    let message = next_message(&smtp, &email, 0).await;
    assert!(
        message.subject.to_lowercase().contains("reset"),
        "{}",
        message.subject
    );
    let args = [
        "email",
        "send-verification",
        "--tenant",
        &tenant.id,
        "--email",
        &email,
    ];
    let (ok, _, stderr) = node.admin(&args);
    assert!(ok, "{stderr}");
    let message = next_message(&smtp, &email, 1).await;
    assert!(
        message.subject.to_lowercase().contains("verify"),
        "{}",
        message.subject
    );
}

#[tokio::test]
async fn templates_render_escaped_and_a_template_that_cannot_render_is_refused() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = email_tenant(&node, "Acme", Default::default()).await;
    let server = node.server(&tenant).await;

    let broken = server
        .set_email_template(v1::SetEmailTemplateRequest {
            kind: "sign_in_code".to_owned(),
            subject: "Code {{ code }}".to_owned(),
            html: "<p>{{ user_display_nam }}</p>".to_owned(),
            text: "{{ code }}".to_owned(),
        })
        .await
        .expect_err("a misspelled variable is refused");
    assert_eq!(broken.code, ErrorCode::InvalidArgument);
    assert_eq!(broken.field.as_deref(), Some("template.html"));
    let unknown_kind = server
        .get_email_template("no_such_kind")
        .await
        .expect_err("unknown kind");
    assert_eq!(unknown_kind.field.as_deref(), Some("kind"));

    let set = server
        .set_email_template(v1::SetEmailTemplateRequest {
            kind: "sign_in_code".to_owned(),
            subject: "{{ code }} for {{ user_display_name }}".to_owned(),
            html: "<p>Hello {{ user_display_name }}, your code is <b>{{ code }}</b></p>".to_owned(),
            text: "Hello {{ user_display_name }}, your code is {{ code }}".to_owned(),
        })
        .await
        .unwrap();
    assert!(set.custom);
    let preview = server
        .preview_email_template(v1::PreviewEmailTemplateRequest {
            kind: "sign_in_code".to_owned(),
            ..v1::PreviewEmailTemplateRequest::default()
        })
        .await
        .unwrap();
    assert!(preview.html.starts_with("<p>Hello "), "{}", preview.html);

    let email = unique_email("escape");
    let signed_up = server
        .create_user(v1::CreateUserRequest {
            email: email.clone(),
            display_name: "<script>alert(1)</script>".to_owned(),
            ..v1::CreateUserRequest::default()
        })
        .await
        .unwrap();
    node.client(&tenant)
        .await
        .send_sign_in_code(&email, "")
        .await
        .unwrap();
    let message = next_message(&smtp, &email, 0).await;
    assert!(
        message
            .html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        message.html
    );
    assert!(!message.html.contains("<script>"));
    assert!(
        message.text.contains("Hello <script>alert(1)</script>"),
        "text stays as written"
    );
    assert!(
        message.subject.ends_with("for <script>alert(1)</script>"),
        "{}",
        message.subject
    );
    assert!(!signed_up.user_id.is_empty());

    // From the CLI: a part given on the command line, the others kept.
    let (ok, _, stderr) = node.admin(&[
        "email",
        "template",
        "set",
        "--tenant",
        &tenant.id,
        "--kind",
        "password_reset",
        "--subject",
        "Reset for {{ tenant_name }}",
    ]);
    assert!(ok, "{stderr}");
    let stored = server.get_email_template("password_reset").await.unwrap();
    assert_eq!(stored.subject, "Reset for {{ tenant_name }}");
    assert!(stored.html.contains("{{"), "the HTML part was kept");
    let (ok, preview, stderr) = node.admin(&[
        "email",
        "template",
        "preview",
        "--tenant",
        &tenant.id,
        "--kind",
        "password_reset",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    assert!(preview.contains("Reset for Acme"), "{preview}");
    let (ok, _, stderr) = node.admin(&[
        "email",
        "template",
        "set",
        "--tenant",
        &tenant.id,
        "--kind",
        "password_reset",
        "--subject",
        "{{ nope }}",
    ]);
    assert!(!ok && stderr.contains("template.subject"), "{stderr}");

    let reset = server.reset_email_template("sign_in_code").await.unwrap();
    assert!(!reset.custom);
    assert!(reset.variables.iter().any(|name| name == "code"));
}

#[tokio::test]
async fn unknown_addresses_get_the_same_answer() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let changes = v1::UpdateTenantConfigRequest {
        sign_up_with_code_enabled: Some(false),
        email_sends_per_source: Some(10_000),
        ..v1::UpdateTenantConfigRequest::default()
    };
    let tenant = email_tenant(&node, "Acme", changes).await;
    let client = node.client(&tenant).await;
    let mut known = Vec::new();
    for index in 0..20 {
        let email = unique_email(&format!("known{index}"));
        client
            .sign_up_with_password(&email, PASSWORD)
            .await
            .unwrap();
        known.push(email);
    }
    let mut times = [Vec::new(), Vec::new()];
    for (index, email) in known.iter().enumerate() {
        let unknown = unique_email(&format!("unknown{index}"));
        for (slot, address) in [(0, email.as_str()), (1, unknown.as_str())] {
            for reset in [true, false] {
                let started = Instant::now();
                let reply = if reset {
                    client.send_password_reset(address, "").await
                } else {
                    client.send_sign_in_code(address, "").await
                };
                times[slot].push(started.elapsed());
                assert!(reply.is_ok(), "{address}: {reply:?}");
            }
        }
    }
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2]
    };
    let (known_median, unknown_median) = (median(&mut times[0]), median(&mut times[1]));
    // Timing is reported, not asserted (the machine's load decides it).
    println!("send medians: known {known_median:?}, unknown {unknown_median:?}");
    next_message(&smtp, &known[19], 1).await;
    let unknown_messages = smtp
        .messages()
        .iter()
        .filter(|message| message.to.contains("unknown"))
        .count();
    assert_eq!(
        unknown_messages, 0,
        "no message to an address without a user"
    );
}

#[tokio::test]
async fn a_hash_made_with_an_old_argon2_cost_is_upgraded_at_the_next_sign_in() {
    let mut node = TestNode::start_with_env(&[("GATEHOUSE_AUTH_ARGON2_ITERATIONS", "1")]).await;
    let tenant = node.tenant("Acme").await;
    let email = unique_email("rehash");
    node.client(&tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    node.stop().await;
    node.set_env("GATEHOUSE_AUTH_ARGON2_ITERATIONS", "2");
    let node = node.start_again().await;
    let rehashes = |body: &str| {
        body.lines()
            .find(|line| line.starts_with("gatehouse_password_rehashes_total"))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let metrics = || async {
        reqwest::get(node.metrics_url())
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let client = node.client(&tenant).await;
    client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    assert_eq!(rehashes(&metrics().await), 1.0, "the old hash was upgraded");
    client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    assert_eq!(rehashes(&metrics().await), 1.0, "the upgraded hash is kept");
}
