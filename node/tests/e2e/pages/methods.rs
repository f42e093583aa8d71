//! The pages of the other sign-in methods against a real node and a real SMTP server: an
//! emailed code or magic link, the second factor after a password, password reset and email
//! verification, driven by the cookie-keeping form browser.

use gatehouse_cluster_tests::SmtpServer;
use gatehouse_cluster_tests::totp::{secret_from_otpauth, totp_sha1};
use gatehouse_protocol::v1;

use super::form_browser::{Browser, Page, SESSION_COOKIE, base, sign_in};
use crate::mail::{code_of, next_message, node_with_smtp};
use crate::testkit::{PASSWORD, TestNode, TestTenant, unique_email};

/// A tenant whose email links may lead to the node's own pages (its host is trusted).
pub async fn pages_email_tenant(
    node: &TestNode,
    name: &str,
    changes: v1::UpdateTenantConfigRequest,
) -> TestTenant {
    let tenant = node.tenant(name).await;
    node.operator()
        .await
        .update_tenant_config(v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            trusted_domains: vec!["127.0.0.1".to_owned()],
            set_trusted_domains: true,
            email_from_address: Some("auth@acme.example".to_owned()),
            ..changes
        })
        .await
        .expect("configure the tenant's email");
    tenant
}

/// The path (and query) of the link in `text` that leads to the node's page `page`.
pub fn page_link(node: &TestNode, text: &str, page: &str) -> String {
    let origin = node.http_url();
    let start = text
        .find(&format!("{origin}/t/"))
        .unwrap_or_else(|| panic!("no link to the pages in {text:?}"));
    let link: String = text[start + origin.len()..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert!(link.contains(page), "{link} is not {page}");
    link
}

/// Seconds since the epoch, as the node's TOTP clock reads them.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Posts `fields` with the CSRF token the browser holds (from the page it last opened).
async fn post_with_csrf(
    browser: &mut Browser,
    from: &Page,
    action: &str,
    fields: &[(&str, &str)],
) -> Page {
    let csrf = from.hidden("csrf").expect("the page has a csrf field");
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    browser.post(action, &all).await
}

#[tokio::test]
async fn an_emailed_code_or_its_link_signs_in_and_a_wrong_code_is_refused() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = pages_email_tenant(&node, "Acme", Default::default()).await;
    let base = base(&tenant);
    let email = unique_email("ada");
    node.client(&tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();

    let mut browser = Browser::new(&node);
    let sign_in_page = browser.get(&format!("{base}/sign-in")).await;
    assert!(sign_in_page.body.contains("Email me a sign-in code"));
    let return_to = format!("{base}/account?from=code");
    let asked = browser
        .submit(
            &format!("{base}/sign-in/code"),
            &format!("{base}/sign-in/code"),
            &[("email", email.as_str()), ("return_to", return_to.as_str())],
        )
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains("Check your email"));
    assert!(asked.body.contains(r#"autocomplete="one-time-code""#));
    let message = next_message(&smtp, &email, 0).await;
    let code = code_of(&message);

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let verify = format!("{base}/sign-in/code/verify");
    let refused = post_with_csrf(
        &mut browser,
        &asked,
        &verify,
        &[
            ("email", email.as_str()),
            ("code", wrong),
            ("return_to", return_to.as_str()),
        ],
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.alert().as_deref(),
        Some("This code is wrong or has expired. Check it and try again.")
    );
    assert!(refused.set_cookie(SESSION_COOKIE).is_none());

    let signed_in = post_with_csrf(
        &mut browser,
        &asked,
        &verify,
        &[
            ("email", email.as_str()),
            ("code", code.as_str()),
            ("return_to", return_to.as_str()),
        ],
    )
    .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location(), return_to);
    assert!(signed_in.set_cookie(SESSION_COOKIE).is_some());
    let account = browser.get(&format!("{base}/account")).await;
    assert!(account.body.contains(&email), "{}", account.body);

    // The magic link of a second message: its page only shows a button, the post signs in.
    let mut other = Browser::new(&node);
    let asked = other
        .submit(
            &format!("{base}/sign-in/code"),
            &format!("{base}/sign-in/code"),
            &[("email", email.as_str())],
        )
        .await;
    assert_eq!(asked.status, 200);
    let message = next_message(&smtp, &email, 1).await;
    let link = page_link(&node, &message.text, "/sign-in/link?");
    let landing = other.get(&link).await;
    assert_eq!(landing.status, 200, "{}", landing.body);
    assert!(
        landing.set_cookie(SESSION_COOKIE).is_none(),
        "a GET signs nothing in"
    );
    let token = landing
        .hidden("token")
        .expect("the link's token in the form");
    let followed = post_with_csrf(
        &mut other,
        &landing,
        &format!("{base}/sign-in/link"),
        &[("token", token.as_str())],
    )
    .await;
    assert_eq!(followed.status, 303, "{}", followed.body);
    assert_eq!(followed.location(), format!("{base}/account"));
    assert!(followed.set_cookie(SESSION_COOKIE).is_some());
    // The link is single use.
    let mut third = Browser::new(&node);
    let landing = third.get(&link).await;
    let again = post_with_csrf(
        &mut third,
        &landing,
        &format!("{base}/sign-in/link"),
        &[("token", token.as_str())],
    )
    .await;
    assert_ne!(again.status, 303, "{}", again.body);
    assert!(again.body.contains("INVALID_CODE"));
    assert!(again.set_cookie(SESSION_COOKIE).is_none());
}

#[tokio::test]
async fn an_unknown_address_gets_the_same_code_page_and_a_tenant_without_codes_none() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    // Without sign-up by code, nothing at all is sent to an unknown address.
    let changes = v1::UpdateTenantConfigRequest {
        sign_up_with_code_enabled: Some(false),
        ..Default::default()
    };
    let tenant = pages_email_tenant(&node, "Acme", changes).await;
    let base = base(&tenant);
    let known = unique_email("known");
    node.client(&tenant)
        .await
        .sign_up_with_password(&known, PASSWORD)
        .await
        .unwrap();
    let unknown = unique_email("nobody");
    let mut browser = Browser::new(&node);
    let path = format!("{base}/sign-in/code");
    let for_known = browser
        .submit(&path, &path, &[("email", known.as_str())])
        .await;
    let for_unknown = browser
        .submit(&path, &path, &[("email", unknown.as_str())])
        .await;
    assert_eq!(for_known.status, 200);
    assert_eq!(
        (for_known.status, for_known.body.replace(&known, "EMAIL")),
        (
            for_unknown.status,
            for_unknown.body.replace(&unknown, "EMAIL")
        )
    );
    next_message(&smtp, &known, 0).await;
    assert_eq!(crate::mail::count_for(&smtp, &unknown), 0);

    let off = pages_email_tenant(
        &node,
        "No codes",
        v1::UpdateTenantConfigRequest {
            sign_in_code_enabled: Some(false),
            ..Default::default()
        },
    )
    .await;
    let sign_in_page = browser
        .get(&format!("{}/sign-in", super::form_browser::base(&off)))
        .await;
    assert!(!sign_in_page.body.contains("Email me a sign-in code"));
    let refused = browser
        .get(&format!("{}/sign-in/code", super::form_browser::base(&off)))
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("PERMISSION_DENIED"));
}

