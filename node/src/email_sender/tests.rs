//! The sender against a real SMTP server (the test kit's aiosmtpd), plus the parts that
//! need no server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gatehouse_cluster_tests::{ReceivedEmail, SmtpServer};

use super::*;

const WAIT: Duration = Duration::from_secs(15);

fn sample() -> OutgoingEmail {
    OutgoingEmail {
        message_id: "0190f3c2-1111-7000-8000-000000000001@auth.example.com".to_owned(),
        from_address: "noreply@example.com".to_owned(),
        from_name: "Acme Sign-in".to_owned(),
        reply_to: "support@example.com".to_owned(),
        to: "ada@example.com".to_owned(),
        subject: "Your sign-in code".to_owned(),
        html: "<p>Your code is <b>123456</b>.</p>\n".to_owned(),
        text: "Your code is 123456.\n".to_owned(),
    }
}

/// A plain-text sender (`tls = "none"`) to 127.0.0.1:`port`.
fn sender_to(port: u16) -> SmtpSender {
    SmtpSender::new(&EmailSection {
        host: "127.0.0.1".to_owned(),
        port: u32::from(port),
        tls: "none".to_owned(),
        hello_name: "node-a.test".to_owned(),
        timeout_seconds: 10,
        ..EmailSection::default()
    })
    .unwrap()
}

fn assert_delivered_as_given(received: &ReceivedEmail, email: &OutgoingEmail) {
    assert_eq!(received.message_id, format!("<{}>", email.message_id));
    assert_eq!(received.from_name, email.from_name);
    assert_eq!(received.from_address, email.from_address);
    assert_eq!(received.reply_to, email.reply_to);
    assert_eq!(received.to, email.to);
    assert_eq!(received.subject, email.subject);
    assert_eq!(received.text, email.text);
    assert_eq!(received.html, email.html);
    assert_eq!(received.envelope_from, email.from_address);
    assert_eq!(received.envelope_recipients, vec![email.to.clone()]);
    assert_eq!(received.header_values("Message-ID").len(), 1);
}

#[tokio::test]
async fn delivers_headers_and_both_parts_exactly_as_given() {
    let server = SmtpServer::start();
    let sender = sender_to(server.port());
    let plain = sample();
    let mut international = OutgoingEmail {
        message_id: "0190f3c2-2222-7000-8000-000000000002@auth.example.com".to_owned(),
        from_name: "Acme Anmeldung – Zugang".to_owned(),
        to: "grace@example.com".to_owned(),
        subject: "Ihr Anmeldecode: 654321 ✓".to_owned(),
        html: "<p>Grüße,</p>\n<p>Ihr Code ist <b>654321</b>.</p>\n".to_owned(),
        text: format!(
            "Grüße,\n\nIhr Code ist 654321.\n{}\n",
            "Eine sehr lange Zeile, die länger als sechsundsiebzig Zeichen ist, \
             damit die Kodierung sie umbrechen muss."
        ),
        ..sample()
    };
    international.reply_to.clear();
    assert_eq!(sender.send(&plain).await, SmtpOutcome::Accepted);
    assert_eq!(sender.send(&international).await, SmtpOutcome::Accepted);

    let received = server.wait_for_messages(2, WAIT).await;
    assert_eq!(received.len(), 2);
    assert_delivered_as_given(&received[0], &plain);
    assert_delivered_as_given(&received[1], &international);
    assert!(received[1].header_values("Reply-To").is_empty());
    assert!(
        received[0]
            .header_values("Content-Type")
            .first()
            .is_some_and(|value| value.starts_with("multipart/alternative")),
        "{:?}",
        received[0].headers
    );
    let raw = &received[0].raw;
    let (text_at, html_at) = (raw.find("text/plain"), raw.find("text/html"));
    assert!(
        text_at.is_some() && text_at < html_at,
        "text then html:\n{raw}"
    );
}

#[tokio::test]
async fn the_same_message_id_is_sent_on_every_attempt() {
    let server = SmtpServer::start();
    let sender = sender_to(server.port());
    let email = sample();
    assert_eq!(sender.send(&email).await, SmtpOutcome::Accepted);
    assert_eq!(sender.send(&email).await, SmtpOutcome::Accepted);
    let received = server.wait_for_messages(2, WAIT).await;
    assert_eq!(received[0].message_id, received[1].message_id);
}

#[tokio::test]
async fn a_permanent_refusal_is_rejected_with_its_code() {
    let server = SmtpServer::start();
    let sender = sender_to(server.port());
    let email = OutgoingEmail {
        to: "rejected-user@example.com".to_owned(),
        ..sample()
    };
    let outcome = sender.send(&email).await;
    let SmtpOutcome::Rejected { code, message } = &outcome else {
        panic!("expected a rejection, got {outcome:?}");
    };
    assert_eq!(*code, 550);
    assert!(message.contains("mailbox unavailable"), "{message}");
    // The pooled connection is still good for the next message.
    assert_eq!(sender.send(&sample()).await, SmtpOutcome::Accepted);
    let received = server.wait_for_messages(1, WAIT).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].to, "ada@example.com");
}

