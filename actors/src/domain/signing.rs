//! Per-tenant Ed25519 signing keys, access-token issue and verification, and the JWKS.

use std::collections::HashMap;

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::context::{Context, Timestamp};
use crate::domain::crypto::{MasterKey, base64url};
use crate::error::{DomainError, DomainResult};

/// The JWT algorithm of every Gatehouse signing key.
pub const SIGNING_ALGORITHM: &str = "EdDSA";

/// A signing key as stored in the tenant record: the private half sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    /// JWT `kid`, unique within the tenant.
    pub kid: String,
    /// Always `EdDSA` for now.
    pub algorithm: String,
    /// When the key was created.
    pub created_at: Timestamp,
    /// Raw 32-byte Ed25519 public key.
    #[serde(with = "serde_bytes")]
    pub public_key: Vec<u8>,
    /// PKCS#8 private key sealed under the master key, bound to tenant and kid.
    #[serde(with = "serde_bytes")]
    pub sealed_private_key: Vec<u8>,
    /// When the key stopped signing; it stays published until its tokens expire.
    pub retired_at: Option<Timestamp>,
}

fn seal_label(tenant: &str, kid: &str) -> Vec<u8> {
    format!("gatehouse/signing-key/{tenant}/{kid}").into_bytes()
}

/// The seal label of an anonymous users' key: a sealed key of one kind never opens as the
/// other.
fn anonymous_seal_label(tenant: &str, kid: &str) -> Vec<u8> {
    format!("gatehouse/anonymous-signing-key/{tenant}/{kid}").into_bytes()
}

/// `role` of an anonymous user's access token.
pub const ROLE_ANONYMOUS: &str = "anon";
/// `role` of every other user's access token.
pub const ROLE_AUTHENTICATED: &str = "authenticated";

/// Creates a fresh Ed25519 key for `tenant`.
pub fn generate_signing_key(
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
) -> DomainResult<SigningKeyRecord> {
    generate_key(context, master_key, tenant, seal_label)
}

/// Creates a fresh Ed25519 key that signs only anonymous users' tokens of `tenant`.
pub fn generate_anonymous_signing_key(
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
) -> DomainResult<SigningKeyRecord> {
    generate_key(context, master_key, tenant, anonymous_seal_label)
}

fn generate_key(
    context: &Context,
    master_key: &MasterKey,
    tenant: &str,
    label: fn(&str, &str) -> Vec<u8>,
) -> DomainResult<SigningKeyRecord> {
    let signing_key = SigningKey::from_bytes(&context.random::<32>());
    let pkcs8 = signing_key
        .to_pkcs8_der()
        .map_err(|error| DomainError::Internal(format!("encode signing key: {error}")))?;
    let kid = hex::encode(context.random::<8>());
    let sealed_private_key = master_key.seal(context, &label(tenant, &kid), pkcs8.as_bytes())?;
    Ok(SigningKeyRecord {
        kid,
        algorithm: SIGNING_ALGORITHM.to_owned(),
        created_at: context.now(),
        public_key: signing_key.verifying_key().to_bytes().to_vec(),
        sealed_private_key,
        retired_at: None,
    })
}

/// Claims of a Gatehouse access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// User id.
    pub sub: String,
    /// `<public_url>/t/<tenant>`.
    pub iss: String,
    /// The tenant id.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Session id.
    pub sid: String,
    /// Tenant id.
    pub tid: String,
    /// `authenticated` (or `anon` for anonymous users).
    pub role: String,
    /// Whether the user is restricted (e.g. unverified email where the tenant requires it).
    pub is_restricted: bool,
    /// Why: `email_not_verified` or `mfa_enrolment_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restricted_reason: Option<String>,
    /// How the user signed in (RFC 8176 values where one fits: `pwd`, `otp`, `hwk`, `user`,
    /// `mfa`; also `email` and `recovery`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When the user last proved who they are, seconds since the epoch.
    #[serde(default)]
    pub auth_time: i64,
    /// The user's tenant-wide effective permissions, when the tenant puts them in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perms: Option<Vec<String>>,
    /// Who is acting as the user (RFC 8693 §4.1), only in impersonation sessions' tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<ActorClaim>,
    /// Machine tokens only (`Auth.ExchangeClientCredentials`): what `sub` is, `user`, `team`
    /// or `tenant`. Absent from a signed-in user's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_kind: Option<String>,
    /// Machine tokens only: the id of the API key the token was exchanged for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
}

