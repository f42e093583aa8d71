//! The hosted pages against a real node, driven like a browser without JavaScript: plain
//! HTTP, form posts and cookies kept by hand, so every header and attribute is checked.

mod chromium;
mod form_browser;
mod methods;
mod methods_chromium;
mod settings;

use cookie::SameSite;
use gatehouse_cluster_tests::totp::{secret_from_otpauth, totp_sha1};
use gatehouse_protocol::v1;
use reqwest::header;

use crate::mail::email_tenant;
use crate::testkit::{PASSWORD, TestNode, unique_email};
use form_browser::{Browser, CSP, CSRF_COOKIE, SESSION_COOKIE, base, sign_in, sign_up};

#[tokio::test]
async fn the_sign_in_page_has_the_security_headers_and_a_csrf_field() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme Rockets").await;
    let mut browser = Browser::new(&node);
    let page = browser.get(&format!("{}/sign-in", base(&tenant))).await;
    assert_eq!(page.status, 200);
    page.assert_security_headers();
    assert!(page.body.contains("Acme Rockets"), "the tenant's name");
    assert!(page.body.contains(r#"<label for="email">"#));
    assert!(page.body.contains(r#"autocomplete="current-password""#));
    let token = page.hidden("csrf").expect("csrf field");
    let cookie = page.set_cookie(CSRF_COOKIE).expect("csrf cookie");
    assert_eq!(cookie.value(), token);
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Lax));
    assert_eq!(cookie.path(), Some(format!("/t/{}/", tenant.id).as_str()));
    assert_eq!(cookie.secure(), None, "plain HTTP from loopback");
    // The token is kept for the browser's next page.
    let again = browser.get(&format!("{}/sign-up", base(&tenant))).await;
    assert_eq!(again.hidden("csrf"), Some(token));
    assert!(again.set_cookie(CSRF_COOKIE).is_none());
    assert!(again.body.contains(r#"autocomplete="new-password""#));

    let css = browser
        .get(&format!("{}/assets/pages.css", base(&tenant)))
        .await;
    assert_eq!(css.status, 200);
    assert_eq!(css.headers["content-type"], "text/css; charset=utf-8");
    assert_eq!(css.headers["x-content-type-options"], "nosniff");

    let unknown = browser.get("/t/no-such-tenant/handler/sign-in").await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.body.contains("TENANT_NOT_FOUND"),
        "{}",
        unknown.body
    );
    assert_eq!(unknown.headers["content-security-policy"], CSP);
}

#[tokio::test]
async fn posts_without_the_right_csrf_token_or_from_another_origin_are_refused() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let email = unique_email("ada");
    node.client(&tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let base = base(&tenant);
    let sign_in_path = format!("{base}/sign-in");
    let credentials = [("email", email.as_str()), ("password", PASSWORD)];

    // No token at all: neither cookie nor field.
    let mut stranger = Browser::new(&node);
    let refused = stranger.post(&sign_in_path, &credentials).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    refused.assert_security_headers();
    assert!(refused.body.contains("PERMISSION_DENIED"));
    assert!(refused.set_cookie(SESSION_COOKIE).is_none());

    let mut browser = Browser::new(&node);
    let token = browser.get(&sign_in_path).await.hidden("csrf").unwrap();
    let wrong = format!("{}A", &token[..token.len() - 1]);
    let wrong = if wrong == token {
        format!("{}B", &token[..token.len() - 1])
    } else {
        wrong
    };
    for fields in [
        vec![credentials[0], credentials[1]],
        vec![("csrf", ""), credentials[0], credentials[1]],
        vec![("csrf", wrong.as_str()), credentials[0], credentials[1]],
    ] {
        let refused = browser.post(&sign_in_path, &fields).await;
        assert_eq!(refused.status, 403, "{fields:?}");
        assert!(refused.set_cookie(SESSION_COOKIE).is_none());
    }
    // The right token from another site's page.
    let mut fields = vec![("csrf", token.as_str())];
    fields.extend_from_slice(&credentials);
    let foreign = browser
        .page(
            browser
                .http
                .post(format!("{}{sign_in_path}", node.http_url()))
                .header(header::ORIGIN, "https://evil.example")
                .form(&fields),
        )
        .await;
    assert_eq!(foreign.status, 403);
    assert!(foreign.set_cookie(SESSION_COOKIE).is_none());
    // `Origin: null` (a no-referrer page's post) passes only when fetch metadata says it
    // came from this origin.
    for (site, status) in [("cross-site", 403), ("same-origin", 303)] {
        let post = browser
            .http
            .post(format!("{}{sign_in_path}", node.http_url()))
            .header(header::ORIGIN, "null")
            .header("sec-fetch-site", site)
            .form(&fields);
        let answer = browser.page(post).await;
        assert_eq!(answer.status, status, "{site}: {}", answer.body);
    }
    // The same post from the node's own origin signs in.
    let signed_in = browser.post(&sign_in_path, &fields).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert!(signed_in.set_cookie(SESSION_COOKIE).is_some());

    // Sign-up and sign-out are guarded the same way.
    let sign_up = browser
        .post(&format!("{base}/sign-up"), &[("email", "x@example.com")])
        .await;
    assert_eq!(sign_up.status, 403);
    let sign_out = browser.post(&format!("{base}/sign-out"), &[]).await;
    assert_eq!(sign_out.status, 403);
    let account = browser.get(&format!("{base}/account")).await;
    assert_eq!(account.status, 200, "a refused sign-out changed nothing");
}

#[tokio::test]
async fn sign_up_and_sign_in_set_a_sealed_http_only_lax_cookie_and_show_the_account() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let base = base(&tenant);
    let email = unique_email("ada");
    let mut browser = Browser::new(&node);
    let signed_up = sign_up(&mut browser, &tenant, &email, "Ada <b>Lovelace</b>").await;
    assert_eq!(signed_up.status, 303, "{}", signed_up.body);
    signed_up.assert_security_headers();
    assert_eq!(signed_up.location(), format!("{base}/account"));
    let cookie = signed_up
        .set_cookie(SESSION_COOKIE)
        .expect("session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Lax));
    assert_eq!(cookie.path(), Some(format!("/t/{}/", tenant.id).as_str()));
    assert_eq!(cookie.secure(), None, "plain HTTP from loopback");
    assert!(cookie.max_age().unwrap() > cookie::time::Duration::hours(1));
    assert!(
        !cookie.value().contains("grt_"),
        "the refresh token is sealed"
    );
    assert!(!cookie.value().contains(&email));

    let account = browser.get(&format!("{base}/account")).await;
    assert_eq!(account.status, 200);
    account.assert_security_headers();
    assert!(account.body.contains(&email), "{}", account.body);
    assert!(
        account
            .body
            .contains("Ada &lt;b&gt;Lovelace&lt;&#x2f;b&gt;"),
        "escaped"
    );
    assert!(!account.body.contains("<b>Lovelace"));
    // Signed in, the sign-in page moves on to the account.
    let sign_in_page = browser.get(&format!("{base}/sign-in")).await;
    assert_eq!(sign_in_page.status, 303);

    // The password works through the SDK too: one user.
    node.client(&tenant)
        .await
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();

    let mut other = Browser::new(&node);
    let signed_in = sign_in(&mut other, &tenant, &email, PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let cookie = signed_in
        .set_cookie(SESSION_COOKIE)
        .expect("session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(SameSite::Lax));
    let account = other.get(&format!("{base}/account")).await;
    assert!(account.body.contains(&email));

    // Without a cookie the account page sends the browser to sign in and back.
    let mut anonymous = Browser::new(&node);
    let away = anonymous.get(&format!("{base}/account")).await;
    assert_eq!(away.status, 303);
    assert_eq!(
        away.location(),
        format!(
            "{base}/sign-in?return_to=%2Ft%2F{}%2Fhandler%2Faccount",
            tenant.id
        )
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_read_the_same() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let email = unique_email("ada");
    node.client(&tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let mut browser = Browser::new(&node);
    let wrong_password = sign_in(&mut browser, &tenant, &email, "not the password at all").await;
    let unknown_email = unique_email("nobody");
    let unknown = sign_in(&mut browser, &tenant, &unknown_email, PASSWORD).await;

    assert_eq!(wrong_password.status, 422);
    assert_eq!(unknown.status, wrong_password.status);
    let text = wrong_password.alert().expect("an alert");
    assert_eq!(text, "Email or password is incorrect.");
    assert_eq!(unknown.alert().as_deref(), Some(text.as_str()));
    // The whole page is the same but for the address typed in.
    assert_eq!(
        wrong_password.body.replace(&email, "EMAIL"),
        unknown.body.replace(&unknown_email, "EMAIL")
    );
    assert!(wrong_password.set_cookie(SESSION_COOKIE).is_none());
    assert!(unknown.set_cookie(SESSION_COOKIE).is_none());
}

#[tokio::test]
async fn return_to_is_followed_only_to_paths_of_the_node() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let base = base(&tenant);
    let email = unique_email("ada");
    node.client(&tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let own = format!("{base}/account?from=app");
    for (return_to, expected) in [
        (own.as_str(), own.clone()),
        ("//evil.example", format!("{base}/account")),
        ("https://evil.example", format!("{base}/account")),
        ("/\\evil.example", format!("{base}/account")),
        ("javascript:alert(1)", format!("{base}/account")),
    ] {
        let mut browser = Browser::new(&node);
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", return_to)
            .finish();
        let form = browser.get(&format!("{base}/sign-in?{query}")).await;
        assert!(!form.body.contains("evil.example"), "{return_to}");
        let csrf = form.hidden("csrf").unwrap();
        let fields = [
            ("csrf", csrf.as_str()),
            ("email", email.as_str()),
            ("password", PASSWORD),
            ("return_to", return_to),
        ];
        let signed_in = browser.post(&format!("{base}/sign-in"), &fields).await;
        assert_eq!(signed_in.status, 303, "{return_to}");
        assert_eq!(signed_in.location(), expected, "{return_to}");
    }
}

#[tokio::test]
async fn sign_out_revokes_the_session_and_its_cookie_no_longer_signs_in() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let base = base(&tenant);
    let email = unique_email("ada");
    let client = node.client(&tenant).await;
    let signed_up = client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    client.sign_out(&signed_up.refresh_token).await.unwrap();
    let mut browser = Browser::new(&node);
    assert_eq!(
        sign_in(&mut browser, &tenant, &email, PASSWORD)
            .await
            .status,
        303
    );
    let sealed = browser.cookies[SESSION_COOKIE].clone();
    let server = node.server(&tenant).await;
    let live = server
        .list_sessions(&signed_up.user_id, false)
        .await
        .unwrap();
    assert_eq!(live.len(), 1, "the pages' session");
    let account = browser.get(&format!("{base}/account")).await;
    let csrf = account.hidden("csrf").expect("the sign-out form");

    let signed_out = browser
        .post(&format!("{base}/sign-out"), &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(signed_out.status, 303, "{}", signed_out.body);
    signed_out.assert_security_headers();
    assert_eq!(signed_out.location(), format!("{base}/signed-out"));
    let cleared = signed_out.set_cookie(SESSION_COOKIE).expect("cleared");
    assert_eq!(cleared.max_age(), Some(cookie::time::Duration::ZERO));
    let page = browser.get(&format!("{base}/signed-out")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("signed out"));

    // The session ended in the domain, not only in this browser.
    let live = server
        .list_sessions(&signed_up.user_id, false)
        .await
        .unwrap();
    assert!(live.is_empty(), "{live:?}");
    // The old cookie, sent again, shows no one.
    browser.cookies.insert(SESSION_COOKIE.to_owned(), sealed);
    let replayed = browser.get(&format!("{base}/account")).await;
    assert_eq!(replayed.status, 303);
    assert!(replayed.location().starts_with(&format!("{base}/sign-in")));
    assert!(!replayed.body.contains(&email));
}

#[tokio::test]
async fn a_suspended_user_is_signed_out_of_the_pages() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let base = base(&tenant);
    let email = unique_email("ada");
    let user = node
        .client(&tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let mut browser = Browser::new(&node);
    assert_eq!(
        sign_in(&mut browser, &tenant, &email, PASSWORD)
            .await
            .status,
        303
    );
    assert_eq!(browser.get(&format!("{base}/account")).await.status, 200);

    node.server(&tenant)
        .await
        .suspend_user(&user.user_id)
        .await
        .unwrap();
    let account = browser.get(&format!("{base}/account")).await;
    assert_eq!(account.status, 303);
    assert!(account.location().starts_with(&format!("{base}/sign-in")));
    let cleared = account
        .set_cookie(SESSION_COOKIE)
        .expect("stale cookie cleared");
    assert_eq!(cleared.max_age(), Some(cookie::time::Duration::ZERO));
    let again = sign_in(&mut browser, &tenant, &email, PASSWORD).await;
    assert_eq!(again.status, 403);
    assert_eq!(again.alert().as_deref(), Some("This account is suspended."));
}

#[tokio::test]
async fn a_cookie_of_one_tenant_is_not_accepted_by_another() {
    let node = TestNode::start().await;
    let acme = node.tenant("Acme").await;
    let globex = node.tenant("Globex").await;
    let email = unique_email("ada");
    // The same address has a user in both tenants.
    node.client(&globex)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let mut browser = Browser::new(&node);
    assert_eq!(
        sign_up(&mut browser, &acme, &email, "Ada").await.status,
        303
    );
    assert_eq!(
        browser
            .get(&format!("{}/account", base(&acme)))
            .await
            .status,
        200
    );

    // A browser sends a cookie only on its path; a forger sends it anywhere.
    let sealed = browser.cookies[SESSION_COOKIE].clone();
    let account = browser.get(&format!("{}/account", base(&globex))).await;
    assert_eq!(account.status, 303, "{}", account.body);
    assert!(
        account
            .location()
            .starts_with(&format!("{}/sign-in", base(&globex)))
    );
    assert!(!account.body.contains(&email));
    // Globex clears it on its own path; Acme's session lives on.
    let cleared = account
        .set_cookie(SESSION_COOKIE)
        .expect("cleared as stale");
    assert_eq!(cleared.path(), Some(format!("/t/{}/", globex.id).as_str()));
    browser.cookies.insert(SESSION_COOKIE.to_owned(), sealed);
    let sign_in_page = browser.get(&format!("{}/sign-in", base(&globex))).await;
    assert_eq!(sign_in_page.status, 200, "not signed in at Globex");
    assert_eq!(
        browser
            .get(&format!("{}/account", base(&acme)))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn throttled_and_second_factor_sign_ins_say_what_to_do() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let client = node.client(&tenant).await;

    let email = unique_email("ada");
    client
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let mut browser = Browser::new(&node);
    let mut last = None;
    for _ in 0..12 {
        let page = sign_in(&mut browser, &tenant, &email, "guessing the password").await;
        if page.status == 429 {
            last = Some(page);
            break;
        }
        assert_eq!(page.status, 422);
    }
    let throttled = last.expect("the attempts were throttled");
    let text = throttled.alert().unwrap();
    assert!(
        text.starts_with("Too many attempts. Try again in "),
        "{text}"
    );
    let retry_after: u64 = throttled.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert!(
        throttled.body.contains(&email),
        "the address stays in the form"
    );

    let mfa_email = unique_email("grace");
    let signed_up = client
        .sign_up_with_password(&mfa_email, PASSWORD)
        .await
        .unwrap();
    let user = client.with_access_token(&signed_up.access_token);
    let secret = secret_from_otpauth(&user.enroll_totp().await.unwrap().otpauth_uri).unwrap();
    // Away from a step's edge, so the code is still current when it arrives.
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    while !(2..=24).contains(&(now() % 30)) {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    user.confirm_totp(&totp_sha1(&secret, now(), 6, 30))
        .await
        .unwrap();
    let mut browser = Browser::new(&node);
    let page = sign_in(&mut browser, &tenant, &mfa_email, PASSWORD).await;
    assert!(
        page.set_cookie(SESSION_COOKIE).is_none(),
        "no session without the factor"
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Two-step verification"), "{}", page.body);
    assert!(page.hidden("ticket").is_some(), "the second-factor page");
}

#[tokio::test]
async fn a_protected_sign_up_reads_the_same_for_a_new_and_a_taken_address() {
    let node = TestNode::start().await;
    let changes = v1::UpdateTenantConfigRequest {
        email_verification_required: Some(true),
        sign_up_enumeration_protection: Some(true),
        ..v1::UpdateTenantConfigRequest::default()
    };
    let tenant = email_tenant(&node, "Acme", changes).await;
    let owner = unique_email("owner");
    let reply = node
        .client(&tenant)
        .await
        .sign_up_with_password(&owner, PASSWORD)
        .await
        .unwrap();
    assert!(reply.verification_required);

    let mut browser = Browser::new(&node);
    let new = sign_up(&mut browser, &tenant, &unique_email("new"), "New").await;
    let taken = sign_up(&mut browser, &tenant, &owner, "Mallory").await;
    assert_eq!(new.status, 200, "{}", new.body);
    assert!(new.body.contains("Check your email"), "{}", new.body);
    assert_eq!((taken.status, &taken.body), (new.status, &new.body));
    assert!(new.set_cookie(SESSION_COOKIE).is_none());
    assert!(taken.set_cookie(SESSION_COOKIE).is_none());
}
