//! Small wrappers over maintained crypto crates: hashing, constant-time comparison,
//! base64url, and AES-256-GCM sealing of secrets at rest.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::context::Context;
use crate::error::{DomainError, DomainResult};

/// SHA-256 of `bytes`; how bearer secrets (refresh tokens, server keys) are stored.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Compares two secrets without leaking where they differ.
pub fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.ct_eq(right).into()
}

/// Unpadded base64url, the encoding of every token Gatehouse hands out.
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url.
pub fn from_base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// A fresh secret token: `prefix` followed by 256 random bits in base64url.
pub fn random_token(context: &Context, prefix: &str) -> String {
    format!("{prefix}{}", base64url(&context.random::<32>()))
}

/// The node master key that seals secrets at rest with AES-256-GCM.
pub struct MasterKey {
    cipher: Aes256Gcm,
    /// HMAC key derived from the master key, for secrets too short to store as a bare hash.
    mac_key: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Size of a sealed value's nonce prefix.
const NONCE_LEN: usize = 12;

impl MasterKey {
    /// A master key from its 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> MasterKey {
        let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(bytes)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        derive.update(b"gatehouse mac key v1");
        MasterKey {
            cipher: Aes256Gcm::new(bytes.into()),
            mac_key: derive.finalize().into_bytes().into(),
        }
    }

    /// Parses the hex form kept in the master key file.
    pub fn from_hex(text: &str) -> DomainResult<MasterKey> {
        let bytes = hex::decode(text.trim())
            .map_err(|_| DomainError::Internal("master key is not hex".to_owned()))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| DomainError::Internal("master key must be 32 bytes".to_owned()))?;
        Ok(MasterKey::from_bytes(&bytes))
    }

    /// Encrypts `plaintext`, bound to `context_label` (e.g. the tenant and key id) so a
    /// sealed value cannot be moved to another record.
    pub fn seal(
        &self,
        context: &Context,
        context_label: &[u8],
        plaintext: &[u8],
    ) -> DomainResult<Vec<u8>> {
        let nonce_bytes = context.random::<NONCE_LEN>();
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce_bytes),
                Payload {
                    msg: plaintext,
                    aad: context_label,
                },
            )
            .map_err(|_| DomainError::Internal("sealing failed".to_owned()))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce_bytes);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// HMAC-SHA256 of `data` under a key derived from the master key, bound to `label`: how
    /// short secrets (six-digit codes) are stored, so a copy of the database alone cannot be
    /// searched for them.
    pub fn mac(&self, label: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(&u64::try_from(label.len()).unwrap_or(u64::MAX).to_le_bytes());
        mac.update(label);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Decrypts a value sealed with the same key and label.
    pub fn open(&self, context_label: &[u8], sealed: &[u8]) -> DomainResult<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(DomainError::Internal(
                "sealed value is truncated".to_owned(),
            ));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context_label,
                },
            )
            .map_err(|_| {
                DomainError::Internal(
                    "cannot open sealed value: wrong master key or corrupt record".to_owned(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_label() {
        let context = Context::system();
        let key = MasterKey::from_bytes(&[7; 32]);
        let sealed = key.seal(&context, b"tenant-a/k1", b"secret").unwrap();
        assert_eq!(key.open(b"tenant-a/k1", &sealed).unwrap(), b"secret");
        assert!(key.open(b"tenant-b/k1", &sealed).is_err());
        assert!(
            MasterKey::from_bytes(&[8; 32])
                .open(b"tenant-a/k1", &sealed)
                .is_err()
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open(b"tenant-a/k1", &tampered).is_err());
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn random_tokens_are_prefixed_and_distinct() {
        let context = Context::system();
        let first = random_token(&context, "x_");
        let second = random_token(&context, "x_");
        assert!(first.starts_with("x_"));
        assert_eq!(first.len(), 2 + 43);
        assert_ne!(first, second);
    }
}
