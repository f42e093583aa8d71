//! A signed-in user's token pair, refreshed shortly before the access token expires.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::client::Client;
use crate::status::ApiError;
use crate::v1;

/// How long before its expiry an access token is refreshed.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// How many of a session's spent refresh tokens a node remembers: presenting one of the
/// last this-many is answered `REFRESH_TOKEN_REUSED` (and revokes the session); an older
/// one is answered as an unknown token. Part of the observable contract, so clients and
/// the chaos checker know the window without importing the node's domain; the node's e2e
/// tests pin it to the domain's own constant.
pub const SPENT_REFRESH_TOKENS_REMEMBERED: usize = 64;

/// The tokens of one session, as issued by the latest sign-in or refresh.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionTokens {
    /// The session (refresh-token family) these tokens belong to.
    pub session_id: String,
    /// The current access token (a JWT).
    pub access_token: String,
    /// The single-use refresh token for the next pair.
    pub refresh_token: String,
    /// When the access token expires, from its `exp` claim or the reply; `None` if unknown.
    pub access_token_expires_at: Option<SystemTime>,
}

impl SessionTokens {
    /// Tokens from explicit values; the expiry is read from the access token's `exp` claim.
    pub fn new(session_id: String, access_token: String, refresh_token: String) -> Self {
        let access_token_expires_at = jwt_expiry(&access_token);
        Self {
            session_id,
            access_token,
            refresh_token,
            access_token_expires_at,
        }
    }

    /// The tokens of a sign-in or sign-up reply.
    pub fn from_sign_in(reply: &v1::SignInReply) -> Self {
        Self::from_parts(
            &reply.session_id,
            reply.tokens.as_ref(),
            &reply.access_token,
            &reply.refresh_token,
        )
    }

    /// The tokens of a refresh reply.
    pub fn from_refresh(reply: &v1::RefreshSessionReply) -> Self {
        Self::from_parts(
            &reply.session_id,
            reply.tokens.as_ref(),
            &reply.access_token,
            &reply.refresh_token,
        )
    }

    /// Whether the access token expires within [`REFRESH_MARGIN`] of `now`.
    pub fn needs_refresh(&self, now: SystemTime) -> bool {
        self.access_token_expires_at
            .is_some_and(|expires_at| now + REFRESH_MARGIN >= expires_at)
    }

    // Replies carry the pair both flat and as `tokens`; prefer `tokens` when filled in.
    fn from_parts(
        session_id: &str,
        pair: Option<&v1::TokenPair>,
        access_token: &str,
        refresh_token: &str,
    ) -> Self {
        let pair = pair.filter(|pair| !pair.access_token.is_empty());
        let mut tokens = match pair {
            Some(pair) => Self::new(
                session_id.to_owned(),
                pair.access_token.clone(),
                pair.refresh_token.clone(),
            ),
            None => Self::new(
                session_id.to_owned(),
                access_token.to_owned(),
                refresh_token.to_owned(),
            ),
        };
        if tokens.access_token_expires_at.is_none() {
            tokens.access_token_expires_at = pair
                .and_then(|pair| pair.access_token_expires_at)
                .and_then(|at| SystemTime::try_from(at).ok());
        }
        tokens
    }
}

// Tokens are bearer secrets and must never reach logs through `{:?}`.
impl fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionTokens")
            .field("session_id", &self.session_id)
            .field("access_token_expires_at", &self.access_token_expires_at)
            .finish_non_exhaustive()
    }
}

/// A signed-in user: a client plus the session's tokens, refreshed when they run out.
#[derive(Debug, Clone)]
pub struct UserSession {
    client: Client,
    tokens: SessionTokens,
}

impl UserSession {
    /// Wraps tokens obtained elsewhere; `client` carries the tenant and client key.
    pub fn new(client: Client, tokens: SessionTokens) -> Self {
        Self { client, tokens }
    }

    /// Signs in with an email and password.
    pub async fn sign_in_with_password(
        client: &Client,
        email: &str,
        password: &str,
    ) -> Result<Self, ApiError> {
        let reply = client.sign_in_with_password(email, password).await?;
        Ok(Self::new(
            client.without_access_token(),
            SessionTokens::from_sign_in(&reply),
        ))
    }

