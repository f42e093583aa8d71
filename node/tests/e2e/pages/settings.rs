//! The account settings pages against a real node, as a browser without JavaScript: the
//! profile, the password (and the step-up round trip), the sessions, CSRF and tenants.

use std::time::Duration;

use gatehouse_protocol::{ErrorCode, v1};

use super::chromium::{CHROMIUM, node_binary, screenshot_dir, script_dir};
use super::form_browser::{Browser, SESSION_COOKIE, base, sign_in};
use crate::testkit::{PASSWORD, TestNode, TestTenant, unique_email};

const NEW_PASSWORD: &str = "another horse battery staple";

/// A user signed up through the SDK (its session is "another device") and signed in in
/// `browser`; returns the user id and the SDK session's refresh token.
async fn signed_in_user(
    node: &TestNode,
    tenant: &TestTenant,
    browser: &mut Browser,
    email: &str,
) -> (String, String) {
    let signed_up = node
        .client(tenant)
        .await
        .sign_up_with_password(email, PASSWORD)
        .await
        .unwrap();
    let page = sign_in(browser, tenant, email, PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    (signed_up.user_id, signed_up.refresh_token)
}

fn settings(tenant: &TestTenant, section: &str) -> String {
    format!("{}/settings/{section}", base(tenant))
}

#[tokio::test]
async fn renaming_in_the_profile_shows_the_new_name_and_get_user_agrees() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let mut browser = Browser::new(&node);
    let email = unique_email("ada");
    let (user_id, _) = signed_in_user(&node, &tenant, &mut browser, &email).await;
    let account = browser.get(&format!("{}/account", base(&tenant))).await;
    for section in ["profile", "security", "sessions"] {
        // Auto-escaping writes the path's `/` as `&#x2f;` in attributes.
        let link = format!(
            r#"href="{}/settings/{section}""#,
            base(&tenant).replace('/', "&#x2f;")
        );
        assert!(account.body.contains(&link), "{link}: {}", account.body);
    }
    let profile_path = settings(&tenant, "profile");
    let page = browser.get(&profile_path).await;
    assert_eq!(page.status, 200);
    page.assert_security_headers();
    assert!(page.body.contains(r#"<label for="display_name">"#));
    assert!(page.body.contains(&email));

    let saved = browser
        .submit(
            &profile_path,
            &profile_path,
            &[("display_name", "Ada <i>Lovelace</i>")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(saved.location(), format!("{profile_path}?done=profile"));
    let shown = browser.get(saved.location()).await;
    assert!(shown.body.contains("Your name is saved."), "{}", shown.body);
    assert!(
        shown.body.contains("Ada &lt;i&gt;Lovelace&lt;&#x2f;i&gt;"),
        "escaped"
    );
    let user = node.server(&tenant).await.get_user(&user_id).await.unwrap();
    assert_eq!(user.display_name, "Ada <i>Lovelace</i>");

    // A name the domain refuses is shown in the form with the code's sentence.
    let refused = browser
        .submit(
            &profile_path,
            &profile_path,
            &[("display_name", "Ada\u{200b}")],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let alert = refused.alert().expect("an alert");
    assert!(alert.starts_with("Enter another name: it "), "{alert}");
    let user = node.server(&tenant).await.get_user(&user_id).await.unwrap();
    assert_eq!(user.display_name, "Ada <i>Lovelace</i>", "unchanged");

    // Signed out, the settings send the browser to sign in and back.
    let mut stranger = Browser::new(&node);
    let away = stranger.get(&profile_path).await;
    assert_eq!(away.status, 303);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", &profile_path)
        .finish();
    assert_eq!(
        away.location(),
        format!("{}/sign-in?{query}", base(&tenant))
    );
}

#[tokio::test]
async fn a_password_change_needs_the_current_password_then_the_old_one_no_longer_signs_in() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let mut browser = Browser::new(&node);
    let email = unique_email("ada");
    let (_, other_device) = signed_in_user(&node, &tenant, &mut browser, &email).await;
    let security = settings(&tenant, "security");
    let password_path = format!("{}/settings/password", base(&tenant));
    let page = browser.get(&security).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"autocomplete="current-password""#));
    assert!(page.body.contains(r#"autocomplete="new-password""#));
    assert!(
        page.body.contains(r#"<dd id="factor-totp">Off</dd>"#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"<dd id="factor-passkeys">0</dd>"#));
    assert!(
        page.body
            .contains(r#"<dd id="factor-recovery-codes">0</dd>"#)
    );

    let wrong = browser
        .submit(
            &security,
            &password_path,
            &[
                ("current_password", "not the password at all"),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert_eq!(
        wrong.alert().as_deref(),
        Some("Your current password is incorrect.")
    );
    let client = node.client(&tenant).await;
    client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();

    let changed = browser
        .submit(
            &security,
            &password_path,
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(changed.location(), format!("{security}?done=password"));
    let old = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(old.code, ErrorCode::InvalidCredentials);
    client
        .sign_in_with_password(&email, NEW_PASSWORD)
        .await
        .unwrap();
    // The other device is signed out; this browser is not.
    let refresh = client.refresh_session(&other_device).await.unwrap_err();
    assert_eq!(refresh.code, ErrorCode::SessionRevoked, "{refresh}");
    let after = browser.get(changed.location()).await;
    assert_eq!(after.status, 200);
    assert!(after.body.contains("Your password is changed."));
}

#[tokio::test]
async fn an_old_sign_in_signs_in_again_before_changing_the_password() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    node.operator()
        .await
        .update_tenant_config(v1::UpdateTenantConfigRequest {
            tenant_id: tenant.id.clone(),
            step_up_window_seconds: Some(60),
            ..v1::UpdateTenantConfigRequest::default()
        })
        .await
        .unwrap();
    let mut browser = Browser::new(&node);
    let email = unique_email("ada");
    signed_in_user(&node, &tenant, &mut browser, &email).await;
    let security = settings(&tenant, "security");
    let password_path = format!("{}/settings/password", base(&tenant));
    tokio::time::sleep(Duration::from_secs(62)).await;
    let fields = [
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
    ];
    let refused = browser.submit(&security, &password_path, &fields).await;
    assert_eq!(refused.status, 303, "{}", refused.body);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("reauth", "1")
        .append_pair("return_to", &security)
        .finish();
    assert_eq!(
        refused.location(),
        format!("{}/sign-in?{query}", base(&tenant))
    );
    let form = browser.get(refused.location()).await;
    assert_eq!(form.status, 200, "the form, though signed in");
    let return_to = form
        .hidden("return_to")
        .map(|path| path.replace("&#x2f;", "/"));
    assert_eq!(return_to.as_deref(), Some(security.as_str()));
    let csrf = form.hidden("csrf").unwrap();
    let again = browser
        .post(
            &format!("{}/sign-in", base(&tenant)),
            &[
                ("csrf", csrf.as_str()),
                ("email", email.as_str()),
                ("password", PASSWORD),
                ("return_to", security.as_str()),
            ],
        )
        .await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(again.location(), security);
    let changed = browser.submit(&security, &password_path, &fields).await;
    assert_eq!(changed.status, 303);
    assert_eq!(changed.location(), format!("{security}?done=password"));
    node.client(&tenant)
        .await
        .sign_in_with_password(&email, NEW_PASSWORD)
        .await
        .unwrap();
}

#[tokio::test]
async fn signing_out_other_devices_revokes_them_and_keeps_this_one() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let mut browser = Browser::new(&node);
    let email = unique_email("ada");
    let (_, laptop) = signed_in_user(&node, &tenant, &mut browser, &email).await;
    let client = node.client(&tenant).await;
    let phone = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let sessions = settings(&tenant, "sessions");
    let page = browser.get(&sessions).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.body.matches(r#"<li class="session""#).count(),
        3,
        "{}",
        page.body
    );
    assert_eq!(page.body.matches("This device").count(), 1);
    assert_eq!(page.body.matches("Sign out this device").count(), 2);
    assert!(page.body.contains("127.0.0.1"), "the address");
    assert!(
        page.body
            .contains(&format!(r#"id="session-{}""#, phone.session_id))
    );

    // One device: the phone's session ends.
    let revoke = format!("{sessions}/revoke");
    let one = browser
        .submit(
            &sessions,
            &revoke,
            &[("session_id", phone.session_id.as_str())],
        )
        .await;
    assert_eq!(one.status, 303, "{}", one.body);
    assert_eq!(one.location(), format!("{sessions}?done=revoked"));
    let refused = client
        .refresh_session(&phone.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::SessionRevoked);
    client
        .refresh_session(&laptop)
        .await
        .map(drop)
        .unwrap_or_else(|e| panic!("{e}"));

    // Another user's session is not this user's to end.
    let other = client
        .sign_up_with_password(&unique_email("grace"), PASSWORD)
        .await
        .unwrap();
    let foreign = browser
        .submit(
            &sessions,
            &revoke,
            &[("session_id", other.session_id.as_str())],
        )
        .await;
    assert_eq!(foreign.status, 404, "{}", foreign.body);
    assert!(foreign.body.contains("SESSION_NOT_FOUND"));
    client.refresh_session(&other.refresh_token).await.unwrap();

    // Every other device: the laptop's session ends, this browser stays signed in.
    let laptop = client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let others = browser
        .submit(&sessions, &format!("{sessions}/revoke-others"), &[])
        .await;
    assert_eq!(others.status, 303, "{}", others.body);
    assert_eq!(others.location(), format!("{sessions}?done=others"));
    let refused = client
        .refresh_session(&laptop.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::SessionRevoked);
    let after = browser.get(others.location()).await;
    assert_eq!(after.status, 200, "still signed in");
    assert!(after.body.contains("Your other devices are signed out."));
    assert_eq!(after.body.matches(r#"<li class="session""#).count(), 1);
    assert!(after.body.contains("This device"));
    assert!(!after.body.contains("Sign out this device"));
}

#[tokio::test]
async fn every_settings_post_without_the_csrf_token_is_refused() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme").await;
    let mut browser = Browser::new(&node);
    let email = unique_email("ada");
    let (user_id, other_device) = signed_in_user(&node, &tenant, &mut browser, &email).await;
    let base = base(&tenant);
    let posts: [(String, Vec<(&str, &str)>); 4] = [
        (
            format!("{base}/settings/profile"),
            vec![("display_name", "Mallory")],
        ),
        (
            format!("{base}/settings/password"),
            vec![
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        ),
        (
            format!("{base}/settings/sessions/revoke"),
            vec![("session_id", "x")],
        ),
        (format!("{base}/settings/sessions/revoke-others"), vec![]),
    ];
    browser.get(&format!("{base}/account")).await;
    for (path, fields) in &posts {
        let refused = browser.post(path, fields).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
        assert!(refused.body.contains("PERMISSION_DENIED"), "{path}");
        refused.assert_security_headers();
        let mut with_wrong = vec![("csrf", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ")];
        with_wrong.extend_from_slice(fields);
        assert_eq!(browser.post(path, &with_wrong).await.status, 403, "{path}");
    }
    // Nothing changed.
    let user = node.server(&tenant).await.get_user(&user_id).await.unwrap();
    assert_eq!(user.display_name, "");
    let client = node.client(&tenant).await;
    client
        .sign_in_with_password(&email, PASSWORD)
        .await
        .unwrap();
    client.refresh_session(&other_device).await.unwrap();
}

#[tokio::test]
async fn a_cookie_of_one_tenant_cannot_use_another_tenants_settings() {
    let node = TestNode::start().await;
    let acme = node.tenant("Acme").await;
    let globex = node.tenant("Globex").await;
    let email = unique_email("ada");
    // The same address has a user in both tenants.
    let globex_user = node
        .client(&globex)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let mut browser = Browser::new(&node);
    let (acme_user, _) = signed_in_user(&node, &acme, &mut browser, &email).await;
    let sealed = browser.cookies[SESSION_COOKIE].clone();
    assert_eq!(browser.get(&settings(&acme, "profile")).await.status, 200);

    // A forger sends Acme's cookie to Globex's settings: signed out there.
    for section in ["profile", "security", "sessions"] {
        browser
            .cookies
            .insert(SESSION_COOKIE.to_owned(), sealed.clone());
        let page = browser.get(&settings(&globex, section)).await;
        assert_eq!(page.status, 303, "{section}");
        assert!(
            page.location()
                .starts_with(&format!("{}/sign-in", base(&globex)))
        );
        assert!(!page.body.contains(&email));
    }
    browser
        .cookies
        .insert(SESSION_COOKIE.to_owned(), sealed.clone());
    let token = browser
        .get(&format!("{}/sign-in", base(&globex)))
        .await
        .hidden("csrf")
        .unwrap();
    browser
        .cookies
        .insert(SESSION_COOKIE.to_owned(), sealed.clone());
    let globex_profile = settings(&globex, "profile");
    let post = browser
        .post(
            &globex_profile,
            &[("csrf", token.as_str()), ("display_name", "Mallory")],
        )
        .await;
    assert_eq!(post.status, 303, "{}", post.body);
    assert!(
        post.location()
            .starts_with(&format!("{}/sign-in", base(&globex)))
    );
    browser
        .cookies
        .insert(SESSION_COOKIE.to_owned(), sealed.clone());
    let others = browser
        .post(
            &format!("{}/settings/sessions/revoke-others", base(&globex)),
            &[("csrf", token.as_str())],
        )
        .await;
    assert_eq!(others.status, 303);
    let globex_name = node
        .server(&globex)
        .await
        .get_user(&globex_user.user_id)
        .await
        .unwrap();
    assert_eq!(globex_name.display_name, "");
    node.client(&globex)
        .await
        .refresh_session(&globex_user.refresh_token)
        .await
        .unwrap();
    let acme_name = node.server(&acme).await.get_user(&acme_user).await.unwrap();
    assert_eq!(acme_name.display_name, "");
    // Acme's session lives on at Acme.
    browser.cookies.insert(SESSION_COOKIE.to_owned(), sealed);
    assert_eq!(browser.get(&settings(&acme, "sessions")).await.status, 200);
}

/// `node/tests/browser/settings.mjs` in headless Chromium: every section in light and dark
/// at desktop and 375 px, the forms with and without JavaScript, screenshots into
/// `<target>/screenshots/settings-*.png`, no console error or CSP violation.
#[tokio::test]
async fn the_settings_work_in_headless_chromium_without_csp_violations() {
    if !std::path::Path::new(CHROMIUM).exists() {
        println!("SKIPPED: {CHROMIUM} is not installed (apt-get install chromium)");
        return;
    }
    let scripts = script_dir();
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci --prefix node/tests/browser`"
    );
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme Rockets").await;
    let email = unique_email("ada");
    let signed_up = node
        .client(&tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let screenshots = screenshot_dir();
    let run = tokio::process::Command::new(node_binary())
        .arg(scripts.join("settings.mjs"))
        .current_dir(&scripts)
        .env(
            "GATEHOUSE_PAGES_URL",
            format!("{}{}", node.http_url(), base(&tenant)),
        )
        .env("GATEHOUSE_SCREENSHOTS", &screenshots)
        .env("GATEHOUSE_EMAIL", &email)
        .env("GATEHOUSE_PASSWORD", PASSWORD)
        .env("GATEHOUSE_CHROMIUM", CHROMIUM)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser run finishes within 3 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser run failed:\n{stdout}\n{stderr}"
    );
    for section in ["profile", "security", "sessions"] {
        for variant in ["light-desktop", "dark-desktop", "light-phone", "dark-phone"] {
            let path = screenshots.join(format!("settings-{section}-{variant}.png"));
            let size = std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);
            assert!(size > 1000, "{} is missing or empty", path.display());
        }
    }
    // The browser's changes are the domain's: the name from the last (JavaScript-off) form,
    // and "Sign out other devices" ended the SDK's session.
    let user = node
        .server(&tenant)
        .await
        .get_user(&signed_up.user_id)
        .await
        .unwrap();
    assert_eq!(user.display_name, "Ada King");
    let refresh = node
        .client(&tenant)
        .await
        .refresh_session(&signed_up.refresh_token)
        .await
        .unwrap_err();
    assert_eq!(refresh.code, ErrorCode::SessionRevoked);
}
