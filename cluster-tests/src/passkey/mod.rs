//! A software WebAuthn authenticator ("soft passkey") for end-to-end tests, written from
//! the WebAuthn Level 3 spec so that it shares nothing with the server's WebAuthn library.
//!
//! [`SoftPasskey`] plays browser and platform authenticator at once: it takes the
//! options JSON the server hands a browser (`{"publicKey": {...}}`, as for
//! `navigator.credentials.create()` / `.get()`) and returns the credential JSON the
//! browser would post back.
//!
//! - [`SoftPasskey::register`] creates a discoverable ES256 (P-256) credential with
//!   `none` attestation and answers with a `RegisterPublicKeyCredential`.
//! - [`SoftPasskey::sign_in`] signs an assertion with a stored credential and answers with
//!   a `PublicKeyCredential`; with no `allowCredentials` it uses the newest credential for
//!   the RP ID, as a discoverable (usernameless) sign-in does.
//!
//! Knobs let tests misbehave like real authenticators: [`SoftPasskey::uv`] turns user
//! verification off, [`SoftPasskey::backup_eligible`] marks credentials as synced
//! passkeys, and [`SoftPasskey::set_counter`] winds a signature counter back as a cloned
//! authenticator would. A replay is simply the same returned JSON sent again.
//!
//! ```no_run
//! # fn demo(creation_options: &str, request_options: &str) -> Result<(), String> {
//! use gatehouse_cluster_tests::passkey::SoftPasskey;
//!
//! let mut passkey = SoftPasskey::new();
//! let registration = passkey.register("http://localhost:8080", creation_options)?;
//! // ... post `registration` to the server, then later:
//! let assertion = passkey.sign_in("http://localhost:8080", request_options)?;
//! # Ok(())
//! # }
//! ```

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ciborium::Value as Cbor;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use rand::RngCore as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

/// Base64url without padding when encoding; padding optional when decoding.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Authenticator data flag: user present.
const FLAG_UP: u8 = 0x01;
/// Authenticator data flag: user verified.
const FLAG_UV: u8 = 0x04;
/// Authenticator data flag: backup eligible.
const FLAG_BE: u8 = 0x08;
/// Authenticator data flag: backed up.
const FLAG_BS: u8 = 0x10;
/// Authenticator data flag: attested credential data included.
const FLAG_AT: u8 = 0x40;
/// COSE algorithm identifier of ES256 (ECDSA P-256 with SHA-256).
const COSE_ALG_ES256: i64 = -7;
/// Length of the credential ids this authenticator makes.
const CREDENTIAL_ID_LEN: usize = 32;

/// A software passkey authenticator holding any number of credentials.
///
/// Credentials are always discoverable (they keep the user handle) and are never
/// replaced: registering twice for the same user keeps both.
#[derive(Debug)]
pub struct SoftPasskey {
    /// Whether ceremonies report user verification (the UV flag). Defaults to `true`;
    /// passkey ceremonies fail on the server when it is `false`.
    pub uv: bool,
    /// Whether ceremonies mark the credential as a synced, backed-up passkey (the BE and
    /// BS flags together). Defaults to `false`. It is read at each ceremony, so flipping
    /// it between registration and sign-in makes the backup eligibility inconsistent.
    pub backup_eligible: bool,
    credentials: Vec<SoftCredential>,
}

/// One credential the authenticator holds.
#[derive(Debug)]
struct SoftCredential {
    /// The credential id (random bytes).
    id: Vec<u8>,
    /// The private key; the server holds the public half.
    key: SigningKey,
    /// The RP ID the credential is scoped to.
    rp_id: String,
    /// The user handle (`user.id` of the creation options).
    user_handle: Vec<u8>,
    /// The signature counter: 0 at registration, incremented before every assertion.
    counter: u32,
}

impl Default for SoftPasskey {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftPasskey {
    /// An authenticator with no credentials, user verification on and backup flags off.
    pub fn new() -> Self {
        Self {
            uv: true,
            backup_eligible: false,
            credentials: Vec::new(),
        }
    }