/// The `act` claim: the party acting on the subject's behalf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorClaim {
    /// The impersonator: `operator` or `server`.
    pub sub: String,
}

/// A tenant's keys decoded for use: the active signer and every published verifier.
pub struct TenantKeys {
    active_kid: String,
    encoding_key: EncodingKey,
    decoding_keys: HashMap<String, DecodingKey>,
    jwks: JwkSet,
    /// The anonymous users' signer, once the tenant has such a key.
    anonymous: Option<(String, EncodingKey)>,
    /// Kids of anonymous users' keys: their tokens must say `role: anon`.
    anonymous_kids: Vec<String>,
    /// The JWKS with the anonymous users' keys as well.
    jwks_with_anonymous: JwkSet,
}

impl std::fmt::Debug for TenantKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantKeys")
            .field("active_kid", &self.active_kid)
            .field("published", &self.decoding_keys.len())
            .finish_non_exhaustive()
    }
}

impl TenantKeys {
    /// Opens the active private key and prepares verifiers for every published key.
    pub fn load(
        master_key: &MasterKey,
        tenant: &str,
        records: &[SigningKeyRecord],
    ) -> DomainResult<TenantKeys> {
        let active = records
            .iter()
            .rev()
            .find(|record| record.retired_at.is_none())
            .ok_or_else(|| DomainError::Internal(format!("tenant {tenant} has no active key")))?;
        let pkcs8 =
            master_key.open(&seal_label(tenant, &active.kid), &active.sealed_private_key)?;
        let mut decoding_keys = HashMap::new();
        let mut jwks = JwkSet { keys: Vec::new() };
        for record in records {
            decoding_keys.insert(
                record.kid.clone(),
                DecodingKey::from_ed_der(&record.public_key),
            );
            jwks.keys.push(public_jwk(record));
        }
        Ok(TenantKeys {
            active_kid: active.kid.clone(),
            encoding_key: EncodingKey::from_ed_der(&pkcs8),
            decoding_keys,
            jwks_with_anonymous: jwks.clone(),
            jwks,
            anonymous: None,
            anonymous_kids: Vec::new(),
        })
    }

    /// Adds the anonymous users' keys: the newest unretired one signs their tokens; all of
    /// them verify, and only [`TenantKeys::jwks_with_anonymous`] publishes them.
    pub fn with_anonymous(
        mut self,
        master_key: &MasterKey,
        tenant: &str,
        records: &[SigningKeyRecord],
    ) -> DomainResult<TenantKeys> {
        if let Some(active) = records
            .iter()
            .rev()
            .find(|record| record.retired_at.is_none())
        {
            let pkcs8 = master_key.open(
                &anonymous_seal_label(tenant, &active.kid),
                &active.sealed_private_key,
            )?;
            self.anonymous = Some((active.kid.clone(), EncodingKey::from_ed_der(&pkcs8)));
        }
        for record in records {
            self.decoding_keys.insert(
                record.kid.clone(),
                DecodingKey::from_ed_der(&record.public_key),
            );
            self.anonymous_kids.push(record.kid.clone());
            self.jwks_with_anonymous.keys.push(public_jwk(record));
        }
        Ok(self)
    }

    /// The `kid` anonymous users' tokens are signed with, if the tenant has such a key.
    pub fn anonymous_kid(&self) -> Option<&str> {
        self.anonymous.as_ref().map(|(kid, _)| kid.as_str())
    }

    /// The JWKS including the anonymous users' keys (`?include_anonymous=true`).
    pub fn jwks_with_anonymous(&self) -> &JwkSet {
        &self.jwks_with_anonymous
    }