#[tokio::test]
async fn a_password_sign_in_with_totp_asks_for_the_app_code_or_a_recovery_code() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = pages_email_tenant(&node, "Acme", Default::default()).await;
    let other_tenant = node.tenant("Other").await;
    let base = base(&tenant);
    let client = node.client(&tenant).await;
    let email = unique_email("ada");
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let user = client.with_access_token(&signed_up.access_token);
    let secret = secret_from_otpauth(&user.enroll_totp().await.unwrap().otpauth_uri).unwrap();
    // Away from a step's edge, so the codes are still current when they arrive.
    while !(2..=20).contains(&(now() % 30)) {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let recovery_codes = user
        .confirm_totp(&totp_sha1(&secret, now(), 6, 30))
        .await
        .unwrap();

    let mut browser = Browser::new(&node);
    let challenge = sign_in(&mut browser, &tenant, &email, PASSWORD).await;
    assert_eq!(challenge.status, 200, "{}", challenge.body);
    assert!(
        challenge.set_cookie(SESSION_COOKIE).is_none(),
        "no session yet"
    );
    assert!(challenge.body.contains("Two-step verification"));
    assert!(challenge.body.contains(r#"autocomplete="one-time-code""#));
    let ticket = challenge
        .hidden("ticket")
        .expect("the ticket in a hidden field");
    assert!(!ticket.is_empty());
    assert!(!challenge.location().contains(&ticket));

    let mfa = format!("{base}/mfa");
    let current: Vec<String> = [now() - 30, now(), now() + 30]
        .iter()
        .map(|at| totp_sha1(&secret, *at, 6, 30))
        .collect();
    let wrong = ["000000", "111111", "222222", "333333"]
        .into_iter()
        .find(|code| !current.iter().any(|current| current == code))
        .unwrap();
    let refused = post_with_csrf(
        &mut browser,
        &challenge,
        &mfa,
        &[
            ("ticket", ticket.as_str()),
            ("method", "totp"),
            ("code", wrong),
        ],
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(
        refused.alert().as_deref(),
        Some("This code is wrong or has expired. Check it and try again.")
    );
    assert!(refused.set_cookie(SESSION_COOKIE).is_none());
    assert_eq!(
        refused.hidden("ticket"),
        Some(ticket.clone()),
        "the ticket has tries left"
    );

    // The next step's code (the confirming one is spent; one step of skew is allowed).
    let code = totp_sha1(&secret, now() + 30, 6, 30);
    let signed_in = post_with_csrf(
        &mut browser,
        &refused,
        &mfa,
        &[
            ("ticket", ticket.as_str()),
            ("method", "totp"),
            ("code", code.as_str()),
        ],
    )
    .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location(), format!("{base}/account"));
    assert!(signed_in.set_cookie(SESSION_COOKIE).is_some());
    assert!(
        browser
            .get(&format!("{base}/account"))
            .await
            .body
            .contains(&email)
    );
    // The ticket was single use.
    let spent = post_with_csrf(
        &mut browser,
        &refused,
        &mfa,
        &[
            ("ticket", ticket.as_str()),
            ("method", "totp"),
            ("code", code.as_str()),
        ],
    )
    .await;
    assert!(spent.body.contains("MFA_TICKET_INVALID"), "{}", spent.body);

    // A recovery code, through the "use a recovery code" button.
    let mut other = Browser::new(&node);
    let challenge = sign_in(&mut other, &tenant, &email, PASSWORD).await;
    let ticket = challenge.hidden("ticket").unwrap();
    // The ticket means nothing at another tenant's page.
    let elsewhere = post_with_csrf(
        &mut other,
        &challenge,
        &format!("{}/mfa", super::form_browser::base(&other_tenant)),
        &[
            ("ticket", ticket.as_str()),
            ("method", "recovery_code"),
            ("code", recovery_codes[1].as_str()),
        ],
    )
    .await;
    assert!(
        elsewhere.body.contains("MFA_TICKET_INVALID"),
        "{}",
        elsewhere.body
    );
    assert!(elsewhere.set_cookie(SESSION_COOKIE).is_none());
    let switched = post_with_csrf(
        &mut other,
        &challenge,
        &mfa,
        &[
            ("ticket", ticket.as_str()),
            ("method", "totp"),
            ("switch", "recovery_code"),
        ],
    )
    .await;
    assert_eq!(switched.status, 200);
    assert!(
        switched
            .body
            .contains(r#"<label for="code">Recovery code</label>"#)
    );
    assert_eq!(switched.hidden("method").as_deref(), Some("recovery_code"));
    let recovered = post_with_csrf(
        &mut other,
        &switched,
        &mfa,
        &[
            ("ticket", ticket.as_str()),
            ("method", "recovery_code"),
            ("code", recovery_codes[0].as_str()),
        ],
    )
    .await;
    assert_eq!(recovered.status, 303, "{}", recovered.body);
    assert!(recovered.set_cookie(SESSION_COOKIE).is_some());

    // An emailed code is a first factor too: it leads to the same second step.
    let mut third = Browser::new(&node);
    let path = format!("{base}/sign-in/code");
    let asked = third
        .submit(&path, &path, &[("email", email.as_str())])
        .await;
    // The first message may be the "sign-in method added" notice of the enrolment.
    let mut seen = 0;
    let code = loop {
        let message = next_message(&smtp, &email, seen).await;
        if !message.text.contains("sign-in method was added") {
            break code_of(&message);
        }
        seen += 1;
    };
    let challenge = post_with_csrf(
        &mut third,
        &asked,
        &format!("{base}/sign-in/code/verify"),
        &[("email", email.as_str()), ("code", code.as_str())],
    )
    .await;
    assert_eq!(challenge.status, 200, "{}", challenge.body);
    assert!(challenge.body.contains("Two-step verification"));
    assert!(challenge.hidden("ticket").is_some());
    assert!(challenge.set_cookie(SESSION_COOKIE).is_none());
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_and_the_old_one_stops_working() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = pages_email_tenant(&node, "Acme", Default::default()).await;
    let base = base(&tenant);
    let email = unique_email("ada");
    node.client(&tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();

    let mut browser = Browser::new(&node);
    let sign_in_page = browser.get(&format!("{base}/sign-in")).await;
    assert!(sign_in_page.body.contains("Forgot password?"));
    let forgot = format!("{base}/forgot-password");
    let asked = browser
        .submit(&forgot, &forgot, &[("email", email.as_str())])
        .await;
    let unknown = unique_email("nobody");
    let asked_unknown = browser
        .submit(&forgot, &forgot, &[("email", unknown.as_str())])
        .await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert_eq!(
        asked.body.replace(&email, "EMAIL"),
        asked_unknown.body.replace(&unknown, "EMAIL"),
        "the same answer for an unknown address"
    );
    assert!(asked.body.contains(r#"autocomplete="new-password""#));

    let message = next_message(&smtp, &email, 0).await;
    let link = page_link(&node, &message.text, "/reset-password?token=");
    let mut from_email = Browser::new(&node);
    let form = from_email.get(&link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains(r#"autocomplete="new-password""#));
    let token = form.hidden("token").expect("the link's token in the form");
    let new_password = "a brand new passphrase 42";
    let too_short = post_with_csrf(
        &mut from_email,
        &form,
        &format!("{base}/reset-password"),
        &[("token", token.as_str()), ("password", "short")],
    )
    .await;
    assert_ne!(too_short.status, 200, "{}", too_short.body);
    assert!(too_short.alert().is_some(), "{}", too_short.body);
    assert_eq!(too_short.hidden("token"), Some(token.clone()));
    let done = post_with_csrf(
        &mut from_email,
        &form,
        &format!("{base}/reset-password"),
        &[("token", token.as_str()), ("password", new_password)],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Password changed"));
    assert!(done.body.contains("Back to sign-in"));

    let mut later = Browser::new(&node);
    let old = sign_in(&mut later, &tenant, &email, PASSWORD).await;
    assert_eq!(old.status, 422, "the old password stopped working");
    assert!(old.set_cookie(SESSION_COOKIE).is_none());
    let new = sign_in(&mut later, &tenant, &email, new_password).await;
    assert_eq!(new.status, 303, "{}", new.body);
    assert!(new.set_cookie(SESSION_COOKIE).is_some());
}

#[tokio::test]
async fn the_verification_link_marks_the_address_verified_in_its_own_tenant_only() {
    let smtp = SmtpServer::start();
    let node = node_with_smtp(&smtp, &[]).await;
    let tenant = pages_email_tenant(&node, "Acme", Default::default()).await;
    let other_tenant = pages_email_tenant(&node, "Other", Default::default()).await;
    let client = node.client(&tenant).await;
    let email = unique_email("ada");
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let user = client.with_access_token(&signed_up.access_token);
    assert!(!user.get_current_user().await.unwrap().email_verified);
    // The application points its verification links at the hosted page.
    let page = format!("{}{}/verify-email", node.http_url(), base(&tenant));
    user.send_email_verification("", &page).await.unwrap();
    let message = next_message(&smtp, &email, 0).await;
    let link = page_link(&node, &message.text, "/verify-email?token=");

    let mut browser = Browser::new(&node);
    let elsewhere = browser
        .get(&link.replace(&tenant.id, &other_tenant.id))
        .await;
    assert!(
        elsewhere.body.contains("INVALID_CODE"),
        "{}",
        elsewhere.body
    );
    assert!(!user.get_current_user().await.unwrap().email_verified);

    let verified = browser.get(&link).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    verified.assert_security_headers();
    assert!(verified.body.contains("Email verified"));
    assert!(user.get_current_user().await.unwrap().email_verified);
    let again = browser.get(&link).await;
    assert!(
        again.body.contains("INVALID_CODE"),
        "the link is single use"
    );
}
