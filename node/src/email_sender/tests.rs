#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn an_unparsable_address_is_rejected_for_good() {
    let mut email = sample();
    email.to = "not an address".to_owned();
    assert!(matches!(
        build_message(&email),
        Err(SmtpOutcome::Rejected { code: 0, .. })
    ));
    let mut email = sample();
    email.message_id = "a\r\nBcc: x@y".to_owned();
    assert!(matches!(
        build_message(&email),
        Err(SmtpOutcome::Rejected { code: 0, .. })
    ));
}

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