    /// The `kid` new tokens are signed with.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// The public JWKS document.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// Signs `claims` with the active key, or with the anonymous users' key when the claims
    /// say `role: anon`.
    pub fn sign(&self, claims: &AccessClaims) -> DomainResult<String> {
        let (kid, key) = if claims.role == ROLE_ANONYMOUS {
            let (kid, key) = self.anonymous.as_ref().ok_or_else(|| {
                DomainError::Internal("tenant has no anonymous signing key".to_owned())
            })?;
            (kid, key)
        } else {
            (&self.active_kid, &self.encoding_key)
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, key)
            .map_err(|error| DomainError::Internal(format!("sign access token: {error}")))
    }

    /// Signs an OpenID Connect ID token with the active key.
    pub fn sign_id_token(
        &self,
        claims: &crate::domain::oidc::id_token::IdTokenClaims,
    ) -> DomainResult<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.active_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding_key)
            .map_err(|error| DomainError::Internal(format!("sign ID token: {error}")))
    }

    /// The claims of an ID token this tenant signed, as an `id_token_hint` (OpenID Connect
    /// RP-Initiated Logout §2): signature and issuer checked, expiry not (a hint may be
    /// old). `None` for anything else.
    pub fn id_token_hint(
        &self,
        token: &str,
        issuer: &str,
    ) -> Option<crate::domain::oidc::id_token::IdTokenClaims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA {
            return None;
        }
        let key = self.decoding_keys.get(&header.kid?)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims = ["iss", "sub", "aud"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        validation.set_issuer(&[issuer]);
        jsonwebtoken::decode(token, key, &validation)
            .ok()
            .map(|data| data.claims)
    }

    /// Verifies signature, issuer and audience, then expiry against `now`.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        tenant: &str,
        now: Timestamp,
    ) -> DomainResult<AccessClaims> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| DomainError::InvalidAccessToken)?;
        if header.alg != Algorithm::EdDSA {
            return Err(DomainError::InvalidAccessToken);
        }
        let kid = header.kid.ok_or(DomainError::InvalidAccessToken)?;
        let key = self
            .decoding_keys
            .get(&kid)
            .ok_or(DomainError::InvalidAccessToken)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        // Expiry is checked below against the injected clock.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "iss", "aud", "sub"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[tenant]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map_err(|_| DomainError::InvalidAccessToken)?
            .claims;
        if claims.tid != tenant {
            return Err(DomainError::InvalidAccessToken);
        }
        // An anonymous key signs only anonymous tokens, and an anonymous token comes only
        // from an anonymous key.
        if self.anonymous_kids.contains(&kid) != (claims.role == ROLE_ANONYMOUS) {
            return Err(DomainError::InvalidAccessToken);
        }
        if claims.exp <= now.as_unix_seconds() {
            return Err(DomainError::AccessTokenExpired);
        }
        Ok(claims)
    }
}