    /// Runs `navigator.credentials.create()` at `origin` (e.g. `http://localhost:8080`)
    /// with the server's creation options (`{"publicKey": {...}}` or the bare options
    /// object) and returns the `RegisterPublicKeyCredential` JSON to send back.
    ///
    /// Fails, storing nothing, when the options are malformed, `rp.id` is not the
    /// origin's host or a registrable suffix of it, `pubKeyCredParams` does not offer
    /// ES256, or a credential listed in `excludeCredentials` is already held.
    pub fn register(&mut self, origin: &str, options_json: &str) -> Result<String, String> {
        let options = public_key_options(options_json)?;
        let host = origin_host(origin)?;
        let rp_id = match options.get("rp").and_then(|rp| rp.get("id")) {
            Some(id) => id
                .as_str()
                .ok_or("rp.id is not a string")?
                .to_ascii_lowercase(),
            None => host.clone(),
        };
        check_rp_id(&rp_id, &host)?;
        let challenge = challenge(&options)?;
        let user_handle = options
            .get("user")
            .and_then(|user| user.get("id"))
            .and_then(Value::as_str)
            .ok_or_else(|| "the creation options have no user.id".to_owned())
            .and_then(|id| decode_b64url(id, "user.id"))?;
        if user_handle.is_empty() {
            return Err("user.id is empty".to_owned());
        }
        if let Some(params) = options.get("pubKeyCredParams").and_then(Value::as_array) {
            let offers_es256 = params.iter().any(|param| {
                param.get("alg").and_then(Value::as_i64) == Some(COSE_ALG_ES256)
                    && param.get("type").and_then(Value::as_str) == Some("public-key")
            });
            if !params.is_empty() && !offers_es256 {
                return Err("pubKeyCredParams does not offer ES256 (-7)".to_owned());
            }
        }
        for excluded in credential_descriptors(&options, "excludeCredentials")? {
            if self.find(&excluded, &rp_id).is_some() {
                return Err(format!(
                    "InvalidStateError: credential {} is in excludeCredentials",
                    BASE64URL.encode(&excluded)
                ));
            }
        }

        let mut id = vec![0u8; CREDENTIAL_ID_LEN];
        rand::thread_rng().fill_bytes(&mut id);
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let client_data_json = client_data_json("webauthn.create", &challenge, origin)?;

        let mut auth_data = authenticator_data_prefix(&rp_id, self.flags() | FLAG_AT, 0);
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID: none
        let id_len = u16::try_from(id.len()).map_err(|_| "credential id too long")?;
        auth_data.extend_from_slice(&id_len.to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend_from_slice(&cose_key(&key)?);

        let attestation_object = cbor_bytes(&Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(Vec::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]))?;

        let id_b64 = BASE64URL.encode(&id);
        let response = json!({
            "id": id_b64,
            "rawId": id_b64,
            "type": "public-key",
            "response": {
                "attestationObject": BASE64URL.encode(attestation_object),
                "clientDataJSON": BASE64URL.encode(client_data_json.as_bytes()),
                "transports": ["internal"],
            },
            "extensions": {},
        });
        self.credentials.push(SoftCredential {
            id,
            key,
            rp_id,
            user_handle,
            counter: 0,
        });
        Ok(response.to_string())
    }

