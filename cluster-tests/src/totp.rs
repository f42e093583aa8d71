//! An independent RFC 6238 (TOTP) implementation for tests, so that end-to-end tests
//! check the server's one-time codes against code that shares nothing with it.
//!
//! - [`totp_sha1`] computes the code for a secret at a given Unix time (HMAC-SHA-1, HOTP
//!   dynamic truncation per RFC 4226 §5.3).
//! - [`decode_base32`] reads a secret as the server shows it (RFC 4648 base32).
//! - [`secret_from_otpauth`] pulls that secret out of an `otpauth://totp/...` URI.
//!
//! ```
//! use gatehouse_cluster_tests::totp::{decode_base32, totp_sha1};
//!
//! let secret = decode_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
//! assert_eq!(totp_sha1(&secret, 59, 8, 30), "94287082");
//! ```

use hmac::{Hmac, Mac};
use sha1::Sha1;
use url::Url;

/// The RFC 4648 base32 alphabet.
const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The TOTP code for `secret` at `unix_seconds`: HOTP (HMAC-SHA-1) of the time step
/// counter `unix_seconds / step`, truncated to `digits` decimal digits and left-padded
/// with zeros.
///
/// A `step` of 0 is treated as 1, and `digits` is capped at 10 (a 31-bit truncated value
/// has at most 10 decimal digits).
pub fn totp_sha1(secret: &[u8], unix_seconds: u64, digits: u32, step: u64) -> String {
    hotp_sha1(secret, unix_seconds / step.max(1), digits)
}

/// The HOTP code (RFC 4226) for `secret` and `counter` with HMAC-SHA-1, `digits` long.
fn hotp_sha1(secret: &[u8], counter: u64, digits: u32) -> String {
    let digits = digits.min(10);
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    // Dynamic truncation, RFC 4226 §5.3: the low nibble of the last byte is the offset of
    // four bytes read big-endian with the top bit cleared.
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = (u32::from(hash[offset] & 0x7f) << 24)
        | (u32::from(hash[offset + 1]) << 16)
        | (u32::from(hash[offset + 2]) << 8)
        | u32::from(hash[offset + 3]);
    let code = u64::from(binary) % 10u64.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

/// Decodes RFC 4648 base32 text: case-insensitive, trailing `=` padding optional, and
/// spaces and hyphens (as in secrets grouped for reading) ignored.
pub fn decode_base32(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    let trimmed = text.trim_end_matches('=');
    for (index, character) in trimmed.chars().enumerate() {
        if character == ' ' || character == '-' {
            continue;
        }
        let upper = character.to_ascii_uppercase();
        let value = BASE32_ALPHABET
            .iter()
            .position(|&symbol| char::from(symbol) == upper)
            .ok_or_else(|| format!("not a base32 character at {index}: {character:?}"))?;
        // `value` is below 32, so it fits in five bits.
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    // Only 0, 2, 4, 5 or 7 trailing symbols make whole bytes; anything else is truncated.
    if bits >= 5 {
        return Err(format!("base32 text has a dangling symbol: {text:?}"));
    }
    Ok(out)
}

/// The decoded `secret` query parameter of an `otpauth://totp/...` URI.
pub fn secret_from_otpauth(uri: &str) -> Result<Vec<u8>, String> {
    let url = Url::parse(uri).map_err(|error| format!("not a URI: {error}: {uri:?}"))?;
    if url.scheme() != "otpauth" {
        return Err(format!("not an otpauth:// URI: {uri:?}"));
    }
    if url.host_str() != Some("totp") {
        return Err(format!("not an otpauth://totp/ URI: {uri:?}"));
    }
    let secret = url
        .query_pairs()
        .find(|(name, _)| name == "secret")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| format!("otpauth URI has no secret parameter: {uri:?}"))?;
    decode_base32(&secret)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// RFC 4648 base32 encoding without padding, to round-trip the decoder.
    fn encode_base32(bytes: &[u8]) -> String {
        let mut out = String::new();
        let mut buffer: u32 = 0;
        let mut bits: u32 = 0;
        for &byte in bytes {
            buffer = (buffer << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(
                    BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
                ));
            }
            buffer &= (1 << bits) - 1;
        }
        if bits > 0 {
            out.push(char::from(
                BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
            ));
        }
        out
    }

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let secret = b"12345678901234567890";
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, expected) in vectors {
            assert_eq!(totp_sha1(secret, time, 8, 30), expected, "T = {time}");
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        let secret = b"12345678901234567890";
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp_sha1(secret, counter as u64, 6), *code);
        }
    }

    #[test]
    fn six_digit_codes_are_the_low_digits() {
        assert_eq!(totp_sha1(b"12345678901234567890", 59, 6, 30), "287082");
    }

    #[test]
    fn base32_decodes_the_rfc_secret() {
        let decoded = decode_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(decoded, b"12345678901234567890");
        assert_eq!(
            decode_base32("gezdgnbvgy3tqojqgezdgnbvgy3tqojq").unwrap(),
            decoded
        );
    }

    #[test]
    fn base32_round_trips_every_length() {
        let data: Vec<u8> = (0u8..=40).map(|i| i.wrapping_mul(37)).collect();
        for length in 0..data.len() {
            let encoded = encode_base32(&data[..length]);
            assert_eq!(decode_base32(&encoded).unwrap(), &data[..length]);
        }
        // RFC 4648 §10 vectors, with and without padding.
        assert_eq!(decode_base32("MZXW6YTBOI======").unwrap(), b"foobar");
        assert_eq!(decode_base32("MZXW6YQ").unwrap(), b"foob");
        assert_eq!(encode_base32(b"fooba"), "MZXW6YTB");
    }

    #[test]
    fn base32_refuses_bad_text() {
        assert!(decode_base32("MZXW1").is_err());
        assert!(decode_base32("A").is_err());
    }

    #[test]
    fn secret_comes_out_of_an_otpauth_uri() {
        let uri = "otpauth://totp/Acme:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme&algorithm=SHA1&digits=6&period=30";
        assert_eq!(
            secret_from_otpauth(uri).unwrap(),
            b"12345678901234567890".to_vec()
        );
        assert!(secret_from_otpauth("otpauth://totp/Acme:ada?issuer=Acme").is_err());
        assert!(secret_from_otpauth("otpauth://hotp/Acme:ada?secret=GEZA").is_err());
        assert!(secret_from_otpauth("https://example.com/?secret=GEZA").is_err());
    }
}
