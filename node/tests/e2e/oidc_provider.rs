//! The OpenID provider's token, userinfo, revocation and introspection endpoints against a
//! real node, over HTTP: client authentication and its errors (RFC 6749 §5.2), form rules,
//! introspection of live and revoked tokens, and the discovery document naming each endpoint.

use serde_json::Value;

use crate::testkit::{PASSWORD, TestNode, unique_email};

struct Provider {
    node: TestNode,
    tenant: crate::testkit::TestTenant,
    confidential: (String, String),
    public: String,
}

impl Provider {
    async fn start() -> Provider {
        let node = TestNode::start().await;
        let tenant = node.tenant("Provider").await;
        let create = |public: bool| {
            let mut args = vec![
                "oidc-client",
                "create",
                "--tenant",
                tenant.id.as_str(),
                "--name",
                "App",
                "--redirect-uri",
                "https://app.example.com/callback",
                "--json",
            ];
            if public {
                args.push("--public");
            }
            let (ok, stdout, stderr) = node.admin(&args);
            assert!(ok, "{stderr}");
            serde_json::from_str::<Value>(&stdout).unwrap()
        };
        let confidential = create(false);
        let public = create(true);
        let text = |value: &Value, field: &str| value[field].as_str().unwrap().to_owned();
        Provider {
            confidential: (
                text(&confidential, "client_id"),
                text(&confidential, "client_secret"),
            ),
            public: text(&public, "client_id"),
            tenant,
            node,
        }
    }

    fn url(&self, endpoint: &str) -> String {
        format!(
            "{}/t/{}/oauth2/{endpoint}",
            self.node.http_url(),
            self.tenant.id
        )
    }

    async fn post(
        &self,
        endpoint: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = reqwest::Client::new().post(self.url(endpoint)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, headers, body)
    }
}

#[tokio::test]
async fn the_token_endpoint_authenticates_clients_and_answers_in_rfc_6749_shape() {
    let provider = Provider::start().await;
    let (id, secret) = (&provider.confidential.0, &provider.confidential.1);
    let code_form = [
        ("grant_type", "authorization_code"),
        ("code", "gac_not_a_real_code"),
        ("redirect_uri", "https://app.example.com/callback"),
        (
            "code_verifier",
            "dBjftJeZ4CVP-mJ92K1C-ozH7ZGb0yE6vpDBCF0ju3E",
        ),
    ];
    // A right client with a made-up code: invalid_grant, never cached.
    let (status, headers, body) = provider.post("token", Some((id, secret)), &code_form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    // The same with the secret in the form.
    let mut posted = code_form.to_vec();
    posted.extend([
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ]);
    let (status, _, body) = provider.post("token", None, &posted).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // Wrong secret, a confidential client without one, a public client with one, nobody.
    let wrong = format!("{secret}x");
    for (basic, extra) in [
        (Some((id.as_str(), wrong.as_str())), vec![]),
        (None, vec![("client_id", id.as_str())]),
        (Some((provider.public.as_str(), "a secret")), vec![]),
        (None, vec![]),
    ] {
        let mut form = code_form.to_vec();
        form.extend(extra);
        let (status, headers, body) = provider.post("token", basic, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{body}"
        );
        assert!(headers.contains_key("www-authenticate"));
    }
    // A public client names itself and gets to the grant check.
    let mut form = code_form.to_vec();
    form.push(("client_id", provider.public.as_str()));
    let (status, _, body) = provider.post("token", None, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // Form rules.
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("grant_type", "password")], "unsupported_grant_type"),
        (
            &[("grant_type", "client_credentials")],
            "unsupported_grant_type",
        ),
        (&[("grant_type", "authorization_code")], "invalid_request"),
        (
            &[
                ("grant_type", "refresh_token"),
                ("grant_type", "refresh_token"),
            ],
            "invalid_request",
        ),
    ];
    for (form, error) in cases {
        let (status, _, body) = provider.post("token", Some((id, secret)), form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{form:?} {body}"
        );
    }
    let json_body = reqwest::Client::new()
        .post(provider.url("token"))
        .basic_auth(id, Some(secret))
        .json(&serde_json::json!({ "grant_type": "refresh_token" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status().as_u16(), 400);
}

#[tokio::test]
async fn introspection_and_revocation_follow_the_session_and_userinfo_needs_a_live_token() {
    let provider = Provider::start().await;
    let (id, secret) = (&provider.confidential.0, &provider.confidential.1);
    let client = provider.node.client(&provider.tenant).await;
    let signed_up = client
        .sign_up_with_password(&unique_email("inspect"), PASSWORD)
        .await
        .unwrap();
    let token = signed_up.access_token.as_str();

    let (status, _, body) = provider
        .post("introspect", Some((id, secret)), &[("token", token)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["sub"], signed_up.user_id);
    assert_eq!(body["sid"], signed_up.session_id);
    // Garbage is inactive, not an error; public clients may not introspect.
    let (_, _, body) = provider
        .post("introspect", Some((id, secret)), &[("token", "garbage")])
        .await;
    assert_eq!(body, serde_json::json!({ "active": false }));
    let (status, _, _) = provider
        .post(
            "introspect",
            None,
            &[("token", token), ("client_id", provider.public.as_str())],
        )
        .await;
    assert_eq!(status, 401);

    // Userinfo: `sub` for a live token of a session no client holds; nothing without one.
    let userinfo = |bearer: Option<String>| {
        let mut request = reqwest::Client::new().get(provider.url("userinfo"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|value| value.to_str().unwrap().to_owned());
            (status, challenge, response.json::<Value>().await.unwrap())
        }
    };
    let (status, _, body) = userinfo(Some(token.to_owned())).await;
    assert_eq!(
        (status, body["sub"].as_str()),
        (200, Some(signed_up.user_id.as_str()))
    );
    assert!(body.get("email").is_none(), "{body}");
    let (status, challenge, _) = userinfo(None).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().starts_with("Bearer"));

    // Revoking a token of a session the client does not hold changes nothing (and says OK).
    let (status, _, _) = provider
        .post("revoke", Some((id, secret)), &[("token", token)])
        .await;
    assert_eq!(status, 200);
    let (_, _, body) = provider
        .post("introspect", Some((id, secret)), &[("token", token)])
        .await;
    assert_eq!(body["active"], true, "{body}");

    // Once the session ends, the token is inactive and userinfo refuses it.
    client.sign_out(&signed_up.refresh_token).await.unwrap();
    let (_, _, body) = provider
        .post("introspect", Some((id, secret)), &[("token", token)])
        .await;
    assert_eq!(body, serde_json::json!({ "active": false }));
    let (status, challenge, _) = userinfo(Some(token.to_owned())).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("invalid_token"));
}

#[tokio::test]
async fn discovery_names_each_endpoint_and_what_it_supports() {
    let provider = Provider::start().await;
    let url = format!(
        "{}/t/{}/.well-known/openid-configuration",
        provider.node.http_url(),
        provider.tenant.id
    );
    let discovery: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let issuer = discovery["issuer"].as_str().unwrap();
    for (field, path) in [
        ("token_endpoint", "oauth2/token"),
        ("userinfo_endpoint", "oauth2/userinfo"),
        ("revocation_endpoint", "oauth2/revoke"),
        ("introspection_endpoint", "oauth2/introspect"),
    ] {
        assert_eq!(discovery[field], format!("{issuer}/{path}"), "{field}");
    }
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
}
