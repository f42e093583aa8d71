//! Authorization codes: single use, 60 seconds, bound to client, redirect URI and PKCE
//! verifier; a replay revokes the session the first redemption issued.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::authorize::{AuthorizationRequest, Prompt};
use super::codes::{self, CodeRefusal, SignedInBrowser, verifier_answers};
use crate::domain::sessions::{self, AuthMethod, ClientInfo};
use crate::domain::test_world::TestWorld as World;
use crate::error::DomainError;

/// A verifier and its S256 challenge, computed independently (Python's `hashlib` and
/// `base64.urlsafe_b64encode`, padding stripped).
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K1C-ozH7ZGb0yE6vpDBCF0ju3E";
const CHALLENGE: &str = "TJwej6JDfTjl4bIDoNEgSDR517o-8Z3atJJB3G-XwLY";
const CALLBACK: &str = "https://app.example.com/callback";

fn request() -> AuthorizationRequest {
    AuthorizationRequest {
        client_id: "gci_app".to_owned(),
        redirect_uri: CALLBACK.to_owned(),
        scopes: vec!["openid".to_owned(), "email".to_owned()],
        state: Some("xyz".to_owned()),
        nonce: Some("n-0S6".to_owned()),
        code_challenge: CHALLENGE.to_owned(),
        prompt: Prompt::default(),
        max_age: None,
        login_hint: None,
    }
}

impl World {
    async fn issue_code(&self) -> (String, SignedInBrowser) {
        let user = self.add_user("ada@example.com", true).await;
        let browser = SignedInBrowser {
            user_id: user.user_id,
            session_id: uuid::Uuid::from_u128(0x5e55_1011),
            auth_time: self.context.now(),
            amr: vec!["pwd".to_owned()],
        };
        let (context, browser_ref) = (&self.context, &browser);
        let code =
            self.db
                .run(|tx| async move {
                    codes::issue(&tx, context, "acme", &request(), browser_ref).await
                })
                .await
                .unwrap();
        (code, browser)
    }

    /// Checks `code`; on success redeems it for a new session, whose id is returned.
    async fn redeem(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<uuid::Uuid, CodeRefusal> {
        let (context, settings) = (&self.context, &self.tenant.record.settings);
        self.db
            .run(|tx| async move {
                let checked = codes::check(
                    &tx,
                    context,
                    "acme",
                    code,
                    client_id,
                    redirect_uri,
                    verifier,
                )
                .await?;
                let redeemable = match checked {
                    Ok(redeemable) => redeemable,
                    Err(refusal) => return Ok::<_, DomainError>(Err(refusal)),
                };
                let user_id = redeemable.record.user_id;
                let methods = [AuthMethod::Password];
                let client = ClientInfo::default();
                let (session, _) = sessions::create_session(
                    &tx, context, "acme", settings, user_id, &client, &methods, false,
                )?;
                redeemable.redeem(&tx, context.now(), session.session_id)?;
                Ok(Ok(session.session_id))
            })
            .await
            .unwrap()
    }

    async fn session_revoked(&self, session_id: uuid::Uuid) -> bool {
        self.db
            .run(|tx| async move { sessions::find_session(&tx, "acme", session_id).await })
            .await
            .unwrap()
            .unwrap()
            .revoked
            .is_some()
    }
}

#[test]
fn the_verifier_must_answer_the_s256_challenge() {
    assert!(verifier_answers(VERIFIER, CHALLENGE));
    assert!(!verifier_answers(&VERIFIER.replace('d', "e"), CHALLENGE));
    // The challenge itself, or anything too short or with other characters, never answers.
    assert!(!verifier_answers(CHALLENGE, CHALLENGE));
    assert!(!verifier_answers("", CHALLENGE));
    assert!(!verifier_answers(&format!("{VERIFIER}+"), CHALLENGE));
}

#[tokio::test]
async fn a_code_is_redeemed_once_and_a_replay_revokes_what_it_issued() {
    let world = World::new().await;
    let (code, _) = world.issue_code().await;
    assert!(code.starts_with("gac_") && code.len() > 40);
    let issued = world
        .redeem(&code, "gci_app", CALLBACK, VERIFIER)
        .await
        .unwrap();
    assert!(!world.session_revoked(issued).await);
    let replay = world.redeem(&code, "gci_app", CALLBACK, VERIFIER).await;
    assert_eq!(replay, Err(CodeRefusal::Replayed));
    assert!(world.session_revoked(issued).await);
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_redirect_uri_and_verifier() {
    let world = World::new().await;
    let (code, _) = world.issue_code().await;
    let refused = [
        ("gci_other", CALLBACK, VERIFIER, CodeRefusal::OtherClient),
        (
            "gci_app",
            "https://app.example.com/other",
            VERIFIER,
            CodeRefusal::OtherRedirectUri,
        ),
    ];
    for (client, uri, verifier, refusal) in refused {
        assert_eq!(
            world.redeem(&code, client, uri, verifier).await,
            Err(refusal)
        );
    }
    // Those left the code usable; a wrong verifier spends it.
    let wrong = VERIFIER.replace('d', "e");
    assert_eq!(
        world.redeem(&code, "gci_app", CALLBACK, &wrong).await,
        Err(CodeRefusal::WrongVerifier)
    );
    assert_eq!(
        world.redeem(&code, "gci_app", CALLBACK, VERIFIER).await,
        Err(CodeRefusal::Unknown)
    );
    assert_eq!(
        world
            .redeem("gac_made_up", "gci_app", CALLBACK, VERIFIER)
            .await,
        Err(CodeRefusal::Unknown)
    );
    assert_eq!(
        world
            .redeem("not a code", "gci_app", CALLBACK, VERIFIER)
            .await,
        Err(CodeRefusal::Unknown)
    );
}

#[tokio::test]
async fn a_code_expires_after_sixty_seconds_and_old_records_are_swept() {
    let world = World::new().await;
    let (code, _) = world.issue_code().await;
    world.clock.advance(Duration::from_millis(60_001));
    assert_eq!(
        world.redeem(&code, "gci_app", CALLBACK, VERIFIER).await,
        Err(CodeRefusal::Expired)
    );
    // The expired code's record is kept for replays until its keeping time, then swept.
    let kept = u64::try_from(codes::CODE_KEPT_MILLIS).unwrap();
    world.clock.advance(Duration::from_millis(kept));
    let now = world.context.now();
    let swept = world
        .db
        .run(|tx| async move { codes::sweep(&tx, "acme", now, 100).await })
        .await
        .unwrap();
    assert_eq!(swept, 1);
    assert_eq!(
        world.redeem(&code, "gci_app", CALLBACK, VERIFIER).await,
        Err(CodeRefusal::Unknown)
    );
}