    /// Runs `navigator.credentials.get()` at `origin` with the server's request options
    /// (`{"publicKey": {...}}`, possibly with a top-level `mediation`, or the bare options
    /// object) and returns the `PublicKeyCredential` JSON to send back.
    ///
    /// With a non-empty `allowCredentials` it signs with the first held credential that
    /// is listed and scoped to the RP ID; without, with the most recently registered one
    /// for the RP ID. The credential's counter is incremented (wrapping) before signing.
    /// Fails when the options are malformed, `rpId` does not fit the origin, or no
    /// credential fits.
    pub fn sign_in(&mut self, origin: &str, options_json: &str) -> Result<String, String> {
        let options = public_key_options(options_json)?;
        let host = origin_host(origin)?;
        let rp_id = match options.get("rpId") {
            Some(id) => id
                .as_str()
                .ok_or("rpId is not a string")?
                .to_ascii_lowercase(),
            None => host.clone(),
        };
        check_rp_id(&rp_id, &host)?;
        let challenge = challenge(&options)?;
        let allowed = credential_descriptors(&options, "allowCredentials")?;
        let index = if allowed.is_empty() {
            self.credentials
                .iter()
                .rposition(|credential| credential.rp_id == rp_id)
                .ok_or_else(|| format!("no discoverable credential for {rp_id}"))?
        } else {
            self.credentials
                .iter()
                .position(|credential| {
                    credential.rp_id == rp_id && allowed.contains(&credential.id)
                })
                .ok_or_else(|| format!("none of allowCredentials is held for {rp_id}"))?
        };
        let flags = self.flags();
        let client_data_json = client_data_json("webauthn.get", &challenge, origin)?;
        let credential = &mut self.credentials[index];
        credential.counter = credential.counter.wrapping_add(1);
        let auth_data = authenticator_data_prefix(&rp_id, flags, credential.counter);

        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(client_data_json.as_bytes()));
        let signature: Signature = credential
            .key
            .try_sign(&signed)
            .map_err(|error| format!("signing failed: {error}"))?;

        let id_b64 = BASE64URL.encode(&credential.id);
        let response = json!({
            "id": id_b64,
            "rawId": id_b64,
            "type": "public-key",
            "response": {
                "authenticatorData": BASE64URL.encode(auth_data),
                "clientDataJSON": BASE64URL.encode(client_data_json.as_bytes()),
                "signature": BASE64URL.encode(signature.to_der().as_bytes()),
                "userHandle": BASE64URL.encode(&credential.user_handle),
            },
            "extensions": {},
        });
        Ok(response.to_string())
    }

    /// Sets the signature counter of the credential `credential_id_b64` (base64url), e.g.
    /// back to an earlier value to act like a cloned authenticator. The next assertion
    /// carries `counter + 1`.
    pub fn set_counter(&mut self, credential_id_b64: &str, counter: u32) -> Result<(), String> {
        let index = self.index_of(credential_id_b64)?;
        self.credentials[index].counter = counter;
        Ok(())
    }

    /// The current signature counter of the credential `credential_id_b64` (base64url),
    /// or `None` when it is not held.
    pub fn counter(&self, credential_id_b64: &str) -> Option<u32> {
        let index = self.index_of(credential_id_b64).ok()?;
        Some(self.credentials[index].counter)
    }

    /// The ids of every held credential, base64url without padding, oldest first.
    pub fn credential_ids(&self) -> Vec<String> {
        self.credentials
            .iter()
            .map(|credential| BASE64URL.encode(&credential.id))
            .collect()
    }

    /// The authenticator data flags every ceremony sets (UP, and UV / BE / BS per the
    /// knobs).
    fn flags(&self) -> u8 {
        let mut flags = FLAG_UP;
        if self.uv {
            flags |= FLAG_UV;
        }
        if self.backup_eligible {
            flags |= FLAG_BE | FLAG_BS;
        }
        flags
    }

    /// The held credential with this id and RP ID.
    fn find(&self, id: &[u8], rp_id: &str) -> Option<&SoftCredential> {
        self.credentials
            .iter()
            .find(|credential| credential.id == id && credential.rp_id == rp_id)
    }

    /// The index of the held credential with this base64url id.
    fn index_of(&self, credential_id_b64: &str) -> Result<usize, String> {
        let id = decode_b64url(credential_id_b64, "credential id")?;
        self.credentials
            .iter()
            .position(|credential| credential.id == id)
            .ok_or_else(|| format!("no credential {credential_id_b64}"))
    }
}

/// The `publicKey` member of creation or request options JSON, or the JSON itself when
/// it is already the bare options object.
fn public_key_options(options_json: &str) -> Result<Value, String> {
    let mut value: Value = serde_json::from_str(options_json)
        .map_err(|error| format!("options are not JSON: {error}"))?;
    if let Some(public_key) = value.get_mut("publicKey") {
        return match public_key.take() {
            object @ Value::Object(_) => Ok(object),
            _ => Err("publicKey is not an object".to_owned()),
        };
    }
    if value.is_object() {
        Ok(value)
    } else {
        Err("options are not a JSON object".to_owned())
    }
}

