//! Gatehouse's OpenID provider driven by a certified relying-party library (`openid-client`,
//! `node/tests/rp/rp.mjs`) against a real node: discovery, code + PKCE through the hosted
//! sign-in and consent pages, token, ID token (signature, `nonce`, audience), userinfo,
//! refresh, introspection, code replay and revocation; and the authorization endpoint's
//! refusals over plain HTTP (PKCE missing or `plain`, a redirect URI that is not registered,
//! `prompt=none` without a session).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::testkit::{PASSWORD, TestNode, TestTenant, unique_email};

const CALLBACK: &str = "https://app.example.com/callback";
const SIGNED_OUT: &str = "https://app.example.com/signed-out";

fn rp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rp")
}

fn node_binary() -> PathBuf {
    std::env::var_os("GATEHOUSE_TEST_NODE").map_or_else(|| PathBuf::from("node"), PathBuf::from)
}

/// Registers a client with the CLI: `(client_id, client_secret)` (the secret empty for a
/// public client).
fn register(
    node: &TestNode,
    tenant: &TestTenant,
    public: bool,
    first_party: bool,
) -> (String, String) {
    let mut args = vec![
        "oidc-client",
        "create",
        "--tenant",
        tenant.id.as_str(),
        "--name",
        "Example App",
        "--redirect-uri",
        CALLBACK,
        "--post-logout-redirect-uri",
        SIGNED_OUT,
        "--json",
    ];
    if public {
        args.push("--public");
    }
    if first_party {
        args.push("--first-party");
    }
    let (ok, stdout, stderr) = node.admin(&args);
    assert!(ok, "{stderr}");
    let created: Value = serde_json::from_str(&stdout).unwrap();
    let text = |field: &str| created[field].as_str().unwrap_or_default().to_owned();
    (text("client_id"), text("client_secret"))
}

async fn run_rp(
    node: &TestNode,
    tenant: &TestTenant,
    client: &(String, String),
    email: &str,
) -> Value {
    assert!(
        rp_dir().join("node_modules/openid-client").is_dir(),
        "openid-client is missing: run `npm ci --prefix node/tests/rp`"
    );
    let output = tokio::process::Command::new(node_binary())
        .arg(rp_dir().join("rp.mjs"))
        .current_dir(rp_dir())
        .env(
            "GATEHOUSE_ISSUER",
            format!("{}/t/{}", node.http_url(), tenant.id),
        )
        .env("RP_CLIENT_ID", &client.0)
        .env("RP_CLIENT_SECRET", &client.1)
        .env("RP_REDIRECT_URI", CALLBACK)
        .env("RP_POST_LOGOUT_URI", SIGNED_OUT)
        .env("RP_EMAIL", email)
        .env("RP_PASSWORD", PASSWORD)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "rp.mjs failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

#[tokio::test]
async fn a_certified_relying_party_signs_in_refreshes_and_revokes_through_the_provider() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Provider").await;
    let email = unique_email("rp");
    let user = node
        .client(&tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();

    // A confidential third-party client: sign-in and consent pages the first time.
    let confidential = register(&node, &tenant, false, false);
    let out = run_rp(&node, &tenant, &confidential, &email).await;
    assert_eq!(
        out["pages"],
        serde_json::json!(["sign-in", "consent"]),
        "{out}"
    );
    assert_eq!(out["id_token"]["sub"], user.user_id);
    assert_eq!(out["id_token"]["aud"], confidential.0);
    assert_eq!(out["id_token"]["amr"], serde_json::json!(["pwd"]));
    assert_eq!(out["id_token"]["email"], email);
    assert!(out["id_token"]["auth_time"].as_i64().unwrap() > 0);
    assert_eq!(out["scope"], "openid email profile");
    assert_eq!(out["userinfo"]["sub"], user.user_id);
    assert_eq!(out["userinfo"]["email"], email);
    assert_eq!(out["refresh"]["rotated"], true);
    assert_eq!(out["refresh"]["id_token_sub"], user.user_id);
    assert_eq!(out["introspection"]["active"], true, "{out}");
    assert_eq!(out["introspection"]["client_id"], confidential.0);
    // A replayed code is refused and revokes the session it issued.
    assert_eq!(out["code_replay"], "invalid_grant", "{out}");
    assert_eq!(out["introspection_after_replay"]["active"], false, "{out}");
    assert_eq!(out["refresh_after_replay"], "invalid_grant", "{out}");
    // The browser is still signed in and consent was given: no page the second time.
    assert_eq!(out["second_pages"], serde_json::json!([]), "{out}");
    assert_eq!(out["refresh_after_revocation"], "invalid_grant", "{out}");
    // Logout: asked without a hint; with one, signed out at once and sent back with state;
    // the client's session ended and the next sign-in shows the form again.
    assert_eq!(out["end_session_without_hint"]["status"], 200, "{out}");
    assert_eq!(out["end_session_without_hint"]["asks"], true, "{out}");
    assert_eq!(out["end_session"]["status"], 303, "{out}");
    assert_eq!(
        out["end_session"]["location"],
        format!("{SIGNED_OUT}?state=bye")
    );
    assert_eq!(out["refresh_after_end_session"], "invalid_grant", "{out}");
    assert_eq!(
        out["pages_after_end_session"],
        serde_json::json!(["sign-in"]),
        "{out}"
    );

    // A public first-party client: PKCE alone, no consent page.
    let public = register(&node, &tenant, true, true);
    let out = run_rp(&node, &tenant, &public, &email).await;
    assert_eq!(out["pages"], serde_json::json!(["sign-in"]), "{out}");
    assert_eq!(out["id_token"]["aud"], public.0);
    assert_eq!(out["code_replay"], "invalid_grant", "{out}");
    assert_eq!(out["refresh_after_revocation"], "invalid_grant", "{out}");
}

/// `good` with `changes` set and `dropped` left out.
fn changed<'a>(
    good: &[(&'a str, &'a str)],
    changes: &[(&'a str, &'a str)],
    dropped: &[&str],
) -> Vec<(&'a str, &'a str)> {
    let mut query: Vec<(&str, &str)> = good
        .iter()
        .filter(|(name, _)| !dropped.contains(name) && !changes.iter().any(|(n, _)| n == name))
        .copied()
        .collect();
    query.extend_from_slice(changes);
    query
}