#[tokio::test]
async fn a_transient_refusal_is_deferred_with_its_code() {
    let server = SmtpServer::start();
    let sender = sender_to(server.port());
    let email = OutgoingEmail {
        to: "tempfail-user@example.com".to_owned(),
        ..sample()
    };
    let outcome = sender.send(&email).await;
    assert!(
        matches!(outcome, SmtpOutcome::Deferred { code: 451, .. }),
        "{outcome:?}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_port_where_nothing_listens_is_deferred_without_a_code() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let outcome = sender_to(port).send(&sample()).await;
    assert!(
        matches!(outcome, SmtpOutcome::Deferred { code: 0, .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_restarted_server_is_reached_again() {
    let mut server = SmtpServer::start();
    let sender = sender_to(server.port());
    assert_eq!(sender.send(&sample()).await, SmtpOutcome::Accepted);
    server.stop();
    let outcome = sender.send(&sample()).await;
    assert!(
        matches!(outcome, SmtpOutcome::Deferred { .. }),
        "{outcome:?}"
    );
    server.restart().unwrap();
    assert_eq!(sender.send(&sample()).await, SmtpOutcome::Accepted);
    assert_eq!(server.wait_for_messages(2, WAIT).await.len(), 2);
}

#[tokio::test]
async fn a_line_break_in_the_subject_adds_no_header() {
    let server = SmtpServer::start();
    let sender = sender_to(server.port());
    let email = OutgoingEmail {
        subject: "hi\r\nBcc: x@y".to_owned(),
        ..sample()
    };
    assert_eq!(sender.send(&email).await, SmtpOutcome::Accepted);
    let received = server.wait_for_messages(1, WAIT).await;
    let message = &received[0];
    assert!(
        message.header_values("Bcc").is_empty(),
        "{:?}",
        message.headers
    );
    assert_eq!(message.header_values("Subject").len(), 1);
    assert_eq!(
        message.envelope_recipients,
        vec!["ada@example.com".to_owned()]
    );
    assert!(!message.raw.contains("\r\nBcc:"), "{}", message.raw);
    assert_eq!(message.subject, "hi  Bcc: x@y");
}

#[test]
fn an_unparsable_address_is_rejected_for_good() {
    for email in [
        OutgoingEmail {
            to: "not an address".to_owned(),
            ..sample()
        },
        OutgoingEmail {
            from_address: "noreply@".to_owned(),
            ..sample()
        },
        OutgoingEmail {
            reply_to: "support example.com".to_owned(),
            ..sample()
        },
        OutgoingEmail {
            message_id: "a\r\nBcc: x@y".to_owned(),
            ..sample()
        },
    ] {
        let outcome = build_message(&email).err();
        assert!(
            matches!(outcome, Some(SmtpOutcome::Rejected { code: 0, .. })),
            "{email:?}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn passwords_come_from_the_named_file_without_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smtp-password");
    std::fs::write(&path, "s3cret\n").unwrap();
    let source = EmailPasswordSource::File(path.display().to_string());
    assert_eq!(read_password(&source).unwrap().as_deref(), Some("s3cret"));
    std::fs::write(&path, "s3cret\r\n").unwrap();
    assert_eq!(read_password(&source).unwrap().as_deref(), Some("s3cret"));
    let missing = EmailPasswordSource::File("/nonexistent/smtp-password".to_owned());
    let error = read_password(&missing).unwrap_err().to_string();
    assert!(
        error.contains("/nonexistent/smtp-password") && error.contains("email.password_file"),
        "{error}"
    );
    let unset = EmailPasswordSource::Env("GATEHOUSE_TEST_SMTP_PASSWORD_NEVER_SET".to_owned());
    let error = read_password(&unset).unwrap_err().to_string();
    assert!(
        error.contains("GATEHOUSE_TEST_SMTP_PASSWORD_NEVER_SET"),
        "{error}"
    );
}

#[tokio::test]
async fn a_bad_config_is_a_start_error_naming_it() {
    let config = EmailSection {
        host: "smtp.example.com".to_owned(),
        username: "mailer".to_owned(),
        password_env: "GATEHOUSE_TEST_SMTP_PASSWORD_NEVER_SET".to_owned(),
        ..EmailSection::default()
    };
    let error = SmtpSender::new(&config).unwrap_err();
    assert!(
        matches!(error, NodeError::EmailPasswordEnv { .. }),
        "{error}"
    );
    let config = EmailSection {
        host: "smtp.example.com".to_owned(),
        tls: "ssl".to_owned(),
        ..EmailSection::default()
    };
    assert!(
        SmtpSender::new(&config)
            .unwrap_err()
            .to_string()
            .contains("email.tls")
    );
    // A TLS sender is built without connecting anywhere.
    let config = EmailSection {
        host: "smtp.example.com".to_owned(),
        ..EmailSection::default()
    };
    let sender = SmtpSender::new(&config).unwrap();
    assert!(format!("{sender:?}").contains("smtp.example.com:587"));
}