/// The host of a web origin, lowercase.
fn origin_host(origin: &str) -> Result<String, String> {
    let url = Url::parse(origin).map_err(|error| format!("bad origin {origin:?}: {error}"))?;
    url.host_str()
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| format!("origin {origin:?} has no host"))
}

/// Checks that `rp_id` is `host` or a registrable suffix of it (a parent domain; the
/// public suffix list is not consulted).
fn check_rp_id(rp_id: &str, host: &str) -> Result<(), String> {
    let is_suffix = host
        .strip_suffix(rp_id)
        .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'));
    if rp_id.is_empty() || rp_id.starts_with('.') || !is_suffix {
        return Err(format!(
            "SecurityError: RP ID {rp_id:?} does not fit the origin host {host:?}"
        ));
    }
    Ok(())
}

/// The options' challenge, checked to be base64url and re-encoded without padding.
fn challenge(options: &Value) -> Result<String, String> {
    let text = options
        .get("challenge")
        .and_then(Value::as_str)
        .ok_or("the options have no challenge")?;
    let bytes = decode_b64url(text, "challenge")?;
    if bytes.is_empty() {
        return Err("the challenge is empty".to_owned());
    }
    Ok(BASE64URL.encode(bytes))
}

/// The decoded ids of a list of `PublicKeyCredentialDescriptor`s (`allowCredentials`,
/// `excludeCredentials`); empty when the member is absent or null.
fn credential_descriptors(options: &Value, member: &str) -> Result<Vec<Vec<u8>>, String> {
    let list = match options.get(member) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(format!("{member} is not an array")),
    };
    list.iter()
        .map(|descriptor| {
            descriptor
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("an entry of {member} has no id"))
                .and_then(|id| decode_b64url(id, member))
        })
        .collect()
}

/// The serialised `CollectedClientData`, members in the spec's order.
fn client_data_json(type_: &str, challenge: &str, origin: &str) -> Result<String, String> {
    let quote = |text: &str| {
        serde_json::to_string(text).map_err(|error| format!("cannot quote {text:?}: {error}"))
    };
    Ok(format!(
        r#"{{"type":{},"challenge":{},"origin":{},"crossOrigin":false}}"#,
        quote(type_)?,
        quote(challenge)?,
        quote(origin)?
    ))
}

/// The fixed start of authenticator data: SHA-256(RP ID) ‖ flags ‖ counter (big-endian).
fn authenticator_data_prefix(rp_id: &str, flags: u8, counter: u32) -> Vec<u8> {
    let mut data = Vec::with_capacity(37);
    data.extend_from_slice(&Sha256::digest(rp_id.as_bytes()));
    data.push(flags);
    data.extend_from_slice(&counter.to_be_bytes());
    data
}

/// The public half of `key` as a CBOR COSE_Key: EC2, ES256, P-256, x and y.
fn cose_key(key: &SigningKey) -> Result<Vec<u8>, String> {
    let point = key.verifying_key().to_encoded_point(false);
    let x = point.x().ok_or("the public key has no x coordinate")?;
    let y = point.y().ok_or("the public key has no y coordinate")?;
    cbor_bytes(&Cbor::Map(vec![
        (Cbor::Integer(1.into()), Cbor::Integer(2.into())), // kty: EC2
        (
            Cbor::Integer(3.into()),
            Cbor::Integer(COSE_ALG_ES256.into()),
        ), // alg: ES256
        (Cbor::Integer((-1).into()), Cbor::Integer(1.into())), // crv: P-256
        (Cbor::Integer((-2).into()), Cbor::Bytes(x.to_vec())),
        (Cbor::Integer((-3).into()), Cbor::Bytes(y.to_vec())),
    ]))
}

/// `value` encoded as CBOR.
fn cbor_bytes(value: &Cbor) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).map_err(|error| format!("CBOR encoding: {error}"))?;
    Ok(out)
}

/// Decodes base64url (padding optional), naming `what` in the error.
fn decode_b64url(text: &str, what: &str) -> Result<Vec<u8>, String> {
    BASE64URL
        .decode(text)
        .map_err(|error| format!("{what} is not base64url: {error}"))
}

#[cfg(test)]
mod tests;
