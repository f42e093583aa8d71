//! The token endpoint's transaction: client authentication by kind, and a code redeemed into
//! the client's own session whose ID token a relying party verifies with the JWKS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::OAuthError;
use super::authorize::{AuthorizationRequest, Prompt};
use super::codes::{self, SignedInBrowser};
use super::id_token::IdTokenClaims;
use super::token::{self, ClientAuth, CodeGrant};
use crate::domain::audit::AuditOrigin;
use crate::domain::oidc_clients::{self, ClientKind, IssuedClient, NewOidcClient};
use crate::domain::sessions::{self, AuthMethod, ClientInfo, RevocationReason};
use crate::domain::test_world::TestWorld as World;
use crate::error::DomainError;

const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K1C-ozH7ZGb0yE6vpDBCF0ju3E";
const CHALLENGE: &str = "TJwej6JDfTjl4bIDoNEgSDR517o-8Z3atJJB3G-XwLY";
const CALLBACK: &str = "https://app.example.com/callback";

impl World {
    async fn client(&self, kind: ClientKind) -> IssuedClient {
        let context = &self.context;
        let new = NewOidcClient {
            name: "App".to_owned(),
            kind,
            redirect_uris: vec![CALLBACK.to_owned()],
            post_logout_redirect_uris: Vec::new(),
            allowed_scopes: Vec::new(),
            first_party: false,
        };
        self.db
            .run(|tx| {
                let new = new.clone();
                async move {
                    oidc_clients::create(&tx, context, "acme", new, &AuditOrigin::system()).await
                }
            })
            .await
            .unwrap()
    }

    async fn authenticate(&self, auth: &ClientAuth) -> Result<(), OAuthError> {
        self.db
            .run(|tx| async move { token::authenticate(&tx, "acme", auth).await })
            .await
            .unwrap()
            .map(|_| ())
    }

    /// A signed-in browser (a real session) and a code it was given for `client_id`.
    async fn browser_code(&self, client_id: &str) -> (String, SignedInBrowser) {
        let user = self.add_user("ada@example.com", true).await;
        let (context, settings) = (&self.context, &self.tenant.record.settings);
        let request = AuthorizationRequest {
            client_id: client_id.to_owned(),
            redirect_uri: CALLBACK.to_owned(),
            scopes: vec!["openid".to_owned(), "profile".to_owned()],
            state: None,
            nonce: Some("nonce-1".to_owned()),
            code_challenge: CHALLENGE.to_owned(),
            prompt: Prompt::default(),
            max_age: None,
            login_hint: None,
        };
        let request = &request;
        self.db
            .run(|tx| async move {
                let methods = [AuthMethod::Password];
                let info = ClientInfo::default();
                let (session, _) = sessions::create_session(
                    &tx,
                    context,
                    "acme",
                    settings,
                    user.user_id,
                    &info,
                    &methods,
                    false,
                )?;
                let browser = SignedInBrowser {
                    user_id: user.user_id,
                    session_id: session.session_id,
                    auth_time: session.auth_time(),
                    amr: session.amr.clone(),
                };
                let code = codes::issue(&tx, context, "acme", request, &browser).await?;
                Ok::<_, DomainError>((code, browser))
            })
            .await
            .unwrap()
    }