    /// The current tokens, without refreshing.
    pub fn tokens(&self) -> &SessionTokens {
        &self.tokens
    }

    /// A usable access token, refreshed first when less than 30 s of it remain.
    pub async fn access_token(&mut self) -> Result<String, ApiError> {
        self.access_token_at(SystemTime::now()).await
    }

    /// Like [`UserSession::access_token`], with the current time passed in.
    pub async fn access_token_at(&mut self, now: SystemTime) -> Result<String, ApiError> {
        if self.tokens.needs_refresh(now) {
            self.refresh().await?;
        }
        Ok(self.tokens.access_token.clone())
    }

    /// Exchanges the refresh token for a new pair now; not retried on failure.
    pub async fn refresh(&mut self) -> Result<&SessionTokens, ApiError> {
        let reply = self
            .client
            .refresh_session(&self.tokens.refresh_token)
            .await?;
        self.tokens = SessionTokens::from_refresh(&reply);
        Ok(&self.tokens)
    }

    /// A client acting as this user, with a fresh access token.
    pub async fn client(&mut self) -> Result<Client, ApiError> {
        let token = self.access_token().await?;
        Ok(self.client.with_access_token(&token))
    }

    /// Ends the session on the server.
    pub async fn sign_out(self) -> Result<(), ApiError> {
        self.client.sign_out(&self.tokens.refresh_token).await
    }
}

/// Reads the `exp` claim of a JWT without verifying it: verification is the server's job,
/// the client only needs to know when to refresh.
fn jwt_expiry(token: &str) -> Option<SystemTime> {
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: u64,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(claims.exp))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.signature",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn expiry_is_read_from_the_exp_claim() {
        let token = jwt(r#"{"sub":"u1","exp":1700000600,"iat":1700000000}"#);
        assert_eq!(jwt_expiry(&token), Some(at(1_700_000_600)));
    }

    #[test]
    fn malformed_tokens_have_no_expiry() {
        for token in [
            "",
            "abc",
            "a.!!!.c",
            &jwt("not json"),
            &jwt(r#"{"sub":"u1"}"#),
        ] {
            assert_eq!(jwt_expiry(token), None, "{token}");
        }
    }

    #[test]
    fn refresh_is_due_thirty_seconds_before_expiry() {
        let tokens = SessionTokens::new("s1".into(), jwt(r#"{"exp":1000}"#), "r1".into());
        assert!(!tokens.needs_refresh(at(969)));
        assert!(tokens.needs_refresh(at(970)));
        assert!(tokens.needs_refresh(at(2000)));
    }

    #[test]
    fn unknown_expiry_never_forces_a_refresh() {
        let tokens = SessionTokens::new("s1".into(), "opaque".into(), "r1".into());
        assert!(!tokens.needs_refresh(at(u32::MAX.into())));
    }

    #[test]
    fn sign_in_reply_prefers_the_token_pair() {
        let reply = v1::SignInReply {
            session_id: "s1".into(),
            access_token: "flat".into(),
            refresh_token: "flat-refresh".into(),
            tokens: Some(v1::TokenPair {
                access_token: "opaque".into(),
                access_token_expires_at: Some(prost_types::Timestamp {
                    seconds: 5000,
                    nanos: 0,
                }),
                refresh_token: "pair-refresh".into(),
            }),
            ..Default::default()
        };
        let tokens = SessionTokens::from_sign_in(&reply);
        assert_eq!(tokens.access_token, "opaque");
        assert_eq!(tokens.refresh_token, "pair-refresh");
        assert_eq!(tokens.access_token_expires_at, Some(at(5000)));
    }

    #[test]
    fn flat_fields_are_used_without_a_token_pair() {
        let reply = v1::RefreshSessionReply {
            session_id: "s1".into(),
            access_token: jwt(r#"{"exp":42}"#),
            refresh_token: "r2".into(),
            tokens: None,
        };
        let tokens = SessionTokens::from_refresh(&reply);
        assert_eq!(tokens.refresh_token, "r2");
        assert_eq!(tokens.access_token_expires_at, Some(at(42)));
    }

    #[test]
    fn debug_output_redacts_tokens() {
        let tokens = SessionTokens::new("s1".into(), "secret-a".into(), "secret-r".into());
        let text = format!("{tokens:?}");
        assert!(!text.contains("secret"), "{text}");
    }
}
