//! The refresh grace window (per tenant, off by default): within its seconds of a rotation,
//! presenting the token that rotation spent answers with the token it rotated to instead of
//! revoking the session, so an honest retry (a reply lost on the way, two tabs refreshing at
//! once) is not taken for a stolen token. The answer is kept in the session record, so every
//! node gives the same one; reuse of any older token, or after the window, still revokes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::SessionRecord;
use crate::context::{Context, Timestamp};
use crate::domain::crypto::{MasterKey, constant_time_eq};
use crate::error::{DomainError, DomainResult};

/// The longest grace window a tenant may set.
pub const MAX_GRACE_SECONDS: u32 = 300;

/// What the latest rotation keeps for its grace window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraceRotation {
    /// SHA-256 of the token the rotation spent.
    #[serde(with = "serde_bytes")]
    pub spent_hash: Vec<u8>,
    /// The token it rotated to, sealed under the master key and bound to the session.
    #[serde(with = "serde_bytes")]
    pub sealed_token: Vec<u8>,
    /// When it rotated.
    pub rotated_at: Timestamp,
}

/// A tenant's grace window and the key that seals the token kept for it.
#[derive(Clone, Copy)]
pub struct Grace<'a> {
    /// Seconds after a rotation in which its spent token is answered; 0 is off.
    pub window_seconds: u32,
    /// Seals the new token in the session record.
    pub master_key: &'a MasterKey,
}

impl std::fmt::Debug for Grace<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grace")
            .field("window_seconds", &self.window_seconds)
            .finish_non_exhaustive()
    }
}

fn label(tenant: &str, session_id: Uuid) -> Vec<u8> {
    format!("gatehouse/refresh-grace\u{0}{tenant}\u{0}{session_id}").into_bytes()
}

impl Grace<'_> {
    /// What a rotation from the token hashed `spent_hash` to `token` keeps: `None` when the
    /// window is off (nothing but hashes is stored then).
    pub fn keep(
        &self,
        context: &Context,
        tenant: &str,
        session_id: Uuid,
        spent_hash: &[u8],
        token: &str,
    ) -> DomainResult<Option<GraceRotation>> {
        if self.window_seconds == 0 {
            return Ok(None);
        }
        let sealed_token =
            self.master_key
                .seal(context, &label(tenant, session_id), token.as_bytes())?;
        Ok(Some(GraceRotation {
            spent_hash: spent_hash.to_vec(),
            sealed_token,
            rotated_at: context.now(),
        }))
    }

    /// The token to answer with when `hash` is the one the session's latest rotation spent
    /// and `now` is inside the window; `None` otherwise (a reuse).
    pub fn replay(
        &self,
        tenant: &str,
        session: &SessionRecord,
        hash: &[u8],
        now: Timestamp,
    ) -> DomainResult<Option<String>> {
        let Some(kept) = session.grace.as_ref().filter(|_| self.window_seconds > 0) else {
            return Ok(None);
        };
        let window_millis = i64::from(self.window_seconds.min(MAX_GRACE_SECONDS)) * 1000;
        if !constant_time_eq(&kept.spent_hash, hash)
            || now.millis_since(kept.rotated_at) > window_millis
        {
            return Ok(None);
        }
        let token = self
            .master_key
            .open(&label(tenant, session.session_id), &kept.sealed_token)?;
        String::from_utf8(token)
            .map(Some)
            .map_err(|_| DomainError::Internal("kept refresh token is not text".to_owned()))
    }
}
