//! TOTP (RFC 6238) with totp-rs: SHA-1, 6 digits, 30-second steps, one step of skew either
//! way, each step's code accepted once. The seed is sealed at rest under the master key,
//! bound to the tenant and user.

use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

use crate::context::{Context, Timestamp};
use crate::domain::crypto::{MasterKey, constant_time_eq};
use crate::error::{DomainError, DomainResult};

/// Seconds per step.
pub const STEP_SECONDS: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Bytes of a new seed (160 bits, RFC 4226's recommendation).
const SEED_BYTES: usize = 20;

/// A user's TOTP app.
#[derive(Clone, Serialize, Deserialize)]
pub struct TotpFactor {
    /// The seed, sealed.
    #[serde(with = "serde_bytes")]
    pub sealed_seed: Vec<u8>,
    /// When enrolment began.
    pub created_at: Timestamp,
    /// When a first code confirmed it; unconfirmed apps are not a factor.
    pub confirmed_at: Option<Timestamp>,
    /// When it last signed a user in.
    pub last_used_at: Option<Timestamp>,
    /// The newest step whose code was accepted; codes of it and older steps are refused.
    pub last_step: Option<u64>,
}

impl std::fmt::Debug for TotpFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpFactor")
            .field("created_at", &self.created_at)
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

/// What enrolment shows the user once: the secret, its `otpauth://` URI and a QR code.
#[derive(Clone)]
pub struct TotpEnrolment {
    /// Base32 secret, for typing in.
    pub secret: String,
    /// `otpauth://totp/…`.
    pub uri: String,
    /// The URI as a QR code, SVG.
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment { .. }")
    }
}

fn seal_label(tenant: &str, user_id: Uuid) -> Vec<u8> {
    format!("gatehouse/totp/{tenant}/{user_id}").into_bytes()
}

fn totp(seed: Vec<u8>, issuer: &str, account: &str) -> DomainResult<TOTP> {
    // `:` separates issuer and account in the URI label; neither may hold one.
    let issuer = issuer.replace(':', " ");
    let account = account.replace(':', " ");
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_SECONDS,
        seed,
        Some(issuer),
        account,
    )
    .map_err(|error| DomainError::Internal(format!("totp: {error}")))
}

impl TotpFactor {
    /// Begins enrolment: a fresh seed, sealed, and what the user's app needs.
    pub fn enrol(
        context: &Context,
        master_key: &MasterKey,
        tenant: &str,
        user_id: Uuid,
        issuer: &str,
        account: &str,
    ) -> DomainResult<(TotpFactor, TotpEnrolment)> {
        let seed = context.random::<SEED_BYTES>().to_vec();
        let sealed_seed = master_key.seal(context, &seal_label(tenant, user_id), &seed)?;
        let totp = totp(seed, issuer, account)?;
        let uri = totp.get_url();
        let qr_svg = qrcode::QrCode::new(uri.as_bytes())
            .map_err(|error| DomainError::Internal(format!("qr code: {error}")))?
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        let factor = TotpFactor {
            sealed_seed,
            created_at: context.now(),
            confirmed_at: None,
            last_used_at: None,
            last_step: None,
        };
        let enrolment = TotpEnrolment {
            secret: totp.get_secret_base32(),
            uri,
            qr_svg,
        };
        Ok((factor, enrolment))
    }

    /// Checks `code` at `now` (one step of skew either way). A match of a step at or before
    /// the last accepted one is refused (replay); a match records its step.
    pub fn verify(
        &mut self,
        master_key: &MasterKey,
        tenant: &str,
        user_id: Uuid,
        code: &str,
        now: Timestamp,
    ) -> DomainResult<bool> {
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(false);
        }
        let seed = master_key.open(&seal_label(tenant, user_id), &self.sealed_seed)?;
        let totp = totp(seed, "gatehouse", "user")?;
        let seconds = u64::try_from(now.as_unix_seconds()).unwrap_or(0);
        let current = seconds / STEP_SECONDS;
        let mut matched = None;
        for step in [current.saturating_sub(1), current, current + 1] {
            // Every candidate is compared, so timing does not tell which step matched.
            let expected = totp.generate(step * STEP_SECONDS);
            if constant_time_eq(expected.as_bytes(), code.as_bytes()) {
                matched = Some(step);
            }
        }
        let Some(step) = matched else {
            return Ok(false);
        };
        if self.last_step.is_some_and(|last| step <= last) {
            metrics::counter!("gatehouse_totp_replays_total").increment(1);
            return Ok(false);
        }
        self.last_step = Some(step);
        self.last_used_at = Some(now);
        Ok(true)
    }
}