fn public_jwk(record: &SigningKeyRecord) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            key_id: Some(record.kid.clone()),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: base64url(&record.public_key),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::context::ManualClock;
    use std::sync::Arc;
    use std::time::Duration;

    fn claims(now: Timestamp) -> AccessClaims {
        AccessClaims {
            sub: "user".into(),
            iss: "http://issuer/t/acme".into(),
            aud: "acme".into(),
            exp: now.as_unix_seconds() + 600,
            iat: now.as_unix_seconds(),
            sid: "session".into(),
            tid: "acme".into(),
            role: "authenticated".into(),
            is_restricted: false,
            restricted_reason: None,
            amr: vec!["pwd".into()],
            auth_time: now.as_unix_seconds(),
            perms: None,
            act: None,
            principal_kind: None,
            api_key_id: None,
        }
    }

    #[test]
    fn signed_tokens_verify_with_the_published_key_only() {
        let clock = Arc::new(ManualClock::new(Timestamp(1_700_000_000_000)));
        let context = Context {
            clock: clock.clone(),
            entropy: Arc::new(crate::context::OsEntropy),
            live_sessions: Default::default(),
        };
        let master = MasterKey::from_bytes(&[3; 32]);
        let record = generate_signing_key(&context, &master, "acme").unwrap();
        let keys = TenantKeys::load(&master, "acme", std::slice::from_ref(&record)).unwrap();
        let token = keys.sign(&claims(context.now())).unwrap();
        let verified = keys
            .verify(&token, "http://issuer/t/acme", "acme", context.now())
            .unwrap();
        assert_eq!(verified.sub, "user");
        assert!(matches!(
            keys.verify(&token, "http://issuer/t/other", "acme", context.now()),
            Err(DomainError::InvalidAccessToken)
        ));
        assert!(matches!(
            keys.verify(&token, "http://issuer/t/acme", "other", context.now()),
            Err(DomainError::InvalidAccessToken)
        ));
        clock.advance(Duration::from_secs(601));
        assert!(matches!(
            keys.verify(&token, "http://issuer/t/acme", "acme", context.now()),
            Err(DomainError::AccessTokenExpired)
        ));
        let other_tenant_record = generate_signing_key(&context, &master, "other").unwrap();
        let other = TenantKeys::load(&master, "other", &[other_tenant_record]).unwrap();
        let forged = other.sign(&claims(Timestamp(0))).unwrap();
        assert!(
            keys.verify(&forged, "http://issuer/t/acme", "acme", Timestamp(0))
                .is_err()
        );
    }

    #[test]
    fn jwks_lists_retired_keys_and_signs_with_the_newest() {
        let context = Context::system();
        let master = MasterKey::from_bytes(&[3; 32]);
        let mut old = generate_signing_key(&context, &master, "acme").unwrap();
        let old_keys = TenantKeys::load(&master, "acme", std::slice::from_ref(&old)).unwrap();
        let old_token = old_keys.sign(&claims(context.now())).unwrap();
        old.retired_at = Some(context.now());
        let new = generate_signing_key(&context, &master, "acme").unwrap();
        let keys = TenantKeys::load(&master, "acme", &[old.clone(), new.clone()]).unwrap();
        assert_eq!(keys.active_kid(), new.kid);
        assert_eq!(keys.jwks().keys.len(), 2);
        assert!(
            keys.verify(&old_token, "http://issuer/t/acme", "acme", context.now())
                .is_ok()
        );
        let json = serde_json::to_value(keys.jwks()).unwrap();
        assert_eq!(json["keys"][0]["kty"], "OKP");
        assert_eq!(json["keys"][0]["crv"], "Ed25519");
        assert_eq!(json["keys"][0]["alg"], "EdDSA");
    }

    #[test]
    fn anonymous_tokens_use_their_own_key_published_only_on_request() {
        let context = Context::system();
        let master = MasterKey::from_bytes(&[3; 32]);
        let normal = generate_signing_key(&context, &master, "acme").unwrap();
        let anonymous = generate_anonymous_signing_key(&context, &master, "acme").unwrap();
        let keys = TenantKeys::load(&master, "acme", std::slice::from_ref(&normal))
            .unwrap()
            .with_anonymous(&master, "acme", std::slice::from_ref(&anonymous))
            .unwrap();
        let mut anon_claims = claims(context.now());
        anon_claims.role = ROLE_ANONYMOUS.into();
        let token = keys.sign(&anon_claims).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(anonymous.kid.as_str()));
        assert_eq!(keys.anonymous_kid(), Some(anonymous.kid.as_str()));
        let kids = |set: &JwkSet| {
            set.keys
                .iter()
                .filter_map(|key| key.common.key_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(kids(keys.jwks()), vec![normal.kid.clone()]);
        assert_eq!(
            kids(keys.jwks_with_anonymous()),
            vec![normal.kid.clone(), anonymous.kid.clone()]
        );
        let verified = keys
            .verify(&token, "http://issuer/t/acme", "acme", context.now())
            .unwrap();
        assert_eq!(verified.role, ROLE_ANONYMOUS);
        // The anonymous key's seal does not open as a normal key.
        assert!(TenantKeys::load(&master, "acme", std::slice::from_ref(&anonymous)).is_err());
        // A tenant without an anonymous key cannot sign anonymous tokens.
        let plain = TenantKeys::load(&master, "acme", &[normal]).unwrap();
        assert!(plain.sign(&anon_claims).is_err());
    }
}