    async fn redeem_for(&self, client_id: &str, code: &str) -> Result<CodeGrant, OAuthError> {
        let (context, tenant) = (&self.context, &self.tenant);
        self.db
            .run(|tx| async move {
                let auth = ClientAuth::None {
                    client_id: client_id.to_owned(),
                };
                let client = match token::authenticate(&tx, "acme", &auth).await? {
                    Ok(client) => client,
                    Err(error) => return Ok(Err(error)),
                };
                let info = ClientInfo::default();
                token::redeem_code(
                    &tx, context, tenant, &client, code, CALLBACK, VERIFIER, &info,
                )
                .await
            })
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn clients_authenticate_as_their_kind_requires() {
    let world = World::new().await;
    let confidential = world.client(ClientKind::Confidential).await;
    let public = world.client(ClientKind::Public).await;
    let secret = confidential.secret.clone().unwrap();
    let id = |issued: &IssuedClient| issued.record.client_id.clone();
    assert_eq!(
        world
            .authenticate(&ClientAuth::Secret {
                client_id: id(&confidential),
                secret: secret.clone(),
            })
            .await,
        Ok(())
    );
    assert_eq!(
        world
            .authenticate(&ClientAuth::None {
                client_id: id(&public)
            })
            .await,
        Ok(())
    );
    let refused = [
        // A confidential client must prove itself.
        ClientAuth::None {
            client_id: id(&confidential),
        },
        ClientAuth::Secret {
            client_id: id(&confidential),
            secret: format!("{secret}x"),
        },
        // A public client has no secret to present.
        ClientAuth::Secret {
            client_id: id(&public),
            secret,
        },
        ClientAuth::None {
            client_id: "gci_unknown".to_owned(),
        },
    ];
    for auth in refused {
        assert_eq!(
            world.authenticate(&auth).await,
            Err(OAuthError::invalid_client()),
            "{auth:?}"
        );
    }
}

#[tokio::test]
async fn a_redeemed_code_opens_the_clients_session_and_its_id_token_verifies() {
    let world = World::new().await;
    let client_id = world.client(ClientKind::Public).await.record.client_id;
    let (code, browser) = world.browser_code(&client_id).await;
    let grant = world.redeem_for(&client_id, &code).await.unwrap();
    assert_ne!(grant.session.session_id, browser.session_id);
    assert_eq!(grant.session.amr, ["pwd"]);
    assert_eq!(grant.session.auth_time(), browser.auth_time);
    let held = grant.session.oidc.clone().unwrap();
    assert_eq!(held.client_id, client_id);
    assert!(grant.refresh_token.starts_with("grt_"));

    let tenant = &world.tenant;
    let now = world.context.now();
    let nonce = grant.code.nonce.clone();
    let claims = IdTokenClaims::new(
        &tenant.issuer,
        &held,
        &grant.user,
        &grant.session,
        nonce,
        now,
        300,
    );
    let id_token = tenant.keys.sign_id_token(&claims).unwrap();
    // Verified as a relying party would: the JWKS key its `kid` names, EdDSA, audience.
    let header = jsonwebtoken::decode_header(&id_token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwk = tenant.keys.jwks().find(&header.kid.unwrap()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[client_id.as_str()]);
    validation.set_issuer(&[tenant.issuer.as_str()]);
    validation.validate_exp = false;
    let decoded = jsonwebtoken::decode::<serde_json::Value>(&id_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(decoded["sub"], grant.user.user_id.to_string());
    assert_eq!(decoded["nonce"], "nonce-1");
    assert_eq!(decoded["sid"], grant.session.session_id.to_string());
    assert_eq!(decoded["amr"], serde_json::json!(["pwd"]));
    assert_eq!(decoded["name"], "Ada <b>");
    // `email` was not granted.
    assert!(decoded.get("email").is_none(), "{decoded}");
    assert_eq!(
        decoded["exp"].as_i64().unwrap() - decoded["iat"].as_i64().unwrap(),
        300
    );

    // The same code again revokes the session it opened.
    assert_eq!(
        world.redeem_for(&client_id, &code).await.unwrap_err(),
        OAuthError::invalid_grant()
    );
    let session_id = grant.session.session_id;
    let session = world
        .db
        .run(|tx| async move { sessions::find_session(&tx, "acme", session_id).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.revoked.unwrap().reason, "authorization_code_reused");
}

#[tokio::test]
async fn a_code_is_refused_once_its_browser_session_ended() {
    let world = World::new().await;
    let client_id = world.client(ClientKind::Public).await.record.client_id;
    let (code, browser) = world.browser_code(&client_id).await;
    let context = &world.context;
    world
        .db
        .run(|tx| async move {
            let reason = RevocationReason::SignOut;
            sessions::revoke_session(&tx, context, "acme", browser.session_id, reason).await
        })
        .await
        .unwrap();
    assert_eq!(
        world.redeem_for(&client_id, &code).await.unwrap_err(),
        OAuthError::invalid_grant()
    );
}

#[tokio::test]
async fn consents_cover_what_was_granted_grow_and_go_with_the_user() {
    use super::consent;
    let world = World::new().await;
    let user = world.add_user("grace@example.com", true).await;
    let world = &world;
    let (context, user_id) = (&world.context, user.user_id);
    let scopes = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let covers = |wanted: Vec<String>| async move {
        world
            .db
            .run(|tx| {
                let wanted = wanted.clone();
                async move { consent::covers(&tx, "acme", user_id, "gci_app", &wanted).await }
            })
            .await
            .unwrap()
    };
    assert!(!covers(scopes(&["openid"])).await);
    let grant = |granted: Vec<String>| async move {
        world
            .db
            .run(|tx| {
                let granted = granted.clone();
                async move {
                    consent::grant(&tx, context, "acme", user_id, "gci_app", &granted).await
                }
            })
            .await
            .unwrap();
    };
    grant(scopes(&["openid", "email"])).await;
    assert!(covers(scopes(&["openid"])).await);
    assert!(covers(scopes(&["email", "openid"])).await);
    assert!(!covers(scopes(&["openid", "profile"])).await);
    grant(scopes(&["profile"])).await;
    assert!(covers(scopes(&["openid", "profile", "email"])).await);
    world
        .db
        .run(|tx| async move { crate::domain::users::delete_user(&tx, "acme", user_id).await })
        .await
        .unwrap();
    assert!(!covers(scopes(&["openid"])).await);
}

#[tokio::test]
async fn withdrawing_consent_ends_the_clients_sessions_of_the_user() {
    use super::consent;
    let world = World::new().await;
    let client_id = world.client(ClientKind::Public).await.record.client_id;
    let (code, browser) = world.browser_code(&client_id).await;
    let grant = world.redeem_for(&client_id, &code).await.unwrap();
    let (context, user_id, client) = (&world.context, browser.user_id, client_id.as_str());
    let scopes = vec!["openid".to_owned()];
    let scopes = &scopes;
    world
        .db
        .run(
            |tx| async move { consent::grant(&tx, context, "acme", user_id, client, scopes).await },
        )
        .await
        .unwrap();
    let (existed, ended) = world
        .db
        .run(|tx| async move { consent::withdraw(&tx, context, "acme", user_id, client).await })
        .await
        .unwrap();
    assert_eq!((existed, ended), (true, 1));
    let sessions = [grant.session.session_id, browser.session_id];
    let revoked = world
        .db
        .run(|tx| async move {
            let mut revoked = Vec::new();
            for session_id in sessions {
                let session = sessions::find_session(&tx, "acme", session_id)
                    .await?
                    .unwrap();
                revoked.push(session.revoked.is_some());
            }
            Ok::<_, DomainError>(revoked)
        })
        .await
        .unwrap();
    // The client's session ended; the browser's own session goes on.
    assert_eq!(revoked, [true, false]);
    let listed = world
        .db
        .run(|tx| async move { consent::list_for_user(&tx, "acme", user_id).await })
        .await
        .unwrap();
    assert!(listed.is_empty());
}
