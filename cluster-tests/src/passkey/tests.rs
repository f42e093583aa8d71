//! The soft passkey against webauthn-rs, the server library it stands in front of.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use webauthn_rs::prelude::{
    Credential, Passkey, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

use super::*;

const ORIGIN: &str = "http://localhost:8080";

fn webauthn() -> Webauthn {
    WebauthnBuilder::new("localhost", &Url::parse(ORIGIN).unwrap())
        .unwrap()
        .allow_any_port(true)
        .build()
        .unwrap()
}

/// Registers a new passkey for a new user; returns the user and the server's passkey.
fn register(webauthn: &Webauthn, soft: &mut SoftPasskey) -> (Uuid, Passkey) {
    let user = Uuid::new_v4();
    let (options, state) = webauthn
        .start_passkey_registration(user, "ada@example.com", "Ada", None)
        .unwrap();
    let response = soft
        .register(ORIGIN, &serde_json::to_string(&options).unwrap())
        .unwrap();
    let credential: RegisterPublicKeyCredential = serde_json::from_str(&response).unwrap();
    let passkey = webauthn
        .finish_passkey_registration(&credential, &state)
        .unwrap();
    (user, passkey)
}

/// Signs in with `passkey` listed in allowCredentials; returns the server's verdict.
fn sign_in(
    webauthn: &Webauthn,
    soft: &mut SoftPasskey,
    origin: &str,
    passkey: &Passkey,
) -> Result<webauthn_rs::prelude::AuthenticationResult, String> {
    let (options, state) = webauthn
        .start_passkey_authentication(std::slice::from_ref(passkey))
        .unwrap();
    let response = soft.sign_in(origin, &serde_json::to_string(&options).unwrap())?;
    let credential: PublicKeyCredential = serde_json::from_str(&response).unwrap();
    webauthn
        .finish_passkey_authentication(&credential, &state)
        .map_err(|error| error.to_string())
}

#[test]
fn registration_is_accepted_by_webauthn_rs() {
    let webauthn = webauthn();
    let mut soft = SoftPasskey::new();
    let (_, passkey) = register(&webauthn, &mut soft);
    assert_eq!(
        soft.credential_ids(),
        vec![BASE64URL.encode(passkey.cred_id())]
    );
    let credential = Credential::from(passkey);
    assert_eq!(credential.counter, 0);
    assert!(credential.user_verified);
    assert!(!credential.backup_eligible);
}

#[test]
fn sign_in_with_allow_credentials_is_accepted_and_counts_one() {
    let webauthn = webauthn();
    let mut soft = SoftPasskey::new();
    let (_, passkey) = register(&webauthn, &mut soft);
    let result = sign_in(&webauthn, &mut soft, ORIGIN, &passkey).unwrap();
    assert_eq!(result.counter(), 1);
    assert!(result.user_verified());
    assert_eq!(result.cred_id(), passkey.cred_id());
}

#[test]
fn discoverable_sign_in_identifies_the_user() {
    let webauthn = webauthn();
    let mut soft = SoftPasskey::new();
    let (_, _older) = register(&webauthn, &mut soft);
    let (user, passkey) = register(&webauthn, &mut soft);
    let (options, state) = webauthn.start_discoverable_authentication().unwrap();
    let options_json = serde_json::to_string(&options).unwrap();
    let response = soft.sign_in(ORIGIN, &options_json).unwrap();
    let credential: PublicKeyCredential = serde_json::from_str(&response).unwrap();
    let (identified, cred_id) = webauthn
        .identify_discoverable_authentication(&credential)
        .unwrap();
    assert_eq!(identified, user);
    assert_eq!(cred_id, passkey.cred_id().as_slice());
    let result = webauthn
        .finish_discoverable_authentication_v2(&credential, state, &passkey)
        .unwrap();
    assert_eq!(result.counter(), 1);
}

#[test]
fn counter_regression_is_refused() {
    let webauthn = webauthn();
    let mut soft = SoftPasskey::new();
    let (_, mut passkey) = register(&webauthn, &mut soft);
    let result = sign_in(&webauthn, &mut soft, ORIGIN, &passkey).unwrap();
    assert_eq!(passkey.update_credential(&result), Some(true));
    let id = BASE64URL.encode(passkey.cred_id());
    assert_eq!(soft.counter(&id), Some(1));
    soft.set_counter(&id, 0).unwrap();
    let error = sign_in(&webauthn, &mut soft, ORIGIN, &passkey).unwrap_err();
    assert!(error.contains("ompromise"), "{error}");
    // Moving on past the stored counter is accepted again.
    soft.set_counter(&id, 5).unwrap();
    let result = sign_in(&webauthn, &mut soft, ORIGIN, &passkey).unwrap();
    assert_eq!(result.counter(), 6);
    assert!(soft.set_counter("AAAA", 1).is_err());
}

