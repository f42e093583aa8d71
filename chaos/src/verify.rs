//! The `verify` phase: local access-token verification against the tenant's JWKS.
//!
//! This is what a resource server does on every request, so it runs in this process on
//! every core, with the JWKS fetched once over HTTP as a real verifier would cache it.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use crate::budget::Budget;
use crate::error::ChaosError;
use crate::stats::PhaseSummary;
use crate::threads::run_on_threads;

/// How long fetching the JWKS may take.
const JWKS_TIMEOUT: Duration = Duration::from_secs(10);

/// The claims a Gatehouse access token carries.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessClaims {
    /// User id.
    pub sub: String,
    /// Issuer, `<public url>/t/<tenant>`.
    pub iss: String,
    /// Audience, the tenant id.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Session id.
    pub sid: String,
    /// Tenant id.
    pub tid: String,
    /// `authenticated` or `anon`.
    pub role: String,
}

/// A tenant's public keys by `kid`, with the rules its access tokens must pass.
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
    tenant: String,
}

impl TokenVerifier {
    /// Fetches `<http_base>/t/<tenant>/.well-known/jwks.json` once and builds a verifier.
    pub async fn fetch(http_base: &str, issuer: &str, tenant: &str) -> Result<Self, ChaosError> {
        let url = format!(
            "{}/t/{tenant}/.well-known/jwks.json",
            http_base.trim_end_matches('/')
        );
        // Loopback traffic only: environment proxies must not see it.
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(JWKS_TIMEOUT)
            .build()
            .map_err(|error| ChaosError::Http(format!("http client: {error}")))?;
        let jwks: JwkSet = client
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| ChaosError::Http(format!("GET {url}: {error}")))?
            .json()
            .await
            .map_err(|error| ChaosError::Http(format!("JWKS from {url}: {error}")))?;
        TokenVerifier::from_jwks(&jwks, issuer, tenant)
    }

    /// Builds a verifier from a JWK Set; every key must carry a `kid`.
    pub fn from_jwks(jwks: &JwkSet, issuer: &str, tenant: &str) -> Result<Self, ChaosError> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let kid = jwk
                .common
                .key_id
                .clone()
                .ok_or_else(|| ChaosError::Local("a JWKS key has no kid".to_owned()))?;
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|error| ChaosError::Local(format!("JWKS key {kid}: {error}")))?;
            keys.insert(kid, key);
        }
        if keys.is_empty() {
            return Err(ChaosError::Local("the JWKS holds no keys".to_owned()));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[tenant]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(TokenVerifier {
            keys,
            validation,
            tenant: tenant.to_owned(),
        })
    }

    /// Verifies signature, issuer, audience, expiry and tenant; errors are short codes.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, String> {
        let header = decode_header(token).map_err(|error| error_code(&error))?;
        let kid = header.kid.ok_or_else(|| "MISSING_KID".to_owned())?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| "UNKNOWN_KID".to_owned())?;
        let claims = decode::<AccessClaims>(token, key, &self.validation)
            .map_err(|error| error_code(&error))?
            .claims;
        if claims.tid != self.tenant {
            return Err("WRONG_TENANT".to_owned());
        }
        Ok(claims)
    }
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// The variant name of a `jsonwebtoken` error, such as `ExpiredSignature`.
fn error_code(error: &jsonwebtoken::errors::Error) -> String {
    let kind = format!("{:?}", error.kind());
    let name = kind.split(['(', ' ', '{']).next().unwrap_or("Unknown");
    format!("JWT_{name}")
}

/// Verifies `tokens` round-robin on `threads` threads until `budget` runs out (blocks).
pub fn run_verify_phase(
    verifier: &TokenVerifier,
    tokens: &[String],
    threads: usize,
    budget: &Budget,
) -> Result<PhaseSummary, ChaosError> {
    if tokens.is_empty() {
        return Err(ChaosError::Local("no access tokens to verify".to_owned()));
    }
    Ok(run_on_threads(threads, budget, |thread, iteration| {
        let index = (thread as u64).wrapping_add(iteration) % tokens.len() as u64;
        let token = usize::try_from(index)
            .ok()
            .and_then(|index| tokens.get(index))
            .ok_or_else(|| "NO_TOKEN".to_owned())?;
        verifier.verify(token).map(drop)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_variant_names() {
        let expired =
            jsonwebtoken::errors::Error::from(jsonwebtoken::errors::ErrorKind::ExpiredSignature);
        assert_eq!(error_code(&expired), "JWT_ExpiredSignature");
        let missing = jsonwebtoken::errors::Error::from(
            jsonwebtoken::errors::ErrorKind::MissingRequiredClaim("exp".to_owned()),
        );
        assert_eq!(error_code(&missing), "JWT_MissingRequiredClaim");
    }
}