/// The authorization endpoint's answer to `query`, not followed: status and `Location`.
async fn authorize(node: &TestNode, tenant: &TestTenant, query: &[(&str, &str)]) -> (u16, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!(
            "{}/t/{}/oauth2/authorize",
            node.http_url(),
            tenant.id
        ))
        .query(query)
        .send()
        .await
        .unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), location)
}

#[tokio::test]
async fn the_authorization_endpoint_refuses_bad_requests_the_standard_way() {
    let node = TestNode::start().await;
    let tenant = node.tenant("Provider").await;
    let (client_id, _) = register(&node, &tenant, true, true);
    let challenge = "TJwej6JDfTjl4bIDoNEgSDR517o-8Z3atJJB3G-XwLY";
    let good = [
        ("client_id", client_id.as_str()),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s-1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let with = |changes: &[(&'static str, &'static str)], dropped: &[&str]| {
        changed(&good, changes, dropped)
    };
    let error_of = |location: &str| {
        let url = url::Url::parse(location).unwrap();
        assert!(location.starts_with(CALLBACK), "{location}");
        let get = |name: &str| {
            url.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        assert_eq!(get("state").as_deref(), Some("s-1"), "{location}");
        assert!(get("iss").unwrap().ends_with(&format!("/t/{}", tenant.id)));
        get("error").unwrap()
    };

    // Without a session the browser goes to sign-in, coming back here.
    let (status, location) = authorize(&node, &tenant, &good).await;
    assert_eq!(status, 303);
    assert!(
        location.contains("/handler/sign-in?return_to=%2Ft%2F"),
        "{location}"
    );
    // PKCE is required and must be S256.
    for query in [
        with(&[], &["code_challenge", "code_challenge_method"]),
        with(&[("code_challenge_method", "plain")], &[]),
        with(&[], &["code_challenge_method"]),
    ] {
        let (status, location) = authorize(&node, &tenant, &query).await;
        assert_eq!(
            (status, error_of(&location).as_str()),
            (303, "invalid_request"),
            "{query:?}"
        );
    }
    // prompt=none without a session.
    let (_, location) = authorize(&node, &tenant, &with(&[("prompt", "none")], &[])).await;
    assert_eq!(error_of(&location), "login_required");
    let (_, location) = authorize(&node, &tenant, &with(&[("response_type", "token")], &[])).await;
    assert_eq!(error_of(&location), "unsupported_response_type");
    // A redirect URI that is not registered, an unknown client or a parameter given twice:
    // a page, never a redirect.
    let mut twice = good.to_vec();
    twice.push(("scope", "openid"));
    for query in [
        with(&[("redirect_uri", "https://evil.example/callback")], &[]),
        with(
            &[("redirect_uri", "https://app.example.com/callback/")],
            &[],
        ),
        with(&[("client_id", "gci_unknown")], &[]),
        with(&[], &["redirect_uri"]),
        twice,
    ] {
        let (status, location) = authorize(&node, &tenant, &query).await;
        assert_eq!((status, location.as_str()), (400, ""), "{query:?}");
    }

    // Logout to an address the client did not register, or with a hint this tenant did not
    // sign: a page, never a redirect.
    let end_session = |query: Vec<(&'static str, String)>| {
        let url = format!("{}/t/{}/oauth2/end_session", node.http_url(), tenant.id);
        async move {
            let response = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .get(url)
                .query(&query)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.headers().contains_key("location"),
            )
        }
    };
    let evil = "https://evil.example/bye".to_owned();
    assert_eq!(
        end_session(vec![
            ("client_id", client_id.clone()),
            ("post_logout_redirect_uri", evil)
        ])
        .await,
        (400, false)
    );
    let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_owned();
    assert_eq!(
        end_session(vec![("id_token_hint", forged)]).await,
        (400, false)
    );
    // Without a session or a target, the signed-out page.
    let (status, redirected) = end_session(Vec::new()).await;
    assert_eq!((status, redirected), (303, true));
}

#[tokio::test]
async fn consent_and_logout_pages_work_in_headless_chromium() {
    const CHROMIUM: &str = "/usr/bin/chromium";
    if !Path::new(CHROMIUM).exists() {
        println!("SKIPPED consent_and_logout_pages_work_in_headless_chromium: no {CHROMIUM}");
        return;
    }
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci --prefix node/tests/browser`"
    );
    let node = TestNode::start().await;
    let tenant = node.tenant("Acme Rockets").await;
    let email = unique_email("consent");
    node.client(&tenant)
        .await
        .sign_up_with_password(&email, PASSWORD)
        .await
        .unwrap();
    let (client_id, _) = register(&node, &tenant, true, false);
    let issuer = format!("{}/t/{}", node.http_url(), tenant.id);
    let authorize = url::Url::parse_with_params(
        &format!("{issuer}/oauth2/authorize"),
        [
            ("client_id", client_id.as_str()),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", "openid email profile"),
            ("state", "s-1"),
            (
                "code_challenge",
                "TJwej6JDfTjl4bIDoNEgSDR517o-8Z3atJJB3G-XwLY",
            ),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let end_session = url::Url::parse_with_params(
        &format!("{issuer}/oauth2/end_session"),
        [
            ("client_id", client_id.as_str()),
            ("post_logout_redirect_uri", SIGNED_OUT),
        ],
    )
    .unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_gatehouse"));
    let screenshots = binary
        .ancestors()
        .nth(2)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("screenshots");
    let output = tokio::process::Command::new(node_binary())
        .arg(scripts.join("provider.mjs"))
        .current_dir(&scripts)
        .env("GATEHOUSE_AUTHORIZE_URL", authorize.as_str())
        .env("GATEHOUSE_END_SESSION_URL", end_session.as_str())
        .env("GATEHOUSE_APP_ORIGIN", "https://app.example.com")
        .env("GATEHOUSE_SCREENSHOTS", &screenshots)
        .env("GATEHOUSE_EMAIL", &email)
        .env("GATEHOUSE_PASSWORD", PASSWORD)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "provider.mjs failed:\n{stdout}\n{stderr}"
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    // An axe-core scan of each page found no serious or critical violation (the script
    // fails otherwise) on the sign-in, consent and logout pages of both runs.
    assert_eq!(
        report["scanned"].as_array().map(Vec::len),
        Some(7),
        "{report}"
    );
    let landed: Vec<&str> = report["landed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|url| url.as_str().unwrap())
        .collect();
    // The first run: a code, a code again after consenting anew (access was removed in the
    // settings), the signed-out address; the second: a code, the signed-out address.
    assert_eq!(landed.len(), 5, "{landed:?}");
    for (index, url) in landed.iter().enumerate() {
        if index == 2 || index == 4 {
            assert_eq!(*url, SIGNED_OUT);
        } else {
            assert!(url.starts_with(&format!("{CALLBACK}?code=gac_")), "{url}");
            assert!(url.contains("state=s-1") && url.contains("iss="), "{url}");
        }
    }
    for name in [
        "consent-light-desktop",
        "consent-dark-phone",
        "end-session-light-desktop",
        "end-session-dark-phone",
    ] {
        let size =
            std::fs::metadata(screenshots.join(format!("{name}.png"))).map_or(0, |m| m.len());
        assert!(size > 1000, "{name}.png is missing");
    }
}