#[test]
fn wrong_origin_is_refused() {
    let webauthn = webauthn();
    let mut soft = SoftPasskey::new();
    let (_, passkey) = register(&webauthn, &mut soft);
    // The RP ID still fits this origin, so the authenticator signs; the server refuses.
    let error = sign_in(&webauthn, &mut soft, "http://evil.localhost:8080", &passkey);
    assert!(error.is_err());
    // An origin the RP ID does not fit is refused by the authenticator itself.
    let error = sign_in(&webauthn, &mut soft, "http://example.com", &passkey).unwrap_err();
    assert!(error.contains("SecurityError"), "{error}");
}

#[test]
fn tampered_signature_is_refused() {
    let webauthn = webauthn();
    let mut soft = SoftPasskey::new();
    let (_, passkey) = register(&webauthn, &mut soft);
    let (options, state) = webauthn
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let response = soft
        .sign_in(ORIGIN, &serde_json::to_string(&options).unwrap())
        .unwrap();
    let mut value: Value = serde_json::from_str(&response).unwrap();
    let signature = value["response"]["signature"].as_str().unwrap();
    let mut bytes = BASE64URL.decode(signature).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    value["response"]["signature"] = Value::String(BASE64URL.encode(bytes));
    let credential: PublicKeyCredential = serde_json::from_value(value).unwrap();
    assert!(
        webauthn
            .finish_passkey_authentication(&credential, &state)
            .is_err()
    );
}

#[test]
fn replayed_assertion_is_refused() {
    let webauthn = webauthn();
    let mut soft = SoftPasskey::new();
    let (_, mut passkey) = register(&webauthn, &mut soft);
    let (options, state) = webauthn
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let response = soft
        .sign_in(ORIGIN, &serde_json::to_string(&options).unwrap())
        .unwrap();
    let credential: PublicKeyCredential = serde_json::from_str(&response).unwrap();
    let result = webauthn
        .finish_passkey_authentication(&credential, &state)
        .unwrap();
    passkey.update_credential(&result);
    // The same assertion sent again against a fresh challenge fails.
    let (_, fresh_state) = webauthn
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let replayed: PublicKeyCredential = serde_json::from_str(&response).unwrap();
    assert!(
        webauthn
            .finish_passkey_authentication(&replayed, &fresh_state)
            .is_err()
    );
}

#[test]
fn user_verification_off_is_refused_for_passkeys() {
    let webauthn = webauthn();
    let mut soft = SoftPasskey::new();
    let (_, passkey) = register(&webauthn, &mut soft);
    soft.uv = false;
    assert!(sign_in(&webauthn, &mut soft, ORIGIN, &passkey).is_err());
    soft.uv = true;
    assert!(sign_in(&webauthn, &mut soft, ORIGIN, &passkey).is_ok());
}

#[test]
fn backup_eligible_passkeys_carry_the_flags() {
    let webauthn = webauthn();
    let mut soft = SoftPasskey::new();
    soft.backup_eligible = true;
    let (_, passkey) = register(&webauthn, &mut soft);
    let credential = Credential::from(passkey.clone());
    assert!(credential.backup_eligible);
    assert!(credential.backup_state);
    let result = sign_in(&webauthn, &mut soft, ORIGIN, &passkey).unwrap();
    assert!(result.backup_eligible());
    assert!(result.backup_state());
    // Losing backup eligibility after registration is inconsistent.
    soft.backup_eligible = false;
    assert!(sign_in(&webauthn, &mut soft, ORIGIN, &passkey).is_err());
}

#[test]
fn excluded_credentials_are_not_registered_twice() {
    let webauthn = webauthn();
    let mut soft = SoftPasskey::new();
    let (user, passkey) = register(&webauthn, &mut soft);
    let (options, _) = webauthn
        .start_passkey_registration(
            user,
            "ada@example.com",
            "Ada",
            Some(vec![passkey.cred_id().clone()]),
        )
        .unwrap();
    let error = soft
        .register(ORIGIN, &serde_json::to_string(&options).unwrap())
        .unwrap_err();
    assert!(error.contains("InvalidStateError"), "{error}");
    assert_eq!(soft.credential_ids().len(), 1);
}

#[test]
fn sign_in_without_a_fitting_credential_fails() {
    let webauthn = webauthn();
    let mut soft = SoftPasskey::new();
    let (options, _) = webauthn.start_discoverable_authentication().unwrap();
    assert!(
        soft.sign_in(ORIGIN, &serde_json::to_string(&options).unwrap())
            .is_err()
    );
}

#[test]
fn rp_id_must_fit_the_origin_host() {
    assert!(check_rp_id("localhost", "localhost").is_ok());
    assert!(check_rp_id("example.com", "login.example.com").is_ok());
    assert!(check_rp_id("example.com", "badexample.com").is_err());
    assert!(check_rp_id("login.example.com", "example.com").is_err());
    assert!(check_rp_id("", "example.com").is_err());
}

#[test]
fn client_data_is_the_spec_shape() {
    let json = client_data_json("webauthn.get", "abc", ORIGIN).unwrap();
    assert_eq!(
        json,
        r#"{"type":"webauthn.get","challenge":"abc","origin":"http://localhost:8080","crossOrigin":false}"#
    );
}
